//! `Node`: what the services need of the local Raft node — propose a command
//! and get its replicated answer, read state linearizably, wait for change.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::error::{ClientWriteError, RaftError};
use openraft::impls::ProgressResponder;
use openraft::raft::ClientWriteResponse;
use openraft::storage::RaftStateMachine;
use openraft::{Raft, RaftMetrics, ReadPolicy};
use raftq_core::kv::StoreFault;
use raftq_core::read::Reader;
use raftq_core::{Command, Outcome, Typed};
use raftq_storage::{LogPayload, SnapshotData, StateMachine, StateStore, TypeConfig};
use tonic::Status;

use crate::clock::{Clock, Stamps};
use crate::error;

/// A state machine the server can read queues from.
pub trait QueueMachine: RaftStateMachine<TypeConfig, SnapshotData = SnapshotData> + Send + 'static {
    /// Reads of the state as of the last applied entry.
    fn reader(&self) -> Reader<'_>;

    /// A stream of the whole state as of the last applied entry, from a
    /// consistent view (for a full-scan verify).
    fn view(&self) -> std::io::Result<SnapshotData>;

    /// A counter of the encoded bytes of every command applied since the
    /// machine was opened (only grows).
    fn applied_bytes(&self) -> Arc<AtomicU64>;

    /// Reclaims the space of deleted data when called (blocking); `None`
    /// if the store has nothing to reclaim (in memory).
    fn compactor(&self) -> Option<raftq_storage::Compactor>;

    /// Reads the store's own memory (caches, memtables); `None` if it has
    /// none (in memory).
    fn memory_probe(&self) -> Option<raftq_storage::MemoryProbe> {
        None
    }
}

