//! [`ConsumeStream`]: deliveries and their settles (ack, nack, extend) on
//! one `Queue.Consume` stream, instead of a unary call per settle.
//!
//! A background task reads the stream: deliveries go to
//! [`ConsumeStream::next`], answers to the [`Settler`] call that waits for
//! them. A settle the stream cannot answer is handled as its unary call
//! would be: an Ack or ExtendLease (safe to repeat) goes again as the
//! unary call; a Nack whose outcome is unknown is reported as such. A broken
//! stream is not reopened: `next` yields the error and then ends (the
//! server gave the stream's unsettled leases back); open a new one.
//!
//! Dropping the [`ConsumeStream`] while a [`Settler`] lives on tells the
//! server to deliver no more (the stream's leases are kept, so the settler
//! can still settle what was taken) and gives back at once the deliveries
//! that had arrived but were never taken from `next`.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use raftq_proto::v1 as proto;
use raftq_proto::v1::consume_settle::Action;
use raftq_proto::v1::consume_settled::Result as Settled;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use crate::client::{CallSpec, Client};
use crate::convert::{delivery, duration_ms, extend_request, nack_request};
use crate::error::ClientError;
use crate::publish_stream::{ended_unanswered, in_doubt, rejected_error};
use crate::retry::{Decision, Safety, decide};
use crate::types::{Delivery, NackOutcome, Receipt};

/// Settles buffered between callers and the call's encoder.
const SETTLES_BUFFERED: usize = 256;

/// Deliveries from one queue over a Consume stream, with a [`Settler`] for
/// them. Dropping it (and every `Settler`) closes the stream; the server
/// then gives back the leases not yet settled.
pub struct ConsumeStream {
    deliveries: mpsc::UnboundedReceiver<Result<Delivery, ClientError>>,
    settler: Settler,
}

impl fmt::Debug for ConsumeStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumeStream").field("addr", &self.settler.addr).finish_non_exhaustive()
    }
}

/// Acks, nacks and extends leases over a [`ConsumeStream`]'s stream.
/// Cheap to clone; any number of tasks may settle at once.
#[derive(Clone)]
pub struct Settler {
    client: Client,
    addr: String,
    tx: mpsc::Sender<proto::ConsumeRequest>,
    shared: Arc<Shared>,
}

impl fmt::Debug for Settler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settler").field("addr", &self.addr).finish_non_exhaustive()
    }
}

/// What the reader task shares with the settlers.
struct Shared {
    waiting: Mutex<HashMap<u64, oneshot::Sender<Result<Settled, ClientError>>>>,
    next_sequence: AtomicU64,
    broken: AtomicBool,
}

impl Client {
    /// Opens a Consume stream on `queue` at the leader with a credit window
    /// of `prefetch` (1..=1000) deliveries; `lease` overrides the queue's
    /// lease. The first receive is part of the call: a missing queue fails
    /// here with NOT_FOUND.
    pub async fn consume(
        &self,
        queue: &str,
        prefetch: u32,
        lease: Option<Duration>,
    ) -> Result<ConsumeStream, ClientError> {
        let subscribe = proto::SubscribeRequest { queue: queue.to_owned(), prefetch, lease_ms: lease.map(duration_ms) };
        let ((inbound, tx), addr) = self
            .call(CallSpec::leader("consume", Safety::Idempotent), |channel| {
                let mut stub = Client::queue_stub(channel);
                let first =
                    proto::ConsumeRequest { kind: Some(proto::consume_request::Kind::Subscribe(subscribe.clone())) };
                async move {
                    let (tx, rx) = mpsc::channel(SETTLES_BUFFERED);
                    tx.try_send(first).map_err(|_| tonic::Status::internal("a new channel has room"))?;
                    let inbound = stub.consume(ReceiverStream::new(rx)).await?;
                    Ok(tonic::Response::new((inbound.into_inner(), tx)))
                }
            })
            .await?;
        let shared = Arc::new(Shared {
            waiting: Mutex::default(),
            next_sequence: AtomicU64::new(1),
            broken: AtomicBool::new(false),
        });
        // Unbounded, but never more than `prefetch` deliveries: the server
        // sends no more until some are settled.
        let (deliveries_tx, deliveries) = mpsc::unbounded_channel();
        let give_back = GiveBack { tx: tx.downgrade(), shared: shared.clone() };
        tokio::spawn(read(inbound, shared.clone(), deliveries_tx, give_back, self.clone(), addr.clone()));
        Ok(ConsumeStream { deliveries, settler: Settler { client: self.clone(), addr, tx, shared } })
    }
}

