//! The client's one error type, and its mapping from `tonic::Status`.

use std::collections::BTreeMap;
use std::{error::Error as _, time::Duration};

use tonic::Code;
use tonic_types::StatusExt;

pub use raftq_proto::v1::ErrorReason;

use crate::retry::{leader_hint, retry_after};

/// Everything a client call can fail with. Every variant has a gRPC
/// [`code`](ClientError::code), so callers can branch on codes alone.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The [`crate::ClientConfig`] or [`crate::PublisherConfig`] is invalid.
    #[error("invalid config: {0}")]
    Config(String),
    /// A request the client refuses to send (e.g. a bad receipt string).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The server answered with this status.
    #[error("{}: {message}", code_name(*code))]
    Status {
        /// The gRPC status code.
        code: Code,
        /// The server's message (it names the offending field for
        /// INVALID_ARGUMENT).
        message: String,
        /// The leader's `host:port` from the `raftq-leader` metadata, if the
        /// answering node knew it.
        leader: Option<String>,
        /// From the `raftq-retry-after-ms` metadata of a RESOURCE_EXHAUSTED:
        /// the node was overloaded and did nothing with the request; retry
        /// (any call) after this long. `None` on every other status.
        retry_after: Option<Duration>,
        /// The stable reason from the error's `ErrorInfo`
        /// ([`ErrorReason::Unspecified`] if the server sent none).
        reason: ErrorReason,
        /// The `ErrorInfo` metadata: `field`, `queue`, `limit`,
        /// `limit_value`, `leader` (see `proto/raftq/v1/errors.proto`).
        info: BTreeMap<String, String>,
    },
    /// The call failed in the transport (connect, reset, protocol error)
    /// without a status from the server.
    #[error("UNAVAILABLE: transport error talking to {addr}: {message}")]
    Transport {
        /// The node the call was sent to.
        addr: String,
        /// What went wrong.
        message: String,
        /// True when the connection could not be established, so the request
        /// was certainly never sent (safe to retry anything).
        connect: bool,
    },
    /// One attempt took longer than its limit; the outcome is unknown.
    #[error("DEADLINE_EXCEEDED: no answer from {addr} within {timeout:?}")]
    Timeout {
        /// The node the call was sent to.
        addr: String,
        /// The attempt's limit.
        timeout: Duration,
    },
    /// The server answered something the protocol rules out.
    #[error("INTERNAL: protocol violation: {0}")]
    Protocol(String),
    /// A call was retried until its policy ran out; `last` is the final
    /// failure.
    #[error(
        "{last} (gave up after {attempts} attempts in {elapsed:.1?}{})",
        if *in_doubt { "; an earlier attempt's outcome is unknown: it may have taken effect" } else { "" }
    )]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// Time from the call's start to giving up.
        elapsed: Duration,
        /// The last attempt's error.
        last: Box<ClientError>,
        /// An earlier attempt ended with an unknown outcome (it may have
        /// taken effect), whatever the last one said. The error's code is
        /// then never UNAVAILABLE ("nothing happened") but UNKNOWN.
        in_doubt: bool,
    },
    /// The publisher or consumer was shut down before the call finished.
    #[error("CANCELLED: {0} closed")]
    Closed(&'static str),
}

impl ClientError {
    /// The gRPC code this error stands for.
    pub fn code(&self) -> Code {
        match self {
            Self::Config(_) | Self::InvalidArgument(_) => Code::InvalidArgument,
            Self::Status { code, .. } => *code,
            Self::Transport { .. } => Code::Unavailable,
            Self::Timeout { .. } => Code::DeadlineExceeded,
            Self::Protocol(_) => Code::Internal,
            Self::RetriesExhausted { last, in_doubt: true, .. } if !last.is_ambiguous() => Code::Unknown,
            Self::RetriesExhausted { last, .. } => last.code(),
            Self::Closed(_) => Code::Cancelled,
        }
    }

    /// The message without the code prefix.
    pub fn message(&self) -> String {
        match self {
            Self::Status { message, .. } => message.clone(),
            Self::RetriesExhausted { last, .. } => last.message(),
            other => other.to_string(),
        }
    }

