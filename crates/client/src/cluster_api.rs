//! The `Cluster` service calls of [`Client`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::client::Conn;
use futures_util::future::BoxFuture;
use raftq_proto::v1::{self as proto, cluster_client::ClusterClient};

use crate::{
    client::{Budget, CallSpec, Client, Target},
    convert::missing,
    error::ClientError,
    retry::Safety::{Idempotent, NotIdempotent},
    types::{ClusterStatus, Membership},
};

/// Pause between two rounds of [`Client::verify_replicas`] while the
/// replicas' applied indexes differ.
const VERIFY_ROUND_PAUSE: Duration = Duration::from_millis(100);

/// How many times [`Client::transfer_leader`] asks, in all, while another
/// node keeps winning the election instead of the target.
pub const TRANSFER_ATTEMPTS: u32 = 3;

/// One node's state digest (G8) and the applied log index it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDigest {
    pub node_id: u64,
    pub address: String,
    pub applied_index: u64,
    /// The node's stored state digest, lowercase hex.
    pub digest: String,
    /// The digest recomputed from every pair of the same state, when a
    /// full scan was asked for.
    pub full_digest: Option<String>,
}

/// How much a digest check reads on each node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestScan {
    /// The stored digest, kept up to date by every write: one lookup.
    Stored,
    /// Also recompute the digest from every pair of the state: finds
    /// damage the stored digest did not see; time grows with the state.
    Full,
}

/// What [`Client::verify_replicas`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaCheck {
    /// Every member answered at the same applied index with the same digest.
    Agree { applied_index: u64, digest: String, nodes: Vec<NodeDigest> },
    /// Nodes at the same applied index hold different states: the replicas
    /// diverged (a bug or undetected damage). `nodes` are the ones at
    /// `applied_index`.
    Diverged { applied_index: u64, nodes: Vec<NodeDigest> },
    /// A full scan of these nodes' state gave another digest than the one
    /// they store: their state changed behind the state machine's back
    /// (damage on disk or a bug).
    Damaged { nodes: Vec<NodeDigest> },
    /// Within the wait, the members never all answered at one applied index
    /// (writes kept coming, or a node was down). `nodes` are the last
    /// answers (no two at the same index disagreed); `silent` the members
    /// (id, address) that did not answer in the last round.
    Unsettled { nodes: Vec<NodeDigest>, silent: Vec<(u64, String)> },
}

/// Judges one round of answers; `None` if every member answered but at
/// different applied indexes with no disagreement (worth another round).
fn judge(answers: Vec<NodeDigest>, silent: Vec<(u64, String)>) -> Option<ReplicaCheck> {
    let damaged: Vec<NodeDigest> =
        answers.iter().filter(|a| a.full_digest.as_ref().is_some_and(|full| *full != a.digest)).cloned().collect();
    if !damaged.is_empty() {
        return Some(ReplicaCheck::Damaged { nodes: damaged });
    }
    let mut by_index: BTreeMap<u64, BTreeSet<&str>> = BTreeMap::new();
    for answer in &answers {
        by_index.entry(answer.applied_index).or_default().insert(&answer.digest);
    }
    if let Some((&applied_index, _)) = by_index.iter().find(|(_, digests)| digests.len() > 1) {
        let nodes = answers.into_iter().filter(|a| a.applied_index == applied_index).collect();
        return Some(ReplicaCheck::Diverged { applied_index, nodes });
    }
    if silent.is_empty()
        && by_index.len() == 1
        && let Some((&applied_index, digests)) = by_index.iter().next()
    {
        let digest = digests.iter().next().map(|d| d.to_string()).unwrap_or_default();
        return Some(ReplicaCheck::Agree { applied_index, digest, nodes: answers });
    }
    if silent.is_empty() && by_index.len() > 1 {
        return None;
    }
    Some(ReplicaCheck::Unsettled { nodes: answers, silent })
}

/// One attempt of a `Cluster` call: the stub and a copy of the request.
type ClusterAttempt<Req, Resp> =
    fn(ClusterClient<Conn>, Req) -> BoxFuture<'static, Result<tonic::Response<Resp>, tonic::Status>>;

