//! `raftq dev`: a local cluster of `raftq server` processes on loopback, for
//! trying raftq out. Ctrl-C stops every node cleanly (SIGTERM, then wait).
//! Killing one node leaves the others running, to watch a failover.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// How often `raftq dev` looks for nodes that exited.
const NODE_EXIT_CHECK: Duration = Duration::from_millis(200);
/// How long a node gets to stop after SIGTERM before it is killed.
const NODE_STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub struct DevArgs {
    /// How many nodes (1..=7).
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// Where the nodes keep their data (`<dir>/node-<id>`); reused on restart.
    #[arg(long, default_value = ".raftq-dev")]
    pub data_dir: PathBuf,
    /// Node N listens on 127.0.0.1:(base_port + N).
    #[arg(long, default_value_t = 7100)]
    pub base_port: u16,
}

pub async fn run(args: DevArgs) -> Result<()> {
    if !(1..=7).contains(&args.nodes) {
        bail!("--nodes must be 1..=7");
    }
    let exe = std::env::current_exe().context("finding the raftq binary")?;
    let addrs: Vec<(u64, String)> =
        (1..=args.nodes).map(|id| (id, format!("127.0.0.1:{}", u64::from(args.base_port) + id))).collect();
    let peers = addrs.iter().map(|(id, addr)| format!("{id}={addr}")).collect::<Vec<_>>().join(",");
    let mut children: Vec<Child> = Vec::new();
    for (id, addr) in &addrs {
        let dir = args.data_dir.join(format!("node-{id}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let child = Command::new(&exe)
            .args(["server", "--node-id", &id.to_string(), "--listen", addr, "--peers", &peers])
            .arg("--data-dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting node {id}"))?;
        children.push(child);
    }
    let servers = addrs.iter().map(|(_, addr)| addr.as_str()).collect::<Vec<_>>().join(",");
    println!("raftq dev cluster: {} nodes, data in {}", args.nodes, args.data_dir.display());
    for (id, addr) in &addrs {
        println!("  node {id}: {addr}");
    }
    println!("try:  export RAFTQ_SERVERS={servers}");
    println!(
        "      raftq cluster status && raftq queue create demo && raftq publish demo hello && raftq consume demo --max 1"
    );
    println!("INSECURE: no auth and no TLS; anyone who reaches these ports may use them (docs/security.md).");
    println!("Ctrl-C stops the cluster.");

    // A node that dies (say, killed to watch a failover) is reported and
    // the others keep running; Ctrl-C, or every node gone, stops the cluster.
    let watch_nodes = async {
        let mut reported = vec![false; children.len()];
        loop {
            for (i, child) in children.iter_mut().enumerate() {
                if !reported[i]
                    && let Ok(Some(status)) = child.try_wait()
                {
                    eprintln!("node {} exited ({status})", i + 1);
                    reported[i] = true;
                }
            }
            if reported.iter().all(|r| *r) {
                return;
            }
            tokio::time::sleep(NODE_EXIT_CHECK).await;
        }
    };
    tokio::select! {
        _ = crate::server_cmd::shutdown_signal() => {}
        _ = watch_nodes => eprintln!("every node has exited"),
    }
    for child in &children {
        if let Some(pid) = child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
    }
    for child in &mut children {
        match tokio::time::timeout(NODE_STOP_GRACE, child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill().await;
            }
        }
    }
    println!("stopped");
    Ok(())
}
