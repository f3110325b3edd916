//! Bad input gets the documented status, naming the field, changes nothing,
//! and hurts no node (§6), sent with the raw stubs so no client-side check
//! stands in the way.

use std::collections::HashMap;
use std::fmt::Debug;
use std::time::Duration;

use raftq_client::{Code, OutgoingMessage, QueueConfig, proto};
use raftq_proto::v1::queue_client::QueueClient;

use crate::harness::{Cluster, Options, Stub};

/// 1 MiB, the default largest message.
const MIB: usize = 1024 * 1024;
/// Leaders tried for one call before the test gives up.
const LEADER_TRIES: usize = 5;

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_rejected_and_node_keeps_serving() {
    const QUEUE: &str = "bad-input";
    let mut cluster = Cluster::start("bad-input", 3, Options::default()).await;
    let client = cluster.client();
    client.create_queue(QUEUE, QueueConfig::default()).await.expect("create queue");

    let publish =
        |queue: &str, messages: Vec<proto::PublishMessage>| proto::PublishRequest { queue: queue.to_owned(), messages };
    let cases = [
        ("bad queue name", publish("bad name!", vec![body(1)]), Code::InvalidArgument, "queue"),
        ("empty batch", publish(QUEUE, vec![]), Code::InvalidArgument, "messages"),
        ("1,001 messages", publish(QUEUE, vec![body(1); 1_001]), Code::InvalidArgument, "messages"),
        ("5 MiB body", publish(QUEUE, vec![body(5 * MIB)]), Code::ResourceExhausted, "messages[0].body"),
        ("2 MiB body", publish(QUEUE, vec![body(1), body(2 * MIB)]), Code::ResourceExhausted, "messages[1].body"),
        ("4.5 MiB batch", publish(QUEUE, vec![body(MIB - 1024); 5]), Code::ResourceExhausted, "messages"),
        ("empty attribute key", publish(QUEUE, vec![attribute("", "v")]), Code::InvalidArgument, "attributes"),
        (
            "long idempotency key",
            publish(QUEUE, vec![keyed(&"k".repeat(300))]),
            Code::InvalidArgument,
            "idempotency_key",
        ),
        ("unknown queue", publish("no-such-queue", vec![body(1)]), Code::NotFound, "no-such-queue"),
    ];
    for (what, request, code, names) in cases {
        let result = to_leader(&mut cluster, async |mut stub| stub.publish(request.clone()).await).await;
        expect_rejected(what, result, code, names);
    }

    let receive = |queue: &str, max_messages: u32, lease_ms: Option<u64>, wait_ms: u64| proto::ReceiveRequest {
        queue: queue.to_owned(),
        max_messages,
        lease_ms,
        wait_ms,
    };
    let cases = [
        ("max_messages 0", receive(QUEUE, 0, None, 0), Code::InvalidArgument, "max_messages"),
        ("max_messages 1,001", receive(QUEUE, 1_001, None, 0), Code::InvalidArgument, "max_messages"),
        ("wait_ms 60000", receive(QUEUE, 1, None, 60_000), Code::InvalidArgument, "wait_ms"),
        ("lease_ms 1", receive(QUEUE, 1, Some(1), 0), Code::InvalidArgument, "lease_ms"),
        ("receive from unknown queue", receive("no-such-queue", 1, None, 0), Code::NotFound, "no-such-queue"),
    ];
    for (what, request, code, names) in cases {
        let result = to_leader(&mut cluster, async |mut stub| stub.receive(request.clone()).await).await;
        expect_rejected(what, result, code, names);
    }

    let receipt = |message_id: u64| proto::Receipt { queue: QUEUE.to_owned(), message_id, delivery_count: 1 };
    let cases = [
        ("bogus receipt", vec![receipt(999_999_999)], Code::FailedPrecondition, "receipts[0]"),
        ("no receipts", vec![], Code::InvalidArgument, "receipts"),
        ("receipt with id 0", vec![receipt(0)], Code::InvalidArgument, "receipts[0]"),
    ];
    for (what, receipts, code, names) in cases {
        let request = proto::AckRequest { receipts };
        let result = to_leader(&mut cluster, async |mut stub| stub.ack(request.clone()).await).await;
        expect_rejected(what, result, code, names);
    }
    // Past the gRPC message limit: RESOURCE_EXHAUSTED (tonic's own answer,
    // OUT_OF_RANGE, is mapped), before anything is decoded.
    let huge = publish(QUEUE, vec![body(MIB); 20]);
    let result =
        to_leader(&mut cluster, async |stub| stub.max_encoding_message_size(64 * MIB).publish(huge.clone()).await)
            .await;
    expect_rejected("20 MiB request", result, Code::ResourceExhausted, "too large");
    // Bytes that are no protobuf message: INVALID_ARGUMENT, not INTERNAL.
    for path in ["/raftq.v1.Queue/Publish", "/raftq.v1.Queue/Ack", "/raftq.v1.Cluster/Status"] {
        let leader = cluster.leader_id().await;
        let result = raw_call(cluster.stub_channel(leader, None), path, vec![0x0f, 0x00]).await;
        expect_rejected(path, result, Code::InvalidArgument, "decode");
    }
    let create = proto::CreateQueueRequest { queue: "x".repeat(129), config: None };
    let result = to_leader(&mut cluster, async |mut stub| stub.create_queue(create.clone()).await).await;
    expect_rejected("129-byte queue name", result, Code::InvalidArgument, "queue");

    // Nothing above changed anything, and every node still serves.
    let stats = client.get_queue(QUEUE).await.expect("get queue").stats;
    assert_eq!((stats.published_total, stats.ready), (0, 0), "rejected publishes stored something: {stats:?}");
    cluster.assert_running();
    for id in cluster.running_ids() {
        let node = cluster.client_of(id);
        let probe = format!("probe-via-{id}");
        let published = node.publish_one(QUEUE, OutgoingMessage::new(probe.clone())).await.expect("publish");
        let deliveries = node.receive(QUEUE, 1, Duration::from_secs(5), None).await.expect("receive");
        assert_eq!(deliveries.len(), 1, "receive through node {id}");
        assert_eq!(
            (deliveries[0].message_id(), deliveries[0].body().as_ref()),
            (published.message_id, probe.as_bytes())
        );
        deliveries[0].ack().await.expect("ack");
        assert!(cluster.status_of(id).await.is_some(), "node {id} answers Status");
    }
    cluster.assert_running();
}

