//! The leader's clock tick: when the state's next timer (a delay end, a
//! lease end, a TTL) is due, the leader proposes a `Tick` entry, so timed
//! changes are applied — and long-polling consumers woken — even when no
//! client writes. An idle leader also ticks every [`TIME_HEARTBEAT`], so the
//! cluster's time stays fresh on every follower (`crate::clock`). Followers
//! only wait.

use std::sync::Arc;
use std::time::Duration;

use openraft::ServerState;
use raftq_core::Command;
use tokio::sync::watch;

use crate::node::{Node, QueueMachine};

/// Longest sleep between checks, so a new earlier timer is never missed by
/// more than this even if no entry is applied meanwhile.
const TICK_CHECK_MAX: Duration = Duration::from_secs(1);
/// Shortest pause after a failed tick, so a node without quorum does not spin.
const TICK_RETRY: Duration = Duration::from_millis(100);
/// A leader commits an entry at least this often, idle or not, so every
/// follower has fresh evidence of the cluster's time should it take over
/// (see `crate::clock`).
pub const TIME_HEARTBEAT: Duration = Duration::from_secs(2);

pub async fn run<SM: QueueMachine>(node: Arc<Node<SM>>, mut shutdown: watch::Receiver<bool>) {
    let mut metrics = node.metrics();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let wait = match next_wait(&node).await {
            Some(Duration::ZERO) => {
                // A leader without a quorum never commits the tick: stop
                // waiting for it when the node stops (the node waits for
                // this task before it shuts Raft down).
                let proposed = tokio::select! {
                    proposed = node.propose(Command::Tick) => proposed,
                    _ = shutdown.changed() => return,
                };
                if let Err(status) = proposed {
                    // Sleep, don't wait for a metrics change: openraft
                    // publishes metrics on every core-loop pass, including
                    // the one that refused this tick, so waiting on them
                    // would spin (found by the simulation: a leader without
                    // quorum burned a core).
                    tracing::debug!(%status, "tick not applied");
                    tokio::select! {
                        _ = tokio::time::sleep(TICK_RETRY) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                continue;
            }
            Some(wait) => wait,
            None => TICK_CHECK_MAX,
        };
        tokio::select! {
            _ = node.wait_for_change(&mut metrics, wait) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// How long until the next tick is due on this leader: a timer's due time,
/// or [`TIME_HEARTBEAT`] after its last entry. `None` if this node is not
/// the leader.
async fn next_wait<SM: QueueMachine>(node: &Node<SM>) -> Option<Duration> {
    if node.metrics_now().state != ServerState::Leader {
        return None;
    }
    let heartbeat = TIME_HEARTBEAT.saturating_sub(node.since_last_stamp().unwrap_or(TIME_HEARTBEAT));
    let timer = match node.local_read(|state| state.next_timer_ms()).await.ok()? {
        Some(due_ms) => Duration::from_millis(due_ms.saturating_sub(node.time_estimate_ms())),
        None => TICK_CHECK_MAX,
    };
    Some(heartbeat.min(timer).min(TICK_CHECK_MAX))
}
