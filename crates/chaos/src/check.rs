//! The verdict on one scenario: the same total-queue analysis as the
//! simulation's checker, plus availability. Pure: history in, numbers out.
//!
//! - **lost**: bodies whose publish was confirmed but never delivered
//!   (fails the run);
//! - **unexpected**: bodies delivered that nobody published (fails);
//! - **double-stored**: one body under two message ids — its idempotency
//!   key was ignored (fails);
//! - **duplicated**: bodies delivered more than once (allowed: at least
//!   once; an ack that failed means a redelivery);
//! - **recovered**: bodies delivered though no publish of them was
//!   confirmed (allowed: a failed call may have committed).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use raftq_client::{NodeDigest, ReplicaCheck};

use crate::workload::{Delivered, PublishAttempt};

/// The numbers of one scenario.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Verdict {
    /// Distinct bodies sent at least once.
    pub attempted: u64,
    /// Distinct bodies with a confirmed publish.
    pub confirmed: u64,
    /// Distinct bodies delivered (the drained set).
    pub drained: u64,
    /// Deliveries in all, redeliveries included.
    pub deliveries: u64,
    pub lost: u64,
    pub unexpected: u64,
    pub double_stored: u64,
    pub duplicated: u64,
    pub recovered: u64,
    /// Publish calls made, and how many succeeded.
    pub publish_calls: u64,
    pub publish_calls_ok: u64,
    /// `publish_calls_ok / publish_calls`.
    pub availability: f64,
    /// Longest time with no successful publish, from the workload's start
    /// to when publishing stopped.
    pub longest_outage_ms: u64,
    /// A few examples of each failing kind, for the report.
    pub examples: BTreeMap<String, Vec<String>>,
}

impl Verdict {
    /// Whether the run broke a guarantee.
    pub fn failed(&self) -> bool {
        self.lost > 0 || self.unexpected > 0 || self.double_stored > 0
    }
}

/// Examples kept per failing kind.
const EXAMPLES_MAX: usize = 5;

/// Judges one scenario's history. `window_end_ms` is when publishing
/// stopped (ms since the workload started).
pub fn check(attempts: &[PublishAttempt], deliveries: &[Delivered], window_end_ms: u64) -> Verdict {
    let mut sent: BTreeMap<&str, bool> = BTreeMap::new();
    for attempt in attempts {
        *sent.entry(&attempt.body).or_default() |= attempt.ok;
    }
    let mut ids: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    let mut times: BTreeMap<&str, u64> = BTreeMap::new();
    for delivery in deliveries {
        ids.entry(&delivery.body).or_default().insert(delivery.id);
        *times.entry(&delivery.body).or_default() += 1;
    }
    let mut verdict = Verdict {
        attempted: sent.len() as u64,
        confirmed: sent.values().filter(|ok| **ok).count() as u64,
        drained: times.len() as u64,
        deliveries: deliveries.len() as u64,
        publish_calls: attempts.len() as u64,
        publish_calls_ok: attempts.iter().filter(|a| a.ok).count() as u64,
        ..Verdict::default()
    };
    let mut example = |kind: &str, body: &str| {
        let list = verdict.examples.entry(kind.to_owned()).or_default();
        if list.len() < EXAMPLES_MAX {
            list.push(body.to_owned());
        }
    };
    let (mut lost, mut recovered, mut unexpected, mut double_stored, mut duplicated) = (0, 0, 0, 0, 0);
    for (body, ok) in &sent {
        match (ok, times.contains_key(body)) {
            (true, false) => {
                lost += 1;
                example("lost", body);
            }
            (false, true) => recovered += 1,
            _ => {}
        }
    }
    for (body, n) in &times {
        if !sent.contains_key(body) {
            unexpected += 1;
            example("unexpected", body);
        }
        if ids[body].len() > 1 {
            double_stored += 1;
            example("double_stored", body);
        }
        if *n > 1 {
            duplicated += 1;
        }
    }
    verdict.lost = lost;
    verdict.recovered = recovered;
    verdict.unexpected = unexpected;
    verdict.double_stored = double_stored;
    verdict.duplicated = duplicated;
    verdict.availability =
        if attempts.is_empty() { 0.0 } else { verdict.publish_calls_ok as f64 / verdict.publish_calls as f64 };
    verdict.longest_outage_ms = longest_gap(attempts.iter().filter(|a| a.ok).map(|a| a.end_ms), window_end_ms);
    verdict
}

/// The longest stretch of `[0, end_ms]` containing none of `successes`.
fn longest_gap(successes: impl Iterator<Item = u64>, end_ms: u64) -> u64 {
    let mut times: Vec<u64> = successes.collect();
    times.sort_unstable();
    let mut previous = 0;
    let mut longest = 0;
    for t in times.into_iter().chain(std::iter::once(end_ms)) {
        longest = longest.max(t.saturating_sub(previous));
        previous = previous.max(t);
    }
    longest
}

/// The replicas' state digests at the end of a scenario (G8): after the
/// drain, every member is asked for its digest until all answer at one
/// applied index; equal indexes must mean equal digests.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReplicaDigests {
    /// `agree`, `diverged`, `unsettled` (never all at one applied index
    /// within the wait) or `error` (the membership could not be read).
    pub result: String,
    /// The applied index compared (agree, diverged).
    pub applied_index: Option<u64>,
    /// Node id → `"<applied index> <digest>"` as last reported.
    pub nodes: BTreeMap<u64, String>,
    /// Why it could not compare (unsettled, error).
    pub detail: String,
}

