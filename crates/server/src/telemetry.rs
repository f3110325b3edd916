//! Node and queue metrics through the `metrics` facade (names in the
//! README's "Metrics" table). This crate only records: whoever runs it
//! installs a recorder (the `raftq` binary installs the Prometheus one);
//! without one every call is a no-op.
//!
//! The sampler is off unless [`enable_metrics_sampler`] was called, so code
//! that never exports metrics (the simulation) runs no extra task and reads
//! nothing extra from the state machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use metrics::{counter, gauge};
use raftq_core::QueueInfo;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::node::{Node, QueueMachine};

/// How often Raft gauges are refreshed (a scrape is every 5–15 s).
const RAFT_SAMPLE_PERIOD: Duration = Duration::from_secs(1);
/// How often the per-queue gauges and counters are refreshed.
const QUEUE_SAMPLE_EVERY_RAFT_SAMPLES: u32 = 5;
/// Queues with per-queue series, in name order: bounds the series a
/// cluster of 10,000 queues exports.
pub const QUEUES_WITH_METRICS_MAX: u32 = raftq_core::limits::LIST_QUEUES_MAX;
/// Topics with per-topic series, in name order (one page of topics).
pub const TOPICS_WITH_METRICS_MAX: u32 = raftq_core::limits::LIST_TOPICS_MAX;

static SAMPLER_ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns the metrics sampler on for every node [`crate::serve`] starts
/// afterwards in this process. Call it after installing a recorder.
pub fn enable_metrics_sampler() {
    SAMPLER_ENABLED.store(true, Ordering::SeqCst);
}

/// How often the storage memory gauges are refreshed.
const MEMORY_SAMPLE_PERIOD: Duration = Duration::from_secs(5);

/// Samples the store's memory into the `raftq_rocksdb_*_bytes` gauges, if
/// the sampler is enabled; stops when `stop` turns true.
pub(crate) fn spawn_memory_sampler(
    probe: raftq_storage::MemoryProbe,
    mut stop: watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    SAMPLER_ENABLED.load(Ordering::SeqCst).then(|| {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(MEMORY_SAMPLE_PERIOD);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = stop.changed() => return,
                }
                let m = probe();
                gauge!("raftq_rocksdb_block_cache_bytes").set(m.block_cache as f64);
                gauge!("raftq_rocksdb_block_cache_pinned_bytes").set(m.block_cache_pinned as f64);
                gauge!("raftq_rocksdb_memtable_bytes").set(m.memtables as f64);
                gauge!("raftq_rocksdb_table_readers_bytes").set(m.table_readers as f64);
            }
        })
    })
}

/// Starts the sampler if it is enabled; it stops when `stop` turns true.
pub(crate) fn spawn_sampler<SM: QueueMachine>(
    node: Arc<Node<SM>>,
    stop: watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    SAMPLER_ENABLED.load(Ordering::SeqCst).then(|| tokio::spawn(sample(node, stop)))
}

async fn sample<SM: QueueMachine>(node: Arc<Node<SM>>, mut stop: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(RAFT_SAMPLE_PERIOD);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut n: u32 = 0;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return,
        }
        record_raft(&node);
        record_proposals(&node);
        if n.is_multiple_of(QUEUE_SAMPLE_EVERY_RAFT_SAMPLES) {
            // A local read: metrics may lag a little, and must not cost a
            // read-index round trip.
            let read = node
                .local_read(|state| {
                    Ok((
                        state.list_queues("", "", QUEUES_WITH_METRICS_MAX)?.0,
                        state.list_topics("", "", TOPICS_WITH_METRICS_MAX)?.0,
                        state.dedup_keys()? as usize,
                    ))
                })
                .await;
            if let Ok((queues, topics, dedup_keys)) = read {
                record_queues(&queues);
                record_topics(&topics);
                gauge!("raftq_dedup_keys").set(dedup_keys as f64);
            }
        }
        n = n.wrapping_add(1);
    }
}

