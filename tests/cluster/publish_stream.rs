//! `Queue.PublishStream` on a real cluster, through the raw stub: every
//! request answered once, ids in stream order, the window enforced, and a
//! client that goes away mid-stream loses nothing that was confirmed.

use std::collections::{BTreeMap, BTreeSet};

use raftq_client::QueueConfig;
use raftq_proto::v1 as proto;
use raftq_proto::v1::publish_stream_response::Kind;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::Streaming;
use tonic_types::StatusExt;

use crate::harness::{Cluster, Options, WAIT};
use crate::workload::{body_text, drain};

fn request(sequence: u64, queue: &str, body: String) -> proto::PublishStreamRequest {
    let message = proto::PublishMessage { body: body.clone().into(), idempotency_key: body, ..Default::default() };
    proto::PublishStreamRequest { sequence, queue: queue.into(), messages: vec![message] }
}

/// Opens a stream at node `id`; returns the sender, the answers, and the
/// granted window.
async fn open(
    cluster: &Cluster,
    id: u64,
) -> (mpsc::Sender<proto::PublishStreamRequest>, Streaming<proto::PublishStreamResponse>, proto::PublishWindow) {
    let (tx, rx) = mpsc::channel(4096);
    let mut answers = cluster.queue_stub(id).publish_stream(ReceiverStream::new(rx)).await.expect("open").into_inner();
    let first = timeout(WAIT, answers.message()).await.expect("window in time").expect("stream").expect("a message");
    let Some(Kind::Window(window)) = first.kind else { panic!("the first message is not the window: {first:?}") };
    (tx, answers, window)
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_stream_confirms_each_request_once_with_ids_in_stream_order() {
    const QUEUE: &str = "stream-order";
    const REQUESTS: u64 = 600;
    let mut cluster = Cluster::start("stream-order", 3, Options::default()).await;
    let client = cluster.client();
    client.create_queue(QUEUE, QueueConfig::default()).await.expect("create queue");
    let leader = cluster.leader_id().await;

    // A follower refuses to open the stream, naming the leader.
    let follower = cluster.running_ids().into_iter().find(|id| *id != leader).expect("a follower");
    let (_tx, rx) = mpsc::channel(1);
    let refused = cluster.queue_stub(follower).publish_stream(ReceiverStream::new(rx)).await.expect_err("follower");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert_eq!(
        refused.metadata().get("raftq-leader").and_then(|v| v.to_str().ok()),
        Some(cluster.addr(leader).as_str())
    );

    let (tx, mut answers, window) = open(&cluster, leader).await;
    assert!(u64::from(window.requests) >= REQUESTS, "window {window:?}");
    for sequence in 1..=REQUESTS {
        tx.send(request(sequence, QUEUE, format!("m-{sequence}"))).await.expect("send");
    }
    // One request to a queue that does not exist: rejected alone, with the
    // unary status; the others are unaffected.
    tx.send(request(REQUESTS + 1, "no-such-queue", "x".into())).await.expect("send");
    drop(tx);

    let mut ids: BTreeMap<u64, u64> = BTreeMap::new();
    let mut rejected = Vec::new();
    while let Some(answer) = timeout(WAIT, answers.message()).await.expect("answers in time").expect("stream OK") {
        match answer.kind.expect("kind") {
            Kind::Confirm(confirm) => {
                assert_eq!(confirm.results.len(), 1);
                let earlier = ids.insert(confirm.sequence, confirm.results[0].message_id);
                assert!(earlier.is_none(), "sequence {} answered twice", confirm.sequence);
            }
            Kind::Rejected(r) => rejected.push(r),
            Kind::Window(w) => panic!("a second window {w:?}"),
        }
    }
    // The stream ended with OK once our side closed and all was answered.
    assert_eq!(ids.len() as u64, REQUESTS, "every request confirmed");
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!((rejected[0].sequence, rejected[0].code), (REQUESTS + 1, Code::NotFound as i32));
    let by_sequence: Vec<u64> = ids.values().copied().collect();
    assert!(by_sequence.windows(2).all(|w| w[0] < w[1]), "ids do not follow the stream order: {by_sequence:?}");

    let drained: BTreeSet<String> = drain(&client, QUEUE).await.iter().map(body_text).collect();
    assert_eq!(drained.len() as u64, REQUESTS);

    // Through the client: a final rejection is returned as the unary
    // call's error, not retried.
    let err = client
        .publish_stream()
        .publish("no-such-queue", vec![raftq_client::OutgoingMessage::new("x")])
        .await
        .expect_err("no such queue");
    assert_eq!(err.code(), Code::NotFound, "{err}");
}

/// With no majority nothing commits, so requests stay unanswered and the
/// window fills for certain: the request past it ends the stream.
#[tokio::test(flavor = "multi_thread")]
async fn a_publish_stream_sent_past_its_window_is_ended_with_resource_exhausted() {
    const QUEUE: &str = "stream-window";
    let mut cluster = Cluster::start("stream-window", 3, Options::default()).await;
    cluster.client().create_queue(QUEUE, QueueConfig::default()).await.expect("create queue");
    let leader = cluster.leader_id().await;
    let (tx, mut answers, window) = open(&cluster, leader).await;
    for follower in cluster.running_ids().into_iter().filter(|id| *id != leader) {
        cluster.kill(follower).await;
    }
    for sequence in 0..=u64::from(window.requests) {
        tx.send(request(sequence, QUEUE, format!("w-{sequence}"))).await.expect("send");
    }
    let ended = match timeout(WAIT, answers.message()).await.expect("the stream ends in time") {
        Ok(Some(answer)) => panic!("nothing can commit without a majority, yet: {answer:?}"),
        Ok(None) => panic!("the stream ended with OK"),
        Err(status) => status,
    };
    assert_eq!(ended.code(), Code::ResourceExhausted, "{ended:?}");
    assert!(ended.message().starts_with("window:"), "{}", ended.message());
    let info = ended.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "PUBLISH_WINDOW_EXCEEDED");
    assert_eq!(info.metadata.get("limit").map(String::as_str), Some("requests"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_drops_its_publish_stream_loses_nothing_confirmed() {
    const QUEUE: &str = "stream-drop";
    const SENT: u64 = 900;
    let mut cluster = Cluster::start("stream-drop", 3, Options::default()).await;
    let client = cluster.client();
    client.create_queue(QUEUE, QueueConfig::default()).await.expect("create queue");
    let leader = cluster.leader_id().await;
    let (tx, mut answers, _window) = open(&cluster, leader).await;
    for sequence in 0..SENT {
        tx.send(request(sequence, QUEUE, format!("d-{sequence}"))).await.expect("send");
    }
    // Take some confirms, then vanish with the rest in flight.
    let mut confirmed = BTreeMap::new();
    while confirmed.len() < 100 {
        let answer = timeout(WAIT, answers.message()).await.expect("in time").expect("stream").expect("open");
        let Some(Kind::Confirm(confirm)) = answer.kind else { panic!("not a confirm: {answer:?}") };
        confirmed.insert(format!("d-{}", confirm.sequence), confirm.results[0].message_id);
    }
    drop((tx, answers));

    let drained: BTreeMap<String, u64> =
        drain(&client, QUEUE).await.iter().map(|m| (body_text(m), m.message_id)).collect();
    for (body, id) in &confirmed {
        assert_eq!(drained.get(body), Some(id), "{body} was confirmed as {id}");
    }
    assert!(drained.keys().all(|body| body.starts_with("d-")));
    println!("stream-drop: sent={SENT} confirmed={} stored={}", confirmed.len(), drained.len());
}
