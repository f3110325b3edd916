//! A node whose Raft stops on a fatal storage error must stop serving and
//! say so (`serve` returns an error), not keep answering without Raft.
//! Before the fix `serve` never returned and its ticker and health loops
//! spun on the closed metrics watch.

use std::sync::Arc;
use std::time::Duration;

use raftq_proto::v1::CreateQueueRequest;
use raftq_proto::v1::queue_client::QueueClient;
use raftq_raft::RaftSettings;
use raftq_raft::network::TcpConnector;
use raftq_server::{Listeners, ServerConfig, ServerError, SystemClock};
use raftq_storage::{MemDisk, MemStore, NodeAddr};
use tokio_stream::wrappers::TcpListenerStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_returns_an_error_when_raft_dies_of_a_storage_failure() {
    let disk = MemDisk::new();
    let (log_store, machine) = MemStore::open(disk.clone()).await.expect("open");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let peer_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let peer_addr = peer_listener.local_addr().expect("addr").to_string();
    let config = ServerConfig {
        node_id: 1,
        peers: [(1, NodeAddr::new(addr.clone(), peer_addr))].into_iter().collect(),
        raft: RaftSettings::default(),
        cluster_name: "fatal-test".into(),
        limits: Default::default(),
        auth: None,
        peer_token: None,
        peer_identity: false,
        snapshot_spool: raftq_server::SnapshotSpool::Memory,
        disk: None,
    };
    let server = tokio::spawn(raftq_server::serve(
        config,
        log_store,
        machine,
        Listeners { client: TcpListenerStream::new(listener), peer: TcpListenerStream::new(peer_listener) },
        Arc::new(TcpConnector::default()),
        Arc::new(SystemClock),
        std::future::pending(),
    ));

    // The single voter elects itself; a write proves it serves.
    let mut client = loop {
        if let Ok(client) = QueueClient::connect(format!("http://{addr}")).await {
            break client;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let create = |name: &str| CreateQueueRequest { queue: name.into(), config: None };
    let mut created = false;
    for _ in 0..250 {
        if client.create_queue(create("before")).await.is_ok() {
            created = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(created, "the single-node cluster never accepted a write");

    // Power loss under the running store: every later storage call fails,
    // which openraft treats as fatal.
    disk.crash();
    let refused = tokio::time::timeout(Duration::from_secs(10), client.create_queue(create("after"))).await;
    assert!(!matches!(refused, Ok(Ok(_))), "a write was acknowledged after the disk failed");

    let served = tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .expect("serve kept running after Raft stopped")
        .expect("serve panicked");
    match served {
        Err(ServerError::Raft(reason)) => assert!(reason.contains("stopped"), "{reason}"),
        other => panic!("serve should fail with the Raft error, got {other:?}"),
    }
}
