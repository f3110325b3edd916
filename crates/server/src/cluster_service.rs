//! The `Cluster` service: status, membership changes, leadership transfer,
//! snapshots. Status answers from this node's view (it is a diagnostic, so
//! it works without a leader); changes must be sent to the leader.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use openraft::{ChangeMembers, RaftMetrics, ServerState};
use raftq_proto::v1 as pb;
use raftq_proto::v1::cluster_server::{Cluster, ClusterServer};
use raftq_storage::{NodeAddr, TypeConfig};
use tonic::{Code, Request, Response, Status};

use crate::audit::Audit;
use crate::error::{fatal, invalid, unavailable_with_hint, write_error};
use crate::node::{Node, QueueMachine};

/// Longest TriggerSnapshot waits for the snapshot to be durable.
const SNAPSHOT_WAIT_MAX: Duration = Duration::from_secs(30);
/// Longest TriggerSnapshot waits between two looks at the snapshot index
/// when no metrics change wakes it.
const SNAPSHOT_RECHECK: Duration = Duration::from_millis(200);
/// TransferLeader waits this many longest election timeouts for the target
/// to take over: one for its election, the rest for a slow start (a node
/// that has just restarted) or a slow disk.
const TRANSFER_WAIT_ELECTIONS: u64 = 4;

pub struct ClusterService<SM: QueueMachine> {
    node: Arc<Node<SM>>,
}

impl<SM: QueueMachine> std::fmt::Debug for ClusterService<SM> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterService").field("node", &self.node).finish()
    }
}

impl<SM: QueueMachine> ClusterService<SM> {
    pub fn server(node: Arc<Node<SM>>) -> ClusterServer<Self> {
        ClusterServer::new(Self { node })
    }

    fn membership(&self) -> pb::Membership {
        let metrics = self.node.metrics_now();
        membership_to_pb(metrics.membership_config.membership())
    }

    /// This node's state digest and the applied index it belongs to, read
    /// together on the state machine (nothing is applied in between). The
    /// digest is kept up to date by every write: reading it is one lookup.
    /// With `full_scan`, a consistent view of the same state is taken there
    /// too and read outside the state machine (writes go on meanwhile) to
    /// recompute the digest from every pair.
    async fn state_digest(&self, full_scan: bool) -> Result<pb::StateDigest, Status> {
        let (applied, digest, view) = self
            .node
            .raft
            .with_state_machine(move |sm: &mut SM| {
                Box::pin(async move {
                    let applied = sm.applied_state().await.map(|(applied, _)| index(applied.as_ref()));
                    let view = full_scan.then(|| sm.view());
                    (applied, sm.reader().digest().map(|d| raftq_core::read::hex(&d)), view)
                })
            })
            .await
            .map_err(fatal)?;
        let applied_index =
            applied.map_err(|e| crate::error::store_failed(format!("reading the applied log id: {e}")))?;
        let digest = digest.map_err(crate::error::store_fault)?;
        let full_digest = match view {
            None => String::new(),
            Some(view) => {
                let view =
                    view.map_err(|e| crate::error::store_failed(format!("reading the state for a full scan: {e}")))?;
                let recount = raftq_storage::recount(view)
                    .await
                    .map_err(|e| crate::error::store_failed(format!("full scan of the state: {e}")))?;
                let recounted_index = index(recount.applied.as_ref());
                if recounted_index != applied_index {
                    return Err(crate::error::store_failed(format!(
                        "full scan read the state at applied index {recounted_index}, expected {applied_index}"
                    )));
                }
                raftq_core::read::hex(&recount.digest.full.to_be_bytes())
            }
        };
        Ok(pb::StateDigest { applied_index, digest, full_digest })
    }

    /// Refuses a change on a follower, naming the leader.
    fn require_leader(&self) -> Result<(), Status> {
        let metrics = self.node.metrics_now();
        if metrics.state == ServerState::Leader {
            return Ok(());
        }
        // Never a hint to this node itself: a client following it would loop.
        let leader_addr = metrics
            .current_leader
            .filter(|id| *id != metrics.id)
            .and_then(|id| metrics.membership_config.membership().get_node(&id).map(|n| n.addr.clone()));
        Err(unavailable_with_hint("cluster changes go to the leader", leader_addr.as_deref()))
    }
}

