//! The batching publisher.

use std::{collections::HashSet, time::Duration};

use raftq_client::{Client, Code, OutgoingMessage, PublisherConfig};

use crate::fake::{Fake, Script, config};

fn publisher_config(max_batch_messages: usize, max_batch_bytes: usize, linger: Duration) -> PublisherConfig {
    PublisherConfig { max_batch_messages, max_batch_bytes, linger, max_inflight_batches: 2 }
}

#[tokio::test]
async fn batches_hold_at_most_max_batch_messages_and_every_message_gets_its_id() {
    let node = Fake::start(Script::default()).await;
    let client = Client::connect(config(&[&node.addr])).unwrap();
    let publisher = client.publisher("q", publisher_config(100, 4 << 20, Duration::from_millis(20))).unwrap();
    let mut pending = Vec::new();
    for i in 0..250 {
        pending.push(publisher.enqueue(OutgoingMessage::new(format!("m{i}"))).await.unwrap());
    }
    let mut ids = HashSet::new();
    for p in pending {
        assert!(ids.insert(p.await.unwrap()));
    }
    assert_eq!(ids.len(), 250);
    let batches = node.script().publish_keys.clone();
    assert!(batches.iter().all(|b| b.len() <= 100), "{:?}", batches.iter().map(Vec::len).collect::<Vec<_>>());
    let keys: HashSet<&String> = batches.iter().flatten().collect();
    assert_eq!(keys.len(), 250, "one distinct key per message");
}

#[tokio::test]
async fn batches_hold_at_most_max_batch_bytes() {
    let node = Fake::start(Script::default()).await;
    let client = Client::connect(config(&[&node.addr])).unwrap();
    let publisher = client.publisher("q", publisher_config(1000, 250, Duration::from_millis(20))).unwrap();
    let mut pending = Vec::new();
    for _ in 0..10 {
        pending.push(publisher.enqueue(OutgoingMessage::new(vec![7u8; 100])).await.unwrap());
    }
    for p in pending {
        p.await.unwrap();
    }
    let sizes: Vec<usize> = node.script().publish_keys.iter().map(Vec::len).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 10);
    assert!(sizes.iter().all(|&n| n <= 2), "{sizes:?}");
}

#[tokio::test]
async fn a_retried_batch_carries_the_keys_assigned_at_enqueue() {
    // Stored, then rejected on the stream: the unary retry brings the same
    // keys and is answered from the dedup window.
    let node = Fake::start(Script { commit_then_fail: 1, ..Script::default() }).await;
    let client = Client::connect(config(&[&node.addr])).unwrap();
    let publisher = client.publisher("q", publisher_config(10, 4 << 20, Duration::ZERO)).unwrap();
    assert_eq!(publisher.publish(OutgoingMessage::new("x")).await.unwrap(), 1);
    let batches = node.script().publish_keys.clone();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0], batches[1]);
    assert_eq!((node.calls("publish_stream_request"), node.calls("publish")), (1, 1));
    assert_eq!(node.script().ready.len(), 1, "stored once");
}

#[tokio::test]
async fn the_publisher_sends_its_batches_over_one_stream() {
    let node = Fake::start(Script::default()).await;
    let client = Client::connect(config(&[&node.addr])).unwrap();
    let publisher = client.publisher("q", publisher_config(10, 4 << 20, Duration::ZERO)).unwrap();
    let mut pending = Vec::new();
    for i in 0..100 {
        pending.push(publisher.enqueue(OutgoingMessage::new(format!("m{i}"))).await.unwrap());
    }
    for p in pending {
        p.await.unwrap();
    }
    assert_eq!(node.calls("publish_stream"), 1, "one stream opened");
    assert_eq!(node.calls("publish"), 0, "no unary publish");
    assert!(node.calls("publish_stream_request") >= 10);
}

#[tokio::test]
async fn flush_sends_without_waiting_for_linger() {
    let node = Fake::start(Script::default()).await;
    let client = Client::connect(config(&[&node.addr])).unwrap();
    let publisher = client.publisher("q", publisher_config(100, 4 << 20, Duration::from_secs(10))).unwrap();
    let a = publisher.enqueue(OutgoingMessage::new("a")).await.unwrap();
    let b = publisher.enqueue(OutgoingMessage::new("b")).await.unwrap();
    tokio::time::timeout(Duration::from_secs(2), publisher.flush())
        .await
        .expect("flush is not held by linger")
        .unwrap();
    assert_eq!((a.await.unwrap(), b.await.unwrap()), (1, 2));
    assert_eq!(node.script().publish_keys.len(), 1, "one batch");
}

#[tokio::test]
async fn dropping_the_publisher_still_settles_what_was_enqueued() {
    let node = Fake::start(Script::default()).await;
    let client = Client::connect(config(&[&node.addr])).unwrap();
    let publisher = client.publisher("q", publisher_config(100, 4 << 20, Duration::from_secs(10))).unwrap();
    let pending = publisher.enqueue(OutgoingMessage::new("a")).await.unwrap();
    drop(publisher);
    let id = tokio::time::timeout(Duration::from_secs(2), pending).await.expect("not held by linger").unwrap();
    assert_eq!(id, 1);
}

#[tokio::test]
async fn a_failed_batch_fails_each_of_its_messages() {
    let node = Fake::start(Script { unavailable: usize::MAX, ..Script::default() }).await;
    let client = Client::connect(config(&[&node.addr])).unwrap();
    let publisher = client.publisher("q", publisher_config(100, 4 << 20, Duration::from_millis(5))).unwrap();
    let a = publisher.enqueue(OutgoingMessage::new("a")).await.unwrap();
    let b = publisher.enqueue(OutgoingMessage::new("b")).await.unwrap();
    assert_eq!(a.await.unwrap_err().code(), Code::Unavailable);
    assert_eq!(b.await.unwrap_err().code(), Code::Unavailable);
}

#[tokio::test]
async fn invalid_publisher_configs_are_refused() {
    let client = Client::connect(config(&["127.0.0.1:1"])).unwrap();
    let err = client.publisher("q", publisher_config(1001, 1, Duration::ZERO)).unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}
