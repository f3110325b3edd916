//! The checker: a Jepsen-style total-queue analysis of the history, plus
//! the lease, delay and ack rules of PRODUCT.md G2–G5.
//!
//! Counted (reported on every run):
//! - **lost**: values whose publish was confirmed but that were never
//!   delivered (a G1/G2 violation: fails the seed);
//! - **unexpected**: delivered values nobody tried to publish (fails);
//! - **duplicated**: values delivered more than once (allowed: at least once);
//! - **recovered**: values delivered though no publish of them was
//!   confirmed (allowed: an indefinite publish may have committed);
//! - **failed-but-delivered**: values whose every publish was definitely
//!   refused, yet delivered (fails).
//!
//! Also failing a seed: a confirmed ack followed by a redelivery of that
//! message; an ack accepted with a receipt whose lease had ended (per the
//! deadline the server returned); two overlapping leases on one message; a
//! first delivery before its publish delay ended; one value stored under
//! two message ids (the idempotency key was ignored); one lease handed out
//! twice; a **hidden delivery** — a delivery attempt no consumer ever saw
//! that no Receive with an unknown outcome can account for (a Receive
//! applied twice: its first application leased messages to nobody); and the
//! cluster's **time drifting** from simulated time by more than the bound
//! `raftq_server::clock` documents (a wall-clock jump let through).

use std::collections::{BTreeMap, BTreeSet};

use crate::history::{Call, Delivered, Lease, Op, Outcome, Reply};
use crate::workload::{FAN_QUEUES, WORK_QUEUE, kind_of, topic_routes};

/// Examples of each kind of violation printed at most.
const EXAMPLES_MAX: usize = 5;
/// Hosts' clocks agree to within a simulation tick; an ack is judged late
/// only when it was sent this much after the deadline.
const CLOCK_SLOP_MS: u64 = 2;
/// The window before an ack in which Receives tell how far the cluster's
/// time runs behind real time.
const LAG_WINDOW_MS: u64 = 1_000;

/// The checker's verdict on one history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Values with a confirmed publish.
    pub confirmed: u64,
    /// Distinct values delivered.
    pub delivered: u64,
    pub lost: u64,
    pub unexpected: u64,
    pub duplicated: u64,
    pub recovered: u64,
    pub failed_but_delivered: u64,
    /// Confirmed values never delivered but still in a queue when the drain
    /// gave up: not lost, but not delivered either (the drain failure is
    /// reported on its own).
    pub undrained: u64,
    /// Calls answered UNKNOWN ("outcome unknown": the entry was appended,
    /// then leadership changed): proof the nemesis reaches that case.
    pub outcome_unknown: u64,
    /// Every broken rule, each a line of text. Empty = the seed passed.
    pub violations: Vec<String>,
}

impl Verdict {
    pub fn failed(&self) -> bool {
        !self.violations.is_empty()
    }
}

/// What is known about one value's publishes.
#[derive(Debug, Default)]
struct Published {
    ok: bool,
    info: bool,
    fail: bool,
    delay_ms: u64,
}

/// One delivery and the lease it was given.
#[derive(Debug)]
struct Delivery<'a> {
    delivered: &'a Delivered,
    /// The lease granted (lease start = deadline - lease).
    lease_ms: u64,
    /// When the Receive that returned it was invoked and completed.
    invoked_ms: u64,
    completed_ms: u64,
}

impl Delivery<'_> {
    fn lease_start_ms(&self) -> u64 {
        self.delivered.lease_deadline_ms.saturating_sub(self.lease_ms)
    }
}

/// Collects violations, keeping a few examples of each kind.
#[derive(Debug, Default)]
struct Findings {
    by_kind: BTreeMap<&'static str, (u64, Vec<String>)>,
}

impl Findings {
    fn add(&mut self, kind: &'static str, example: String) {
        let (count, examples) = self.by_kind.entry(kind).or_default();
        *count += 1;
        if examples.len() < EXAMPLES_MAX {
            examples.push(example);
        }
    }

