//! Server-streaming delivery with a prefetch window (RabbitMQ's basic.qos):
//! the stream holds at most `prefetch` live leases; an ack, nack or lease
//! end frees a slot and the server pushes the next visible message. When the
//! consumer goes away, its live leases are nacked ("consumer gone") so the
//! retry policy redelivers them without waiting out the lease.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use raftq_core::limits::RECEIVE_MESSAGES_MAX;
use raftq_core::{Command, Receipt, validate_queue_name};
use raftq_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::convert;
use crate::error::{invalid, queue_error};
use crate::node::{Node, QueueMachine};
use crate::queue_service::wait_visible;

/// How long one wait for a visible message lasts before the loop checks
/// that the consumer is still there.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Asked before each receive of a stream: may it go on? (With auth on: is
/// the caller's token still valid and allowed to consume the queue.)
pub type Recheck = Box<dyn Fn() -> Result<(), Status> + Send + Sync>;

/// Validates the request, makes the first receive, and starts the delivery
/// task. The first receive is part of the call: on a follower, or for a
/// queue that does not exist, the call itself fails (UNAVAILABLE with the
/// leader hint, NOT_FOUND) and no stream opens. Later failures (the queue
/// deleted, leadership lost) end the stream with that status.
pub async fn start<SM: QueueMachine>(
    node: Arc<Node<SM>>,
    request: pb::SubscribeRequest,
    recheck: Option<Recheck>,
) -> Result<ReceiverStream<Result<pb::SubscribeResponse, Status>>, Status> {
    let wrap = |delivery| pb::SubscribeResponse { delivery: Some(delivery) };
    let (_tx, rx) = open(node, request, recheck, wrap, 0, Arc::default()).await?;
    Ok(ReceiverStream::new(rx))
}

/// [`start`] for any item type: deliveries are sent as `wrap(delivery)` on
/// a channel with room for `prefetch + extra` items (the caller may send its
/// own items on the sender it gets back). The delivery task stops when the
/// receiver is gone or `control.stop` is set (noticed within
/// [`IDLE_CHECK`]), and gives back its outstanding leases; after
/// `control.no_more_deliveries` it delivers nothing more but keeps its
/// leases until then.
pub(crate) async fn open<SM: QueueMachine, T: Send + 'static>(
    node: Arc<Node<SM>>,
    request: pb::SubscribeRequest,
    recheck: Option<Recheck>,
    wrap: fn(pb::Delivery) -> T,
    extra: usize,
    control: Arc<Control>,
) -> Result<(mpsc::Sender<Result<T, Status>>, mpsc::Receiver<Result<T, Status>>), Status> {
    validate_queue_name(&request.queue).map_err(|e| queue_error(e.in_field("queue")))?;
    if !(1..=RECEIVE_MESSAGES_MAX).contains(&request.prefetch) {
        return Err(invalid("prefetch", format!("{} is outside 1..={RECEIVE_MESSAGES_MAX}", request.prefetch)));
    }
    let first = node.propose_typed(Command::receive(request.queue.clone(), request.prefetch, request.lease_ms)).await?;
    // Room for the first batch (at most `prefetch`): sending it never waits.
    let (tx, rx) = mpsc::channel(request.prefetch as usize + extra);
    let out = Out { tx: tx.clone(), wrap, control };
    tokio::spawn(async move {
        let mut outstanding = Vec::new();
        let mut consumer_gone = false;
        for delivery in first {
            outstanding.push(delivery.receipt.clone());
            consumer_gone |= out.send(&delivery).await.is_err();
        }
        if !consumer_gone && let Err(status) = deliver(&node, &request, recheck.as_ref(), &out, &mut outstanding).await
        {
            let _ = out.tx.send(Err(status)).await;
        }
        release(&node, outstanding).await;
    });
    Ok((tx, rx))
}

/// What the owner of a stream tells its delivery task.
#[derive(Debug, Default)]
pub(crate) struct Control {
    /// End: give back the leases and stop.
    pub(crate) stop: AtomicBool,
    /// Deliver nothing more, but keep the leases until `stop`.
    pub(crate) no_more_deliveries: AtomicBool,
    /// Set by a stream that settles on itself (Consume): its settles are
    /// reported through `settled`, so the task frees their slots without
    /// reading the state, and looks up the liveness of every outstanding
    /// lease only every [`IDLE_CHECK`] (for leases that ended otherwise: a
    /// unary ack, an expiry, a purge). Without it (Subscribe, whose acks
    /// are unary) every applied entry triggers that look-up.
    settles_reported: bool,
    /// Receipts settled (acked or nacked) on the stream, not yet taken;
    /// at most [`SETTLED_PENDING_MAX`].
    settled: std::sync::Mutex<Vec<Receipt>>,
    /// Set when `settled` overflowed and was dropped: the task then looks
    /// every lease up at once instead.
    settled_lost: AtomicBool,
    settled_notify: tokio::sync::Notify,
}

/// Most settled receipts kept for a delivery task that has not taken them
/// (it waits for a visible message, or the client settles receipts of
/// other streams): past this they are dropped and the next look-up of
/// every lease finds them, so the list never outgrows a few prefetches.
const SETTLED_PENDING_MAX: usize = 4 * RECEIVE_MESSAGES_MAX as usize;

impl Control {
    /// A control for a stream that reports its settles.
    pub(crate) fn reporting_settles() -> Self {
        Self { settles_reported: true, ..Self::default() }
    }

