//! The nemesis: a turmoil client that decides faults from the seed and
//! hands them to the driver as [`HostCommand`]s (crashing a host and its
//! disk needs the `Sim` itself, which only the driver holds). Three loops
//! run at once — network faults, process and disk faults, membership
//! changes — so faults happen alone and combined. At the end of the
//! workload it heals everything, watches the drain, and waits for the
//! replicas to converge.
//!
//! The nemesis never takes away more voters than a majority can spare: a
//! node crashed, torn or corrupted counts against the budget until it is
//! back, and a node that refuses to start (or was removed) counts forever.

use std::cell::RefCell;
use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use raftq_client::{Client, Code, Member, Membership};
use tokio::time::{sleep, timeout};

mod finale;

use crate::history::Outcome;
use crate::node::{NodeSpec, node_name};
use crate::plan::Fault;
use crate::workload::{Shared, elapsed_ms};

/// A day, in ms: how far a clock jump moves a node's wall clock.
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Pairs of turmoil host names.
pub type Links = Vec<(String, String)>;

/// Something only the driver can do, between two simulation steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostCommand {
    /// Power loss: the hosts stop, their disks drop unsynced writes.
    Crash(Vec<u64>),
    /// Starts crashed hosts again (their stores reopen from disk).
    Restart(Vec<u64>),
    /// Power loss while writing: the newest log record is left torn.
    Tear(u64),
    /// Flips a bit in log record `index` of node `node` (which keeps
    /// running until the nemesis restarts it).
    Corrupt {
        node: u64,
        index: u64,
    },
    Partition(Links),
    /// Drops what the first host of each pair sends to the second.
    PartitionOneway(Links),
    /// Holds messages both ways until the network heals.
    Hold(Links),
    /// Sets the links' maximum latency (ms) until the network heals.
    Latency(Links, u64),
    /// Every link healthy, held messages delivered, latency restored.
    HealNetwork,
}

/// The nemesis' mailbox to the driver.
#[derive(Clone, Debug, Default)]
pub struct Commands(Arc<Mutex<VecDeque<HostCommand>>>);

impl Commands {
    pub fn push(&self, command: HostCommand) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push_back(command);
    }

    pub fn take(&self) -> Vec<HostCommand> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).drain(..).collect()
    }
}

/// What the nemesis believes about the cluster.
#[derive(Debug)]
struct Beliefs {
    voters: BTreeSet<u64>,
    /// Down for now (crashed, torn, being restarted).
    down: BTreeSet<u64>,
    /// Down for good: refused to start, or removed from the cluster.
    dead: BTreeSet<u64>,
    /// A membership change is under way: no process faults meanwhile.
    membership_busy: bool,
}

impl Beliefs {
    /// How many more voters may go down without losing the majority.
    fn spare_voters(&self) -> usize {
        let tolerated = (self.voters.len().max(1) - 1) / 2;
        let unavailable = self.voters.iter().filter(|id| self.down.contains(id) || self.dead.contains(id)).count();
        tolerated.saturating_sub(unavailable)
    }

    fn up_voters(&self) -> Vec<u64> {
        self.voters.iter().copied().filter(|id| !self.down.contains(id) && !self.dead.contains(id)).collect()
    }
}

/// The nemesis client.
#[derive(Debug)]
pub struct Nemesis {
    shared: Arc<Shared>,
    nodes: Vec<Arc<NodeSpec>>,
    /// Every host name: nodes and clients (an isolated node is cut from all).
    hosts: Vec<String>,
    commands: Commands,
    beliefs: RefCell<Beliefs>,
    rng: RefCell<fastrand::Rng>,
    client: Client,
}

impl Nemesis {
    pub fn new(shared: Arc<Shared>, nodes: Vec<Arc<NodeSpec>>, hosts: Vec<String>, commands: Commands) -> Self {
        let plan = &shared.plan;
        let beliefs = Beliefs {
            voters: plan.voter_ids().collect(),
            down: BTreeSet::new(),
            dead: BTreeSet::new(),
            membership_busy: false,
        };
        let rng = fastrand::Rng::with_seed(plan.seed ^ 0x6e65_6d65_7369_7321);
        let client = shared.client();
        Self { shared, nodes, hosts, commands, beliefs: RefCell::new(beliefs), rng: RefCell::new(rng), client }
    }

