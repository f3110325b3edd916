//! Membership changes online (§4): a new node joins as a learner, catches
//! up, becomes a voter; a follower and then the leader are removed; the
//! cluster serves throughout and reports the membership it has.

use std::collections::BTreeSet;
use std::time::Duration;

use raftq_client::{Client, Member, OutgoingMessage, QueueConfig, proto};

use crate::harness::{Cluster, Options, WAIT, wait_for};
use crate::workload::{body_text, drain};

/// Messages published before the membership changes; they must all
/// survive them.
const MESSAGES: usize = 100;
/// Id of the node that joins.
const NEW_NODE: u64 = 4;

#[tokio::test(flavor = "multi_thread")]
async fn learner_join_promote_and_remove() {
    const QUEUE: &str = "members";
    let mut cluster = Cluster::start("membership", 3, Options::default()).await;
    let client = cluster.client();
    client.create_queue(QUEUE, QueueConfig::default()).await.expect("create queue");
    let messages = (0..MESSAGES).map(|i| OutgoingMessage::new(format!("before-{i}"))).collect();
    client.publish(QUEUE, messages).await.expect("publish");

    // Join: learner, catch up, promote.
    let (addr, peer_addr) = cluster.start_joining_node(NEW_NODE, &[1, 2, 3]);
    let membership = client.add_learner(NEW_NODE, &addr, &peer_addr).await.expect("add learner");
    assert_eq!(ids(&membership.voters), [1, 2, 3]);
    assert_eq!(ids(&membership.learners), [NEW_NODE]);
    let leader = cluster.leader_id().await;
    let target = cluster.self_status(leader).await.expect("leader status").committed_index;
    wait_for(&format!("node {NEW_NODE} to apply up to {target}"), WAIT, async || {
        let status = cluster.self_status(NEW_NODE).await?;
        (status.last_applied_index >= target).then_some(())
    })
    .await;
    let role = cluster.self_status(NEW_NODE).await.expect("new node status").role();
    assert_eq!(role, proto::NodeRole::Learner, "node {NEW_NODE} before promotion");
    let membership = client.promote(NEW_NODE).await.expect("promote");
    assert_eq!(ids(&membership.voters), [1, 2, 3, NEW_NODE]);
    assert!(membership.learners.is_empty(), "{membership:?}");

    // Remove a follower among the original nodes.
    let leader = cluster.leader_id().await;
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).expect("a follower");
    let membership = client.remove_node(follower).await.expect("remove a follower");
    let voters: BTreeSet<u64> = [1, 2, 3, NEW_NODE].into_iter().filter(|id| *id != follower).collect();
    assert_eq!(ids(&membership.voters), Vec::from_iter(voters.iter().copied()));
    cluster.stop(follower).await;
    assert_serves(&cluster.client(), "after-follower-removed").await;
    assert_membership(&cluster, &voters).await;

    // Remove the leader: it steps down once the change commits, and the
    // remaining voters elect one of themselves.
    let client = cluster.client();
    let membership = client.remove_node(leader).await.expect("remove the leader");
    let voters: BTreeSet<u64> = voters.into_iter().filter(|id| *id != leader).collect();
    assert_eq!(ids(&membership.voters), Vec::from_iter(voters.iter().copied()));
    let new_leader = cluster.wait_for_leader(Some(leader)).await;
    assert!(voters.contains(&new_leader), "node {new_leader} leads but is not a voter");
    cluster.stop(leader).await;
    let client = cluster.client();
    assert_serves(&client, "after-leader-removed").await;
    assert_membership(&cluster, &voters).await;
    eprintln!("[membership] removed follower {follower}, then leader {leader}; voters now {voters:?}");

    let drained: BTreeSet<String> = drain(&client, QUEUE).await.iter().map(body_text).collect();
    assert_eq!(drained.len(), MESSAGES, "messages published before the changes");
}

fn ids(members: &[Member]) -> Vec<u64> {
    members.iter().map(|m| m.node_id).collect()
}

/// A publish and a receive work, on a queue of their own.
async fn assert_serves(client: &Client, queue: &str) {
    client.create_queue(queue, QueueConfig::default()).await.expect("create queue");
    let published = client.publish_one(queue, OutgoingMessage::new("probe")).await.expect("publish");
    let deliveries = client.receive(queue, 1, Duration::from_secs(5), None).await.expect("receive");
    assert_eq!(deliveries.iter().map(|d| d.message_id()).collect::<Vec<_>>(), [published.message_id], "{queue}");
    deliveries[0].ack().await.expect("ack");
}

/// The leader reports exactly `voters` as voters and no learners.
async fn assert_membership(cluster: &Cluster, voters: &BTreeSet<u64>) {
    let status = cluster.client().cluster_status().await.expect("cluster status");
    let reported: BTreeSet<u64> = status.nodes.iter().filter(|n| n.voter).map(|n| n.node_id).collect();
    let learners: Vec<u64> = status.nodes.iter().filter(|n| !n.voter).map(|n| n.node_id).collect();
    assert_eq!(&reported, voters, "voters in {status:?}");
    assert!(learners.is_empty(), "learners left: {learners:?}");
    assert!(status.leader_id.is_some_and(|id| voters.contains(&id)), "leader in {status:?}");
}
