//! Proposals become log entries in the order they were queued: a
//! PublishStream's requests, submitted in stream order, get increasing ids.
//! Before the fix the proposer spawned one task per entry, each calling
//! `client_write`; entries formed back to back (a burst larger than one
//! entry holds) could reach Raft in either order, and on tokio's
//! multi-thread scheduler the newest spawned task usually runs first.

mod common;

use std::sync::Arc;

use common::{lead_alone, raft_on};
use raftq_core::{Command, ConfigUpdate, NewMessage, Outcome};
use raftq_server::{COMMANDS_PER_ENTRY_MAX, Node, SystemClock};
use raftq_storage::MemDisk;

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
    let raft = raft_on(MemDisk::new(), "order").await;
    lead_alone(&raft).await;
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
