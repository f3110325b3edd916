//! Time: the [`Clock`] seam and the leader's entry timestamps.
//!
//! `apply` never reads a clock (G8): the only time it sees is the stamp the
//! leader puts on each log entry, and the state keeps time monotonic by
//! never moving backwards. This module decides those stamps so that a wall
//! clock that jumps cannot move the cluster's time by more than a bound:
//!
//! - **Within a leader's term** time advances with the leader's *monotonic*
//!   clock. The wall clock only pulls it, by at most 1 % of the time that
//!   passed ([`SLEW_DIVISOR`]): a wall clock stepped by a day moves entry
//!   time by 0.6 s per minute, never a day at once.
//! - **When a running node takes over as leader** it estimates the time from
//!   what it saw while following: the state's time (the latest applied
//!   entry's stamp) plus the monotonic time since this node last saw an entry
//!   applied under a known leader (which never overstates the time that
//!   passed). It stamps its wall clock clamped between that estimate (and
//!   never below the state's time) and the estimate plus
//!   [`TAKEOVER_STEP_MAX_MS`]. A leader that is idle still commits a `Tick`
//!   every `TIME_HEARTBEAT` (`ticker.rs`), so that evidence is fresh.
//! - **A node that has seen no entry applied under a leader since it
//!   started** (the first leader after a whole-cluster restart) has no such
//!   evidence: it trusts its wall clock, but never goes below the state's
//!   time. So does the very first leader of a new cluster.
//!
//! So while any node keeps running, timers (leases, delays, TTLs, dedup
//! windows) run at the speed of the leader's monotonic clock within 1 %, and
//! a wall-clock jump or a new leader with a wrong clock ends them at most
//! [`TAKEOVER_STEP_MAX_MS`] early (plus 1 % of their length). The one case
//! left to the wall clock is a whole-cluster restart, where no running
//! process can vouch for the time that passed; the docs say so.

use std::fmt;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The node's clocks. A parameter, so the simulation can hand in simulated
/// time (and make a node's wall clock jump).
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    /// Wall time in ms since the Unix epoch. May jump either way.
    fn now_ms(&self) -> u64;
    /// Monotonic time in ms since an arbitrary origin: never jumps, never
    /// goes back.
    fn monotonic_ms(&self) -> u64;
}

/// The system clocks.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }

    fn monotonic_ms(&self) -> u64 {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        ORIGIN.get_or_init(Instant::now).elapsed().as_millis() as u64
    }
}

/// The wall clock pulls entry time by at most 1/`SLEW_DIVISOR` of the
/// monotonic time that passed (1 %).
pub const SLEW_DIVISOR: u64 = 100;

/// The most a new leader moves time forward at once, beyond the state's
/// time, to meet its wall clock.
pub const TAKEOVER_STEP_MAX_MS: u64 = 5_000;

/// The stamp after `previous` (ms, monotonic ms) within one term: the
/// monotonic time that passed, pulled toward `wall_ms` by at most 1 % of it,
/// and never earlier than `previous`.
pub fn continue_stamp(previous: (u64, u64), monotonic_ms: u64, wall_ms: u64) -> u64 {
    continue_stamp_carrying(previous, 0, monotonic_ms, wall_ms).0
}

/// [`continue_stamp`] for a leader that stamps often: `carry` is the
/// monotonic time (ms, under 100) that earlier steps passed but that was too
/// short to earn a whole millisecond of pull; the second value is the carry
/// for the next step. Without it, entries less than 100 ms apart never
/// earned any pull, so under steady traffic the cluster's time never came
/// back to a wall clock that was set right after a jump (found by the
/// simulation, seed 4659: it stayed ~100 ms behind for seconds, and leases
/// lasted that much longer).
pub fn continue_stamp_carrying(previous: (u64, u64), carry: u64, monotonic_ms: u64, wall_ms: u64) -> (u64, u64) {
    let (last_ms, last_monotonic_ms) = previous;
    let elapsed = monotonic_ms.saturating_sub(last_monotonic_ms);
    let base = last_ms.saturating_add(elapsed);
    let earned = elapsed.saturating_add(carry.min(SLEW_DIVISOR - 1));
    let pull = earned / SLEW_DIVISOR;
    let stamp = wall_ms.clamp(base.saturating_sub(pull), base.saturating_add(pull)).max(last_ms);
    (stamp, earned % SLEW_DIVISOR)
}

