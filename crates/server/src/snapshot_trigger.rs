//! Snapshots by bytes. openraft builds a snapshot every N applied entries;
//! with entries of up to a full publish batch each, N entries can be many
//! gigabytes of log. This task also asks for a snapshot once the commands
//! applied since the last one add up to `every_bytes`, so the log on disk
//! stays bounded by bytes too (the log behind a snapshot is purged once it
//! is built). Building one is cheap: the state already lives in the store,
//! so a build only makes it durable.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::node::{Node, QueueMachine};

/// How often the applied bytes are looked at: bounds the overshoot to what
/// one node applies in this time.
const CHECK_PERIOD: Duration = Duration::from_millis(250);

pub(crate) async fn run<SM: QueueMachine>(
    node: Arc<Node<SM>>,
    applied_bytes: Arc<AtomicU64>,
    every_bytes: u64,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(CHECK_PERIOD);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_snapshot = node.metrics_now().snapshot;
    let mut since = applied_bytes.load(Ordering::Relaxed);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return,
        }
        let now = applied_bytes.load(Ordering::Relaxed);
        let snapshot = node.metrics_now().snapshot;
        if snapshot != last_snapshot {
            // Built for another reason (entry count, an operator, an
            // install): count from here.
            last_snapshot = snapshot;
            since = now;
            continue;
        }
        if now.saturating_sub(since) >= every_bytes {
            tracing::info!(bytes = now - since, "snapshot: applied bytes since the last one reached the bound");
            if let Err(error) = node.raft.trigger().snapshot().await {
                tracing::warn!(%error, "could not trigger a snapshot");
                continue;
            }
            since = now;
        }
    }
}
