//! `raftq health`: asks one node's `grpc.health.v1.Health/Check` and exits 0
//! only if the answer is SERVING. It is the container health check (the
//! image has no shell and no curl) and a Kubernetes exec probe.
//!
//! Which service is asked decides what "healthy" means:
//! - `raftq.v1.Queue` (the default): this node knows a leader, so it can
//!   serve or forward clients — "ready".
//! - `""` (`--service ''`): the process serves gRPC at all — "alive".

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// The service whose health means "knows a leader" (see `raftq-server`).
pub const QUEUE_SERVICE: &str = "raftq.v1.Queue";

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The node's gRPC address.
    #[arg(long, env = "RAFTQ_HEALTH_ADDR", default_value = "127.0.0.1:7101")]
    pub addr: String,
    /// The service to check: `raftq.v1.Queue` = knows a leader (ready);
    /// '' = the process serves (alive).
    #[arg(long, default_value = QUEUE_SERVICE)]
    pub service: String,
    /// Limit on connecting and answering, together.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub timeout: Duration,
}

/// Checks once; `Ok` only for SERVING.
pub async fn run(args: HealthArgs, tls: Option<raftq_client::TlsConfig>, json: bool) -> Result<()> {
    let status = tokio::time::timeout(args.timeout, check(&args.addr, &args.service, tls.as_ref()))
        .await
        .with_context(|| format!("{}: no answer within {:?}", args.addr, args.timeout))??;
    let name = status_name(status);
    if json {
        let report = serde_json::json!({ "addr": args.addr, "service": args.service, "status": name });
        println!("{report}");
    } else {
        println!("{} {:?}: {name}", args.addr, args.service);
    }
    if status != ServingStatus::Serving {
        bail!("{} {:?} is {name}", args.addr, args.service);
    }
    Ok(())
}

/// One `Health/Check` call, over TLS if `tls` is set.
pub async fn check(addr: &str, service: &str, tls: Option<&raftq_client::TlsConfig>) -> Result<ServingStatus> {
    let settings = raftq_client::ClientConfig { tls: tls.cloned(), ..raftq_client::ClientConfig::new([addr]) };
    let endpoint = raftq_client::endpoint(addr, &settings).with_context(|| format!("{addr:?} is not host:port"))?;
    let channel = endpoint.connect().await.with_context(|| format!("connecting to {addr}"))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest { service: service.to_owned() })
        .await
        .with_context(|| format!("{addr}: Health/Check {service:?}"))?;
    Ok(serving_status(response.into_inner().status))
}

/// The wire enum, with unknown values read as UNKNOWN.
fn serving_status(raw: i32) -> ServingStatus {
    match raw {
        1 => ServingStatus::Serving,
        2 => ServingStatus::NotServing,
        _ => ServingStatus::Unknown,
    }
}

fn status_name(status: ServingStatus) -> &'static str {
    match status {
        ServingStatus::Serving => "SERVING",
        ServingStatus::NotServing => "NOT_SERVING",
        ServingStatus::Unknown => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_status_decodes() {
        assert_eq!(serving_status(1), ServingStatus::Serving);
        assert_eq!(serving_status(2), ServingStatus::NotServing);
        for other in [0, 3, -1] {
            assert_eq!(serving_status(other), ServingStatus::Unknown);
        }
        assert_eq!(status_name(ServingStatus::NotServing), "NOT_SERVING");
    }
}