impl Drop for ConsumeStream {
    /// No more deliveries: the server is told so (a [`Settler`] may still
    /// settle what was taken; with none left the stream closes, and the
    /// server gives back every lease not settled), and deliveries that
    /// arrived but were never taken are given back now.
    fn drop(&mut self) {
        let stop = proto::ConsumeRequest { kind: Some(proto::consume_request::Kind::Stop(proto::ConsumeStop {})) };
        // A full buffer: the stop is not sent and deliveries go on to the
        // reader, which gives each back as it arrives.
        let _ = self.settler.tx.try_send(stop);
        self.deliveries.close();
        let give_back = GiveBack { tx: self.settler.tx.downgrade(), shared: self.settler.shared.clone() };
        while let Ok(item) = self.deliveries.try_recv() {
            if let Ok(delivery) = item {
                give_back.nack(&delivery.receipt);
            }
        }
    }
}

/// Gives back deliveries no one will see, with an unanswered nack on the
/// stream (a weak sender: it does not keep the stream open).
struct GiveBack {
    tx: mpsc::WeakSender<proto::ConsumeRequest>,
    shared: Arc<Shared>,
}

impl GiveBack {
    /// Best effort: if the stream is gone or its buffer full, the lease
    /// runs out instead (or the server gives it back when the stream ends).
    fn nack(&self, receipt: &Receipt) {
        let Some(tx) = self.tx.upgrade() else { return };
        // A sequence no settle waits on: its answer is dropped.
        let sequence = self.shared.next_sequence.fetch_add(1, Ordering::Relaxed);
        let nack = nack_request(receipt, None, false, "consumer gone");
        let settle = proto::ConsumeSettle { sequence, action: Some(Action::Nack(nack)) };
        let _ = tx.try_send(proto::ConsumeRequest { kind: Some(proto::consume_request::Kind::Settle(settle)) });
    }
}

impl ConsumeStream {
    /// The next delivery; an error once if the stream broke, then `None`.
    pub async fn next(&mut self) -> Option<Result<Delivery, ClientError>> {
        self.deliveries.recv().await
    }

    /// The next delivery if one has arrived, without waiting.
    pub fn try_next(&mut self) -> Option<Result<Delivery, ClientError>> {
        self.deliveries.try_recv().ok()
    }

    /// A settler for this stream's deliveries.
    pub fn settler(&self) -> Settler {
        self.settler.clone()
    }
}

impl Settler {
    /// Acks 1..=1000 deliveries, all or none (as [`Client::ack`]).
    pub async fn ack(&self, receipts: &[Receipt]) -> Result<u64, ClientError> {
        let request = proto::AckRequest { receipts: receipts.iter().map(Into::into).collect() };
        match self.settle(Action::Ack(request), Safety::Idempotent).await {
            Ok(Settled::Ack(answer)) => Ok(answer.acked),
            Ok(other) => Err(unexpected(&other)),
            Err(Fallback::Final(err)) => Err(err),
            Err(Fallback::Unary(err)) => self.client.ack(receipts).await.map_err(|last| doubt(&err, last)),
        }
    }

    /// Extends a live lease to end `lease` from now (as
    /// [`Client::extend_lease`]); returns the new deadline.
    pub async fn extend_lease(&self, receipt: &Receipt, lease: Duration) -> Result<u64, ClientError> {
        let request = extend_request(receipt, lease);
        match self.settle(Action::ExtendLease(request), Safety::Idempotent).await {
            Ok(Settled::ExtendLease(answer)) => Ok(answer.lease_expires_at_ms),
            Ok(other) => Err(unexpected(&other)),
            Err(Fallback::Final(err)) => Err(err),
            Err(Fallback::Unary(err)) => {
                self.client.extend_lease(receipt, lease).await.map_err(|last| doubt(&err, last))
            }
        }
    }

    /// Gives a delivery back (as [`Client::nack`]). Not repeated after an
    /// answer in doubt: the error then says the outcome is unknown.
    pub async fn nack(
        &self,
        receipt: &Receipt,
        delay: Option<Duration>,
        dead_letter: bool,
        reason: &str,
    ) -> Result<NackOutcome, ClientError> {
        let request = nack_request(receipt, delay, dead_letter, reason);
        match self.settle(Action::Nack(request), Safety::NotIdempotent).await {
            Ok(Settled::Nack(answer)) => answer.try_into(),
            Ok(other) => Err(unexpected(&other)),
            Err(Fallback::Final(err)) => Err(err),
            Err(Fallback::Unary(_)) => self.client.nack(receipt, delay, dead_letter, reason).await,
        }
    }

