//! Space back on an idle node. RocksDB drops deleted data (acked messages,
//! purged log entries) only when a compaction rewrites the files holding
//! it, and compactions follow writes: once a queue is drained and traffic
//! stops, nothing comes to reclaim the space. This task compacts the store
//! once the node has applied nothing new for [`IDLE_BEFORE_COMPACTION`],
//! and only if it applied something since its last compaction (an idle
//! node is compacted once, not over and over).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::node::{Node, QueueMachine};

/// How long the applied index must stand still before a compaction.
pub const IDLE_BEFORE_COMPACTION: Duration = Duration::from_secs(60);
/// How often the applied index is looked at.
const CHECK_PERIOD: Duration = Duration::from_secs(5);

/// When to compact: the applied index has stood still for `idle_before`,
/// and moved since the last compaction.
#[derive(Debug)]
struct IdleWatch {
    idle_before: Duration,
    compacted_at: u64,
    seen: u64,
    still_since: Instant,
}

impl IdleWatch {
    fn new(applied: u64, now: Instant, idle_before: Duration) -> Self {
        Self { idle_before, compacted_at: applied, seen: applied, still_since: now }
    }

    /// Looks at the applied index; true if a compaction is due now (it is
    /// then taken as done).
    fn due(&mut self, applied: u64, now: Instant) -> bool {
        if applied != self.seen {
            (self.seen, self.still_since) = (applied, now);
            return false;
        }
        if applied == self.compacted_at || now.duration_since(self.still_since) < self.idle_before {
            return false;
        }
        self.compacted_at = applied;
        true
    }
}

pub(crate) async fn run<SM: QueueMachine>(
    node: Arc<Node<SM>>,
    compactor: raftq_storage::Compactor,
    idle_before: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let applied = || node.metrics_now().last_applied.map_or(0, |id| id.index);
    let mut ticks = tokio::time::interval(CHECK_PERIOD.min(idle_before));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut watch = IdleWatch::new(applied(), Instant::now(), idle_before);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return,
        }
        let now = applied();
        if !watch.due(now, Instant::now()) {
            continue;
        }
        let started = std::time::Instant::now();
        let compactor = compactor.clone();
        match tokio::task::spawn_blocking(move || compactor()).await {
            Ok(Ok(())) => {
                metrics::counter!("raftq_idle_compactions_total").increment(1);
                tracing::info!(applied = now, took = ?started.elapsed(), "idle: compacted the store");
            }
            Ok(Err(error)) => tracing::warn!(%error, "idle compaction failed"),
            Err(error) => tracing::warn!(%error, "idle compaction task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacts_once_per_idle_spell_and_only_after_work() {
        let t0 = Instant::now();
        let idle = Duration::from_secs(60);
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let mut watch = IdleWatch::new(100, t0, idle);
        assert!(!watch.due(100, at(120)), "nothing applied since start: nothing to reclaim");
        assert!(!watch.due(150, at(130)), "busy");
        assert!(!watch.due(150, at(180)), "still for 50 s only");
        assert!(watch.due(150, at(191)), "still for 61 s after work: compact");
        assert!(!watch.due(150, at(400)), "once per idle spell");
        assert!(!watch.due(151, at(401)));
        assert!(!watch.due(151, at(450)));
        assert!(watch.due(151, at(462)), "new work, then idle again");
    }
}
