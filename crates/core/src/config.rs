//! Per-queue configuration: defaults, partial updates, validation.

use serde::{Deserialize, Serialize};

use crate::error::QueueError;
use crate::limits::*;

/// Which visible message a receive takes first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Order {
    /// Oldest visible first (lowest id).
    #[default]
    Fifo,
    /// Newest visible first (highest id).
    Lifo,
}

/// A queue's fully resolved configuration. Durations in milliseconds; 0 means
/// "none" / "unlimited" where noted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueConfig {
    pub order: Order,
    /// How long a received message stays invisible to other consumers.
    pub lease_ms: u64,
    /// Deliveries without ack before a message is dead-lettered; 0 = unlimited.
    pub max_deliveries: u32,
    /// Where dead letters go; `None` parks them in this queue in state Dead.
    pub dead_letter_queue: Option<String>,
    /// Messages older than this are removed; 0 = never.
    pub message_ttl_ms: u64,
    /// Most messages held (every state counted); 0 = unlimited.
    pub max_length: u64,
    /// Most body+attribute bytes held; 0 = unlimited.
    pub max_bytes: u64,
    /// Delay applied to a publish that names none.
    pub default_delay_ms: u64,
    /// How long an idempotency key is remembered.
    pub dedup_window_ms: u64,
    /// First retry delay after a failed delivery; 0 = redeliver at once.
    pub backoff_base_ms: u64,
    /// Ceiling of the exponential retry delay.
    pub backoff_max_ms: u64,
    /// Largest message (body plus attributes) this queue accepts.
    pub max_message_bytes: u32,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            order: Order::Fifo,
            lease_ms: LEASE_MS_DEFAULT,
            max_deliveries: 0,
            dead_letter_queue: None,
            message_ttl_ms: 0,
            max_length: 0,
            max_bytes: 0,
            default_delay_ms: 0,
            dedup_window_ms: DEDUP_WINDOW_MS_DEFAULT,
            backoff_base_ms: 0,
            backoff_max_ms: BACKOFF_MAX_MS_DEFAULT,
            max_message_bytes: MESSAGE_BYTES_DEFAULT,
        }
    }
}

/// A partial configuration: `None` keeps the current (or default) value.
/// `dead_letter_queue: Some(None)` clears the dead-letter queue.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigUpdate {
    pub order: Option<Order>,
    pub lease_ms: Option<u64>,
    pub max_deliveries: Option<u32>,
    pub dead_letter_queue: Option<Option<String>>,
    pub message_ttl_ms: Option<u64>,
    pub max_length: Option<u64>,
    pub max_bytes: Option<u64>,
    pub default_delay_ms: Option<u64>,
    pub dedup_window_ms: Option<u64>,
    pub backoff_base_ms: Option<u64>,
    pub backoff_max_ms: Option<u64>,
    pub max_message_bytes: Option<u32>,
}

impl ConfigUpdate {
    /// The config that results from applying this update to `base`.
    pub fn apply_to(&self, base: &QueueConfig) -> QueueConfig {
        QueueConfig {
            order: self.order.unwrap_or(base.order),
            lease_ms: self.lease_ms.unwrap_or(base.lease_ms),
            max_deliveries: self.max_deliveries.unwrap_or(base.max_deliveries),
            dead_letter_queue: self.dead_letter_queue.clone().unwrap_or_else(|| base.dead_letter_queue.clone()),
            message_ttl_ms: self.message_ttl_ms.unwrap_or(base.message_ttl_ms),
            max_length: self.max_length.unwrap_or(base.max_length),
            max_bytes: self.max_bytes.unwrap_or(base.max_bytes),
            default_delay_ms: self.default_delay_ms.unwrap_or(base.default_delay_ms),
            dedup_window_ms: self.dedup_window_ms.unwrap_or(base.dedup_window_ms),
            backoff_base_ms: self.backoff_base_ms.unwrap_or(base.backoff_base_ms),
            backoff_max_ms: self.backoff_max_ms.unwrap_or(base.backoff_max_ms),
            max_message_bytes: self.max_message_bytes.unwrap_or(base.max_message_bytes),
        }
    }
}