/// The first stamp of a term. `floor_ms` is the state's time or this
/// node's last stamp, whichever is later; `estimate_ms` is the time this
/// node believes it is from what it saw while following (`None` if it saw
/// nothing since it started): the state's time plus the monotonic time since
/// it saw the last entry applied, which never overstates the time that
/// passed. With an estimate, the wall clock clamped to at least the estimate
/// and at most [`TAKEOVER_STEP_MAX_MS`] past it; without one (or with a
/// state that never had a time), the wall clock. Never below the floor.
pub fn takeover_stamp(floor_ms: u64, estimate_ms: Option<u64>, wall_ms: u64) -> u64 {
    match estimate_ms {
        Some(estimate_ms) if floor_ms > 0 => {
            let low = estimate_ms.max(floor_ms);
            wall_ms.clamp(low, low.saturating_add(TAKEOVER_STEP_MAX_MS))
        }
        _ => wall_ms.max(floor_ms),
    }
}

/// The entry timestamps of one node, across its terms as leader.
pub(crate) struct Stamps {
    clock: std::sync::Arc<dyn Clock>,
    last: Mutex<Last>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Last {
    /// The term the last stamp was made in; `None` before the first.
    term: Option<u64>,
    /// A state time this node saw applied live under a known leader, and
    /// the monotonic ms when it first saw it: evidence of how much time has
    /// passed since, at a takeover. Only a change of the state's time counts
    /// (entries without a time — blank, membership — do not refresh it).
    time_seen: Option<(u64, u64)>,
    /// The last stamp, and the monotonic time it was made at.
    stamp_ms: u64,
    monotonic_ms: u64,
    /// Monotonic ms passed in this term that have not yet earned a whole
    /// millisecond of pull (see [`continue_stamp_carrying`]).
    pull_carry: u64,
}

impl fmt::Debug for Stamps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stamps").field("last", &*self.lock()).finish_non_exhaustive()
    }
}

impl Stamps {
    pub(crate) fn new(clock: std::sync::Arc<dyn Clock>) -> Self {
        Self { clock, last: Mutex::default() }
    }

    fn lock(&self) -> MutexGuard<'_, Last> {
        self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True if the next stamp in `term` is a takeover, which needs the
    /// state's time.
    pub(crate) fn is_takeover(&self, term: u64) -> bool {
        self.lock().term != Some(term)
    }

    /// The stamp for the next entry proposed in `term`. `state_ms` is the
    /// state's time, needed only at a takeover (see [`Self::is_takeover`]).
    pub(crate) fn next(&self, term: u64, state_ms: Option<u64>) -> u64 {
        let wall_ms = self.clock.now_ms();
        let monotonic_ms = self.clock.monotonic_ms();
        let mut last = self.lock();
        let (stamp_ms, pull_carry) = if last.term == Some(term) {
            continue_stamp_carrying((last.stamp_ms, last.monotonic_ms), last.pull_carry, monotonic_ms, wall_ms)
        } else {
            let state_ms = state_ms.unwrap_or(0);
            let floor = state_ms.max(last.stamp_ms);
            let estimate = last.time_seen.map(|(seen_ms, at)| seen_ms.saturating_add(monotonic_ms.saturating_sub(at)));
            (takeover_stamp(floor, estimate, wall_ms), 0)
        };
        *last = Last { term: Some(term), stamp_ms, monotonic_ms, pull_carry, ..*last };
        stamp_ms
    }

    /// Records the state's time, read just after an entry was applied live
    /// under a known leader. Kept only when it differs from the time already
    /// recorded, so the record says when this time was *first* seen.
    pub(crate) fn saw_state_time(&self, state_ms: u64) {
        let now = self.clock.monotonic_ms();
        let mut last = self.lock();
        if last.time_seen.is_none_or(|(seen_ms, _)| seen_ms != state_ms) {
            last.time_seen = Some((state_ms, now));
        }
    }

    /// What the next stamp would be if this term goes on (for deciding when
    /// a timer is due); the wall clock before the first stamp.
    pub(crate) fn estimate_ms(&self) -> u64 {
        let last = *self.lock();
        let wall_ms = self.clock.now_ms();
        if last.term.is_none() {
            return wall_ms;
        }
        continue_stamp_carrying((last.stamp_ms, last.monotonic_ms), last.pull_carry, self.clock.monotonic_ms(), wall_ms)
            .0
    }

