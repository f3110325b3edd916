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
//!
//! Every status made here also carries the rich error model
//! (`google.rpc.Status` in `grpc-status-details-bin`): an `ErrorInfo` whose
//! `reason` is a stable name from `proto/raftq/v1/errors.proto`, a
//! `BadRequest` for bad input and a `RetryInfo` where a retry should wait.

use std::time::Duration;

use openraft::error::{ClientWriteError, ForwardToLeader, LinearizableReadError, RaftError};
use raftq_core::QueueError;
use raftq_proto::{LEADER_METADATA_KEY, RETRY_AFTER_MS_METADATA_KEY};
use raftq_storage::TypeConfig;
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// `ErrorInfo.domain` of every raftq error.
pub const ERROR_DOMAIN: &str = "raftq";

/// Reasons the server gives besides the state machine's ([`Reason`]); the
/// names of `ErrorReason` values in `errors.proto`.
pub mod reason {
    pub const OVERLOADED: &str = "OVERLOADED";
    pub const DISK_LOW: &str = "DISK_LOW";
    pub const NOT_LEADER: &str = "NOT_LEADER";
    pub const NO_LEADER: &str = "NO_LEADER";
    pub const NODE_STOPPED: &str = "NODE_STOPPED";
    pub const OUTCOME_UNKNOWN: &str = "OUTCOME_UNKNOWN";
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const PERMISSION_DENIED: &str = "PERMISSION_DENIED";
    pub const MEMBERSHIP_CHANGE_REFUSED: &str = "MEMBERSHIP_CHANGE_REFUSED";
    pub const NODE_NOT_FOUND: &str = "NODE_NOT_FOUND";
    pub const STORE_FAULT: &str = "STORE_FAULT";
    pub const INVALID_ARGUMENT: &str = "INVALID_ARGUMENT";
    pub const REQUEST_TOO_LARGE: &str = "REQUEST_TOO_LARGE";
    pub const PUBLISH_WINDOW_EXCEEDED: &str = "PUBLISH_WINDOW_EXCEEDED";
    /// Every server reason, for the test against the proto.
    #[cfg(test)]
    pub const ALL: [&str; 14] = [
        OVERLOADED,
        DISK_LOW,
        NOT_LEADER,
        NO_LEADER,
        NODE_STOPPED,
        OUTCOME_UNKNOWN,
        UNAUTHENTICATED,
        PERMISSION_DENIED,
        MEMBERSHIP_CHANGE_REFUSED,
        NODE_NOT_FOUND,
        STORE_FAULT,
        INVALID_ARGUMENT,
        REQUEST_TOO_LARGE,
        PUBLISH_WINDOW_EXCEEDED,
    ];
}

/// How long a client should wait before retrying when no leader is known:
/// about one election.
const NO_LEADER_RETRY: Duration = Duration::from_millis(200);

