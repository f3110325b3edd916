//! Same seed, same run? See `simulation/README.md` ("Determinism") for why
//! two runs of a seed can differ today: openraft draws election timeouts
//! from an OS-seeded generator, and tokio's `select!` picks branches with a
//! generator only `--cfg tokio_unstable` can seed. So this test asserts
//! what does hold — the same plan, and (without faults, so that no
//! nondeterministically triggered product bug decides the outcome) the same
//! passing verdict — and reports how many trace hashes agree.

use std::sync::Mutex;

use raftq_simulation::{FaultSet, Plan, SeedReport, SimOptions, run_batch};

const SEEDS: [u64; 4] = [1, 2, 3, 4];

#[test]
fn a_seed_replays_to_the_same_verdict() {
    let options = SimOptions { faults: FaultSet::none(), ..SimOptions::default() };
    let mut same_hash = 0;
    for seed in SEEDS {
        assert_eq!(format!("{:?}", Plan::derive(seed, &options)), format!("{:?}", Plan::derive(seed, &options)));
        let reports = Mutex::new(Vec::<SeedReport>::new());
        let collect = |report: &SeedReport| reports.lock().expect("reports").push(report.clone());
        run_batch(&[seed, seed], super::JOBS, None, &options, &collect);
        let reports = reports.into_inner().expect("reports");
        let [a, b] = &reports[..] else { panic!("two runs of seed {seed}, got {}", reports.len()) };
        assert!(!a.failed() && !b.failed(), "seed {seed} failed without faults: {:?} / {:?}", a.verdict, b.verdict);
        if a.trace_hash == b.trace_hash {
            same_hash += 1;
        }
        eprintln!("seed {seed}: trace {} vs {} ({} vs {} ops)", a.trace_hash, b.trace_hash, a.ops, b.ops);
    }
    eprintln!("{same_hash}/{} seeds replayed to the same trace hash", SEEDS.len());
}
