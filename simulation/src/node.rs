//! One raftq node as a turmoil host: the real `raftq_server::serve` over the
//! in-memory store, on a [`MemDisk`] that lives outside the host so it
//! survives the host's crashes, and a state machine wrapper through which
//! the simulation reads each replica's applied index and state digest.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures_util::{Stream, StreamExt};
use openraft::OptionalSend;
use openraft::storage::{EntryResponder, RaftStateMachine};
use raftq_server::{Clock, QueueMachine, ServerConfig};
use raftq_storage::{
    LogId, MemDisk, MemStateMachine, MemStore, SnapshotData, SnapshotMeta, StoredMembership, TypeConfig,
};
use turmoil::net::TcpListener;

use crate::net::{self, HostSockets, NODE_PORT, PEER_PORT, RaftConnector};

/// Digests kept per replica: enough to find an index every replica has
/// applied while the last entries still trickle in.
const DIGESTS_KEPT: usize = 256;

/// Clock reads at one simulated instant after which a node is declared
/// livelocked. Simulated time only moves when every task of a host waits;
/// a task that never waits (a busy loop) freezes the host's time forever.
/// Legitimate work reads the clock a few hundred times per instant.
const LIVELOCK_CLOCK_READS: u64 = 20_000;

/// The simulated clocks: wall time is a fixed epoch plus simulated time
/// (plus an offset the nemesis sets to make the wall clock jump), and
/// monotonic time is simulated time alone, so leader timestamps (and with
/// them lease deadlines) are the same on every run.
///
/// It is also the simulation's livelock detector: a node that reads the
/// wall clock [`LIVELOCK_CLOCK_READS`] times without simulated time moving
/// is spinning, and the read panics. The panic ends the spinning task (tokio
/// catches it), the host's time moves again, and the panic fails the seed.
/// One per node, kept across its restarts.
#[derive(Debug, Default)]
pub struct SimClock {
    /// The last reading, for the rare call made outside the simulation.
    last_ms: AtomicU64,
    /// The instant (ns since the epoch) of the last reading, and how many
    /// readings saw it.
    instant_ns: AtomicU64,
    reads_at_instant: AtomicU64,
    /// Added to the wall clock (not the monotonic one): a clock jump.
    wall_offset_ms: AtomicI64,
}

impl SimClock {
    /// Makes this node's wall clock read `offset_ms` away from the truth
    /// from now on (0 puts it right again — itself a jump).
    pub fn set_wall_offset_ms(&self, offset_ms: i64) {
        self.wall_offset_ms.store(offset_ms, Ordering::Relaxed);
    }

    fn sim_now(&self) -> Option<std::time::Duration> {
        let now = turmoil::since_epoch()?;
        let now_ns = now.as_nanos() as u64;
        if self.instant_ns.swap(now_ns, Ordering::Relaxed) == now_ns {
            let reads = self.reads_at_instant.fetch_add(1, Ordering::Relaxed) + 1;
            assert!(
                reads < LIVELOCK_CLOCK_READS,
                "livelock: a node read the clock {reads} times at simulated time {now:?} without time moving \
                 (a task on it never waits)"
            );
        } else {
            self.reads_at_instant.store(0, Ordering::Relaxed);
        }
        Some(now)
    }
}

impl Clock for SimClock {
    fn now_ms(&self) -> u64 {
        let Some(now) = self.sim_now() else { return self.last_ms.load(Ordering::Relaxed) };
        let now_ms = now.as_millis() as u64;
        self.last_ms.fetch_max(now_ms, Ordering::Relaxed);
        now_ms.saturating_add_signed(self.wall_offset_ms.load(Ordering::Relaxed))
    }

    fn monotonic_ms(&self) -> u64 {
        turmoil::sim_elapsed().map_or_else(|| self.last_ms.load(Ordering::Relaxed), |e| e.as_millis() as u64)
    }
}

/// Simulated wall time in ms, read inside the simulation (clients, nemesis).
pub fn sim_now_ms() -> u64 {
    turmoil::since_epoch().map_or(0, |now| now.as_millis() as u64)
}