type Membership = openraft::Membership<u64, NodeAddr>;

fn membership_to_pb(membership: &Membership) -> pb::Membership {
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    let member = |(id, node): (&u64, &NodeAddr)| pb::Member {
        node_id: *id,
        address: node.addr.clone(),
        peer_address: node.peer_addr.clone(),
    };
    pb::Membership {
        voters: membership.nodes().filter(|(id, _)| voters.contains(id)).map(member).collect(),
        learners: membership.nodes().filter(|(id, _)| !voters.contains(id)).map(member).collect(),
    }
}

fn role(state: ServerState) -> pb::NodeRole {
    match state {
        ServerState::Leader => pb::NodeRole::Leader,
        ServerState::Follower => pb::NodeRole::Follower,
        ServerState::Candidate => pb::NodeRole::Candidate,
        ServerState::Learner => pb::NodeRole::Learner,
        _ => pb::NodeRole::Unspecified,
    }
}

fn index(log_id: Option<&openraft::alias::LogIdOf<TypeConfig>>) -> u64 {
    log_id.map_or(0, |id| id.index)
}

/// `Cluster.Status` from this node's metrics: its own indexes exactly; for
/// the other nodes only what this node knows — on a leader, how far each has
/// been replicated (`matched_index`), never a guess at what they applied.
fn status_of(m: &RaftMetrics<TypeConfig>) -> pb::StatusResponse {
    let membership = m.membership_config.membership();
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    // Followers' progress is only known on the leader (matched index).
    let matched: BTreeMap<u64, u64> =
        m.replication.iter().flatten().map(|(id, log_id)| (*id, index(log_id.as_ref()))).collect();
    // When each node last acknowledged this leader (also only on a leader).
    let contact: BTreeMap<u64, u64> = m
        .heartbeat
        .iter()
        .flatten()
        .filter_map(|(id, at)| {
            let at = at.as_ref()?;
            Some((*id, u64::try_from(openraft::Instant::elapsed(&**at).as_millis()).unwrap_or(u64::MAX)))
        })
        .collect();
    let nodes = membership
        .nodes()
        .map(|(id, node)| {
            let voter = voters.contains(id);
            if *id == m.id {
                return pb::NodeStatus {
                    node_id: *id,
                    address: node.addr.clone(),
                    role: role(m.state) as i32,
                    voter,
                    last_log_index: m.last_log_index.unwrap_or(0),
                    committed_index: index(m.local_committed.as_ref()),
                    last_applied_index: index(m.last_applied.as_ref()),
                    reachable: true,
                    matched_index: None,
                    snapshot_index: index(m.snapshot.as_ref()),
                    last_contact_ms: None,
                };
            }
            let node_role = if Some(*id) == m.current_leader {
                pb::NodeRole::Leader
            } else if voter {
                pb::NodeRole::Follower
            } else {
                pb::NodeRole::Learner
            };
            let matched_index = matched.get(id).copied();
            pb::NodeStatus {
                node_id: *id,
                address: node.addr.clone(),
                role: node_role as i32,
                voter,
                last_log_index: 0,
                committed_index: 0,
                last_applied_index: 0,
                reachable: matched_index.is_some() || Some(*id) == m.current_leader,
                matched_index,
                snapshot_index: 0,
                last_contact_ms: contact.get(id).copied(),
            }
        })
        .collect();
    let leader_address =
        m.current_leader.and_then(|id| membership.get_node(&id).map(|n| n.addr.clone())).unwrap_or_default();
    pb::StatusResponse {
        leader_id: m.current_leader,
        leader_address,
        term: m.current_term,
        nodes,
        node_id: m.id,
        digest: None,
        version: env!("CARGO_PKG_VERSION").to_owned(),
    }
}

#[tonic::async_trait]
impl<SM: QueueMachine> Cluster for ClusterService<SM> {
    async fn status(&self, request: Request<pb::StatusRequest>) -> Result<Response<pb::StatusResponse>, Status> {
        let request = request.into_inner();
        let digest = if request.include_digest { Some(self.state_digest(request.full_scan).await?) } else { None };
        let mut response = status_of(&self.node.metrics_now());
        response.digest = digest;
        Ok(Response::new(response))
    }

