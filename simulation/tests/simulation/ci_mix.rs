//! The CI-sized run: 500 seeds of mixed faults (each seed combines every
//! default fault kind, or tests one alone). About 5–6 minutes on two cores
//! in release.

use raftq_simulation::SimOptions;

/// Seeds per CI run. The suite is tuned so this takes about 8 minutes on
/// two cores in release.
const CI_SEEDS: u64 = 500;

#[test]
fn mixed_faults_500_seeds() {
    let seeds: Vec<u64> = (0..CI_SEEDS).collect();
    let options = SimOptions::default();
    let summary = super::run(&seeds, &options);
    eprintln!("{summary}");
    assert_eq!(summary.seeds, CI_SEEDS);
    let failed: Vec<u64> = summary.failed.iter().map(|r| r.seed).take(20).collect();
    assert!(failed.is_empty(), "{summary}: failing seeds {failed:?}… (see above; each prints its replay command)");
}