/// What a status carries besides its code and message.
#[derive(Default)]
pub(crate) struct Detail<'a> {
    /// `ErrorInfo.metadata`.
    pub info: Vec<(&'static str, String)>,
    /// A `BadRequest` field violation: (field, description).
    pub violation: Option<(&'a str, String)>,
    /// A `RetryInfo` delay.
    pub retry: Option<Duration>,
    /// Plain metadata (the `raftq-leader` and `raftq-retry-after-ms` keys).
    pub metadata: MetadataMap,
}

/// A status with the rich error model: `ErrorInfo` with `reason`, and what
/// `detail` adds.
pub(crate) fn rich(code: Code, message: impl Into<String>, reason: &str, detail: Detail<'_>) -> Status {
    let mut details = ErrorDetails::with_error_info(
        reason,
        ERROR_DOMAIN,
        detail.info.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<std::collections::HashMap<_, _>>(),
    );
    if let Some((field, description)) = detail.violation {
        details.add_bad_request_violation(field, description);
    }
    if let Some(delay) = detail.retry {
        details.set_retry_info(Some(delay));
    }
    Status::with_error_details_and_metadata(code, message, details, detail.metadata)
}

fn leader_metadata(leader_addr: Option<&str>) -> (MetadataMap, Vec<(&'static str, String)>) {
    let mut metadata = MetadataMap::new();
    let mut info = Vec::new();
    if let Some(addr) = leader_addr {
        if let Ok(value) = addr.parse() {
            metadata.insert(LEADER_METADATA_KEY, value);
        }
        info.push(("leader", addr.to_string()));
    }
    (metadata, info)
}

fn retry_after_metadata(ms: u64) -> MetadataMap {
    let mut metadata = MetadataMap::new();
    if let Ok(value) = ms.to_string().parse() {
        metadata.insert(RETRY_AFTER_MS_METADATA_KEY, value);
    }
    metadata
}

/// A replicated queue rejection as a gRPC status.
pub fn queue_error(error: QueueError) -> Status {
    let code = match &error {
        QueueError::InvalidArgument { .. } => Code::InvalidArgument,
        QueueError::NotFound { .. } => Code::NotFound,
        QueueError::AlreadyExists { .. } => Code::AlreadyExists,
        QueueError::FailedPrecondition { .. } => Code::FailedPrecondition,
        QueueError::ResourceExhausted { .. } => Code::ResourceExhausted,
    };
    let mut detail = Detail::default();
    if let Some(field) = error.field() {
        detail.info.push(("field", field.to_string()));
    }
    match &error {
        QueueError::InvalidArgument { field, reason } => detail.violation = Some((field, reason.clone())),
        QueueError::NotFound { queue: Some(queue), .. } => detail.info.push(("queue", queue.clone())),
        QueueError::AlreadyExists { kind: raftq_core::Reason::TopicExists, name } => {
            detail.info.push(("topic", name.clone()))
        }
        QueueError::AlreadyExists { name, .. } => detail.info.push(("queue", name.clone())),
        QueueError::ResourceExhausted { limit: Some(limit), .. } => {
            detail.info.push(("limit", limit.name.clone()));
            detail.info.push(("limit_value", limit.value.to_string()));
            if let Some(queue) = &limit.queue {
                detail.info.push(("queue", queue.clone()));
            }
        }
        _ => {}
    }
    rich(code, error.to_string(), error.reason().as_str(), detail)
}

/// RESOURCE_EXHAUSTED for a request this node refused before doing
/// anything with it because it is overloaded: carries
/// `raftq-retry-after-ms` and a RetryInfo, so clients know a retry is safe
/// (unlike a full queue's RESOURCE_EXHAUSTED, which carries neither).
pub fn overloaded(message: &str) -> Status {
    let ms = crate::node::OVERLOAD_RETRY_AFTER_MS;
    let detail =
        Detail { retry: Some(Duration::from_millis(ms)), metadata: retry_after_metadata(ms), ..Detail::default() };
    rich(Code::ResourceExhausted, message, reason::OVERLOADED, detail)
}

/// RESOURCE_EXHAUSTED for a write that adds data while this node's disk is
/// below its reserve. Nothing was proposed, so it carries
/// `raftq-retry-after-ms` (the guard's check period) like an overload.
pub fn disk_low(node_id: u64, available: u64, reserve: u64) -> Status {
    let period = crate::disk::DISK_CHECK_PERIOD;
    let detail = Detail {
        info: vec![("limit", "min_free_disk_bytes".into()), ("limit_value", reserve.to_string())],
        retry: Some(period),
        metadata: retry_after_metadata(period.as_millis() as u64),
        ..Detail::default()
    };
    let message = format!(
        "disk space low on node {node_id}: {} MiB free, below its reserve of {} MiB (--min-free-disk-mb); \
         publishing resumes when consumers or an operator free space",
        available >> 20,
        reserve >> 20
    );
    rich(Code::ResourceExhausted, message, reason::DISK_LOW, detail)
}

/// UNAVAILABLE, naming the leader's address if this node knows it.
pub fn not_leader(forward: &ForwardToLeader<TypeConfig>) -> Status {
    let leader_addr = forward.leader_node.as_ref().map(|node| node.addr.clone());
    unavailable_with_hint("this node is not the leader", leader_addr.as_deref())
}

/// UNAVAILABLE: nothing was done. NOT_LEADER (retry at once) with the
/// leader's address when known, else NO_LEADER (retry after an election).
pub fn unavailable_with_hint(message: &str, leader_addr: Option<&str>) -> Status {
    let (metadata, info) = leader_metadata(leader_addr);
    match leader_addr {
        Some(addr) => rich(
            Code::Unavailable,
            format!("{message}; the leader is at {addr}"),
            reason::NOT_LEADER,
            Detail { info, retry: Some(Duration::ZERO), metadata, ..Detail::default() },
        ),
        None => no_leader(&format!("{message}; no leader is known yet, retry")),
    }
}

/// UNAVAILABLE: no leader is known, or leadership could not be confirmed.
pub fn no_leader(message: &str) -> Status {
    rich(Code::Unavailable, message, reason::NO_LEADER, Detail { retry: Some(NO_LEADER_RETRY), ..Detail::default() })
}

/// RESOURCE_EXHAUSTED ending a PublishStream whose client sent past the
/// window: `limit` is `requests` or `bytes`.
pub fn publish_window_exceeded(limit: &'static str, value: u64, message: String) -> Status {
    let detail =
        Detail { info: vec![("limit", limit.into()), ("limit_value", value.to_string())], ..Detail::default() };
    rich(Code::ResourceExhausted, message, reason::PUBLISH_WINDOW_EXCEEDED, detail)
}

/// UNAVAILABLE: Raft is not running here (shutting down or failed).
pub fn node_stopped(message: &str) -> Status {
    rich(Code::Unavailable, message, reason::NODE_STOPPED, Detail { retry: Some(NO_LEADER_RETRY), ..Detail::default() })
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
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            membership_refused(Code::FailedPrecondition, e.to_string())
        }
        // Only membership writes carry preconditions; checked before append.
        RaftError::APIError(ClientWriteError::PreconditionFailed(e)) => {
            membership_refused(Code::Unavailable, e.to_string())
        }
        // Raft stopped while the entry was in flight.
        RaftError::Fatal(fatal) => outcome_unknown(&format!("raft stopped on this node: {fatal}"), None),
    }
}

