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
    /// Node N serves clients on 127.0.0.1:(base_port + N).
    #[arg(long, default_value_t = 7100)]
    pub base_port: u16,
    /// Node N serves its peers (the Raft transport) on
    /// 127.0.0.1:(peer_base_port + N).
    #[arg(long, default_value_t = 7150)]
    pub peer_base_port: u16,
    /// Node N serves /metrics, /healthz, /readyz and the web console (`/ui/`)
    /// on 127.0.0.1:(http_base_port + N). Default: base_port + 80.
    #[arg(long)]
    pub http_base_port: Option<u16>,
    /// Run with auth and mutual TLS on, as the compose cluster does: a
    /// private CA, certificates, tokens and the auth file are made once in
    /// `<data-dir>/secure/`, and the commands to use them are printed.
    #[arg(long)]
    pub secure: bool,
}

/// The files of a `--secure` dev cluster, made on first use.
struct Secure {
    dir: PathBuf,
}

impl Secure {
    fn prepare(data_dir: &std::path::Path, nodes: u64) -> Result<Self> {
        let dir = data_dir.join("secure");
        // `peer-identity` marks certificates naming `node-N.peer.raftq`,
        // which the peer port requires; older ones are made again.
        let marker = dir.join("tls").join("peer-identity");
        if !dir.join("tls").join("ca.pem").exists() || !marker.exists() {
            let _ = std::fs::remove_dir_all(dir.join("tls"));
            crate::tls_cmd::generate(&crate::tls_cmd::GenArgs {
                dir: dir.join("tls"),
                nodes: (1..=nodes).map(|id| format!("{id}=node-{id}")).collect(),
                node_ids: vec![],
                clients: vec!["admin".into()],
                sans: vec![],
            })?;
            std::fs::write(&marker, "")?;
        }
        if !dir.join("auth.json").exists() {
            use raftq_server::auth::{AuthFile, Grant, Permission, Principal, token_hash};
            let (peer, admin) = (crate::auth_cmd::new_token(), crate::auth_cmd::new_token());
            let every = Grant {
                pattern: "*".into(),
                allow: vec![Permission::Publish, Permission::Consume, Permission::Manage],
            };
            let file = AuthFile {
                principals: vec![
                    Principal {
                        name: "raftq-nodes".into(),
                        tokens: vec![token_hash(&peer)],
                        queues: vec![],
                        topics: vec![],
                        admin: false,
                        peer: true,
                    },
                    Principal {
                        name: "admin".into(),
                        tokens: vec![token_hash(&admin)],
                        queues: vec![every.clone()],
                        topics: vec![every],
                        admin: true,
                        peer: false,
                    },
                ],
            };
            std::fs::write(dir.join("peer-token"), format!("{peer}\n"))?;
            std::fs::write(dir.join("admin-token"), format!("{admin}\n"))?;
            std::fs::write(dir.join("auth.json"), serde_json::to_string_pretty(&file)?)?;
        }
        Ok(Self { dir })
    }

    fn server_args(&self, id: u64) -> Vec<std::ffi::OsString> {
        let tls = self.dir.join("tls");
        let path = |p: PathBuf| p.into_os_string();
        vec![
            "--tls-cert".into(),
            path(tls.join(format!("node-{id}.pem"))),
            "--tls-key".into(),
            path(tls.join(format!("node-{id}-key.pem"))),
            "--tls-ca".into(),
            path(tls.join("ca.pem")),
            "--tls-client-ca".into(),
            path(tls.join("ca.pem")),
            "--auth-file".into(),
            path(self.dir.join("auth.json")),
            "--peer-token-file".into(),
            path(self.dir.join("peer-token")),
        ]
    }

