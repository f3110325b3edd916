//! Rejections the queue gives. They are replicated *answers*, not failures of
//! the node: every replica computes the same rejection for the same entry and
//! changes nothing. The gRPC layer maps each kind to one status code, and
//! each [`Reason`] to the stable string clients switch on
//! (`proto/raftq/v1/errors.proto`).

use serde::{Deserialize, Serialize};

/// The stable, machine-readable reason of a rejection: the name sent in
/// `google.rpc.ErrorInfo.reason`. Only the reasons the state machine gives;
/// the server adds its own (NOT_LEADER, OVERLOADED, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Reason {
    InvalidArgument,
    QueueNotFound,
    MessageNotFound,
    QueueExists,
    LeaseExpired,
    ReceiptUnknown,
    QueueFull,
    MessageTooLarge,
    RequestTooLarge,
    QueueLimitReached,
    UnsupportedFormat,
    TopicNotFound,
    TopicExists,
    BindingNotFound,
    Unroutable,
    LimitReached,
}

impl Reason {
    /// Every reason, for tests that check them against the proto.
    pub const ALL: [Reason; 16] = [
        Reason::InvalidArgument,
        Reason::QueueNotFound,
        Reason::MessageNotFound,
        Reason::QueueExists,
        Reason::LeaseExpired,
        Reason::ReceiptUnknown,
        Reason::QueueFull,
        Reason::MessageTooLarge,
        Reason::RequestTooLarge,
        Reason::QueueLimitReached,
        Reason::UnsupportedFormat,
        Reason::TopicNotFound,
        Reason::TopicExists,
        Reason::BindingNotFound,
        Reason::Unroutable,
        Reason::LimitReached,
    ];

    /// The name on the wire (a value of the proto's `ErrorReason`).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidArgument => "INVALID_ARGUMENT",
            Reason::QueueNotFound => "QUEUE_NOT_FOUND",
            Reason::MessageNotFound => "MESSAGE_NOT_FOUND",
            Reason::QueueExists => "QUEUE_EXISTS",
            Reason::LeaseExpired => "LEASE_EXPIRED",
            Reason::ReceiptUnknown => "RECEIPT_UNKNOWN",
            Reason::QueueFull => "QUEUE_FULL",
            Reason::MessageTooLarge => "MESSAGE_TOO_LARGE",
            Reason::RequestTooLarge => "REQUEST_TOO_LARGE",
            Reason::QueueLimitReached => "QUEUE_LIMIT_REACHED",
            Reason::UnsupportedFormat => "UNSUPPORTED_FORMAT",
            Reason::TopicNotFound => "TOPIC_NOT_FOUND",
            Reason::TopicExists => "TOPIC_EXISTS",
            Reason::BindingNotFound => "BINDING_NOT_FOUND",
            Reason::Unroutable => "UNROUTABLE",
            Reason::LimitReached => "LIMIT_REACHED",
        }
    }
}

/// A limit that was reached: its name (a config field or a fixed cap) and
/// value, and the queue it belongs to when it is a queue's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    pub name: String,
    pub value: u64,
    pub queue: Option<String>,
}

/// Why a command was refused. Each variant maps to one gRPC status code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum QueueError {
    /// Bad input; `field` names it (`messages[3].body`). → INVALID_ARGUMENT
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    /// The named queue or message does not exist. → NOT_FOUND
    #[error("{what} not found")]
    NotFound { kind: Reason, what: String, queue: Option<String> },
    /// The queue or topic name is taken (`kind` says which). → ALREADY_EXISTS
    #[error("{} {name:?} already exists", if *.kind == Reason::TopicExists { "topic" } else { "queue" })]
    AlreadyExists { kind: Reason, name: String },
    /// The lease named by a receipt has ended, was superseded, or is unknown;
    /// the message is, or will be, redelivered. → FAILED_PRECONDITION
    #[error("{field}: {reason}")]
    FailedPrecondition { kind: Reason, field: String, reason: String },
    /// A queue or cluster limit would be passed. → RESOURCE_EXHAUSTED
    #[error("{field}: {reason}")]
    ResourceExhausted { kind: Reason, field: String, reason: String, limit: Option<Limit> },
}

impl QueueError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument { field: field.into(), reason: reason.into() }
    }

    /// The queue `name` does not exist.
    pub(crate) fn queue_not_found(name: &str) -> Self {
        Self::named_queue_not_found("queue", name)
    }

    /// The queue `name` does not exist, where `field` names it.
    pub(crate) fn named_queue_not_found(field: &str, name: &str) -> Self {
        Self::NotFound { kind: Reason::QueueNotFound, what: format!("{field} {name:?}"), queue: Some(name.into()) }
    }

    /// The topic `name` does not exist.
    pub(crate) fn topic_not_found(name: &str) -> Self {
        Self::NotFound { kind: Reason::TopicNotFound, what: format!("topic {name:?}"), queue: None }
    }

    pub(crate) fn message_not_found(queue: &str, what: impl Into<String>) -> Self {
        Self::NotFound { kind: Reason::MessageNotFound, what: what.into(), queue: Some(queue.into()) }
    }

    pub(crate) fn precondition(kind: Reason, field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::FailedPrecondition { kind, field: field.into(), reason: reason.into() }
    }

    pub(crate) fn exhausted(kind: Reason, field: impl Into<String>, reason: impl Into<String>, limit: Limit) -> Self {
        Self::ResourceExhausted { kind, field: field.into(), reason: reason.into(), limit: Some(limit) }
    }

    /// A log payload in a format this build cannot apply.
    pub fn unsupported_format(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::precondition(Reason::UnsupportedFormat, field, reason)
    }

    /// The stable reason clients switch on.
    pub fn reason(&self) -> Reason {
        match self {
            Self::InvalidArgument { .. } => Reason::InvalidArgument,
            Self::AlreadyExists { kind, .. }
            | Self::NotFound { kind, .. }
            | Self::FailedPrecondition { kind, .. }
            | Self::ResourceExhausted { kind, .. } => *kind,
        }
    }

    /// The request field at fault, if the rejection names one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidArgument { field, .. }
            | Self::FailedPrecondition { field, .. }
            | Self::ResourceExhausted { field, .. } => Some(field),
            Self::NotFound { .. } | Self::AlreadyExists { .. } => None,
        }
    }

    /// Prefixes the field name, so a nested check can say `messages[3].body`.
    pub fn in_field(self, prefix: &str) -> Self {
        let join = |field: String| {
            if field.is_empty() { prefix.to_string() } else { format!("{prefix}.{field}") }
        };
        match self {
            Self::InvalidArgument { field, reason } => Self::InvalidArgument { field: join(field), reason },
            Self::FailedPrecondition { kind, field, reason } => {
                Self::FailedPrecondition { kind, field: join(field), reason }
            }
            Self::ResourceExhausted { kind, field, reason, limit } => {
                Self::ResourceExhausted { kind, field: join(field), reason, limit }
            }
            other => other,
        }
    }
}
