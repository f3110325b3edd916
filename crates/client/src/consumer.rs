//! [`Consumer`]: a stream of deliveries over the server-streaming Subscribe
//! call, resubscribing (to the new leader) when the stream breaks.
//!
//! When a stream ends, the server releases its outstanding leases: those
//! messages are redelivered, and acking a delivery from a broken stream
//! fails with FAILED_PRECONDITION. Work must be idempotent (at-least-once).

use std::{
    fmt,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use futures_util::{Stream, stream::BoxStream};
use raftq_proto::v1 as proto;
use tokio::time::Instant;
use tonic::{Code, Streaming};

use crate::{
    client::{CallSpec, Client},
    convert::{delivery, duration_ms},
    error::ClientError,
    retry::{Safety, backoff_delay},
    types::Delivery,
};

/// A stream that lived this long counts as healthy: its failure starts the
/// retry budget over, so a long-running consumer survives any number of
/// leader changes, while one whose streams break at once gives up.
const STREAM_HEALTHY_AFTER: Duration = Duration::from_secs(10);

/// Deliveries from one queue, as they become visible, at most `prefetch`
/// unsettled at a time. Yields an error and ends when the subscription
/// cannot be (re)established within the retry policy, or the server refuses
/// it (e.g. NOT_FOUND). Dropping it cancels the subscription.
pub struct Consumer {
    inner: BoxStream<'static, Result<Delivery, ClientError>>,
}

impl fmt::Debug for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer").finish_non_exhaustive()
    }
}

impl Stream for Consumer {
    type Item = Result<Delivery, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl Client {
    /// Subscribes to `queue` with a credit window of `prefetch` (1..=1000)
    /// deliveries; `lease` overrides the queue's lease. Nothing is sent until
    /// the stream is first polled.
    pub fn subscribe(&self, queue: &str, prefetch: u32, lease: Option<Duration>) -> Consumer {
        let session = Session {
            client: self.clone(),
            request: proto::SubscribeRequest { queue: queue.to_owned(), prefetch, lease_ms: lease.map(duration_ms) },
            stream: None,
            failures: 0,
            done: false,
        };
        Consumer { inner: Box::pin(futures_util::stream::unfold(session, Session::next)) }
    }
}

/// The consumer's state between items.
struct Session {
    client: Client,
    request: proto::SubscribeRequest,
    /// The open stream, the node serving it and when it opened.
    stream: Option<(Streaming<proto::SubscribeResponse>, String, Instant)>,
    /// Stream failures since the last delivery or healthy stream.
    failures: u32,
    /// Set after a final error: the stream ends.
    done: bool,
}

impl Session {
    async fn next(mut self) -> Option<(Result<Delivery, ClientError>, Self)> {
        loop {
            if self.done {
                return None;
            }
            let Some((stream, addr, opened_at)) = self.stream.as_mut() else {
                match self.open().await {
                    Ok(opened) => self.stream = Some(opened),
                    Err(err) => {
                        self.done = true;
                        return Some((Err(err), self));
                    }
                }
                continue;
            };
            let err = match stream.message().await {
                Ok(Some(wire)) => {
                    self.failures = 0;
                    let item = match wire.delivery {
                        Some(wire) => delivery(wire, &self.client),
                        None => Err(ClientError::Protocol("SubscribeResponse without a delivery".into())),
                    };
                    return Some((item, self));
                }
                Ok(None) => ClientError::Status {
                    code: Code::Unavailable,
                    message: "subscription ended by the server".into(),
                    leader: None,
                    retry_after: None,
                    reason: crate::ErrorReason::Unspecified,
                    info: Default::default(),
                },
                Err(status) => ClientError::from_status(status, addr),
            };
            let (addr, lived) = (addr.clone(), opened_at.elapsed());
            self.stream = None;
            if let Err(err) = self.recover(err, &addr, lived).await {
                self.done = true;
                return Some((Err(err), self));
            }
        }
    }

    /// Opens a stream through the client's retry loop (leader discovery,
    /// hints, backoff).
    async fn open(&self) -> Result<(Streaming<proto::SubscribeResponse>, String, Instant), ClientError> {
        let request = &self.request;
        let (stream, addr) = self
            .client
            .call(CallSpec::leader("subscribe", Safety::Idempotent), |channel| {
                let mut stub = Client::queue_stub(channel);
                let request = request.clone();
                async move { stub.subscribe(request).await }
            })
            .await?;
        Ok((stream, addr, Instant::now()))
    }

    /// After the stream from `addr` broke with `err`: follow the leader hint
    /// and back off before resubscribing, or give up.
    async fn recover(&mut self, err: ClientError, addr: &str, lived: Duration) -> Result<(), ClientError> {
        tracing::debug!(addr, error = %err, "raftq subscription broke");
        if !err.is_retryable() {
            return Err(err);
        }
        match err.leader_hint() {
            Some(hint) if hint != addr => self.client.set_leader(hint),
            // An overloaded leader is still the leader.
            _ if err.retry_after().is_some() => {}
            _ => self.client.forget(addr),
        }
        if lived >= STREAM_HEALTHY_AFTER {
            self.failures = 0;
        }
        self.failures += 1;
        let policy = &self.client.config().retry;
        if self.failures >= policy.max_attempts {
            return Err(ClientError::RetriesExhausted {
                attempts: self.failures,
                elapsed: lived,
                last: Box::new(err),
                in_doubt: false,
            });
        }
        let delay = backoff_delay(policy, self.failures, fastrand::f64());
        tokio::time::sleep(delay.max(err.retry_after().unwrap_or_default())).await;
        Ok(())
    }
}
