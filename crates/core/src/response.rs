//! What applying a command answers, and what reads return.

use serde::{Deserialize, Serialize};

use crate::command::Receipt;
use crate::config::QueueConfig;
use crate::error::QueueError;
use crate::message::Message;
use crate::topic::{TopicInfo, TopicPublishResult};

/// The answer to one command: an outcome, or a replicated rejection.
pub type Response = Result<Outcome, QueueError>;

/// What a command did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    QueueCreated(QueueInfo),
    QueueUpdated(QueueInfo),
    QueueDeleted {
        messages_deleted: u64,
    },
    QueuePurged {
        messages_purged: u64,
    },
    /// One result per published message, in order.
    Published(Vec<PublishResult>),
    Received(Vec<Delivery>),
    Acked {
        count: u64,
    },
    Nacked(NackOutcome),
    LeaseExtended {
        lease_expires_at_ms: u64,
    },
    Redriven {
        moved: u64,
    },
    Ticked,
    TopicCreated(TopicInfo),
    TopicDeleted {
        bindings_removed: u64,
    },
    TopicBound(TopicInfo),
    TopicUnbound(TopicInfo),
    /// One result per published message, in order.
    TopicPublished(Vec<TopicPublishResult>),
}

/// The id a published message got, and whether it was a duplicate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishResult {
    pub id: u64,
    /// The idempotency key was seen within the dedup window: `id` is the
    /// original message's and nothing new was stored.
    pub duplicate: bool,
}

/// A leased message handed to a consumer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The message as delivered (history left out).
    pub message: Message,
    pub receipt: Receipt,
    pub lease_expires_at_ms: u64,
}

/// What became of a nacked message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NackOutcome {
    /// Visible again at this time.
    Redeliver { visible_at_ms: u64 },
    /// Moved to `queue`, or parked in its own queue if `None`.
    DeadLettered { queue: Option<String> },
}

/// A queue's config and statistics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueInfo {
    pub name: String,
    pub config: QueueConfig,
    pub stats: QueueStats,
    pub created_at_ms: u64,
}

/// Counts by state, bytes held, and lifetime counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    pub ready: u64,
    pub leased: u64,
    pub delayed: u64,
    /// Parked dead letters (only queues without a dead-letter queue have them).
    pub dead: u64,
    pub total_bytes: u64,
    /// Age of the oldest ready message, as of the last applied entry.
    pub oldest_ready_age_ms: u64,
    pub published_total: u64,
    pub delivered_total: u64,
    pub acked_total: u64,
    pub nacked_total: u64,
    pub expired_total: u64,
    /// Messages that left this queue (or were parked) as dead letters.
    pub dead_lettered_total: u64,
    pub redriven_total: u64,
    /// Publishes answered from the dedup window.
    pub duplicates_total: u64,
    /// Idempotency keys forgotten before their window ended because the
    /// queue's dedup table (`DEDUP_KEYS_MAX`) or all queues' together
    /// (`DEDUP_KEYS_TOTAL_MAX`) was full.
    pub dedup_evicted_total: u64,
}

/// One page of `peek`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeekPage {
    pub messages: Vec<Message>,
    /// Continue with `after_id = next_after_id`; `None` when the end was reached.
    pub next_after_id: Option<u64>,
}
