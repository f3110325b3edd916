//! Fault classes and the scenario loop: start the workload, inject and heal
//! faults in cycles for the scenario's duration, then heal, drain and check.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use raftq_client::{DigestScan, QueueConfig, TopicConfig};
use serde::Serialize;
use tokio::time::Instant;

use crate::check::{ReplicaDigests, Verdict, check, replica_digests};
use crate::cluster::Cluster;
use crate::workload::{TopicLoad, Workload, WorkloadConfig};

/// The faults this suite injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// `docker kill -s KILL` the leader, later `docker start` it.
    KillLeader,
    /// The same for a follower.
    KillFollower,
    /// `docker pause` the leader, later unpause it.
    PauseLeader,
    /// Detach the leader from the cluster network, later reattach it.
    PartitionLeader,
    /// Detach a follower, later reattach it.
    PartitionFollower,
    /// Stop all three (SIGTERM) at once, then start them.
    RestartAll,
    /// SIGKILL all three at once, then start them.
    KillAll,
    /// `docker restart` one node after another, each once the cluster is
    /// whole again.
    RollingRestart,
}

impl Fault {
    pub const ALL: [Fault; 8] = [
        Fault::KillLeader,
        Fault::KillFollower,
        Fault::PauseLeader,
        Fault::PartitionLeader,
        Fault::PartitionFollower,
        Fault::RestartAll,
        Fault::KillAll,
        Fault::RollingRestart,
    ];

    pub fn name(self) -> String {
        self.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default()
    }
}

/// Timing of one scenario.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Faults are injected in cycles until this much time has passed.
    pub duration: Duration,
    /// How long a fault stays before it is healed.
    pub hold: Duration,
    /// Calm after the cluster is whole again, before the next fault.
    pub settle: Duration,
    /// Bound on the cluster becoming whole after a heal.
    pub converge_limit: Duration,
    /// Bound on draining the queue after the last fault.
    pub drain_limit: Duration,
}

/// What one scenario did and found.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    pub fault: Fault,
    pub queue: String,
    /// From the workload's start until publishing stopped.
    pub duration_ms: u64,
    pub cycles: u32,
    /// What was done when (ms since the workload started).
    pub events: Vec<String>,
    /// Whether the queue was empty at the end (everything acked).
    pub drained_empty: bool,
    pub drain_ms: u64,
    pub verdict: Verdict,
    /// The replicas' state digests after the drain.
    pub replicas: ReplicaDigests,
    pub acks_ok: u64,
    pub acks_failed: u64,
    pub receive_errors: u64,
    /// Failed publish calls by error message.
    pub publish_errors: BTreeMap<String, u64>,
}

impl ScenarioReport {
    pub fn passed(&self) -> bool {
        self.drained_empty && !self.verdict.failed() && self.replicas.agree()
    }
}

/// What an injected fault left to undo.
#[derive(Debug)]
enum Injected {
    Stopped(Vec<String>),
    Paused(String),
    Partitioned(String),
    /// Nothing: the fault healed itself (rolling restart).
    Nothing,
}

/// Queue lease in scenarios: short, so messages whose ack was lost come
/// back quickly.
const LEASE_MS: u64 = 3_000;

/// Runs one scenario on a whole cluster and returns its report.
pub async fn run(
    cluster: &Cluster,
    fault: Fault,
    timing: &Timing,
    workload: &WorkloadConfig,
    run_id: &str,
) -> Result<ScenarioReport> {
    cluster.heal_and_converge(timing.converge_limit).await.context("cluster not whole before the scenario")?;
    let queue = format!("chaos-{}-{run_id}", fault.name());
    let config = QueueConfig::default().lease(Duration::from_millis(LEASE_MS));
    cluster.admin().create_queue(&queue, config.clone()).await.with_context(|| format!("creating {queue}"))?;
    let topic = TopicLoad::for_queue(&queue);
    let admin = cluster.admin();
    admin.create_topic(&topic.topic, TopicConfig::default()).await.context("creating the topic")?;
    for (fan_queue, filter) in topic.bindings() {
        admin.create_queue(&fan_queue, config.clone()).await.with_context(|| format!("creating {fan_queue}"))?;
        admin.bind(&topic.topic, &fan_queue, filter).await.with_context(|| format!("binding {fan_queue}"))?;
    }
    let mut load = Workload::start(&queue, &topic, &format!("{}-{run_id}", fault.name()), workload, || {
        cluster.client(workload.call_limit)
    })?;
    let mut events = Events { fault, started: load.started, lines: Vec::new() };
    let cycles = match cycle_faults(cluster, fault, timing, &load, &mut events).await {
        Ok(cycles) => cycles,
        Err(e) => {
            // Stop the workload before giving up, so it does not run on
            // into the next scenario.
            load.stop_publishing().await;
            load.stop_consuming().await;
            return Err(e);
        }
    };
    let (attempts, end_ms) = load.stop_publishing().await;
    events.note(format!("publishers stopped after {} calls", attempts.len()));
    let drain_start = Instant::now();
    let mut drained_empty = true;
    for queue in std::iter::once(&queue).chain(topic.queues.iter().map(|(q, _)| q)) {
        let left = timing.drain_limit.saturating_sub(drain_start.elapsed());
        drained_empty &= drain(cluster, queue, left).await;
    }
    let drain_ms = drain_start.elapsed().as_millis() as u64;
    events.note(format!("drain {} after {drain_ms} ms", if drained_empty { "done" } else { "INCOMPLETE" }));
    let log = load.stop_consuming().await;
    let verdict = check(&attempts, &log.deliveries, end_ms);
    // With the workload stopped, every replica must reach the same applied
    // index with the same state digest (G8), and each one's stored digest
    // must match a full recount of its state.
    let replicas = replica_digests(
        cluster.admin().verify_replicas(timing.converge_limit, DigestScan::Full).await.map_err(|e| e.to_string()),
    );
    events.note(format!(
        "replica digests: {} at applied index {:?} {}",
        replicas.result, replicas.applied_index, replicas.detail
    ));
    let mut publish_errors = BTreeMap::new();
    for error in attempts.iter().filter_map(|a| a.error.as_deref()) {
        // Group by the error, not by how many retries it took.
        let error = error.split(" (gave up after").next().unwrap_or(error);
        *publish_errors.entry(error.chars().take(160).collect()).or_default() += 1;
    }
    Ok(ScenarioReport {
        fault,
        queue,
        duration_ms: end_ms,
        cycles,
        events: events.lines,
        drained_empty,
        drain_ms,
        verdict,
        replicas,
        acks_ok: log.acks_ok,
        acks_failed: log.acks_failed,
        receive_errors: log.receive_errors,
        publish_errors,
    })
}

