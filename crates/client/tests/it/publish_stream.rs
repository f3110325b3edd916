//! [`PublishStream`]: many publishes on one stream, and every request the
//! stream does not settle retried unary with its keys.

use std::collections::HashSet;

use raftq_client::{Client, Code, OutgoingMessage};

use crate::fake::{Fake, STREAM_WINDOW, Script, config};

type Published = tokio::task::JoinHandle<Result<Vec<raftq_client::PublishResult>, raftq_client::ClientError>>;

/// `count` one-message publishes ("m0", "m1", …) over `stream`, each in
/// its own task, all started at once.
fn publish_at_once(stream: &raftq_client::PublishStream, count: u32) -> Vec<Published> {
    (0..count)
        .map(|i| {
            let stream = stream.clone();
            tokio::spawn(async move { stream.publish("q", vec![OutgoingMessage::new(format!("m{i}"))]).await })
        })
        .collect()
}

#[tokio::test]
async fn concurrent_publishes_share_one_stream() {
    // More publishes at once than the window holds: the fake does not
    // enforce it, so this checks sharing, not the client's waiting (the
    // server's enforcement is tested in tests/cluster/publish_stream.rs).
    let node = Fake::start(Script::default()).await;
    let client = Client::connect(config(&[&node.addr])).unwrap();
    let tasks = publish_at_once(&client.publish_stream(), STREAM_WINDOW * 4);
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

#[tokio::test]
async fn requests_on_a_stream_ended_by_an_error_are_in_doubt_and_retried_with_their_keys() {
    // The stream ends with a status about the stream (here the window
    // error a server gives a client that overran it) after the request was
    // stored. That status is not the request's answer: the request may
    // have committed, so it goes again unary with its keys and is answered
    // as a duplicate. It used to be returned as the request's final error.
    for code in [Code::ResourceExhausted, Code::Internal, Code::FailedPrecondition] {
        let node =
            Fake::start(Script { stream_break_after: Some(0), stream_break_code: Some(code), ..Script::default() })
                .await;
        let client = Client::connect(config(&[&node.addr])).unwrap();
        let results = client.publish_stream().publish("q", vec![OutgoingMessage::new("x")]).await.unwrap();
        assert_eq!((results[0].message_id, results[0].duplicate), (1, true), "{code:?}");
        assert_eq!(node.script().ready.len(), 1, "{code:?}: stored once");
        assert_eq!(node.calls("publish"), 1, "{code:?}: retried unary");
    }
}

#[tokio::test]
async fn the_client_keeps_to_the_window_the_server_grants() {
    // A window of 4 and answers held: the client sends 4 requests and
    // waits. The fake ends the stream if a fifth arrives while 4 are
    // unanswered, and the test also checks none arrives for a while.
    let node = Fake::start(Script { stream_window: 4, stream_hold: true, ..Script::default() }).await;
    let client = Client::connect(config(&[&node.addr])).unwrap();
    let tasks = publish_at_once(&client.publish_stream(), 12);
    node.stream_requests_seen(4).await;
    let fifth = tokio::time::timeout(std::time::Duration::from_millis(300), node.stream_requests_seen(5)).await;
    assert!(fifth.is_err(), "a fifth request was sent with the window full");
    node.release();
    for task in tasks {
        assert!(!task.await.unwrap().unwrap()[0].duplicate);
    }
    assert!(!node.script().window_overrun);
    assert_eq!(node.calls("publish_stream_request"), 12);
    assert_eq!(node.calls("publish"), 0, "nothing fell back to unary");
}

#[tokio::test]
async fn waiting_for_the_window_is_not_a_timeout() {
    // A busy node: a window of 1, each answer after 200 ms, and a request
    // timeout of 500 ms (fake::config). The fifth publish waits ~800 ms
    // for the window; that is back-pressure, not a node that stopped
    // answering, so the session must not break and fall back to unary.
    let node = Fake::start(Script {
        stream_window: 1,
        stream_answer_delay: std::time::Duration::from_millis(200),
        ..Script::default()
    })
    .await;
    let client = Client::connect(config(&[&node.addr])).unwrap();
    let tasks = publish_at_once(&client.publish_stream(), 5);
    for task in tasks {
        assert!(!task.await.unwrap().unwrap()[0].duplicate);
    }
    assert_eq!(node.calls("publish"), 0, "nothing fell back to unary");
    assert_eq!(node.calls("publish_stream"), 1, "one session throughout");
}

#[tokio::test]
async fn a_node_without_publish_stream_is_published_to_unary() {
    let node = Fake::start(Script { stream_unimplemented: true, ..Script::default() }).await;
    let client = Client::connect(config(&[&node.addr])).unwrap();
    let stream = client.publish_stream();
    for i in 0..3 {
        let results = stream.publish("q", vec![OutgoingMessage::new(format!("m{i}"))]).await.unwrap();
        assert_eq!(results[0].message_id, i + 1);
    }
    assert_eq!(node.calls("publish_stream"), 1, "asked once");
    assert_eq!(node.calls("publish"), 3);
}
