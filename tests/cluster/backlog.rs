//! A backlog the nodes do not hold in memory: the queue state lives in
//! RocksDB, so publishing hundreds of thousands of messages that nobody
//! consumes leaves every node's resident memory where it was; and a node
//! restarted under that backlog serves again without loading it (it reads
//! the applied log id and goes on), small in memory, quickly, and answers a
//! linearizable read of the whole queue once it leads.

use std::time::Duration;

use raftq_client::{OutgoingMessage, QueueConfig};

use crate::harness::{Cluster, Options, wait_for};

/// Messages published and left in the queue: ~300 MiB of bodies per node.
const MESSAGES: usize = 300_000;
/// Published first, before memory is measured: fills memtables, caches and
/// allocator pools to their steady size.
const WARM_UP: usize = 50_000;
const BATCH: usize = 500;
const BATCHES_IN_FLIGHT: usize = 8;
const BODY_BYTES: usize = 1024;
/// How much a node's resident memory may grow from the warm-up to the end.
const RSS_GROWTH_MAX_BYTES: u64 = 100 << 20;
/// A restarted node's resident memory once caught up: measured 245 MiB
/// (block cache and memtables within the default 256 MiB budget, plus the
/// log entries re-applied), well under the ~660 MiB the old whole-state
/// load held for this backlog.
const RESTARTED_RSS_MAX_BYTES: u64 = 384 << 20;
/// From restart to caught up (the bound for a follower is 5 s; this
/// leaves room for a loaded CI machine).
const RESTART_CAUGHT_UP_MAX: Duration = Duration::from_secs(15);

/// Resident memory of process `pid`, from `/proc`.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).expect("VmRSS line");
    let kib: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("VmRSS value");
    kib * 1024
}

fn rss_of(cluster: &Cluster) -> Vec<(u64, u64)> {
    cluster.running_ids().into_iter().map(|id| (id, rss_bytes(cluster.pid(id).expect("running")))).collect()
}

async fn publish(client: &raftq_client::Client, queue: &str, count: usize) {
    let body = vec![b'x'; BODY_BYTES];
    for round in 0..count.div_ceil(BATCH * BATCHES_IN_FLIGHT) {
        let left = count - round * BATCH * BATCHES_IN_FLIGHT;
        let mut batches = tokio::task::JoinSet::new();
        for b in (0..BATCHES_IN_FLIGHT).filter(|b| b * BATCH < left) {
            let size = BATCH.min(left - b * BATCH);
            let messages: Vec<OutgoingMessage> = (0..size).map(|_| OutgoingMessage::new(body.clone())).collect();
            let (client, queue) = (client.clone(), queue.to_owned());
            batches.spawn(async move { client.publish(&queue, messages).await });
        }
        while let Some(published) = batches.join_next().await {
            published.expect("publish task").expect("publish a batch");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_backlog_leaves_every_node_s_memory_flat() {
    const QUEUE: &str = "backlog";
    let mut cluster = Cluster::start("backlog", 3, Options::default()).await;
    let client = cluster.client();
    client.create_queue(QUEUE, QueueConfig::default()).await.expect("create queue");
    publish(&client, QUEUE, WARM_UP).await;
    let before = rss_of(&cluster);
    publish(&client, QUEUE, MESSAGES - WARM_UP).await;
    // Let every follower apply the last entries before measuring.
    let info = client.get_queue(QUEUE).await.expect("get queue");
    assert_eq!(info.stats.ready, MESSAGES as u64, "every message is in the queue");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_of(&cluster);
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    for ((id, rss_before), (_, rss_after)) in before.iter().zip(&after) {
        eprintln!(
            "[backlog] node {id}: RSS {:.0} MiB after {WARM_UP}, {:.0} MiB after {MESSAGES}",
            mib(*rss_before),
            mib(*rss_after)
        );
        assert!(
            rss_after.saturating_sub(*rss_before) < RSS_GROWTH_MAX_BYTES,
            "node {id} grew from {:.0} to {:.0} MiB while the backlog grew by {} messages",
            mib(*rss_before),
            mib(*rss_after),
            MESSAGES - WARM_UP
        );
    }
    restart_under_backlog(&mut cluster, QUEUE).await;
}

/// Called at the end of the backlog test: kill -9 a follower holding the
/// backlog, restart it, and time how long until it has applied everything.
async fn restart_under_backlog(cluster: &mut Cluster, queue: &str) {
    let leader = cluster.leader_id().await;
    let follower = cluster.running_ids().into_iter().find(|id| *id != leader).expect("a follower");
    let applied = cluster.self_status(leader).await.expect("leader status").last_applied_index;
    cluster.kill(follower).await;
    let started = tokio::time::Instant::now();
    cluster.restart(follower);
    wait_for("the restarted follower to catch up", RESTART_CAUGHT_UP_MAX, async || {
        let own = cluster.self_status(follower).await?;
        (own.last_applied_index >= applied).then_some(())
    })
    .await;
    let took = started.elapsed();
    let rss = rss_bytes(cluster.pid(follower).expect("running"));
    eprintln!(
        "[backlog] node {follower}: restarted and caught up with applied index {applied} in {took:?}, RSS {:.0} MiB",
        rss as f64 / (1 << 20) as f64
    );
    assert!(rss < RESTARTED_RSS_MAX_BYTES, "node {follower} holds {rss} bytes after a restart: did it load the state?");

    // Led by the restarted node, a linearizable read sees the whole queue.
    // Its own applied index came back from its disk; the transfer needs the
    // leader to reach it again (it was refusing connections a moment ago).
    wait_for("the leader to replicate to the restarted node", RESTART_CAUGHT_UP_MAX, async || {
        let status = cluster.status_of(leader).await?;
        let seen = status.nodes.into_iter().find(|node| node.node_id == follower)?;
        (seen.reachable && seen.matched_index.unwrap_or(0) >= applied).then_some(())
    })
    .await;
    let client = cluster.client();
    client.transfer_leader(follower).await.expect("transfer leadership");
    wait_for("the restarted node to lead", Duration::from_secs(10), async || {
        (cluster.status_of(follower).await?.leader_id == Some(follower)).then_some(())
    })
    .await;
    let info = cluster.client_of(follower).get_queue(queue).await.expect("read through the restarted leader");
    assert_eq!(info.stats.ready, MESSAGES as u64);
}
