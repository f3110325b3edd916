//! # raftq-raft: the Raft glue
//!
//! Wires openraft to raftq: its configuration, the node-to-node transport
//! over tonic (client side in [`network`], server side in [`transport`]),
//! and the one-time bootstrap of a fresh cluster.
//!
//! ## Invariants
//! - No socket is bound or dialled here directly: the [`network::Connector`]
//!   dials, the caller's listener accepts, so the simulation runs this code
//!   over turmoil.
//! - One cached channel per peer address; every RPC has a deadline.
//! - A snapshot travels in chunks and is installed only when complete.
//! - A cluster is initialized only by a pristine node that is one of the
//!   `--peers`, always with the full peer set (identical on every node), so
//!   a node joining later never forms a cluster of its own.

pub mod codec;
pub mod network;
pub mod transport;

use std::collections::BTreeMap;
use std::sync::Arc;

use openraft::error::{InitializeError, RaftError};
use openraft::storage::RaftStateMachine;
use openraft::{BasicNode, Raft, SnapshotPolicy};
use raftq_storage::{SnapshotData, TypeConfig};

/// Raft timing and log-retention settings, validated once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftSettings {
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many applied entries.
    pub snapshot_every_entries: u64,
    /// Entries kept in the log behind a snapshot, so a briefly lagging
    /// follower catches up from the log instead of a snapshot.
    pub log_kept_behind_snapshot: u64,
}

impl Default for RaftSettings {
    fn default() -> Self {
        Self {
            heartbeat_ms: 100,
            election_timeout_min_ms: 500,
            election_timeout_max_ms: 1_000,
            snapshot_every_entries: 20_000,
            log_kept_behind_snapshot: 2_000,
        }
    }
}

impl RaftSettings {
    /// openraft's config from these settings (validated by openraft).
    pub fn openraft_config(&self, cluster_name: &str) -> Result<Arc<openraft::Config>, openraft::ConfigError> {
        let config = openraft::Config {
            cluster_name: cluster_name.to_string(),
            heartbeat_interval: self.heartbeat_ms,
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            // Enough for a burst of large entries over a slow link.
            install_snapshot_timeout: 10_000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every_entries),
            max_in_snapshot_log_to_keep: self.log_kept_behind_snapshot,
            enable_pre_vote: Some(true),
            // A leader that restarts without its newest (unsynced) entries
            // must not resume its old term: it would write different entries
            // under log ids its followers already hold (found by the
            // simulation, seeds 13 and 19 with torn writes).
            enable_leader_restore: Some(false),
            ..Default::default()
        };
        Ok(Arc::new(config.validate()?))
    }
}

/// The node address map of `--peers`.
pub type Peers = BTreeMap<u64, String>;

/// Initializes the cluster on first start: a pristine node listed in
/// `peers` proposes the full peer set. Every peer proposes the same set, so
/// whichever wins the election, the membership is the same; a node that
/// already has state (a restart) does nothing and recovers from its log.
pub async fn bootstrap<SM>(raft: &Raft<TypeConfig, SM>, node_id: u64, peers: &Peers) -> Result<bool, String>
where
    SM: RaftStateMachine<TypeConfig, SnapshotData = SnapshotData>,
{
    if !peers.contains_key(&node_id) {
        return Ok(false);
    }
    if raft.is_initialized().await.map_err(|e| e.to_string())? {
        return Ok(false);
    }
    let members: BTreeMap<u64, BasicNode> =
        peers.iter().map(|(id, addr)| (*id, BasicNode { addr: addr.clone() })).collect();
    match raft.initialize(members).await {
        Ok(()) => Ok(true),
        // Another peer's initialization reached us first: the goal is met.
        Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}
