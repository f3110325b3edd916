//! The commands that change queue state. Each one is a log entry's payload
//! (or part of one): deliveries are commands too, so leases survive failover.
//!
//! `Command::validate` is the stateless check the server runs before it
//! proposes; `apply` runs it again, because a log entry is input too.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigUpdate, QueueConfig, validate_queue_name};
use crate::error::{Limit, QueueError, Reason};
use crate::limits::*;
use crate::topic::{Filter, TopicConfig};

/// Names one lease on one message: the queue, the message id, and the
/// delivery attempt that created the lease. A later delivery of the same
/// message has a higher attempt, so an old receipt never matches it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Receipt {
    pub queue: String,
    pub message_id: u64,
    pub attempt: u32,
}

/// One message as a producer hands it in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessage {
    pub body: Bytes,
    pub attributes: BTreeMap<String, String>,
    /// Not visible before publish time + delay; `None` uses the queue default.
    pub delay_ms: Option<u64>,
    /// Seen again within the dedup window, the publish returns the original id.
    pub idempotency_key: Option<String>,
}

impl NewMessage {
    /// Body plus attribute bytes: what counts against size limits.
    pub fn size_bytes(&self) -> usize {
        crate::message::content_bytes(&self.body, &self.attributes)
    }

    fn validate(&self) -> Result<(), QueueError> {
        if self.size_bytes() > MESSAGE_BYTES_CAP as usize {
            return Err(QueueError::exhausted(
                Reason::MessageTooLarge,
                "body",
                format!("{} bytes exceeds the hard cap of {MESSAGE_BYTES_CAP}", self.size_bytes()),
                Limit { name: "message_bytes_cap".into(), value: MESSAGE_BYTES_CAP.into(), queue: None },
            ));
        }
        if self.attributes.len() > ATTRIBUTES_MAX {
            return Err(QueueError::invalid(
                "attributes",
                format!("{} attributes exceeds {ATTRIBUTES_MAX}", self.attributes.len()),
            ));
        }
        for (key, value) in &self.attributes {
            if key.is_empty() || key.len() > ATTRIBUTE_KEY_BYTES_MAX {
                return Err(QueueError::invalid(
                    "attributes",
                    format!("key {key:?} must be 1..={ATTRIBUTE_KEY_BYTES_MAX} bytes"),
                ));
            }
            if value.len() > ATTRIBUTE_VALUE_BYTES_MAX {
                return Err(QueueError::invalid(
                    format!("attributes[{key}]"),
                    format!("{} bytes exceeds {ATTRIBUTE_VALUE_BYTES_MAX}", value.len()),
                ));
            }
        }
        if let Some(delay) = self.delay_ms
            && delay > DELAY_MS_MAX
        {
            return Err(QueueError::invalid("delay_ms", format!("{delay} exceeds {DELAY_MS_MAX}")));
        }
        if let Some(key) = &self.idempotency_key
            && (key.is_empty() || key.len() > IDEMPOTENCY_KEY_BYTES_MAX)
        {
            return Err(QueueError::invalid(
                "idempotency_key",
                format!("must be 1..={IDEMPOTENCY_KEY_BYTES_MAX} bytes, got {}", key.len()),
            ));
        }
        Ok(())
    }
}

/// Every state change the queue knows. Reads (get, list, peek, inspect) are
/// not commands: the server answers them from applied state after a
/// linearizable read barrier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    CreateQueue {
        name: String,
        config: ConfigUpdate,
    },
    UpdateQueue {
        name: String,
        update: ConfigUpdate,
    },
    DeleteQueue {
        name: String,
    },
    PurgeQueue {
        name: String,
    },
    /// All messages commit, or none.
    Publish {
        queue: String,
        messages: Vec<NewMessage>,
    },
    /// Leases up to `max_messages` visible messages.
    Receive {
        queue: String,
        max_messages: u32,
        lease_ms: Option<u64>,
    },
    /// All receipts must hold live leases, or nothing is acked.
    Ack {
        receipts: Vec<Receipt>,
    },
    /// Gives a leased message back: redelivered after `delay_ms` (or the
    /// queue's retry policy), or dead-lettered now.
    Nack {
        receipt: Receipt,
        delay_ms: Option<u64>,
        dead_letter: bool,
        reason: String,
    },
    /// Moves a live lease's deadline to now + `lease_ms`.
    ExtendLease {
        receipt: Receipt,
        lease_ms: u64,
    },
    /// Moves up to `max_messages` dead letters held in `queue` back to their
    /// source queue.
    Redrive {
        queue: String,
        max_messages: u32,
    },
    /// Lets time pass: processes due lease ends, delays and TTLs.
    Tick,
    CreateTopic {
        name: String,
        config: TopicConfig,
    },
    /// Removes the topic and its bindings; the queues stay.
    DeleteTopic {
        name: String,
    },
    /// Binds `queue` to `topic` (or replaces the binding's filter).
    Bind {
        topic: String,
        queue: String,
        filter: Filter,
    },
    Unbind {
        topic: String,
        queue: String,
    },
    /// Stores each message in every bound queue whose filter matches: all
    /// copies commit, or none.
    PublishTopic {
        topic: String,
        messages: Vec<NewMessage>,
    },
}

fn check_name(field: &str, name: &str) -> Result<(), QueueError> {
    validate_queue_name(name).map_err(|e| e.in_field(field))
}

