//! [`PublishStream`]: many publishes on one stream, and every request the
//! stream does not settle retried unary with its keys.

use std::collections::HashSet;

use raftq_client::{Client, Code, OutgoingMessage};

use crate::fake::{Fake, STREAM_WINDOW, Script, config};

#[tokio::test]
async fn concurrent_publishes_share_one_stream() {
    // More publishes at once than the window holds: the fake does not
    // enforce it, so this checks sharing, not the client's waiting (the
    // server's enforcement is tested in tests/cluster/publish_stream.rs).
    let node = Fake::start(Script::default()).await;
    let client = Client::connect(config(&[&node.addr])).unwrap();
    let stream = client.publish_stream();
    let tasks: Vec<_> = (0..STREAM_WINDOW * 4)
        .map(|i| {
            let stream = stream.clone();
            tokio::spawn(async move { stream.publish("q", vec![OutgoingMessage::new(format!("m{i}"))]).await })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in tasks {
        let results = task.await.unwrap().unwrap();
        assert!(!results[0].duplicate);
        assert!(ids.insert(results[0].message_id));
    }
    assert_eq!(ids.len(), (STREAM_WINDOW * 4) as usize);
    assert_eq!(node.calls("publish_stream"), 1, "one stream for all");
    assert_eq!(node.calls("publish"), 0, "nothing fell back to unary");
}

#[tokio::test]
async fn a_request_lost_with_a_broken_stream_is_retried_unary_and_stored_once() {
    // The third request is stored, then the stream breaks before its answer.
    let node = Fake::start(Script { stream_break_after: Some(2), ..Script::default() }).await;
    let client = Client::connect(config(&[&node.addr])).unwrap();
    let stream = client.publish_stream();
    let mut ids = Vec::new();
    for i in 0..5 {
        let results = stream.publish("q", vec![OutgoingMessage::new(format!("m{i}"))]).await.unwrap();
        ids.push((results[0].message_id, results[0].duplicate));
    }
    assert_eq!(ids, [(1, false), (2, false), (3, true), (4, false), (5, false)]);
    assert_eq!(node.script().ready.len(), 5, "stored once each");
    assert_eq!(node.calls("publish"), 1, "the unsettled request went unary");
    assert_eq!(node.calls("publish_stream"), 2, "the broken stream was reopened");
}

#[tokio::test]
async fn a_stream_that_cannot_open_fails_the_publish_after_the_open_retries() {
    // UNAVAILABLE from every call: the open fails after its retries, and
    // the publish with it (a unary attempt would fail the same way).
    let node = Fake::start(Script { unavailable: usize::MAX, ..Script::default() }).await;
    let client = Client::connect(config(&[&node.addr])).unwrap();
    let err = client.publish_stream().publish("q", vec![OutgoingMessage::new("x")]).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(node.script().ready.len(), 0);
    assert_eq!(node.calls("publish"), 0);
}
