//! The driver: builds one turmoil `Sim` for a seed, steps it, carries out
//! the nemesis' host commands between steps, and hands the history and the
//! replicas' final state to the checker.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use raftq_server::ServerConfig;

use crate::checker::{self, Verdict};
use crate::history::trace_hash;
use crate::nemesis::{Commands, HostCommand, Links, Nemesis};
use crate::node::{self, NodeSpec};
use crate::panics;
use crate::plan::{Plan, SimOptions};
use crate::workload::{self, Shared};

/// Simulated time per step. Raft timings are tens of ms and more, so 1 ms
/// steps resolve every race that matters.
const TICK_MS: u64 = 1;
/// The simulated wall clock starts here (2023-11-14), on every run.
const EPOCH_SECS: u64 = 1_700_000_000;
/// A turmoil host may queue this many unaccepted connections and buffered
/// segments per socket (the default, 64, panics under reconnect storms).
const TCP_CAPACITY: usize = 4096;

/// The result of one seed.
#[derive(Clone, Debug)]
pub struct SeedReport {
    pub seed: u64,
    /// The plan's essentials, for humans.
    pub summary: String,
    pub verdict: Verdict,
    /// Hash of the history and the final replica digests.
    pub trace_hash: String,
    pub ops: usize,
    /// Simulated time the run took.
    pub sim_ms: u64,
    pub wall: Duration,
    pub nemesis_log: Vec<String>,
}

impl SeedReport {
    pub fn failed(&self) -> bool {
        self.verdict.failed()
    }
}

/// Runs one seed and checks it. Never panics: a panic anywhere in the run
/// becomes a violation.
pub fn run_seed(seed: u64, options: &SimOptions) -> SeedReport {
    let started = Instant::now();
    panics::start_capture();
    // The client's retry jitter uses fastrand's thread-local generator.
    fastrand::seed(seed ^ 0x6a69_7474_6572);
    let plan = Plan::derive(seed, options);
    let summary = format!(
        "voters={} spare={} faults={} heartbeat={}ms election={}..{}ms snapshot_every={} latency={}..{}ms workload={}ms",
        plan.voters,
        plan.spare,
        plan.faults,
        plan.raft.heartbeat_ms,
        plan.raft.election_timeout_min_ms,
        plan.raft.election_timeout_max_ms,
        plan.raft.snapshot_every_entries,
        plan.latency_min_ms,
        plan.latency_max_ms,
        plan.workload_ms
    );
    let mut driver = Driver::new(plan);
    let outcome = catch_unwind(AssertUnwindSafe(|| driver.simulate()));
    let mut problems = Vec::new();
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => problems.push(format!("simulation did not complete: {e}")),
        Err(payload) => problems.push(format!("simulation panicked: {}", panics::payload_text(&*payload))),
    }
    problems.extend(panics::finish_capture().into_iter().map(|p| format!("panic: {p}")));
    driver.report(seed, summary, problems, started)
}

/// One seed's world: the nodes (with their disks), the shared client state
/// and the nemesis' mailbox.
/// How long a tear waits for an append in flight on its node.
const TEAR_WAIT_MS: u64 = 200;

/// Simulated fsync latency of every node's disk.
const SYNC_DELAY_MS: u64 = 4;

struct Driver {
    plan: Plan,
    nodes: Vec<Arc<NodeSpec>>,
    shared: Arc<Shared>,
    commands: Commands,
    /// Every turmoil host name.
    hosts: Vec<String>,
    /// Links whose latency the nemesis raised.
    slowed: BTreeSet<(String, String)>,
    /// Tears ordered but not done yet: (node, simulated ms by which it is
    /// done anyway). A tear waits for an append in flight on that node, the
    /// only record a power cut can damage.
    deferred_tears: Vec<(u64, u64)>,
    sim_ms: u64,
}

impl Driver {
    fn new(plan: Plan) -> Self {
        let peers: raftq_raft::Peers = plan.voter_ids().map(|id| (id, node::node_addrs(id))).collect();
        let nodes: Vec<Arc<NodeSpec>> = plan
            .node_ids()
            .map(|id| {
                let config = ServerConfig {
                    node_id: id,
                    peers: peers.clone(),
                    raft: plan.raft.clone(),
                    cluster_name: "raftq-sim".to_owned(),
                    limits: raftq_server::ServerLimits::default(),
                    auth: None,
                    peer_token: None,
                    peer_identity: false,
                    snapshot_spool: raftq_server::SnapshotSpool::Memory,
                    disk: None,
                };
                let spec = NodeSpec::new(id, config, plan.seed);
                spec.disk.set_ack_before_sync(plan.ack_before_sync);
                // fsync takes time, so a crash can land while an append is
                // in flight: that record is what a tear damages.
                spec.disk.set_sync_delay(Duration::from_millis(SYNC_DELAY_MS));
                Arc::new(spec)
            })
            .collect();
        let servers = nodes.iter().map(|n| n.addr.clone()).collect();
        let shared = Arc::new(Shared::new(plan.clone(), servers));
        let mut hosts: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
        hosts.extend(Self::client_names(&plan).into_iter().map(|(name, _)| name));
        hosts.push("nemesis".to_owned());
        Self {
            plan,
            nodes,
            shared,
            commands: Commands::default(),
            hosts,
            slowed: BTreeSet::new(),
            deferred_tears: Vec::new(),
            sim_ms: 0,
        }
    }