    /// Monotonic time since the last stamp (`None` before the first).
    pub(crate) fn since_last(&self) -> Option<Duration> {
        let last = *self.lock();
        last.term?;
        Some(Duration::from_millis(self.clock.monotonic_ms().saturating_sub(last.monotonic_ms)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    const DAY_MS: u64 = 24 * 60 * 60 * 1000;

    /// A clock whose wall time the test sets and steps.
    #[derive(Debug, Default)]
    struct TestClock {
        wall_ms: AtomicU64,
        monotonic_ms: AtomicU64,
    }

    impl TestClock {
        fn pass(&self, ms: u64) {
            self.wall_ms.fetch_add(ms, Ordering::SeqCst);
            self.monotonic_ms.fetch_add(ms, Ordering::SeqCst);
        }
    }

    impl Clock for TestClock {
        fn now_ms(&self) -> u64 {
            self.wall_ms.load(Ordering::SeqCst)
        }
        fn monotonic_ms(&self) -> u64 {
            self.monotonic_ms.load(Ordering::SeqCst)
        }
    }

    fn new_stamps(wall_ms: u64) -> (Arc<TestClock>, Stamps) {
        let clock = Arc::new(TestClock { wall_ms: AtomicU64::new(wall_ms), monotonic_ms: AtomicU64::new(7) });
        (clock.clone(), Stamps::new(clock))
    }

    #[test]
    fn follows_the_monotonic_clock_when_the_wall_clock_is_right() {
        let (clock, stamps) = new_stamps(1_000_000);
        assert_eq!(stamps.next(1, Some(999_000)), 1_000_000, "no evidence yet: the wall clock");
        clock.pass(250);
        assert_eq!(stamps.next(1, None), 1_000_250);
        clock.pass(10_000);
        assert_eq!(stamps.next(1, None), 1_010_250);
    }

    /// The bug: stamps were the wall clock, so a leader whose clock jumped a
    /// day ahead expired every lease and TTL at once.
    #[test]
    fn a_forward_jump_moves_time_by_at_most_one_percent_of_what_passed() {
        let (clock, stamps) = new_stamps(1_000_000);
        let first = stamps.next(1, Some(1_000_000));
        clock.wall_ms.fetch_add(DAY_MS, Ordering::SeqCst);
        clock.pass(1_000);
        let second = stamps.next(1, None);
        assert_eq!(second - first, 1_010, "1 s passed, pulled by 1 %");
        // An hour later it is still within 1 % of an hour of the real time.
        let mut now = second;
        for _ in 0..3_600 {
            clock.pass(1_000);
            now = stamps.next(1, None);
        }
        assert_eq!(now - first, 1_010 + 3_600 * 1_010);
    }

    /// Seed 4659: a leader idle for 10 s stamped right after its clock
    /// jumped back, so its time fell 106 ms behind (1 % of the 10 s). The
    /// clock was set right, but entries then came every few ms, each too
    /// short to earn a millisecond of pull: time stayed behind for seconds.
    #[test]
    fn frequent_entries_still_pull_time_back_to_a_wall_clock_set_right() {
        let (clock, stamps) = new_stamps(10 * DAY_MS);
        let first = stamps.next(1, Some(10 * DAY_MS));
        clock.pass(10_000);
        clock.wall_ms.fetch_sub(DAY_MS, Ordering::SeqCst);
        assert_eq!(stamps.next(1, None) - first, 9_900, "1 % of the 10 s behind");
        clock.wall_ms.fetch_add(DAY_MS, Ordering::SeqCst);
        // An entry every 10 ms for 20 s: 1 % of 20 s is 200 ms of pull,
        // more than the 100 ms behind.
        let mut now = 0;
        for _ in 0..2_000 {
            clock.pass(10);
            now = stamps.next(1, None);
        }
        assert_eq!(now, clock.now_ms(), "caught up with the wall clock");
        // And never faster than 1 %: 100 ms behind took 10 s of entries.
        let (clock, stamps) = new_stamps(1_000_000);
        stamps.next(1, Some(1_000_000));
        clock.wall_ms.fetch_add(DAY_MS, Ordering::SeqCst);
        for _ in 0..1_000 {
            clock.pass(10);
            now = stamps.next(1, None);
        }
        assert_eq!(now, 1_000_000 + 10_000 + 100, "10 s passed, pulled by 1 %");
    }

    #[test]
    fn a_backward_jump_slows_time_but_never_stops_or_reverses_it() {
        let (clock, stamps) = new_stamps(10 * DAY_MS);
        let first = stamps.next(1, Some(10 * DAY_MS));
        clock.wall_ms.fetch_sub(DAY_MS, Ordering::SeqCst);
        clock.pass(1_000);
        assert_eq!(stamps.next(1, None) - first, 990);
        clock.pass(0);
        assert_eq!(stamps.next(1, None) - first, 990, "no time passed: same stamp, never earlier");
    }

    /// The other half of the bug: a new leader whose clock was behind froze
    /// every timer until its clock caught up; one ahead jumped them.
    #[test]
    fn a_new_leader_starts_from_what_it_saw_and_steps_a_bounded_amount() {
        let state_ms = 10 * DAY_MS;
        // Behind: takes the time it saw pass, never its own wall clock, and
        // time keeps moving.
        let (clock, stamps) = new_stamps(5_000);
        stamps.saw_state_time(state_ms);
        clock.pass(300);
        assert_eq!(stamps.next(3, Some(state_ms)), state_ms + 300);
        clock.pass(100);
        assert_eq!(stamps.next(3, None), state_ms + 399, "pulled back by 1 %, never stopped");

        // Ahead by a day: steps from its estimate by at most the bound.
        let (clock, stamps) = new_stamps(state_ms + DAY_MS);
        stamps.saw_state_time(state_ms);
        clock.pass(2_000);
        let first = stamps.next(4, Some(state_ms));
        assert_eq!(first, state_ms + 2_000 + TAKEOVER_STEP_MAX_MS);
        clock.pass(1_000);
        assert_eq!(stamps.next(4, None), first + 1_010);
        assert!(stamps.is_takeover(5));
        assert!(!stamps.is_takeover(4));

        // Right: the estimate covers an idle gap, the wall clock is taken.
        let (clock, stamps) = new_stamps(state_ms);
        stamps.saw_state_time(state_ms);
        clock.pass(60_000);
        assert_eq!(stamps.next(7, Some(state_ms)), state_ms + 60_000);
    }

    /// After a whole-cluster restart no process saw the time pass: the
    /// first leader trusts its wall clock (never below the state's time).
    #[test]
    fn without_evidence_the_wall_clock_is_trusted() {
        let state_ms = 10 * DAY_MS;
        let (_, stamps) = new_stamps(state_ms + 7 * DAY_MS);
        assert_eq!(stamps.next(9, Some(state_ms)), state_ms + 7 * DAY_MS);
        let (_, stamps) = new_stamps(state_ms - DAY_MS);
        assert_eq!(stamps.next(9, Some(state_ms)), state_ms);
        // A new cluster's state has no time yet: the wall clock.
        let (_, stamps) = new_stamps(state_ms);
        stamps.saw_state_time(state_ms);
        assert_eq!(stamps.next(1, Some(0)), state_ms);
    }

    #[test]
    fn a_later_term_never_goes_below_this_nodes_own_last_stamp() {
        let (clock, stamps) = new_stamps(10 * DAY_MS);
        let first = stamps.next(1, Some(10 * DAY_MS));
        clock.wall_ms.fetch_sub(DAY_MS, Ordering::SeqCst);
        assert_eq!(stamps.next(2, Some(0)), first);
    }

    #[test]
    fn saturates_at_the_top_of_time() {
        assert_eq!(continue_stamp((u64::MAX - 5, 0), u64::MAX, u64::MAX), u64::MAX);
        assert_eq!(takeover_stamp(u64::MAX - 1, Some(u64::MAX - 1), 0), u64::MAX - 1);
        assert_eq!(takeover_stamp(u64::MAX - 1, Some(u64::MAX), u64::MAX), u64::MAX);
        assert_eq!(takeover_stamp(u64::MAX - 1, None, u64::MAX), u64::MAX);
    }
}

#[cfg(test)]
mod evidence_tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[derive(Debug, Default)]
    struct Clocks(AtomicU64);

    impl Clock for Clocks {
        fn now_ms(&self) -> u64 {
            1_000_000 + self.0.load(Ordering::SeqCst)
        }
        fn monotonic_ms(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    /// Found by the simulation (seed 558): entries without a time (blank,
    /// membership) applied for 5 s while no timed entry committed made the
    /// evidence look fresh, and a new leader set the cluster's time back to
    /// the last timed entry's, seconds in the past. Only a change of the state's time refreshes the evidence.
    #[test]
    fn entries_without_time_do_not_make_old_time_look_fresh() {
        let clocks = Arc::new(Clocks::default());
        let stamps = Stamps::new(clocks.clone());
        let state_ms = 1_000_000;
        stamps.saw_state_time(state_ms);
        for _ in 0..80 {
            clocks.0.fetch_add(100, Ordering::SeqCst);
            stamps.saw_state_time(state_ms); // a blank or membership entry
        }
        // 8 s passed, more than a takeover may step beyond its estimate: with
        // the estimate refreshed by every entry, time came out 3 s behind.
        assert_eq!(stamps.next(2, Some(state_ms)), state_ms + 8_000, "the 8 s that passed are counted");
    }
}
