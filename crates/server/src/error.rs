//! Every error the server returns becomes a `tonic::Status` here, in one
//! place: queue rejections by kind, Raft errors as UNAVAILABLE with the
//! leader's address in metadata `raftq-leader` when it is known.
//!
//! Two kinds of failure are kept apart, because clients retry them
//! differently:
//! - UNAVAILABLE means *nothing happened*: the request was refused before
//!   its entry was appended (this node is not the leader, Raft is not
//!   running). Any request may be sent again.
//! - UNKNOWN ([`outcome_unknown`]) means *the outcome is unknown*: the entry
//!   was appended, then leadership changed or the node stopped before it was
//!   known whether the entry commits (openraft's `LogEntryDiscarded`, a
//!   fatal error or a dropped proposal after `client_write` began). It may
//!   have been applied, or may still be. Only idempotent requests are
//!   retried blindly; see README.md, "Errors and retries".

use openraft::error::{ClientWriteError, ForwardToLeader, LinearizableReadError, RaftError};
use raftq_core::QueueError;
use raftq_proto::{LEADER_METADATA_KEY, RETRY_AFTER_MS_METADATA_KEY};
use raftq_storage::TypeConfig;
use tonic::{Code, Status};

/// A replicated queue rejection as a gRPC status.
pub fn queue_error(error: QueueError) -> Status {
    let code = match &error {
        QueueError::InvalidArgument { .. } => Code::InvalidArgument,
        QueueError::NotFound { .. } => Code::NotFound,
        QueueError::AlreadyExists { .. } => Code::AlreadyExists,
        QueueError::FailedPrecondition { .. } => Code::FailedPrecondition,
        QueueError::ResourceExhausted { .. } => Code::ResourceExhausted,
    };
    Status::new(code, error.to_string())
}

/// RESOURCE_EXHAUSTED for a request this node refused before doing
/// anything with it because it is overloaded: carries
/// `raftq-retry-after-ms`, so clients know a retry is safe (unlike a full
/// queue's RESOURCE_EXHAUSTED, which carries no such key).
pub fn overloaded(message: &str) -> Status {
    let mut status = Status::resource_exhausted(message);
    let retry_after = crate::node::OVERLOAD_RETRY_AFTER_MS.to_string();
    if let Ok(value) = retry_after.parse() {
        status.metadata_mut().insert(RETRY_AFTER_MS_METADATA_KEY, value);
    }
    status
}

/// RESOURCE_EXHAUSTED for a write that adds data while this node's disk is
/// below its reserve. Nothing was proposed, so it carries
/// `raftq-retry-after-ms` (the guard's check period) like an overload.
pub fn disk_low(node_id: u64, available: u64, reserve: u64) -> Status {
    let mut status = Status::resource_exhausted(format!(
        "disk space low on node {node_id}: {} MiB free, below its reserve of {} MiB (--min-free-disk-mb); \
         publishing resumes when consumers or an operator free space",
        available >> 20,
        reserve >> 20
    ));
    let retry_after = crate::disk::DISK_CHECK_PERIOD.as_millis().to_string();
    if let Ok(value) = retry_after.parse() {
        status.metadata_mut().insert(RETRY_AFTER_MS_METADATA_KEY, value);
    }
    status
}

/// UNAVAILABLE, naming the leader's address if this node knows it.
pub fn not_leader(forward: &ForwardToLeader<TypeConfig>) -> Status {
    let leader_addr = forward.leader_node.as_ref().map(|node| node.addr.clone());
    unavailable_with_hint("this node is not the leader", leader_addr.as_deref())
}

pub fn unavailable_with_hint(message: &str, leader_addr: Option<&str>) -> Status {
    let mut status = Status::unavailable(match leader_addr {
        Some(addr) => format!("{message}; the leader is at {addr}"),
        None => format!("{message}; no leader is known yet, retry"),
    });
    if let Some(value) = leader_addr.and_then(|addr| addr.parse().ok()) {
        status.metadata_mut().insert(LEADER_METADATA_KEY, value);
    }
    status
}

pub fn write_error(error: RaftError<TypeConfig, ClientWriteError<TypeConfig>>) -> Status {
    match error {
        // Refused before the entry was appended: nothing happened.
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => not_leader(&forward),
        // The entry was appended, then dropped from this node's log when it
        // adopted another leader's: it may have committed there, or may yet.
        RaftError::APIError(ClientWriteError::LogEntryDiscarded(forward)) => {
            let leader_addr = forward.leader_node.as_ref().map(|node| node.addr.clone());
            outcome_unknown("leadership changed before the entry was known to commit", leader_addr.as_deref())
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => Status::failed_precondition(e.to_string()),
        // Only membership writes carry preconditions; checked before append.
        RaftError::APIError(ClientWriteError::PreconditionFailed(e)) => Status::unavailable(e.to_string()),
        // Raft stopped while the entry was in flight.
        RaftError::Fatal(fatal) => outcome_unknown(&format!("raft stopped on this node: {fatal}"), None),
    }
}

/// UNKNOWN: a write whose entry was appended but whose fate is unknown. It
/// may have been applied, or may still be; the request must not be treated
/// as "nothing happened". Carries the leader hint when known.
pub fn outcome_unknown(message: &str, leader_addr: Option<&str>) -> Status {
    let mut status =
        Status::unknown(format!("outcome unknown: {message}; the request may or may not have taken effect"));
    if let Some(value) = leader_addr.and_then(|addr| addr.parse().ok()) {
        status.metadata_mut().insert(LEADER_METADATA_KEY, value);
    }
    status
}

pub fn read_error(error: RaftError<TypeConfig, LinearizableReadError<TypeConfig>>) -> Status {
    match error {
        RaftError::APIError(LinearizableReadError::ForwardToLeader(forward)) => not_leader(&forward),
        RaftError::APIError(other) => Status::unavailable(format!("cannot confirm leadership: {other}")),
        RaftError::Fatal(fatal) => Status::unavailable(format!("raft stopped on this node: {fatal}")),
    }
}

/// The state store failed while reading (I/O error, checksum mismatch): the
/// node cannot answer from its state.
pub fn store_fault(fault: raftq_core::kv::StoreFault) -> Status {
    tracing::error!("reading the state failed: {fault}");
    Status::internal(fault.to_string())
}

pub fn fatal(error: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("raft stopped on this node: {error}"))
}

pub fn invalid(field: &str, reason: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {reason}"))
}