    /// Whether the same call may succeed if sent again: UNAVAILABLE and
    /// UNKNOWN from the server, an overloaded node's RESOURCE_EXHAUSTED (see
    /// [`retry_after`](Self::retry_after)), transport failures and timeouts.
    /// Whether it is *safe* to send again depends on the call (see the crate
    /// docs): after an [ambiguous](Self::is_ambiguous) failure only
    /// idempotent calls are; the client's own retry loop decides that per call.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Status { code, retry_after, .. } => {
                matches!(code, Code::Unavailable | Code::Unknown) || retry_after.is_some()
            }
            Self::Transport { .. } | Self::Timeout { .. } => true,
            Self::RetriesExhausted { last, .. } => last.is_retryable(),
            _ => false,
        }
    }

    /// The call may or may not have taken effect: it timed out, its
    /// connection broke after the request left (not a refused connect), or
    /// the server said UNKNOWN (it appended the entry, then lost track of
    /// it; see the crate docs, "Errors and retries").
    pub fn is_ambiguous(&self) -> bool {
        match self {
            Self::Transport { connect, .. } => !connect,
            Self::Timeout { .. } => true,
            Self::Status { code, .. } => matches!(code, Code::DeadlineExceeded | Code::Cancelled | Code::Unknown),
            Self::RetriesExhausted { last, in_doubt, .. } => *in_doubt || last.is_ambiguous(),
            _ => false,
        }
    }

    /// The node refused the request because it was overloaded (its
    /// proposal queue was full), before doing anything with it: how long it
    /// asked the client to wait. A definite "nothing happened", so a retry
    /// is safe for every call. A RESOURCE_EXHAUSTED without it (a full
    /// queue, a too-large message) is final.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { code: Code::ResourceExhausted, retry_after, .. } => *retry_after,
            Self::RetriesExhausted { last, .. } => last.retry_after(),
            _ => None,
        }
    }

    /// The stable, machine-readable reason: switch on this, not on the
    /// message. [`ErrorReason::Unspecified`] for errors the client made
    /// itself (transport, timeout, config) and for a server that sent none.
    pub fn reason(&self) -> ErrorReason {
        match self {
            Self::Status { reason, .. } => *reason,
            Self::RetriesExhausted { last, .. } => last.reason(),
            _ => ErrorReason::Unspecified,
        }
    }

    /// One value of the error's `ErrorInfo` metadata (`field`, `queue`,
    /// `limit`, `limit_value`, `leader`), if the server sent it.
    pub fn info(&self, key: &str) -> Option<&str> {
        match self {
            Self::Status { info, .. } => info.get(key).map(String::as_str),
            Self::RetriesExhausted { last, .. } => last.info(key),
            _ => None,
        }
    }

    /// The leader hint carried by this error, if any.
    pub fn leader_hint(&self) -> Option<&str> {
        match self {
            Self::Status { leader, .. } => leader.as_deref(),
            Self::RetriesExhausted { last, .. } => last.leader_hint(),
            _ => None,
        }
    }

    /// Maps a status returned by a call to `addr`. A status tonic made up
    /// locally from a transport failure carries its cause as `source`; one
    /// decoded from the server's trailers has none.
    pub(crate) fn from_status(status: tonic::Status, addr: &str) -> Self {
        if let Some(source) = status.source() {
            // The status message is the outermost cause ("tcp connect
            // error"); the root cause ("Connection refused") is what helps.
            let mut connect = false;
            let mut message = status.message().to_owned();
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source);
            while let Some(err) = cause {
                connect |= err.is::<tonic::ConnectError>();
                let text = err.to_string();
                if !message.contains(&text) {
                    message = format!("{message}: {text}");
                }
                cause = err.source();
            }
            return Self::Transport { addr: addr.to_owned(), message, connect };
        }
        let details = status.get_error_details();
        let (reason, info) = match details.error_info() {
            Some(i) if i.domain == "raftq" => (
                ErrorReason::from_str_name(&i.reason).unwrap_or(ErrorReason::Unspecified),
                i.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            ),
            _ => (ErrorReason::Unspecified, BTreeMap::new()),
        };
        let retry_after = match status.code() {
            Code::ResourceExhausted => retry_after(status.metadata()).or_else(|| {
                details.retry_info().and_then(|r| r.retry_delay).filter(|_| reason != ErrorReason::Unspecified)
            }),
            _ => None,
        };
        let leader = leader_hint(status.metadata()).or_else(|| info.get("leader").cloned());
        Self::Status { code: status.code(), message: status.message().to_owned(), leader, retry_after, reason, info }
    }
}

