//! [`PublishStream`]: publishes over one `Queue.PublishStream` to the
//! leader, many requests in flight on one HTTP/2 stream, each confirmed as
//! its entry commits.
//!
//! The stream is the fast path; the unary Publish with its retry loop is
//! the safe one. A request the stream could not settle (the stream broke,
//! the node lost leadership or was overloaded, no answer in
//! `request_timeout`) is sent again through [`Client::publish`]'s path with
//! the same idempotency keys, so it is stored once whatever happened to the
//! first attempt; only a final answer (a confirm, or an error the unary call
//! would not retry either, like NOT_FOUND) ends it. A broken stream is
//! reopened, at the leader, by the next request. A node that does not
//! serve PublishStream (UNIMPLEMENTED: an older server) is published to
//! unary from then on.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use prost::Message as _;
use raftq_proto::v1 as proto;
use raftq_proto::v1::publish_stream_response::Kind;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::metadata::MetadataMap;

use crate::client::{CallSpec, Client};
use crate::error::ClientError;
use crate::retry::{Decision, Safety, decide};
use crate::types::{OutgoingMessage, PublishResult};

/// Requests buffered between the publishers and the call's encoder: the
/// encoder takes what is there into one write.
const REQUESTS_BUFFERED: usize = 256;

/// The most bytes the `sequence` field adds to an encoded request (a tag
/// byte and a ten-byte varint). A request's share of the byte window is
/// sized before its sequence is known, so it counts these too: the server
/// counts the request as it arrives, sequence included.
const SEQUENCE_BYTES_MAX: usize = 11;

/// A publisher over one long-lived stream. Cheap to clone (clones share
/// the stream); any number of tasks may publish through it at once, up to
/// the window the server grants (more wait for room).
#[derive(Clone)]
pub struct PublishStream {
    client: Client,
    /// The open session, if any; replaced when it breaks. Locked while a
    /// session opens, so concurrent publishers open one, not many.
    session: Arc<tokio::sync::Mutex<Option<Arc<Session>>>>,
    /// Set when a node answered UNIMPLEMENTED to the open: every publish
    /// then goes unary.
    unsupported: Arc<AtomicBool>,
}

impl fmt::Debug for PublishStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublishStream").field("client", &self.client).finish_non_exhaustive()
    }
}

/// One open `PublishStream` call. Dropping it closes the client's side;
/// the server then answers what is in flight and ends the call.
struct Session {
    addr: String,
    tx: mpsc::Sender<proto::PublishStreamRequest>,
    shared: Arc<Shared>,
    /// The window's byte bound, to cap one request's share.
    window_bytes: u32,
}

/// What a session's reader task shares with its publishers.
struct Shared {
    /// Requests unanswered, by sequence number.
    waiting: Mutex<HashMap<u64, Waiter>>,
    next_sequence: AtomicU64,
    /// Set (and the semaphores closed) once the stream has ended.
    broken: AtomicBool,
    requests: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
}

/// A request waiting for its answer; its share of the window is given back
/// when the answer arrives.
struct Waiter {
    done: oneshot::Sender<Result<Vec<PublishResult>, ClientError>>,
    _window: (OwnedSemaphorePermit, OwnedSemaphorePermit),
}

impl Client {
    /// A [`PublishStream`]; no I/O until the first publish.
    pub fn publish_stream(&self) -> PublishStream {
        PublishStream { client: self.clone(), session: Arc::default(), unsupported: Arc::default() }
    }
}

impl PublishStream {
    /// Publishes 1..=1000 messages to `queue` as one all-or-nothing batch,
    /// as [`Client::publish`] does (keys assigned the same way), over the
    /// stream.
    pub async fn publish(
        &self,
        queue: &str,
        messages: Vec<OutgoingMessage>,
    ) -> Result<Vec<PublishResult>, ClientError> {
        let messages = self.client.keyed(messages);
        self.publish_keyed(queue, messages).await
    }

