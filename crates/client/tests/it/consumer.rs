//! Receive, ack, and the resubscribing consumer.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use raftq_client::{Client, ClientError, Code};

use crate::fake::{Fake, Script, config};

fn ready(ids: &[u64]) -> Vec<(u64, Bytes)> {
    ids.iter().map(|&id| (id, Bytes::from(format!("m{id}")))).collect()
}

#[tokio::test]
async fn receive_then_ack_the_receipts() {
    let node = Fake::start(Script { ready: ready(&[1, 2, 3]), ..Script::default() }).await;
    let client = Client::connect(config(&[&node.addr])).unwrap();
    let deliveries = client.receive("q", 10, Duration::from_millis(100), None).await.unwrap();
    assert_eq!(deliveries.iter().map(|d| d.message_id()).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(deliveries[0].body().as_ref(), b"m1");
    assert_eq!(deliveries[1].receipt.to_string(), "q/2/1");
    let receipts: Vec<_> = deliveries.iter().map(|d| d.receipt.clone()).collect();
    assert_eq!(client.ack(&receipts).await.unwrap(), 3);
    deliveries[0].ack().await.unwrap();
    assert_eq!(node.script().acked.len(), 4);
}

#[tokio::test]
async fn the_consumer_resubscribes_to_the_hinted_leader() {
    let leader = Fake::start(Script { ready: ready(&[3]), ..Script::default() }).await;
    let old = Fake::start(Script {
        ready: ready(&[1, 2]),
        stream_fail_after: Some(2),
        hint: Some(leader.addr.clone()),
        ..Script::default()
    })
    .await;
    let client = Client::connect(config(&[&old.addr])).unwrap();
    let mut consumer = client.subscribe("q", 10, None);
    let mut ids = Vec::new();
    while ids.len() < 3 {
        let delivery = tokio::time::timeout(Duration::from_secs(5), consumer.next()).await.unwrap().unwrap().unwrap();
        ids.push(delivery.message_id());
        if delivery.message_id() == 3 {
            delivery.ack().await.unwrap();
        }
    }
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!((old.calls("subscribe"), leader.calls("subscribe")), (1, 1));
    assert_eq!(leader.script().acked.len(), 1, "acks go to the leader");
}

#[tokio::test]
async fn the_consumer_ends_with_an_error_when_no_node_serves_it() {
    let node = Fake::start(Script { unavailable: usize::MAX, ..Script::default() }).await;
    let client = Client::connect(config(&[&node.addr])).unwrap();
    let mut consumer = client.subscribe("q", 10, Some(Duration::from_secs(5)));
    let err = consumer.next().await.unwrap().unwrap_err();
    assert!(matches!(err, ClientError::RetriesExhausted { .. }), "{err:?}");
    assert_eq!(err.code(), Code::Unavailable);
    assert!(consumer.next().await.is_none(), "ends after the error");
}

#[tokio::test]
async fn a_nack_lost_with_its_consume_stream_is_in_doubt_and_not_sent_again() {
    // The fake applies the nack, then the stream ends with UNAVAILABLE
    // before its answer. That status is about the stream, not the nack,
    // which may have taken effect: a Nack is not safe to repeat, so the
    // error says "in doubt" and no unary Nack follows. It used to read the
    // UNAVAILABLE as "nothing happened" and nack again.
    let node = Fake::start(Script { ready: ready(&[1]), consume_break_on_nack: true, ..Script::default() }).await;
    let client = Client::connect(config(&[&node.addr])).unwrap();
    let mut stream = client.consume("q", 10, None).await.unwrap();
    let delivery = stream.next().await.unwrap().unwrap();
    let err = stream.settler().nack(&delivery.receipt, None, false, "retry later").await.unwrap_err();
    assert!(err.is_ambiguous(), "{err:?}");
    assert_eq!(node.script().nacked, [1], "applied once");
    assert_eq!(node.calls("nack"), 0, "not sent again unary");
}

#[tokio::test]
async fn an_ack_lost_with_its_consume_stream_is_sent_again_unary() {
    // An Ack is safe to repeat: the settle the stream could not answer goes
    // again as the unary call.
    let node = Fake::start(Script { ready: ready(&[1, 2]), consume_break_on_nack: true, ..Script::default() }).await;
    let client = Client::connect(config(&[&node.addr])).unwrap();
    let mut stream = client.consume("q", 10, None).await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    let second = stream.next().await.unwrap().unwrap();
    let settler = stream.settler();
    assert_eq!(settler.ack(std::slice::from_ref(&first.receipt)).await.unwrap(), 1);
    assert!(settler.nack(&second.receipt, None, false, "x").await.is_err());
    // The stream is gone now: this ack goes unary.
    assert_eq!(settler.ack(std::slice::from_ref(&first.receipt)).await.unwrap(), 1);
    assert_eq!(node.calls("ack"), 1);
}
