//! Rejections the queue gives. They are replicated *answers*, not failures of
//! the node: every replica computes the same rejection for the same entry and
//! changes nothing. The gRPC layer maps each kind to one status code.

use serde::{Deserialize, Serialize};

/// Why a command was refused. Each variant maps to one gRPC status code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum QueueError {
    /// Bad input; `field` names it (`messages[3].body`). → INVALID_ARGUMENT
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    /// The named queue or message does not exist. → NOT_FOUND
    #[error("{what} not found")]
    NotFound { what: String },
    /// The queue name is taken. → ALREADY_EXISTS
    #[error("queue {name:?} already exists")]
    AlreadyExists { name: String },
    /// The lease named by a receipt has ended, was superseded, or is unknown;
    /// the message is, or will be, redelivered. → FAILED_PRECONDITION
    #[error("{field}: {reason}")]
    FailedPrecondition { field: String, reason: String },
    /// A queue or cluster limit would be passed. → RESOURCE_EXHAUSTED
    #[error("{field}: {reason}")]
    ResourceExhausted { field: String, reason: String },
}

impl QueueError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument { field: field.into(), reason: reason.into() }
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    pub(crate) fn precondition(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::FailedPrecondition { field: field.into(), reason: reason.into() }
    }

    pub(crate) fn exhausted(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::ResourceExhausted { field: field.into(), reason: reason.into() }
    }

    /// Prefixes the field name, so a nested check can say `messages[3].body`.
    pub fn in_field(self, prefix: &str) -> Self {
        let join = |field: String| {
            if field.is_empty() { prefix.to_string() } else { format!("{prefix}.{field}") }
        };
        match self {
            Self::InvalidArgument { field, reason } => Self::InvalidArgument { field: join(field), reason },
            Self::FailedPrecondition { field, reason } => Self::FailedPrecondition { field: join(field), reason },
            Self::ResourceExhausted { field, reason } => Self::ResourceExhausted { field: join(field), reason },
            other => other,
        }
    }
}