    /// Publishes wire messages whose keys are already assigned.
    pub(crate) async fn publish_keyed(
        &self,
        queue: &str,
        messages: Vec<proto::PublishMessage>,
    ) -> Result<Vec<PublishResult>, ClientError> {
        debug_assert!(messages.iter().all(|m| !m.idempotency_key.is_empty()), "every publish carries a key");
        let count = messages.len();
        if self.unsupported.load(Ordering::Relaxed) {
            return self.client.publish_keyed(queue, messages).await;
        }
        let started = tokio::time::Instant::now();
        let request = proto::PublishStreamRequest { sequence: 0, queue: queue.to_owned(), messages };
        let err = match self.try_stream(request.clone()).await {
            Ok(results) if results.len() == count => return Ok(results),
            Ok(results) => {
                return Err(ClientError::Protocol(format!("{} results for {count} messages", results.len())));
            }
            Err(Attempt::Unsupported) => {
                tracing::info!("raftq: the node does not serve PublishStream; publishing unary");
                self.unsupported.store(true, Ordering::Relaxed);
                return self.client.publish_keyed(queue, request.messages).await;
            }
            Err(Attempt::Failed(err, addr)) => match decide(&err, Safety::Idempotent, &addr) {
                Decision::Fail => return Err(err),
                _ => err,
            },
        };
        // Not settled by the stream: the unary path's retries (the same keys,
        // so a first attempt that did commit is answered as a duplicate).
        tracing::debug!(error = %err, "raftq publish stream did not settle a request; retrying it unary");
        let retried = self.client.publish_keyed(queue, request.messages).await;
        // If the stream attempt may have committed, a final failure must
        // say so, as the unary retry loop's own does.
        retried.map_err(|last| if err.is_ambiguous() { in_doubt(last, started.elapsed()) } else { last })
    }

    /// One attempt over the stream.
    async fn try_stream(&self, request: proto::PublishStreamRequest) -> Result<Vec<PublishResult>, Attempt> {
        let session = self.session().await.map_err(|(err, addr)| {
            if err.code() == tonic::Code::Unimplemented { Attempt::Unsupported } else { Attempt::Failed(err, addr) }
        })?;
        let timeout = self.client.config().request_timeout;
        session.publish(request, timeout).await.map_err(|err| {
            // A node-level failure (not the leader any more, unreachable, no
            // answer): the next request opens a new stream. An overloaded
            // node or a refused request keeps it.
            if matches!(decide(&err, Safety::Idempotent, &session.addr), Decision::Redirect(_) | Decision::Backoff) {
                session.shared.break_off(None);
            }
            Attempt::Failed(err, session.addr.clone())
        })
    }

    /// The open session, or a new one.
    async fn session(&self) -> Result<Arc<Session>, (ClientError, String)> {
        let mut current = self.session.lock().await;
        if let Some(session) = current.as_ref().filter(|s| !s.shared.broken.load(Ordering::SeqCst)) {
            return Ok(session.clone());
        }
        *current = None;
        let session = Arc::new(Session::open(&self.client).await?);
        *current = Some(session.clone());
        Ok(session)
    }
}

/// Why a stream attempt did not settle a request.
enum Attempt {
    /// The node does not serve PublishStream.
    Unsupported,
    /// This error, from this node.
    Failed(ClientError, String),
}

