//! `Queue.Consume` on a real cluster: deliveries and their acks, nacks and
//! lease extensions on one stream, the prefetch window refilled by acks,
//! the stream's leases given back when the client goes away, bad input.

use std::collections::BTreeSet;
use std::time::Duration;

use raftq_client::{Code, NackOutcome, OutgoingMessage, QueueConfig};
use raftq_proto::v1 as proto;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_stream::wrappers::ReceiverStream;

use crate::harness::{Cluster, Options, WAIT};
use crate::workload::body_text;

#[tokio::test(flavor = "multi_thread")]
async fn consume_acks_on_the_stream_and_the_window_refills() {
    const QUEUE: &str = "consume-acks";
    const MESSAGES: usize = 60;
    const PREFETCH: u32 = 5;
    let cluster = Cluster::start("consume-acks", 3, Options::default()).await;
    let client = cluster.client();
    client.create_queue(QUEUE, QueueConfig::default()).await.expect("create queue");
    let bodies: Vec<OutgoingMessage> = (0..MESSAGES).map(|i| OutgoingMessage::new(format!("c-{i}"))).collect();
    client.publish(QUEUE, bodies).await.expect("publish");

    let mut stream = client.consume(QUEUE, PREFETCH, None).await.expect("consume");
    let settler = stream.settler();
    // Only the window arrives until something is settled.
    let mut first = Vec::new();
    for _ in 0..PREFETCH {
        first.push(timeout(WAIT, stream.next()).await.expect("in time").expect("open").expect("delivery"));
    }
    let held = timeout(Duration::from_millis(500), stream.next()).await;
    assert!(held.is_err(), "a delivery past the prefetch window: {held:?}");

    let mut seen = BTreeSet::new();
    let mut pending = first;
    while seen.len() < MESSAGES {
        for delivery in pending.drain(..) {
            assert!(seen.insert(String::from_utf8_lossy(&delivery.message.body).into_owned()), "delivered twice");
            assert_eq!(settler.ack(std::slice::from_ref(&delivery.receipt)).await.expect("ack on the stream"), 1);
        }
        if seen.len() < MESSAGES {
            pending.push(timeout(WAIT, stream.next()).await.expect("refilled").expect("open").expect("delivery"));
        }
    }
    let stats = client.get_queue(QUEUE).await.expect("get queue").stats;
    assert_eq!((stats.ready, stats.leased), (0, 0), "every message acked");

    // A settle the server refuses comes back as the unary call's error.
    let stale = settler.ack(&[raftq_client::Receipt { queue: QUEUE.into(), message_id: 1, delivery_count: 1 }]).await;
    assert_eq!(stale.expect_err("acked already").code(), Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread")]
async fn consume_nacks_extends_and_gives_back_its_leases_when_closed() {
    const QUEUE: &str = "consume-nack";
    let cluster = Cluster::start("consume-nack", 3, Options::default()).await;
    let client = cluster.client();
    client.create_queue(QUEUE, QueueConfig::default()).await.expect("create queue");
    client.publish(QUEUE, vec![OutgoingMessage::new("a"), OutgoingMessage::new("b")]).await.expect("publish");

    // A long lease: only the nack, and the close, can bring them back soon.
    let lease = Duration::from_secs(600);
    let mut stream = client.consume(QUEUE, 2, Some(lease)).await.expect("consume");
    let settler = stream.settler();
    let a = timeout(WAIT, stream.next()).await.expect("in time").expect("open").expect("delivery");
    let b = timeout(WAIT, stream.next()).await.expect("in time").expect("open").expect("delivery");
    let deadline = settler.extend_lease(&b.receipt, Duration::from_secs(900)).await.expect("extend on the stream");
    assert!(deadline > b.lease_expires_at_ms, "extended: {deadline} after {}", b.lease_expires_at_ms);
    let outcome = settler.nack(&a.receipt, Some(Duration::ZERO), false, "try again").await.expect("nack");
    assert!(matches!(outcome, NackOutcome::Redeliver { .. }), "{outcome:?}");
    let again = timeout(WAIT, stream.next()).await.expect("redelivered").expect("open").expect("delivery");
    assert_eq!((again.message.message_id, again.receipt.delivery_count), (a.message.message_id, 2));

    // Gone with both leased: the server gives them back at once.
    drop((stream, settler));
    let start = tokio::time::Instant::now();
    let mut back = BTreeSet::new();
    while back.len() < 2 {
        for delivery in client.receive(QUEUE, 10, Duration::from_secs(5), None).await.expect("receive") {
            back.insert(delivery.message.message_id);
        }
        assert!(start.elapsed() < WAIT, "leases of a closed Consume stream not given back");
    }
    assert_eq!(back, BTreeSet::from([a.message.message_id, b.message.message_id]));
}

#[tokio::test(flavor = "multi_thread")]
async fn consume_refuses_a_stream_that_does_not_start_with_subscribe() {
    let mut cluster = Cluster::start("consume-bad", 3, Options::default()).await;
    cluster.client().create_queue("q", QueueConfig::default()).await.expect("create queue");
    let leader = cluster.leader_id().await;
    let settle = proto::ConsumeSettle { sequence: 1, action: None };
    let (tx, rx) = mpsc::channel(1);
    tx.send(proto::ConsumeRequest { kind: Some(proto::consume_request::Kind::Settle(settle)) }).await.unwrap();
    let refused = cluster.queue_stub(leader).consume(ReceiverStream::new(rx)).await.expect_err("no subscribe");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().starts_with("subscribe:"), "{}", refused.message());

    // A missing queue fails the call itself, as Subscribe does.
    let err = cluster.client().consume("no-such-queue", 1, None).await.expect_err("no queue");
    assert_eq!(err.code(), Code::NotFound);

    // A settle without an action is rejected alone; the stream goes on.
    let (tx, rx) = mpsc::channel(4);
    let subscribe = proto::SubscribeRequest { queue: "q".into(), prefetch: 1, lease_ms: None };
    tx.send(proto::ConsumeRequest { kind: Some(proto::consume_request::Kind::Subscribe(subscribe)) }).await.unwrap();
    let mut answers = cluster.queue_stub(leader).consume(ReceiverStream::new(rx)).await.expect("open").into_inner();
    let empty = proto::ConsumeSettle { sequence: 7, action: None };
    tx.send(proto::ConsumeRequest { kind: Some(proto::consume_request::Kind::Settle(empty)) }).await.unwrap();
    let answer = timeout(WAIT, answers.message()).await.expect("in time").expect("stream").expect("answer");
    let Some(proto::consume_response::Kind::Settled(settled)) = answer.kind else { panic!("{answer:?}") };
    let Some(proto::consume_settled::Result::Rejected(rejected)) = settled.result else { panic!("{settled:?}") };
    assert_eq!((rejected.sequence, rejected.code), (7, Code::InvalidArgument as i32));
    // Closing our side ends the stream with OK.
    drop(tx);
    let end = timeout(WAIT, answers.message()).await.expect("ends in time");
    assert!(matches!(end, Ok(None)), "{end:?}");
}

/// NackBatch and ExtendLeaseBatch settle each entry on its own: a stale
/// receipt fails alone, with the status its single call would get.
#[tokio::test(flavor = "multi_thread")]
async fn batch_nack_and_extend_answer_each_entry() {
    const QUEUE: &str = "batch-settle";
    let cluster = Cluster::start("batch-settle", 3, Options::default()).await;
    let client = cluster.client();
    client.create_queue(QUEUE, QueueConfig::default()).await.expect("create queue");
    let bodies = (0..3).map(|i| OutgoingMessage::new(format!("b-{i}"))).collect();
    client.publish(QUEUE, bodies).await.expect("publish");
    let lease = Some(Duration::from_secs(600));
    let deliveries = client.receive(QUEUE, 3, Duration::from_secs(5), lease).await.expect("receive");
    assert_eq!(deliveries.len(), 3);
    let receipts: Vec<raftq_client::Receipt> = deliveries.iter().map(|d| d.receipt.clone()).collect();
    client.ack(&receipts[..1]).await.expect("ack the first");

    let extended = client.extend_lease_batch(&receipts, Duration::from_secs(900)).await.expect("batch call");
    assert_eq!(extended[0].as_ref().expect_err("acked").code(), Code::FailedPrecondition);
    assert!(extended[1..].iter().all(Result::is_ok), "{extended:?}");

    let nacks: Vec<raftq_client::Nack> = receipts
        .iter()
        .map(|receipt| raftq_client::Nack {
            receipt: receipt.clone(),
            delay: Some(Duration::ZERO),
            dead_letter: false,
            reason: "batch".into(),
        })
        .collect();
    let nacked = client.nack_batch(&nacks).await.expect("batch call");
    // The entry's position names it (the status is the single Nack's).
    assert_eq!(nacked[0].as_ref().expect_err("acked").code(), Code::FailedPrecondition);
    assert!(nacked[1..].iter().all(|r| matches!(r, Ok(NackOutcome::Redeliver { .. }))), "{nacked:?}");
    let again = client.receive(QUEUE, 3, Duration::from_secs(5), None).await.expect("receive again");
    let ids: BTreeSet<u64> = again.iter().map(|d| d.message.message_id).collect();
    assert_eq!(ids, receipts[1..].iter().map(|r| r.message_id).collect::<BTreeSet<_>>());

    let empty = client.nack_batch(&[]).await.expect_err("an empty batch");
    assert_eq!(empty.code(), Code::InvalidArgument);
    assert!(empty.to_string().contains("nacks:"), "{empty}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_consume_stream_delivers_no_more_and_gives_back_what_was_unread() {
    // A worker drops its ConsumeStream but keeps a Settler to finish the
    // message it took. The stream must stop taking messages (before, it
    // went on leasing new ones to no one, up to its prefetch), and the
    // deliveries that arrived but were never read go back at once (before,
    // they waited out their lease, here 120 s), while the taken message
    // keeps its lease and can still be acked on the stream.
    const QUEUE: &str = "consume-drop";
    let cluster = Cluster::start("consume-drop", 3, Options::default()).await;
    let client = cluster.client();
    client.create_queue(QUEUE, QueueConfig::default()).await.expect("create queue");
    let first: Vec<OutgoingMessage> = (0..3).map(|i| OutgoingMessage::new(format!("a-{i}"))).collect();
    client.publish(QUEUE, first).await.expect("publish");

    let mut stream = client.consume(QUEUE, 5, Some(Duration::from_secs(120))).await.expect("consume");
    let taken = timeout(WAIT, stream.next()).await.expect("in time").expect("open").expect("delivery");
    let settler = stream.settler();
    drop(stream);
    let later: Vec<OutgoingMessage> = (0..2).map(|i| OutgoingMessage::new(format!("b-{i}"))).collect();
    client.publish(QUEUE, later).await.expect("publish");

    // Another consumer gets the two unread and the two new, long before
    // the 120 s lease would have ended.
    let mut got = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while got.len() < 4 {
        assert!(tokio::time::Instant::now() < deadline, "only {got:?} came back");
        for delivery in client.receive(QUEUE, 10, Duration::from_secs(1), None).await.expect("receive") {
            assert!(got.insert(body_text(&delivery.message)), "delivered twice");
        }
    }
    let taken_body = body_text(&taken.message);
    assert!(!got.contains(&taken_body), "the taken message was given back: {got:?}");
    assert!(got.contains("b-0") && got.contains("b-1"), "{got:?}");

    // The taken message kept its lease: the settler acks it on the stream.
    assert_eq!(settler.ack(std::slice::from_ref(&taken.receipt)).await.expect("ack"), 1);
    let stats = client.get_queue(QUEUE).await.expect("get queue").stats;
    assert_eq!((stats.ready, stats.leased), (0, 4), "the other consumer's four leases remain");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consume_delivery_settled_outside_the_stream_still_frees_its_slot() {
    // A Consume stream frees a slot at once when a settle on it commits,
    // and finds leases ended otherwise (here a unary Ack) by looking them
    // all up about once a second instead of on every applied entry.
    const QUEUE: &str = "consume-unary-ack";
    let cluster = Cluster::start("consume-unary-ack", 3, Options::default()).await;
    let client = cluster.client();
    client.create_queue(QUEUE, QueueConfig::default()).await.expect("create queue");
    let bodies: Vec<OutgoingMessage> = (0..2).map(|i| OutgoingMessage::new(format!("u-{i}"))).collect();
    client.publish(QUEUE, bodies).await.expect("publish");

    let mut stream = client.consume(QUEUE, 1, None).await.expect("consume");
    let first = timeout(WAIT, stream.next()).await.expect("in time").expect("open").expect("delivery");
    assert_eq!(client.ack(std::slice::from_ref(&first.receipt)).await.expect("unary ack"), 1);
    let second = timeout(WAIT, stream.next()).await.expect("the slot was freed").expect("open").expect("delivery");
    assert_ne!(second.message_id(), first.message_id());
}