    async fn add_learner(
        &self,
        request: Request<pb::AddLearnerRequest>,
    ) -> Result<Response<pb::AddLearnerResponse>, Status> {
        let audit = Audit::start(&request, "add_learner");
        let subject = format!("node {} at {}", request.get_ref().node_id, request.get_ref().address);
        audit.finish(&subject, self.add_learner_inner(request).await)
    }

    async fn promote_node(
        &self,
        request: Request<pb::PromoteNodeRequest>,
    ) -> Result<Response<pb::PromoteNodeResponse>, Status> {
        let audit = Audit::start(&request, "promote_node");
        let subject = format!("node {}", request.get_ref().node_id);
        audit.finish(&subject, self.promote_node_inner(request).await)
    }

    async fn remove_node(
        &self,
        request: Request<pb::RemoveNodeRequest>,
    ) -> Result<Response<pb::RemoveNodeResponse>, Status> {
        let audit = Audit::start(&request, "remove_node");
        let subject = format!("node {}", request.get_ref().node_id);
        audit.finish(&subject, self.remove_node_inner(request).await)
    }

    async fn transfer_leader(
        &self,
        request: Request<pb::TransferLeaderRequest>,
    ) -> Result<Response<pb::TransferLeaderResponse>, Status> {
        let audit = Audit::start(&request, "transfer_leader");
        let subject = format!("node {}", request.get_ref().node_id);
        audit.finish(&subject, self.transfer_leader_inner(request).await)
    }

    async fn trigger_snapshot(
        &self,
        request: Request<pb::TriggerSnapshotRequest>,
    ) -> Result<Response<pb::TriggerSnapshotResponse>, Status> {
        let audit = Audit::start(&request, "trigger_snapshot");
        let subject = format!("node {}", self.node.id);
        audit.finish(&subject, self.trigger_snapshot_inner(request).await)
    }
}

impl<SM: QueueMachine> ClusterService<SM> {
    async fn add_learner_inner(
        &self,
        request: Request<pb::AddLearnerRequest>,
    ) -> Result<Response<pb::AddLearnerResponse>, Status> {
        let r = request.into_inner();
        if r.node_id == 0 {
            return Err(invalid("node_id", "must be positive"));
        }
        for (field, value) in [("address", &r.address), ("peer_address", &r.peer_address)] {
            if !NodeAddr::is_host_port(value) {
                return Err(invalid(field, format!("{value:?} is not host:port")));
            }
        }
        if r.address == r.peer_address {
            return Err(invalid("peer_address", "must differ from address: peers and clients use separate ports"));
        }
        self.require_leader()?;
        let node = NodeAddr::new(r.address, r.peer_address);
        self.node.raft.add_learner(r.node_id, node, true).await.map_err(write_error)?;
        Ok(Response::new(pb::AddLearnerResponse { membership: Some(self.membership()) }))
    }

    async fn promote_node_inner(
        &self,
        request: Request<pb::PromoteNodeRequest>,
    ) -> Result<Response<pb::PromoteNodeResponse>, Status> {
        let id = request.into_inner().node_id;
        self.require_leader()?;
        let members = ChangeMembers::AddVoterIds(BTreeSet::from([id]));
        self.node.raft.change_membership(members, false).await.map_err(write_error)?;
        Ok(Response::new(pb::PromoteNodeResponse { membership: Some(self.membership()) }))
    }

    async fn remove_node_inner(
        &self,
        request: Request<pb::RemoveNodeRequest>,
    ) -> Result<Response<pb::RemoveNodeResponse>, Status> {
        let id = request.into_inner().node_id;
        self.require_leader()?;
        let membership = self.node.metrics_now().membership_config.membership().clone();
        if membership.get_node(&id).is_none() {
            return Err(crate::error::node_not_found(format!("node {id} is not a member")));
        }
        if membership.voter_ids().any(|voter| voter == id) {
            let members = ChangeMembers::RemoveVoters(BTreeSet::from([id]));
            self.node.raft.change_membership(members, false).await.map_err(write_error)?;
        } else {
            let members = ChangeMembers::RemoveNodes(BTreeSet::from([id]));
            self.node.raft.change_membership(members, false).await.map_err(write_error)?;
        }
        Ok(Response::new(pb::RemoveNodeResponse { membership: Some(self.membership()) }))
    }

