//! Gives two errors tonic makes before any handler runs the codes the
//! contract names (PRODUCT.md §3):
//!
//! - a request larger than the gRPC message limit: tonic answers
//!   OUT_OF_RANGE; the contract says RESOURCE_EXHAUSTED ("message or batch
//!   too large").
//! - bytes that are not a valid protobuf message: tonic answers INTERNAL,
//!   which reads as a server bug; they are bad input, INVALID_ARGUMENT.
//!
//! Only answers that carry tonic's own wording for these two cases are
//! changed (they come back trailers-only, the status in the headers); the
//! message is kept.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::codegen::http;
use tonic::{Code, Status};

/// tonic's message for a request over `max_decoding_message_size`.
const TOO_LARGE_PREFIX: &str = "Error, decoded message length too large";
/// prost's message for bytes that do not decode.
const UNDECODABLE_PREFIX: &str = "failed to decode Protobuf message";

/// The code and reason the contract gives `status`, if they differ.
fn remapped(status: &Status) -> Option<(Code, &'static str)> {
    use crate::error::reason;
    match status.code() {
        Code::OutOfRange if status.message().starts_with(TOO_LARGE_PREFIX) => {
            Some((Code::ResourceExhausted, reason::REQUEST_TOO_LARGE))
        }
        Code::Internal if status.message().starts_with(UNDECODABLE_PREFIX) => {
            Some((Code::InvalidArgument, reason::INVALID_ARGUMENT))
        }
        _ => None,
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct StatusMapLayer;

impl<S> tower::Layer<S> for StatusMapLayer {
    type Service = StatusMap<S>;

    fn layer(&self, inner: S) -> StatusMap<S> {
        StatusMap { inner }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct StatusMap<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> tower::Service<http::Request<B>> for StatusMap<S>
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
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            let Some(status) = Status::from_header_map(response.headers()) else {
                return Ok(response);
            };
            match remapped(&status) {
                Some((code, reason)) => {
                    Ok(crate::error::rich(code, status.message(), reason, Default::default()).into_http())
                }
                None => Ok(response),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, Service, ServiceExt};

    async fn answer(status: Option<Status>) -> http::Response<String> {
        let inner = tower::service_fn(move |_: http::Request<()>| {
            let status = status.clone();
            async move {
                Ok::<_, std::convert::Infallible>(match status {
                    Some(status) => status.into_http(),
                    None => http::Response::new("ok".to_owned()),
                })
            }
        });
        let mut service = StatusMapLayer.layer(inner);
        service.ready().await.unwrap().call(http::Request::new(())).await.unwrap()
    }

    fn code(response: &http::Response<String>) -> Option<Code> {
        Status::from_header_map(response.headers()).map(|s| s.code())
    }

    #[tokio::test]
    async fn tonic_s_decode_errors_get_the_contract_s_codes() {
        let large =
            Status::out_of_range(format!("{TOO_LARGE_PREFIX}: found 20000000 bytes, the limit is: 16777216 bytes"));
        let response = answer(Some(large)).await;
        assert_eq!(code(&response), Some(Code::ResourceExhausted));
        let message = Status::from_header_map(response.headers()).unwrap().message().to_owned();
        assert!(message.contains("20000000"), "the message is kept: {message}");
        let reason = |response: &http::Response<String>| {
            use tonic_types::StatusExt;
            Status::from_header_map(response.headers()).and_then(|s| s.get_details_error_info()).map(|i| i.reason)
        };
        assert_eq!(reason(&response).as_deref(), Some("REQUEST_TOO_LARGE"));
        let garbage = Status::internal(format!("{UNDECODABLE_PREFIX}: invalid wire type value: 7"));
        let response = answer(Some(garbage)).await;
        assert_eq!(code(&response), Some(Code::InvalidArgument));
        assert_eq!(reason(&response).as_deref(), Some("INVALID_ARGUMENT"));
        // Anything else passes unchanged.
        assert_eq!(code(&answer(Some(Status::out_of_range("lease_ms too long"))).await), Some(Code::OutOfRange));
        assert_eq!(code(&answer(Some(Status::internal("storage failed"))).await), Some(Code::Internal));
        assert_eq!(answer(None).await.into_body(), "ok");
    }
}