    fn into_lines(self) -> Vec<String> {
        self.by_kind
            .into_iter()
            .map(|(kind, (count, examples))| format!("{kind}: {count} (e.g. {})", examples.join("; ")))
            .collect()
    }
}

/// Checks a history. `undrained`: the values still queued if the drain
/// gave up (empty when it finished).
pub fn check(ops: &[Op], undrained: &BTreeSet<String>) -> Verdict {
    let published = publishes(ops);
    let deliveries = deliveries(ops);
    let mut findings = Findings::default();
    let mut verdict = Verdict { confirmed: published.values().filter(|p| p.ok).count() as u64, ..Verdict::default() };
    verdict.outcome_unknown = ops
        .iter()
        .filter(|op| matches!(&op.outcome, Outcome::Info { message, .. } if message.contains("outcome unknown")))
        .count() as u64;

    let mut times_delivered: BTreeMap<&str, u64> = BTreeMap::new();
    for delivery in &deliveries {
        *times_delivered.entry(&delivery.delivered.value).or_default() += 1;
    }
    verdict.delivered = times_delivered.len() as u64;
    for (value, publish) in &published {
        let delivered = times_delivered.contains_key(value.as_str());
        if publish.ok && !delivered && undrained.contains(value) {
            verdict.undrained += 1;
        } else if publish.ok && !delivered {
            verdict.lost += 1;
            findings.add("lost (confirmed publish never delivered)", value.clone());
        }
        if delivered && !publish.ok && publish.info {
            verdict.recovered += 1;
        }
        if delivered && !publish.ok && !publish.info && publish.fail {
            verdict.failed_but_delivered += 1;
            findings.add("failed-but-delivered (publish definitely refused, yet delivered)", value.clone());
        }
    }
    for (value, times) in &times_delivered {
        if !published.contains_key(*value) {
            verdict.unexpected += 1;
            findings.add("unexpected (delivered, never published)", (*value).to_owned());
        }
        if *times > 1 {
            verdict.duplicated += 1;
        }
    }
    check_leases(ops, &deliveries, &mut findings);
    check_delays(&deliveries, &published, &mut findings);
    check_dedup(&deliveries, &mut findings);
    check_hidden_deliveries(ops, &deliveries, &mut findings);
    check_time(&deliveries, &mut findings);
    verdict.violations = findings.into_lines();
    verdict
}

/// Every value some publish tried, with what is known of its publishes. A
/// topic publish of value `v` tries one value per queue its kind routes to,
/// `v@QUEUE` (see `Delivered::value`): each copy must arrive in its queue
/// (or none, if the publish was refused), and none anywhere else.
fn publishes(ops: &[Op]) -> BTreeMap<String, Published> {
    let mut published: BTreeMap<String, Published> = BTreeMap::new();
    for op in ops {
        let (values, delay_ms) = match &op.call {
            Call::Publish { values, delay_ms, .. } => (values.clone(), *delay_ms),
            Call::PublishTopic { values, .. } => {
                let copies = values
                    .iter()
                    .flat_map(|value| {
                        topic_routes(kind_of(value)).into_iter().map(move |queue| format!("{value}@{queue}"))
                    })
                    .collect();
                (copies, 0)
            }
            _ => continue,
        };
        for value in &values {
            let entry = published.entry(value.clone()).or_default();
            entry.delay_ms = delay_ms;
            match op.outcome {
                Outcome::Ok(_) => entry.ok = true,
                Outcome::Info { .. } => entry.info = true,
                Outcome::Fail { .. } => entry.fail = true,
            }
        }
    }
    published
}

