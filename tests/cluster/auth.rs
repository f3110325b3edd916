//! Authentication and permissions on a real cluster: tokens in an auth file,
//! the nodes talking to each other with their peer token, permissions
//! checked before anything reaches the log, and a reloaded file taking
//! effect without a restart.

use raftq_client::{Code, OutgoingMessage, QueueConfig, proto};
use raftq_proto::v1::raft_transport_client::RaftTransportClient;
use raftq_server::auth::{AuthFile, Grant, Permission, Principal, token_hash};

use crate::harness::{AuthOptions, Cluster, Options};

const ADMIN: &str = "rq_test_admin";
const PEER: &str = "rq_test_peer";
const APP: &str = "rq_test_app";
const READER: &str = "rq_test_reader";

/// A principal whose topic grants are its queue grants (same patterns).
fn principal(name: &str, token: &str, queues: Vec<Grant>, admin: bool, peer: bool) -> Principal {
    Principal { name: name.into(), tokens: vec![token_hash(token)], topics: queues.clone(), queues, admin, peer }
}

fn grant(pattern: &str, allow: &[Permission]) -> Grant {
    Grant { pattern: pattern.into(), allow: allow.to_vec() }
}

/// ops (admin, everything), nodes (peer), app (publish and consume on
/// `orders*`), reader (consume on `orders`).
fn auth_file() -> AuthFile {
    use Permission::*;
    AuthFile {
        principals: vec![
            principal("ops", ADMIN, vec![grant("*", &[Publish, Consume, Manage])], true, false),
            principal("nodes", PEER, vec![], false, true),
            principal("app", APP, vec![grant("orders*", &[Publish, Consume])], false, false),
            principal("reader", READER, vec![grant("orders", &[Consume])], false, false),
        ],
    }
}

fn options() -> Options {
    let auth = AuthOptions { file: auth_file(), peer_token: PEER.into(), admin_token: ADMIN.into() };
    Options { auth: Some(auth), ..Options::default() }
}

/// The cluster forms and replicates with auth on (the nodes present their
/// peer token); every request is checked before it reaches the log.
#[tokio::test(flavor = "multi_thread")]
async fn permissions_are_checked_before_anything_reaches_the_log() {
    let mut cluster = Cluster::start("auth-permissions", 3, options()).await;
    let admin = cluster.client();
    admin.create_queue("orders", QueueConfig::default()).await.expect("ops creates orders");
    let app = cluster.client_with_token(Some(APP));
    app.publish("orders", vec![OutgoingMessage::new("one")]).await.expect("app publishes to orders");

    // A token without `publish` on orders: PERMISSION_DENIED naming both,
    // and the queue is unchanged.
    let reader = cluster.client_with_token(Some(READER));
    let denied = reader.publish("orders", vec![OutgoingMessage::new("two")]).await.expect_err("reader may not publish");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let message = denied.to_string();
    assert!(message.contains("publish") && message.contains("orders"), "{message}");
    assert_eq!(admin.get_queue("orders").await.expect("stats").stats.ready, 1, "nothing was published");
    let purge = reader.purge_queue("orders").await.expect_err("reader may not purge");
    assert_eq!(purge.code(), Code::PermissionDenied, "{purge:?}");
    assert_eq!(admin.get_queue("orders").await.expect("stats").stats.ready, 1, "nothing was purged");

    // No token, or an unknown one: UNAUTHENTICATED.
    for token in [None, Some("rq_nobody")] {
        let stranger = cluster.client_with_token(token);
        let refused = stranger.get_queue("orders").await.expect_err("no valid token");
        assert_eq!(refused.code(), Code::Unauthenticated, "{token:?}: {refused:?}");
    }

    // Cluster changes need `admin`.
    let leader = cluster.leader_id().await;
    let mut app_cluster = raftq_proto::v1::cluster_client::ClusterClient::new(cluster.stub_channel(leader, Some(APP)));
    let remove = app_cluster.remove_node(proto::RemoveNodeRequest { node_id: 3 }).await.expect_err("app is no admin");
    assert_eq!(remove.code(), Code::PermissionDenied, "{remove:?}");
    app_cluster.status(proto::StatusRequest::default()).await.expect("any principal may read the status");

    // The peer port's Raft transport takes only the peer token, whatever
    // the payload.
    for (token, code) in [(None, Code::Unauthenticated), (Some(ADMIN), Code::PermissionDenied)] {
        let mut raft = RaftTransportClient::new(cluster.peer_stub(leader, token, None));
        let forged = proto::RaftPayload { format_version: 1, data: b"forged".to_vec().into() };
        let refused = raft.append_entries(forged).await.expect_err("a stranger's AppendEntries");
        assert_eq!(refused.code(), code, "{token:?}: {refused:?}");
    }
    // The client port has no Raft transport at all, even for the peer token.
    let mut raft = RaftTransportClient::new(cluster.stub_channel(leader, Some(PEER)));
    let forged = proto::RaftPayload { format_version: 1, data: b"forged".to_vec().into() };
    let refused = raft.append_entries(forged).await.expect_err("AppendEntries on the client port");
    assert_eq!(refused.code(), Code::Unimplemented, "{refused:?}");

    // The reader consumes; the queue list shows a principal its queues only.
    admin.create_queue("payments", QueueConfig::default()).await.expect("ops creates payments");
    let got = reader.receive("orders", 10, std::time::Duration::ZERO, None).await.expect("reader receives");
    assert_eq!(got.len(), 1);
    reader.ack(&[got[0].receipt.clone()]).await.expect("reader acks");
    let names: Vec<String> = reader.list_queues("").await.expect("list").into_iter().map(|q| q.name).collect();
    assert_eq!(names, ["orders"], "reader sees only orders");
    cluster.assert_running();
}

