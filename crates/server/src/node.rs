//! `Node`: what the services need of the local Raft node — propose a command
//! and get its replicated answer, read state linearizably, wait for change.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openraft::async_runtime::WatchReceiver;
use openraft::storage::RaftStateMachine;
use openraft::{Raft, RaftMetrics, ReadPolicy};
use raftq_core::{Command, Outcome, QueueState};
use raftq_storage::{LogPayload, SnapshotData, SnapshotVault, StateMachine, TypeConfig};
use tonic::Status;

use crate::error;

/// A state machine the server can read queues from.
pub trait QueueMachine: RaftStateMachine<TypeConfig, SnapshotData = SnapshotData> + Send + 'static {
    fn queue_state(&self) -> &QueueState;
}

impl<V: SnapshotVault> QueueMachine for StateMachine<V> {
    fn queue_state(&self) -> &QueueState {
        self.state()
    }
}

/// Wall time in ms since the Unix epoch: the leader stamps entries with it.
/// A parameter, so the simulation can hand in simulated time.
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }
}

/// Log entries being written at once by one node. While all are in
/// flight, new proposals queue up and go into the next entry together:
/// under load, many client requests share one entry, one fsync per node and
/// one replication round (group commit); when idle, a request gets its own
/// entry at once.
pub const ENTRIES_IN_FLIGHT_MAX: usize = 4;

/// The most commands one log entry carries.
pub const COMMANDS_PER_ENTRY_MAX: usize = 1024;

/// The most message bytes one entry carries, unless a single command is
/// bigger (it then goes alone).
pub const ENTRY_BYTES_MAX: usize = 4 * 1024 * 1024;

/// A command waiting to be written, with where its answer goes.
struct Proposal {
    command: Command,
    /// Its [`command_bytes`], counted in the queue's depth until it is
    /// taken into an entry.
    bytes: usize,
    reply: tokio::sync::oneshot::Sender<Result<Outcome, Status>>,
}

/// Default bound on the commands waiting in a node's proposal queue.
pub const PROPOSALS_PENDING_MAX_DEFAULT: usize = 10_000;
/// Default bound on the bytes of the commands waiting in a node's proposal
/// queue (as `command_bytes` counts them: bodies, attributes, 64 each).
pub const PROPOSAL_BYTES_PENDING_MAX_DEFAULT: usize = 64 * 1024 * 1024;
/// What an overloaded node tells the client to wait before retrying, in
/// metadata [`raftq_proto::RETRY_AFTER_MS_METADATA_KEY`].
pub const OVERLOAD_RETRY_AFTER_MS: u64 = 100;

/// Bounds of a node's proposal queue: the commands waiting for a log entry
/// (entries in flight are bounded apart, by [`ENTRIES_IN_FLIGHT_MAX`],
/// [`COMMANDS_PER_ENTRY_MAX`] and [`ENTRY_BYTES_MAX`]). A proposal that
/// would pass either bound is refused at once with RESOURCE_EXHAUSTED
/// (metadata `raftq-retry-after-ms`); nothing is buffered past them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProposalLimits {
    /// Most commands waiting.
    pub commands_max: usize,
    /// Most command bytes waiting. A single command bigger than this is
    /// still admitted into an empty queue, so no valid command is refused
    /// forever.
    pub bytes_max: usize,
}

impl Default for ProposalLimits {
    fn default() -> Self {
        Self { commands_max: PROPOSALS_PENDING_MAX_DEFAULT, bytes_max: PROPOSAL_BYTES_PENDING_MAX_DEFAULT }
    }
}

/// The proposal queue's depth, and what it refused.
#[derive(Debug, Default)]
struct Pending {
    depth: std::sync::Mutex<Depth>,
    rejected_total: AtomicU64,
}

/// Commands and bytes waiting, and the most commands waiting since the
/// last [`Node::proposal_queue`] call that took the peak.
#[derive(Clone, Copy, Debug, Default)]
struct Depth {
    commands: usize,
    bytes: usize,
    peak_commands: usize,
}