fn deliveries(ops: &[Op]) -> Vec<Delivery<'_>> {
    let mut all = Vec::new();
    for op in ops {
        let (Call::Receive { lease_ms, .. }, Outcome::Ok(Reply::Received(delivered))) = (&op.call, &op.outcome) else {
            continue;
        };
        all.extend(delivered.iter().map(|delivered| Delivery {
            delivered,
            lease_ms: *lease_ms,
            invoked_ms: op.invoked_ms,
            completed_ms: op.completed_ms,
        }));
    }
    all
}

/// Acks after a lease ended, redelivery after a confirmed ack, one lease
/// handed out twice, overlapping leases.
fn check_leases(ops: &[Op], deliveries: &[Delivery<'_>], findings: &mut Findings) {
    let mut by_lease: BTreeMap<&Lease, &Delivery<'_>> = BTreeMap::new();
    for delivery in deliveries {
        if by_lease.insert(&delivery.delivered.lease, delivery).is_some() {
            findings.add("lease handed out twice", format!("{:?}", delivery.delivered.lease));
        }
    }
    // How far the cluster's time ran behind real time around each moment:
    // a wall clock set back slows it by up to 1 % (crates/server/src/
    // clock.rs), so a lease may last that much longer in real time. For
    // each Receive: its completion, and completion minus the time the
    // server stamped (real-time lag plus the answer's latency).
    // The server stamped the Receive no earlier than its invocation.
    let mut lags: Vec<(u64, u64, u64)> = deliveries
        .iter()
        .map(|d| {
            let stamped_ms = d.delivered.lease_deadline_ms.saturating_sub(d.lease_ms);
            (d.completed_ms, d.completed_ms.saturating_sub(stamped_ms), d.invoked_ms)
        })
        .collect();
    lags.sort_unstable();
    // With no Receive in the window, the last one before it. The lag moves
    // by at most 1 % of the time that passes, either way: a wall clock set
    // back lets it grow that fast, one set forward shrinks it that fast. So
    // an observation made at `stamped` bounds the lag at `at` by itself plus
    // 1 % of `at - stamped` (seed 2348: 6 ms observed up to a second before
    // the ack, while the clock was set back; the ack came 8 ms late). Seed
    // 4659: the clock was set right, the lag was ~100 ms and the last
    // Receive before the ack came 1.9 s earlier.
    let lag_near = |at_ms: u64| {
        let from = lags.partition_point(|(t, _, _)| *t < at_ms.saturating_sub(LAG_WINDOW_MS));
        let to = lags.partition_point(|(t, _, _)| *t <= at_ms);
        let window = if from < to { &lags[from..to] } else { &lags[to.saturating_sub(1)..to] };
        window
            .iter()
            .map(|(_, lag, stamped_no_earlier_than)| lag + at_ms.saturating_sub(*stamped_no_earlier_than).div_ceil(100))
            .min()
            .unwrap_or(0)
    };
    let mut ended_early: BTreeSet<&Lease> = BTreeSet::new();
    let mut extended: BTreeSet<&Lease> = BTreeSet::new();
    let mut acked: BTreeMap<(&str, u64), u32> = BTreeMap::new();
    for op in ops {
        match (&op.call, &op.outcome) {
            (Call::Nack { lease, .. }, Outcome::Ok(_) | Outcome::Info { .. }) => {
                ended_early.insert(lease);
            }
            (Call::Extend { lease, .. }, _) => {
                extended.insert(lease);
            }
            (Call::Ack { lease, .. }, Outcome::Ok(_)) => {
                acked.insert((&lease.queue, lease.id), lease.attempt);
                let Some(delivery) = by_lease.get(lease) else { continue };
                let deadline_ms = delivery.delivered.lease_deadline_ms;
                if !extended.contains(lease) && op.invoked_ms >= deadline_ms + CLOCK_SLOP_MS + lag_near(op.invoked_ms) {
                    findings.add(
                        "stale receipt accepted (ack sent after the lease deadline succeeded)",
                        format!(
                            "{lease:?} deadline {deadline_ms} ack invoked at {} (lease of {} ms handed out by a receive completed at {}; cluster time lag near the ack estimated {} ms)",
                            op.invoked_ms,
                            delivery.lease_ms,
                            delivery.completed_ms,
                            lag_near(op.invoked_ms)
                        ),
                    );
                }
            }
            _ => {}
        }
    }
    let mut by_message: BTreeMap<(&str, u64), Vec<&Delivery<'_>>> = BTreeMap::new();
    for delivery in deliveries {
        let lease = &delivery.delivered.lease;
        by_message.entry((&lease.queue, lease.id)).or_default().push(delivery);
    }
    for (message, mut leases) in by_message {
        leases.sort_by_key(|d| d.delivered.lease.attempt);
        if let Some(acked_attempt) = acked.get(&message)
            && let Some(later) = leases.iter().find(|d| d.delivered.lease.attempt > *acked_attempt)
        {
            findings.add(
                "redelivered after a confirmed ack",
                format!(
                    "{message:?} acked at attempt {acked_attempt}, delivered again at attempt {}",
                    later.delivered.lease.attempt
                ),
            );
        }
        for pair in leases.windows(2) {
            let (first, second) = (pair[0], pair[1]);
            if !ended_early.contains(&first.delivered.lease)
                && second.lease_start_ms() < first.delivered.lease_deadline_ms
            {
                findings.add(
                    "leased again before the previous lease ended",
                    format!(
                        "{message:?} attempt {} leased until {}, attempt {} leased at {}",
                        first.delivered.lease.attempt,
                        first.delivered.lease_deadline_ms,
                        second.delivered.lease.attempt,
                        second.lease_start_ms()
                    ),
                );
            }
        }
    }
}

/// A delayed message is not delivered before its delay ends.
fn check_delays(deliveries: &[Delivery<'_>], published: &BTreeMap<String, Published>, findings: &mut Findings) {
    for delivery in deliveries {
        let d = delivery.delivered;
        if d.lease.queue != WORK_QUEUE || d.lease.attempt != 1 {
            continue;
        }
        let Some(publish) = published.get(&d.value) else { continue };
        let visible_at_ms = d.published_at_ms + publish.delay_ms;
        if delivery.lease_start_ms() < visible_at_ms {
            findings.add(
                "delivered before its delay ended",
                format!("{} visible at {visible_at_ms}, leased at {}", d.value, delivery.lease_start_ms()),
            );
        }
    }
}

/// One value (one idempotency key) is stored once per queue: a retried
/// publish, to a queue or to the topic, stores no second copy.
fn check_dedup(deliveries: &[Delivery<'_>], findings: &mut Findings) {
    let mut ids: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    for delivery in deliveries {
        let queue = delivery.delivered.lease.queue.as_str();
        if queue == WORK_QUEUE || FAN_QUEUES.contains(&queue) {
            ids.entry(&delivery.delivered.value).or_default().insert(delivery.delivered.lease.id);
        }
    }
    for (value, ids) in ids {
        if ids.len() > 1 {
            findings.add("stored twice despite its idempotency key", format!("{value} as ids {ids:?}"));
        }
    }
}

/// Every delivery attempt of a message was seen by a consumer, or may have
/// been made by a Receive whose outcome is unknown. Attempts only grow by
/// one per Receive that leases the message, so a gap below an attempt a
/// consumer saw is a lease handed to nobody: a Receive applied though its
/// caller heard "nothing happened", or applied twice behind a retry. Each
/// Receive with an unknown outcome (invoked before the gap was seen) can
/// account for up to its `max` hidden attempts.
fn check_hidden_deliveries(ops: &[Op], deliveries: &[Delivery<'_>], findings: &mut Findings) {
    let mut seen: BTreeMap<(&str, u64), BTreeMap<u32, u64>> = BTreeMap::new();
    for delivery in deliveries {
        let lease = &delivery.delivered.lease;
        seen.entry((&lease.queue, lease.id)).or_default().insert(lease.attempt, delivery.completed_ms);
    }
    // (queue, latest time the hidden attempt can have happened, example).
    let mut hidden: Vec<(&str, u64, String)> = Vec::new();
    for ((queue, id), attempts) in &seen {
        for (attempt, completed_ms) in attempts {
            for missing in 1..*attempt {
                if attempts.contains_key(&missing) {
                    continue;
                }
                // The first attempt seen after the missing one bounds it.
                let (next, bound_ms) =
                    attempts.range(missing + 1..).next().map_or((*attempt, *completed_ms), |(a, t)| (*a, *t));
                if next == *attempt {
                    hidden.push((queue, bound_ms, format!("{queue}/{id} attempt {missing} (attempt {next} seen)")));
                }
            }
        }
    }
    hidden.sort_by_key(|(_, bound_ms, _)| *bound_ms);
    let mut in_doubt: BTreeMap<&str, Vec<(u64, u32)>> = BTreeMap::new();
    for op in ops {
        if let (Call::Receive { queue, max, .. }, Outcome::Info { .. }) = (&op.call, &op.outcome) {
            in_doubt.entry(queue).or_default().push((op.invoked_ms, *max));
        }
    }
    for calls in in_doubt.values_mut() {
        calls.sort();
    }
    // Any Receive in doubt usable for an earlier bound is usable for every
    // later one, so counting capacity in bound order is an exact matching.
    let mut next_call: BTreeMap<&str, usize> = BTreeMap::new();
    let mut capacity: BTreeMap<&str, u64> = BTreeMap::new();
    for (queue, bound_ms, example) in hidden {
        let calls = in_doubt.get(queue).map_or(&[][..], Vec::as_slice);
        let next = next_call.entry(queue).or_default();
        let free = capacity.entry(queue).or_default();
        while *next < calls.len() && calls[*next].0 <= bound_ms {
            *free += u64::from(calls[*next].1);
            *next += 1;
        }
        if *free > 0 {
            *free -= 1;
        } else {
            findings.add("hidden delivery (leased to nobody, no Receive in doubt to account for it)", example);
        }
    }
}

/// Slack for the simulated network and scheduling, in ms.
const TIME_SLOP_MS: u64 = 500;
/// How far ahead of real time the cluster's time may run: a leader change
/// may step it `TAKEOVER_STEP_MAX_MS` toward a wrong wall clock (twice, if
/// a jumped node leads twice), plus the 1 % slew (2 % here, for slack).
const TIME_AHEAD_MAX_MS: u64 = 2 * raftq_server::clock::TAKEOVER_STEP_MAX_MS + TIME_SLOP_MS;

/// The cluster's time (a lease's start, as the server stamped it) stays
/// within the documented bound of simulated time: a wall clock that jumps
/// by a day must not move it by a day (every lease, delay and TTL would end
/// at once), and one that goes back must not stop it (timers would freeze).
fn check_time(deliveries: &[Delivery<'_>], findings: &mut Findings) {
    let Some(origin_ms) = deliveries.iter().map(|d| d.invoked_ms).min() else { return };
    for delivery in deliveries {
        let stamped_ms = delivery.delivered.lease_deadline_ms.saturating_sub(delivery.lease_ms);
        let slew_ms = delivery.completed_ms.saturating_sub(origin_ms) / 50;
        if stamped_ms > delivery.completed_ms + TIME_AHEAD_MAX_MS + slew_ms {
            findings.add(
                "cluster time ahead of real time beyond the bound",
                format!("{:?} stamped {stamped_ms}, completed at {}", delivery.delivered.lease, delivery.completed_ms),
            );
        }
        if stamped_ms + TIME_SLOP_MS + slew_ms < delivery.invoked_ms {
            findings.add(
                "cluster time behind real time beyond the bound (timers frozen)",
                format!("{:?} stamped {stamped_ms}, invoked at {}", delivery.delivered.lease, delivery.invoked_ms),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use raftq_client::Code;

    use super::*;

    fn op(call: Call, outcome: Outcome, at: u64) -> Op {
        Op { process: 0, invoked_ms: at, completed_ms: at + 1, call, outcome }
    }

    fn publish(value: &str, outcome: Outcome) -> Op {
        op(Call::Publish { queue: WORK_QUEUE.into(), values: vec![value.into()], delay_ms: 0 }, outcome, 0)
    }

    fn ok_publish() -> Outcome {
        Outcome::Ok(Reply::Published { ids: vec![1], duplicates: vec![false] })
    }

    fn lease(id: u64, attempt: u32) -> Lease {
        Lease { queue: WORK_QUEUE.into(), id, attempt }
    }

    fn receive(value: &str, id: u64, attempt: u32, deadline: u64) -> Op {
        let delivered = Delivered {
            lease: lease(id, attempt),
            value: value.into(),
            lease_deadline_ms: deadline,
            published_at_ms: 0,
        };
        op(
            Call::Receive { queue: WORK_QUEUE.into(), max: 1, lease_ms: 100 },
            Outcome::Ok(Reply::Received(vec![delivered])),
            deadline - 100,
        )
    }

    fn info() -> Outcome {
        Outcome::Info { code: Code::Unavailable, message: String::new() }
    }

    fn fail() -> Outcome {
        Outcome::Fail { code: Code::NotFound, message: String::new() }
    }

    #[test]
    fn counts_each_kind() {
        let ops = vec![
            publish("ok-delivered", ok_publish()),
            publish("ok-lost", ok_publish()),
            publish("info-delivered", info()),
            publish("info-not-delivered", info()),
            publish("refused-delivered", fail()),
            receive("ok-delivered", 1, 1, 1_000),
            receive("ok-delivered", 1, 2, 2_000),
            receive("info-delivered", 2, 1, 1_000),
            receive("refused-delivered", 3, 1, 1_000),
            receive("never-published", 4, 1, 1_000),
        ];
        let verdict = check(&ops, &BTreeSet::new());
        assert_eq!(
            (verdict.lost, verdict.unexpected, verdict.duplicated, verdict.recovered, verdict.failed_but_delivered),
            (1, 1, 1, 1, 1)
        );
        assert_eq!(verdict.violations.len(), 3, "{:#?}", verdict.violations);
    }

    fn publish_topic(values: &[&str], outcome: Outcome) -> Op {
        let values = values.iter().map(|v| v.to_string()).collect();
        op(Call::PublishTopic { topic: crate::workload::TOPIC.into(), values }, outcome, 0)
    }

    fn receive_from(queue: &str, value: &str, id: u64) -> Op {
        let delivered = Delivered {
            lease: Lease { queue: queue.into(), id, attempt: 1 },
            value: crate::workload::value_of(queue, value.as_bytes()),
            lease_deadline_ms: 1_000,
            published_at_ms: 0,
        };
        op(
            Call::Receive { queue: queue.into(), max: 1, lease_ms: 100 },
            Outcome::Ok(Reply::Received(vec![delivered])),
            900,
        )
    }

    #[test]
    fn each_copy_of_a_topic_message_is_checked_in_its_own_queue() {
        let confirmed =
            Outcome::Ok(Reply::PublishedTopic { ids: vec![1, 2], copies: vec![], duplicates: vec![false; 2] });
        let ops = vec![
            // Kind a goes to fan-a and fan-ab; b only to fan-ab.
            publish_topic(&["t0-1.a", "t0-2.b"], confirmed),
            publish_topic(&["t0-3.c1"], fail()),
            receive_from("fan-a", "t0-1.a", 10),
            receive_from("fan-ab", "t0-2.b", 11),
            // The copy of t0-1.a in fan-ab never came: lost. t0-2.b in
            // fan-a was never routed there: unexpected. The refused c1
            // publish arrived anyway: failed but delivered.
            receive_from("fan-a", "t0-2.b", 12),
            receive_from("fan-c", "t0-3.c1", 13),
        ];
        let verdict = check(&ops, &BTreeSet::new());
        assert_eq!((verdict.lost, verdict.unexpected, verdict.failed_but_delivered), (1, 1, 1), "{verdict:#?}");
        assert!(verdict.violations.iter().any(|v| v.contains("t0-1.a@fan-ab")), "{:#?}", verdict.violations);
    }

    #[test]
    fn a_clean_history_passes() {
        let ops = vec![
            publish("a", ok_publish()),
            receive("a", 1, 1, 1_000),
            op(Call::Ack { lease: lease(1, 1), value: "a".into() }, Outcome::Ok(Reply::Acked), 950),
        ];
        assert_eq!(check(&ops, &BTreeSet::new()).violations, Vec::<String>::new());
    }

    #[test]
    fn lease_rules() {
        let late_ack = op(Call::Ack { lease: lease(1, 1), value: "a".into() }, Outcome::Ok(Reply::Acked), 1_010);
        let ops = vec![publish("a", ok_publish()), receive("a", 1, 1, 1_000), late_ack, receive("a", 1, 2, 1_050)];
        let verdict = check(&ops, &BTreeSet::new());
        let text = verdict.violations.join("\n");
        assert!(text.contains("stale receipt accepted"), "{text}");
        assert!(text.contains("redelivered after a confirmed ack"), "{text}");
        assert!(text.contains("leased again before the previous lease ended"), "{text}");
    }

    #[test]
    fn a_delivery_attempt_nobody_saw_needs_a_receive_in_doubt() {
        // Attempt 1 of message 1 was never seen: a Receive applied twice.
        let ops = vec![publish("a", ok_publish()), receive("a", 1, 2, 2_000)];
        let text = check(&ops, &BTreeSet::new()).violations.join("\n");
        assert!(text.contains("hidden delivery"), "{text}");

        // A Receive with an unknown outcome before it accounts for it.
        let in_doubt = op(Call::Receive { queue: WORK_QUEUE.into(), max: 1, lease_ms: 100 }, info(), 500);
        let ops = vec![publish("a", ok_publish()), in_doubt.clone(), receive("a", 1, 2, 2_000)];
        assert_eq!(check(&ops, &BTreeSet::new()).violations, Vec::<String>::new());

        // But one such Receive (max 1) accounts for one hidden attempt only,
        // and one invoked after the gap was seen accounts for nothing.
        let late = op(Call::Receive { queue: WORK_QUEUE.into(), max: 5, lease_ms: 100 }, info(), 5_000);
        let ops = vec![
            publish("a", ok_publish()),
            publish("b", ok_publish()),
            in_doubt,
            late,
            receive("a", 1, 2, 2_000),
            receive("b", 2, 2, 2_000),
        ];
        let text = check(&ops, &BTreeSet::new()).violations.join("\n");
        assert!(text.contains("hidden delivery"), "{text}");
    }

    #[test]
    fn the_cluster_time_must_stay_near_real_time() {
        let day = 24 * 3600 * 1000;
        let mut jumped = receive("a", 1, 1, 1_000);
        if let Outcome::Ok(Reply::Received(delivered)) = &mut jumped.outcome {
            delivered[0].lease_deadline_ms += day;
        }
        let ops = vec![publish("a", ok_publish()), jumped];
        let text = check(&ops, &BTreeSet::new()).violations.join("\n");
        assert!(text.contains("cluster time ahead"), "{text}");

        let mut frozen = receive("a", 1, 1, 1_000);
        frozen.invoked_ms += 60_000;
        frozen.completed_ms += 60_000;
        let ops = vec![publish("a", ok_publish()), receive("b", 2, 1, 1_000), frozen];
        let text = check(&ops, &BTreeSet::new()).violations.join("\n");
        assert!(text.contains("cluster time behind"), "{text}");
    }
}