    /// The environment a client needs, as shell exports.
    fn exports(&self) -> String {
        let tls = self.dir.join("tls");
        format!(
            "export RAFTQ_TOKEN_FILE={} RAFTQ_TLS_CA={} RAFTQ_TLS_CERT={} RAFTQ_TLS_KEY={}",
            self.dir.join("admin-token").display(),
            tls.join("ca.pem").display(),
            tls.join("client-admin.pem").display(),
            tls.join("client-admin-key.pem").display()
        )
    }
}

pub async fn run(args: DevArgs) -> Result<()> {
    if !(1..=7).contains(&args.nodes) {
        bail!("--nodes must be 1..=7");
    }
    let exe = std::env::current_exe().context("finding the raftq binary")?;
    let port = |base: u16, id: u64| u64::from(base) + id;
    if (1..=args.nodes).any(|id| port(args.base_port, id) > 65_535 || port(args.peer_base_port, id) > 65_535) {
        bail!("--base-port and --peer-base-port leave no room for {} nodes", args.nodes);
    }
    let http_base_port = args.http_base_port.unwrap_or(args.base_port.saturating_add(80));
    if (1..=args.nodes).any(|id| port(http_base_port, id) > 65_535) {
        bail!("--http-base-port leaves no room for {} nodes", args.nodes);
    }
    let ids = || 1..=args.nodes;
    let bases = [args.base_port, args.peer_base_port, http_base_port];
    for (i, a) in bases.iter().enumerate() {
        for b in &bases[i + 1..] {
            if ids().any(|x| ids().any(|y| port(*a, x) == port(*b, y))) {
                bail!(
                    "--base-port, --peer-base-port and --http-base-port give overlapping ports for {} nodes",
                    args.nodes
                );
            }
        }
    }
    let addrs: Vec<(u64, String, String)> = (1..=args.nodes)
        .map(|id| {
            let client = format!("127.0.0.1:{}", port(args.base_port, id));
            (id, client, format!("127.0.0.1:{}", port(args.peer_base_port, id)))
        })
        .collect();
    let peers = addrs.iter().map(|(id, addr, peer)| format!("{id}={addr}/{peer}")).collect::<Vec<_>>().join(",");
    std::fs::create_dir_all(&args.data_dir).with_context(|| format!("creating {}", args.data_dir.display()))?;
    let data_dir = std::fs::canonicalize(&args.data_dir).context("the data dir")?;
    let secure = if args.secure { Some(Secure::prepare(&data_dir, args.nodes)?) } else { None };
    let mut children: Vec<Child> = Vec::new();
    for (id, addr, peer_addr) in &addrs {
        let dir = args.data_dir.join(format!("node-{id}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let child = Command::new(&exe)
            .args(["server", "--node-id", &id.to_string(), "--listen", addr, "--peer-listen", peer_addr])
            .args(["--peers", &peers])
            .args(["--metrics-listen", &format!("127.0.0.1:{}", port(http_base_port, *id)), "--console"])
            .arg("--data-dir")
            .arg(&dir)
            .args(secure.as_ref().map(|s| s.server_args(*id)).unwrap_or_default())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting node {id}"))?;
        children.push(child);
    }
    let servers = addrs.iter().map(|(_, addr, _)| addr.as_str()).collect::<Vec<_>>().join(",");
    println!("raftq dev cluster: {} nodes, data in {}", args.nodes, args.data_dir.display());
    for (id, addr, peer_addr) in &addrs {
        let http = port(http_base_port, *id);
        println!("  node {id}: {addr} (peers: {peer_addr}; console: http://127.0.0.1:{http}/ui/)");
    }
    println!("try:  export RAFTQ_SERVERS={servers}");
    println!(
        "      raftq cluster status && raftq queue create demo && raftq publish demo hello && raftq consume demo --max 1"
    );
    match &secure {
        Some(secure) => println!("secure: auth and mutual TLS on; first:  {}", secure.exports()),
        None => println!(
            "INSECURE: no auth and no TLS; anyone who reaches these ports may use them (--secure turns both on; docs/security.md)."
        ),
    }
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
