//! A follower that missed more entries than the leader keeps in its log
//! catches up from a snapshot, and then holds every message (§4).

use std::collections::BTreeSet;

use raftq_client::QueueConfig;
use tokio::time::Instant;

use crate::harness::{Cluster, Options, WAIT, wait_for};
use crate::workload::{body_text, drain, publish_all};

/// `--snapshot-every`: the leader snapshots many times while the follower
/// is down.
const SNAPSHOT_EVERY: u64 = 100;
/// `--log-keep`: far below the gap the follower has to close.
const LOG_KEEP: u64 = 20;
/// Messages published while the follower is down. The leader groups
/// concurrent publishes into one entry, so an entry holds at most
/// [`PRODUCERS`] of them: at least 1,250 entries.
const MESSAGES: usize = 5_000;
/// Concurrent producer tasks.
const PRODUCERS: usize = 4;
/// What openraft's state machine worker logs (at info) once a snapshot
/// received from the leader is installed.
const INSTALL_LINE: &str = "Done install complete snapshot";

#[tokio::test(flavor = "multi_thread")]
async fn stopped_follower_catches_up_through_snapshot() {
    const QUEUE: &str = "catch-up";
    let options = Options { snapshot_every: Some(SNAPSHOT_EVERY), log_keep: Some(LOG_KEEP), ..Options::default() };
    let mut cluster = Cluster::start("snapshot-catchup", 3, options).await;
    let client = cluster.client();
    client.create_queue(QUEUE, QueueConfig::default()).await.expect("create queue");

    let leader = cluster.leader_id().await;
    let follower = *cluster.running_ids().iter().find(|id| **id != leader).expect("a follower");
    let follower_last = cluster.self_status(follower).await.expect("follower status").last_log_index;
    cluster.stop(follower).await;

    let published: Vec<String> = (0..MESSAGES).map(|n| format!("c-{n}")).collect();
    let outcome = publish_all(&client, QUEUE, published.clone(), PRODUCERS, |_| {}).await;
    assert!(outcome.failed.is_empty(), "publishes failed with a majority up: {:?}", &outcome.failed[..1]);

    // The leader of the publishing phase has every entry; the follower must
    // close a gap far beyond what the leader's log still holds.
    let leader = cluster.leader_id().await;
    let target = cluster.self_status(leader).await.expect("leader status").last_applied_index;
    let gap = target - follower_last;
    assert!(gap > (SNAPSHOT_EVERY + LOG_KEEP) * 5, "gap of {gap} entries is too small to need a snapshot");

    let log_offset = cluster.log_len(follower);
    let restarted = Instant::now();
    cluster.restart(follower);
    let what = format!("node {follower} to apply up to index {target}");
    wait_for(&what, WAIT, async || {
        let status = cluster.self_status(follower).await?;
        (status.last_applied_index >= target).then_some(())
    })
    .await;
    let caught_up = restarted.elapsed();
    let log = cluster.log_since(follower, log_offset);
    let installed = log.lines().find(|line| line.contains(INSTALL_LINE));
    let installed = installed.unwrap_or_else(|| {
        panic!("node {follower} caught up without installing a snapshot (no {INSTALL_LINE:?} in its log)")
    });
    eprintln!(
        "[snapshot-catchup] node {follower} closed a gap of {gap} entries in {:.2}s; its log: {installed}",
        caught_up.as_secs_f64()
    );

    // Make the caught-up node the leader, then kill the node that led the
    // publishing: what is served now comes from the caught-up node.
    client.transfer_leader(follower).await.expect("transfer leadership");
    wait_for(&format!("node {follower} to lead"), WAIT, async || {
        let status = cluster.status_of(follower).await?;
        (status.leader_id == Some(follower)).then_some(())
    })
    .await;
    cluster.kill(leader).await;

    let reader = cluster.client_of(follower);
    let info = reader.get_queue(QUEUE).await.expect("get queue");
    assert_eq!(reader.leader(), Some(cluster.addr(follower)), "the caught-up node answered as leader");
    assert_eq!(info.stats.ready, MESSAGES as u64, "messages on the caught-up node");
    let delivered = drain(&reader, QUEUE).await;
    let drained: BTreeSet<String> = delivered.iter().map(body_text).collect();
    let published: BTreeSet<String> = published.into_iter().collect();
    assert_eq!(drained.len(), delivered.len(), "no message delivered twice");
    assert!(drained == published, "drained {} messages, {} published", drained.len(), published.len());
}
