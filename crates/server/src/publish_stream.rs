//! `Queue.PublishStream`: publish batches over one bidirectional stream,
//! each answered (confirmed or rejected) as its entry commits.
//!
//! A request is the unary Publish in all but transport: the same checks and
//! the same proposal path ([`Node::submit_typed`]), so the same G1. Requests
//! are submitted to the proposal queue in the order they arrive, so a
//! stream's publishes to one queue get increasing ids in stream order; their
//! answers are sent as they complete (group commit puts several in one
//! entry, and an early failure answers at once).
//!
//! Flow control is a window granted in the first message ([`WINDOW_REQUESTS`],
//! [`WINDOW_BYTES`]): a client that sends past it has broken the protocol
//! and the stream ends with RESOURCE_EXHAUSTED (PUBLISH_WINDOW_EXCEEDED). So
//! one stream holds at most one window of requests in memory, however fast
//! its client sends.

use std::pin::Pin;
use std::sync::Arc;

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use prost::Message as _;
use raftq_core::Command;
use raftq_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use crate::convert;
use crate::error::publish_window_exceeded;
use crate::node::{Node, QueueMachine};

/// Most requests a stream may have unanswered: enough for a producer with
/// a thousand single-message publishes in flight.
pub const WINDOW_REQUESTS: u32 = 1024;
/// Most request bytes (encoded) a stream may have unanswered; a single
/// larger request is allowed alone. Four full 4 MiB batches.
pub const WINDOW_BYTES: u64 = 16 << 20;

/// May the stream's caller publish to this queue (asked per request; with
/// auth on it also checks that the token is still valid)?
pub type Allowed = Box<dyn Fn(&str) -> Result<(), Status> + Send + Sync>;

type Answer = Pin<Box<dyn Future<Output = (u64, u64, Result<Vec<raftq_core::PublishResult>, Status>)> + Send>>;

/// Unanswered requests and their bytes, against the window.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    requests: u32,
    bytes: u64,
}

impl Window {
    /// Counts in a request of `bytes`, or says which bound it breaks.
    pub(crate) fn admit(&mut self, bytes: u64) -> Result<(), Status> {
        if self.requests >= WINDOW_REQUESTS {
            return Err(publish_window_exceeded(
                "requests",
                u64::from(WINDOW_REQUESTS),
                format!("window: a request was sent with {WINDOW_REQUESTS} unanswered, the window's limit"),
            ));
        }
        if self.requests > 0 && self.bytes + bytes > WINDOW_BYTES {
            return Err(publish_window_exceeded(
                "bytes",
                WINDOW_BYTES,
                format!(
                    "window: a request of {bytes} bytes was sent with {} bytes unanswered; the window is {WINDOW_BYTES}",
                    self.bytes
                ),
            ));
        }
        self.requests += 1;
        self.bytes += bytes;
        Ok(())
    }

    /// A request of `bytes` was answered.
    pub(crate) fn release(&mut self, bytes: u64) {
        self.requests -= 1;
        self.bytes -= bytes;
    }
}

/// Starts serving one stream: grants the window, then answers each request
/// until the client has closed its side and every request is answered.
pub fn start<SM: QueueMachine>(
    node: Arc<Node<SM>>,
    inbound: Streaming<pb::PublishStreamRequest>,
    allowed: Allowed,
) -> ReceiverStream<Result<pb::PublishStreamResponse, Status>> {
    // Room for the window message, one answer per request in the window and
    // a final status: sending never waits on a slow reader for long.
    let (tx, rx) = mpsc::channel(WINDOW_REQUESTS as usize + 2);
    let window = pb::PublishWindow { requests: WINDOW_REQUESTS, bytes: WINDOW_BYTES };
    let granted = tx.try_send(Ok(response(pb::publish_stream_response::Kind::Window(window))));
    debug_assert!(granted.is_ok(), "a new channel has room");
    tokio::spawn(serve(node, inbound, allowed, tx));
    ReceiverStream::new(rx)
}