    /// Producers `p0..`, then consumers `c0..`, with their process ids.
    fn client_names(plan: &Plan) -> Vec<(String, u32)> {
        let producers = (0..plan.producers).map(|p| (format!("p{p}"), p));
        let consumers = (0..plan.consumers).map(|c| (format!("c{c}"), plan.producers + c));
        producers.chain(consumers).collect()
    }

    fn simulate(&mut self) -> Result<(), String> {
        let plan = &self.plan;
        let mut sim = turmoil::Builder::new()
            .simulation_duration(Duration::from_millis(plan.duration_ms()))
            .tick_duration(Duration::from_millis(TICK_MS))
            .epoch(UNIX_EPOCH + Duration::from_secs(EPOCH_SECS))
            .rng_seed(plan.seed)
            .min_message_latency(Duration::from_millis(plan.latency_min_ms))
            .max_message_latency(Duration::from_millis(plan.latency_max_ms))
            .tcp_capacity(TCP_CAPACITY)
            .enable_random_order()
            .build();
        for node in &self.nodes {
            let spec = node.clone();
            sim.host(node.name.as_str(), move || node::run(spec.clone()));
        }
        // Declared after `sim`, so dropped before it: the hosts' tasks die
        // with the `Sim`, and that is no Raft failure.
        let _teardown = Teardown(self.nodes.clone());
        for (name, process) in Self::client_names(plan) {
            let shared = self.shared.clone();
            if process < plan.producers {
                sim.client(name, workload::producer(shared, process));
            } else {
                sim.client(name, workload::consumer(shared, process));
            }
        }
        let nemesis = Nemesis::new(self.shared.clone(), self.nodes.clone(), self.hosts.clone(), self.commands.clone());
        sim.client("nemesis", nemesis.run());
        let result = loop {
            match sim.step() {
                Ok(true) => break Ok(()),
                Ok(false) => {}
                Err(e) => break Err(e.to_string()),
            }
            for command in self.commands.take() {
                self.execute(&mut sim, command);
            }
            self.tear_when_in_flight(&mut sim, None);
        };
        self.sim_ms = sim.elapsed().as_millis() as u64;
        result
    }

    fn node(&self, id: u64) -> &Arc<NodeSpec> {
        self.nodes.iter().find(|n| n.id == id).expect("the nemesis names existing nodes")
    }

    fn execute(&mut self, sim: &mut turmoil::Sim<'_>, command: HostCommand) {
        match command {
            HostCommand::Crash(ids) => {
                for id in ids {
                    let node = self.node(id);
                    crash_host(sim, node);
                    node.disk.crash();
                }
            }
            HostCommand::Restart(ids) => {
                for id in ids {
                    self.tear_when_in_flight(sim, Some(id));
                    let node = self.node(id).clone();
                    if !sim.is_host_running(node.name.as_str()) {
                        Self::recheck_corruption(&node);
                        node.observed().crashing = true;
                        sim.bounce(node.name.as_str());
                        node.observed().crashing = false;
                    }
                }
            }
            HostCommand::Tear(id) => self.deferred_tears.push((id, now_ms(sim) + TEAR_WAIT_MS)),
            HostCommand::Corrupt { node, index } => {
                let spec = self.node(node);
                if spec.disk.corrupt_log_entry(index) {
                    spec.observed().expect_refusal = Some(index);
                } else {
                    self.shared
                        .log_at(now_ms(sim), format!("node {node}: log record {index} is gone; nothing to corrupt"));
                }
            }
            HostCommand::Partition(links) => each(&links, |a, b| sim.partition(a, b)),
            HostCommand::PartitionOneway(links) => each(&links, |a, b| sim.partition_oneway(a, b)),
            HostCommand::Hold(links) => each(&links, |a, b| sim.hold(a, b)),
            HostCommand::Latency(links, ms) => {
                each(&links, |a, b| sim.set_link_max_message_latency(a, b, Duration::from_millis(ms)));
                self.slowed.extend(links);
            }
            HostCommand::HealNetwork => {
                for (i, a) in self.hosts.iter().enumerate() {
                    for b in &self.hosts[i + 1..] {
                        sim.release(a.as_str(), b.as_str());
                    }
                }
                let normal = Duration::from_millis(self.plan.latency_max_ms);
                for (a, b) in std::mem::take(&mut self.slowed) {
                    sim.set_link_max_message_latency(a.as_str(), b.as_str(), normal);
                }
            }
        }
    }