/// The canonical upper-case name of a gRPC code, as in the gRPC spec.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_status_keeps_code_message_and_hint() {
        let mut status = tonic::Status::unavailable("not the leader");
        status.metadata_mut().insert(raftq_proto::LEADER_METADATA_KEY, "10.0.0.2:7001".parse().unwrap());
        let err = ClientError::from_status(status, "10.0.0.1:7001");
        assert_eq!(err.code(), Code::Unavailable);
        assert_eq!(err.leader_hint(), Some("10.0.0.2:7001"));
        assert!(err.is_retryable());
        assert_eq!(err.to_string(), "UNAVAILABLE: not the leader");
        assert_eq!(err.message(), "not the leader");
    }

    #[test]
    fn non_retryable_codes() {
        for code in [Code::NotFound, Code::InvalidArgument, Code::FailedPrecondition, Code::ResourceExhausted] {
            let err = ClientError::from_status(tonic::Status::new(code, "x"), "a:1");
            assert!(!err.is_retryable(), "{code:?}");
            assert_eq!(err.code(), code);
        }
    }

    #[test]
    fn an_overloaded_node_is_retryable_a_full_queue_is_not() {
        let mut overloaded = tonic::Status::resource_exhausted("the node's proposal queue is full");
        overloaded.metadata_mut().insert(raftq_proto::RETRY_AFTER_MS_METADATA_KEY, "100".parse().unwrap());
        let err = ClientError::from_status(overloaded, "a:1");
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert_eq!(err.retry_after(), Some(Duration::from_millis(100)));
        assert!(err.is_retryable() && !err.is_ambiguous());
        let full = ClientError::from_status(tonic::Status::resource_exhausted("queue \"q\" is full"), "a:1");
        assert_eq!(full.retry_after(), None);
        assert!(!full.is_retryable());
        // The key means nothing on another code.
        let mut other = tonic::Status::not_found("q");
        other.metadata_mut().insert(raftq_proto::RETRY_AFTER_MS_METADATA_KEY, "100".parse().unwrap());
        assert!(!ClientError::from_status(other, "a:1").is_retryable());
    }

    #[test]
    fn exhausted_wraps_the_last_error() {
        let last = ClientError::Timeout { addr: "a:1".into(), timeout: Duration::from_secs(1) };
        let err = ClientError::RetriesExhausted {
            attempts: 3,
            elapsed: Duration::from_millis(1500),
            last: Box::new(last),
            in_doubt: false,
        };
        assert_eq!(err.code(), Code::DeadlineExceeded);
        assert!(err.to_string().contains("gave up after 3 attempts"), "{err}");
    }

    /// A retried call whose earlier attempt ended in doubt is never
    /// reported as "nothing happened", whatever its last attempt said.
    #[test]
    fn exhausted_after_a_doubtful_attempt_is_ambiguous() {
        let last = ClientError::Status {
            code: Code::Unavailable,
            message: "no leader".into(),
            leader: None,
            retry_after: None,
            reason: ErrorReason::NoLeader,
            info: BTreeMap::new(),
        };
        let err = ClientError::RetriesExhausted {
            attempts: 4,
            elapsed: Duration::from_secs(2),
            last: Box::new(last.clone()),
            in_doubt: true,
        };
        assert_eq!(err.code(), Code::Unknown);
        assert!(err.is_ambiguous());
        assert!(err.to_string().contains("outcome is unknown"), "{err}");
        let clean = ClientError::RetriesExhausted {
            attempts: 4,
            elapsed: Duration::from_secs(2),
            last: Box::new(last),
            in_doubt: false,
        };
        assert_eq!(clean.code(), Code::Unavailable);
        assert!(!clean.is_ambiguous());
    }

    /// The reason and its metadata come from the rich error model; the
    /// leader hint from either the plain key or ErrorInfo.
    #[test]
    fn the_reason_is_typed() {
        use tonic_types::ErrorDetails;
        let metadata = [("limit".to_string(), "max_length".to_string()), ("limit_value".into(), "10".into())];
        let details = ErrorDetails::with_error_info(
            "QUEUE_FULL",
            "raftq",
            metadata.into_iter().collect::<std::collections::HashMap<_, _>>(),
        );
        let status = tonic::Status::with_error_details(Code::ResourceExhausted, "queue \"q\" is full", details);
        let err = ClientError::from_status(status, "a:1");
        assert_eq!(err.reason(), ErrorReason::QueueFull);
        assert_eq!(err.info("limit"), Some("max_length"));
        assert_eq!(err.info("limit_value"), Some("10"));
        assert!(!err.is_retryable(), "a full queue is final");

        let leader = [("leader".to_string(), "n2:7101".to_string())];
        let mut details = ErrorDetails::with_error_info(
            "NOT_LEADER",
            "raftq",
            leader.into_iter().collect::<std::collections::HashMap<_, _>>(),
        );
        details.set_retry_info(Some(Duration::ZERO));
        let err = ClientError::from_status(tonic::Status::with_error_details(Code::Unavailable, "x", details), "a:1");
        assert_eq!(err.reason(), ErrorReason::NotLeader);
        assert_eq!(err.leader_hint(), Some("n2:7101"));

        // Unknown reasons (a newer server) and other domains read as unspecified.
        let details = ErrorDetails::with_error_info("SOMETHING_NEW", "raftq", std::collections::HashMap::new());
        let err = ClientError::from_status(tonic::Status::with_error_details(Code::Aborted, "x", details), "a:1");
        assert_eq!(err.reason(), ErrorReason::Unspecified);
        let plain = ClientError::from_status(tonic::Status::not_found("q"), "a:1");
        assert_eq!(plain.reason(), ErrorReason::Unspecified);
    }

    #[test]
    fn unknown_from_the_server_is_ambiguous() {
        let err = ClientError::from_status(tonic::Status::unknown("outcome unknown: leadership changed"), "a:1");
        assert_eq!(err.code(), Code::Unknown);
        assert!(err.is_ambiguous());
        assert!(err.is_retryable());
    }
}