impl Client {
    /// Sends `req` with `send` under `spec`; returns the answer and who gave
    /// it.
    async fn cluster_call<Req: Clone, Resp>(
        &self,
        spec: CallSpec,
        req: Req,
        send: ClusterAttempt<Req, Resp>,
    ) -> Result<(Resp, String), ClientError> {
        self.call(spec, |channel| send(Self::cluster_stub(channel), req.clone())).await
    }

    /// The cluster's Raft state, preferably as the leader sees it (only the
    /// leader knows the others' progress). Any node answers; if the one that
    /// did names another node as leader, the leader is asked too, and its
    /// answer wins when it gives one.
    pub async fn cluster_status(&self) -> Result<ClusterStatus, ClientError> {
        let spec = CallSpec { learn_leader: false, ..CallSpec::leader("cluster_status", Idempotent) };
        let (status, addr) = self.status_call(spec).await?;
        if status.leader_id.is_some_and(|leader| leader == status.node_id) {
            self.set_leader(&addr);
            return Ok(status.into());
        }
        if status.leader_address.is_empty() || status.leader_address == addr {
            return Ok(status.into());
        }
        // One attempt: during an outage the named leader may be the node
        // that is down, and the answer in hand is worth more than a wait.
        let spec = CallSpec {
            target: Target::Node(status.leader_address.clone()),
            learn_leader: false,
            max_attempts: Some(1),
            ..CallSpec::leader("cluster_status", Idempotent)
        };
        match self.status_call(spec).await {
            Ok((from_leader, leader_addr)) => {
                if from_leader.leader_id.is_some_and(|leader| leader == from_leader.node_id) {
                    self.set_leader(&leader_addr);
                }
                Ok(from_leader.into())
            }
            Err(err) => {
                tracing::debug!(error = %err, "leader did not answer Status; using a follower's view");
                Ok(status.into())
            }
        }
    }

    /// The Raft state as node `addr` sees it (no redirect).
    pub async fn cluster_status_of(&self, addr: &str) -> Result<ClusterStatus, ClientError> {
        let spec = CallSpec {
            target: Target::Node(addr.to_owned()),
            learn_leader: false,
            ..CallSpec::leader("cluster_status", Idempotent)
        };
        Ok(self.status_call(spec).await?.0.into())
    }

    async fn status_call(&self, spec: CallSpec) -> Result<(proto::StatusResponse, String), ClientError> {
        self.status_call_with(spec, None).await
    }

    async fn status_call_with(
        &self,
        spec: CallSpec,
        digest: Option<DigestScan>,
    ) -> Result<(proto::StatusResponse, String), ClientError> {
        let request =
            proto::StatusRequest { include_digest: digest.is_some(), full_scan: digest == Some(DigestScan::Full) };
        self.cluster_call(spec, request, |mut c, r| Box::pin(async move { c.status(r).await })).await
    }

    /// Node `addr`'s state digest and the applied index it belongs to (no
    /// redirect); with [`DigestScan::Full`] also the digest recomputed from
    /// every pair (the node reads its whole state).
    pub async fn state_digest_of(&self, addr: &str, scan: DigestScan) -> Result<NodeDigest, ClientError> {
        self.state_digest_with(addr, None, scan).await
    }

    async fn state_digest_with(
        &self,
        addr: &str,
        max_attempts: Option<u32>,
        scan: DigestScan,
    ) -> Result<NodeDigest, ClientError> {
        let spec = CallSpec {
            target: Target::Node(addr.to_owned()),
            learn_leader: false,
            max_attempts,
            ..CallSpec::leader("cluster_status", Idempotent)
        };
        let (status, _) = self.status_call_with(spec, Some(scan)).await?;
        let digest = status.digest.ok_or_else(|| missing("StatusResponse.digest"))?;
        Ok(NodeDigest {
            node_id: status.node_id,
            address: addr.to_owned(),
            applied_index: digest.applied_index,
            digest: digest.digest,
            full_digest: (scan == DigestScan::Full).then_some(digest.full_digest),
        })
    }

