//! The `Cluster` service calls of [`Client`].

use futures_util::future::BoxFuture;
use raftq_proto::v1::{self as proto, cluster_client::ClusterClient};
use tonic::transport::Channel;

use crate::{
    client::{CallSpec, Client, Target},
    error::ClientError,
    queue_api::missing,
    retry::Safety::{Idempotent, NotIdempotent},
};

/// One attempt of a `Cluster` call: the stub and a copy of the request.
type ClusterAttempt<Req, Resp> =
    fn(ClusterClient<Channel>, Req) -> BoxFuture<'static, Result<tonic::Response<Resp>, tonic::Status>>;

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
    pub async fn cluster_status(&self) -> Result<proto::StatusResponse, ClientError> {
        let spec = CallSpec { learn_leader: false, ..CallSpec::leader("cluster_status", Idempotent) };
        let (status, addr) = self.status_call(spec).await?;
        if status.leader_id.is_some_and(|leader| leader == status.node_id) {
            self.set_leader(&addr);
            return Ok(status);
        }
        if status.leader_address.is_empty() || status.leader_address == addr {
            return Ok(status);
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
                Ok(from_leader)
            }
            Err(err) => {
                tracing::debug!(error = %err, "leader did not answer Status; using a follower's view");
                Ok(status)
            }
        }
    }

    /// The Raft state as node `addr` sees it (no redirect).
    pub async fn cluster_status_of(&self, addr: &str) -> Result<proto::StatusResponse, ClientError> {
        let spec = CallSpec {
            target: Target::Node(addr.to_owned()),
            learn_leader: false,
            ..CallSpec::leader("cluster_status", Idempotent)
        };
        Ok(self.status_call(spec).await?.0)
    }

    async fn status_call(&self, spec: CallSpec) -> Result<(proto::StatusResponse, String), ClientError> {
        self.cluster_call(spec, proto::StatusRequest {}, |mut c, r| Box::pin(async move { c.status(r).await })).await
    }

    /// Adds node `node_id` at `address` (`host:port`) as a learner.
    pub async fn add_learner(&self, node_id: u64, address: &str) -> Result<proto::Membership, ClientError> {
        let req = proto::AddLearnerRequest { node_id, address: address.to_owned() };
        let (resp, _) = self
            .cluster_call(CallSpec::leader("add_learner", NotIdempotent), req, |mut c, r| {
                Box::pin(async move { c.add_learner(r).await })
            })
            .await?;
        resp.membership.ok_or_else(|| missing("AddLearnerResponse.membership"))
    }

    /// Makes learner `node_id` a voter (a no-op for a voter, so retried
    /// freely).
    pub async fn promote(&self, node_id: u64) -> Result<proto::Membership, ClientError> {
        let req = proto::PromoteNodeRequest { node_id };
        let (resp, _) = self
            .cluster_call(CallSpec::leader("promote", Idempotent), req, |mut c, r| {
                Box::pin(async move { c.promote_node(r).await })
            })
            .await?;
        resp.membership.ok_or_else(|| missing("PromoteNodeResponse.membership"))
    }

    /// Removes node `node_id` (voter or learner).
    pub async fn remove_node(&self, node_id: u64) -> Result<proto::Membership, ClientError> {
        let req = proto::RemoveNodeRequest { node_id };
        let (resp, _) = self
            .cluster_call(CallSpec::leader("remove_node", NotIdempotent), req, |mut c, r| {
                Box::pin(async move { c.remove_node(r).await })
            })
            .await?;
        resp.membership.ok_or_else(|| missing("RemoveNodeResponse.membership"))
    }

    /// Asks the leader to hand leadership to voter `node_id`; returns once
    /// the transfer started. The client forgets the old leader.
    pub async fn transfer_leader(&self, node_id: u64) -> Result<(), ClientError> {
        let req = proto::TransferLeaderRequest { to_node_id: node_id };
        let spec = CallSpec { learn_leader: false, ..CallSpec::leader("transfer_leader", NotIdempotent) };
        let (_, addr) =
            self.cluster_call(spec, req, |mut c, r| Box::pin(async move { c.transfer_leader(r).await })).await?;
        self.forget(&addr);
        Ok(())
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