/// A snapshot of a node's proposal queue, for metrics and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProposalQueueStats {
    /// Commands waiting now.
    pub commands: usize,
    /// Their bytes.
    pub bytes: usize,
    /// The most commands waiting at once since the peak was last taken.
    pub peak_commands: usize,
    /// Proposals refused because the queue was full, since the node started.
    pub rejected_total: u64,
    pub limits: ProposalLimits,
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, Depth> {
        self.depth.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits a command of `bytes` if both bounds allow, else says why not.
    fn admit(&self, bytes: usize, limits: &ProposalLimits) -> Result<(), Status> {
        let mut depth = self.lock();
        let fits = depth.commands < limits.commands_max
            && (depth.commands == 0 || depth.bytes.saturating_add(bytes) <= limits.bytes_max);
        if !fits {
            let (commands, pending_bytes) = (depth.commands, depth.bytes);
            drop(depth);
            self.rejected_total.fetch_add(1, Ordering::Relaxed);
            return Err(error::overloaded(&format!(
                "the node's proposal queue is full ({commands} commands / {pending_bytes} bytes pending, \
                 limits {} / {}); retry with backoff",
                limits.commands_max, limits.bytes_max
            )));
        }
        depth.commands += 1;
        depth.bytes += bytes;
        depth.peak_commands = depth.peak_commands.max(depth.commands);
        Ok(())
    }

    /// A command of `bytes` left the queue (into an entry, or dropped).
    fn release(&self, bytes: usize) {
        let mut depth = self.lock();
        depth.commands -= 1;
        depth.bytes -= bytes;
    }
}

/// Takes a proposal out of the queue's depth.
fn dequeued(pending: &Pending, proposal: Proposal) -> Proposal {
    pending.release(proposal.bytes);
    proposal
}

/// The local node as the services see it.
pub struct Node<SM: QueueMachine> {
    pub id: u64,
    pub raft: Raft<TypeConfig, SM>,
    stamps: Arc<Stamps>,
    proposals: tokio::sync::mpsc::UnboundedSender<Proposal>,
    pending: Arc<Pending>,
    limits: ProposalLimits,
}

/// The leader's entry timestamps.
struct Stamps {
    clock: Arc<dyn Clock>,
    /// The latest timestamp this node stamped: stamps never go backwards
    /// here, and the state machine also never lets time go back.
    last_ms: AtomicU64,
}

impl Stamps {
    fn next(&self) -> u64 {
        let now = self.clock.now_ms();
        self.last_ms.fetch_max(now, Ordering::SeqCst).max(now)
    }
}

impl<SM: QueueMachine> fmt::Debug for Node<SM> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node").field("id", &self.id).finish_non_exhaustive()
    }
}

impl<SM: QueueMachine> Node<SM> {
    /// Starts the node's proposer task (group commit) with the default
    /// [`ProposalLimits`]; call inside the runtime. It ends when the node is
    /// dropped.
    pub fn new(id: u64, raft: Raft<TypeConfig, SM>, clock: Arc<dyn Clock>) -> Self {
        Self::with_limits(id, raft, clock, ProposalLimits::default())
    }

    /// [`Node::new`] with these bounds on the proposal queue.
    pub fn with_limits(id: u64, raft: Raft<TypeConfig, SM>, clock: Arc<dyn Clock>, limits: ProposalLimits) -> Self {
        let stamps = Arc::new(Stamps { clock, last_ms: AtomicU64::new(0) });
        // Unbounded as a channel, bounded by admission: `propose` counts
        // every command in (by count and bytes) and refuses past `limits`.
        let (proposals, queued) = tokio::sync::mpsc::unbounded_channel();
        let pending = Arc::new(Pending::default());
        tokio::spawn(propose_in_groups(raft.clone(), stamps.clone(), queued, pending.clone()));
        Self { id, raft, stamps, proposals, pending, limits }
    }