/// A membership change that cannot be made now.
pub fn membership_refused(code: Code, message: String) -> Status {
    rich(code, message, reason::MEMBERSHIP_CHANGE_REFUSED, Detail::default())
}

/// NOT_FOUND: no member with this node id.
pub fn node_not_found(message: String) -> Status {
    rich(Code::NotFound, message, reason::NODE_NOT_FOUND, Detail::default())
}

/// UNKNOWN: a write whose entry was appended but whose fate is unknown. It
/// may have been applied, or may still be; the request must not be treated
/// as "nothing happened". Carries the leader hint when known.
pub fn outcome_unknown(message: &str, leader_addr: Option<&str>) -> Status {
    let (metadata, info) = leader_metadata(leader_addr);
    rich(
        Code::Unknown,
        format!("outcome unknown: {message}; the request may or may not have taken effect"),
        reason::OUTCOME_UNKNOWN,
        Detail { info, metadata, ..Detail::default() },
    )
}

pub fn read_error(error: RaftError<TypeConfig, LinearizableReadError<TypeConfig>>) -> Status {
    match error {
        RaftError::APIError(LinearizableReadError::ForwardToLeader(forward)) => not_leader(&forward),
        RaftError::APIError(other) => no_leader(&format!("cannot confirm leadership: {other}")),
        RaftError::Fatal(error) => fatal(error),
    }
}

/// The state store failed while reading (I/O error, checksum mismatch): the
/// node cannot answer from its state.
pub fn store_fault(fault: raftq_core::kv::StoreFault) -> Status {
    tracing::error!("reading the state failed: {fault}");
    store_failed(fault.to_string())
}

/// INTERNAL: the state store failed.
pub fn store_failed(message: String) -> Status {
    rich(Code::Internal, message, reason::STORE_FAULT, Detail::default())
}

/// UNAVAILABLE: Raft stopped on this node.
pub fn fatal(error: impl std::fmt::Display) -> Status {
    node_stopped(&format!("raft stopped on this node: {error}"))
}

/// INVALID_ARGUMENT naming `field`, with a BadRequest field violation.
pub fn invalid(field: &str, reason: impl std::fmt::Display) -> Status {
    let description = reason.to_string();
    rich(
        Code::InvalidArgument,
        format!("{field}: {description}"),
        reason::INVALID_ARGUMENT,
        Detail { info: vec![("field", field.to_string())], violation: Some((field, description)), ..Detail::default() },
    )
}

/// UNAUTHENTICATED: no credentials, or unknown ones.
pub fn unauthenticated(message: impl Into<String>) -> Status {
    rich(Code::Unauthenticated, message, reason::UNAUTHENTICATED, Detail::default())
}