/// Makes one raw call on the leader's stub. UNAVAILABLE (an election still
/// settling) is retried on the leader of the moment; any other answer is
/// returned.
async fn to_leader<T>(
    cluster: &mut Cluster,
    mut call: impl AsyncFnMut(QueueClient<Stub>) -> Result<tonic::Response<T>, tonic::Status>,
) -> Result<tonic::Response<T>, tonic::Status> {
    let mut last = None;
    for _ in 0..LEADER_TRIES {
        let leader = cluster.leader_id().await;
        match call(cluster.queue_stub(leader)).await {
            Err(status) if status.code() == Code::Unavailable => last = Some(status),
            result => return result,
        }
    }
    panic!("no leader took the call in {LEADER_TRIES} tries; last answer {last:?}");
}

/// Sends `bytes` as the whole request body of `path`, as a broken or
/// hostile client could.
async fn raw_call(
    channel: Stub,
    path: &'static str,
    bytes: Vec<u8>,
) -> Result<tonic::Response<Vec<u8>>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
    grpc.unary(tonic::Request::new(bytes), path, RawCodec).await
}

/// Sends and receives message bodies as they are.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let bytes = bytes::Buf::copy_to_bytes(src, bytes::Buf::remaining(src)).to_vec();
        Ok(Some(bytes))
    }
}

/// Asserts that `result` failed with `code` and a message naming `names`.
fn expect_rejected<T: Debug>(what: &str, result: Result<tonic::Response<T>, tonic::Status>, code: Code, names: &str) {
    let status = match result {
        Ok(response) => panic!("{what}: expected {code:?}, got OK: {:?}", response.get_ref()),
        Err(status) => status,
    };
    assert_eq!(status.code(), code, "{what}: {status:?}");
    assert!(status.message().contains(names), "{what}: {:?} should name {names:?}", status.message());
}

/// A message with a body of `bytes` bytes.
fn body(bytes: usize) -> proto::PublishMessage {
    proto::PublishMessage { body: vec![b'x'; bytes].into(), ..Default::default() }
}

fn attribute(key: &str, value: &str) -> proto::PublishMessage {
    proto::PublishMessage { attributes: HashMap::from([(key.to_owned(), value.to_owned())]), ..body(1) }
}

fn keyed(key: &str) -> proto::PublishMessage {
    proto::PublishMessage { idempotency_key: key.to_owned(), ..body(1) }
}

/// Bounds on connections (§6): past `--max-connections` a new connection
/// is closed at once; a connection that never sends a byte is closed after
/// 10 s, giving its slot back; the node serves throughout.
#[tokio::test(flavor = "multi_thread")]
async fn connections_past_the_limit_or_silent_are_closed() {
    use tokio::io::AsyncReadExt;
    const LIMIT: usize = 4;
    let options = Options { extra_args: vec!["--max-connections".into(), LIMIT.to_string()], ..Options::default() };
    let mut cluster = Cluster::start("conn-limit", 1, options).await;
    let addr = cluster.addr(1);
    // Whether the node closed `stream` within `limit` (EOF or reset). What
    // it sends first (its HTTP/2 settings) is read and ignored.
    async fn closed_within(stream: &mut tokio::net::TcpStream, limit: Duration) -> bool {
        let mut buf = [0u8; 256];
        let closed = async {
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 {
                    return;
                }
            }
        };
        tokio::time::timeout(limit, closed).await.is_ok()
    }
    // The harness holds one connection already; fill the rest and more.
    let mut silent = Vec::new();
    for _ in 0..LIMIT + 2 {
        silent.push(tokio::net::TcpStream::connect(&addr).await.expect("connect"));
    }
    let last = silent.last_mut().expect("one");
    assert!(closed_within(last, Duration::from_secs(2)).await, "a connection past the limit is closed at once");
    // The silent ones are closed by the node after its 10 s first-byte limit.
    let started = std::time::Instant::now();
    for stream in &mut silent {
        assert!(closed_within(stream, Duration::from_secs(20)).await, "a silent connection is closed");
    }
    assert!(started.elapsed() >= Duration::from_secs(5), "not before the first-byte limit");
    // Their slots are free again: a client gets in.
    let client = cluster.client_of(1);
    client.create_queue("after-the-crowd", QueueConfig::default()).await.expect("the node serves");
    cluster.assert_running();
}
