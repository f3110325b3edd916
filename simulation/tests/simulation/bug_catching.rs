//! Proof that the checker catches real bugs, each planted on purpose:
//! - every disk acknowledging appends before syncing them: crashing all
//!   nodes at once must lose acknowledged messages, and the checker must say
//!   so within 100 seeds;
//! - a client that retries every call after an answer in doubt ("outcome
//!   unknown", a timeout, a lost connection — the bug that applied a Receive
//!   or a Purge twice): under the default faults a Receive must apply twice,
//!   and the checker must find the delivery nobody saw within 200 seeds.

use raftq_simulation::{Fault, SimOptions};

#[test]
fn ack_before_sync_loses_messages_and_the_checker_sees_it() {
    let options =
        SimOptions { faults: [Fault::CrashAll].into_iter().collect(), ack_before_sync: true, ..SimOptions::default() };
    let mut lost_in = None;
    for chunk in (0..100u64).collect::<Vec<_>>().chunks(super::JOBS * 2) {
        let summary = super::run(chunk, &options);
        if summary.lost > 0 {
            lost_in = summary.failed.iter().find(|r| r.verdict.lost > 0).map(|r| r.seed);
            break;
        }
    }
    let seed = lost_in.expect("no seed of 100 lost a message although every disk acks before syncing");
    eprintln!("seed {seed} lost acknowledged messages, as it must with ack_before_sync");
}

#[test]
fn retrying_in_doubt_applies_a_receive_twice_and_the_checker_sees_it() {
    let options = SimOptions { retry_in_doubt: true, ..SimOptions::default() };
    let mut found_in = None;
    for chunk in (0..200u64).collect::<Vec<_>>().chunks(super::JOBS * 2) {
        let summary = super::run(chunk, &options);
        found_in = summary
            .failed
            .iter()
            .find(|r| r.verdict.violations.iter().any(|v| v.starts_with("hidden delivery")))
            .map(|r| r.seed);
        if found_in.is_some() {
            break;
        }
    }
    let seed = found_in.expect("no seed of 200 found a Receive applied twice although the client retries in doubt");
    eprintln!("seed {seed} applied a Receive twice, as it must when the client retries after an unknown outcome");
}

/// The depose move reaches the case the "outcome unknown" answer exists
/// for: a leader loses leadership with entries in flight, and their clients
/// hear UNKNOWN (and the checker then holds them to it).
#[test]
fn deposing_the_leader_leaves_writes_in_doubt() {
    // About one seed in ten reaches it (19-22 of 200 seeds); a fixed small
    // set of seeds went quiet when scheduling changed, so search as the
    // test above does.
    let options = SimOptions { faults: [Fault::Depose].into_iter().collect(), ..SimOptions::default() };
    let mut searched = 0;
    for chunk in (0..200u64).collect::<Vec<_>>().chunks(24) {
        let summary = super::run(chunk, &options);
        assert!(summary.failed.is_empty(), "{summary}");
        searched += chunk.len();
        if summary.outcome_unknown > 0 {
            eprintln!("{summary}");
            return;
        }
    }
    panic!("no call was answered 'outcome unknown' in {searched} seeds");
}
