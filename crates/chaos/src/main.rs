//! `raftq-chaos`: faults injected into the docker-compose raftq cluster
//! (deploy/docker-compose.yml) while a workload publishes and consumes
//! through the Rust client; after each scenario, heal, drain, and check the
//! whole queue (lost, unexpected, duplicated), availability, and that every
//! replica reports the same state digest at the same applied index.
//!
//! Exits non-zero if any scenario lost a confirmed message, delivered an
//! unexpected one, stored one body twice, could not drain, ended with
//! replicas whose digests differ (or could not be compared), or failed to run.
//! Run it through `deploy/chaos/run.sh`, which brings the cluster up first.
//!
//! # Layout
//! - `docker`: the `docker` commands (kill, pause, network disconnect, …).
//! - `cluster`: the nodes, a client that reaches them from the host, and
//!   "is the cluster whole again".
//! - `workload`: publishers and consumers, recording what they see.
//! - `scenario`: the fault classes and the inject/hold/heal loop.
//! - `check`: the verdict — total-queue analysis and availability.

mod check;
mod cluster;
mod docker;
mod scenario;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use serde::Serialize;

use crate::cluster::Cluster;
use crate::docker::Docker;
use crate::scenario::{Fault, ScenarioReport, Timing};
use crate::workload::WorkloadConfig;

#[derive(Debug, Parser)]
#[command(name = "raftq-chaos", about = "Inject faults into the compose raftq cluster under load and check the queue")]
struct Args {
    /// `short`: one fault cycle of ~10 s per class (CI). `long`: 300 s of
    /// fault cycles per class.
    #[arg(long, value_enum, default_value_t = Profile::Short)]
    profile: Profile,
    /// Fault classes to run (default: all), comma-separated.
    #[arg(long, value_enum, value_delimiter = ',')]
    scenarios: Vec<Fault>,
    /// Overrides the profile: how long faults are injected per class.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Overrides the profile: how long each fault lasts.
    #[arg(long, value_parser = humantime::parse_duration)]
    hold: Option<Duration>,
    /// The nodes' advertised addresses, in node-id order (the compose
    /// defaults: service names, ports 7301-7303 published as they are).
    #[arg(long, value_delimiter = ',', default_value = "raftq-1:7301,raftq-2:7302,raftq-3:7303")]
    nodes: Vec<String>,
    /// The nodes' container names, in node-id order. Default: the host
    /// part of each address (the compose project `raftq`).
    #[arg(long, value_delimiter = ',')]
    containers: Vec<String>,
    /// Where the nodes' ports are published.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The compose cluster's network.
    #[arg(long, default_value = "raftq-net")]
    network: String,
    #[arg(long, default_value_t = 2)]
    publishers: usize,
    /// Publish calls per second per publisher.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    #[arg(long, default_value_t = 2)]
    consumers: usize,
    /// Write the JSON report here.
    #[arg(long)]
    report: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Profile {
    Short,
    Long,
}

impl Args {
    fn timing(&self) -> Timing {
        let (duration, hold, settle) = match self.profile {
            Profile::Short => (Duration::from_secs(8), Duration::from_secs(4), Duration::from_secs(2)),
            Profile::Long => (Duration::from_secs(300), Duration::from_secs(10), Duration::from_secs(5)),
        };
        Timing {
            duration: self.duration.unwrap_or(duration),
            hold: self.hold.unwrap_or(hold),
            settle,
            converge_limit: Duration::from_secs(90),
            drain_limit: Duration::from_secs(60),
        }
    }
}

/// The JSON report.
#[derive(Debug, Serialize)]
struct Report {
    profile: Profile,
    started_at_ms: u64,
    passed: bool,
    scenarios: Vec<ScenarioReport>,
    /// Scenarios that could not run to the end, with why.
    errors: Vec<String>,
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RAFTQ_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,raftq_client=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<bool> {
    let docker = Docker { network: args.network.clone(), stop_timeout: Duration::from_secs(10) };
    let cluster = Cluster::new(&args.nodes, &args.containers, &args.host, docker)?;
    let timing = args.timing();
    let workload = WorkloadConfig {
        publishers: args.publishers,
        rate_per_publisher: args.rate,
        consumers: args.consumers,
        call_limit: Duration::from_secs(3),
    };
    let faults = if args.scenarios.is_empty() { Fault::ALL.to_vec() } else { args.scenarios.clone() };
    let started_at_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let run_id = started_at_ms.to_string();
    let mut report = Report { profile: args.profile, started_at_ms, passed: true, scenarios: vec![], errors: vec![] };
    for fault in faults {
        eprintln!("==> scenario {} ({:?} of faults, each held {:?})", fault.name(), timing.duration, timing.hold);
        let outcome = tokio::select! {
            outcome = scenario::run(&cluster, fault, &timing, &workload, &run_id) => outcome,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        };
        match outcome {
            Ok(scenario) => {
                eprintln!("{}", summary_line(&scenario));
                report.passed &= scenario.passed();
                report.scenarios.push(scenario);
            }
            Err(e) => {
                eprintln!("scenario {} failed to run: {e:#}", fault.name());
                report.passed = false;
                report.errors.push(format!("{}: {e:#}", fault.name()));
                if e.to_string() == "interrupted" {
                    break;
                }
            }
        }
    }
    // Leave the cluster as we found it, whatever happened.
    if let Err(e) = cluster.heal_and_converge(timing.converge_limit).await {
        report.errors.push(format!("final heal: {e:#}"));
        report.passed = false;
    }
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &args.report {
        std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("report: {}", path.display());
    }
    print_summary(&report);
    Ok(report.passed)
}

fn summary_line(s: &ScenarioReport) -> String {
    let v = &s.verdict;
    format!(
        "{:<19} {:>3} {:>9} {:>8} {:>5} {:>6} {:>5} {:>6} {:>7.2}% {:>8} ms  {:<9}  {}",
        s.fault.name(),
        s.cycles,
        v.confirmed,
        v.drained,
        v.lost,
        v.unexpected,
        v.double_stored,
        v.duplicated,
        v.availability * 100.0,
        v.longest_outage_ms,
        s.replicas.result,
        if s.passed() { "ok" } else { "FAIL" }
    )
}

fn print_summary(report: &Report) {
    println!(
        "{:<19} {:>3} {:>9} {:>8} {:>5} {:>6} {:>5} {:>6} {:>8} {:>11}  {:<9}",
        "scenario", "cyc", "confirmed", "drained", "lost", "unexp", "2xid", "dup", "avail", "outage", "digests"
    );
    for scenario in &report.scenarios {
        println!("{}", summary_line(scenario));
    }
    for error in &report.errors {
        println!("ERROR {error}");
    }
    let passed = report.scenarios.iter().filter(|s| s.passed()).count();
    let failed = report.scenarios.len() - passed + report.errors.len();
    println!("chaos: {passed} passed, {failed} failed");
}
