//! `raftq server`: one node on RocksDB, serving gRPC on `--listen`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use raftq_raft::network::TcpConnector;
use raftq_raft::{Peers, RaftSettings};
use raftq_server::{DiskGuard, DiskSpace, ProposalLimits, ServerConfig, ServerLimits, SystemClock};
use raftq_storage::NodeAddr;
use raftq_storage::rocks::{RocksStore, StoreOptions};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;

/// Every flag can also come from its `RAFTQ_*` environment variable.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// This node's id (positive, unique in the cluster).
    #[arg(long, env = "RAFTQ_NODE_ID", required_unless_present = "node_id_from_hostname")]
    pub node_id: Option<u64>,
    /// Take the node id from the host name instead: its trailing ordinal
    /// plus one (`raftq-0` → 1, `raftq-2` → 3), as a Kubernetes
    /// StatefulSet names its pods. The host name is `$HOSTNAME`, else the
    /// kernel's.
    #[arg(long, env = "RAFTQ_NODE_ID_FROM_HOSTNAME", conflicts_with = "node_id")]
    pub node_id_from_hostname: bool,
    /// Address to bind the client listener to: the Queue and Cluster
    /// services, health and reflection.
    #[arg(long, env = "RAFTQ_LISTEN")]
    pub listen: SocketAddr,
    /// Address to bind the peer listener to: the Raft transport between
    /// the nodes, and nothing else. Only the other nodes need to reach it;
    /// with TLS on it requires a member's certificate.
    #[arg(long, env = "RAFTQ_PEER_LISTEN")]
    pub peer_listen: SocketAddr,
    /// Directory of this node's RocksDB; created if missing.
    #[arg(long, env = "RAFTQ_DATA_DIR")]
    pub data_dir: PathBuf,
    /// RocksDB's memory, in MiB: block cache, memtables, index and filter
    /// blocks, all inside this one budget however large the backlog. The
    /// process needs some more for requests in flight (see
    /// docs/storage.md); 256 suits a container limited to 512 MiB.
    #[arg(long, env = "RAFTQ_MEMORY_BUDGET_MB", default_value_t = (raftq_storage::rocks::MEMORY_BUDGET_DEFAULT_BYTES >> 20) as u64,
          value_parser = clap::value_parser!(u64).range(32..=1_048_576))]
    pub memory_budget_mb: u64,
    /// Free space, in MiB, kept on the data dir's file system: below it
    /// the node refuses publishes and queue creation (RESOURCE_EXHAUSTED
    /// naming the disk) while receives, acks, purges and deletes go on, so
    /// consumers can drain. 0 turns the guard off.
    #[arg(long, env = "RAFTQ_MIN_FREE_DISK_MB", default_value_t = 256)]
    pub min_free_disk_mb: u64,
    /// The initial voters, each as `ID=CLIENT_ADDR/PEER_ADDR`:
    /// `1=a:7101/a:7201,2=b:7102/b:7202,...` (client address as clients
    /// reach it, peer address as the other nodes reach it). On the first
    /// start of a fresh cluster the listed nodes form it; a restart recovers
    /// from the data dir. A node joining later lists the existing voters
    /// without itself, then is added with `raftq cluster add`.
    #[arg(long, env = "RAFTQ_PEERS", value_parser = parse_peers)]
    pub peers: Peers,
    /// Raft heartbeat interval.
    #[arg(long, env = "RAFTQ_HEARTBEAT_MS", default_value_t = raftq_raft::HEARTBEAT_MS_DEFAULT)]
    pub heartbeat_ms: u64,
    /// Election timeout, lower bound (the upper bound is twice this).
    #[arg(long, env = "RAFTQ_ELECTION_TIMEOUT_MS", default_value_t = raftq_raft::ELECTION_TIMEOUT_MS_DEFAULT)]
    pub election_timeout_ms: u64,
    /// Build a snapshot (and purge the log behind it) every this many entries.
    #[arg(long, env = "RAFTQ_SNAPSHOT_EVERY", default_value_t = raftq_raft::SNAPSHOT_EVERY_ENTRIES_DEFAULT)]
    pub snapshot_every: u64,
    /// Also build a snapshot once the entries applied since the last one
    /// carry this many MiB of commands (bounds the log's size on disk when
    /// entries are large). 0 turns the byte trigger off.
    #[arg(long, env = "RAFTQ_SNAPSHOT_EVERY_MB", default_value_t = raftq_raft::SNAPSHOT_EVERY_BYTES_DEFAULT >> 20)]
    pub snapshot_every_mb: u64,
    /// Entries kept in the log behind a snapshot.
    #[arg(long, env = "RAFTQ_LOG_KEEP", default_value_t = raftq_raft::LOG_KEPT_BEHIND_SNAPSHOT_DEFAULT)]
    pub log_keep: u64,
    /// Cluster name (in Raft messages and logs).
    #[arg(long, env = "RAFTQ_CLUSTER_NAME", default_value = "raftq")]
    pub cluster_name: String,
    /// Serve Prometheus `/metrics`, `/healthz` (process up) and `/readyz`
    /// (knows a leader) over HTTP on this address, e.g. `0.0.0.0:9100`.
    /// Off unless set (several nodes share a host in `raftq dev`).
    #[arg(long, env = "RAFTQ_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Serve the web console at `/ui/` on the `--metrics-listen` port
    /// (docs/console.md). The port is plain HTTP: with auth on, a token
    /// typed into the console crosses it in the clear, so bind it to
    /// loopback or a network only operators reach.
    #[arg(long, env = "RAFTQ_CONSOLE", requires = "metrics_listen")]
    pub console: bool,
    /// Backpressure: most commands waiting in this node's proposal queue.
    /// Past it (or `--max-pending-bytes`) a request is refused at once with
    /// RESOURCE_EXHAUSTED, reason OVERLOADED, and a retry hint (RetryInfo,
    /// metadata `raftq-retry-after-ms`): nothing was done; clients back off
    /// and retry.
    #[arg(long, env = "RAFTQ_MAX_PENDING_PROPOSALS", default_value_t = raftq_server::PROPOSALS_PENDING_MAX_DEFAULT)]
    pub max_pending_proposals: usize,
    /// Backpressure: most bytes waiting in the proposal queue (the encoded
    /// size of the commands, as they will go into log entries), and so the
    /// memory they hold. Refused past it as with `--max-pending-proposals`.
    #[arg(long, env = "RAFTQ_MAX_PENDING_BYTES", default_value_t = raftq_server::PROPOSAL_BYTES_PENDING_MAX_DEFAULT)]
    pub max_pending_bytes: usize,
    /// Most requests and streams one client connection may have open at
    /// once (HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`); further requests
    /// wait on the client's side.
    #[arg(long, env = "RAFTQ_MAX_CONCURRENT_STREAMS", default_value_t = raftq_server::MAX_CONCURRENT_STREAMS_DEFAULT)]
    pub max_concurrent_streams: u32,
    /// Backpressure: most client-API requests in progress on this node at
    /// once, over all connections (a long poll counts while it waits); one
    /// more is refused at once with RESOURCE_EXHAUSTED and
    /// `raftq-retry-after-ms`, before its body is read.
    #[arg(long, env = "RAFTQ_MAX_INFLIGHT_REQUESTS", default_value_t = raftq_server::MAX_INFLIGHT_REQUESTS_DEFAULT)]
    pub max_inflight_requests: usize,
    /// Most connections open at once on the client port; one more is closed
    /// as soon as it is accepted (the client retries, or tries another
    /// node). A connection that sends nothing for 10 s after connecting is
    /// closed too. Keep it below the process's open-file limit.
    #[arg(long, env = "RAFTQ_MAX_CONNECTIONS", default_value_t = raftq_server::MAX_CONNECTIONS_DEFAULT)]
    pub max_connections: usize,
    /// Turn authentication on with this auth file (JSON: principals, their
    /// token hashes and permissions; see docs/security.md and `raftq auth
    /// token`). Read again when it changes or on SIGHUP. Needs a peer token.
    #[arg(long, env = "RAFTQ_AUTH_FILE")]
    pub auth_file: Option<PathBuf>,
    /// The token this node presents to its peers (a principal with `peer`).
    /// Prefer `--peer-token-file` or the environment: a flag shows in `ps`.
    #[arg(long, env = "RAFTQ_PEER_TOKEN", hide_env_values = true, conflicts_with = "peer_token_file")]
    pub peer_token: Option<String>,
    /// A file holding the peer token (first line), e.g. a mounted secret.
    #[arg(long, env = "RAFTQ_PEER_TOKEN_FILE")]
    pub peer_token_file: Option<PathBuf>,
    /// With TLS on (`--tls-cert`, `--tls-key`): every client, peers
    /// included, must present a certificate signed by this CA (PEM).
    #[arg(long, env = "RAFTQ_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
}

