//! Cluster administration: leadership transfer to the node that already
//! leads, and the honest per-node status with state digests.

use std::time::Duration;

use raftq_client::{DigestScan, OutgoingMessage, QueueConfig, ReplicaCheck, proto};
use tokio::time::Instant;

use crate::harness::{Cluster, Options, WAIT};

/// How long the leader is watched after a transfer to itself: well past an
/// election timeout (500 ms) plus the ~1.5 s a stalled transfer took.
const WATCH_AFTER_TRANSFER: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread")]
async fn transfer_to_the_current_leader_is_a_no_op() {
    let mut cluster = Cluster::start("transfer-self", 3, Options::default()).await;
    let leader = cluster.leader_id().await;
    let term = cluster.status_of(leader).await.expect("leader status").term;

    let request = proto::TransferLeaderRequest { node_id: leader };
    cluster.cluster_stub(leader).transfer_leader(request).await.expect("transfer to the leader itself is OK");

    // Writes go straight to the leader with a raw stub (no retries, no hint
    // following): each must succeed at once, and leadership must not move.
    let mut stub = cluster.queue_stub(leader);
    let watch_until = Instant::now() + WATCH_AFTER_TRANSFER;
    let mut writes = 0;
    while Instant::now() < watch_until {
        let request = proto::CreateQueueRequest { queue: format!("after-transfer-{writes}"), config: None };
        if let Err(status) = stub.create_queue(request).await {
            let hint = status.metadata().get(raftq_proto::LEADER_METADATA_KEY).cloned();
            panic!("write {writes} after a transfer to the leader failed: {status:?} (hint {hint:?})");
        }
        writes += 1;
        let status = cluster.status_of(leader).await.expect("leader status");
        assert_eq!(status.leader_id, Some(leader), "leadership moved after write {writes}: {status:?}");
        assert_eq!(status.term, term, "an election happened after write {writes}");
    }
    eprintln!("[transfer-self] node {leader} still leads in term {term} after {writes} writes");
}

/// TransferLeader answers OK only once the target leads: a caller can send
/// the next write to it straight away. It used to answer as soon as the
/// transfer was asked for.
#[tokio::test(flavor = "multi_thread")]
async fn transfer_answers_once_the_target_leads() {
    let mut cluster = Cluster::start("transfer-done", 3, Options::default()).await;
    let mut leader = cluster.leader_id().await;
    // Round after round: an elected leader refuses writes until a majority
    // has acknowledged it in its term, and the answer once came in that
    // window (a write straight after it was refused with NO_LEADER).
    for round in 0..8 {
        let target = cluster.running_ids().into_iter().find(|id| *id != leader).expect("a follower");
        let request = proto::TransferLeaderRequest { node_id: target };
        cluster.cluster_stub(leader).transfer_leader(request).await.expect("transfer");
        let request = proto::CreateQueueRequest { queue: format!("after-transfer-{round}"), config: None };
        cluster.queue_stub(target).create_queue(request).await.expect("the target takes writes at once");
        let status = cluster.status_of(target).await.expect("target status");
        assert_eq!(status.leader_id, Some(target), "answered before the target led: {status:?}");
        leader = target;
    }
}

/// A transfer to a voter that is down cannot finish: the leader says so
/// (it used to answer OK), and an election among the others gives the
/// cluster a leader that takes writes.
#[tokio::test(flavor = "multi_thread")]
async fn a_transfer_to_a_voter_that_is_down_fails_and_the_cluster_keeps_going() {
    let mut cluster = Cluster::start("transfer-down", 3, Options::default()).await;
    let leader = cluster.leader_id().await;
    let down = cluster.running_ids().into_iter().find(|id| *id != leader).expect("a follower");
    cluster.kill(down).await;

    let request = proto::TransferLeaderRequest { node_id: down };
    let status = cluster.cluster_stub(leader).transfer_leader(request).await.expect_err("the target is down");
    assert!(
        matches!(status.code(), tonic::Code::Aborted | tonic::Code::DeadlineExceeded),
        "a failed transfer is ABORTED or DEADLINE_EXCEEDED: {status:?}"
    );
    assert!(status.message().contains(&format!("node {down}")), "the message names the target: {status:?}");
    cluster.client().create_queue("after-failed-transfer", QueueConfig::default()).await.expect("writes go on");
}

