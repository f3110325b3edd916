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
use openraft::{Raft, SnapshotPolicy};
use raftq_types::{NodeAddr, SnapshotData, TypeConfig};

/// Limit on sending one snapshot chunk (`install_snapshot_timeout`), in ms:
/// enough for a burst of large entries over a slow link.
const INSTALL_SNAPSHOT_TIMEOUT_MS: u64 = 10_000;

/// Raft timing and log-retention settings, validated once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftSettings {
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many applied entries.
    pub snapshot_every_entries: u64,
    /// Also build one once the entries applied since the last snapshot
    /// carry this many bytes of commands, so a log of large entries cannot
    /// outgrow the disk before the entry count is reached (the server
    /// triggers it; openraft's policy counts entries only). 0: off.
    pub snapshot_every_bytes: u64,
    /// Entries kept in the log behind a snapshot, so a briefly lagging
    /// follower catches up from the log instead of a snapshot.
    pub log_kept_behind_snapshot: u64,
}

/// Default [`RaftSettings::heartbeat_ms`].
pub const HEARTBEAT_MS_DEFAULT: u64 = 100;
/// Default [`RaftSettings::election_timeout_min_ms`]; the maximum defaults
/// to twice it.
pub const ELECTION_TIMEOUT_MS_DEFAULT: u64 = 500;
/// Default [`RaftSettings::snapshot_every_entries`].
pub const SNAPSHOT_EVERY_ENTRIES_DEFAULT: u64 = 20_000;
/// Default [`RaftSettings::snapshot_every_bytes`]: 256 MiB.
pub const SNAPSHOT_EVERY_BYTES_DEFAULT: u64 = 256 << 20;
/// Default [`RaftSettings::log_kept_behind_snapshot`].
pub const LOG_KEPT_BEHIND_SNAPSHOT_DEFAULT: u64 = 2_000;

impl Default for RaftSettings {
    fn default() -> Self {
        Self {
            heartbeat_ms: HEARTBEAT_MS_DEFAULT,
            election_timeout_min_ms: ELECTION_TIMEOUT_MS_DEFAULT,
            election_timeout_max_ms: 2 * ELECTION_TIMEOUT_MS_DEFAULT,
            snapshot_every_entries: SNAPSHOT_EVERY_ENTRIES_DEFAULT,
            snapshot_every_bytes: SNAPSHOT_EVERY_BYTES_DEFAULT,
            log_kept_behind_snapshot: LOG_KEPT_BEHIND_SNAPSHOT_DEFAULT,
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
            install_snapshot_timeout: INSTALL_SNAPSHOT_TIMEOUT_MS,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every_entries),
            max_in_snapshot_log_to_keep: self.log_kept_behind_snapshot,
            enable_pre_vote: Some(true),
            // A leader that restarts without its newest (unsynced) entries
            // must not resume its old term: it would write different entries
            // under log ids its followers already hold (found by the
            // simulation, seeds 13 and 19 with torn writes).
            enable_leader_restore: Some(false),
            max_payload_entries: network::APPEND_ENTRIES_MAX,
            ..Default::default()
        };
        Ok(Arc::new(config.validate()?))
    }
}

/// The initial voters of `--peers`: each one's client and peer address.
pub type Peers = BTreeMap<u64, NodeAddr>;

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
    match raft.initialize(peers.clone()).await {
        Ok(()) => Ok(true),
        // Another peer's initialization reached us first: the goal is met.
        Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// openraft's default (300 entries per AppendEntries) could build a
    /// request of 300 six-MiB entries against the 64 MiB transport limit:
    /// refused every time, so a lagging follower never caught up.
    #[test]
    fn an_append_of_the_largest_entries_fits_the_transport() {
        let config = RaftSettings::default().openraft_config("test").expect("valid");
        let worst = config.max_payload_entries as usize * network::ENTRY_BYTES_BOUND;
        assert!(worst <= network::TRANSPORT_MESSAGE_BYTES_MAX, "{worst} bytes");
        assert!(config.max_payload_entries >= 8, "catch-up still moves several entries per request");
    }
}
