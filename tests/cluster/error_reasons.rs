//! The error table in docs/errors.md, walked: it lists exactly the reasons
//! of the proto's `ErrorReason`, and every reason is provoked over real
//! gRPC by a cluster test (this file, `errors.rs`, `disk.rs`) or named
//! below with the unit test that provokes it where a cluster cannot be made
//! to (an overloaded proposal queue, a failing disk, ...).

use std::collections::BTreeSet;
use std::time::Duration;

use raftq_client::{Code, proto};
use raftq_server::auth::{AuthFile, Grant, Permission, Principal, token_hash};
use tonic_types::StatusExt;

use crate::harness::{AuthOptions, Cluster, Options};

/// Reasons no cluster test provokes, each with the test that does.
const PROVOKED_ELSEWHERE: [(&str, &str); 7] = [
    // openraft keeps a follower's leader across a lost quorum and a restart
    // (it is in the persisted vote), so a running cluster says NOT_LEADER
    // naming the last leader; NO_LEADER comes before a first election.
    ("NO_LEADER", "crates/server/src/error.rs not_leader_keeps_the_plain_hint_and_adds_the_reason"),
    ("OVERLOADED", "crates/server/src/error.rs an_overload_says_when_to_retry"),
    ("NODE_STOPPED", "crates/server/src/error.rs stopped_nodes_doubtful_writes_and_store_faults_have_reasons"),
    ("OUTCOME_UNKNOWN", "crates/server/src/error.rs stopped_nodes_doubtful_writes_and_store_faults_have_reasons"),
    ("STORE_FAULT", "crates/server/src/error.rs stopped_nodes_doubtful_writes_and_store_faults_have_reasons"),
    (
        "UNSUPPORTED_FORMAT",
        "crates/storage/src/tests/machine.rs unknown_payload_format_is_rejected_alike_without_a_panic",
    ),
    ("QUEUE_LIMIT_REACHED", "crates/core/src/tests.rs queue_count_is_bounded (10,000 queues)"),
];

fn reason_of(status: &tonic::Status) -> String {
    status.get_details_error_info().map(|i| i.reason).unwrap_or_else(|| panic!("no ErrorInfo on {status:?}"))
}

#[test]
fn the_docs_error_table_lists_every_reason_and_each_is_provoked() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let docs = std::fs::read_to_string(format!("{root}/docs/errors.md")).expect("docs/errors.md");
    let documented: BTreeSet<String> = docs
        .lines()
        .filter_map(|line| line.strip_prefix("| `")?.split_once('`').map(|(name, _)| name.to_owned()))
        .filter(|name| name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect();
    let proto: BTreeSet<String> = (1..)
        .map_while(|i| raftq_proto::v1::ErrorReason::try_from(i).ok())
        .map(|r| r.as_str_name().to_owned())
        .collect();
    assert_eq!(documented, proto, "docs/errors.md's reason table and errors.proto disagree");

    let mut sources = String::new();
    for entry in std::fs::read_dir(format!("{root}/tests/cluster")).expect("tests/cluster") {
        let path = entry.expect("entry").path();
        if path.file_name().is_some_and(|n| n != "error_reasons.rs") {
            sources += &std::fs::read_to_string(&path).expect("read a test");
        }
    }
    // This file from its first function on: the list above names reasons
    // without provoking them.
    let own = std::fs::read_to_string(format!("{root}/tests/cluster/error_reasons.rs")).expect("this file");
    sources += &own[own.find("fn reason_of").expect("reason_of")..];
    let elsewhere: BTreeSet<&str> = PROVOKED_ELSEWHERE.iter().map(|(r, _)| *r).collect();
    for reason in &proto {
        let camel: String = reason.split('_').map(|w| w[..1].to_owned() + &w[1..].to_lowercase()).collect();
        let provoked = sources.contains(&format!("\"{reason}\"")) || sources.contains(&format!("ErrorReason::{camel}"));
        assert!(
            provoked || elsewhere.contains(reason.as_str()),
            "no cluster test provokes {reason} and none is named for it"
        );
        assert!(!(provoked && elsewhere.contains(reason.as_str())), "{reason} is provoked here: drop it from the list");
    }
}

