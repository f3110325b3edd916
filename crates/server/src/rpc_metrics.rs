//! A tower layer on the gRPC server: one request counter by RPC and status
//! code, one latency histogram by RPC (names in the README's "Metrics"
//! table). Recording only; a no-op without a recorder.
//!
//! The code is the one known when the response headers go out: an error
//! answered before any message (every unary error) has its code there; a
//! stream that fails later counts as OK. The latency of a streaming RPC is
//! the time until its stream opened.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::Instant;
use tonic::codegen::http;

/// Services whose methods get their own label; anything else is "other",
/// so no client can mint unbounded label values.
const KNOWN_SERVICES: [(&str, &str); 5] = [
    ("raftq.v1.Queue", "Queue"),
    ("raftq.v1.Cluster", "Cluster"),
    ("raftq.v1.RaftTransport", "RaftTransport"),
    ("grpc.health.v1.Health", "Health"),
    ("grpc.reflection.v1.ServerReflection", "Reflection"),
];
/// Longest method name taken as a label.
const METHOD_CHARS_MAX: usize = 64;

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RpcMetricsLayer;

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> RpcMetrics<S> {
        RpcMetrics { inner }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct RpcMetrics<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> tower::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let rpc = rpc_label(request.uri().path());
        let start = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            let code = match &result {
                Ok(response) => grpc_code(response.headers()),
                Err(_) => tonic::Code::Unknown,
            };
            // An unknown method of a known service: not worth a label.
            let rpc = if code == tonic::Code::Unimplemented { "other".to_owned() } else { rpc };
            metrics::counter!("raftq_grpc_requests_total", "rpc" => rpc.clone(), "code" => format!("{code:?}"))
                .increment(1);
            metrics::histogram!("raftq_grpc_request_duration_seconds", "rpc" => rpc)
                .record(start.elapsed().as_secs_f64());
            result
        })
    }
}

/// `/raftq.v1.Queue/Publish` → `Queue/Publish`; anything unknown → `other`.
fn rpc_label(path: &str) -> String {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let (Some(service), Some(method)) = (parts.next(), parts.next()) else {
        return "other".to_owned();
    };
    let short = KNOWN_SERVICES.iter().find(|(full, _)| *full == service).map(|(_, short)| *short);
    match short {
        Some(short)
            if !method.is_empty()
                && method.len() <= METHOD_CHARS_MAX
                && method.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            format!("{short}/{method}")
        }
        _ => "other".to_owned(),
    }
}

/// The `grpc-status` of a trailers-only answer; OK when there is none yet.
fn grpc_code(headers: &http::HeaderMap) -> tonic::Code {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map_or(tonic::Code::Ok, tonic::Code::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded() {
        assert_eq!(rpc_label("/raftq.v1.Queue/Publish"), "Queue/Publish");
        assert_eq!(rpc_label("/grpc.health.v1.Health/Check"), "Health/Check");
        for other in ["/", "", "/evil.Service/X", "/raftq.v1.Queue/", "/raftq.v1.Queue/a-b", "/raftq.v1.Queue/a/b"] {
            assert_eq!(rpc_label(other), "other", "{other:?}");
        }
        assert_eq!(rpc_label(&format!("/raftq.v1.Queue/{}", "x".repeat(65))), "other");
    }

    #[test]
    fn codes_come_from_trailers_only_headers() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(grpc_code(&headers), tonic::Code::Ok);
        headers.insert("grpc-status", http::HeaderValue::from_static("14"));
        assert_eq!(grpc_code(&headers), tonic::Code::Unavailable);
        headers.insert("grpc-status", http::HeaderValue::from_static("x"));
        assert_eq!(grpc_code(&headers), tonic::Code::Ok);
    }
}
