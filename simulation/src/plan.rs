//! What one seed runs: the fault kinds a run may use ([`FaultSet`]), the
//! run's options, and the [`Plan`] every parameter is derived from — cluster
//! size, Raft timing, network latency, workload shape and the nemesis'
//! choices all come from the seed and nothing else.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use raftq_raft::RaftSettings;

/// One kind of fault the nemesis can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// Dropping partitions between nodes: halves, one node isolated, the
    /// leader isolated, a majority ring.
    Partition,
    /// A one-way partition: one node's messages to the others are dropped.
    Oneway,
    /// Messages between two groups are held (delayed, not dropped) and then
    /// released, like TCP retransmitting across a partition.
    Hold,
    /// Latency spikes on some links.
    Latency,
    /// Crash and restart of a minority (unsynced writes lost).
    Crash,
    /// Crash of every node at once, then restart.
    CrashAll,
    /// Power loss while writing: the newest log record left half-written.
    Torn,
    /// A flipped bit in a committed log record of one node.
    Bitflip,
    /// Add a learner, promote it, remove a node, during the other faults.
    Membership,
    /// The leader loses leadership with entries in flight: it is cut off
    /// from the other nodes (not from clients, whose requests it goes on
    /// appending) just long enough for an election, then the network heals
    /// and its uncommitted entries are discarded — the "outcome unknown"
    /// case clients must not retry blindly.
    Depose,
    /// The leader's wall clock jumps a day ahead or behind, for a while.
    ClockJump,
}

impl Fault {
    pub const ALL: [Fault; 11] = [
        Fault::Partition,
        Fault::Oneway,
        Fault::Hold,
        Fault::Latency,
        Fault::Crash,
        Fault::CrashAll,
        Fault::Torn,
        Fault::Bitflip,
        Fault::Membership,
        Fault::Depose,
        Fault::ClockJump,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Partition => "partition",
            Fault::Oneway => "oneway",
            Fault::Hold => "hold",
            Fault::Latency => "latency",
            Fault::Crash => "crash",
            Fault::CrashAll => "crash-all",
            Fault::Torn => "torn",
            Fault::Bitflip => "bitflip",
            Fault::Membership => "membership",
            Fault::Depose => "depose",
            Fault::ClockJump => "clock-jump",
        }
    }

    /// Faults on the network (the others act on processes and disks).
    pub fn is_network(self) -> bool {
        matches!(self, Fault::Partition | Fault::Oneway | Fault::Hold | Fault::Latency | Fault::Depose)
    }
}

/// A set of fault kinds; written `default`, `all`, `none` or `a,b,c`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultSet(BTreeSet<Fault>);

impl FaultSet {
    pub fn all() -> Self {
        Self(Fault::ALL.into_iter().collect())
    }

    pub fn none() -> Self {
        Self::default()
    }

    /// Every kind: what a run uses unless told otherwise. (Torn writes
    /// were left out while the twin tore an acknowledged record; it now
    /// tears only an append in flight, see `MemDisk::tear_last_write`.)
    pub fn default_mix() -> Self {
        Self(Fault::ALL.into_iter().collect())
    }

    pub fn is_default_mix(&self) -> bool {
        *self == Self::default_mix()
    }

    pub fn contains(&self, fault: Fault) -> bool {
        self.0.contains(&fault)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = Fault> + '_ {
        self.0.iter().copied()
    }

    pub fn is_all(&self) -> bool {
        *self == Self::all()
    }
}

impl FromIterator<Fault> for FaultSet {
    fn from_iter<I: IntoIterator<Item = Fault>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl fmt::Display for FaultSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_default_mix() {
            return f.write_str("default");
        }
        if self.is_all() {
            return f.write_str("all");
        }
        if self.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = self.iter().map(Fault::name).collect();
        f.write_str(&names.join(","))
    }
}

impl FromStr for FaultSet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "all" => return Ok(Self::all()),
            "default" | "" => return Ok(Self::default_mix()),
            "none" => return Ok(Self::none()),
            _ => {}
        }
        s.split(',')
            .map(|name| {
                let name = name.trim();
                Fault::ALL.into_iter().find(|f| f.name() == name).ok_or_else(|| {
                    let known: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                    format!("unknown fault {name:?} (known: default, all, none, {})", known.join(", "))
                })
            })
            .collect()
    }
}

/// How a batch of seeds is run (the same for every seed of the batch).
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// The fault kinds the nemesis may use.
    pub faults: FaultSet,
    /// Turns on every disk's broken `ack_before_sync` mode (an append is
    /// acknowledged before it is durable): the checker must then find
    /// acknowledged messages lost after crashes.
    pub ack_before_sync: bool,
    /// Plants a client bug: every call is retried after an answer in doubt
    /// (UNKNOWN, a timeout, a lost connection), as if nothing had happened
    /// (the bug class this reintroduces: a Receive or Purge applied twice).
    /// The checker must find it.
    pub retry_in_doubt: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self { faults: FaultSet::default_mix(), ack_before_sync: false, retry_in_doubt: false }
    }
}

impl SimOptions {
    /// True if a bug is planted on purpose (such seeds are expected to fail
    /// and are never recorded as regressions).
    pub fn plants_a_bug(&self) -> bool {
        self.ack_before_sync || self.retry_in_doubt
    }
}

