//! The simulation suite, one module per area. Every test runs whole seeds
//! through [`raftq_simulation::run_batch`] on two threads.

mod bug_catching;
mod ci_mix;
mod determinism;
mod regression;

use raftq_simulation::batch::failure_lines;
use raftq_simulation::{BatchSummary, SeedReport, SimOptions, run_batch};

/// Seeds run in parallel: CI has two cores.
pub const JOBS: usize = 2;

/// Runs `seeds` and prints each failure as the runner would.
pub fn run(seeds: &[u64], options: &SimOptions) -> BatchSummary {
    let print = |report: &SeedReport| {
        if report.failed() {
            eprintln!("{}", failure_lines(report, options));
        }
    };
    run_batch(seeds, JOBS, None, options, &print)
}