/// `field` names the receipt in an error; built only then (an Ack of 1,000
/// receipts formatted two names per receipt on every validation).
fn check_receipt(field: impl Fn() -> String, receipt: &Receipt) -> Result<(), QueueError> {
    validate_queue_name(&receipt.queue).map_err(|e| e.in_field(&format!("{}.queue", field())))?;
    if receipt.message_id == 0 || receipt.attempt == 0 {
        return Err(QueueError::invalid(field(), "message_id and attempt must be positive"));
    }
    Ok(())
}

fn check_lease(field: &str, lease_ms: u64) -> Result<(), QueueError> {
    if !(LEASE_MS_MIN..=LEASE_MS_MAX).contains(&lease_ms) {
        return Err(QueueError::invalid(field, format!("{lease_ms} is outside {LEASE_MS_MIN}..={LEASE_MS_MAX}")));
    }
    Ok(())
}

impl Command {
    /// Stateless validation: names, sizes, counts, durations. Stateful checks
    /// (does the queue exist, is it full) happen in `apply`.
    pub fn validate(&self) -> Result<(), QueueError> {
        match self {
            Command::CreateQueue { name, config } => {
                check_name("queue", name)?;
                config.apply_to(&QueueConfig::default()).validate()
            }
            Command::UpdateQueue { name, update } => {
                check_name("queue", name)?;
                // Each field is checked against its limits here; relations
                // with fields left unchanged (backoff base ≤ max) are checked
                // in apply, once merged with the queue's current config.
                let neutral =
                    QueueConfig { backoff_base_ms: 0, backoff_max_ms: BACKOFF_MS_MAX, ..QueueConfig::default() };
                update.apply_to(&neutral).validate()
            }
            Command::DeleteQueue { name } | Command::PurgeQueue { name } => check_name("queue", name),
            Command::Publish { queue, messages } => validate_publish(queue, messages),
            Command::Receive { queue, max_messages, lease_ms } => {
                check_name("queue", queue)?;
                if !(1..=RECEIVE_MESSAGES_MAX).contains(max_messages) {
                    return Err(QueueError::invalid(
                        "max_messages",
                        format!("{max_messages} is outside 1..={RECEIVE_MESSAGES_MAX}"),
                    ));
                }
                lease_ms.map_or(Ok(()), |lease| check_lease("lease_ms", lease))
            }
            Command::Ack { receipts } => {
                if receipts.is_empty() || receipts.len() > ACK_RECEIPTS_MAX {
                    return Err(QueueError::invalid(
                        "receipts",
                        format!("{} receipts is outside 1..={ACK_RECEIPTS_MAX}", receipts.len()),
                    ));
                }
                for (i, receipt) in receipts.iter().enumerate() {
                    check_receipt(|| format!("receipts[{i}]"), receipt)?;
                }
                Ok(())
            }
            Command::Nack { receipt, delay_ms, reason, .. } => {
                check_receipt(|| "receipt".to_owned(), receipt)?;
                if let Some(delay) = delay_ms
                    && *delay > DELAY_MS_MAX
                {
                    return Err(QueueError::invalid("delay_ms", format!("{delay} exceeds {DELAY_MS_MAX}")));
                }
                if reason.len() > REASON_BYTES_MAX {
                    return Err(QueueError::invalid("reason", format!("longer than {REASON_BYTES_MAX} bytes")));
                }
                Ok(())
            }
            Command::ExtendLease { receipt, lease_ms } => {
                check_receipt(|| "receipt".to_owned(), receipt)?;
                check_lease("lease_ms", *lease_ms)
            }
            Command::Redrive { queue, max_messages } => {
                check_name("queue", queue)?;
                if !(1..=REDRIVE_MESSAGES_MAX).contains(max_messages) {
                    return Err(QueueError::invalid(
                        "max_messages",
                        format!("{max_messages} is outside 1..={REDRIVE_MESSAGES_MAX}"),
                    ));
                }
                Ok(())
            }
            Command::Tick => Ok(()),
            Command::CreateTopic { name, config } => {
                check_name("topic", name)?;
                config.validate()
            }
            Command::DeleteTopic { name } => check_name("topic", name),
            Command::Bind { topic, queue, filter } => {
                check_name("topic", topic)?;
                check_name("queue", queue)?;
                filter.validate("filter")
            }
            Command::Unbind { topic, queue } => {
                check_name("topic", topic)?;
                check_name("queue", queue)
            }
            Command::PublishTopic { topic, messages } => {
                validate_messages(messages)?;
                check_name("topic", topic)
            }
        }
    }

    /// True for commands that only move time forward and never reject.
    pub fn is_tick(&self) -> bool {
        matches!(self, Command::Tick)
    }
}

fn validate_publish(queue: &str, messages: &[NewMessage]) -> Result<(), QueueError> {
    check_name("queue", queue)?;
    validate_messages(messages)
}

fn validate_messages(messages: &[NewMessage]) -> Result<(), QueueError> {
    if messages.is_empty() || messages.len() > PUBLISH_MESSAGES_MAX {
        return Err(QueueError::invalid(
            "messages",
            format!("{} messages is outside 1..={PUBLISH_MESSAGES_MAX}", messages.len()),
        ));
    }
    let mut total_bytes = 0usize;
    for (i, message) in messages.iter().enumerate() {
        message.validate().map_err(|e| e.in_field(&format!("messages[{i}]")))?;
        total_bytes += message.size_bytes();
    }
    if total_bytes > PUBLISH_BYTES_MAX {
        return Err(QueueError::exhausted(
            Reason::RequestTooLarge,
            "messages",
            format!("batch of {total_bytes} bytes exceeds {PUBLISH_BYTES_MAX}"),
            Limit { name: "publish_bytes".into(), value: PUBLISH_BYTES_MAX as u64, queue: None },
        ));
    }
    Ok(())
}