impl ReplicaDigests {
    /// Only agreement passes: a run whose replicas could not be compared
    /// has not shown they hold the same state.
    pub fn agree(&self) -> bool {
        self.result == "agree"
    }
}

/// Summarizes a replica check for the report.
pub fn replica_digests(check: Result<ReplicaCheck, String>) -> ReplicaDigests {
    let describe = |nodes: &[NodeDigest]| -> BTreeMap<u64, String> {
        nodes.iter().map(|n| (n.node_id, format!("{} {}", n.applied_index, n.digest))).collect()
    };
    match check {
        Ok(ReplicaCheck::Agree { applied_index, nodes, .. }) => ReplicaDigests {
            result: "agree".into(),
            applied_index: Some(applied_index),
            nodes: describe(&nodes),
            detail: String::new(),
        },
        Ok(ReplicaCheck::Diverged { applied_index, nodes }) => ReplicaDigests {
            result: "diverged".into(),
            applied_index: Some(applied_index),
            nodes: describe(&nodes),
            detail: format!("different state digests at applied index {applied_index}"),
        },
        Ok(ReplicaCheck::Damaged { nodes }) => ReplicaDigests {
            result: "damaged".into(),
            applied_index: None,
            nodes: nodes
                .iter()
                .map(|n| {
                    let full = n.full_digest.as_deref().unwrap_or_default();
                    (n.node_id, format!("{} stored {} recounted {full}", n.applied_index, n.digest))
                })
                .collect(),
            detail: "a full scan disagrees with the stored digest".into(),
        },
        Ok(ReplicaCheck::Unsettled { nodes, silent }) => ReplicaDigests {
            result: "unsettled".into(),
            applied_index: None,
            nodes: describe(&nodes),
            detail: format!("not all members at one applied index; silent: {silent:?}"),
        },
        Err(error) => ReplicaDigests { result: "error".into(), detail: error, ..ReplicaDigests::default() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(body: &str, end_ms: u64, ok: bool) -> PublishAttempt {
        PublishAttempt { body: body.into(), end_ms, ok, error: None }
    }

    fn delivered(body: &str, id: u64) -> Delivered {
        Delivered { body: body.into(), id }
    }

    #[test]
    fn clean_run() {
        let attempts = [publish("a", 10, true), publish("b", 20, false), publish("b", 30, true)];
        let deliveries = [delivered("a", 1), delivered("b", 2)];
        let v = check(&attempts, &deliveries, 40);
        assert_eq!((v.attempted, v.confirmed, v.drained, v.lost, v.unexpected), (2, 2, 2, 0, 0));
        assert_eq!((v.publish_calls, v.publish_calls_ok), (3, 2));
        assert!((v.availability - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(v.longest_outage_ms, 20, "10 → 30");
        assert!(!v.failed());
    }

    #[test]
    fn every_kind_is_counted() {
        let attempts = [
            publish("lost", 1, true),
            publish("maybe", 2, false),
            publish("twice", 3, true),
            publish("redelivered", 4, true),
        ];
        let deliveries = [
            delivered("maybe", 1),
            delivered("twice", 2),
            delivered("twice", 3),
            delivered("redelivered", 4),
            delivered("redelivered", 4),
            delivered("ghost", 5),
        ];
        let v = check(&attempts, &deliveries, 100);
        assert_eq!(v.lost, 1);
        assert_eq!(v.recovered, 1);
        assert_eq!(v.unexpected, 1);
        assert_eq!(v.double_stored, 1);
        assert_eq!(v.duplicated, 2, "twice and redelivered");
        assert_eq!(v.examples["lost"], vec!["lost".to_owned()]);
        assert_eq!(v.longest_outage_ms, 96, "last success at 4, window ends at 100");
        assert!(v.failed());
    }

    #[test]
    fn gaps() {
        assert_eq!(longest_gap([].into_iter(), 500), 500, "no success at all");
        assert_eq!(longest_gap([300, 100].into_iter(), 350), 200);
        assert_eq!(longest_gap([100, 100, 450].into_iter(), 450), 350);
    }

    fn node(node_id: u64, applied_index: u64, digest: &str) -> NodeDigest {
        NodeDigest {
            node_id,
            address: format!("raftq-{node_id}:7101"),
            applied_index,
            digest: digest.into(),
            full_digest: Some(digest.into()),
        }
    }

    #[test]
    fn replica_digests_pass_only_when_they_agree() {
        let agree = ReplicaCheck::Agree {
            applied_index: 9,
            digest: "aa".into(),
            nodes: vec![node(1, 9, "aa"), node(2, 9, "aa"), node(3, 9, "aa")],
        };
        let summary = replica_digests(Ok(agree));
        assert!(summary.agree());
        assert_eq!(summary.nodes[&2], "9 aa");

        let diverged = ReplicaCheck::Diverged { applied_index: 9, nodes: vec![node(1, 9, "aa"), node(2, 9, "bb")] };
        let summary = replica_digests(Ok(diverged));
        assert!(!summary.agree());
        assert_eq!((summary.result.as_str(), summary.applied_index), ("diverged", Some(9)));

        let unsettled =
            ReplicaCheck::Unsettled { nodes: vec![node(1, 9, "aa")], silent: vec![(2, "raftq-2:7101".into())] };
        assert!(!replica_digests(Ok(unsettled)).agree());
        let mut damaged = node(2, 9, "aa");
        damaged.full_digest = Some("ab".into());
        let summary = replica_digests(Ok(ReplicaCheck::Damaged { nodes: vec![damaged] }));
        assert!(!summary.agree());
        assert_eq!(summary.nodes[&2], "9 stored aa recounted ab");
        assert!(!replica_digests(Err("no leader".into())).agree());
    }
}
