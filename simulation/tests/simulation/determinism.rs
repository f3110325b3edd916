//! Same seed, same run: two runs of a seed give the same trace hash (the
//! history of every call and the replicas' final digests), also when they
//! run beside other seeds on other threads and after different seeds on
//! their own thread. Each seed here runs twice in one batch on two threads,
//! the condition under which replays used to differ: a crashed host's
//! connections closed in an order set by process-global tokio task ids
//! (fixed by `raftq_simulation::net::HostSockets`), and the client and the
//! Raft transport dropped their channels in `HashMap` order.
//! `simulation/README.md` ("Determinism") has the whole list.

use std::collections::BTreeMap;
use std::sync::Mutex;

use raftq_simulation::{FaultSet, Plan, SeedReport, SimOptions, run_batch};

/// Seeds without faults whose clients drop channels to several nodes at
/// once (they replayed differently while channels lived in a `HashMap`).
const FAULT_FREE_SEEDS: [u64; 3] = [1, 2, 4];
/// Seeds of the default mix whose plans crash nodes (0, 1, 2, 3, 6 and 9
/// all replayed differently before the fixes).
const DEFAULT_MIX_SEEDS: [u64; 6] = [0, 1, 2, 3, 6, 9];
/// Seeds with every fault kind: torn appends (102), flipped bits (104), and
/// crashes, tears and a flip together (107). All replayed differently
/// before the fixes.
const ALL_FAULTS_SEEDS: [u64; 3] = [102, 104, 107];

/// Runs every seed twice, interleaved with the others, and requires equal
/// plans, verdicts and trace hashes.
fn assert_replays(seeds: &[u64], options: &SimOptions) {
    for &seed in seeds {
        assert_eq!(format!("{:?}", Plan::derive(seed, options)), format!("{:?}", Plan::derive(seed, options)));
    }
    let runs: Vec<u64> = seeds.iter().chain(seeds).copied().collect();
    let reports = Mutex::new(Vec::<SeedReport>::new());
    let collect = |report: &SeedReport| reports.lock().expect("reports").push(report.clone());
    run_batch(&runs, super::JOBS, None, options, &collect);
    let mut by_seed: BTreeMap<u64, Vec<SeedReport>> = BTreeMap::new();
    for report in reports.into_inner().expect("reports") {
        by_seed.entry(report.seed).or_default().push(report);
    }
    assert_eq!(by_seed.len(), seeds.len(), "every seed ran");
    for (seed, reports) in &by_seed {
        let [a, b] = &reports[..] else { panic!("seed {seed} ran {} times, not twice", reports.len()) };
        assert!(!a.failed(), "seed {seed} failed: {:?}", a.verdict);
        assert_eq!(a.ops, b.ops, "seed {seed}: the two runs made a different number of calls");
        assert_eq!(
            a.trace_hash, b.trace_hash,
            "seed {seed} replayed to a different trace; RAFTQ_SIM_TRACE_FILE=path raftq-sim --seed {seed} \
             writes a run's trace to diff against another"
        );
    }
}

#[test]
fn a_fault_free_seed_replays_to_the_same_trace() {
    let options = SimOptions { faults: FaultSet::none(), ..SimOptions::default() };
    assert_replays(&FAULT_FREE_SEEDS, &options);
}

#[test]
fn a_seed_with_crashes_replays_to_the_same_trace() {
    assert_replays(&DEFAULT_MIX_SEEDS, &SimOptions::default());
}

#[test]
fn a_seed_with_every_fault_kind_replays_to_the_same_trace() {
    let options = SimOptions { faults: FaultSet::all(), ..SimOptions::default() };
    assert_replays(&ALL_FAULTS_SEEDS, &options);
}