/// Parses `1=host:7101/host:7201,2=...`: each node's client and peer address.
pub fn parse_peers(text: &str) -> Result<Peers, String> {
    const FORM: &str = "ID=CLIENT_HOST:PORT/PEER_HOST:PORT";
    let mut peers = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addrs) = part.split_once('=').ok_or_else(|| format!("{part:?} is not {FORM}"))?;
        let id: u64 = id.trim().parse().map_err(|_| format!("{id:?} is not a node id"))?;
        let Some((addr, peer_addr)) = addrs.trim().split_once('/') else {
            return Err(format!("{part:?} is not {FORM}: the peer address is missing"));
        };
        let (addr, peer_addr) = (addr.trim(), peer_addr.trim());
        if id == 0 || !NodeAddr::is_host_port(addr) || !NodeAddr::is_host_port(peer_addr) {
            return Err(format!("{part:?} is not {FORM} with a positive id"));
        }
        if addr == peer_addr {
            return Err(format!("{part:?}: the client and peer addresses must differ"));
        }
        if peers.insert(id, NodeAddr::new(addr, peer_addr)).is_some() {
            return Err(format!("node {id} is listed twice"));
        }
    }
    if peers.is_empty() {
        return Err("no peers given".into());
    }
    Ok(peers)
}

/// The node id of a host named `<anything>-<ordinal>`: ordinal + 1.
pub fn node_id_from_hostname(hostname: &str) -> Result<u64> {
    let hostname = hostname.trim();
    let ordinal = hostname
        .rsplit_once('-')
        .filter(|(_, ordinal)| !ordinal.is_empty() && ordinal.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|(_, ordinal)| ordinal.parse::<u64>().ok())
        .with_context(|| format!("host name {hostname:?} does not end in -<ordinal>"))?;
    ordinal.checked_add(1).with_context(|| format!("host name {hostname:?}: ordinal too large"))
}

