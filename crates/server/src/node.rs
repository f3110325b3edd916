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

/// The local node as the services see it.
pub struct Node<SM: QueueMachine> {
    pub id: u64,
    pub raft: Raft<TypeConfig, SM>,
    clock: Arc<dyn Clock>,
    /// The latest timestamp this node stamped: stamps never go backwards
    /// here, and the state machine also never lets time go back.
    last_stamp_ms: AtomicU64,
}

impl<SM: QueueMachine> fmt::Debug for Node<SM> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node").field("id", &self.id).finish_non_exhaustive()
    }
}

impl<SM: QueueMachine> Node<SM> {
    pub fn new(id: u64, raft: Raft<TypeConfig, SM>, clock: Arc<dyn Clock>) -> Self {
        Self { id, raft, clock, last_stamp_ms: AtomicU64::new(0) }
    }

    /// The time to stamp on the next entry.
    pub fn stamp_ms(&self) -> u64 {
        let now = self.clock.now_ms();
        self.last_stamp_ms.fetch_max(now, Ordering::SeqCst).max(now)
    }

    /// Validates `command`, replicates it to a majority (each fsynced), and
    /// returns the answer the state machine gave when applying it.
    pub async fn propose(&self, command: Command) -> Result<Outcome, Status> {
        command.validate().map_err(error::queue_error)?;
        let payload = LogPayload::new(self.stamp_ms(), vec![command]);
        let written = self.raft.client_write(payload).await.map_err(error::write_error)?;
        let mut responses = written.data.responses.into_iter();
        let response = responses.next().expect("one command in, one response out");
        response.map_err(error::queue_error)
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
    /// change) or `timeout` passes. Never busy-waits.
    pub async fn wait_for_change(&self, metrics: &mut MetricsWatch, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, metrics.changed()).await;
    }

    /// A watch on this node's Raft metrics, for `wait_for_change`.
    pub fn metrics(&self) -> MetricsWatch {
        self.raft.metrics()
    }

    /// A copy of the current Raft metrics.
    pub fn metrics_now(&self) -> RaftMetrics<TypeConfig> {
        self.raft.metrics().borrow_watched().clone()
    }
}

/// A watch on a node's Raft metrics.
pub type MetricsWatch = openraft::alias::WatchReceiverOf<TypeConfig, RaftMetrics<TypeConfig>>;