    /// These receipts were settled on the stream: their slots are free.
    pub(crate) fn settled(&self, receipts: Vec<Receipt>) {
        if receipts.is_empty() {
            return;
        }
        let mut pending = self.settled.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if pending.len() + receipts.len() > SETTLED_PENDING_MAX {
            pending.clear();
            self.settled_lost.store(true, Ordering::SeqCst);
        } else {
            pending.extend(receipts);
        }
        drop(pending);
        self.settled_notify.notify_one();
    }

    fn take_settled(&self) -> Vec<Receipt> {
        std::mem::take(&mut *self.settled.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// Where a delivery task sends, and whether its consumer is gone.
struct Out<T> {
    tx: mpsc::Sender<Result<T, Status>>,
    wrap: fn(pb::Delivery) -> T,
    control: Arc<Control>,
}

impl<T> Out<T> {
    fn gone(&self) -> bool {
        self.tx.is_closed() || self.control.stop.load(Ordering::SeqCst)
    }

    fn stopped_delivering(&self) -> bool {
        self.control.no_more_deliveries.load(Ordering::SeqCst)
    }

    async fn send(&self, delivery: &raftq_core::Delivery) -> Result<(), ()> {
        self.tx.send(Ok((self.wrap)(convert::delivery_to_pb(delivery)))).await.map_err(|_| ())
    }
}

async fn deliver<SM: QueueMachine, T>(
    node: &Node<SM>,
    request: &pb::SubscribeRequest,
    recheck: Option<&Recheck>,
    out: &Out<T>,
    outstanding: &mut Vec<Receipt>,
) -> Result<(), Status> {
    let mut metrics = node.metrics();
    let control = &out.control;
    // When the liveness of every outstanding lease is next looked up.
    let mut next_scan = Instant::now();
    loop {
        if out.gone() {
            return Ok(());
        }
        // With auth on: a token revoked meanwhile ends the stream (its
        // leases are given back below).
        if let Some(recheck) = recheck {
            recheck()?;
        }
        let settled = control.take_settled();
        if control.settled_lost.swap(false, Ordering::SeqCst) {
            next_scan = Instant::now();
        }
        if !settled.is_empty() {
            let settled: std::collections::HashSet<Receipt> = settled.into_iter().collect();
            outstanding.retain(|receipt| !settled.contains(receipt));
        }
        // One state read per outstanding lease: on every applied entry
        // for Subscribe, where nothing else says a lease ended; at most
        // every IDLE_CHECK for a stream that reports its own settles (with
        // a thousand leases out, reading them per entry was a fifth of a
        // draining leader's CPU).
        if !control.settles_reported || Instant::now() >= next_scan {
            let held = std::mem::take(outstanding);
            *outstanding = node
                .local_read(move |state| {
                    let mut live = Vec::new();
                    for receipt in held {
                        if state.receipt_is_live(&receipt)? {
                            live.push(receipt);
                        }
                    }
                    Ok(live)
                })
                .await?;
            next_scan = Instant::now() + IDLE_CHECK;
        }
        let credit =
            if out.stopped_delivering() { 0 } else { request.prefetch.saturating_sub(outstanding.len() as u32) };
        if credit == 0 {
            if control.settles_reported {
                tokio::select! {
                    () = control.settled_notify.notified() => {}
                    () = tokio::time::sleep_until(next_scan) => {}
                }
            } else {
                node.wait_for_change(&mut metrics, IDLE_CHECK).await;
            }
            continue;
        }
        let deliveries = node.propose_typed(Command::receive(request.queue.clone(), credit, request.lease_ms)).await?;
        if deliveries.is_empty() {
            // Nothing visible: propose nothing until something may be (an
            // applied publish, delay end or lease end makes the queue's
            // ready index non-empty). Every `IDLE_CHECK` only the consumer
            // and its token are looked at; an idle stream writes no log
            // entry (it proposed an empty Receive every second before).
            while !wait_visible(node, &mut metrics, &request.queue, Instant::now() + IDLE_CHECK).await? {
                if out.gone() {
                    return Ok(());
                }
                if let Some(recheck) = recheck {
                    recheck()?;
                }
            }
            continue;
        }
        for delivery in deliveries {
            outstanding.push(delivery.receipt.clone());
            if out.send(&delivery).await.is_err() {
                return Ok(());
            }
        }
    }
}

/// Gives back the leases a departed consumer still held.
async fn release<SM: QueueMachine>(node: &Node<SM>, receipts: Vec<Receipt>) {
    for receipt in receipts {
        let nack = Command::nack(receipt, None, false, "consumer gone".into());
        // A lease that ended meanwhile, or a lost leadership, is fine: the
        // lease then simply runs out and the message is redelivered.
        if let Err(status) = node.propose_typed(nack).await {
            tracing::debug!(%status, "could not release a lease of a closed subscription");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_receipts_waiting_for_the_task_stay_bounded() {
        let control = Control::reporting_settles();
        let receipt = |id| Receipt { queue: "q".into(), message_id: id, attempt: 1 };
        control.settled((1..=SETTLED_PENDING_MAX as u64).map(receipt).collect());
        assert!(!control.settled_lost.load(Ordering::SeqCst));
        // One more than fits: the list is dropped and a full look-up asked for.
        control.settled(vec![receipt(0)]);
        assert!(control.settled_lost.load(Ordering::SeqCst));
        assert!(control.take_settled().is_empty());
        control.settled(vec![receipt(7)]);
        assert_eq!(control.take_settled(), [receipt(7)]);
    }
}