    /// Carries out deferred tears whose node has an append in flight, whose
    /// wait is over, or (`force`) that node is about to restart.
    fn tear_when_in_flight(&mut self, sim: &mut turmoil::Sim<'_>, force: Option<u64>) {
        if self.deferred_tears.is_empty() {
            return;
        }
        let now = now_ms(sim);
        let mut waiting = Vec::new();
        for (id, by_ms) in std::mem::take(&mut self.deferred_tears) {
            let node = self.node(id).clone();
            if force == Some(id) || now >= by_ms || node.disk.log_write_in_flight() {
                crash_host(sim, &node);
                let torn = node.disk.tear_last_write();
                self.shared.log_at(now, format!("node {id}: tore log record {torn:?}"));
            } else {
                waiting.push((id, by_ms));
            }
        }
        self.deferred_tears = waiting;
    }

    /// Before restarting a node whose log the nemesis corrupted: the start
    /// must be refused only if the damaged record is still on disk (a
    /// snapshot may have purged it meanwhile). Looking flips the bit back,
    /// so a record found is flipped again.
    fn recheck_corruption(node: &NodeSpec) {
        let mut observed = node.observed();
        if let Some(index) = observed.expect_refusal {
            if node.disk.corrupt_log_entry(index) {
                node.disk.corrupt_log_entry(index);
            } else {
                observed.expect_refusal = None;
            }
        }
    }

    /// Checks the history and the replicas, and builds the seed's report.
    fn report(self, seed: u64, summary: String, problems: Vec<String>, started: Instant) -> SeedReport {
        let ops = self.shared.history.ops();
        let mut verdict = checker::check(&ops, &self.shared.undrained());
        let (replica_problems, digest_lines) = self.check_replicas();
        verdict.violations.extend(replica_problems);
        verdict.violations.extend(self.shared.notes());
        verdict.violations.extend(problems);
        let drained_at_ms = self.shared.drained_at_ms.load(std::sync::atomic::Ordering::SeqCst);
        let healed_at_ms = self.shared.healed_at_ms.load(std::sync::atomic::Ordering::SeqCst);
        let mut nemesis_log = self.shared.nemesis_log();
        nemesis_log.push(format!("healed at {healed_at_ms} ms, drained at {drained_at_ms} ms"));
        SeedReport {
            seed,
            summary,
            verdict,
            trace_hash: trace_hash(&ops, &digest_lines),
            ops: ops.len(),
            sim_ms: self.sim_ms,
            wall: started.elapsed(),
            nemesis_log,
        }
    }

    /// Compares the state digests of the final members (those not dead) at
    /// the newest index all of them applied; also collects broken core
    /// invariants and the node wrapper's own findings.
    fn check_replicas(&self) -> (Vec<String>, Vec<String>) {
        let mut problems = Vec::new();
        for node in &self.nodes {
            let observed = node.observed();
            problems.extend(observed.violations.iter().cloned());
            if let Some(e) = &observed.invariant_error {
                problems.push(format!("node {}: core invariant broken {e}", node.id));
            }
        }
        let Some(members) = self.shared.final_members() else { return (problems, Vec::new()) };
        let live = crate::node::live_members(&self.nodes, &members, &self.shared.dead());
        let digests: Vec<(u64, BTreeMap<u64, [u8; 16]>)> =
            live.iter().map(|node| (node.id, node.observed().digests.clone())).collect();
        let common = digests
            .iter()
            .map(|(_, d)| d.keys().copied().collect::<BTreeSet<u64>>())
            .reduce(|a, b| a.intersection(&b).copied().collect())
            .and_then(|common| common.last().copied());
        let Some(index) = common else {
            problems.push(format!("replicas {:?} never applied a common index after the drain", members));
            return (problems, Vec::new());
        };
        let at_index: BTreeMap<u64, String> = digests.iter().map(|(id, d)| (*id, hex(&d[&index]))).collect();
        let distinct: BTreeSet<&String> = at_index.values().collect();
        if distinct.len() > 1 {
            problems.push(format!("replica state digests differ at applied index {index}: {at_index:?}"));
        }
        let lines = at_index.iter().map(|(id, digest)| format!("n{id} {index} {digest}")).collect();
        (problems, lines)
    }
}

/// Marks every node as being torn down when dropped.
struct Teardown(Vec<Arc<NodeSpec>>);

impl Drop for Teardown {
    fn drop(&mut self) {
        for node in &self.0 {
            node.observed().crashing = true;
        }
    }
}

/// Stops a node's host (its tasks are dropped at once; its connections
/// close in the order they were made).
fn crash_host(sim: &mut turmoil::Sim<'_>, node: &NodeSpec) {
    node.observed().crashing = true;
    node.sockets.begin_crash();
    sim.crash(node.name.as_str());
    node.sockets.end_crash();
    node.observed().crashing = false;
}

fn now_ms(sim: &turmoil::Sim<'_>) -> u64 {
    sim.elapsed().as_millis() as u64
}

fn each(links: &Links, mut f: impl FnMut(&str, &str)) {
    for (a, b) in links {
        f(a, b);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
