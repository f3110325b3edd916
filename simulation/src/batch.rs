//! Running many seeds: in parallel on std threads (each seed its own
//! turmoil `Sim`), within a time budget; and the regression-seed file.

use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::plan::{FaultSet, SimOptions};
use crate::run::{SeedReport, run_seed};

/// The regression seeds, checked in beside this crate.
pub const REGRESSION_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/regression-seeds.txt");

/// Stack for seed threads: a node's futures nest deeply (tonic, hyper,
/// openraft), more than a default 2 MiB thread stack comfortably holds.
const SEED_THREAD_STACK_BYTES: usize = 32 * 1024 * 1024;

/// What a batch found, summed over its seeds.
#[derive(Debug, Default)]
pub struct BatchSummary {
    pub seeds: u64,
    pub failed: Vec<SeedReport>,
    pub lost: u64,
    pub unexpected: u64,
    pub duplicated: u64,
    /// Calls answered "outcome unknown", over all seeds.
    pub outcome_unknown: u64,
    /// Seeds left unrun because the budget ran out.
    pub skipped: u64,
}

impl fmt::Display for BatchSummary {
    /// The one summary line the runner ends with.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seeds={} failed={} lost={} unexpected={} duplicated={} outcome_unknown={}",
            self.seeds,
            self.failed.len(),
            self.lost,
            self.unexpected,
            self.duplicated,
            self.outcome_unknown
        )
    }
}

/// Runs `seeds` on `jobs` threads; stops starting new seeds once `budget`
/// has passed. `on_report` sees each report as it completes.
pub fn run_batch(
    seeds: &[u64],
    jobs: usize,
    budget: Option<Duration>,
    options: &SimOptions,
    on_report: &(dyn Fn(&SeedReport) + Sync),
) -> BatchSummary {
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let summary = Mutex::new(BatchSummary::default());
    let watchdog = &Watchdog::default();
    let (next, summary) = (&next, &summary);
    std::thread::scope(|scope| {
        scope.spawn(|| watchdog.watch(options));
        let mut workers = Vec::new();
        for job in 0..jobs.max(1) {
            let worker = move || {
                loop {
                    if budget.is_some_and(|budget| started.elapsed() >= budget) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&seed) = seeds.get(i) else { return };
                    watchdog.started(job, seed);
                    let report = run_seed(seed, options);
                    watchdog.finished(job);
                    on_report(&report);
                    let mut summary = summary.lock().unwrap_or_else(PoisonError::into_inner);
                    summary.seeds += 1;
                    summary.lost += report.verdict.lost;
                    summary.unexpected += report.verdict.unexpected;
                    summary.duplicated += report.verdict.duplicated;
                    summary.outcome_unknown += report.verdict.outcome_unknown;
                    if report.failed() {
                        summary.failed.push(report);
                    }
                }
            };
            let spawned = std::thread::Builder::new()
                .name(format!("seeds-{job}"))
                .stack_size(SEED_THREAD_STACK_BYTES)
                .spawn_scoped(scope, worker)
                .expect("spawning a seed thread");
            workers.push(spawned);
        }
        for worker in workers {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        watchdog.stop();
    });
    let mut summary = std::mem::take(&mut *summary.lock().unwrap_or_else(PoisonError::into_inner));
    summary.skipped = seeds.len() as u64 - summary.seeds;
    summary.failed.sort_by_key(|report| report.seed);
    summary
}

/// Longest wall time one seed may take. A host task that spins without
/// ever waiting freezes simulated time inside one step, which the seed's own
/// thread cannot interrupt; rather than hang a CI run, the watchdog ends the
/// process with the seed's replay command.
const SEED_WALL_MAX: Duration = Duration::from_secs(180);

/// Watches the seeds in progress (see [`SEED_WALL_MAX`]).
#[derive(Debug, Default)]
struct Watchdog {
    /// (worker, seed, since)
    running: Mutex<Vec<(usize, u64, Instant)>>,
    done: std::sync::atomic::AtomicBool,
}

impl Watchdog {
    fn started(&self, worker: usize, seed: u64) {
        self.running.lock().unwrap_or_else(PoisonError::into_inner).push((worker, seed, Instant::now()));
    }

    fn finished(&self, worker: usize) {
        self.running.lock().unwrap_or_else(PoisonError::into_inner).retain(|(w, _, _)| *w != worker);
    }

    fn stop(&self) {
        self.done.store(true, Ordering::SeqCst);
    }