fn check_range(field: &str, value: u64, min: u64, max: u64) -> Result<(), QueueError> {
    if value < min || value > max {
        return Err(QueueError::invalid(field, format!("{value} is outside {min}..={max}")));
    }
    Ok(())
}

impl QueueConfig {
    /// Checks every field against the limits; the error names the field.
    pub fn validate(&self) -> Result<(), QueueError> {
        check_range("lease_ms", self.lease_ms, LEASE_MS_MIN, LEASE_MS_MAX)?;
        check_range("max_deliveries", u64::from(self.max_deliveries), 0, u64::from(MAX_DELIVERIES_MAX))?;
        if let Some(dlq) = &self.dead_letter_queue {
            validate_queue_name(dlq).map_err(|e| e.in_field("dead_letter_queue"))?;
        }
        check_range("message_ttl_ms", self.message_ttl_ms, 0, MESSAGE_TTL_MS_MAX)?;
        check_range("default_delay_ms", self.default_delay_ms, 0, DELAY_MS_MAX)?;
        check_range("dedup_window_ms", self.dedup_window_ms, 0, DEDUP_WINDOW_MS_MAX)?;
        check_range("backoff_base_ms", self.backoff_base_ms, 0, BACKOFF_MS_MAX)?;
        check_range("backoff_max_ms", self.backoff_max_ms, self.backoff_base_ms, BACKOFF_MS_MAX)?;
        check_range("max_message_bytes", u64::from(self.max_message_bytes), 1, u64::from(MESSAGE_BYTES_CAP))?;
        Ok(())
    }
}

/// Checks a queue name: `[A-Za-z0-9._-]{1,128}`. The error's field is empty;
/// callers prefix it with `in_field`.
pub fn validate_queue_name(name: &str) -> Result<(), QueueError> {
    if name.is_empty() || name.len() > QUEUE_NAME_BYTES_MAX {
        return Err(QueueError::invalid(
            "",
            format!("must be 1..={QUEUE_NAME_BYTES_MAX} characters, got {}", name.len()),
        ));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(QueueError::invalid("", format!("character {bad:?} is not allowed; use [A-Za-z0-9._-]")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        QueueConfig::default().validate().unwrap();
    }

    #[test]
    fn names_are_checked() {
        for good in ["a", "orders.v1", "A-b_c.9", &"x".repeat(128)] {
            validate_queue_name(good).unwrap();
        }
        for bad in ["", "a b", "ü", "a/b", &"x".repeat(129)] {
            assert!(validate_queue_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: [(&str, QueueConfig); 6] = [
            ("lease_ms", QueueConfig { lease_ms: 1, ..Default::default() }),
            ("lease_ms", QueueConfig { lease_ms: LEASE_MS_MAX + 1, ..Default::default() }),
            ("dead_letter_queue", QueueConfig { dead_letter_queue: Some("bad name".into()), ..Default::default() }),
            ("max_message_bytes", QueueConfig { max_message_bytes: MESSAGE_BYTES_CAP + 1, ..Default::default() }),
            ("backoff_max_ms", QueueConfig { backoff_base_ms: 10, backoff_max_ms: 5, ..Default::default() }),
            ("dedup_window_ms", QueueConfig { dedup_window_ms: DEDUP_WINDOW_MS_MAX + 1, ..Default::default() }),
        ];
        for (field, config) in cases {
            match config.validate() {
                Err(QueueError::InvalidArgument { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{field}: expected InvalidArgument, got {other:?}"),
            }
        }
    }

    #[test]
    fn update_changes_only_named_fields() {
        let base = QueueConfig { dead_letter_queue: Some("dlq".into()), ..Default::default() };
        let update = ConfigUpdate { lease_ms: Some(5_000), ..Default::default() };
        let next = update.apply_to(&base);
        assert_eq!(next.lease_ms, 5_000);
        assert_eq!(next.dead_letter_queue.as_deref(), Some("dlq"));
        let clear = ConfigUpdate { dead_letter_queue: Some(None), ..Default::default() };
        assert_eq!(clear.apply_to(&base).dead_letter_queue, None);
    }
}
