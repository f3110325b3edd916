//! Space back on a quiet node. RocksDB drops deleted data (acked messages,
//! expired keys) only when a compaction rewrites the files holding it, and
//! compactions follow writes: once a queue is drained and traffic stops,
//! nothing comes to reclaim the space. And the Raft log still holds every
//! entry since the last snapshot, and a tail behind it for slow followers
//! (message bodies included). This task builds a snapshot, purges the log
//! behind it, and then compacts the store once
//! at least [`DELETED_BEFORE_COMPACTION`] keys were deleted since its last
//! compaction and then no more than [`QUIET_DELETES_PER_CHECK`] per check
//! for [`QUIET_BEFORE_COMPACTION`]. (The applied index is no measure of
//! quiet: an idle leader still commits a time tick every few seconds.) A
//! busy node never pays for a full rewrite here; its own writes drive
//! RocksDB's compactions.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::node::{Node, QueueMachine};

/// Longest wait for the snapshot (and the log purge behind it) before the
/// compaction runs anyway.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(60);

/// How long deletions must stay (nearly) still before a compaction.
pub const QUIET_BEFORE_COMPACTION: Duration = Duration::from_secs(60);
/// Fewest deletions since the last compaction that make one worth it.
pub const DELETED_BEFORE_COMPACTION: u64 = 10_000;
/// Deletions per check that still count as quiet (expiring dedup keys).
const QUIET_DELETES_PER_CHECK: u64 = 100;
/// How often the deletion count is looked at.
const CHECK_PERIOD: Duration = Duration::from_secs(5);

/// When to compact (see the module docs).
#[derive(Debug)]
struct QuietWatch {
    quiet_before: Duration,
    compacted_at: u64,
    seen: u64,
    quiet_since: Instant,
}

impl QuietWatch {
    fn new(deleted: u64, now: Instant, quiet_before: Duration) -> Self {
        Self { quiet_before, compacted_at: deleted, seen: deleted, quiet_since: now }
    }

    /// Looks at the deletion count; true if a compaction is due now (it is
    /// then taken as done).
    fn due(&mut self, deleted: u64, now: Instant) -> bool {
        let busy = deleted.saturating_sub(self.seen) > QUIET_DELETES_PER_CHECK;
        self.seen = deleted;
        if busy {
            self.quiet_since = now;
            return false;
        }
        if deleted.saturating_sub(self.compacted_at) < DELETED_BEFORE_COMPACTION
            || now.duration_since(self.quiet_since) < self.quiet_before
        {
            return false;
        }
        self.compacted_at = deleted;
        true
    }
}

pub(crate) async fn run<SM: QueueMachine>(
    node: Arc<Node<SM>>,
    compactor: raftq_storage::Compactor,
    quiet_before: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(CHECK_PERIOD.min(quiet_before));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut watch = QuietWatch::new(compactor.deleted_keys(), Instant::now(), quiet_before);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return,
        }
        let deleted = compactor.deleted_keys();
        if !watch.due(deleted, Instant::now()) {
            continue;
        }
        let started = std::time::Instant::now();
        tokio::select! {
            () = snapshot_and_purge(&node) => {}
            _ = stop.changed() => return,
        }
        let task = compactor.clone();
        let compacted = tokio::select! {
            compacted = tokio::task::spawn_blocking(move || task.compact()) => compacted,
            // RocksDB finishes the rewrite on its own thread.
            _ = stop.changed() => return,
        };
        match compacted {
            Ok(Ok(())) => {
                metrics::counter!("raftq_idle_compactions_total").increment(1);
                tracing::info!(deleted_keys = deleted, took = ?started.elapsed(), "idle: compacted the store");
            }
            Ok(Err(error)) => tracing::warn!(%error, "idle compaction failed"),
            Err(error) => tracing::warn!(%error, "idle compaction task failed"),
        }
    }
}

/// Builds a snapshot at the applied index, then purges the whole log
/// behind it (an idle node's peers are caught up; the entries a node keeps
/// behind a snapshot for slow followers are not needed now), and waits
/// (bounded) for both, so the compaction can drop those entries too.
async fn snapshot_and_purge<SM: QueueMachine>(node: &Node<SM>) {
    let index = |id: Option<&raftq_storage::LogId>| id.map_or(0, |id| id.index);
    let applied = index(node.metrics_now().last_applied.as_ref());
    if let Err(error) = node.raft.trigger().snapshot().await {
        tracing::warn!(%error, "idle: could not trigger a snapshot");
        return;
    }
    let mut metrics = node.metrics();
    let deadline = Instant::now() + SNAPSHOT_WAIT;
    let mut purge_asked = false;
    while Instant::now() < deadline {
        let now = node.metrics_now();
        if index(now.purged.as_ref()) >= applied {
            return;
        }
        if !purge_asked && index(now.snapshot.as_ref()) >= applied {
            if let Err(error) = node.raft.trigger().purge_log(applied).await {
                tracing::warn!(%error, "idle: could not purge the log");
                return;
            }
            purge_asked = true;
        }
        node.wait_for_change(&mut metrics, deadline.saturating_duration_since(Instant::now())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacts_once_per_quiet_spell_and_only_after_many_deletions() {
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let mut watch = QuietWatch::new(0, t0, Duration::from_secs(60));
        assert!(!watch.due(50, at(120)), "quiet, but too little deleted to be worth a rewrite");
        assert!(!watch.due(20_000, at(125)), "a drain is deleting: busy");
        assert!(!watch.due(40_000, at(130)), "busy");
        assert!(!watch.due(40_050, at(180)), "quiet for 50 s only (a trickle of 50 is quiet)");
        assert!(watch.due(40_060, at(191)), "quiet for 61 s after many deletions: compact");
        assert!(!watch.due(40_060, at(400)), "once per quiet spell");
        assert!(!watch.due(45_000, at(401)), "busy again, but 4,940 since: too few");
        assert!(!watch.due(60_000, at(402)));
        assert!(!watch.due(60_000, at(450)));
        assert!(watch.due(60_000, at(463)), "many deletions, then quiet again");
    }
}
