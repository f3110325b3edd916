//! The client's own types and every conversion to and from the wire types.
//! Everything else the API returns is a `raftq_proto::v1` type, re-exported
//! as [`crate::proto`].

use std::{collections::HashMap, fmt, str::FromStr, time::Duration};

use bytes::Bytes;
use raftq_proto::v1 as proto;

use crate::{client::Client, error::ClientError};

/// A message to publish. Build with [`OutgoingMessage::new`] and the
/// `with_*` helpers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The payload, opaque to raftq.
    pub body: Bytes,
    /// Application headers; they count towards the message size.
    pub attributes: HashMap<String, String>,
    /// Delay before the message is visible. `None` = the queue's default.
    pub delay: Option<Duration>,
    /// Deduplication key. `None` (or empty) = the client makes one, so every
    /// published message has a key and retries never duplicate it. Set your
    /// own to deduplicate across clients or restarts.
    pub idempotency_key: Option<String>,
}

impl OutgoingMessage {
    /// A message with this body and nothing else set.
    pub fn new(body: impl Into<Bytes>) -> Self {
        Self { body: body.into(), ..Self::default() }
    }

    /// Adds an attribute.
    pub fn with_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(key.into(), value.into());
        self
    }

    /// Sets the delivery delay.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Sets the idempotency key.
    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Its size as the server counts it against limits: body plus attribute
    /// keys and values.
    pub fn size_bytes(&self) -> usize {
        self.body.len() + self.attributes.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
    }
}

/// Names one lease of one message; needed to ack, nack or extend it. Its
/// string form is `queue/message_id/delivery_count` (queue names have no `/`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Receipt {
    /// The queue holding the message.
    pub queue: String,
    /// The message's id.
    pub message_id: u64,
    /// The delivery count when this lease was granted (1 = first delivery).
    pub delivery_count: u32,
}

impl fmt::Display for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.queue, self.message_id, self.delivery_count)
    }
}

impl FromStr for Receipt {
    type Err = ClientError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ClientError::InvalidArgument(format!("receipt {s:?}: expected queue/message_id/delivery_count"));
        let mut parts = s.rsplitn(3, '/');
        let (Some(delivery_count), Some(id), Some(queue)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        if queue.is_empty() || queue.contains('/') {
            return Err(bad());
        }
        Ok(Self {
            queue: queue.to_owned(),
            message_id: id.parse().map_err(|_| bad())?,
            delivery_count: delivery_count.parse().map_err(|_| bad())?,
        })
    }
}

/// A leased message, from [`Client::receive`] or a [`crate::Consumer`]. It
/// keeps a handle to the client, so it can settle itself.
#[derive(Clone)]
pub struct Delivery {
    /// The message as of this delivery (state LEASED).
    pub message: proto::MessageView,
    /// The receipt naming this lease.
    pub receipt: Receipt,
    /// When the lease ends unless extended (ms since the Unix epoch, leader
    /// time).
    pub lease_expires_at_ms: u64,
    /// For [`Delivery::ack`] and friends.
    client: Client,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("receipt", &self.receipt)
            .field("lease_expires_at_ms", &self.lease_expires_at_ms)
            .field("body_bytes", &self.message.body.len())
            .finish_non_exhaustive()
    }
}

impl Delivery {
    /// The message id.
    pub fn message_id(&self) -> u64 {
        self.message.message_id
    }

    /// The payload.
    pub fn body(&self) -> &Bytes {
        &self.message.body
    }

    /// The attributes.
    pub fn attributes(&self) -> &HashMap<String, String> {
        &self.message.attributes
    }

    /// Deliveries so far, this one included.
    pub fn delivery_count(&self) -> u32 {
        self.message.delivery_count
    }

    /// Acks this delivery. FAILED_PRECONDITION if the lease has ended.
    pub async fn ack(&self) -> Result<(), ClientError> {
        self.client.ack(std::slice::from_ref(&self.receipt)).await.map(drop)
    }

    /// Gives this delivery back (see [`Client::nack`]).
    pub async fn nack(
        &self,
        delay: Option<Duration>,
        dead_letter: bool,
        reason: &str,
    ) -> Result<proto::NackResponse, ClientError> {
        self.client.nack(&self.receipt, delay, dead_letter, reason).await
    }

    /// Extends the lease to `lease` from now; returns the new deadline.
    pub async fn extend_lease(&self, lease: Duration) -> Result<u64, ClientError> {
        self.client.extend_lease(&self.receipt, lease).await
    }
}

/// A duration in whole ms for the wire, rounded up (so 500 µs is 1 ms, not
/// "unset" or 0) and saturating.
pub(crate) fn duration_ms(duration: Duration) -> u64 {
    let ms = duration.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// A message for the wire. Its key must already be assigned.
pub(crate) fn publish_message(message: OutgoingMessage) -> proto::PublishMessage {
    proto::PublishMessage {
        body: message.body,
        attributes: message.attributes,
        delay_ms: message.delay.map(duration_ms),
        idempotency_key: message.idempotency_key.unwrap_or_default(),
    }
}

impl From<&Receipt> for proto::Receipt {
    fn from(r: &Receipt) -> Self {
        Self { queue: r.queue.clone(), message_id: r.message_id, delivery_count: r.delivery_count }
    }
}

impl From<proto::Receipt> for Receipt {
    fn from(r: proto::Receipt) -> Self {
        Self { queue: r.queue, message_id: r.message_id, delivery_count: r.delivery_count }
    }
}

/// A delivery from the wire; a delivery without receipt or message breaks
/// the protocol.
pub(crate) fn delivery(wire: proto::Delivery, client: &Client) -> Result<Delivery, ClientError> {
    let (Some(message), Some(receipt)) = (wire.message, wire.receipt) else {
        return Err(ClientError::Protocol("delivery without message or receipt".into()));
    };
    Ok(Delivery {
        message,
        receipt: receipt.into(),
        lease_expires_at_ms: wire.lease_expires_at_ms,
        client: client.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_string_roundtrip() {
        let r = Receipt { queue: "orders.eu-1".into(), message_id: 42, delivery_count: 3 };
        assert_eq!(r.to_string(), "orders.eu-1/42/3");
        assert_eq!("orders.eu-1/42/3".parse::<Receipt>().unwrap(), r);
        for bad in ["", "q", "q/1", "/1/1", "q/x/1", "q/1/x", "q/1/-1", "a/b/1/1", "q/1/1/"] {
            assert!(bad.parse::<Receipt>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ms_round_up_and_saturate() {
        assert_eq!(duration_ms(Duration::ZERO), 0);
        assert_eq!(duration_ms(Duration::from_micros(500)), 1);
        assert_eq!(duration_ms(Duration::from_millis(1500)), 1500);
        assert_eq!(duration_ms(Duration::MAX), u64::MAX);
    }

    #[test]
    fn message_builders_and_size() {
        let m = OutgoingMessage::new("hello")
            .with_attribute("k", "vv")
            .with_delay(Duration::from_secs(2))
            .with_idempotency_key("key");
        assert_eq!(m.size_bytes(), 5 + 1 + 2);
        let wire = publish_message(m);
        assert_eq!(wire.delay_ms, Some(2000));
        assert_eq!(wire.idempotency_key, "key");
        assert_eq!(wire.attributes["k"], "vv");
    }
}