fn record_raft<SM: QueueMachine>(node: &Node<SM>) {
    let m = node.metrics_now();
    let index = |log_id: Option<&openraft::alias::LogIdOf<raftq_storage::TypeConfig>>| log_id.map_or(0, |id| id.index);
    let is_leader = m.current_leader == Some(m.id);
    gauge!("raftq_raft_term").set(m.current_term as f64);
    gauge!("raftq_raft_is_leader").set(if is_leader { 1.0 } else { 0.0 });
    gauge!("raftq_raft_leader_known").set(if m.current_leader.is_some() { 1.0 } else { 0.0 });
    gauge!("raftq_raft_last_log_index").set(m.last_log_index.unwrap_or(0) as f64);
    gauge!("raftq_raft_commit_index").set(index(m.local_committed.as_ref()) as f64);
    gauge!("raftq_raft_applied_index").set(index(m.last_applied.as_ref()) as f64);
    gauge!("raftq_raft_snapshot_index").set(index(m.snapshot.as_ref()) as f64);
    // Only the leader knows its followers' progress.
    if is_leader {
        let last = m.last_log_index.unwrap_or(0);
        for (follower, matched) in m.replication.iter().flatten() {
            if *follower == m.id {
                continue;
            }
            let lag = last.saturating_sub(index(matched.as_ref()));
            gauge!("raftq_raft_replication_lag_entries", "follower" => follower.to_string()).set(lag as f64);
        }
    }
}

/// The proposal queue: depth now, its peak since the last sample, the
/// bounds, and refusals (backpressure).
fn record_proposals<SM: QueueMachine>(node: &Node<SM>) {
    let q = node.proposal_queue();
    gauge!("raftq_proposals_pending").set(q.commands as f64);
    gauge!("raftq_proposals_pending_bytes").set(q.bytes as f64);
    gauge!("raftq_proposals_pending_peak").set(q.peak_commands as f64);
    gauge!("raftq_proposals_pending_max").set(q.limits.commands_max as f64);
    gauge!("raftq_proposals_pending_bytes_max").set(q.limits.bytes_max as f64);
    counter!("raftq_proposals_rejected_total").absolute(q.rejected_total);
}

/// Per-topic counters, from the state machine (replicated, never reset).
fn record_topics(topics: &[raftq_core::TopicInfo]) {
    gauge!("raftq_topics").set(topics.len() as f64);
    for info in topics {
        let s = &info.stats;
        let topic = info.name.clone();
        gauge!("raftq_topic_bindings", "topic" => topic.clone()).set(info.bindings.len() as f64);
        for (name, value) in [
            ("raftq_topic_published_total", s.published_total),
            ("raftq_topic_routed_copies_total", s.routed_copies_total),
            ("raftq_topic_unrouted_total", s.unrouted_total),
            ("raftq_topic_duplicates_total", s.duplicates_total),
        ] {
            counter!(name, "topic" => topic.clone()).absolute(value);
        }
    }
}

fn record_queues(queues: &[QueueInfo]) {
    gauge!("raftq_queues").set(queues.len() as f64);
    for info in queues {
        let s = &info.stats;
        let queue = info.name.clone();
        for (state, count) in [("ready", s.ready), ("leased", s.leased), ("delayed", s.delayed), ("dead", s.dead)] {
            gauge!("raftq_queue_messages", "queue" => queue.clone(), "state" => state).set(count as f64);
        }
        gauge!("raftq_queue_bytes", "queue" => queue.clone()).set(s.total_bytes as f64);
        gauge!("raftq_queue_oldest_ready_age_seconds", "queue" => queue.clone())
            .set(s.oldest_ready_age_ms as f64 / 1000.0);
        // The state machine's own counters (replicated, never reset): the
        // same on every node, whatever node restarted.
        for (name, value) in [
            ("raftq_queue_published_total", s.published_total),
            ("raftq_queue_delivered_total", s.delivered_total),
            ("raftq_queue_acked_total", s.acked_total),
            ("raftq_queue_nacked_total", s.nacked_total),
            ("raftq_queue_expired_total", s.expired_total),
            ("raftq_queue_dead_lettered_total", s.dead_lettered_total),
            ("raftq_queue_duplicates_total", s.duplicates_total),
            ("raftq_queue_dedup_evicted_total", s.dedup_evicted_total),
        ] {
            counter!(name, "queue" => queue.clone()).absolute(value);
        }
    }
}