/// The free space on the file system holding a directory, from `statvfs`:
/// what an unprivileged process may still write.
#[derive(Debug)]
struct StatvfsSpace(PathBuf);

impl DiskSpace for StatvfsSpace {
    fn available_bytes(&self) -> std::io::Result<u64> {
        let stat = nix::sys::statvfs::statvfs(&self.0).map_err(std::io::Error::from)?;
        Ok((stat.blocks_available() as u64).saturating_mul(stat.fragment_size() as u64))
    }
}

/// `$HOSTNAME`, else the kernel's host name.
fn hostname() -> Result<String> {
    if let Ok(name) = std::env::var("HOSTNAME")
        && !name.trim().is_empty()
    {
        return Ok(name);
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname").context("reading the host name")
}

impl ServerArgs {
    fn node_id(&self) -> Result<u64> {
        match self.node_id {
            Some(id) => Ok(id),
            None => node_id_from_hostname(&hostname()?),
        }
    }

    fn peer_token(&self) -> Result<Option<String>> {
        if let Some(path) = &self.peer_token_file {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let token = text.lines().next().unwrap_or("").trim().to_owned();
            if token.is_empty() {
                bail!("{}: no token on its first line", path.display());
            }
            return Ok(Some(token));
        }
        Ok(self.peer_token.clone().filter(|t| !t.is_empty()))
    }

    fn config(&self) -> Result<ServerConfig> {
        Ok(ServerConfig {
            node_id: self.node_id()?,
            peers: self.peers.clone(),
            raft: RaftSettings {
                heartbeat_ms: self.heartbeat_ms,
                election_timeout_min_ms: self.election_timeout_ms,
                election_timeout_max_ms: self.election_timeout_ms * 2,
                snapshot_every_entries: self.snapshot_every,
                snapshot_every_bytes: self.snapshot_every_mb << 20,
                log_kept_behind_snapshot: self.log_keep,
            },
            cluster_name: self.cluster_name.clone(),
            limits: ServerLimits {
                proposals: ProposalLimits {
                    commands_max: self.max_pending_proposals,
                    bytes_max: self.max_pending_bytes,
                },
                max_concurrent_streams: self.max_concurrent_streams,
                max_inflight_requests: self.max_inflight_requests,
                max_connections: self.max_connections,
            },
            snapshot_spool: raftq_server::SnapshotSpool::Dir(self.data_dir.join("snapshot-spool")),
            disk: (self.min_free_disk_mb > 0).then(|| DiskGuard {
                space: Arc::new(StatvfsSpace(self.data_dir.clone())),
                reserve_bytes: self.min_free_disk_mb << 20,
            }),
            auth: match &self.auth_file {
                Some(path) => Some(raftq_server::auth::Auth::new(crate::auth_cmd::load_policy(path)?)),
                None => None,
            },
            peer_token: self.peer_token()?,
            // Set by `run` when TLS is on.
            peer_identity: false,
        })
    }
}

/// TLS of a node: what it serves, and how it dials its peers.
struct NodeTls {
    /// The client port (client certificates if `--tls-client-ca`).
    server: Arc<crate::tls::ServerTls>,
    /// The peer port: always mutual, with the peers' CA (`--tls-ca`).
    peer_server: Arc<crate::tls::ServerTls>,
    /// For dialing peers and this node's own readiness check.
    client: raftq_client::TlsConfig,
}

/// TLS is on when `--tls-cert` and `--tls-key` are given; then `--tls-ca`
/// is needed too (to check the peers' certificates).
fn node_tls(args: &ServerArgs, files: &crate::tls::ClientTlsFiles) -> Result<Option<NodeTls>> {
    let (Some(cert), Some(key)) = (&files.cert, &files.key) else {
        if files.cert.is_some() || files.key.is_some() || args.tls_client_ca.is_some() {
            bail!("TLS needs both --tls-cert and --tls-key (and --tls-ca)");
        }
        return Ok(None);
    };
    if files.ca.is_none() {
        bail!("--tls-ca is needed with TLS: the CA that signed the peers' certificates");
    }
    let server = crate::tls::ServerTls::load(crate::tls::TlsFiles {
        cert: cert.clone(),
        key: key.clone(),
        client_ca: args.tls_client_ca.clone(),
    })?;
    let peer_server = crate::tls::ServerTls::load(crate::tls::TlsFiles {
        cert: cert.clone(),
        key: key.clone(),
        client_ca: files.ca.clone(),
    })?;
    let client = files.load()?.context("TLS client settings")?;
    Ok(Some(NodeTls { server, peer_server, client }))
}

pub async fn run(args: ServerArgs, tls_files: crate::tls::ClientTlsFiles) -> Result<()> {
    let mut config = args.config()?;
    config.validate()?;
    if args.listen == args.peer_listen {
        bail!("--listen and --peer-listen must differ: clients and peers use separate ports");
    }
    let tls = node_tls(&args, &tls_files)?;
    if args.console && tls.is_some() && args.auth_file.is_none() {
        // The console dials the gRPC port with the node's own certificate:
        // without auth it would let anyone who reaches the plain-HTTP port
        // past the client-certificate check.
        bail!("--console with TLS on needs auth on (--auth-file): see docs/console.md");
    }
    config.peer_identity = tls.is_some();
    if let Some(addr) = config.peers.get(&config.node_id) {
        tracing::info!(node_id = config.node_id, advertised = %addr, "starting");
    } else {
        tracing::info!(node_id = config.node_id, "starting as a joining node (not in --peers)");
    }
    std::fs::create_dir_all(&args.data_dir).with_context(|| format!("creating {}", args.data_dir.display()))?;
    let options = StoreOptions { memory_budget_bytes: (args.memory_budget_mb as usize) << 20 };
    let (log_store, state_machine) = match RocksStore::open_with(&args.data_dir, &options).await {
        Ok(store) => store,
        // A damaged data dir must never serve: say why and stop.
        Err(e) => bail!("refusing to start: {e}"),
    };
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    let peer_listener = tokio::net::TcpListener::bind(args.peer_listen)
        .await
        .with_context(|| format!("binding {}", args.peer_listen))?;
    tracing::info!(listen = %args.listen, peer_listen = %args.peer_listen, tls = tls.is_some(), "serving gRPC");
    if tls.is_none() {
        tracing::warn!("TLS is off: tokens and messages cross the network in the clear (see docs/security.md)");
    }
    let own_tls: crate::metrics_http::SharedTls =
        Arc::new(std::sync::RwLock::new(tls.as_ref().map(|t| t.client.clone())));
    let metrics = match args.metrics_listen {
        Some(addr) => {
            let console = args.console.then(|| config.auth.clone());
            Some(crate::metrics_http::start(addr, config.node_id, args.listen, own_tls.clone(), console).await?)
        }
        None => None,
    };
    let reloader = match (&args.auth_file, &config.auth) {
        (Some(path), Some(auth)) => {
            let first = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            tracing::info!(path = %path.display(), principals = auth.policy().len(), "auth on");
            Some(crate::auth_cmd::spawn_reloader(path.clone(), auth.clone(), first))
        }
        _ => {
            tracing::warn!("auth is off: anyone who reaches this node's port may use it (see docs/security.md)");
            None
        }
    };
    let connector = Arc::new(TcpConnector::new(tls.as_ref().map(|t| crate::tls::tonic_client_tls(&t.client))));
    let tls_reloader = tls.as_ref().map(|t| t.server.spawn_reloader());
    // The certificate this node presents to its peers, and the CA it checks
    // theirs with, reload too: new peer connections use them.
    let dial_reloader = tls.as_ref().map(|_| {
        let connector = connector.clone();
        let own_tls = own_tls.clone();
        tls_files.spawn_reloader(move |settings| {
            connector.set_tls(crate::tls::tonic_client_tls(&settings));
            *own_tls.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(settings);
        })
    });
    let peer_tls_reloader = tls.as_ref().map(|t| t.peer_server.spawn_reloader());
    let clock = Arc::new(SystemClock);
    match tls {
        Some(tls) => {
            let listeners = raftq_server::Listeners {
                client: crate::tls::incoming(listener, tls.server),
                peer: crate::tls::incoming(peer_listener, tls.peer_server),
            };
            raftq_server::serve(config, log_store, state_machine, listeners, connector, clock, shutdown_signal())
                .await?;
        }
        None => {
            let listeners = raftq_server::Listeners { client: plain(listener), peer: plain(peer_listener) };
            raftq_server::serve(config, log_store, state_machine, listeners, connector, clock, shutdown_signal())
                .await?;
        }
    }
    for task in [metrics, reloader, tls_reloader, peer_tls_reloader, dial_reloader].into_iter().flatten() {
        task.abort();
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Plain TCP connections accepted on `listener`. Nagle's algorithm would
/// hold small responses back until the peer's delayed ACK (up to 40 ms):
/// every accepted connection sends at once.
fn plain(
    listener: tokio::net::TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    TcpListenerStream::new(listener).map(|accepted| {
        let stream = accepted?;
        stream.set_nodelay(true)?;
        Ok(stream)
    })
}

/// Resolves on SIGTERM (containers) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown signal received");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse() {
        let peers = parse_peers("1=a:1/a:11, 2=b:2/b:12,3=127.0.0.1:7003/127.0.0.1:7103").unwrap();
        assert_eq!(peers.len(), 3);
        assert_eq!(peers[&3], NodeAddr::new("127.0.0.1:7003", "127.0.0.1:7103"));
        let bad = [
            "",
            "1",
            "x=a:1/a:2",
            "0=a:1/a:2",
            "1=a:1/a:2,1=b:2/b:3",
            "1=nohostport/a:2",
            "1=a:1",
            "1=a:1/",
            "1=a:1/a:1",
            "1=a:x/a:2",
            "1=:1/a:2",
        ];
        for bad in bad {
            assert!(parse_peers(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn node_id_from_a_statefulset_pod_name() {
        assert_eq!(node_id_from_hostname("raftq-0").unwrap(), 1);
        assert_eq!(node_id_from_hostname("my-raftq-12\n").unwrap(), 13);
        for bad in ["raftq", "raftq-", "raftq-x", "0", "raftq-+1", &format!("r-{}", u64::MAX)] {
            assert!(node_id_from_hostname(bad).is_err(), "{bad:?} accepted");
        }
    }

    /// Only for parsing `raftq server` flags in tests.
    #[derive(Debug, clap::Parser)]
    struct Flags {
        #[command(flatten)]
        server: ServerArgs,
    }

    #[test]
    fn node_id_or_hostname_flag() {
        use clap::Parser;
        let base = [
            "raftq",
            "--listen",
            "127.0.0.1:1",
            "--peer-listen",
            "127.0.0.1:2",
            "--data-dir",
            "d",
            "--peers",
            "1=a:1/a:2",
        ];
        let parse = |extra: &[&str]| Flags::try_parse_from(base.iter().chain(extra));
        let by_hostname = parse(&["--node-id-from-hostname"]).unwrap().server;
        assert_eq!((by_hostname.node_id, by_hostname.node_id_from_hostname), (None, true));
        let explicit = parse(&["--node-id", "2"]).unwrap().server;
        assert_eq!(explicit.node_id().unwrap(), 2);
        assert!(parse(&[]).is_err(), "one of the two is required");
        assert!(parse(&["--node-id", "2", "--node-id-from-hostname"]).is_err(), "not both");
    }

    #[test]
    fn backpressure_flags_have_defaults_and_reach_the_config() {
        use clap::Parser;
        let base = [
            "raftq",
            "--node-id",
            "1",
            "--listen",
            "127.0.0.1:1",
            "--peer-listen",
            "127.0.0.1:2",
            "--data-dir",
            "d",
            "--peers",
            "1=a:1/a:2",
        ];
        let parse = |extra: &[&str]| Flags::try_parse_from(base.iter().chain(extra)).unwrap().server.config().unwrap();
        assert_eq!(parse(&[]).limits, ServerLimits::default());
        let set =
            parse(&["--max-pending-proposals", "7", "--max-pending-bytes", "4096", "--max-concurrent-streams", "32"]);
        assert_eq!(set.limits.proposals, ProposalLimits { commands_max: 7, bytes_max: 4096 });
        assert_eq!(set.limits.max_concurrent_streams, 32);
        assert!(set.validate().is_ok());
        assert!(parse(&["--max-pending-proposals", "0"]).validate().is_err());
        assert!(parse(&["--max-concurrent-streams", "2"]).validate().is_err());
        assert_eq!(parse(&["--max-inflight-requests", "64"]).limits.max_inflight_requests, 64);
        assert!(parse(&["--max-inflight-requests", "0"]).validate().is_err());
        assert_eq!(parse(&["--max-connections", "10"]).limits.max_connections, 10);
        assert!(parse(&["--max-connections", "0"]).validate().is_err());
    }
}
