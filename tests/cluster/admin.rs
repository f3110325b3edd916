//! Cluster administration: leadership transfer to the node that already
//! leads.

use std::time::Duration;

use raftq_client::proto;
use tokio::time::Instant;

use crate::harness::{Cluster, Options};

/// How long the leader is watched after a transfer to itself: well past an
/// election timeout (500 ms) plus the ~1.5 s a stalled transfer took.
const WATCH_AFTER_TRANSFER: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread")]
async fn transfer_to_the_current_leader_is_a_no_op() {
    let mut cluster = Cluster::start("transfer-self", 3, Options::default()).await;
    let leader = cluster.leader_id().await;
    let term = cluster.status_of(leader).await.expect("leader status").term;

    let request = proto::TransferLeaderRequest { to_node_id: leader };
    cluster.cluster_stub(leader).transfer_leader(request).await.expect("transfer to the leader itself is OK");

    // Writes go straight to the leader with a raw stub (no retries, no hint
    // following): each must succeed at once, and leadership must not move.
    let mut stub = cluster.queue_stub(leader);
    let watch_until = Instant::now() + WATCH_AFTER_TRANSFER;
    let mut writes = 0;
    while Instant::now() < watch_until {
        let request = proto::CreateQueueRequest { name: format!("after-transfer-{writes}"), config: None };
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