/// The scenario's log: what was done when.
struct Events {
    fault: Fault,
    started: Instant,
    lines: Vec<String>,
}

impl Events {
    fn note(&mut self, what: String) {
        let line = format!("{:>7} ms  {what}", self.started.elapsed().as_millis());
        tracing::info!("{}: {line}", self.fault.name());
        self.lines.push(line);
    }
}

/// Waits for the workload's first confirmed publish, then injects, holds
/// and heals `fault` in cycles until `timing.duration` has passed (at least
/// once). Returns the number of cycles.
async fn cycle_faults(
    cluster: &Cluster,
    fault: Fault,
    timing: &Timing,
    load: &Workload,
    events: &mut Events,
) -> Result<u32> {
    if !load.wait_first_confirmed(Duration::from_secs(30)).await {
        bail!("no publish confirmed within 30 s before any fault");
    }
    let faults_start = Instant::now();
    let mut cycles = 0;
    while cycles == 0 || faults_start.elapsed() < timing.duration {
        let injected = inject(cluster, fault, timing).await?;
        events.note(format!("injected {fault:?}: {injected:?}"));
        if !matches!(injected, Injected::Nothing) {
            tokio::time::sleep(timing.hold).await;
            heal(cluster, &injected).await?;
            events.note("healed".into());
        }
        let took = cluster.converge(timing.converge_limit).await?;
        events.note(format!("whole again after {} ms", took.as_millis()));
        tokio::time::sleep(timing.settle).await;
        cycles += 1;
    }
    Ok(cycles)
}

/// Injects one fault.
async fn inject(cluster: &Cluster, fault: Fault, timing: &Timing) -> Result<Injected> {
    let docker = &cluster.docker;
    let leader_id = cluster.leader(timing.converge_limit).await?;
    let leader = cluster.node(leader_id)?.container.clone();
    let follower = cluster.follower_of(leader_id).container.clone();
    let all: Vec<String> = cluster.containers().into_iter().map(str::to_owned).collect();
    Ok(match fault {
        Fault::KillLeader | Fault::KillFollower => {
            let victim = if fault == Fault::KillLeader { leader } else { follower };
            docker.kill(&[&victim]).await?;
            Injected::Stopped(vec![victim])
        }
        Fault::PauseLeader => {
            docker.pause(&leader).await?;
            Injected::Paused(leader)
        }
        Fault::PartitionLeader | Fault::PartitionFollower => {
            let victim = if fault == Fault::PartitionLeader { leader } else { follower };
            docker.disconnect(&victim).await?;
            Injected::Partitioned(victim)
        }
        Fault::RestartAll => {
            docker.stop(&refs(&all)).await?;
            Injected::Stopped(all)
        }
        Fault::KillAll => {
            docker.kill(&refs(&all)).await?;
            Injected::Stopped(all)
        }
        Fault::RollingRestart => {
            for container in &all {
                docker.restart(container).await?;
                cluster.converge(timing.converge_limit).await?;
            }
            Injected::Nothing
        }
    })
}

async fn heal(cluster: &Cluster, injected: &Injected) -> Result<()> {
    let docker = &cluster.docker;
    match injected {
        Injected::Stopped(containers) => docker.start(&refs(containers)).await,
        Injected::Paused(container) => docker.unpause(container).await,
        Injected::Partitioned(container) => docker.connect(container).await,
        Injected::Nothing => Ok(()),
    }
}

/// Waits (at most `limit`) until `queue` holds nothing: every message
/// delivered and acked (the consumers keep running meanwhile).
async fn drain(cluster: &Cluster, queue: &str, limit: Duration) -> bool {
    let start = Instant::now();
    loop {
        if let Ok(info) = cluster.admin().get_queue(queue).await
            && info.stats.ready + info.stats.leased + info.stats.delayed + info.stats.dead == 0
        {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn refs(names: &[String]) -> Vec<&str> {
    names.iter().map(String::as_str).collect()
}
