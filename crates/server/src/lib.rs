//! # raftq-server: the gRPC server of one raftq node
//!
//! [`serve`] runs a node: it starts openraft over the given storage, and
//! serves `Queue`, `Cluster`, `grpc.health.v1` and server reflection on the
//! client listener, and only the internal `RaftTransport` on the peer
//! listener, until `shutdown` resolves. A Raft RPC on the client listener
//! answers UNIMPLEMENTED; so does a client RPC on the peer listener.
//!
//! ## Layout
//! - `node`: propose a command and get its replicated answer; linearizable
//!   reads; waiting for change.
//! - `clock`: the [`Clock`] seam and the rule for entry timestamps (time
//!   follows the leader's monotonic clock; a wall-clock jump moves it by a
//!   bounded amount).
//! - `queue_service`, `subscribe`: the client API. `cluster_service`: admin.
//! - `ticker`: the leader proposes a `Tick` when a timer is due, and at
//!   least every `TIME_HEARTBEAT`.
//! - `convert`: wire ⇄ core types. `error`: everything ⇄ `tonic::Status`.
//! - `telemetry`, `rpc_metrics`: metrics through the `metrics` facade (Raft
//!   and queue gauges, sampled; request counts and latency, per RPC). Only
//!   recorded: the binary installs the exporter.
//!
//! ## Invariants
//! - Nothing binds, dials or reads the environment here: the listener's
//!   stream, the [`Connector`], the storage, the clock and the shutdown
//!   signal are parameters, so the simulation runs this same code.
//! - A client hears OK only after its command was committed by a majority
//!   (each fsynced, by the storage) and applied: `client_write` returns then.
//! - Every command is validated before it is proposed; every read passes a
//!   read-index barrier first; a follower answers UNAVAILABLE with the
//!   leader's address in `raftq-leader`.
//! - No lock is held across an `.await`; waiting is on watches, never polls.
//! - Nothing is buffered without bound: the proposal queue is bounded by
//!   count and bytes ([`ProposalLimits`]; past it RESOURCE_EXHAUSTED with
//!   `raftq-retry-after-ms`), client requests in progress by
//!   [`ServerLimits::max_inflight_requests`] (refused the same way before
//!   their body is read), and each connection by
//!   [`ServerLimits::max_concurrent_streams`].

mod audit;
pub mod auth;
pub mod clock;
mod cluster_service;
pub mod conn_guard;
mod consume;
mod convert;
mod disk;
mod error;
pub mod idle_compaction;
mod node;
mod peer_identity;
mod publish_stream;
mod queue_service;
mod rpc_metrics;
mod shed;
mod snapshot_trigger;
mod status_map;
mod subscribe;
mod telemetry;
mod ticker;

use std::future::Future;
use std::sync::Arc;

use openraft::Raft;
use openraft::async_runtime::WatchReceiver;
use openraft::storage::RaftLogStorage;
use raftq_proto::v1::cluster_server::ClusterServer;
use raftq_proto::v1::queue_server::QueueServer;
use raftq_raft::network::{Connector, Network};
pub use raftq_raft::transport::SnapshotSpool;
use raftq_raft::transport::TransportService;
use raftq_raft::{Peers, RaftSettings};
use raftq_storage::TypeConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_stream::Stream;
use tonic::transport::server::Connected;

pub use clock::{Clock, SystemClock};
pub use disk::{DISK_CHECK_PERIOD, DiskGuard, DiskSpace};
pub use node::{
    COMMANDS_PER_ENTRY_MAX, Node, OVERLOAD_RETRY_AFTER_MS, PROPOSAL_BYTES_PENDING_MAX_DEFAULT,
    PROPOSALS_PENDING_MAX_DEFAULT, ProposalLimits, ProposalQueueStats, QueueMachine,
};
pub use queue_service::{CLIENT_MESSAGE_BYTES_MAX, RECEIVE_WAIT_MS_MAX};
pub use telemetry::{QUEUES_WITH_METRICS_MAX, enable_metrics_sampler};

/// What a node needs to know to run, built once by the CLI and validated.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub node_id: u64,
    /// Every initial voter's id and address (this node's included, unless
    /// it is joining an existing cluster as a learner).
    pub peers: Peers,
    pub raft: RaftSettings,
    pub cluster_name: String,
    pub limits: ServerLimits,
    /// The disk space guard; `None` runs without one (the simulation).
    pub disk: Option<DiskGuard>,
    /// Bearer-token authentication and permissions; `None` = off (every
    /// request is allowed). The caller may [`auth::Auth::replace`] the
    /// policy at any time (a reloaded auth file).
    pub auth: Option<Arc<auth::Auth>>,
    /// The token this node presents to its peers' Raft transport: needed
    /// when the peers run with auth on (it must be a `peer` principal's).
    pub peer_token: Option<String>,
    /// Serve a peer-port request only if the caller's TLS certificate names
    /// a member (`node-<id>.peer.raftq`, see `peer_identity`). Set when the
    /// peer listener runs mutual TLS; off, a connection without a
    /// certificate would be refused.
    pub peer_identity: bool,
    /// Where incoming snapshots wait until whole (a directory for a real
    /// node: `DATA_DIR/snapshot-spool`; memory in the simulation).
    pub snapshot_spool: SnapshotSpool,
}