    fn watch(&self, options: &SimOptions) {
        while !self.done.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(200));
            let running = self.running.lock().unwrap_or_else(PoisonError::into_inner).clone();
            if let Some((_, seed, _)) = running.iter().find(|(_, _, since)| since.elapsed() > SEED_WALL_MAX) {
                eprintln!(
                    "FAIL seed={seed} hung: no result after {SEED_WALL_MAX:?} of wall time (a task that never waits \
                     froze simulated time)\n  REPRODUCE WITH: {}",
                    reproduce_command(*seed, options)
                );
                std::process::exit(2);
            }
        }
    }
}

/// The command that replays one seed.
pub fn reproduce_command(seed: u64, options: &SimOptions) -> String {
    let mut command = format!("cargo run --release -p raftq-simulation --bin raftq-sim -- --seed {seed}");
    if !options.faults.is_default_mix() {
        command.push_str(&format!(" --faults {}", options.faults));
    }
    if options.ack_before_sync {
        command.push_str(" --ack-before-sync");
    }
    if options.retry_in_doubt {
        command.push_str(" --retry-in-doubt");
    }
    command
}

/// The line printed for a failing seed.
pub fn failure_lines(report: &SeedReport, options: &SimOptions) -> String {
    let v = &report.verdict;
    let mut text = format!(
        "FAIL seed={} lost={} unexpected={} duplicated={} failed_but_delivered={} undrained={} [{}]\n",
        report.seed, v.lost, v.unexpected, v.duplicated, v.failed_but_delivered, v.undrained, report.summary
    );
    for violation in &v.violations {
        text.push_str(&format!("  - {violation}\n"));
    }
    text.push_str(&format!("  REPRODUCE WITH: {}", reproduce_command(report.seed, options)));
    text
}

/// One line of the regression file: a seed and the options it failed with.
#[derive(Clone, Debug)]
pub struct RegressionSeed {
    pub seed: u64,
    pub options: SimOptions,
    pub comment: String,
}

/// Reads the regression file: `SEED [faults=SET] [ack-before-sync] [retry-in-doubt] # why`,
/// one per line; blank lines and `#` lines are skipped.
pub fn read_regression_seeds(path: &Path) -> io::Result<Vec<RegressionSeed>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut seeds = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let (fields, comment) = line.split_once('#').unwrap_or((line, ""));
        let mut words = fields.split_whitespace();
        let Some(seed) = words.next() else { continue };
        let bad =
            |why: String| io::Error::new(io::ErrorKind::InvalidData, format!("{}:{}: {why}", path.display(), n + 1));
        let seed = seed.parse::<u64>().map_err(|e| bad(format!("seed {seed:?}: {e}")))?;
        let mut options = SimOptions::default();
        for word in words {
            match word.split_once('=') {
                Some(("faults", set)) => options.faults = set.parse::<FaultSet>().map_err(bad)?,
                None if word == "ack-before-sync" => options.ack_before_sync = true,
                None if word == "retry-in-doubt" => options.retry_in_doubt = true,
                _ => return Err(bad(format!("unknown field {word:?}"))),
            }
        }
        seeds.push(RegressionSeed { seed, options, comment: comment.trim().to_owned() });
    }
    Ok(seeds)
}

/// Appends a failing seed to the regression file, unless it is listed.
pub fn record_regression_seed(path: &Path, report: &SeedReport, options: &SimOptions) -> io::Result<bool> {
    let known = read_regression_seeds(path)?;
    let same = |r: &RegressionSeed| {
        r.seed == report.seed
            && r.options.faults == options.faults
            && r.options.ack_before_sync == options.ack_before_sync
            && r.options.retry_in_doubt == options.retry_in_doubt
    };
    if known.iter().any(same) {
        return Ok(false);
    }
    let mut line = report.seed.to_string();
    if !options.faults.is_default_mix() {
        line.push_str(&format!(" faults={}", options.faults));
    }
    if options.ack_before_sync {
        line.push_str(" ack-before-sync");
    }
    if options.retry_in_doubt {
        line.push_str(" retry-in-doubt");
    }
    let first = report.verdict.violations.first().map_or("", String::as_str);
    let why: String = first.chars().take(160).collect();
    let mut file = fs::OpenOptions::new().create(true).append(true).open(path)?;
    writeln!(file, "{line}  # found by raftq-sim: {why}")?;
    Ok(true)
}