    /// One settle over the stream. `Err(Unary)`: the stream could not settle
    /// it and the unary call may be made (nothing happened, or the call is
    /// safe to repeat).
    async fn settle(&self, action: Action, safety: Safety) -> Result<Settled, Fallback> {
        let shared = &self.shared;
        // Never sent: the unary call is safe for any settle.
        let unsent = || Fallback::Unary(self.broken());
        // A slot first, so a registered settle is always sent (and a settle
        // cancelled while it waits for one leaves nothing behind).
        let slot = self.tx.reserve().await.map_err(|_| unsent())?;
        let sequence = shared.next_sequence.fetch_add(1, Ordering::Relaxed);
        let (done, answer) = oneshot::channel();
        lock(&shared.waiting).insert(sequence, done);
        if shared.broken.load(Ordering::SeqCst) && lock(&shared.waiting).remove(&sequence).is_some() {
            return Err(unsent());
        }
        let settle = proto::ConsumeSettle { sequence, action: Some(action) };
        slot.send(proto::ConsumeRequest { kind: Some(proto::consume_request::Kind::Settle(settle)) });
        let timeout = self.client.config().request_timeout;
        let err = match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(Ok(settled))) => return Ok(settled),
            Ok(Ok(Err(err))) => err,
            Ok(Err(_dropped)) => ended_unanswered(&self.addr, "the consume stream ended"),
            Err(_elapsed) => {
                lock(&shared.waiting).remove(&sequence);
                ClientError::Timeout { addr: self.addr.clone(), timeout }
            }
        };
        match decide(&err, safety, &self.addr) {
            Decision::Fail => Err(Fallback::Final(err)),
            _ => Err(Fallback::Unary(err)),
        }
    }

    /// The stream ended before a settle was sent: nothing happened.
    fn broken(&self) -> ClientError {
        ClientError::Transport {
            addr: self.addr.clone(),
            message: "the consume stream ended before this settle was sent".into(),
            connect: true,
        }
    }
}

/// Why a settle left the stream.
enum Fallback {
    /// Return this error.
    Final(ClientError),
    /// Make the unary call; this was the stream's error.
    Unary(ClientError),
}

/// The unary retry's error, marked in doubt if the stream attempt was.
fn doubt(stream_err: &ClientError, last: ClientError) -> ClientError {
    if stream_err.is_ambiguous() { in_doubt(last, Duration::ZERO) } else { last }
}

fn unexpected(settled: &Settled) -> ClientError {
    ClientError::Protocol(format!("Consume: a settle answered with {settled:?}"))
}

/// The reader: deliveries to the consumer, answers to their settles; when
/// the stream ends, the error to both.
async fn read(
    mut inbound: Streaming<proto::ConsumeResponse>,
    shared: Arc<Shared>,
    deliveries: mpsc::UnboundedSender<Result<Delivery, ClientError>>,
    give_back: GiveBack,
    client: Client,
    addr: String,
) {
    use proto::consume_response::Kind;
    let ended = loop {
        let message = match inbound.message().await {
            Ok(Some(message)) => message,
            Ok(None) => {
                break ClientError::Transport {
                    addr: addr.clone(),
                    message: "the consume stream ended".into(),
                    connect: false,
                };
            }
            Err(status) => break ClientError::from_status(status, &addr),
        };
        match message.kind {
            Some(Kind::Delivery(wire)) => {
                // A consumer that is gone (the ConsumeStream dropped, a
                // Settler still live) never sees it: give it back.
                if let Err(unseen) = deliveries.send(delivery(wire, &client))
                    && let Ok(delivery) = unseen.0
                {
                    give_back.nack(&delivery.receipt);
                }
            }
            Some(Kind::Settled(settled)) => {
                let result = match settled.result {
                    Some(Settled::Rejected(rejected)) => Err(rejected_error(rejected, &addr)),
                    Some(result) => Ok(result),
                    None => Err(ClientError::Protocol("ConsumeSettled without a result".into())),
                };
                if let Some(waiter) = lock(&shared.waiting).remove(&settled.sequence) {
                    let _ = waiter.send(result);
                }
            }
            None => break ClientError::Protocol("ConsumeResponse without a kind".into()),
        }
    };
    tracing::debug!(addr, error = %ended, "raftq consume stream ended");
    shared.broken.store(true, Ordering::SeqCst);
    // The settles still waiting were sent and may have taken effect: in
    // doubt, whatever status ended the stream (it is about the stream).
    let unanswered = ended_unanswered(&addr, &format!("the consume stream ended ({ended})"));
    for (_, waiter) in lock(&shared.waiting).drain() {
        let _ = waiter.send(Err(unanswered.clone()));
    }
    let _ = deliveries.send(Err(ended));
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
