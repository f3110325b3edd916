//! The node's HTTP side port, on `raftq server --metrics-listen ADDR`:
//! `/metrics` (Prometheus text format), `/healthz` (the process is up) and
//! `/readyz` (this node knows a leader — its own gRPC health service says
//! `raftq.v1.Queue` is SERVING).
//!
//! With `--console` the same port serves the web console at `/ui/` (see
//! `console.rs`).
//!
//! The libraries only record through the `metrics` facade; this installs the
//! process-wide Prometheus recorder they record into.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic_health::ServingStatus;

use crate::health_cmd;

/// Latency buckets of every `*_seconds` histogram: 0.5 ms to 10 s (a commit
/// is a majority's fsync: milliseconds, seconds under stress).
const BUCKETS_SECONDS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// How often histograms are compacted (the exporter asks for it).
const UPKEEP_PERIOD: Duration = Duration::from_secs(5);
/// Bound on `/readyz`'s own health check.
const READY_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
struct Endpoint {
    handle: PrometheusHandle,
    /// Where this node's gRPC health service answers.
    grpc_addr: String,
    /// How to dial it when it serves TLS (replaced when the files reload).
    tls: SharedTls,
}

/// TLS settings that a reloader may replace while they are in use.
pub type SharedTls = std::sync::Arc<std::sync::RwLock<Option<raftq_client::TlsConfig>>>;

/// Binds `listen` (failing the start if it cannot), installs the recorder,
/// turns the server's sampler on, and serves until the task is aborted.
/// `grpc_listen` is the node's gRPC listen address, for `/readyz`.
/// `tls`: how to dial that port when it serves TLS. `console`: serve the
/// web console too, with this auth policy (`None`: auth is off).
pub async fn start(
    listen: SocketAddr,
    node_id: u64,
    grpc_listen: SocketAddr,
    tls: SharedTls,
    console: Option<Option<std::sync::Arc<raftq_server::auth::Auth>>>,
) -> Result<JoinHandle<()>> {
    let listener = TcpListener::bind(listen).await.with_context(|| format!("binding metrics on {listen}"))?;
    let handle = PrometheusBuilder::new()
        .add_global_label("node", node_id.to_string())
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS_SECONDS)
        .context("metrics buckets")?
        .install_recorder()
        .context("installing the metrics recorder")?;
    raftq_server::enable_metrics_sampler();
    let grpc_addr = dialable(grpc_listen).to_string();
    let console = console.map(|auth| crate::console::Console::new(grpc_addr.clone(), tls.clone(), auth));
    match console {
        Some(_) => tracing::info!(listen = %listen, "serving /metrics, /healthz, /readyz and the console at /ui/"),
        None => tracing::info!(listen = %listen, "serving /metrics, /healthz, /readyz"),
    }
    let endpoint = Endpoint { handle, grpc_addr, tls };
    Ok(tokio::spawn(serve(listener, endpoint, console)))
}

async fn serve(listener: TcpListener, endpoint: Endpoint, console: Option<std::sync::Arc<crate::console::Console>>) {
    let upkeep = endpoint.handle.clone();
    let mut app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(endpoint);
    if let Some(console) = console {
        app = app.merge(crate::console::router(console));
    }
    let upkeep = async move {
        let mut ticks = tokio::time::interval(UPKEEP_PERIOD);
        loop {
            ticks.tick().await;
            upkeep.run_upkeep();
        }
    };
    tokio::select! {
        served = axum::serve(listener, app) => {
            if let Err(e) = served {
                tracing::error!(error = %e, "metrics endpoint failed");
            }
        }
        () = upkeep => {}
    }
}

async fn metrics(State(endpoint): State<Endpoint>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], endpoint.handle.render())
}

async fn ready(State(endpoint): State<Endpoint>) -> (StatusCode, String) {
    let tls = endpoint.tls.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let check = health_cmd::check(&endpoint.grpc_addr, health_cmd::QUEUE_SERVICE, tls.as_ref());
    match tokio::time::timeout(READY_CHECK_TIMEOUT, check).await {
        Ok(Ok(ServingStatus::Serving)) => (StatusCode::OK, "ready: this node knows a leader\n".into()),
        Ok(Ok(status)) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {status:?} (no leader known)\n")),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e:#}\n")),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "not ready: health check timed out\n".into()),
    }
}

/// The address to dial for a listener bound to `listen` (an unspecified
/// address is reached on loopback).
fn dialable(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listen.port()),
        _ => listen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_listen_addresses_are_dialed_on_loopback() {
        let dial = |s: &str| dialable(s.parse().unwrap()).to_string();
        assert_eq!(dial("0.0.0.0:7101"), "127.0.0.1:7101");
        assert_eq!(dial("[::]:7101"), "[::1]:7101");
        assert_eq!(dial("10.1.2.3:7101"), "10.1.2.3:7101");
    }
}