/// Topic grants are checked like queue grants: app may publish to the
/// `orders*` topics but not manage them; binding needs `manage` on the topic
/// and on the queue; publishing through a topic needs nothing on the bound
/// queues.
#[tokio::test(flavor = "multi_thread")]
async fn topic_permissions_are_checked_before_anything_reaches_the_log() {
    use raftq_client::{Filter, TopicConfig};
    let mut cluster = Cluster::start("auth-topics", 3, options()).await;
    let admin = cluster.client();
    admin.create_queue("audit", QueueConfig::default()).await.expect("ops creates audit");
    let app = cluster.client_with_token(Some(APP));
    let denied = app.create_topic("orders-events", TopicConfig::default()).await.expect_err("app may not manage");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert!(denied.to_string().contains("topic"), "{denied}");
    admin.create_topic("orders-events", TopicConfig::default()).await.expect("ops creates the topic");
    let bind = app.bind("orders-events", "audit", Filter::all()).await.expect_err("app may not bind");
    assert_eq!(bind.code(), Code::PermissionDenied, "{bind:?}");
    admin.bind("orders-events", "audit", Filter::all()).await.expect("ops binds");
    // app has no permission at all on queue audit, yet its topic publish
    // lands there: the binding is the permission.
    app.publish_topic("orders-events", vec![OutgoingMessage::new("x")]).await.expect("app publishes to the topic");
    assert_eq!(admin.get_queue("audit").await.expect("stats").stats.ready, 1);
    let reader = cluster.client_with_token(Some(READER));
    let refused = reader.publish_topic("orders-events", vec![OutgoingMessage::new("y")]).await.expect_err("reader");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert_eq!(admin.get_queue("audit").await.expect("stats").stats.ready, 1, "nothing was published");
    let names: Vec<String> = app.list_topics("").await.expect("list").into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["orders-events"]);
    assert!(reader.list_topics("").await.expect("list").is_empty(), "reader has no topic grant");
    cluster.assert_running();
}