    /// Runs the whole nemesis: faults, final heal, drain watch, convergence.
    pub async fn run(self) -> turmoil::Result {
        futures_util::join!(self.network_loop(), self.process_loop(), self.membership_loop());
        self.heal_all();
        self.watch_drain().await;
        self.await_convergence().await;
        Ok(())
    }

    fn log_line(&self, line: String) {
        self.shared.log(line);
    }

    fn mark_dead(&self, node: u64) {
        self.beliefs.borrow_mut().dead.insert(node);
        self.shared.mark_dead(node);
    }

    fn rng_u64(&self, range: std::ops::Range<u64>) -> u64 {
        self.rng.borrow_mut().u64(range)
    }

    fn pick<T: Clone>(&self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.rng.borrow_mut().usize(0..items.len())].clone())
    }

    fn workload_over(&self) -> bool {
        elapsed_ms() >= self.shared.plan.workload_ms
    }

    /// Sleeps `ms`, but not past the end of the workload.
    async fn pause(&self, ms: u64) {
        let left = self.shared.plan.workload_ms.saturating_sub(elapsed_ms());
        sleep(Duration::from_millis(ms.min(left))).await;
    }

    async fn gap(&self) {
        let (low, high) = self.shared.plan.fault_gap_ms;
        self.pause(self.rng_u64(low..high)).await;
    }

    async fn span(&self) {
        let (low, high) = self.shared.plan.fault_span_ms;
        self.pause(self.rng_u64(low..high)).await;
    }

    async fn wait_for_faults(&self) {
        let from = self.shared.plan.faults_from_ms;
        sleep(Duration::from_millis(from.saturating_sub(elapsed_ms()))).await;
    }

    fn enabled(&self, kinds: &[Fault]) -> Vec<Fault> {
        kinds.iter().copied().filter(|kind| self.shared.plan.faults.contains(*kind)).collect()
    }

    fn node_ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|node| node.id).collect()
    }

    /// The leader's id, if some node names one quickly.
    async fn leader(&self) -> Option<u64> {
        let status = timeout(Duration::from_secs(1), self.client.cluster_status()).await.ok()?.ok()?;
        status.leader_id
    }

    // ---- network ------------------------------------------------------

    async fn network_loop(&self) {
        let kinds = self.enabled(&[Fault::Partition, Fault::Oneway, Fault::Hold, Fault::Latency, Fault::Depose]);
        if kinds.is_empty() {
            return;
        }
        self.wait_for_faults().await;
        loop {
            self.gap().await;
            if self.workload_over() {
                return;
            }
            let Some(kind) = self.pick(&kinds) else { return };
            if kind == Fault::Depose {
                self.depose().await;
                continue;
            }
            let command = match kind {
                Fault::Partition => HostCommand::Partition(self.partition_links().await),
                Fault::Oneway => self.oneway().await,
                Fault::Hold => HostCommand::Hold(self.partition_links().await),
                _ => self.latency_spike(),
            };
            self.log_line(format!("{command:?}"));
            self.commands.push(command);
            self.span().await;
            self.log_line("heal network".into());
            self.commands.push(HostCommand::HealNetwork);
        }
    }

    /// Halves, one node isolated, the leader isolated, or a majority ring.
    async fn partition_links(&self) -> Links {
        let mut nodes = self.node_ids();
        self.rng.borrow_mut().shuffle(&mut nodes);
        match self.rng_u64(0..4) {
            0 => {
                let cut = self.rng.borrow_mut().usize(1..nodes.len());
                let (a, b) = nodes.split_at(cut);
                cross(a, b)
            }
            1 => self.isolate(nodes[0]),
            2 => {
                let leader = self.leader().await.unwrap_or(nodes[0]);
                self.isolate(leader)
            }
            _ => ring(&nodes),
        }
    }

    /// Leadership lost with entries in flight: the leader is cut off from
    /// the other nodes only, so clients keep reaching it and it keeps
    /// appending entries it cannot commit; once another node has been
    /// elected the network heals, the old leader adopts the new leader's
    /// log, and its uncommitted entries are discarded. Their clients must
    /// hear "outcome unknown" — some of those entries may have reached a
    /// follower and commit under the new leader after all.
    async fn depose(&self) {
        let Some(leader) = self.leader().await else { return };
        let me = node_name(leader);
        let links: Links =
            self.node_ids().into_iter().filter(|id| *id != leader).map(|id| (me.clone(), node_name(id))).collect();
        let raft = &self.shared.plan.raft;
        let cut_ms = raft.election_timeout_max_ms + self.rng_u64(raft.heartbeat_ms..raft.election_timeout_max_ms + 600);
        self.log_line(format!("depose leader {leader}: cut from the other nodes for {cut_ms} ms"));
        self.commands.push(HostCommand::Partition(links));
        sleep(Duration::from_millis(cut_ms)).await;
        self.log_line("heal network".into());
        self.commands.push(HostCommand::HealNetwork);
    }

    /// Links between `node` and every other host, clients included.
    fn isolate(&self, node: u64) -> Links {
        let name = node_name(node);
        self.hosts.iter().filter(|host| **host != name).map(|host| (name.clone(), host.clone())).collect()
    }

    /// One node (often the leader) can send but not receive, or receive but
    /// not send, to the other nodes.
    async fn oneway(&self) -> HostCommand {
        let nodes = self.node_ids();
        let node = match self.rng_u64(0..2) {
            0 => self.leader().await,
            _ => None,
        };
        let node = node.or_else(|| self.pick(&nodes)).unwrap_or(1);
        let me = node_name(node);
        let others = nodes.iter().filter(|id| **id != node).map(|id| node_name(*id));
        let links = if self.rng_u64(0..2) == 0 {
            others.map(|other| (me.clone(), other)).collect()
        } else {
            others.map(|other| (other, me.clone())).collect()
        };
        HostCommand::PartitionOneway(links)
    }

    fn latency_spike(&self) -> HostCommand {
        let nodes = self.node_ids();
        let node = self.pick(&nodes).unwrap_or(1);
        let links = nodes.iter().filter(|id| **id != node).map(|id| (node_name(node), node_name(*id))).collect();
        HostCommand::Latency(links, self.rng_u64(100..1_500))
    }

    // ---- processes and disks -------------------------------------------

    async fn process_loop(&self) {
        let kinds = self.enabled(&[Fault::Crash, Fault::CrashAll, Fault::Torn, Fault::Bitflip, Fault::ClockJump]);
        if kinds.is_empty() {
            return;
        }
        self.wait_for_faults().await;
        loop {
            self.gap().await;
            if self.workload_over() {
                return;
            }
            if self.beliefs.borrow().membership_busy {
                continue;
            }
            match self.pick(&kinds) {
                Some(Fault::Crash) => self.crash_minority().await,
                Some(Fault::CrashAll) => self.crash_all().await,
                Some(Fault::Torn) => self.tear().await,
                Some(Fault::Bitflip) => self.bitflip().await,
                Some(Fault::ClockJump) => self.clock_jump().await,
                _ => return,
            }
        }
    }

    async fn crash_minority(&self) {
        let (spare, mut up) = {
            let beliefs = self.beliefs.borrow();
            (beliefs.spare_voters(), beliefs.up_voters())
        };
        if spare == 0 {
            return;
        }
        self.rng.borrow_mut().shuffle(&mut up);
        let count = self.rng.borrow_mut().usize(1..=spare).min(up.len());
        let victims: Vec<u64> = up.into_iter().take(count).collect();
        self.down(&victims, HostCommand::Crash(victims.clone())).await;
    }

    async fn crash_all(&self) {
        let victims: Vec<u64> = {
            let beliefs = self.beliefs.borrow();
            self.node_ids().into_iter().filter(|id| !beliefs.dead.contains(id)).collect()
        };
        self.log_line(format!("crash all {victims:?}"));
        self.commands.push(HostCommand::Crash(victims.clone()));
        self.beliefs.borrow_mut().down.extend(victims.iter().copied());
        sleep(Duration::from_millis(self.rng_u64(100..2_000))).await;
        self.restart(&victims).await;
    }

    async fn tear(&self) {
        let (spare, up) = {
            let beliefs = self.beliefs.borrow();
            (beliefs.spare_voters(), beliefs.up_voters())
        };
        let Some(victim) = self.pick(&up).filter(|_| spare > 0) else { return };
        self.down(&[victim], HostCommand::Tear(victim)).await;
    }

    async fn bitflip(&self) {
        let (spare, up) = {
            let beliefs = self.beliefs.borrow();
            (beliefs.spare_voters(), beliefs.up_voters())
        };
        let Some(victim) = self.pick(&up).filter(|_| spare > 0) else { return };
        let applied = self.nodes.iter().find(|n| n.id == victim).map_or(0, |node| node.observed().applied);
        if applied < 20 {
            return;
        }
        // A committed record with newer ones above it: damage, not a tear.
        let index = applied - self.rng_u64(5..applied / 2);
        self.log_line(format!("bitflip node {victim} log record {index}, then crash it"));
        // Crashed at once: a node that reads the damaged record while it
        // runs stops Raft, and raftq-server then spins (see the crate
        // README, "Findings") — simulated time would stop for good.
        self.commands.push(HostCommand::Crash(vec![victim]));
        self.commands.push(HostCommand::Corrupt { node: victim, index });
        self.beliefs.borrow_mut().down.insert(victim);
        sleep(Duration::from_millis(self.rng_u64(50..500))).await;
        self.restart(&[victim]).await;
    }

    /// The leader's wall clock jumps a day ahead or behind for a fault
    /// span, under load, then is set right (a second jump). Entry time must
    /// move by no more than the bound `raftq_server::clock` documents, and
    /// no timer may stop: the checker compares the time the cluster stamps
    /// with simulated time, and the drain proves nothing is stuck.
    async fn clock_jump(&self) {
        let Some(leader) = self.leader().await else { return };
        let Some(node) = self.nodes.iter().find(|n| n.id == leader) else { return };
        let offset_ms = if self.rng_u64(0..2) == 0 { DAY_MS } else { -DAY_MS };
        self.log_line(format!("clock of leader {leader} jumps by {offset_ms} ms"));
        node.clock.set_wall_offset_ms(offset_ms);
        self.span().await;
        self.log_line(format!("clock of node {leader} set right"));
        node.clock.set_wall_offset_ms(0);
    }

    /// Takes `victims` down with `command` for a fault span, then restarts
    /// them.
    async fn down(&self, victims: &[u64], command: HostCommand) {
        self.log_line(format!("{command:?}"));
        self.commands.push(command);
        self.beliefs.borrow_mut().down.extend(victims.iter().copied());
        self.span().await;
        self.restart(victims).await;
    }

    /// Restarts `nodes`; one that refuses to start stays down for good.
    async fn restart(&self, nodes: &[u64]) {
        self.commands.push(HostCommand::Restart(nodes.to_vec()));
        // The store opens when the host next runs: well within this.
        sleep(Duration::from_millis(300)).await;
        for id in nodes {
            self.beliefs.borrow_mut().down.remove(id);
            let refused = self.nodes.iter().find(|n| n.id == *id).and_then(|node| node.observed().refused.clone());
            if let Some(why) = refused {
                self.log_line(format!("node {id} refuses to start: {why}"));
                self.mark_dead(*id);
            }
        }
    }

    // ---- membership ----------------------------------------------------

    async fn membership_loop(&self) {
        let plan = &self.shared.plan;
        let Some(spare) = plan.spare_id().filter(|_| plan.faults.contains(Fault::Membership)) else { return };
        self.wait_for_faults().await;
        self.pause(self.rng_u64(0..plan.workload_ms / 3)).await;
        if self.workload_over() {
            return;
        }
        self.beliefs.borrow_mut().membership_busy = true;
        let (addr, peer_addr) = (crate::node::node_addr(spare), crate::node::node_peer_addr(spare));
        let (addr, peer_addr) = (addr.as_str(), peer_addr.as_str());
        let added = self.retry_membership(|c| async move { c.add_learner(spare, addr, peer_addr).await }).await;
        if added {
            self.retry_membership(|c| async move { c.promote(spare).await }).await;
        }
        self.refresh_voters(None).await;
        self.beliefs.borrow_mut().membership_busy = false;

        self.pause(self.rng_u64(1_500..4_000)).await;
        if self.workload_over() {
            return;
        }
        self.beliefs.borrow_mut().membership_busy = true;
        let victim = {
            let beliefs = self.beliefs.borrow();
            let voters: Vec<u64> = beliefs.voters.iter().copied().collect();
            beliefs.voters.iter().copied().find(|id| beliefs.dead.contains(id)).or_else(|| self.pick(&voters))
        };
        if let Some(victim) = victim {
            self.retry_membership(|c| async move { c.remove_node(victim).await }).await;
            self.refresh_voters(Some(victim)).await;
        }
        self.beliefs.borrow_mut().membership_busy = false;
    }

    /// Runs a membership call until it succeeds or is refused; returns
    /// whether it succeeded.
    async fn retry_membership<F, Fut>(&self, call: F) -> bool
    where
        F: Fn(Client) -> Fut,
        Fut: std::future::Future<Output = Result<Membership, raftq_client::ClientError>>,
    {
        for attempt in 0..5 {
            match call(self.shared.client_starting_at(attempt)).await {
                Ok(membership) => {
                    self.log_line(format!("membership now {:?}", ids(&membership.voters)));
                    return true;
                }
                Err(e) if !Outcome::of_error(&e).is_info() => {
                    self.log_line(format!("membership change refused: {e}"));
                    return e.code() == Code::NotFound;
                }
                Err(e) => {
                    self.log_line(format!("membership change in doubt: {e}"));
                    sleep(Duration::from_millis(300)).await;
                }
            }
        }
        false
    }

    /// Learns the voters from the leader. `removed` was the target of a
    /// remove: once it is no voter, it is stopped for good; if the status
    /// cannot be had, it is assumed gone (the smaller set is the cautious
    /// budget) but left running.
    async fn refresh_voters(&self, removed: Option<u64>) {
        for _ in 0..5 {
            let Some(status) = self.shared.leader_status().await else {
                sleep(Duration::from_millis(300)).await;
                continue;
            };
            let voters: BTreeSet<u64> = status.nodes.iter().filter(|n| n.voter).map(|n| n.node_id).collect();
            let members: BTreeSet<u64> = status.nodes.iter().map(|n| n.node_id).collect();
            self.log_line(format!("voters are {voters:?}"));
            if let Some(node) = removed.filter(|id| !members.contains(id)) {
                self.log_line(format!("node {node} was removed: stopping it for good"));
                self.commands.push(HostCommand::Crash(vec![node]));
                self.mark_dead(node);
            }
            self.beliefs.borrow_mut().voters = voters;
            return;
        }
        if let Some(node) = removed {
            self.beliefs.borrow_mut().voters.remove(&node);
        }
    }
}

fn ids(members: &[Member]) -> Vec<u64> {
    members.iter().map(|m| m.node_id).collect()
}

/// Every link between a node of `a` and a node of `b`.
fn cross(a: &[u64], b: &[u64]) -> Links {
    a.iter().flat_map(|x| b.iter().map(move |y| (node_name(*x), node_name(*y)))).collect()
}

/// A ring in the given order: each node reaches only its two neighbours.
/// With five nodes every node still sees a majority (itself and two), but
/// no two majorities agree on who else is in them.
fn ring(order: &[u64]) -> Links {
    let n = order.len();
    let mut links = Vec::new();
    for i in 0..n {
        for j in i + 1..n {
            let neighbours = j == i + 1 || (i == 0 && j == n - 1);
            if !neighbours {
                links.push((node_name(order[i]), node_name(order[j])));
            }
        }
    }
    links
}
