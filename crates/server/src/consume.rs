//! `Queue.Consume`: Subscribe's deliveries and the settles (Ack, Nack,
//! ExtendLease) on one bidirectional stream.
//!
//! Deliveries come from the same task as Subscribe's ([`subscribe::open`]):
//! the same prefetch window, refilled as acks apply. Settles are the unary
//! calls' commands ([`crate::queue_service::ack_command`] and the others),
//! submitted in the order they arrive and answered as they complete. When
//! the client closes its side, the settles in flight are answered, the
//! delivery task is told to stop, it gives back the stream's unsettled
//! leases, and the stream ends with OK. A `stop` message ends deliveries
//! only: the leases are kept and settles answered until the client closes.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use raftq_proto::v1 as pb;
use raftq_proto::v1::consume_settle::Action;
use raftq_proto::v1::consume_settled::Result as Settled;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use raftq_core::Receipt;

use crate::convert;
use crate::error::invalid;
use crate::node::{Node, QueueMachine};
use crate::publish_stream::{count_answer, rejection};
use crate::queue_service::{ack_command, ack_queues, extend_command, nack_command, nack_response, receipt_queue};
use crate::subscribe::{self, Control, Recheck};

/// Settles one stream has submitted and not yet answered; past this the
/// server reads no more of the stream until some are answered.
pub const SETTLES_IN_FLIGHT_MAX: usize = 1024;

/// May the stream's caller consume from this queue (asked for the
/// subscription and for each receipt's queue; with auth on it also checks
/// that the token is still valid)?
pub type Allowed = Arc<dyn Fn(&str) -> Result<(), Status> + Send + Sync>;

/// A settle's answer, and the receipts it settled (acked or nacked).
type Answer = Pin<Box<dyn Future<Output = (pb::ConsumeSettled, Vec<Receipt>)> + Send>>;

/// Reads the subscription (the first message), makes the first receive
/// (part of the call, as for Subscribe) and starts the delivery and settle
/// tasks.
pub async fn start<SM: QueueMachine>(
    node: Arc<Node<SM>>,
    mut inbound: Streaming<pb::ConsumeRequest>,
    allowed: Allowed,
) -> Result<ReceiverStream<Result<pb::ConsumeResponse, Status>>, Status> {
    let subscription = match inbound.message().await? {
        Some(pb::ConsumeRequest { kind: Some(pb::consume_request::Kind::Subscribe(subscription)) }) => subscription,
        _ => return Err(invalid("subscribe", "the first message of a Consume stream must be a subscribe")),
    };
    allowed(&subscription.queue)?;
    let recheck: Recheck = {
        let (allowed, queue) = (allowed.clone(), subscription.queue.clone());
        Box::new(move || allowed(&queue))
    };
    let control = Arc::new(Control::reporting_settles());
    let wrap = |delivery| pb::ConsumeResponse { kind: Some(pb::consume_response::Kind::Delivery(delivery)) };
    let (tx, rx) =
        subscribe::open(node.clone(), subscription, Some(recheck), wrap, SETTLES_IN_FLIGHT_MAX, control.clone())
            .await?;
    tokio::spawn(settle_all(node, inbound, allowed, tx, control));
    Ok(ReceiverStream::new(rx))
}