/// What the simulation observes of one node, across its restarts.
#[derive(Debug, Default)]
pub struct Observed {
    /// Successful starts (the store opened).
    pub starts: u32,
    /// Why the last start failed, if it did (cleared by a good start).
    pub refused: Option<String>,
    /// Why `serve` returned, if it did.
    pub exited: Option<String>,
    /// The last applied log index.
    pub applied: u64,
    /// Set by the final check: record a digest after every apply.
    pub record_digests: bool,
    /// Applied index → state digest, the newest [`DIGESTS_KEPT`].
    pub digests: BTreeMap<u64, [u8; 16]>,
    /// The first broken core invariant seen while recording digests.
    pub invariant_error: Option<String>,
    /// A committed log record the nemesis corrupted: the next start must be
    /// refused while the record is still on disk.
    pub expect_refusal: Option<u64>,
    /// Contract violations seen by the node wrapper itself.
    pub violations: Vec<String>,
    /// Set by the driver while it crashes the host, so the state machine
    /// being dropped then is not mistaken for Raft stopping on its own.
    pub crashing: bool,
    /// Raft stopped on this node by itself (a fatal error) at least once.
    pub raft_stopped: bool,
    /// The randomness seed of the current start.
    pub start_seed: u64,
}

/// One node's shared, crash-surviving parts.
#[derive(Debug)]
pub struct NodeSpec {
    pub id: u64,
    /// The turmoil host name, e.g. `n1`.
    pub name: String,
    /// `name:port`, the address peers and clients dial.
    pub addr: String,
    pub config: ServerConfig,
    /// Seeds openraft's randomness (election timeouts) on this node; each
    /// start draws from its own stream.
    pub rng_seed: u64,
    /// The disk: kept across crashes; `crash()` drops its unsynced writes.
    pub disk: MemDisk,
    /// The host's connections, closed in a fixed order when it crashes.
    pub sockets: Arc<HostSockets>,
    /// The node's clocks, kept across restarts (a jumped wall clock stays
    /// jumped until the nemesis sets it right).
    pub clock: Arc<SimClock>,
    observed: Mutex<Observed>,
}

impl NodeSpec {
    pub fn new(id: u64, config: ServerConfig, run_seed: u64) -> Self {
        let name = node_name(id);
        let addr = node_addr(id);
        let rng_seed = run_seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Self {
            id,
            name,
            addr,
            config,
            rng_seed,
            disk: MemDisk::new(),
            sockets: Arc::default(),
            clock: Arc::default(),
            observed: Mutex::default(),
        }
    }

    /// The observed state; the simulation is single-threaded, so this never
    /// waits.
    pub fn observed(&self) -> MutexGuard<'_, Observed> {
        self.observed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The nodes that must hold the final state: members of the final
/// configuration that the nemesis did not leave dead and whose store opened.
pub fn live_members<'a>(
    nodes: &'a [Arc<NodeSpec>],
    members: &BTreeSet<u64>,
    dead: &BTreeSet<u64>,
) -> Vec<&'a Arc<NodeSpec>> {
    nodes
        .iter()
        .filter(|n| members.contains(&n.id) && !dead.contains(&n.id) && n.observed().refused.is_none())
        .collect()
}

/// The host name of node `id`.
pub fn node_name(id: u64) -> String {
    format!("n{id}")
}

/// The client address of node `id`.
pub fn node_addr(id: u64) -> String {
    format!("{}:{NODE_PORT}", node_name(id))
}

/// The peer (Raft transport) address of node `id`.
pub fn node_peer_addr(id: u64) -> String {
    format!("{}:{PEER_PORT}", node_name(id))
}

/// Both addresses of node `id`, as the membership records them.
pub fn node_addrs(id: u64) -> raftq_storage::NodeAddr {
    raftq_storage::NodeAddr::new(node_addr(id), node_peer_addr(id))
}

/// The host's software: open the store, serve until crashed. A store that
/// refuses to open leaves the host without software (the node stays down),
/// never an error that would end the simulation.
pub async fn run(node: Arc<NodeSpec>) -> turmoil::Result {
    let (log_store, machine) = match MemStore::open(node.disk.clone()).await {
        Ok(opened) => opened,
        Err(e) => {
            tracing::warn!(node = node.id, error = %e, "store refused to open");
            let mut observed = node.observed();
            observed.refused = Some(e.to_string());
            observed.expect_refusal = None;
            return Ok(());
        }
    };
    {
        let mut observed = node.observed();
        if let Some(index) = observed.expect_refusal.take() {
            let violation =
                format!("node {} started although committed log record {index} on its disk was corrupted", node.id);
            observed.violations.push(violation);
        }
        observed.starts += 1;
        observed.refused = None;
        observed.start_seed = node.rng_seed.wrapping_add(u64::from(observed.starts));
        observed.applied = machine.applied().map_or(0, |id| id.index);
    }
    let bound = async {
        Ok::<_, std::io::Error>((
            TcpListener::bind(("0.0.0.0", NODE_PORT)).await?,
            TcpListener::bind(("0.0.0.0", PEER_PORT)).await?,
        ))
    };
    let (listener, peer_listener) = match bound.await {
        Ok(listeners) => listeners,
        Err(e) => {
            node.observed().exited = Some(format!("bind: {e}"));
            return Ok(());
        }
    };
    let machine = ObservedMachine { inner: machine, node: node.clone() };
    let start_seed = node.observed().start_seed;
    let served = raftq_storage::runtime::with_seed(
        start_seed,
        raftq_server::serve(
            node.config.clone(),
            log_store,
            machine,
            raftq_server::Listeners {
                client: net::incoming(listener, node.sockets.clone()),
                peer: net::incoming(peer_listener, node.sockets.clone()),
            },
            Arc::new(RaftConnector(node.sockets.clone())),
            node.clock.clone(),
            std::future::pending(),
        ),
    )
    .await;
    node.observed().exited = Some(match served {
        Ok(()) => "serve returned".to_owned(),
        Err(e) => format!("serve failed: {e}"),
    });
    Ok(())
}

