//! Load shedding at the door: at most `max` client-API requests (service
//! `raftq.v1.Queue`) are in progress on this node at once, over all
//! connections. One more is answered at once with RESOURCE_EXHAUSTED and
//! `raftq-retry-after-ms`, before its body is read or decoded, so a flood of
//! connections costs a few bytes per refused request instead of a decode
//! buffer and a handler each. The Raft transport, `Cluster`, health and
//! reflection are never shed: a node that shed its peers' AppendEntries could
//! not commit the entries whose answers free the slots.
//!
//! A stream (Subscribe) holds its slot until its response starts, not for
//! its life; the per-connection stream limit bounds open streams.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tonic::codegen::http;

/// Path prefix of the requests that are counted and shed.
const SHED_PREFIX: &str = "/raftq.v1.Queue/";

#[derive(Clone, Debug)]
pub(crate) struct ShedLayer {
    in_flight: Arc<AtomicUsize>,
    max: usize,
}

impl ShedLayer {
    pub(crate) fn new(max: usize) -> Self {
        Self { in_flight: Arc::new(AtomicUsize::new(0)), max }
    }
}

impl<S> tower::Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Shed<S> {
        Shed { inner, in_flight: self.in_flight.clone(), max: self.max }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Shed<S> {
    inner: S,
    in_flight: Arc<AtomicUsize>,
    max: usize,
}

/// One counted request in progress; gives its slot back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> tower::Service<http::Request<B>> for Shed<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if !request.uri().path().starts_with(SHED_PREFIX) {
            return Box::pin(self.inner.call(request));
        }
        let before = self.in_flight.fetch_add(1, Ordering::SeqCst);
        let slot = Slot(self.in_flight.clone());
        if before >= self.max {
            drop(slot);
            metrics::counter!("raftq_requests_shed_total").increment(1);
            let status = crate::error::overloaded(&format!(
                "the node has {before} client requests in progress, its limit; retry with backoff"
            ));
            return Box::pin(std::future::ready(Ok(status.into_http())));
        }
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            drop(slot);
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, Service, ServiceExt};

    fn request(path: &str) -> http::Request<()> {
        http::Request::builder().uri(path).body(()).unwrap()
    }

    /// Past `max` requests in progress, a Queue request is refused at once
    /// with the overload answer; other services pass; a finished request
    /// frees its slot.
    #[tokio::test]
    async fn sheds_queue_requests_past_the_limit_only() {
        let (release, released) = tokio::sync::watch::channel(false);
        let inner = tower::service_fn(move |_: http::Request<()>| {
            let mut released = released.clone();
            async move {
                let _ = released.wait_for(|r| *r).await;
                Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
            }
        });
        let mut shed = ShedLayer::new(2).layer(inner);
        let first = shed.ready().await.unwrap().call(request("/raftq.v1.Queue/Publish"));
        let second = shed.ready().await.unwrap().call(request("/raftq.v1.Queue/Receive"));
        let refused = shed.ready().await.unwrap().call(request("/raftq.v1.Queue/Publish")).await.unwrap();
        let headers = refused.headers();
        assert_eq!(headers.get("grpc-status").map(|v| v.to_str().unwrap()), Some("8"), "{headers:?}");
        assert!(headers.get(raftq_proto::RETRY_AFTER_MS_METADATA_KEY).is_some(), "{headers:?}");
        // The Raft transport is never shed.
        let raft = shed.ready().await.unwrap().call(request("/raftq.v1.RaftTransport/Append"));
        release.send(true).unwrap();
        for answer in [first.await, second.await, raft.await] {
            assert!(answer.unwrap().headers().get("grpc-status").is_none());
        }
        let again = shed.ready().await.unwrap().call(request("/raftq.v1.Queue/Publish")).await.unwrap();
        assert!(again.headers().get("grpc-status").is_none(), "slots were given back");
    }
}