/// Answers every settle the client sends until it closes its side (or the
/// stream breaks), then stops the deliveries.
async fn settle_all<SM: QueueMachine>(
    node: Arc<Node<SM>>,
    mut inbound: Streaming<pb::ConsumeRequest>,
    allowed: Allowed,
    tx: mpsc::Sender<Result<pb::ConsumeResponse, Status>>,
    control: Arc<Control>,
) {
    let mut answers: FuturesUnordered<Answer> = FuturesUnordered::new();
    let mut reading = true;
    loop {
        tokio::select! {
            biased;
            Some((settled, receipts)) = answers.next(), if !answers.is_empty() => {
                control.settled(receipts);
                let answer = pb::ConsumeResponse { kind: Some(pb::consume_response::Kind::Settled(settled)) };
                if tx.send(Ok(answer)).await.is_err() {
                    break;
                }
            }
            message = inbound.message(), if reading && answers.len() < SETTLES_IN_FLIGHT_MAX => match message {
                Ok(Some(pb::ConsumeRequest { kind: Some(pb::consume_request::Kind::Settle(settle)) })) => {
                    answers.push(settle_one(&node, &allowed, settle));
                }
                Ok(Some(pb::ConsumeRequest { kind: Some(pb::consume_request::Kind::Stop(pb::ConsumeStop {})) })) => {
                    control.no_more_deliveries.store(true, Ordering::SeqCst);
                }
                Ok(Some(_)) => {
                    let refused = invalid("settle", "every message after the first subscribe must be a settle or a stop");
                    let _ = tx.send(Err(refused)).await;
                    break;
                }
                Ok(None) => reading = false,
                Err(status) => {
                    tracing::debug!(%status, "consume stream: client side ended");
                    break;
                }
            },
            else => break,
        }
    }
    // The delivery task notices within a second, gives back its leases and
    // drops the last sender: the stream then ends.
    control.stop.store(true, Ordering::SeqCst);
}

/// Checks and submits one settle; the future of its answer.
fn settle_one<SM: QueueMachine>(node: &Node<SM>, allowed: &Allowed, settle: pb::ConsumeSettle) -> Answer {
    let sequence = settle.sequence;
    let kind = match &settle.action {
        Some(Action::Ack(_)) => "ack",
        Some(Action::Nack(_)) => "nack",
        Some(Action::ExtendLease(_)) => "extend_lease",
        None => "none",
    };
    // The leases an Ack or Nack ends, if it succeeds.
    let receipts: Vec<Receipt> = match &settle.action {
        Some(Action::Ack(request)) => request.receipts.iter().cloned().map(convert::receipt_of).collect(),
        Some(Action::Nack(request)) => request.receipt.iter().cloned().map(convert::receipt_of).collect(),
        _ => Vec::new(),
    };
    let submitted = match settle.action {
        Some(Action::Ack(request)) => ack_queues(&request)
            .into_iter()
            .try_for_each(|queue| allowed(queue))
            .and_then(|()| node.submit_typed(ack_command(request)))
            .map(|acked| acked.map(|r| r.map(|acked| Settled::Ack(pb::AckResponse { acked }))).boxed()),
        Some(Action::Nack(request)) => allowed(receipt_queue(request.receipt.as_ref()))
            .and_then(|()| node.submit_typed(nack_command(request, "settle.nack.receipt")?))
            .map(|nacked| nacked.map(|r| r.map(|outcome| Settled::Nack(nack_response(outcome)))).boxed()),
        Some(Action::ExtendLease(request)) => allowed(receipt_queue(request.receipt.as_ref()))
            .and_then(|()| node.submit_typed(extend_command(request, "settle.extend_lease.receipt")?))
            .map(|extended| {
                extended
                    .map(|r| {
                        r.map(|lease_expires_at_ms| {
                            Settled::ExtendLease(pb::ExtendLeaseResponse { lease_expires_at_ms })
                        })
                    })
                    .boxed()
            }),
        None => Err(invalid("action", "a settle needs an ack, nack or extend_lease")),
    };
    match submitted {
        Ok(answer) => Box::pin(answer.map(move |result| {
            let freed = if result.is_ok() { receipts } else { Vec::new() };
            (settled(sequence, kind, result), freed)
        })),
        Err(status) => Box::pin(std::future::ready((settled(sequence, kind, Err(status)), Vec::new()))),
    }
}

fn settled(sequence: u64, kind: &'static str, result: Result<Settled, Status>) -> pb::ConsumeSettled {
    count_answer("Queue/Consume", kind, result.as_ref().map_or_else(Status::code, |_| tonic::Code::Ok));
    let result = result.unwrap_or_else(|status| Settled::Rejected(rejection(sequence, &status)));
    pb::ConsumeSettled { sequence, result: Some(result) }
}
