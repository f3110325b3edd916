//! One node serving on loopback over the in-memory store:
//! - the disk space guard: below the reserve, publishes and queue creation
//!   are refused with RESOURCE_EXHAUSTED naming the disk and nothing is
//!   stored, while receive and ack (which free space) keep working; once
//!   space returns, publishing resumes. Before the guard a full disk failed
//!   a RocksDB write and stopped the node.
//! - snapshots by bytes: large entries trigger a snapshot long before the
//!   entry count does. Before, only the count did.
//! - missing and deleted queues: Subscribe to a missing queue fails as a
//!   call (before: an OK stream whose first item was NOT_FOUND); a long poll
//!   on a queue deleted while it waits answers NOT_FOUND at once (before: OK
//!   and nothing, after its whole wait); inspecting an unknown id says what
//!   absence can mean.
//! - an idle Subscribe stream writes nothing to the log, and still delivers
//!   a message published later at once. Before, it proposed an empty
//!   Receive (a log entry, fsynced) every second.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use raftq_proto::v1::cluster_client::ClusterClient;
use raftq_proto::v1::queue_client::QueueClient;
use raftq_proto::v1::{
    AckRequest, CreateQueueRequest, DeleteQueueRequest, GetQueueRequest, InspectRequest, PublishMessage,
    PublishRequest, ReceiveRequest, StatusRequest, SubscribeRequest,
};
use raftq_raft::RaftSettings;
use raftq_raft::network::TcpConnector;
use raftq_server::{DiskGuard, DiskSpace, Listeners, ServerConfig, SystemClock};
use raftq_storage::{MemDisk, MemStore, NodeAddr};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::Code;
use tonic::transport::Channel;

const MIB: u64 = 1 << 20;

/// Free space the test sets.
#[derive(Debug, Default)]
struct FakeSpace(AtomicU64);

impl DiskSpace for FakeSpace {
    fn available_bytes(&self) -> io::Result<u64> {
        Ok(self.0.load(Ordering::SeqCst))
    }
}

fn publish(body: &str) -> PublishRequest {
    PublishRequest {
        queue: "jobs".into(),
        messages: vec![PublishMessage { body: body.as_bytes().to_vec().into(), ..Default::default() }],
    }
}

async fn depth(client: &mut QueueClient<Channel>) -> u64 {
    let info = client.get_queue(GetQueueRequest { queue: "jobs".into() }).await.expect("get queue").into_inner();
    info.queue.and_then(|q| q.stats).map_or(0, |s| s.ready)
}

/// Publishes until the answer is what `wanted` accepts; the guard looks at
/// the disk once a second, so the change shows within a few looks.
async fn publish_until(
    client: &mut QueueClient<Channel>,
    body: &str,
    wanted: impl Fn(&Result<tonic::Response<raftq_proto::v1::PublishResponse>, tonic::Status>) -> bool,
) -> Result<tonic::Response<raftq_proto::v1::PublishResponse>, tonic::Status> {
    let deadline = tokio::time::Instant::now() + 10 * raftq_server::DISK_CHECK_PERIOD;
    loop {
        let answer = client.publish(publish(body)).await;
        if wanted(&answer) || tokio::time::Instant::now() >= deadline {
            return answer;
        }
        tokio::time::sleep(raftq_server::DISK_CHECK_PERIOD / 4).await;
    }
}

