//! A lease that ended stays ended when the leader changes (G3): its receipt
//! is refused by the new leader and the message is delivered again.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use raftq_client::{Code, MessageState, OutgoingMessage, QueueConfig};
use tokio::time::sleep;

use crate::harness::{Cluster, Options};

/// The lease under test: short, so the test does not wait long for it.
const LEASE: Duration = Duration::from_secs(1);
/// Margin past the lease's deadline before the receipt is used, for the
/// difference between this process's clock reading and the leader's stamp.
const PAST_DEADLINE: Duration = Duration::from_millis(300);
/// Long-poll wait of the test's receives.
const RECEIVE_WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread")]
async fn expired_receipt_rejected_after_leader_change() {
    const QUEUE: &str = "leases";
    let mut cluster = Cluster::start("expired-receipt", 3, Options::default()).await;
    let client = cluster.client();
    client.create_queue(QUEUE, QueueConfig::default()).await.expect("create queue");
    let published = client.publish_one(QUEUE, OutgoingMessage::new("lease-me")).await.expect("publish");

    let mut deliveries = client.receive(QUEUE, 1, RECEIVE_WAIT, Some(LEASE)).await.expect("receive");
    assert_eq!(deliveries.len(), 1, "one message is visible");
    let first = deliveries.remove(0);
    assert_eq!((first.message_id(), first.delivery_count()), (published.message_id, 1));
    let view = client.inspect(QUEUE, published.message_id).await.expect("inspect");
    assert_eq!(view.state, MessageState::Leased);
    assert_eq!(view.lease_expires_at_ms, first.lease_expires_at_ms);

    // Letting the lease run out is the behaviour under test: wait for its
    // deadline on the wall clock (the leader stamps entries with the same
    // machine's clock).
    let deadline = UNIX_EPOCH + Duration::from_millis(first.lease_expires_at_ms) + PAST_DEADLINE;
    if let Ok(left) = deadline.duration_since(SystemTime::now()) {
        sleep(left).await;
    }

    let leader = cluster.leader_id().await;
    cluster.kill(leader).await;
    let new_leader = cluster.wait_for_leader(Some(leader)).await;

    let err = client.ack(std::slice::from_ref(&first.receipt)).await.expect_err("ack with an ended lease");
    assert_eq!(err.code(), Code::FailedPrecondition, "ack on node {new_leader}: {err}");
    assert!(err.message().contains("receipts[0]"), "the error names the receipt: {err}");
    let err = first.extend_lease(Duration::from_secs(30)).await.expect_err("extend an ended lease");
    assert_eq!(err.code(), Code::FailedPrecondition, "extend: {err}");
    let err = first.nack(Some(Duration::ZERO), false, "too late").await.expect_err("nack an ended lease");
    assert_eq!(err.code(), Code::FailedPrecondition, "nack: {err}");

    let mut again = client.receive(QUEUE, 1, RECEIVE_WAIT, None).await.expect("receive after the lease ended");
    assert_eq!(again.len(), 1, "the message is delivered again");
    let second = again.remove(0);
    assert_eq!(
        (second.message_id(), second.delivery_count()),
        (published.message_id, 2),
        "same message, second delivery"
    );
    assert_eq!(second.receipt.delivery_count, 2);
    second.ack().await.expect("ack the live lease");
    let err = client.inspect(QUEUE, published.message_id).await.expect_err("the acked message is gone");
    assert_eq!(err.code(), Code::NotFound, "{err}");
}