    /// The proposal queue's depth and refusals; takes the peak (the next
    /// call's peak starts from the depth now).
    pub fn proposal_queue(&self) -> ProposalQueueStats {
        let mut depth = self.pending.lock();
        let stats = ProposalQueueStats {
            commands: depth.commands,
            bytes: depth.bytes,
            peak_commands: depth.peak_commands,
            rejected_total: self.pending.rejected_total.load(Ordering::Relaxed),
            limits: self.limits,
        };
        depth.peak_commands = depth.commands;
        stats
    }

    /// The time to stamp on the next entry.
    pub fn stamp_ms(&self) -> u64 {
        self.stamps.next()
    }

    /// Validates `command`, replicates it to a majority (each fsynced), and
    /// returns the answer the state machine gave when applying it. Commands
    /// proposed concurrently share log entries (see
    /// [`ENTRIES_IN_FLIGHT_MAX`]); each still gets its own answer, and one
    /// command's refusal does not affect the others.
    ///
    /// Backpressure: if the proposal queue holds its bound of commands or
    /// bytes ([`ProposalLimits`]), the command is refused at once with
    /// RESOURCE_EXHAUSTED carrying `raftq-retry-after-ms` (nothing was
    /// proposed; a retry is safe for any command).
    pub async fn propose(&self, command: Command) -> Result<Outcome, Status> {
        command.validate().map_err(error::queue_error)?;
        let bytes = command_bytes(&command);
        self.pending.admit(bytes, &self.limits)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        if let Err(unsent) = self.proposals.send(Proposal { command, bytes, reply }) {
            self.pending.release(unsent.0.bytes);
            return Err(Status::unavailable("the node is shutting down"));
        }
        answer.await.map_err(|_| Status::unavailable("the node is shutting down"))?
    }

    /// Reads state after a read-index barrier: the answer reflects every
    /// write acknowledged before the call (linearizable, G6).
    pub async fn read<T, F>(&self, read: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&QueueState) -> T + Send + 'static,
    {
        self.raft.ensure_linearizable(ReadPolicy::ReadIndex).await.map_err(error::read_error)?;
        self.local_read(read).await
    }

    /// Reads this node's applied state with no barrier: for deciding when
    /// to retry, never for answering a client.
    pub async fn local_read<T, F>(&self, read: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&QueueState) -> T + Send + 'static,
    {
        self.raft
            .with_state_machine(move |sm: &mut SM| {
                let value = read(sm.queue_state());
                Box::pin(async move { value })
            })
            .await
            .map_err(error::fatal)
    }

    /// Waits until the node's metrics change (an entry applied, a leader
    /// change) since `watch` last reported one, or `timeout` passes. Never
    /// busy-waits.
    ///
    /// openraft republishes its metrics on every pass of its core loop,
    /// changed or not, so this compares the fields the server acts on (the
    /// applied and snapshot index, role, leader, running state) and keeps
    /// waiting while they stay the same: a waiter does not re-read the state
    /// machine thousands of times a second under load. A closed watch (Raft
    /// stopped) waits the whole `timeout`, so no caller's loop spins.
    pub async fn wait_for_change(&self, watch: &mut MetricsWatch, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let now = Watched::of(&watch.receiver.borrow_watched());
            if now != watch.seen {
                watch.seen = now;
                return;
            }
            match tokio::time::timeout_at(deadline, watch.receiver.changed()).await {
                Err(_elapsed) => return,
                Ok(Err(_closed)) => {
                    tokio::time::sleep_until(deadline).await;
                    return;
                }
                Ok(Ok(())) => {}
            }
        }
    }

    /// A watch on this node's Raft metrics, for `wait_for_change`: changes
    /// from now on are reported.
    pub fn metrics(&self) -> MetricsWatch {
        let receiver = self.raft.metrics();
        let seen = Watched::of(&receiver.borrow_watched());
        MetricsWatch { receiver, seen }
    }

    /// A copy of the current Raft metrics.
    pub fn metrics_now(&self) -> RaftMetrics<TypeConfig> {
        self.raft.metrics().borrow_watched().clone()
    }
}

