//! The openraft type configuration and what a raftq log entry carries.
//!
//! A log entry's application payload is a [`LogPayload`]: the time the
//! leader stamped and one or more client commands (group commit). Applying
//! it runs every command through `QueueState::apply` at that time, so the
//! outcome is a pure function of (state, entry) on every replica.

use std::fmt;

use raftq_core::{Command, Response};
use serde::{Deserialize, Serialize};

/// Bumped on any change to [`LogPayload`]'s encoding or meaning. A replica
/// that meets another version in `apply` rejects every command of that
/// entry (all replicas alike) rather than guess; a leader must never write a
/// version some member cannot apply.
pub const LOG_PAYLOAD_FORMAT_VERSION: u16 = 1;

openraft::declare_raft_types!(
    /// raftq's openraft type configuration: u64 node ids, nodes reached at
    /// two addresses ([`NodeAddr`]), [`LogPayload`] entries and
    /// [`ApplyResult`] answers, on tokio with seedable randomness
    /// ([`crate::runtime`]).
    pub TypeConfig:
        D = LogPayload,
        R = ApplyResult,
        NodeId = u64,
        Node = NodeAddr,
        AsyncRuntime = crate::runtime::RaftqRuntime,
);

/// Where a member is reached, as the membership records it: clients at
/// `addr` (the `Queue` and `Cluster` services; leader hints name it), its
/// peers at `peer_addr` (the Raft transport only). Both are `host:port`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddr {
    /// The client address.
    pub addr: String,
    /// The peer (Raft transport) address.
    pub peer_addr: String,
}

impl NodeAddr {
    pub fn new(addr: impl Into<String>, peer_addr: impl Into<String>) -> Self {
        Self { addr: addr.into(), peer_addr: peer_addr.into() }
    }

    /// Whether `text` has the shape of an address: `host:port` with a
    /// non-empty host, a port number and no whitespace.
    pub fn is_host_port(text: &str) -> bool {
        match text.rsplit_once(':') {
            Some((host, port)) => {
                !host.is_empty() && port.parse::<u16>().is_ok() && !text.contains(char::is_whitespace)
            }
            None => false,
        }
    }
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (peers: {})", self.addr, self.peer_addr)
    }
}

/// The application data of one log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPayload {
    /// [`LOG_PAYLOAD_FORMAT_VERSION`] when written; checked when applied.
    pub format_version: u16,
    /// Leader-stamped wall time, the only clock `apply` ever sees.
    pub time_ms: u64,
    /// Applied in order; many clients' commands can share one entry.
    pub commands: Vec<Command>,
}

impl LogPayload {
    /// A payload in the current format.
    pub fn new(time_ms: u64, commands: Vec<Command>) -> Self {
        Self { format_version: LOG_PAYLOAD_FORMAT_VERSION, time_ms, commands }
    }
}

impl fmt::Display for LogPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "payload(v{}, t={}ms, {} commands)", self.format_version, self.time_ms, self.commands.len())
    }
}

/// What applying one log entry answered: one response per command, in the
/// entry's order. Blank and membership entries answer an empty list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyResult {
    pub responses: Vec<Response>,
}

pub use crate::snapshot_stream::SnapshotData;

pub type Entry = openraft::alias::EntryOf<TypeConfig>;
pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
pub type Snapshot = openraft::alias::SnapshotOf<TypeConfig, SnapshotData>;
pub type LogState = openraft::storage::LogState<TypeConfig>;
pub type IOFlushed = openraft::storage::IOFlushed<TypeConfig>;
