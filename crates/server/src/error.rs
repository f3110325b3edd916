//! Every error the server returns becomes a `tonic::Status` here, in one
//! place: queue rejections by kind, Raft errors as UNAVAILABLE with the
//! leader's address in metadata `raftq-leader` when it is known.

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
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => not_leader(&forward),
        // Ambiguous: the entry may still commit under the new leader. Still
        // UNAVAILABLE (retryable): idempotency keys make publish retries
        // safe, and every other command's retry is harmless or rejected.
        RaftError::APIError(ClientWriteError::LogEntryDiscarded(forward)) => {
            let leader_addr = forward.leader_node.as_ref().map(|node| node.addr.clone());
            unavailable_with_hint("leader changed before the entry committed; outcome unknown", leader_addr.as_deref())
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => Status::failed_precondition(e.to_string()),
        RaftError::APIError(ClientWriteError::PreconditionFailed(e)) => Status::unavailable(e.to_string()),
        RaftError::Fatal(fatal) => Status::unavailable(format!("raft stopped on this node: {fatal}")),
    }
}

pub fn read_error(error: RaftError<TypeConfig, LinearizableReadError<TypeConfig>>) -> Status {
    match error {
        RaftError::APIError(LinearizableReadError::ForwardToLeader(forward)) => not_leader(&forward),
        RaftError::APIError(other) => Status::unavailable(format!("cannot confirm leadership: {other}")),
        RaftError::Fatal(fatal) => Status::unavailable(format!("raft stopped on this node: {fatal}")),
    }
}

pub fn fatal(error: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("raft stopped on this node: {error}"))
}

pub fn invalid(field: &str, reason: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {reason}"))
}