async fn serve<SM: QueueMachine>(
    node: Arc<Node<SM>>,
    mut inbound: Streaming<pb::PublishStreamRequest>,
    allowed: Allowed,
    tx: mpsc::Sender<Result<pb::PublishStreamResponse, Status>>,
) {
    let mut window = Window::default();
    let mut answers: FuturesUnordered<Answer> = FuturesUnordered::new();
    let mut reading = true;
    loop {
        tokio::select! {
            // Answers first: they free the window the next request needs.
            biased;
            Some((sequence, bytes, result)) = answers.next(), if !answers.is_empty() => {
                window.release(bytes);
                if tx.send(Ok(answer(sequence, result))).await.is_err() {
                    // The client is gone: what is in flight still commits
                    // (or not); it was never confirmed, so nothing is lost.
                    return;
                }
            }
            message = inbound.message(), if reading => match message {
                Ok(Some(request)) => {
                    let bytes = request.encoded_len() as u64;
                    if let Err(status) = window.admit(bytes) {
                        tracing::debug!(%status, "publish stream ended: window exceeded");
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                    answers.push(submit(&node, &allowed, request, bytes));
                }
                Ok(None) => reading = false,
                Err(status) => {
                    // The client's side broke (cancelled, connection lost):
                    // no one is left to answer.
                    tracing::debug!(%status, "publish stream: client side ended");
                    return;
                }
            },
            // Closed by the client and every request answered: end with OK.
            else => return,
        }
    }
}

/// Checks and submits one request; the future of its answer.
fn submit<SM: QueueMachine>(
    node: &Node<SM>,
    allowed: &Allowed,
    request: pb::PublishStreamRequest,
    bytes: u64,
) -> Answer {
    let sequence = request.sequence;
    let submitted = allowed(&request.queue).and_then(|()| {
        let messages = request.messages.into_iter().map(convert::new_message).collect();
        node.submit_typed(Command::publish(request.queue, messages))
    });
    match submitted {
        Ok(results) => Box::pin(results.map(move |result| (sequence, bytes, result))),
        Err(status) => Box::pin(std::future::ready((sequence, bytes, Err(status)))),
    }
}

fn response(kind: pb::publish_stream_response::Kind) -> pb::PublishStreamResponse {
    pb::PublishStreamResponse { kind: Some(kind) }
}

/// Counts one answered request of a stream, as `raftq_grpc_requests_total`
/// counts calls: `raftq_stream_requests_total{rpc, kind, code}`.
pub(crate) fn count_answer(rpc: &'static str, kind: &'static str, code: tonic::Code) {
    metrics::counter!("raftq_stream_requests_total", "rpc" => rpc, "kind" => kind, "code" => format!("{code:?}"))
        .increment(1);
}

/// A request's answer: its results, or its status as a rejection.
fn answer(sequence: u64, result: Result<Vec<raftq_core::PublishResult>, Status>) -> pb::PublishStreamResponse {
    use pb::publish_stream_response::Kind;
    let code = result.as_ref().map_or_else(Status::code, |_| tonic::Code::Ok);
    count_answer("Queue/PublishStream", "publish", code);
    response(match result {
        Ok(results) => Kind::Confirm(pb::PublishConfirm {
            sequence,
            results: results.iter().map(|p| pb::PublishResult { message_id: p.id, duplicate: p.duplicate }).collect(),
        }),
        Err(status) => Kind::Rejected(rejection(sequence, &status)),
    })
}

/// `status` as a [`pb::StreamRejection`]: code, message, the rich details
/// and the `raftq-` metadata, so a client reads it as it would the status
/// of a failed unary call.
pub(crate) fn rejection(sequence: u64, status: &Status) -> pb::StreamRejection {
    let metadata = [raftq_proto::LEADER_METADATA_KEY, raftq_proto::RETRY_AFTER_MS_METADATA_KEY]
        .into_iter()
        .filter_map(|key| {
            let value = status.metadata().get(key)?.to_str().ok()?;
            Some((key.to_owned(), value.to_owned()))
        })
        .collect();
    pb::StreamRejection {
        sequence,
        code: status.code() as i32,
        message: status.message().to_owned(),
        details: status.details().to_vec().into(),
        metadata,
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;
    use tonic_types::StatusExt;

    use super::*;

    fn reason(status: &Status) -> String {
        status.get_details_error_info().expect("ErrorInfo").reason
    }

    #[test]
    fn the_window_admits_up_to_its_request_count_and_frees_on_answers() {
        let mut window = Window::default();
        for _ in 0..WINDOW_REQUESTS {
            window.admit(100).unwrap();
        }
        let refused = window.admit(100).unwrap_err();
        assert_eq!(refused.code(), Code::ResourceExhausted);
        assert_eq!(reason(&refused), "PUBLISH_WINDOW_EXCEEDED");
        assert!(refused.message().starts_with("window:"), "{}", refused.message());
        window.release(100);
        window.admit(100).unwrap();
    }

    #[test]
    fn the_window_bounds_bytes_but_admits_one_large_request_alone() {
        let mut window = Window::default();
        window.admit(WINDOW_BYTES + 1).unwrap();
        let refused = window.admit(1).unwrap_err();
        assert_eq!(reason(&refused), "PUBLISH_WINDOW_EXCEEDED");
        let info = refused.get_details_error_info().unwrap();
        assert_eq!(info.metadata.get("limit").map(String::as_str), Some("bytes"));
        window.release(WINDOW_BYTES + 1);
        assert_eq!(window, Window::default());
        window.admit(WINDOW_BYTES / 2).unwrap();
        window.admit(WINDOW_BYTES / 2).unwrap();
        assert!(window.admit(1).is_err());
    }

    #[test]
    fn a_rejection_keeps_the_code_details_and_leader_hint() {
        let status = crate::error::unavailable_with_hint("this node is not the leader", Some("10.0.0.2:7000"));
        let rejected = rejection(7, &status);
        assert_eq!(rejected.sequence, 7);
        assert_eq!(rejected.code, Code::Unavailable as i32);
        assert_eq!(rejected.metadata.get("raftq-leader").map(String::as_str), Some("10.0.0.2:7000"));
        let back = Status::with_details(Code::from_i32(rejected.code), rejected.message, rejected.details);
        assert_eq!(reason(&back), "NOT_LEADER");
    }
}
