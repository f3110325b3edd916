//! Every error carries a machine-readable reason (`ErrorInfo`, and
//! `BadRequest` / `RetryInfo` where they apply) over real gRPC, and the
//! Rust client exposes it typed.

use std::time::Duration;

use raftq_client::{Code, ErrorReason, OutgoingMessage, QueueConfig, proto};
use tonic_types::StatusExt;

use crate::harness::{Cluster, Options};

#[tokio::test(flavor = "multi_thread")]
async fn errors_carry_stable_reasons() {
    let mut cluster = Cluster::start("error-reasons", 3, Options::default()).await;
    let client = cluster.client();

    let err = client.publish_one("nowhere", OutgoingMessage::new("x")).await.expect_err("no such queue");
    assert_eq!((err.code(), err.reason()), (Code::NotFound, ErrorReason::QueueNotFound), "{err}");
    assert_eq!(err.info("queue"), Some("nowhere"));

    let config = QueueConfig::default().max_length(1);
    client.create_queue("small", config.clone()).await.expect("create");
    let err = client.create_queue("small", config).await.expect_err("taken");
    assert_eq!((err.code(), err.reason()), (Code::AlreadyExists, ErrorReason::QueueExists), "{err}");

    let err = client.create_queue("bad name", QueueConfig::default()).await.expect_err("bad name");
    assert_eq!((err.code(), err.reason()), (Code::InvalidArgument, ErrorReason::InvalidArgument), "{err}");
    assert_eq!(err.info("field"), Some("queue"));

    client.publish_one("small", OutgoingMessage::new("one")).await.expect("first fits");
    let err = client.publish_one("small", OutgoingMessage::new("two")).await.expect_err("full");
    assert_eq!((err.code(), err.reason()), (Code::ResourceExhausted, ErrorReason::QueueFull), "{err}");
    assert_eq!(
        (err.info("limit"), err.info("limit_value"), err.info("queue")),
        (Some("max_length"), Some("1"), Some("small"))
    );
    assert!(!err.is_retryable(), "a full queue is not retried blindly: {err}");

    let big = QueueConfig::default().max_message_bytes(1024);
    client.create_queue("tiny-messages", big).await.expect("create");
    let err = client.publish_one("tiny-messages", OutgoingMessage::new(vec![0u8; 2048])).await.expect_err("too large");
    assert_eq!(err.reason(), ErrorReason::MessageTooLarge, "{err}");
    assert_eq!((err.info("limit"), err.info("limit_value")), (Some("max_message_bytes"), Some("1024")));

    let mut leased = client.receive("small", 1, Duration::from_secs(5), None).await.expect("receive");
    let delivery = leased.remove(0);
    delivery.ack().await.expect("ack");
    let err = delivery.ack().await.expect_err("acked twice");
    assert_eq!((err.code(), err.reason()), (Code::FailedPrecondition, ErrorReason::ReceiptUnknown), "{err}");
    let err = client.inspect("small", delivery.message_id()).await.expect_err("gone");
    assert_eq!(err.reason(), ErrorReason::MessageNotFound, "{err}");

    // A follower names the leader: in the plain trailer and in ErrorInfo,
    // with a zero RetryInfo (retry there at once). Raw stub: the client
    // would follow the hint itself.
    let leader = cluster.leader_id().await;
    let follower = cluster.running_ids().into_iter().find(|&id| id != leader).expect("a follower");
    let mut stub = cluster.queue_stub(follower);
    let status = stub
        .get_queue(proto::GetQueueRequest { queue: "small".into() })
        .await
        .expect_err("a follower does not answer reads");
    assert_eq!(status.code(), Code::Unavailable);
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!((info.domain.as_str(), info.reason.as_str()), ("raftq", "NOT_LEADER"));
    let hint = status.metadata().get(raftq_proto::LEADER_METADATA_KEY).expect("raftq-leader").to_str().unwrap();
    assert_eq!(info.metadata.get("leader").map(String::as_str), Some(hint));
    let retry = status.get_details_retry_info().and_then(|r| r.retry_delay).expect("RetryInfo");
    assert_eq!(retry, Duration::ZERO);

    // Bad input carries a BadRequest field violation naming the field.
    let status = stub
        .receive(proto::ReceiveRequest { queue: "small".into(), max_messages: 0, ..Default::default() })
        .await
        .expect_err("max_messages 0");
    assert_eq!(status.code(), Code::InvalidArgument);
    let bad = status.get_details_bad_request().expect("BadRequest");
    assert_eq!(bad.field_violations[0].field, "max_messages");
}