    /// Asks every member for its state digest, in rounds, until all answer
    /// at the same applied index (then compares them) or `wait` passes.
    /// Replicas at one applied index must hold identical state (G8), so two
    /// different digests at one index end the check at once as
    /// [`ReplicaCheck::Diverged`]. Errors only if the membership cannot be
    /// read.
    /// With [`DigestScan::Full`] every round also recomputes each node's
    /// digest from its whole state, and a node whose recount differs from
    /// its stored digest ends the check as [`ReplicaCheck::Damaged`].
    pub async fn verify_replicas(&self, wait: Duration, scan: DigestScan) -> Result<ReplicaCheck, ClientError> {
        let members: Vec<(u64, String)> =
            self.cluster_status().await?.nodes.into_iter().map(|n| (n.node_id, n.address)).collect();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let asks = members.iter().map(|(_, addr)| self.state_digest_with(addr, Some(1), scan));
            let results = futures_util::future::join_all(asks).await;
            let mut answers = Vec::new();
            let mut silent = Vec::new();
            for ((id, addr), result) in members.iter().zip(results) {
                match result {
                    Ok(answer) => answers.push(answer),
                    Err(err) => {
                        tracing::debug!(node = id, %addr, error = %err, "no digest");
                        silent.push((*id, addr.clone()));
                    }
                }
            }
            let out_of_time = tokio::time::Instant::now() >= deadline;
            match judge(answers.clone(), silent.clone()) {
                Some(
                    check @ (ReplicaCheck::Agree { .. } | ReplicaCheck::Diverged { .. } | ReplicaCheck::Damaged { .. }),
                ) => return Ok(check),
                Some(unsettled) if out_of_time => return Ok(unsettled),
                None if out_of_time => return Ok(ReplicaCheck::Unsettled { nodes: answers, silent }),
                _ => tokio::time::sleep(VERIFY_ROUND_PAUSE).await,
            }
        }
    }

    /// Adds node `node_id` as a learner: clients reach it at `address`, its
    /// peers at `peer_address` (both `host:port`, different ports).
    pub async fn add_learner(
        &self,
        node_id: u64,
        address: &str,
        peer_address: &str,
    ) -> Result<Membership, ClientError> {
        let req =
            proto::AddLearnerRequest { node_id, address: address.to_owned(), peer_address: peer_address.to_owned() };
        let (resp, _) = self
            // The server answers once the learner has caught up (a snapshot
            // and the log): no per-attempt timeout, as for a redrive.
            .cluster_call(CallSpec::leader("add_learner", NotIdempotent).budget(Budget::Unbounded), req, |mut c, r| {
                Box::pin(async move { c.add_learner(r).await })
            })
            .await?;
        Ok(resp.membership.ok_or_else(|| missing("AddLearnerResponse.membership"))?.into())
    }

    /// Makes learner `node_id` a voter (a no-op for a voter, so retried
    /// freely).
    pub async fn promote(&self, node_id: u64) -> Result<Membership, ClientError> {
        let req = proto::PromoteNodeRequest { node_id };
        let (resp, _) = self
            .cluster_call(CallSpec::leader("promote", Idempotent), req, |mut c, r| {
                Box::pin(async move { c.promote_node(r).await })
            })
            .await?;
        Ok(resp.membership.ok_or_else(|| missing("PromoteNodeResponse.membership"))?.into())
    }

    /// Removes node `node_id` (voter or learner).
    pub async fn remove_node(&self, node_id: u64) -> Result<Membership, ClientError> {
        let req = proto::RemoveNodeRequest { node_id };
        let (resp, _) = self
            .cluster_call(CallSpec::leader("remove_node", NotIdempotent), req, |mut c, r| {
                Box::pin(async move { c.remove_node(r).await })
            })
            .await?;
        Ok(resp.membership.ok_or_else(|| missing("RemoveNodeResponse.membership"))?.into())
    }

    /// Asks the leader to hand leadership to voter `node_id`; returns once
    /// `node_id` leads. When another node wins the election instead
    /// (ABORTED), asks again, up to [`TRANSFER_ATTEMPTS`] times in all: a
    /// transfer to the node that already leads is a no-op, so asking again
    /// is safe. The client forgets the old leader.
    pub async fn transfer_leader(&self, node_id: u64) -> Result<(), ClientError> {
        let mut attempt = 1;
        loop {
            let req = proto::TransferLeaderRequest { node_id };
            let spec = CallSpec { learn_leader: false, ..CallSpec::leader("transfer_leader", NotIdempotent) };
            match self.cluster_call(spec, req, |mut c, r| Box::pin(async move { c.transfer_leader(r).await })).await {
                Ok((_, addr)) => {
                    self.forget(&addr);
                    return Ok(());
                }
                // The old leader now answers with a hint naming the winner,
                // so the next attempt finds the new leader.
                Err(ClientError::Status { code: tonic::Code::Aborted, .. }) if attempt < TRANSFER_ATTEMPTS => {
                    attempt += 1
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Snapshots the state machine of the node the client talks to (the
    /// leader if known); returns the last log index covered.
    pub async fn trigger_snapshot(&self) -> Result<u64, ClientError> {
        let spec = CallSpec { learn_leader: false, ..CallSpec::leader("trigger_snapshot", Idempotent) };
        self.snapshot_call(spec).await
    }

    /// Snapshots node `addr` (no redirect).
    pub async fn trigger_snapshot_of(&self, addr: &str) -> Result<u64, ClientError> {
        let spec = CallSpec {
            target: Target::Node(addr.to_owned()),
            learn_leader: false,
            ..CallSpec::leader("trigger_snapshot", Idempotent)
        };
        self.snapshot_call(spec).await
    }

    async fn snapshot_call(&self, spec: CallSpec) -> Result<u64, ClientError> {
        let (resp, _) = self
            .cluster_call(spec, proto::TriggerSnapshotRequest {}, |mut c, r| {
                Box::pin(async move { c.trigger_snapshot(r).await })
            })
            .await?;
        Ok(resp.snapshot_index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(node_id: u64, applied_index: u64, digest: &str) -> NodeDigest {
        NodeDigest {
            node_id,
            address: format!("n{node_id}:1"),
            applied_index,
            digest: digest.into(),
            full_digest: None,
        }
    }

    #[test]
    fn a_node_whose_recount_differs_from_its_stored_digest_is_damaged() {
        let full = |mut a: NodeDigest, full: &str| {
            a.full_digest = Some(full.into());
            a
        };
        let agree = judge(vec![full(answer(1, 7, "aa"), "aa"), full(answer(2, 7, "aa"), "aa")], vec![]);
        assert!(matches!(agree, Some(ReplicaCheck::Agree { .. })), "{agree:?}");
        let check = judge(vec![full(answer(1, 7, "aa"), "aa"), full(answer(2, 7, "aa"), "ab")], vec![]);
        let Some(ReplicaCheck::Damaged { nodes }) = check.clone() else { panic!("{check:?}") };
        assert_eq!(nodes.iter().map(|n| n.node_id).collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn equal_digests_at_one_index_agree() {
        let check = judge(vec![answer(1, 7, "aa"), answer(2, 7, "aa"), answer(3, 7, "aa")], vec![]);
        assert!(matches!(check, Some(ReplicaCheck::Agree { applied_index: 7, ref digest, .. }) if digest == "aa"));
    }

    #[test]
    fn different_digests_at_one_index_diverge_even_if_others_lag() {
        let check = judge(vec![answer(1, 7, "aa"), answer(2, 7, "bb"), answer(3, 5, "cc")], vec![(4, "n4:1".into())]);
        let Some(ReplicaCheck::Diverged { applied_index: 7, nodes }) = check.clone() else { panic!("{check:?}") };
        assert_eq!(nodes.iter().map(|n| n.node_id).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn different_indexes_ask_again_and_a_silent_node_is_unsettled() {
        assert_eq!(judge(vec![answer(1, 7, "aa"), answer(2, 8, "bb")], vec![]), None);
        let check = judge(vec![answer(1, 7, "aa")], vec![(2, "n2:1".into())]);
        assert!(matches!(check, Some(ReplicaCheck::Unsettled { ref silent, .. }) if silent.len() == 1), "{check:?}");
    }
}
