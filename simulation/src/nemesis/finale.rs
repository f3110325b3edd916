//! The end of a run: the final heal, the drain watch (with diagnostics
//! when it fails), and the wait for the replicas to converge.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use raftq_client::{Client, Code, QueueConfig};
use tokio::time::{sleep, timeout};

use super::{HostCommand, Nemesis};
use crate::history::{Call, Outcome};
use crate::plan::DRAIN_DEADLINE_MS;
use crate::workload::{ALL_QUEUES, elapsed_ms, value_of};

/// How long after the drain the replicas may take to apply the same index.
const CONVERGE_DEADLINE_MS: u64 = 15_000;

impl Nemesis {
    pub(super) fn heal_all(&self) {
        let alive: Vec<u64> = {
            let beliefs = self.beliefs.borrow();
            self.node_ids().into_iter().filter(|id| !beliefs.dead.contains(id)).collect()
        };
        self.log_line(format!("final heal; restart {alive:?}"));
        self.commands.push(HostCommand::HealNetwork);
        self.commands.push(HostCommand::Restart(alive));
        self.shared.healed_at_ms.store(elapsed_ms().max(1), Ordering::SeqCst);
    }

    /// Waits until every queue is empty (and no producer runs), or the
    /// drain deadline passes.
    pub(super) async fn watch_drain(&self) {
        let healed_at_ms = self.shared.healed_at_ms.load(Ordering::SeqCst);
        let client = self.shared.client();
        loop {
            if elapsed_ms() > healed_at_ms + DRAIN_DEADLINE_MS {
                let left = self.queue_depths(&client).await;
                let stuck = self.stuck_messages(&client).await;
                let consumers = self.consumers_last_receive();
                let remaining = self.remaining_values().await;
                self.shared.set_undrained(remaining);
                self.shared.note(format!(
                    "drain did not finish within {DRAIN_DEADLINE_MS} ms after the final heal (queues: {left}; \
                     {stuck}; last receive per consumer: {consumers})"
                ));
                break;
            }
            if self.shared.producers_left.load(Ordering::SeqCst) == 0
                && self.queue_depths(&client).await.split(' ').all(|part| part.ends_with("=0"))
            {
                self.shared.drained_at_ms.store(elapsed_ms(), Ordering::SeqCst);
                break;
            }
            sleep(Duration::from_millis(250)).await;
        }
        self.shared.drained.store(true, Ordering::SeqCst);
    }

    /// `work=N dlq=M fan-a=...`: messages in any state, or `?` if unknown.
    async fn queue_depths(&self, client: &Client) -> String {
        let mut parts = Vec::new();
        for queue in ALL_QUEUES {
            let depth = match timeout(Duration::from_secs(3), client.get_queue(queue)).await {
                Ok(Ok(info)) => {
                    let s = info.stats;
                    (s.ready + s.leased + s.delayed + s.dead).to_string()
                }
                _ => "?".to_owned(),
            };
            parts.push(format!("{queue}={depth}"));
        }
        parts.join(" ")
    }

    /// The bodies of every message still in the queues (a fresh client per
    /// page, so a stuck client cannot hide them).
    async fn remaining_values(&self) -> BTreeSet<String> {
        let mut values = BTreeSet::new();
        for (n, queue) in ALL_QUEUES.into_iter().enumerate() {
            let mut after = None;
            for page in 0..100 {
                let client = self.shared.client_starting_at(n + page);
                let Ok(Ok(found)) = timeout(Duration::from_secs(3), client.peek(queue, None, after, 1000)).await else {
                    continue;
                };
                values.extend(found.messages.iter().map(|m| value_of(queue, &m.body)));
                if found.next_after_id.is_none() {
                    break;
                }
                after = found.next_after_id;
            }
        }
        values
    }

    /// Each consumer's last Receive outcome, for a failed drain's report.
    fn consumers_last_receive(&self) -> String {
        let mut last: BTreeMap<u32, String> = BTreeMap::new();
        for op in self.shared.history.ops() {
            if let Call::Receive { queue, .. } = &op.call {
                let outcome = match &op.outcome {
                    Outcome::Ok(_) => "ok".to_owned(),
                    Outcome::Fail { message, .. } | Outcome::Info { message, .. } => message.clone(),
                };
                last.insert(op.process, format!("{queue} at {} ms: {outcome}", op.invoked_ms % 1_000_000));
            }
        }
        let lines: Vec<String> = last.iter().map(|(process, line)| format!("process {process}: {line}")).collect();
        lines.join(" | ")
    }

    /// What is left in the queues, for a failed drain's report.
    async fn stuck_messages(&self, client: &Client) -> String {
        let mut parts = Vec::new();
        for queue in ALL_QUEUES {
            match timeout(Duration::from_secs(3), client.peek(queue, None, None, 5)).await {
                Ok(Ok(page)) => parts.extend(page.messages.iter().map(|m| {
                    format!(
                        "{queue}/{} {:?} deliveries={} visible_at={} lease_until={} now={}",
                        m.message_id,
                        m.state,
                        m.delivery_count,
                        m.visible_at_ms,
                        m.lease_expires_at_ms,
                        crate::node::sim_now_ms()
                    )
                })),
                Ok(Err(e)) => parts.push(format!("{queue}: peek failed: {e}")),
                Err(_) => parts.push(format!("{queue}: peek timed out")),
            }
        }
        parts.join(", ")
    }

    /// Turns on digest recording, writes a barrier entry, learns the final
    /// members, and waits until every live member has applied the same
    /// index.
    pub(super) async fn await_convergence(&self) {
        for node in &self.nodes {
            node.observed().record_digests = true;
        }
        let deadline = elapsed_ms() + CONVERGE_DEADLINE_MS;
        let mut barrier = "not tried".to_owned();
        let mut attempt = 0;
        while elapsed_ms() < deadline {
            attempt += 1;
            let client = self.shared.client_starting_at(attempt);
            match client.create_queue("final-barrier", QueueConfig::default()).await {
                Ok(_) => break,
                Err(e) if e.code() == Code::AlreadyExists => break,
                Err(e) => {
                    barrier = e.to_string();
                    sleep(Duration::from_millis(200)).await
                }
            }
        }
        if elapsed_ms() >= deadline {
            self.shared.note(format!("the final barrier write did not succeed: {barrier}"));
        }
        let client = self.shared.client();
        let mut members = None;
        while members.is_none() && elapsed_ms() < deadline {
            match self.shared.leader_status().await {
                Some(status) => members = Some(status.nodes.iter().map(|n| n.node_id).collect::<BTreeSet<u64>>()),
                None => sleep(Duration::from_millis(200)).await,
            }
        }
        let Some(members) = members else {
            let last = timeout(Duration::from_secs(2), client.cluster_status()).await;
            self.shared.note(format!("no leader reported the final membership (last answer: {last:?})"));
            return;
        };
        self.shared.set_final_members(members.clone());
        let live = crate::node::live_members(&self.nodes, &members, &self.shared.dead());
        while elapsed_ms() < deadline {
            let applied: BTreeSet<u64> = live.iter().map(|node| node.observed().applied).collect();
            if applied.len() == 1 {
                return;
            }
            sleep(Duration::from_millis(100)).await;
        }
        let applied: Vec<(u64, u64)> = live.iter().map(|node| (node.id, node.observed().applied)).collect();
        self.shared.note(format!("replicas did not converge after the drain: applied indexes {applied:?}"));
    }
}