    async fn transfer_leader_inner(
        &self,
        request: Request<pb::TransferLeaderRequest>,
    ) -> Result<Response<pb::TransferLeaderResponse>, Status> {
        let to = request.into_inner().node_id;
        self.require_leader()?;
        let membership = self.node.metrics_now().membership_config.membership().clone();
        if membership.get_node(&to).is_none() {
            return Err(crate::error::node_not_found(format!("node {to} is not a member")));
        }
        if !membership.voter_ids().any(|voter| voter == to) {
            return Err(crate::error::membership_refused(
                Code::FailedPrecondition,
                format!("node {to} is not a voter"),
            ));
        }
        if to == self.node.id {
            // Already done. Handing openraft a transfer to itself would stop
            // this leader's writes and heartbeats, its refusals would name
            // itself as the leader, and an election would move leadership
            // elsewhere: the opposite of what was asked.
            return Ok(Response::new(pb::TransferLeaderResponse {}));
        }
        // openraft stops this leader's writes and heartbeats and asks `to`
        // to run an election, once. If that message is lost (`to` is down,
        // or has just restarted and is not answering yet), the followers'
        // election timers fire and any of them may win. So the answer waits
        // for the outcome: OK only once `to` leads.
        let mut metrics = self.node.metrics();
        self.node.raft.trigger().transfer_leader(to).await.map_err(fatal)?;
        let wait = Duration::from_millis(self.node.raft.config().election_timeout_max * TRANSFER_WAIT_ELECTIONS);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match transfer_outcome(&self.node.metrics_now(), self.node.id, to) {
                TransferOutcome::Done => return Ok(Response::new(pb::TransferLeaderResponse {})),
                TransferOutcome::Elsewhere(leader) => {
                    return Err(Status::aborted(format!(
                        "node {leader} won the election instead of node {to}; \
                         the transfer can be asked for again"
                    )));
                }
                TransferOutcome::Pending => {}
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(Status::deadline_exceeded(format!(
                    "node {to} did not take over within {wait:?}; an election will choose a leader"
                )));
            }
            self.node.wait_for_change(&mut metrics, deadline - now).await;
        }
    }

    async fn trigger_snapshot_inner(
        &self,
        _request: Request<pb::TriggerSnapshotRequest>,
    ) -> Result<Response<pb::TriggerSnapshotResponse>, Status> {
        let applied = index(self.node.metrics_now().last_applied.as_ref());
        self.node.raft.trigger().snapshot().await.map_err(fatal)?;
        let mut metrics = self.node.metrics();
        let deadline = tokio::time::Instant::now() + SNAPSHOT_WAIT_MAX;
        loop {
            let snapshot = index(self.node.metrics_now().snapshot.as_ref());
            if snapshot >= applied {
                return Ok(Response::new(pb::TriggerSnapshotResponse { snapshot_index: snapshot }));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Status::deadline_exceeded(format!("snapshot did not finish within {SNAPSHOT_WAIT_MAX:?}")));
            }
            self.node.wait_for_change(&mut metrics, SNAPSHOT_RECHECK).await;
        }
    }
}

/// Where a leadership transfer from node `me` to node `to` stands, as
/// `me` sees it.
#[derive(Debug, PartialEq, Eq)]
enum TransferOutcome {
    /// `me` follows `to`, and has applied an entry of `to`'s term (so a
    /// majority acknowledged `to`, which then takes writes).
    Done,
    /// Another node won the election.
    Elsewhere(u64),
    /// `me` still leads (not writing), or knows no leader yet.
    Pending,
}