impl<S: StateStore> QueueMachine for StateMachine<S> {
    fn reader(&self) -> Reader<'_> {
        StateMachine::reader(self)
    }

    fn view(&self) -> std::io::Result<SnapshotData> {
        StateMachine::view(self)
    }

    fn applied_bytes(&self) -> Arc<AtomicU64> {
        StateMachine::applied_bytes(self)
    }

    fn compactor(&self) -> Option<raftq_storage::Compactor> {
        StateMachine::compactor(self)
    }

    fn memory_probe(&self) -> Option<raftq_storage::MemoryProbe> {
        StateMachine::memory_probe(self)
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
/// bigger (it then goes alone): one full publish batch's worth.
pub const ENTRY_BYTES_MAX: usize = raftq_core::limits::PUBLISH_BYTES_MAX;

// The transport must carry the largest entry: a full group, or one full
// publish batch alone (each message with its envelope), with room for several.
const _: () = assert!(
    2 * (ENTRY_BYTES_MAX + raftq_core::limits::PUBLISH_MESSAGES_MAX * raftq_core::limits::MESSAGE_ENVELOPE_BYTES_MAX)
        < raftq_raft::network::TRANSPORT_MESSAGE_BYTES_MAX
);
// Whatever a client may send in one request can be replicated in one entry.
const _: () = assert!(raftq_core::limits::CLIENT_MESSAGE_BYTES_MAX < raftq_raft::network::TRANSPORT_MESSAGE_BYTES_MAX);

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
/// queue (as `command_bytes` counts them: their encoded size).
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
    /// The disk space guard's last reading (never low without a guard).
    pub(crate) disk: crate::disk::DiskState,
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
        let stamps = Arc::new(Stamps::new(clock));
        tokio::spawn(watch_applied(raft.clone(), stamps.clone()));
        // Unbounded as a channel, bounded by admission: `propose` counts
        // every command in (by count and bytes) and refuses past `limits`.
        let (proposals, queued) = tokio::sync::mpsc::unbounded_channel();
        let pending = Arc::new(Pending::default());
        tokio::spawn(propose_in_groups(raft.clone(), stamps.clone(), queued, pending.clone()));
        Self { id, raft, stamps, proposals, pending, limits, disk: Default::default() }
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

    /// What the next entry's time would be (for deciding when a timer is
    /// due); see [`crate::clock`].
    pub fn time_estimate_ms(&self) -> u64 {
        self.stamps.estimate_ms()
    }

    /// Monotonic time since this node last stamped an entry (`None` if it
    /// never did): the ticker keeps time moving when a leader is idle.
    pub fn since_last_stamp(&self) -> Option<Duration> {
        self.stamps.since_last()
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
    ///
    /// While the disk space guard reports the disk below its reserve,
    /// commands that add data (publish, create queue or topic) are refused the same
    /// way, naming the disk ([`crate::disk`]).
    pub async fn propose(&self, command: Command) -> Result<Outcome, Status> {
        self.submit(command)?.await
    }

    /// The first half of [`Node::propose`], done at once: validates the
    /// command and puts it in the proposal queue (or refuses it), and
    /// returns the future of its answer. Commands submitted one after
    /// another go into the log in that order, whenever their futures are
    /// polled (a stream of publishes keeps its order this way).
    pub fn submit(&self, command: Command) -> Result<impl Future<Output = Result<Outcome, Status>> + use<SM>, Status> {
        command.validate().map_err(error::queue_error)?;
        if matches!(
            command,
            Command::Publish { .. }
                | Command::CreateQueue { .. }
                | Command::PublishTopic { .. }
                | Command::CreateTopic { .. }
        ) && let Some((available, reserve)) = self.disk.low()
        {
            // The reserve guards the disk of the node that proposes: a
            // follower short of disk sends the client to the leader
            // instead, as it would with space to spare.
            self.ensure_leader()?;
            return Err(error::disk_low(self.id, available, reserve));
        }
        let bytes = command_bytes(&command);
        self.pending.admit(bytes, &self.limits)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        if let Err(unsent) = self.proposals.send(Proposal { command, bytes, reply }) {
            self.pending.release(unsent.0.bytes);
            return Err(error::node_stopped("the node is shutting down"));
        }
        // Dropped after it was queued: it may already be in an entry.
        Ok(async move {
            answer
                .await
                .map_err(|_| error::outcome_unknown("the node stopped while the request was in flight", None))?
        })
    }

    /// Ok if this node believes it is the leader, else UNAVAILABLE with the
    /// leader's address when known (NOT_LEADER) or NO_LEADER. A hint for
    /// sending clients on early; a write is still refused by Raft itself
    /// on a node that lost leadership meanwhile.
    pub fn ensure_leader(&self) -> Result<(), Status> {
        let metrics = self.metrics_now();
        if metrics.current_leader == Some(self.id) {
            return Ok(());
        }
        let membership = metrics.membership_config.membership();
        let leader = metrics.current_leader.and_then(|id| membership.get_node(&id).map(|n| n.addr.clone()));
        Err(error::unavailable_with_hint("this node is not the leader", leader.as_deref()))
    }

    /// [`Node::propose`] for a command built with its answer's type
    /// ([`raftq_core::typed`]): the caller gets that answer, typed. Another
    /// kind of outcome would be a state machine bug: INTERNAL.
    pub async fn propose_typed<A>(&self, typed: Typed<A>) -> Result<A, Status> {
        self.submit_typed(typed)?.await
    }

    /// [`Node::submit`] for a typed command (see [`Node::propose_typed`]).
    pub fn submit_typed<A>(
        &self,
        typed: Typed<A>,
    ) -> Result<impl Future<Output = Result<A, Status>> + use<SM, A>, Status> {
        let (command, answer) = typed.into_parts();
        let outcome = self.submit(command)?;
        Ok(async move {
            answer(outcome.await?).map_err(|other| Status::internal(format!("state machine answered {other:?}")))
        })
    }

    /// Reads state after a read-index barrier: the answer reflects every
    /// write acknowledged before the call (linearizable, G6).
    pub async fn read<T, F>(&self, read: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(Reader<'_>) -> Result<T, StoreFault> + Send + 'static,
    {
        self.raft.ensure_linearizable(ReadPolicy::ReadIndex).await.map_err(error::read_error)?;
        self.local_read(read).await
    }

    /// Reads this node's applied state with no barrier: for deciding when
    /// to retry, never for answering a client.
    pub async fn local_read<T, F>(&self, read: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(Reader<'_>) -> Result<T, StoreFault> + Send + 'static,
    {
        self.raft
            .with_state_machine(move |sm: &mut SM| {
                let value = read(sm.reader());
                Box::pin(async move { value })
            })
            .await
            .map_err(error::fatal)?
            .map_err(error::store_fault)
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

/// The bytes a command adds to an entry: its encoded size, exactly (a
/// sizing pass over the command, no copy). An estimate that undercounted
/// (every non-publish command was 64 bytes, but an Ack of 1,000 receipts is
/// about 150 KB) let 1,024 such commands make an entry far larger than an
/// AppendEntries may carry: replicating it failed every time.
fn command_bytes(command: &Command) -> usize {
    // Sizing into a counter cannot fail for our types; if it ever did,
    // count the command as a full entry so it goes alone.
    postcard::experimental::serialized_size(command).unwrap_or(ENTRY_BYTES_MAX)
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
        let stamp = stamp(&raft, &stamps).await;
        // Handed to Raft here, in queue order, so entries are appended in
        // the order their proposals were queued (a stream's publishes keep
        // their order); only the wait for the outcome runs apart.
        let (commands, replies): (Vec<Command>, Vec<_>) = group.into_iter().map(|p| (p.command, p.reply)).unzip();
        let expected = commands.len();
        let (responder, written) = ProgressResponder::complete_only();
        let handed = raft.client_write_ff(LogPayload::new(stamp, commands), Some(responder)).await;
        tokio::spawn(async move {
            let outcome = match handed {
                Ok(()) => match written.await {
                    Ok(result) => result.map_err(RaftError::APIError),
                    // Raft dropped the responder: it stopped with the
                    // entry in flight.
                    Err(_) => Err(RaftError::Fatal(openraft::error::Fatal::Stopped)),
                },
                Err(fatal) => Err(RaftError::Fatal(fatal)),
            };
            answer_group(outcome, expected, replies);
            drop(slot);
        });
    }
}

/// Tells `stamps` the state's time each time an entry this node received
/// live (beyond the log it had on disk when it started, which it may be
/// replaying now) is applied under a known leader: the evidence a takeover
/// estimates the time from ([`crate::clock`]). Ends when Raft stops.
async fn watch_applied<SM: QueueMachine>(raft: Raft<TypeConfig, SM>, stamps: Arc<Stamps>) {
    let mut metrics = raft.metrics();
    let on_disk_at_start = metrics.borrow_watched().last_log_index;
    let mut seen = None;
    loop {
        let live = {
            let m = metrics.borrow_watched();
            let applied = m.last_applied.as_ref().map(|id| id.index);
            let changed = applied != seen;
            seen = applied;
            changed && applied > on_disk_at_start && m.current_leader.is_some()
        };
        if live {
            let state_ms = raft
                .with_state_machine(|sm: &mut SM| {
                    let now_ms = sm.reader().now_ms();
                    Box::pin(async move { now_ms })
                })
                .await;
            match state_ms {
                Ok(Ok(state_ms)) => stamps.saw_state_time(state_ms),
                _ => return,
            }
            // At most one read of the state per interval: the first time a
            // state time is seen is then known to within this much.
            tokio::time::sleep(TIME_EVIDENCE_INTERVAL).await;
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// How often `watch_applied` reads the state's time at most.
const TIME_EVIDENCE_INTERVAL: Duration = Duration::from_millis(50);

/// The time for the next entry: see [`crate::clock`]. At the first entry of
/// a term it reads the state's time (once per term).
async fn stamp<SM: QueueMachine>(raft: &Raft<TypeConfig, SM>, stamps: &Stamps) -> u64 {
    let term = raft.metrics().borrow_watched().current_term;
    let state_ms = if stamps.is_takeover(term) {
        raft.with_state_machine(|sm: &mut SM| {
            let now_ms = sm.reader().now_ms();
            Box::pin(async move { now_ms })
        })
        .await
        .ok()
        .and_then(Result::ok)
    } else {
        None
    };
    stamps.next(term, state_ms)
}

/// Answers each proposal of a written group from its entry's outcome.
fn answer_group(
    outcome: Result<ClientWriteResponse<TypeConfig>, RaftError<TypeConfig, ClientWriteError<TypeConfig>>>,
    expected: usize,
    replies: Vec<tokio::sync::oneshot::Sender<Result<Outcome, Status>>>,
) {
    let status = match outcome {
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

#[cfg(test)]
mod command_size_tests {
    use raftq_core::Receipt;
    use raftq_core::limits::{ACK_RECEIPTS_MAX, QUEUE_NAME_BYTES_MAX};

    use super::*;

    /// Every command is counted at least at its encoded size, so a group
    /// under `ENTRY_BYTES_MAX` by this count is under it on the wire. It was
    /// 64 bytes for anything but a publish.
    #[test]
    fn a_full_ack_is_counted_at_its_encoded_size() {
        let receipt = |id| Receipt { queue: "q".repeat(QUEUE_NAME_BYTES_MAX), message_id: id, attempt: 1 };
        let ack = Command::Ack { receipts: (1..=ACK_RECEIPTS_MAX as u64).map(receipt).collect() };
        let encoded = postcard::to_stdvec(&ack).unwrap().len();
        assert_eq!(command_bytes(&ack), encoded);
        assert!(encoded > ACK_RECEIPTS_MAX * QUEUE_NAME_BYTES_MAX, "{encoded}");
        // 1,024 of these (the most commands per entry) are far past an
        // entry's bytes, so group commit splits them into several entries.
        assert!(COMMANDS_PER_ENTRY_MAX * encoded > ENTRY_BYTES_MAX);
    }
}