/// The bytes a command adds to an entry, roughly: its message bodies and
/// attributes (everything else is small).
fn command_bytes(command: &Command) -> usize {
    match command {
        Command::Publish { messages, .. } => messages.iter().map(|m| m.size_bytes() + 64).sum(),
        _ => 64,
    }
}

/// The proposer: takes every proposal queued while the previous entries
/// were being written, writes them as one entry, and hands each caller its
/// own answer. At most [`ENTRIES_IN_FLIGHT_MAX`] entries are in flight.
async fn propose_in_groups<SM: QueueMachine>(
    raft: Raft<TypeConfig, SM>,
    stamps: Arc<Stamps>,
    mut queued: tokio::sync::mpsc::UnboundedReceiver<Proposal>,
    pending: Arc<Pending>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(ENTRIES_IN_FLIGHT_MAX));
    let mut carried: Option<Proposal> = None;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let first = match carried.take() {
            Some(proposal) => proposal,
            None => match queued.recv().await {
                Some(proposal) => dequeued(&pending, proposal),
                None => return,
            },
        };
        let mut bytes = first.bytes;
        let mut group = vec![first];
        while group.len() < COMMANDS_PER_ENTRY_MAX {
            let Ok(next) = queued.try_recv() else { break };
            let next = dequeued(&pending, next);
            let next_bytes = next.bytes;
            if bytes + next_bytes > ENTRY_BYTES_MAX {
                carried = Some(next);
                break;
            }
            bytes += next_bytes;
            group.push(next);
        }
        let raft = raft.clone();
        let stamp = stamps.next();
        tokio::spawn(async move {
            write_group(&raft, stamp, group).await;
            drop(slot);
        });
    }
}

/// Writes one entry of `group`'s commands and answers each proposal.
async fn write_group<SM: QueueMachine>(raft: &Raft<TypeConfig, SM>, stamp_ms: u64, group: Vec<Proposal>) {
    let (commands, replies): (Vec<Command>, Vec<_>) = group.into_iter().map(|p| (p.command, p.reply)).unzip();
    let expected = commands.len();
    let status = match raft.client_write(LogPayload::new(stamp_ms, commands)).await {
        Ok(written) if written.data.responses.len() == expected => {
            for (reply, response) in replies.into_iter().zip(written.data.responses) {
                let _ = reply.send(response.map_err(error::queue_error));
            }
            return;
        }
        Ok(written) => Status::internal(format!(
            "the state machine answered {} of {expected} commands in one entry",
            written.data.responses.len()
        )),
        Err(e) => error::write_error(e),
    };
    for reply in replies {
        let _ = reply.send(Err(status.clone()));
    }
}

/// The metrics fields whose change [`Node::wait_for_change`] reports.
#[derive(Debug, PartialEq, Eq)]
struct Watched {
    applied: Option<u64>,
    snapshot: Option<u64>,
    state: openraft::ServerState,
    leader: Option<u64>,
    running: bool,
}

impl Watched {
    fn of(m: &RaftMetrics<TypeConfig>) -> Self {
        Self {
            applied: m.last_applied.as_ref().map(|id| id.index),
            snapshot: m.snapshot.as_ref().map(|id| id.index),
            state: m.state,
            leader: m.current_leader,
            running: m.running_state.is_ok(),
        }
    }
}

/// A watch on a node's Raft metrics, with the fields last reported.
pub struct MetricsWatch {
    receiver: openraft::alias::WatchReceiverOf<TypeConfig, RaftMetrics<TypeConfig>>,
    seen: Watched,
}

impl fmt::Debug for MetricsWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsWatch").field("seen", &self.seen).finish_non_exhaustive()
    }
}