/// Destructive and administrative requests leave one audit line each on
/// the node that answered, refused ones too.
#[tokio::test(flavor = "multi_thread")]
async fn admin_and_destructive_requests_are_audited() {
    let mut cluster = Cluster::start("audit", 3, Options::default()).await;
    let leader = cluster.leader_id().await;
    let offset = cluster.log_len(leader);
    let mut stub = cluster.queue_stub(leader);
    stub.create_queue(proto::CreateQueueRequest { queue: "audited".into(), config: None }).await.expect("create");
    stub.purge_queue(proto::PurgeQueueRequest { queue: "audited".into() }).await.expect("purge");
    stub.delete_queue(proto::DeleteQueueRequest { queue: "missing".into() }).await.expect_err("no such queue");
    let log = cluster.log_since(leader, offset);
    let audited: Vec<&str> = log.lines().filter(|line| line.contains("raftq::audit")).collect();
    let has = |parts: &[&str]| audited.iter().any(|line| parts.iter().all(|part| line.contains(part)));
    for expected in [
        &["action=\"create_queue\"", "subject=\"audited\"", "outcome=\"OK\"", "peer=\"127.0.0.1:"][..],
        &["action=\"purge_queue\"", "subject=\"audited\"", "outcome=\"OK\""],
        &["action=\"delete_queue\"", "subject=\"missing\"", "outcome=NotFound"],
    ] {
        assert!(has(expected), "no audit line with {expected:?} in:\n{}", audited.join("\n"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_report_equal_digests_at_equal_applied_index() {
    const QUEUE: &str = "digests";
    const MESSAGES: usize = 300;
    let mut cluster = Cluster::start("digests", 3, Options::default()).await;
    let client = cluster.client();
    client.create_queue(QUEUE, QueueConfig::default()).await.expect("create queue");
    for batch in 0..MESSAGES / 50 {
        let messages = (0..50).map(|i| OutgoingMessage::new(format!("m-{batch}-{i}"))).collect();
        client.publish(QUEUE, messages).await.expect("publish");
    }
    // Receive and ack some (nothing is left leased: no timer keeps ticking).
    let deliveries = client.receive(QUEUE, 100, Duration::from_secs(5), None).await.expect("receive");
    assert!(!deliveries.is_empty());
    for delivery in &deliveries {
        delivery.ack().await.expect("ack");
    }

    let check = client.verify_replicas(WAIT, DigestScan::Full).await.expect("verify replicas");
    let ReplicaCheck::Agree { applied_index, digest, nodes } = check.clone() else {
        panic!("replicas did not agree: {check:?}");
    };
    assert_eq!(nodes.iter().map(|n| n.node_id).collect::<Vec<_>>(), [1, 2, 3]);
    for node in &nodes {
        assert_eq!(node.full_digest.as_ref(), Some(&digest), "node {}: a full recount matches", node.node_id);
    }
    assert_eq!(digest.len(), 32, "a 16-byte digest in hex: {digest}");
    assert!(applied_index > MESSAGES as u64 / 50, "applied index {applied_index}");
    eprintln!("[digests] 3 replicas at applied index {applied_index}: {digest}");

    // The digest belongs to the applied index the node reports for itself.
    let leader = cluster.leader_id().await;
    let own = cluster.self_status(leader).await.expect("leader status");
    assert!(own.last_applied_index >= applied_index, "{own:?}");

    // The leader's status: exact indexes for itself; for the others only
    // how far it replicated to them, never a claim about what they applied.
    let status = cluster.status_of(leader).await.expect("leader status");
    for node in status.nodes.iter().filter(|n| n.node_id != leader) {
        assert_eq!((node.last_applied_index, node.committed_index, node.last_log_index), (0, 0, 0), "{node:?}");
        let matched =
            node.matched_index.unwrap_or_else(|| panic!("leader knows node {}'s matched index", node.node_id));
        assert!(matched >= applied_index, "node {} matched {matched} < {applied_index}", node.node_id);
    }
    assert!(status.digest.is_none(), "no digest unless asked");
}

/// The leader's Status says when each follower last answered it.
#[tokio::test(flavor = "multi_thread")]
async fn the_leaders_status_gives_each_followers_last_contact() {
    let mut cluster = Cluster::start("last-contact", 3, Options::default()).await;
    let leader = cluster.leader_id().await;
    let status = cluster.status_of(leader).await.expect("leader status");
    for node in &status.nodes {
        if node.node_id == leader {
            assert_eq!(node.last_contact_ms, None, "the leader itself");
        } else {
            let ms = node.last_contact_ms.unwrap_or_else(|| panic!("no last contact for {node:?}"));
            assert!(ms < 5_000, "node {} last answered {ms} ms ago", node.node_id);
        }
    }
    let follower = cluster.running_ids().into_iter().find(|id| *id != leader).unwrap();
    let seen_by_follower = cluster.status_of(follower).await.expect("follower status");
    assert!(seen_by_follower.nodes.iter().all(|n| n.last_contact_ms.is_none()), "only a leader knows");
}