/// Starts a single-voter node with `config` (its peers filled in) and
/// returns a client once it accepts a write (creating queue "jobs").
async fn start(mut config: ServerConfig) -> (String, QueueClient<Channel>) {
    let (log_store, machine) = MemStore::open(MemDisk::new()).await.expect("open");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let peer_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let peer_addr = peer_listener.local_addr().expect("addr").to_string();
    config.peers = [(config.node_id, NodeAddr::new(addr.clone(), peer_addr))].into_iter().collect();
    tokio::spawn(raftq_server::serve(
        config,
        log_store,
        machine,
        Listeners { client: TcpListenerStream::new(listener), peer: TcpListenerStream::new(peer_listener) },
        Arc::new(TcpConnector::default()),
        Arc::new(SystemClock),
        std::future::pending(),
    ));
    let mut client = loop {
        if let Ok(client) = QueueClient::connect(format!("http://{addr}")).await {
            break client;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut created = false;
    for _ in 0..250 {
        if client.create_queue(CreateQueueRequest { queue: "jobs".into(), config: None }).await.is_ok() {
            created = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(created, "the single-node cluster never accepted a write");
    (addr, client)
}

fn config(raft: RaftSettings, disk: Option<DiskGuard>) -> ServerConfig {
    ServerConfig {
        node_id: 1,
        peers: Default::default(),
        raft,
        cluster_name: "single-node-test".into(),
        limits: Default::default(),
        auth: None,
        peer_token: None,
        peer_identity: false,
        snapshot_spool: raftq_server::SnapshotSpool::Memory,
        disk,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_disk_refuses_publishes_but_not_acks_and_recovers() {
    let space = Arc::new(FakeSpace(AtomicU64::new(1024 * MIB)));
    let guard = DiskGuard { space: space.clone(), reserve_bytes: 100 * MIB };
    let (_, mut client) = start(config(RaftSettings::default(), Some(guard))).await;
    client.publish(publish("before")).await.expect("publish with space");

    space.0.store(10 * MIB, Ordering::SeqCst);
    let refused = publish_until(&mut client, "refused", |a| a.is_err()).await.expect_err("publish refused");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("disk space low on node 1"), "{}", refused.message());
    assert!(refused.metadata().get(raftq_proto::RETRY_AFTER_MS_METADATA_KEY).is_some(), "nothing was proposed");
    let create = client.create_queue(CreateQueueRequest { queue: "more".into(), config: None }).await;
    assert_eq!(create.expect_err("create refused").code(), Code::ResourceExhausted);
    // Publishes accepted before the watch saw the low disk are stored; a
    // refused one adds nothing.
    let stored = depth(&mut client).await;
    let again = client.publish(publish("refused again")).await.expect_err("still refused");
    assert_eq!(again.code(), Code::ResourceExhausted);
    assert_eq!(depth(&mut client).await, stored, "a refused publish stored nothing");

    // Consumers can still drain: receive and ack go through.
    let received = client
        .receive(ReceiveRequest { queue: "jobs".into(), max_messages: 100, lease_ms: None, wait_ms: 0 })
        .await
        .expect("receive on a low disk")
        .into_inner();
    assert_eq!(received.deliveries.len() as u64, stored);
    let receipts = received.deliveries.into_iter().filter_map(|d| d.receipt).collect();
    let acked = client.ack(AckRequest { receipts }).await.expect("ack on a low disk").into_inner();
    assert_eq!(acked.acked as u64, stored);

    space.0.store(1024 * MIB, Ordering::SeqCst);
    publish_until(&mut client, "after", |a| a.is_ok()).await.expect("publishing resumes when space returns");
    assert_eq!(depth(&mut client).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_entries_trigger_a_snapshot_before_the_entry_count_does() {
    let raft = RaftSettings { snapshot_every_entries: 1_000_000, snapshot_every_bytes: MIB, ..RaftSettings::default() };
    let (addr, mut client) = start(config(raft, None)).await;
    let body = "x".repeat(64 << 10);
    for _ in 0..8 {
        let messages = (0..4).map(|_| PublishMessage { body: body.as_bytes().to_vec().into(), ..Default::default() });
        client.publish(PublishRequest { queue: "jobs".into(), messages: messages.collect() }).await.expect("publish");
    }
    let mut cluster = ClusterClient::connect(format!("http://{addr}")).await.expect("connect");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let snapshot_index = loop {
        let status = cluster.status(StatusRequest::default()).await.expect("status").into_inner();
        let own = status.nodes.iter().find(|n| n.node_id == status.node_id).expect("own status").snapshot_index;
        if own > 0 || tokio::time::Instant::now() >= deadline {
            break own;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(snapshot_index > 0, "2 MiB applied with a 1 MiB bound and no snapshot was built");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_deleted_queues_answer_not_found_at_once() {
    let (_, mut client) = start(config(RaftSettings::default(), None)).await;

    let subscribe = SubscribeRequest { queue: "nope".into(), prefetch: 10, lease_ms: None };
    let refused = client.subscribe(subscribe).await.expect_err("no stream for a missing queue");
    assert_eq!(refused.code(), Code::NotFound, "{refused:?}");

    // A long poll on "jobs" (empty), then the queue is deleted under it.
    let mut poller = client.clone();
    let poll = tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let request = ReceiveRequest { queue: "jobs".into(), max_messages: 1, lease_ms: None, wait_ms: 20_000 };
        (poller.receive(request).await, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.delete_queue(DeleteQueueRequest { queue: "jobs".into() }).await.expect("delete");
    let (answer, waited) = poll.await.expect("poll task");
    assert_eq!(answer.expect_err("the queue is gone").code(), Code::NotFound);
    assert!(waited < Duration::from_secs(10), "answered when the queue went, not after the wait: {waited:?}");

    client.create_queue(CreateQueueRequest { queue: "jobs".into(), config: None }).await.expect("create");
    let unknown =
        client.inspect(InspectRequest { queue: "jobs".into(), message_id: 42 }).await.expect_err("no message 42");
    assert_eq!(unknown.code(), Code::NotFound);
    assert!(
        unknown.message().contains("acked") && unknown.message().contains("never existed"),
        "{}",
        unknown.message()
    );
}

/// The index of the node's last log entry, as it reports it.
async fn last_log_index(addr: &str) -> u64 {
    let mut cluster = ClusterClient::connect(format!("http://{addr}")).await.expect("connect");
    let status = cluster.status(StatusRequest::default()).await.expect("status").into_inner();
    status.nodes.iter().find(|n| n.node_id == status.node_id).expect("own status").last_log_index
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_subscription_writes_nothing_and_still_delivers_at_once() {
    let (addr, mut client) = start(config(RaftSettings::default(), None)).await;
    let subscribe = SubscribeRequest { queue: "jobs".into(), prefetch: 10, lease_ms: None };
    let mut stream = client.subscribe(subscribe).await.expect("subscribe").into_inner();
    // The stream's delivery loop makes one (empty) receive of its own,
    // which may land after `before`; after that an idle stream must not
    // propose (it did every second: 3 or more entries in 3.5 s). The idle
    // leader's time heartbeat (a Tick 2 s after its last entry) adds one
    // entry after that receive, or two if the receive landed before
    // `before`: 2 at most either way. Three idle checks' worth of waiting is
    // the behaviour under test, so it is a sleep.
    let before = last_log_index(&addr).await;
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let after = last_log_index(&addr).await;
    assert!(after - before <= 2, "an idle subscription wrote {} log entries in 3.5 s", after - before);
    let started = tokio::time::Instant::now();
    client.publish(publish("wake up")).await.expect("publish");
    let delivered = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("delivered within 5 s")
        .expect("stream ok")
        .expect("a delivery");
    let body = delivered.delivery.and_then(|d| d.message).map(|m| m.body).unwrap_or_default();
    assert_eq!(&body[..], b"wake up");
    assert!(started.elapsed() < Duration::from_secs(1), "delivered {:?} after the publish", started.elapsed());
}