/// A token removed from the auth file stops working once the nodes have
/// read the file again, and a new one starts working, with no restart.
#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_token_stops_working_after_reload_without_a_restart() {
    let mut cluster = Cluster::start("auth-reload", 3, options()).await;
    let pids: Vec<Option<u32>> = cluster.running_ids().into_iter().map(|id| cluster.pid(id)).collect();
    cluster.client().create_queue("orders", QueueConfig::default()).await.expect("create");
    let app = cluster.client_with_token(Some(APP));
    app.publish("orders", vec![OutgoingMessage::new("before")]).await.expect("app publishes");

    // A stream opened with the token: it must end once the token is revoked.
    let leader = cluster.leader_id().await;
    let mut consumer = raftq_proto::v1::queue_client::QueueClient::new(cluster.stub_channel(leader, Some(APP)));
    let subscribe = proto::SubscribeRequest { queue: "orders".into(), prefetch: 1, lease_ms: None };
    let mut stream = consumer.subscribe(subscribe).await.expect("app subscribes").into_inner();
    stream.message().await.expect("a delivery").expect("the stream is open");

    const ROTATED: &str = "rq_test_app_rotated";
    let mut file = auth_file();
    let entry = file.principals.iter_mut().find(|p| p.name == "app").expect("app");
    entry.tokens = vec![token_hash(ROTATED)];
    let offsets = cluster.log_offsets();
    cluster.write_auth_file(&file);
    cluster.wait_for_log_line(&offsets, "auth file reloaded").await;

    // Every node has it: the old token fails on each one, the new one works.
    for id in cluster.running_ids() {
        // Status: every node answers it itself (no leader redirect).
        let get = |token| {
            let mut stub = raftq_proto::v1::cluster_client::ClusterClient::new(cluster.stub_channel(id, Some(token)));
            async move { stub.status(proto::StatusRequest::default()).await }
        };
        let old = get(APP).await.expect_err("the revoked token");
        assert_eq!(old.code(), Code::Unauthenticated, "node {id}: {old:?}");
        get(ROTATED).await.unwrap_or_else(|e| panic!("node {id} refuses the new token: {e:?}"));
    }
    let rotated = cluster.client_with_token(Some(ROTATED));
    rotated.publish("orders", vec![OutgoingMessage::new("new token")]).await.expect("the new token publishes");
    let refused = app.publish("orders", vec![OutgoingMessage::new("old token")]).await.expect_err("revoked");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let now: Vec<Option<u32>> = cluster.running_ids().into_iter().map(|id| cluster.pid(id)).collect();
    assert_eq!(pids, now, "no node restarted");
    // The open stream ended with UNAUTHENTICATED (it asks again before each
    // receive, at least every second).
    let ended = tokio::time::timeout(crate::harness::WAIT, async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the revoked token's stream ends");
    let status = ended.expect_err("ended with an error");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    // A file that fails its checks is refused: the policy in force stays.
    let offsets = cluster.log_offsets();
    cluster.write_auth_file_bytes(b"{ not json");
    cluster.wait_for_log_line(&offsets, "auth file refused").await;
    rotated.publish("orders", vec![OutgoingMessage::new("after a bad file")]).await.expect("policy kept");
    cluster.assert_running();
}

/// PublishStream and Consume check each request's queue with the stream's
/// token: a request the principal may not make is refused alone, with
/// PERMISSION_DENIED, and nothing reaches the log.
#[tokio::test(flavor = "multi_thread")]
async fn streams_check_the_permission_of_every_request() {
    let mut cluster = Cluster::start("auth-streams", 3, options()).await;
    let admin = cluster.client();
    admin.create_queue("orders", QueueConfig::default()).await.expect("ops creates orders");
    admin.create_queue("audit", QueueConfig::default()).await.expect("ops creates audit");

    let app = cluster.client_with_token(Some(APP)).publish_stream();
    app.publish("orders", vec![OutgoingMessage::new("one")]).await.expect("app publishes to orders");
    let denied = app.publish("audit", vec![OutgoingMessage::new("x")]).await.expect_err("app has nothing on audit");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    app.publish("orders", vec![OutgoingMessage::new("two")]).await.expect("the same stream goes on");
    let reader = cluster.client_with_token(Some(READER));
    let denied = reader.publish_stream().publish("orders", vec![OutgoingMessage::new("y")]).await.expect_err("reader");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert_eq!(admin.get_queue("audit").await.expect("stats").stats.ready, 0);
    assert_eq!(admin.get_queue("orders").await.expect("stats").stats.ready, 2);

    let denied = reader.consume("audit", 1, None).await.expect_err("reader may not consume audit");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let mut stream = reader.consume("orders", 1, None).await.expect("reader consumes orders");
    let delivery = stream.next().await.expect("open").expect("a delivery");
    assert_eq!(stream.settler().ack(&[delivery.receipt]).await.expect("ack on the stream"), 1);
    cluster.assert_running();
}