/// Every parameter of one run, derived from its seed.
#[derive(Clone, Debug)]
pub struct Plan {
    pub seed: u64,
    /// Initial voters: 3 or 5.
    pub voters: u64,
    /// A spare node, started empty, that the nemesis adds to the cluster.
    pub spare: bool,
    pub raft: RaftSettings,
    pub latency_min_ms: u64,
    pub latency_max_ms: u64,
    /// Producers and consumers run until this much simulated time has
    /// passed; then the nemesis heals everything and the drain starts.
    pub workload_ms: u64,
    /// The time from start until the nemesis' first fault.
    pub faults_from_ms: u64,
    /// The fault kinds this seed uses: all of the run's (combined faults)
    /// or a single one (a fault alone).
    pub faults: FaultSet,
    pub producers: u32,
    pub consumers: u32,
    /// The work queue's lease.
    pub lease_ms: u64,
    /// The work queue's `max_deliveries` (then the message goes to the DLQ).
    pub max_deliveries: u32,
    /// Time between two faults of one nemesis loop.
    pub fault_gap_ms: (u64, u64),
    /// How long one fault lasts.
    pub fault_span_ms: (u64, u64),
    pub ack_before_sync: bool,
    pub retry_in_doubt: bool,
}

/// The most simulated time a drain may take after the final heal.
pub const DRAIN_DEADLINE_MS: u64 = 30_000;

impl Plan {
    /// Derives everything from `seed`. Same seed and options, same plan.
    pub fn derive(seed: u64, options: &SimOptions) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed ^ 0x7261_6674_715f_706c);
        let voters = if rng.bool() { 3 } else { 5 };
        let heartbeat_ms = rng.u64(50..=120);
        let election_timeout_min_ms = heartbeat_ms * rng.u64(3..=5);
        let election_timeout_max_ms = election_timeout_min_ms + rng.u64(100..=election_timeout_min_ms);
        let snapshot_every_entries = [30, 100, 400, 20_000][rng.usize(0..4)];
        let log_kept_behind_snapshot = [0, 10, 100][rng.usize(0..3)];
        let raft = RaftSettings {
            heartbeat_ms,
            election_timeout_min_ms,
            election_timeout_max_ms,
            snapshot_every_entries,
            // Off: the byte trigger is a timer task; the simulation's
            // entries are small and its seeds keep their schedules.
            snapshot_every_bytes: 0,
            log_kept_behind_snapshot,
        };
        let faults = Self::pick_faults(&mut rng, &options.faults);
        let spare = faults.contains(Fault::Membership);
        Self {
            seed,
            voters,
            spare,
            raft,
            latency_min_ms: rng.u64(0..=2),
            latency_max_ms: rng.u64(5..=30),
            workload_ms: rng.u64(9_000..=14_000),
            faults_from_ms: rng.u64(1_500..=3_000),
            faults,
            producers: 2 + rng.u32(0..=1),
            consumers: 3 + rng.u32(0..=1),
            lease_ms: rng.u64(600..=2_500),
            max_deliveries: rng.u32(2..=4),
            fault_gap_ms: (200, rng.u64(800..=2_500)),
            fault_span_ms: (300, rng.u64(1_500..=5_000)),
            ack_before_sync: options.ack_before_sync,
            retry_in_doubt: options.retry_in_doubt,
        }
    }

    /// A third of the seeds test one fault kind alone; the rest combine
    /// every kind the run allows.
    fn pick_faults(rng: &mut fastrand::Rng, allowed: &FaultSet) -> FaultSet {
        let kinds: Vec<Fault> = allowed.iter().collect();
        if kinds.len() > 1 && rng.u32(0..3) == 0 {
            return [kinds[rng.usize(0..kinds.len())]].into_iter().collect();
        }
        allowed.clone()
    }

    /// The ids of the initial voters.
    pub fn voter_ids(&self) -> impl Iterator<Item = u64> + use<> {
        1..=self.voters
    }

    /// The spare node's id, if there is one.
    pub fn spare_id(&self) -> Option<u64> {
        self.spare.then_some(self.voters + 1)
    }

    /// Every node's id, the spare's included.
    pub fn node_ids(&self) -> impl Iterator<Item = u64> + use<> {
        1..=self.voters + u64::from(self.spare)
    }

    /// How long the whole run may take in simulated time.
    pub fn duration_ms(&self) -> u64 {
        self.workload_ms + DRAIN_DEADLINE_MS + 40_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_sets_parse_and_print() {
        assert_eq!("all".parse::<FaultSet>().unwrap(), FaultSet::all());
        assert_eq!("default".parse::<FaultSet>().unwrap().to_string(), "default");
        assert!(FaultSet::default_mix().contains(Fault::Torn));
        assert_eq!("none".parse::<FaultSet>().unwrap(), FaultSet::none());
        let set: FaultSet = "crash, partition".parse().unwrap();
        assert_eq!(set.to_string(), "partition,crash");
        assert!("crash,bogus".parse::<FaultSet>().is_err());
    }

    #[test]
    fn plans_are_a_function_of_the_seed() {
        let options = SimOptions::default();
        let (a, b) = (Plan::derive(7, &options), Plan::derive(7, &options));
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert!(a.producers + a.consumers >= 5);
        assert!(a.raft.heartbeat_ms < a.raft.election_timeout_min_ms);
    }
}