impl Session {
    /// Opens a stream at the leader (through the client's retry loop) and
    /// reads the window it grants.
    async fn open(client: &Client) -> Result<Self, (ClientError, String)> {
        let opened = client
            .call(CallSpec::leader("publish_stream", Safety::Idempotent), |channel| {
                let mut stub = Client::queue_stub(channel);
                async move {
                    let (tx, rx) = mpsc::channel(REQUESTS_BUFFERED);
                    let mut inbound = stub.publish_stream(ReceiverStream::new(rx)).await?;
                    let window = match inbound.get_mut().message().await? {
                        Some(proto::PublishStreamResponse { kind: Some(Kind::Window(window)) }) => window,
                        other => {
                            return Err(tonic::Status::internal(format!(
                                "PublishStream: the first message is not the window: {other:?}"
                            )));
                        }
                    };
                    Ok(tonic::Response::new((window, inbound.into_inner(), tx)))
                }
            })
            .await;
        let ((window, inbound, tx), addr) = opened.map_err(|err| (err, client.leader().unwrap_or_default()))?;
        if window.requests == 0 || window.bytes == 0 {
            let err = ClientError::Protocol(format!("PublishStream granted an empty window: {window:?}"));
            return Err((err, addr));
        }
        let window_bytes = u32::try_from(window.bytes).unwrap_or(u32::MAX);
        let shared = Arc::new(Shared {
            waiting: Mutex::default(),
            next_sequence: AtomicU64::new(1),
            broken: AtomicBool::new(false),
            requests: Arc::new(Semaphore::new(window.requests as usize)),
            bytes: Arc::new(Semaphore::new(window_bytes as usize)),
        });
        tokio::spawn(read_answers(inbound, shared.clone(), addr.clone()));
        Ok(Self { addr, tx, shared, window_bytes })
    }

    /// Sends one request when the window has room and waits up to
    /// `timeout` for its answer. The wait for room is not timed: it is the
    /// server's back-pressure, and a server that stops answering fails the
    /// requests in the window, which breaks the session and so every wait.
    async fn publish(
        &self,
        mut request: proto::PublishStreamRequest,
        timeout: std::time::Duration,
    ) -> Result<Vec<PublishResult>, ClientError> {
        let shared = &self.shared;
        let size = request.encoded_len().saturating_add(SEQUENCE_BYTES_MAX);
        let share = u32::try_from(size).unwrap_or(u32::MAX).min(self.window_bytes);
        let requests = shared.requests.clone().acquire_owned().await.map_err(|_| self.broken())?;
        let bytes = shared.bytes.clone().acquire_many_owned(share).await.map_err(|_| self.broken())?;
        // A slot on the way to the encoder first, so that once the request
        // is registered nothing can stop it being sent: a publish cancelled
        // while it waits here holds nothing (its permits drop with it).
        let slot = self.tx.reserve().await.map_err(|_| self.broken())?;
        let sequence = shared.next_sequence.fetch_add(1, Ordering::Relaxed);
        request.sequence = sequence;
        let (done, answer) = oneshot::channel();
        lock(&shared.waiting).insert(sequence, Waiter { done, _window: (requests, bytes) });
        // Registered before it is sent, so the answer always finds it; the
        // reader marks the session broken before it fails what is waiting,
        // so a request registered after that is taken back here.
        if shared.broken.load(Ordering::SeqCst) && lock(&shared.waiting).remove(&sequence).is_some() {
            return Err(self.broken());
        }
        slot.send(request);
        // From here the request may commit. If this wait is cancelled or
        // times out, the request keeps its share of the window until the
        // server answers it (the server counts it until then too).
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_dropped)) => Err(self.ended_unanswered()),
            Err(_elapsed) => Err(ClientError::Timeout { addr: self.addr.clone(), timeout }),
        }
    }

    /// The session ended before this request was sent: nothing happened.
    fn broken(&self) -> ClientError {
        ClientError::Transport {
            addr: self.addr.clone(),
            message: "the publish stream ended before this request was sent".into(),
            connect: true,
        }
    }

    fn ended_unanswered(&self) -> ClientError {
        ended_unanswered(&self.addr, "the publish stream ended")
    }
}

impl Shared {
    /// Ends the session: no new requests; if the stream has ended
    /// (`ended`, why), every request still waiting fails as in doubt, to be
    /// retried by its publisher with its keys. Never with the status that
    /// ended the stream: that is about the stream (a window overrun, the
    /// node stopping), not the requests, which were sent and may commit.
    fn break_off(&self, ended: Option<(&str, ClientError)>) {
        self.broken.store(true, Ordering::SeqCst);
        self.requests.close();
        self.bytes.close();
        if let Some((addr, why)) = ended {
            let err = ended_unanswered(addr, &format!("the publish stream ended ({why})"));
            for (_, waiter) in lock(&self.waiting).drain() {
                let _ = waiter.done.send(Err(err.clone()));
            }
        }
    }
}