/// LEASE_EXPIRED, REQUEST_TOO_LARGE, NODE_NOT_FOUND and
/// MEMBERSHIP_CHANGE_REFUSED through raw stubs.
#[tokio::test(flavor = "multi_thread")]
async fn leases_sizes_and_members_have_reasons() {
    let mut cluster = Cluster::start("error-reasons-more", 3, Options::default()).await;
    let leader = cluster.leader_id().await;
    let mut queue = cluster.queue_stub(leader);
    queue.create_queue(proto::CreateQueueRequest { queue: "q".into(), config: None }).await.expect("create");
    let one = proto::PublishMessage { body: "x".into(), ..Default::default() };
    let publish = proto::PublishRequest { queue: "q".into(), messages: vec![one] };
    queue.publish(publish).await.expect("publish");

    let lease_ms = 100;
    let receive =
        proto::ReceiveRequest { queue: "q".into(), max_messages: 1, lease_ms: Some(lease_ms), wait_ms: 5_000 };
    let delivery = queue.receive(receive).await.expect("receive").into_inner().deliveries.remove(0);
    // The lease ending is the behaviour under test: wait past its deadline.
    tokio::time::sleep(Duration::from_millis(lease_ms * 3)).await;
    let ack = proto::AckRequest { receipts: vec![delivery.receipt.expect("receipt")] };
    let refused = queue.ack(ack).await.expect_err("ack after the lease");
    assert_eq!((refused.code(), reason_of(&refused).as_str()), (Code::FailedPrecondition, "LEASE_EXPIRED"));

    // 5 x 900 KiB: each under the 1 MiB message limit, 4.4 MiB together.
    let big = proto::PublishMessage { body: vec![0u8; 900 << 10].into(), ..Default::default() };
    let publish = proto::PublishRequest { queue: "q".into(), messages: vec![big; 5] };
    let refused = queue.publish(publish).await.expect_err("over 4 MiB in one request");
    assert_eq!((refused.code(), reason_of(&refused).as_str()), (Code::ResourceExhausted, "REQUEST_TOO_LARGE"));
    let info = refused.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.metadata.get("limit").map(String::as_str), Some("publish_bytes"));

    let mut admin = cluster.cluster_stub(leader);
    let refused = admin.remove_node(proto::RemoveNodeRequest { node_id: 9 }).await.expect_err("no node 9");
    assert_eq!((refused.code(), reason_of(&refused).as_str()), (Code::NotFound, "NODE_NOT_FOUND"));
    let refused =
        admin.transfer_leader(proto::TransferLeaderRequest { node_id: 9 }).await.expect_err("no node 9 to lead");
    assert_eq!(reason_of(&refused), "NODE_NOT_FOUND");
    // Promoting a node that is no learner: openraft refuses the change.
    let refused = admin.promote_node(proto::PromoteNodeRequest { node_id: 9 }).await.expect_err("not a learner");
    assert_eq!(reason_of(&refused), "MEMBERSHIP_CHANGE_REFUSED", "{refused:?}");
}

/// UNAUTHENTICATED and PERMISSION_DENIED, with auth on.
#[tokio::test(flavor = "multi_thread")]
async fn auth_refusals_have_reasons() {
    const ADMIN: &str = "rq_reasons_admin";
    const PEER: &str = "rq_reasons_peer";
    const READER: &str = "rq_reasons_reader";
    let principal = |name: &str, token: &str, queues, admin, peer| Principal {
        name: name.into(),
        tokens: vec![token_hash(token)],
        queues,
        topics: vec![],
        admin,
        peer,
    };
    let everything =
        Grant { pattern: "*".into(), allow: vec![Permission::Publish, Permission::Consume, Permission::Manage] };
    let read = Grant { pattern: "*".into(), allow: vec![Permission::Consume] };
    let file = AuthFile {
        principals: vec![
            principal("ops", ADMIN, vec![everything], true, false),
            principal("nodes", PEER, vec![], false, true),
            principal("reader", READER, vec![read], false, false),
        ],
    };
    let auth = AuthOptions { file, peer_token: PEER.into(), admin_token: ADMIN.into() };
    let mut cluster = Cluster::start("error-reasons-auth", 3, Options { auth: Some(auth), ..Options::default() }).await;
    let leader = cluster.leader_id().await;
    let request = proto::CreateQueueRequest { queue: "q".into(), config: None };

    let mut stranger = raftq_proto::v1::queue_client::QueueClient::new(cluster.stub_channel(leader, None));
    let refused = stranger.create_queue(request.clone()).await.expect_err("no token");
    assert_eq!((refused.code(), reason_of(&refused).as_str()), (Code::Unauthenticated, "UNAUTHENTICATED"));

    let mut reader = raftq_proto::v1::queue_client::QueueClient::new(cluster.stub_channel(leader, Some(READER)));
    let refused = reader.create_queue(request).await.expect_err("reader may not manage");
    assert_eq!((refused.code(), reason_of(&refused).as_str()), (Code::PermissionDenied, "PERMISSION_DENIED"));
}