/// The real state machine, reporting every applied entry to the simulation.
#[derive(Debug)]
pub struct ObservedMachine {
    inner: MemStateMachine,
    node: Arc<NodeSpec>,
}

/// openraft drops the state machine when Raft stops. If that happens while
/// the host runs (not because the driver crashed it), Raft died of a fatal
/// error. The nemesis only damages the disks of crashed nodes, whose next
/// start must be refused, so a running node's Raft never has a reason to
/// die: it is a violation. (`serve` then returns by itself — it used to
/// keep running without Raft, its loops spinning on the closed metrics
/// watch — and the host stays down.)
impl Drop for ObservedMachine {
    fn drop(&mut self) {
        let mut observed = self.node.observed();
        if observed.crashing {
            return;
        }
        observed.raft_stopped = true;
        observed.violations.push(format!("node {}: Raft stopped by itself (a fatal error)", self.node.id));
    }
}

impl ObservedMachine {
    fn observe(&self) {
        let applied = self.inner.applied().map_or(0, |id| id.index);
        let mut observed = self.node.observed();
        observed.applied = applied;
        if observed.record_digests {
            let digest = self.inner.reader().digest();
            match digest {
                Ok(digest) => _ = observed.digests.insert(applied, digest),
                Err(e) => observed.violations.push(format!("node {}: reading the digest: {e}", self.node.id)),
            }
            while observed.digests.len() > DIGESTS_KEPT {
                observed.digests.pop_first();
            }
            if observed.invariant_error.is_none()
                && let Err(e) = raftq_core::check_invariants(self.inner.store(), raftq_core::DedupCaps::default())
            {
                observed.invariant_error = Some(format!("at applied index {applied}: {e}"));
            }
        }
    }
}

impl QueueMachine for ObservedMachine {
    fn reader(&self) -> raftq_core::read::Reader<'_> {
        self.inner.reader()
    }

    fn view(&self) -> io::Result<SnapshotData> {
        self.inner.view()
    }

    fn applied_bytes(&self) -> Arc<AtomicU64> {
        self.inner.applied_bytes()
    }

    fn compactor(&self) -> Option<raftq_storage::Compactor> {
        // In memory: nothing to reclaim (and no blocking thread, which
        // would make the run depend on real time).
        None
    }
}

impl RaftStateMachine<TypeConfig> for ObservedMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = <MemStateMachine as RaftStateMachine<TypeConfig>>::SnapshotBuilder;

    async fn applied_state(&mut self) -> io::Result<(Option<LogId>, StoredMembership)> {
        self.inner.applied_state().await
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> io::Result<()>
    where
        Strm: Stream<Item = io::Result<EntryResponder<TypeConfig>>> + Unpin + OptionalSend,
    {
        // One entry at a time, so a digest exists for every applied index.
        while let Some(item) = entries.next().await {
            let one = futures_util::stream::iter(std::iter::once(Ok(item?)));
            self.inner.apply(one).await?;
            self.observe();
        }
        Ok(())
    }

    async fn try_create_snapshot_builder(&mut self, force: bool) -> Option<Self::SnapshotBuilder> {
        self.inner.try_create_snapshot_builder(force).await
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.inner.get_snapshot_builder().await
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: SnapshotData) -> io::Result<()> {
        self.inner.install_snapshot(meta, snapshot).await?;
        self.observe();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> io::Result<Option<raftq_storage::Snapshot>> {
        self.inner.get_current_snapshot().await
    }
}
