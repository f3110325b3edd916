//! The disk reserve guards the disk of the node that proposes: the leader
//! refuses a publish with DISK_LOW (and a retry hint), while a follower
//! short of disk sends the client to the leader as it always does.

use raftq_client::{Code, proto};
use tonic_types::StatusExt;

use crate::harness::{Cluster, Options};

/// A reserve no disk has: every node is "short of disk" from its first look.
const HUGE_RESERVE_MB: &str = "1000000000";

#[tokio::test(flavor = "multi_thread")]
async fn a_low_disk_refuses_on_the_leader_and_redirects_on_a_follower() {
    let options =
        Options { extra_args: vec!["--min-free-disk-mb".into(), HUGE_RESERVE_MB.into()], ..Options::default() };
    let mut cluster = Cluster::start("disk-low", 3, options).await;
    let leader = cluster.leader_id().await;
    let follower = cluster.running_ids().into_iter().find(|&id| id != leader).expect("a follower");
    let publish = proto::PublishRequest {
        queue: "jobs".into(),
        messages: vec![proto::PublishMessage { body: "x".into(), ..Default::default() }],
    };

    let refused = cluster.queue_stub(follower).publish(publish.clone()).await.expect_err("follower");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    let info = refused.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "NOT_LEADER", "a follower short of disk names the leader: {refused:?}");

    let refused = cluster.queue_stub(leader).publish(publish).await.expect_err("leader");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    let info = refused.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "DISK_LOW");
    assert_eq!(info.metadata.get("limit").map(String::as_str), Some("min_free_disk_bytes"));
    assert!(refused.get_details_retry_info().and_then(|r| r.retry_delay).is_some(), "nothing was proposed: retry");
}
