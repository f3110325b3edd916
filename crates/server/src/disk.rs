//! The disk space guard: a node whose data disk runs low refuses the
//! writes that add data (publish, create queue) before they reach the log,
//! while everything that frees space (receive, ack, nack, purge, delete)
//! keeps working. The reserve left below the threshold is what lets
//! consumers drain the backlog that filled the disk.
//!
//! Without the guard a full disk fails a RocksDB write, which openraft
//! treats as fatal: the node stops (fail-stop; nothing acknowledged is lost,
//! since an acknowledgement needs the fsync that failed) and serves again
//! only after a restart with space. The guard keeps that from happening to
//! a leader under publish load. It checks the leader's own disk: a follower
//! whose disk alone fills stops as above while the other two go on.
//!
//! The space itself is read through [`DiskSpace`], so the server code stays
//! free of system calls: the binary passes one that asks the file system
//! (`statvfs`), tests pass one they control.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::node::{Node, QueueMachine};

/// How often the free space is looked at.
pub const DISK_CHECK_PERIOD: Duration = Duration::from_secs(1);

/// Tells how many bytes are free for the node's data.
pub trait DiskSpace: Send + Sync + fmt::Debug + 'static {
    /// Bytes available to this process on the data dir's file system.
    fn available_bytes(&self) -> io::Result<u64>;
}

/// The guard's configuration: where to look and how much to keep free.
#[derive(Clone, Debug)]
pub struct DiskGuard {
    pub space: Arc<dyn DiskSpace>,
    /// Writes that add data are refused while fewer bytes than this are
    /// free (`raftq server --min-free-disk-mb`).
    pub reserve_bytes: u64,
}

/// What the guard last saw, shared with the node's proposal path.
#[derive(Debug)]
pub(crate) struct DiskState {
    /// Free bytes at the last look; `u64::MAX` before the first look or
    /// without a guard.
    available: AtomicU64,
    reserve: AtomicU64,
}

impl Default for DiskState {
    fn default() -> Self {
        Self { available: AtomicU64::new(u64::MAX), reserve: AtomicU64::new(0) }
    }
}

impl DiskState {
    /// `Some((available, reserve))` while the disk is below its reserve.
    pub(crate) fn low(&self) -> Option<(u64, u64)> {
        let (available, reserve) = (self.available.load(Ordering::Relaxed), self.reserve.load(Ordering::Relaxed));
        (available < reserve).then_some((available, reserve))
    }

    fn record(&self, available: u64, reserve: u64) {
        self.reserve.store(reserve, Ordering::Relaxed);
        self.available.store(available, Ordering::Relaxed);
    }
}

/// Looks at the free space every [`DISK_CHECK_PERIOD`] until `stop`.
pub(crate) async fn watch<SM: QueueMachine>(node: Arc<Node<SM>>, guard: DiskGuard, mut stop: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(DISK_CHECK_PERIOD);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_low = false;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return,
        }
        let space = guard.space.clone();
        let available = match tokio::task::spawn_blocking(move || space.available_bytes()).await {
            Ok(Ok(available)) => available,
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot read the free disk space; keeping the last reading");
                continue;
            }
            Err(_) => return,
        };
        node.disk.record(available, guard.reserve_bytes);
        metrics::gauge!("raftq_disk_available_bytes").set(available as f64);
        let low = available < guard.reserve_bytes;
        metrics::gauge!("raftq_disk_alarm").set(if low { 1.0 } else { 0.0 });
        if low != was_low {
            if low {
                tracing::warn!(
                    available_mib = available >> 20,
                    reserve_mib = guard.reserve_bytes >> 20,
                    "disk space low: refusing publishes and queue creation until space returns"
                );
            } else {
                tracing::info!(available_mib = available >> 20, "disk space back above the reserve: accepting writes");
            }
            was_low = low;
        }
    }
}
