//! A stored message, its state, and its history.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::limits::HISTORY_EVENTS_MAX;

/// Where a message is in its life. Exactly one state at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageState {
    /// Visible: the next receive may take it.
    Ready,
    /// Not visible before `visible_at_ms` (publish delay, retry backoff).
    Delayed { visible_at_ms: u64 },
    /// Leased to the holder of receipt `attempt` until `lease_expires_at_ms`.
    Leased { attempt: u32, lease_expires_at_ms: u64 },
    /// Failed too often and parked here (no dead-letter queue to move to);
    /// `Redrive` makes it ready again.
    Dead,
}

/// Filter for peek.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StateFilter {
    Any,
    Ready,
    Delayed,
    Leased,
    Dead,
}

impl StateFilter {
    pub fn matches(self, state: &MessageState) -> bool {
        matches!(
            (self, state),
            (StateFilter::Any, _)
                | (StateFilter::Ready, MessageState::Ready)
                | (StateFilter::Delayed, MessageState::Delayed { .. })
                | (StateFilter::Leased, MessageState::Leased { .. })
                | (StateFilter::Dead, MessageState::Dead)
        )
    }
}

/// Where a dead letter came from and why it died: carried with it into the
/// dead-letter queue, or set on a message parked Dead in its own queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterInfo {
    pub source_queue: String,
    pub source_id: u64,
    pub delivery_count: u32,
    pub reason: String,
    pub dead_lettered_at_ms: u64,
    pub source_published_at_ms: u64,
}

/// One thing that happened to a message, for `inspect`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HistoryEvent {
    Delivered {
        at_ms: u64,
        attempt: u32,
        lease_expires_at_ms: u64,
    },
    LeaseExtended {
        at_ms: u64,
        attempt: u32,
        lease_expires_at_ms: u64,
    },
    LeaseExpired {
        at_ms: u64,
        attempt: u32,
    },
    Nacked {
        at_ms: u64,
        attempt: u32,
        reason: String,
    },
    /// Scheduled for redelivery (after a failure) at `visible_at_ms`.
    Retry {
        at_ms: u64,
        visible_at_ms: u64,
    },
    /// Dead-lettered: moved to `target_queue`, or parked here if `None`.
    DeadLettered {
        at_ms: u64,
        reason: String,
        target_queue: Option<String>,
    },
    /// Made ready again by a redrive, from `from_queue` (or in place).
    Redriven {
        at_ms: u64,
        from_queue: Option<String>,
    },
}

impl HistoryEvent {
    /// The bytes of text the event carries (counted against `max_bytes`).
    fn text_bytes(&self) -> usize {
        match self {
            HistoryEvent::Nacked { reason, .. } => reason.len(),
            HistoryEvent::DeadLettered { reason, target_queue, .. } => {
                reason.len() + target_queue.as_ref().map_or(0, String::len)
            }
            HistoryEvent::Redriven { from_queue, .. } => from_queue.as_ref().map_or(0, String::len),
            HistoryEvent::Delivered { .. }
            | HistoryEvent::LeaseExtended { .. }
            | HistoryEvent::LeaseExpired { .. }
            | HistoryEvent::Retry { .. } => 0,
        }
    }
}

/// A message as the state machine stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: u64,
    pub body: Bytes,
    pub attributes: BTreeMap<String, String>,
    pub published_at_ms: u64,
    /// Deliveries so far; never decreases (receipts depend on it).
    pub delivery_count: u32,
    /// `delivery_count` when this message was last redriven in place: the
    /// `max_deliveries` budget counts deliveries since then.
    pub redrive_base: u32,
    pub state: MessageState,
    /// Removed at this time if the queue has a TTL.
    pub expires_at_ms: Option<u64>,
    pub idempotency_key: Option<String>,
    pub dead_letter: Option<DeadLetterInfo>,
    /// Most recent events, oldest first, at most `HISTORY_EVENTS_MAX`.
    pub history: VecDeque<HistoryEvent>,
    /// Events dropped from the front of `history` to keep it bounded.
    pub history_dropped: u64,
}

impl Message {
    /// What the message counts against its queue's `max_bytes` (see
    /// [`Head::size_bytes`]).
    pub fn size_bytes(&self) -> u64 {
        (content_bytes(&self.body, &self.attributes) + text_bytes(&self.history, &self.dead_letter)) as u64
    }
}