/// PERMISSION_DENIED: the caller lacks the permission.
pub fn permission_denied(message: impl Into<String>) -> Status {
    rich(Code::PermissionDenied, message, reason::PERMISSION_DENIED, Detail::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use raftq_core::Reason;

    fn info(status: &Status) -> (String, std::collections::HashMap<String, String>) {
        let info = status.get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.domain, ERROR_DOMAIN);
        (info.reason, info.metadata)
    }

    /// Every reason the server can send is a value of the proto's
    /// ErrorReason enum, spelled the same.
    #[test]
    fn every_reason_is_in_the_proto() {
        use raftq_proto::v1::ErrorReason;
        for name in Reason::ALL.iter().map(|r| r.as_str()).chain(reason::ALL) {
            assert!(ErrorReason::from_str_name(name).is_some(), "{name} is not an ErrorReason value");
        }
    }

    #[test]
    fn a_full_queue_names_its_limit() {
        let error = QueueError::ResourceExhausted {
            kind: Reason::QueueFull,
            field: "queue".into(),
            reason: "queue \"q\" is full".into(),
            limit: Some(raftq_core::Limit { name: "max_length".into(), value: 10, queue: Some("q".into()) }),
        };
        let status = queue_error(error);
        assert_eq!(status.code(), Code::ResourceExhausted);
        let (reason, metadata) = info(&status);
        assert_eq!(reason, "QUEUE_FULL");
        assert_eq!(metadata["limit"], "max_length");
        assert_eq!(metadata["limit_value"], "10");
        assert_eq!(metadata["queue"], "q");
        assert!(status.get_details_retry_info().is_none(), "a full queue is not a safe blind retry");
    }

    #[test]
    fn bad_input_carries_a_field_violation() {
        let status = invalid("messages[3].body", "too long");
        let (reason, _) = info(&status);
        assert_eq!(reason, "INVALID_ARGUMENT");
        let bad = status.get_details_bad_request().expect("BadRequest");
        assert_eq!(bad.field_violations[0].field, "messages[3].body");
        assert_eq!(bad.field_violations[0].description, "too long");
        assert_eq!(status.message(), "messages[3].body: too long");
    }

    #[test]
    fn not_leader_keeps_the_plain_hint_and_adds_the_reason() {
        let status = unavailable_with_hint("this node is not the leader", Some("10.0.0.2:7101"));
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(status.metadata().get(LEADER_METADATA_KEY).unwrap(), "10.0.0.2:7101");
        let (reason, metadata) = info(&status);
        assert_eq!(reason, "NOT_LEADER");
        assert_eq!(metadata["leader"], "10.0.0.2:7101");
        let none = unavailable_with_hint("this node is not the leader", None);
        assert_eq!(info(&none).0, "NO_LEADER");
        assert!(none.get_details_retry_info().and_then(|r| r.retry_delay).is_some());
    }

    /// The reasons no cluster test can provoke on demand (tests/cluster/
    /// error_reasons.rs names this test for them).
    #[test]
    fn stopped_nodes_doubtful_writes_and_store_faults_have_reasons() {
        let stopped = node_stopped("the node is shutting down");
        assert_eq!((stopped.code(), info(&stopped).0.as_str()), (Code::Unavailable, "NODE_STOPPED"));
        assert!(stopped.get_details_retry_info().is_some());
        let doubt = outcome_unknown("leadership changed", Some("n2:7101"));
        assert_eq!((doubt.code(), info(&doubt).0.as_str()), (Code::Unknown, "OUTCOME_UNKNOWN"));
        assert_eq!(info(&doubt).1["leader"], "n2:7101");
        assert!(doubt.get_details_retry_info().is_none(), "a write in doubt is no blind retry");
        let fault = store_fault(raftq_core::kv::StoreFault("checksum mismatch".into()));
        assert_eq!((fault.code(), info(&fault).0.as_str()), (Code::Internal, "STORE_FAULT"));
    }

    #[test]
    fn an_overload_says_when_to_retry() {
        let status = overloaded("busy");
        assert_eq!(info(&status).0, "OVERLOADED");
        assert!(status.metadata().get(RETRY_AFTER_MS_METADATA_KEY).is_some());
        let delay = status.get_details_retry_info().and_then(|r| r.retry_delay).expect("RetryInfo");
        assert_eq!(delay, Duration::from_millis(crate::node::OVERLOAD_RETRY_AFTER_MS));
    }
}