/// The session's reader: hands each answer to its request, and when the
/// stream ends fails whatever is still waiting.
async fn read_answers(mut inbound: Streaming<proto::PublishStreamResponse>, shared: Arc<Shared>, addr: String) {
    let ended = loop {
        let answer = match inbound.message().await {
            Ok(Some(answer)) => answer,
            Ok(None) => {
                break ClientError::Transport {
                    addr: addr.clone(),
                    message: "the publish stream ended".into(),
                    connect: false,
                };
            }
            Err(status) => break ClientError::from_status(status, &addr),
        };
        let (sequence, result) = match answer.kind {
            Some(Kind::Confirm(confirm)) => {
                (confirm.sequence, Ok(confirm.results.into_iter().map(PublishResult::from).collect()))
            }
            Some(Kind::Rejected(rejected)) => (rejected.sequence, Err(rejected_error(rejected, &addr))),
            other => {
                break ClientError::Protocol(format!("PublishStream: unexpected message {other:?}"));
            }
        };
        let Some(waiter) = lock(&shared.waiting).remove(&sequence) else {
            break ClientError::Protocol(format!("PublishStream: an answer to unknown sequence {sequence}"));
        };
        let _ = waiter.done.send(result);
    };
    tracing::debug!(addr, error = %ended, "raftq publish stream ended");
    shared.break_off(Some((&addr, ended)));
}

/// The error of a request sent on a stream that ended before answering it:
/// ambiguous (the request may have committed), so only a request safe to
/// repeat goes again.
pub(crate) fn ended_unanswered(addr: &str, why: &str) -> ClientError {
    ClientError::Transport { addr: addr.to_owned(), message: format!("{why} before answering"), connect: false }
}

/// `last`, the final error of a retry after an attempt in doubt, marked as
/// such (one more attempt counted: the stream's).
pub(crate) fn in_doubt(last: ClientError, elapsed: std::time::Duration) -> ClientError {
    match last {
        ClientError::RetriesExhausted { attempts, elapsed, last, .. } => {
            ClientError::RetriesExhausted { attempts: attempts + 1, elapsed, last, in_doubt: true }
        }
        last => ClientError::RetriesExhausted { attempts: 2, elapsed, last: Box::new(last), in_doubt: true },
    }
}

/// A rejection as the error its unary call would have given.
pub(crate) fn rejected_error(rejected: proto::StreamRejection, addr: &str) -> ClientError {
    let mut metadata = MetadataMap::new();
    for (key, value) in &rejected.metadata {
        if let (Ok(key), Ok(value)) =
            (key.parse::<tonic::metadata::MetadataKey<tonic::metadata::Ascii>>(), value.parse())
        {
            metadata.insert(key, value);
        }
    }
    let code = tonic::Code::from_i32(rejected.code);
    ClientError::from_status(
        tonic::Status::with_details_and_metadata(code, rejected.message, rejected.details, metadata),
        addr,
    )
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_reads_as_the_unary_error_with_its_hint() {
        let rejected = proto::StreamRejection {
            sequence: 3,
            code: tonic::Code::Unavailable as i32,
            message: "this node is not the leader".into(),
            details: bytes::Bytes::new(),
            metadata: [("raftq-leader".to_owned(), "10.0.0.9:7000".to_owned())].into(),
        };
        let err = rejected_error(rejected, "10.0.0.1:7000");
        assert_eq!(err.leader_hint(), Some("10.0.0.9:7000"));
        assert_eq!(decide(&err, Safety::Idempotent, "10.0.0.1:7000"), Decision::Redirect("10.0.0.9:7000".into()));
    }
}