/// Body plus attribute bytes: what `max_message_bytes` limits.
pub(crate) fn content_bytes(body: &[u8], attributes: &BTreeMap<String, String>) -> usize {
    body.len() + attributes.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
}

/// The text a message carries besides its content: nack and dead-letter
/// reasons and queue names in its history and dead-letter record.
fn text_bytes(history: &VecDeque<HistoryEvent>, dead_letter: &Option<DeadLetterInfo>) -> usize {
    let history: usize = history.iter().map(HistoryEvent::text_bytes).sum();
    history + dead_letter.as_ref().map_or(0, |info| info.source_queue.len() + info.reason.len())
}

/// What a message carries that never changes once it is stored: its body
/// and attributes. Stored apart from its [`Head`] (table `b`), so a
/// receive, ack, nack or lease end rewrites a few dozen bytes, not the body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Content {
    pub body: Bytes,
    pub attributes: BTreeMap<String, String>,
}

impl Content {
    /// Body and attribute bytes (what `max_message_bytes` limits).
    pub(crate) fn bytes(&self) -> u64 {
        content_bytes(&self.body, &self.attributes) as u64
    }
}

/// A message as the state machine stores it under table `m`: everything but
/// its [`Content`], which it describes by size and digest share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Head {
    pub id: u64,
    pub published_at_ms: u64,
    /// Deliveries so far; never decreases (receipts depend on it).
    pub delivery_count: u32,
    /// `delivery_count` when this message was last redriven in place: the
    /// `max_deliveries` budget counts deliveries since then.
    pub redrive_base: u32,
    pub state: MessageState,
    /// Removed at this time if the queue has a TTL.
    pub expires_at_ms: Option<u64>,
    pub idempotency_key: Option<String>,
    pub dead_letter: Option<DeadLetterInfo>,
    /// Most recent events, oldest first, at most `HISTORY_EVENTS_MAX`.
    pub history: VecDeque<HistoryEvent>,
    /// Events dropped from the front of `history` to keep it bounded.
    pub history_dropped: u64,
    /// [`Content::bytes`] of its content.
    pub content_bytes: u64,
    /// The content pair's share of the state digest, so deleting the
    /// content (ack, expiry, cleanup) need not read it back.
    pub content_hash: u128,
}

impl Head {
    /// A message just published or moved here: no deliveries, no history.
    /// The content fields are set when it is stored.
    pub(crate) fn new(id: u64, published_at_ms: u64, state: MessageState, expires_at_ms: Option<u64>) -> Self {
        Self {
            id,
            published_at_ms,
            delivery_count: 0,
            redrive_base: 0,
            state,
            expires_at_ms,
            idempotency_key: None,
            dead_letter: None,
            history: VecDeque::new(),
            history_dropped: 0,
            content_bytes: 0,
            content_hash: 0,
        }
    }

    /// What the message counts against its queue's `max_bytes`: its
    /// content, plus the text it carries in its history and dead-letter
    /// record (nack and dead-letter reasons, queue names), which a message
    /// nacked many times with long reasons can make larger than its body.
    pub(crate) fn size_bytes(&self) -> u64 {
        self.content_bytes + text_bytes(&self.history, &self.dead_letter) as u64
    }

    pub(crate) fn record(&mut self, event: HistoryEvent) {
        if self.history.len() == HISTORY_EVENTS_MAX {
            self.history.pop_front();
            self.history_dropped += 1;
        }
        self.history.push_back(event);
    }

    /// Deliveries counted against `max_deliveries`.
    pub(crate) fn deliveries_since_redrive(&self) -> u32 {
        self.delivery_count - self.redrive_base
    }

    /// The whole message, for an answer.
    pub(crate) fn with_content(self, content: Content) -> Message {
        Message {
            id: self.id,
            body: content.body,
            attributes: content.attributes,
            published_at_ms: self.published_at_ms,
            delivery_count: self.delivery_count,
            redrive_base: self.redrive_base,
            state: self.state,
            expires_at_ms: self.expires_at_ms,
            idempotency_key: self.idempotency_key,
            dead_letter: self.dead_letter,
            history: self.history,
            history_dropped: self.history_dropped,
        }
    }
}