fn transfer_outcome(metrics: &RaftMetrics<TypeConfig>, me: u64, to: u64) -> TransferOutcome {
    match metrics.current_leader {
        // Elected is not yet writable: openraft refuses a new leader's
        // writes until a majority has acknowledged it in its term (its
        // lease). Its first entry applied here shows that it has.
        Some(leader) if leader == to => match &metrics.last_applied {
            Some(applied) if applied.leader_id.node_id == to && applied.leader_id.term == metrics.current_term => {
                TransferOutcome::Done
            }
            _ => TransferOutcome::Pending,
        },
        Some(leader) if leader != me => TransferOutcome::Elsewhere(leader),
        _ => TransferOutcome::Pending,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use openraft::testing::log_id;
    use openraft::{Membership, StoredMembership};

    use super::*;

    /// Node 1 leads {1, 2, 3}; it has replicated up to 7 on node 2 and
    /// knows nothing of node 3's log.
    fn leader_metrics() -> RaftMetrics<TypeConfig> {
        let mut m = RaftMetrics::new_initial(1);
        m.state = ServerState::Leader;
        m.current_leader = Some(1);
        m.current_term = 3;
        m.last_log_index = Some(10);
        m.local_committed = Some(log_id::<TypeConfig>(3, 1, 9));
        m.last_applied = Some(log_id::<TypeConfig>(3, 1, 8));
        let membership = Membership::new_with_defaults(vec![[1, 2, 3].into()], []);
        m.membership_config = Arc::new(StoredMembership::new(Some(log_id::<TypeConfig>(1, 1, 1)), membership));
        m.replication =
            Some(BTreeMap::from([(1, Some(log_id::<TypeConfig>(3, 1, 10))), (2, Some(log_id::<TypeConfig>(3, 1, 7)))]));
        // Node 2 acknowledged 5 s ago; node 3 never did.
        let five_s_ago = <openraft::alias::InstantOf<TypeConfig> as openraft::Instant>::now() - Duration::from_secs(5);
        m.heartbeat = Some(BTreeMap::from([(2, Some(five_s_ago.into())), (3, None)]));
        m
    }

    #[test]
    fn a_transfer_is_done_only_once_the_target_leads() {
        let mut m = leader_metrics();
        assert_eq!(transfer_outcome(&m, 1, 2), TransferOutcome::Pending, "still leading, not writing");
        m.current_leader = None;
        assert_eq!(transfer_outcome(&m, 1, 2), TransferOutcome::Pending, "voted, no leader yet");
        m.current_leader = Some(3);
        assert_eq!(transfer_outcome(&m, 1, 2), TransferOutcome::Elsewhere(3));
        m.current_leader = Some(2);
        m.current_term = 4;
        assert_eq!(transfer_outcome(&m, 1, 2), TransferOutcome::Pending, "elected, no entry of its term yet");
        m.last_applied = Some(log_id::<TypeConfig>(4, 2, 11));
        assert_eq!(transfer_outcome(&m, 1, 2), TransferOutcome::Done, "its first entry committed: writable");
    }

    #[test]
    fn status_reports_own_indexes_and_only_matched_for_others() {
        let status = status_of(&leader_metrics());
        assert_eq!((status.node_id, status.leader_id, status.term), (1, Some(1), 3));
        let node = |id: u64| status.nodes.iter().find(|n| n.node_id == id).unwrap().clone();

        let me = node(1);
        assert_eq!((me.last_log_index, me.committed_index, me.last_applied_index), (10, 9, 8));
        assert_eq!((me.role(), me.reachable, me.matched_index), (pb::NodeRole::Leader, true, None));

        let follower = node(2);
        assert_eq!(follower.matched_index, Some(7), "replicated up to, from the leader's view");
        assert_eq!(
            (follower.last_log_index, follower.committed_index, follower.last_applied_index),
            (0, 0, 0),
            "only node 2 knows what it holds and applied"
        );
        assert_eq!((follower.role(), follower.reachable), (pb::NodeRole::Follower, true));
        let contact = follower.last_contact_ms.expect("the leader knows when node 2 last acknowledged");
        assert!((5_000..60_000).contains(&contact), "{contact} ms");

        let unreached = node(3);
        assert_eq!((unreached.matched_index, unreached.reachable, unreached.last_applied_index), (None, false, 0));
        assert_eq!((unreached.last_contact_ms, me.last_contact_ms), (None, None));
        assert!(status.digest.is_none(), "the digest is computed only when asked");
    }

    #[test]
    fn a_follower_reports_nothing_about_the_others() {
        let mut m = leader_metrics();
        m.id = 2;
        m.state = ServerState::Follower;
        m.replication = None;
        let status = status_of(&m);
        for other in status.nodes.iter().filter(|n| n.node_id != 2) {
            assert_eq!((other.matched_index, other.last_applied_index), (None, 0), "{other:?}");
        }
        let leader = status.nodes.iter().find(|n| n.node_id == 1).unwrap();
        assert_eq!((leader.role(), leader.reachable), (pb::NodeRole::Leader, true));
    }
}