/// Default HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS` of the gRPC listener.
pub const MAX_CONCURRENT_STREAMS_DEFAULT: u32 = 1_000;
/// Default most client-API requests in progress on a node at once.
pub const MAX_INFLIGHT_REQUESTS_DEFAULT: usize = 4_096;
/// Default most connections open at once on the client port.
pub const MAX_CONNECTIONS_DEFAULT: usize = 10_000;
/// Most connections open at once on the peer port: a few per peer, with
/// room for reconnects while old connections drain.
pub const PEER_CONNECTIONS_MAX: usize = 256;
/// The server pings every connection this often (HTTP/2 PING) ...
pub const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
/// ... and closes it if the answer takes longer than this: a client that
/// vanished without closing (half-open) lets go of its slot and streams.
pub const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Largest header block a request may send (HTTP/2 `MAX_HEADER_LIST_SIZE`).
pub const HEADER_LIST_BYTES_MAX: u32 = 16 * 1024;

/// The fewest concurrent streams a connection may be allowed (a peer's Raft
/// traffic needs a few at once).
pub const MAX_CONCURRENT_STREAMS_MIN: u32 = 16;

/// Bounds on what one node holds for its clients, so a burst meets
/// backpressure instead of growing memory (PRODUCT.md §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// The proposal queue (commands waiting for a log entry).
    pub proposals: ProposalLimits,
    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS` per connection: requests
    /// and streams one connection may have open at once. A client's further
    /// requests wait on the client's side (HTTP/2 flow control), not here.
    pub max_concurrent_streams: u32,
    /// Most client-API (`Queue`) requests in progress at once over all
    /// connections; one more is refused before its body is read, with
    /// RESOURCE_EXHAUSTED and `raftq-retry-after-ms`. A long poll holds its
    /// slot while it waits. Raft, `Cluster`, health and reflection are never
    /// refused.
    pub max_inflight_requests: usize,
    /// Most connections open at once on the client port; one more is
    /// closed as it is accepted (see [`conn_guard`]).
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            proposals: ProposalLimits::default(),
            max_concurrent_streams: MAX_CONCURRENT_STREAMS_DEFAULT,
            max_inflight_requests: MAX_INFLIGHT_REQUESTS_DEFAULT,
            max_connections: MAX_CONNECTIONS_DEFAULT,
        }
    }
}

impl ServerConfig {
    pub fn validate(&self) -> Result<(), ServerError> {
        if self.node_id == 0 {
            return Err(ServerError::Config("node id must be positive".into()));
        }
        if self.peers.contains_key(&0) {
            return Err(ServerError::Config("peer ids must be positive".into()));
        }
        if self.raft.election_timeout_min_ms <= self.raft.heartbeat_ms
            || self.raft.election_timeout_max_ms <= self.raft.election_timeout_min_ms
        {
            return Err(ServerError::Config("need heartbeat < election timeout min < max".into()));
        }
        if self.auth.is_some() && self.peer_token.is_none() {
            return Err(ServerError::Config(
                "auth is on but no peer token is set: the nodes could not reach each other".into(),
            ));
        }
        if let Some(token) = &self.peer_token
            && (token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(ServerError::Config("the peer token must be printable ASCII without spaces".into()));
        }
        let limits = &self.limits;
        if limits.proposals.commands_max == 0
            || limits.proposals.bytes_max == 0
            || limits.max_inflight_requests == 0
            || limits.max_connections == 0
        {
            return Err(ServerError::Config(
                "the proposal queue, in-flight request and connection bounds must be positive".into(),
            ));
        }
        if limits.max_concurrent_streams < MAX_CONCURRENT_STREAMS_MIN {
            return Err(ServerError::Config(format!(
                "max concurrent streams must be at least {MAX_CONCURRENT_STREAMS_MIN}"
            )));
        }
        Ok(())
    }
}

/// Why a node could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("bad configuration: {0}")]
    Config(String),
    #[error("raft configuration: {0}")]
    RaftConfig(#[from] openraft::ConfigError),
    #[error("raft failed: {0}")]
    Raft(String),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// The connections a node serves: its clients' and its peers'.
#[derive(Debug)]
pub struct Listeners<I, P> {
    /// Accepted on `--listen`: `Queue`, `Cluster`, health, reflection.
    pub client: I,
    /// Accepted on `--peer-listen`: the Raft transport only.
    pub peer: P,
}

/// Runs one node until `shutdown` resolves, then stops Raft cleanly.
#[allow(clippy::too_many_arguments)]
pub async fn serve<SM, LS, I, IO, IE, P, PO, PE>(
    config: ServerConfig,
    log_store: LS,
    state_machine: SM,
    listeners: Listeners<I, P>,
    connector: Arc<dyn Connector>,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError>
where
    SM: QueueMachine,
    LS: RaftLogStorage<TypeConfig>,
    I: Stream<Item = Result<IO, IE>> + Send + 'static,
    IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
    P: Stream<Item = Result<PO, PE>> + Send + 'static,
    PO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
    PE: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    config.validate()?;
    config.snapshot_spool.clean().map_err(|e| ServerError::Config(format!("snapshot spool: {e}")))?;
    let raft_config = config.raft.openraft_config(&config.cluster_name)?;
    let applied_bytes = state_machine.applied_bytes();
    let compactor = state_machine.compactor();
    let memory_probe = state_machine.memory_probe();
    let network = Network::new(connector).with_token(config.peer_token.as_deref());
    let raft = Raft::new(config.node_id, raft_config, network, log_store, state_machine)
        .await
        .map_err(|e| ServerError::Raft(e.to_string()))?;
    let node = Arc::new(Node::with_limits(config.node_id, raft.clone(), clock, config.limits.proposals));

    let bootstrap_raft = raft.clone();
    let (node_id, peers) = (config.node_id, config.peers.clone());
    tokio::spawn(async move {
        match raftq_raft::bootstrap(&bootstrap_raft, node_id, &peers).await {
            Ok(true) => tracing::info!(node_id, "initialized a new cluster"),
            Ok(false) => tracing::info!(node_id, "cluster already initialized; recovering"),
            Err(e) => tracing::error!(node_id, error = %e, "cluster initialization failed"),
        }
    });

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let ticker = tokio::spawn(ticker::run(node.clone(), stop_rx.clone()));
    let sampler = telemetry::spawn_sampler(node.clone(), stop_rx.clone());
    let memory_sampler = memory_probe.and_then(|probe| telemetry::spawn_memory_sampler(probe, stop_rx.clone()));
    let disk_guard = config.disk.clone().map(|guard| tokio::spawn(disk::watch(node.clone(), guard, stop_rx.clone())));
    let every_bytes = config.raft.snapshot_every_bytes;
    let snapshot_trigger = (every_bytes > 0)
        .then(|| tokio::spawn(snapshot_trigger::run(node.clone(), applied_bytes, every_bytes, stop_rx.clone())));
    let idle_compaction = compactor.map(|compactor| {
        let quiet = idle_compaction::QUIET_BEFORE_COMPACTION;
        tokio::spawn(idle_compaction::run(node.clone(), compactor, quiet, stop_rx.clone()))
    });
    let (health, health_service) = tonic_health::server::health_reporter();
    let health_task = tokio::spawn(report_health(node.clone(), health, stop_rx.clone()));
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(raftq_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServerError::Config(format!("reflection: {e}")))?;

    // Stop serving when asked to, or when Raft stops by itself (a fatal
    // storage error): a node without Raft must not keep answering.
    let raft_died = raft_stopped(node.clone());
    tokio::pin!(raft_died);
    let (stopping_tx, mut stopping_rx) = tokio::sync::watch::channel(false);
    let stop_reason = async {
        let died = tokio::select! {
            () = shutdown => None,
            fatal = &mut raft_died => Some(fatal),
        };
        let _ = stopping_tx.send(true);
        died
    };
    let mut peer_stopping_rx = stopping_rx.clone();
    let client_serving = server_builder(&config.limits)
        .layer(rpc_metrics::RpcMetricsLayer)
        .layer(status_map::StatusMapLayer)
        .layer(auth::AuthLayer::new(config.auth.clone()))
        .layer(shed::ShedLayer::new(config.limits.max_inflight_requests))
        .add_service(queue_service::QueueService::server(node.clone(), config.auth.clone()))
        .add_service(cluster_service::ClusterService::server(node.clone()))
        .add_service(health_service)
        .add_service(reflection)
        .serve_with_incoming_shutdown(
            conn_guard::guard(listeners.client, config.limits.max_connections, "client"),
            async move {
                let _ = stopping_rx.wait_for(|stopping| *stopping).await;
            },
        );
    let members = config.peer_identity.then(|| peer_members(node.clone(), &config.peers));
    let peer_serving = server_builder(&config.limits)
        .layer(rpc_metrics::RpcMetricsLayer)
        .layer(peer_identity::PeerIdentityLayer::new(members))
        .layer(auth::AuthLayer::new(config.auth.clone()))
        .add_service(TransportService::server(raft.clone(), config.snapshot_spool.clone()))
        .serve_with_incoming_shutdown(conn_guard::guard(listeners.peer, PEER_CONNECTIONS_MAX, "peer"), async move {
            let _ = peer_stopping_rx.wait_for(|stopping| *stopping).await;
        });
    let serving = async move {
        let (client, peer) = tokio::join!(client_serving, peer_serving);
        client.and(peer)
    };
    // tonic's graceful shutdown waits for every open connection to close; a
    // consumer's stream may never close, so after SHUTDOWN_GRACE the rest
    // are dropped (clients see UNAVAILABLE and retry elsewhere).
    let (served, died) = tokio::join!(
        async {
            tokio::pin!(serving);
            let mut stopping = stop_rx.clone();
            tokio::select! {
                served = &mut serving => served,
                () = async {
                    let _ = stopping.wait_for(|stop| *stop).await;
                    tokio::time::sleep(SHUTDOWN_GRACE).await;
                } => {
                    tracing::warn!(grace = ?SHUTDOWN_GRACE, "connections still open after the grace period; closing them");
                    Ok(())
                }
            }
        },
        async {
            let died = stop_reason.await;
            let _ = stop_tx.send(true);
            died
        }
    );

    let _ = ticker.await;
    let _ = health_task.await;
    if let Some(sampler) = memory_sampler {
        let _ = sampler.await;
    }
    if let Some(sampler) = sampler {
        let _ = sampler.await;
    }
    for task in [disk_guard, snapshot_trigger, idle_compaction].into_iter().flatten() {
        let _ = task.await;
    }
    if let Some(fatal) = died {
        tracing::error!(node_id = config.node_id, error = %fatal, "Raft stopped; the node shuts down");
        return Err(ServerError::Raft(format!("stopped: {fatal}")));
    }
    raft.shutdown().await.map_err(|e| ServerError::Raft(e.to_string()))?;
    served?;
    Ok(())
}

/// A gRPC server with the connection settings both listeners share:
/// streams per connection, keep-alive pings, the header cap.
fn server_builder(limits: &ServerLimits) -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .http2_max_header_list_size(HEADER_LIST_BYTES_MAX)
}

/// Who may call the peer port: this node's current members and the initial
/// voters of `--peers`.
fn peer_members<SM: QueueMachine>(node: Arc<Node<SM>>, initial: &Peers) -> peer_identity::Members {
    let initial: std::collections::BTreeSet<u64> = initial.keys().copied().collect();
    Arc::new(move || {
        let mut ids = initial.clone();
        let metrics = node.raft.metrics();
        ids.extend(metrics.borrow_watched().membership_config.membership().nodes().map(|(id, _)| *id));
        ids
    })
}

/// Longest the health reporter waits between two looks at the leader when
/// no metrics change wakes it.
const HEALTH_RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a stopping node keeps open connections after it stops
/// accepting new ones. Below Docker's and Kubernetes' default 10 s between
/// SIGTERM and SIGKILL, leaving time to stop Raft cleanly.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Resolves when this node's Raft stops on its own, with the reason.
async fn raft_stopped<SM: QueueMachine>(node: Arc<Node<SM>>) -> String {
    let mut metrics = node.raft.metrics();
    loop {
        if let Err(fatal) = &metrics.borrow_watched().running_state {
            return fatal.to_string();
        }
        if metrics.changed().await.is_err() {
            return match &metrics.borrow_watched().running_state {
                Err(fatal) => fatal.to_string(),
                Ok(()) => "Raft stopped".to_owned(),
            };
        }
    }
}

/// Serves `grpc.health.v1`: the whole server is SERVING while it runs;
/// `raftq.v1.Queue` is SERVING while this node knows a leader.
async fn report_health<SM: QueueMachine>(
    node: Arc<Node<SM>>,
    reporter: tonic_health::server::HealthReporter,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut metrics = node.metrics();
    let mut last = None;
    loop {
        let has_leader = node.metrics_now().current_leader.is_some();
        if last != Some(has_leader) {
            if has_leader {
                reporter.set_serving::<QueueServer<queue_service::QueueService<SM>>>().await;
                reporter.set_serving::<ClusterServer<cluster_service::ClusterService<SM>>>().await;
            } else {
                reporter.set_not_serving::<QueueServer<queue_service::QueueService<SM>>>().await;
            }
            last = Some(has_leader);
        }
        tokio::select! {
            _ = node.wait_for_change(&mut metrics, HEALTH_RECHECK) => {}
            _ = stop.changed() => return,
        }
    }
}
