//! `raftq-sim`: runs simulation seeds in parallel within a time budget.
//!
//! ```text
//! raftq-sim --seeds 0..1000 --jobs 2 --budget-secs 600
//! raftq-sim --seed 42 --log            # replay one seed, with its log
//! raftq-sim --seeds 0..200 --faults crash,partition
//! ```
//!
//! Prints a line per failing seed (with the command that replays it), then
//! exactly one summary line `seeds=N failed=F lost=L unexpected=U
//! duplicated=D`. Exits non-zero if any seed failed. Failing seeds are
//! appended to `simulation/regression-seeds.txt`.

use std::ops::Range;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use raftq_simulation::batch::{failure_lines, reproduce_command};
use raftq_simulation::{FaultSet, REGRESSION_FILE, SeedReport, SimOptions, record_regression_seed, run_batch};

#[derive(Debug, Parser)]
#[command(name = "raftq-sim", about = "Deterministic simulation of a raftq cluster under faults")]
struct Args {
    /// Seeds to run, `A..B` (B excluded).
    #[arg(long, value_parser = parse_range)]
    seeds: Option<Range<u64>>,
    /// Run this one seed and print everything about it.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Seeds run in parallel (each on its own thread and simulation).
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Stop starting new seeds after this many seconds.
    #[arg(long)]
    budget_secs: Option<u64>,
    /// Fault kinds: `default` (all but torn), `all`, `none`, or a list
    /// such as `crash,partition`.
    #[arg(long, default_value = "default")]
    faults: FaultSet,
    /// Break every disk on purpose (acknowledge appends before syncing):
    /// proves the checker finds lost messages.
    #[arg(long)]
    ack_before_sync: bool,
    /// Plant a client bug (retry every call after an "outcome unknown"
    /// answer): proves the checker finds a write applied twice.
    #[arg(long)]
    retry_in_doubt: bool,
    /// Print a line to stderr as each seed finishes, with its trace hash.
    #[arg(long)]
    progress: bool,
    /// Do not append failing seeds to the regression file.
    #[arg(long)]
    no_record: bool,
    /// Print the simulation's tracing log (filter from `RUST_LOG`, default
    /// `info`) — for replaying one seed.
    #[arg(long)]
    log: bool,
}

/// Most failing seeds one run appends to the regression file.
const RECORDED_PER_RUN_MAX: usize = 10;

/// What kind of failure a report shows: its violations with the numbers
/// left out, so two seeds failing the same way compare equal.
fn failure_kind(report: &SeedReport) -> String {
    let kinds: Vec<String> = report
        .verdict
        .violations
        .iter()
        .map(|v| v.split(':').next().unwrap_or("").chars().filter(|c| !c.is_ascii_digit()).collect())
        .collect();
    kinds.join("|")
}

fn parse_range(text: &str) -> Result<Range<u64>, String> {
    let (start, end) = text.split_once("..").ok_or_else(|| format!("{text:?} is not A..B"))?;
    let start = start.trim().parse::<u64>().map_err(|e| format!("{start:?}: {e}"))?;
    let end = end.trim().parse::<u64>().map_err(|e| format!("{end:?}: {e}"))?;
    if end <= start {
        return Err(format!("{text:?} is empty"));
    }
    Ok(start..end)
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    if args.log {
        install_log();
    }
    let options = SimOptions {
        faults: args.faults.clone(),
        ack_before_sync: args.ack_before_sync,
        retry_in_doubt: args.retry_in_doubt,
    };
    let seeds: Vec<u64> = match (&args.seeds, args.seed) {
        (_, Some(seed)) => vec![seed],
        (Some(range), None) => range.clone().collect(),
        (None, None) => bail!("give --seeds A..B or --seed N"),
    };
    let single = args.seed.is_some();
    let started = Instant::now();
    let print = |report: &SeedReport| {
        if args.progress {
            eprintln!(
                "seed {} {} in {:.1?} trace {}",
                report.seed,
                if report.failed() { "failed" } else { "passed" },
                report.wall,
                report.trace_hash
            );
        }
        if single {
            print_detail(report, &options);
        } else if report.failed() {
            println!("{}", failure_lines(report, &options));
        }
    };
    let budget = args.budget_secs.map(Duration::from_secs);
    let summary = run_batch(&seeds, args.jobs, budget, &options, &print);
    if !args.no_record && !options.plants_a_bug() {
        // One seed per kind of failure: a common bug must not flood the file.
        let mut kinds = std::collections::BTreeSet::new();
        for report in &summary.failed {
            if kinds.len() >= RECORDED_PER_RUN_MAX || !kinds.insert(failure_kind(report)) {
                continue;
            }
            record_regression_seed(Path::new(REGRESSION_FILE), report, &options)
                .with_context(|| format!("recording seed {} in {REGRESSION_FILE}", report.seed))?;
        }
    }
    if summary.skipped > 0 {
        eprintln!("budget spent: {} seeds not run", summary.skipped);
    }
    eprintln!("wall time {:.1?}", started.elapsed());
    println!("{summary}");
    Ok(if summary.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn print_detail(report: &SeedReport, options: &SimOptions) {
    let v = &report.verdict;
    println!("seed {}: {}", report.seed, report.summary);
    println!("nemesis:");
    for line in &report.nemesis_log {
        println!("  {line}");
    }
    println!(
        "ops={} confirmed={} delivered={} lost={} unexpected={} duplicated={} recovered={} failed_but_delivered={} undrained={} \
         outcome_unknown={}",
        report.ops,
        v.confirmed,
        v.delivered,
        v.lost,
        v.unexpected,
        v.duplicated,
        v.recovered,
        v.failed_but_delivered,
        v.undrained,
        v.outcome_unknown
    );
    println!("simulated {} ms in {:.1?}; trace hash {}", report.sim_ms, report.wall, report.trace_hash);
    if report.failed() {
        println!("{}", failure_lines(report, options));
    } else {
        println!("PASS (replay: {})", reproduce_command(report.seed, options));
    }
}

/// Logs with simulated time, so a replayed seed's log reads in sim time.
fn install_log() {
    #[derive(Debug)]
    struct SimTime;
    impl tracing_subscriber::fmt::time::FormatTime for SimTime {
        fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
            write!(w, "{:>9?}", turmoil::sim_elapsed().unwrap_or_default())
        }
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_timer(SimTime)
        .with_thread_names(true)
        .with_writer(std::io::stderr)
        .init();
}
