//! Proposals become log entries in the order they were queued: a
//! PublishStream's requests, submitted in stream order, get increasing ids.
//! Before the fix the proposer spawned one task per entry, each calling
//! `client_write`; entries formed back to back (a burst larger than one
//! entry holds) could reach Raft in either order, and on tokio's
//! multi-thread scheduler the newest spawned task usually runs first.

use std::sync::Arc;
use std::time::Duration;

use openraft::Raft;
use raftq_core::{Command, ConfigUpdate, NewMessage, Outcome};
use raftq_raft::RaftSettings;
use raftq_raft::network::{Network, TcpConnector};
use raftq_server::{COMMANDS_PER_ENTRY_MAX, Node, SystemClock};
use raftq_storage::{MemDisk, MemStore};

fn publish(i: usize) -> Command {
    Command::Publish {
        queue: "q".into(),
        messages: vec![NewMessage {
            body: format!("m{i}").into_bytes().into(),
            attributes: Default::default(),
            delay_ms: None,
            idempotency_key: Some(format!("key-{i}")),
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_several_entries_keeps_its_order() {
    let (log_store, machine) = MemStore::open(MemDisk::new()).await.expect("open");
    let config = RaftSettings::default().openraft_config("order").expect("config");
    let raft =
        Raft::new(1, config, Network::new(Arc::new(TcpConnector::default())), log_store, machine).await.expect("raft");
    let peers = [(1, raftq_storage::NodeAddr::new("127.0.0.1:1", "127.0.0.1:2"))].into_iter().collect();
    raftq_raft::bootstrap(&raft, 1, &peers).await.expect("initialize");
    raft.wait(Some(Duration::from_secs(10)))
        .state(openraft::ServerState::Leader, "the single voter leads")
        .await
        .expect("leader");
    let node = Node::new(1, raft, Arc::new(SystemClock));
    node.propose(Command::CreateQueue { name: "q".into(), config: ConfigUpdate::default() }).await.expect("create");

    for round in 0..5 {
        // Several entries' worth, queued without a pause: the proposer forms
        // them back to back.
        let burst = 6 * COMMANDS_PER_ENTRY_MAX;
        let answers: Vec<_> = (0..burst).map(|i| node.submit(publish(round * burst + i)).expect("queued")).collect();
        let mut ids = Vec::with_capacity(burst);
        for answer in answers {
            match answer.await.expect("committed") {
                Outcome::Published(results) => ids.push(results[0].id),
                other => panic!("{other:?}"),
            }
        }
        let out_of_order = ids.windows(2).filter(|w| w[0] >= w[1]).count();
        assert_eq!(out_of_order, 0, "round {round}: ids out of submission order at {out_of_order} places");
    }
}
