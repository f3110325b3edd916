//! The client's own types: everything its methods take and return. Their
//! conversions to and from the wire types (`raftq.v1`, re-exported as
//! [`crate::proto`]) are all in `convert`.
//!
//! Names follow the proto, one name per quantity (`message_id`, `node_id`,
//! `delivery_count`, `lease_expires_at_ms`, ...). Timestamps are `*_at_ms`:
//! ms since the Unix epoch, stamped by the Raft leader, 0 = not set (as on
//! the wire). Durations are [`Duration`]s; counts and sizes keep the wire's
//! meaning of 0 (e.g. `max_length` 0 = unlimited). An empty string the wire
//! uses for "none" is an `Option` here.

use std::{collections::HashMap, fmt, str::FromStr, time::Duration};

use bytes::Bytes;

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

/// One entry of [`crate::Client::nack_batch`]: as the arguments of
/// [`crate::Client::nack`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nack {
    pub receipt: Receipt,
    /// `None` = the queue's backoff.
    pub delay: Option<Duration>,
    pub dead_letter: bool,
    pub reason: String,
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
    /// The message as of this delivery (state [`MessageState::Leased`],
    /// history left empty).
    pub message: Message,
    /// The receipt naming this lease.
    pub receipt: Receipt,
    /// When the lease ends unless extended (ms since the Unix epoch, leader
    /// time).
    pub lease_expires_at_ms: u64,
    /// For [`Delivery::ack`] and friends.
    pub(crate) client: Client,
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
    ) -> Result<NackOutcome, ClientError> {
        self.client.nack(&self.receipt, delay, dead_letter, reason).await
    }

    /// Extends the lease to `lease` from now; returns the new deadline.
    pub async fn extend_lease(&self, lease: Duration) -> Result<u64, ClientError> {
        self.client.extend_lease(&self.receipt, lease).await
    }
}

/// Delivery order of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Order {
    /// The oldest visible message (lowest id) is delivered first.
    Fifo,
    /// The newest visible message (highest id) is delivered first.
    Lifo,
}

/// A queue configuration to create a queue with or to change: every field
/// is optional. On create an unset field takes the server's default; on
/// update it is left unchanged. Set fields directly or with the builder
/// methods of the same names:
///
/// ```
/// use raftq_client::QueueConfig;
/// use std::time::Duration;
///
/// let config = QueueConfig::default().max_length(10).lease(Duration::from_secs(30));
/// assert_eq!(config.max_length, Some(10));
/// ```
///
/// Durations travel in whole ms, rounded up. The wire's meaning of 0 is
/// kept: `max_deliveries`, `message_ttl`, `max_length`, `max_bytes` set to
/// 0 mean unlimited (never expire); `dead_letter_queue` set to `""` means
/// none (dead messages are parked in the queue).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueConfig {
    /// Delivery order. Default FIFO.
    pub order: Option<Order>,
    /// Lease given to a delivery that asks for none. Default 30 s; 100 ms
    /// to 12 h.
    pub lease: Option<Duration>,
    /// Deliveries after which an unacked message is dead-lettered; 0 =
    /// unlimited. Default 0.
    pub max_deliveries: Option<u32>,
    /// The queue receiving this queue's dead letters; `""` = none. Default
    /// none.
    pub dead_letter_queue: Option<String>,
    /// Time to live of a message from its publish; zero = forever. Default
    /// forever.
    pub message_ttl: Option<Duration>,
    /// Most messages held, in every state; 0 = unlimited. Default 0.
    pub max_length: Option<u64>,
    /// Most bytes of messages held; 0 = unlimited. Default 0.
    pub max_bytes: Option<u64>,
    /// Delay of a published message that sets none. Default zero.
    pub default_delay: Option<Duration>,
    /// How long an idempotency key is remembered. Default 5 min.
    pub dedup_window: Option<Duration>,
    /// Base of the redelivery backoff. Default zero (redeliver at once).
    pub backoff_base: Option<Duration>,
    /// Cap of the redelivery backoff. Default 5 min.
    pub backoff_max: Option<Duration>,
    /// Largest message accepted, in bytes (body plus attributes). Default
    /// 1 MiB, at most 4 MiB.
    pub max_message_bytes: Option<u32>,
}

/// The builder methods: each sets the field of the same name.
impl QueueConfig {
    /// Sets [`QueueConfig::order`].
    pub fn order(mut self, order: Order) -> Self {
        self.order = Some(order);
        self
    }

    /// Sets [`QueueConfig::lease`].
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = Some(lease);
        self
    }

    /// Sets [`QueueConfig::max_deliveries`].
    pub fn max_deliveries(mut self, max_deliveries: u32) -> Self {
        self.max_deliveries = Some(max_deliveries);
        self
    }

    /// Sets [`QueueConfig::dead_letter_queue`] (`""` = none).
    pub fn dead_letter_queue(mut self, queue: impl Into<String>) -> Self {
        self.dead_letter_queue = Some(queue.into());
        self
    }

    /// Sets [`QueueConfig::message_ttl`].
    pub fn message_ttl(mut self, ttl: Duration) -> Self {
        self.message_ttl = Some(ttl);
        self
    }

    /// Sets [`QueueConfig::max_length`].
    pub fn max_length(mut self, max_length: u64) -> Self {
        self.max_length = Some(max_length);
        self
    }

    /// Sets [`QueueConfig::max_bytes`].
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = Some(max_bytes);
        self
    }

    /// Sets [`QueueConfig::default_delay`].
    pub fn default_delay(mut self, delay: Duration) -> Self {
        self.default_delay = Some(delay);
        self
    }

    /// Sets [`QueueConfig::dedup_window`].
    pub fn dedup_window(mut self, window: Duration) -> Self {
        self.dedup_window = Some(window);
        self
    }

    /// Sets [`QueueConfig::backoff_base`].
    pub fn backoff_base(mut self, base: Duration) -> Self {
        self.backoff_base = Some(base);
        self
    }

    /// Sets [`QueueConfig::backoff_max`].
    pub fn backoff_max(mut self, max: Duration) -> Self {
        self.backoff_max = Some(max);
        self
    }

    /// Sets [`QueueConfig::max_message_bytes`].
    pub fn max_message_bytes(mut self, max_message_bytes: u32) -> Self {
        self.max_message_bytes = Some(max_message_bytes);
        self
    }
}

/// A queue's configuration as the server resolved it: every setting, the
/// defaults filled in. The fields mean what [`QueueConfig`]'s do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedQueueConfig {
    pub order: Order,
    pub lease: Duration,
    /// 0 = unlimited.
    pub max_deliveries: u32,
    /// `None`: dead messages are parked in the queue itself.
    pub dead_letter_queue: Option<String>,
    /// Zero = messages never expire.
    pub message_ttl: Duration,
    /// 0 = unlimited.
    pub max_length: u64,
    /// 0 = unlimited.
    pub max_bytes: u64,
    pub default_delay: Duration,
    pub dedup_window: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub max_message_bytes: u32,
}

/// The server's defaults: what a queue created with
/// `QueueConfig::default()` gets.
impl Default for ResolvedQueueConfig {
    fn default() -> Self {
        let core = raftq_core::QueueConfig::default();
        Self {
            order: match core.order {
                raftq_core::Order::Fifo => Order::Fifo,
                raftq_core::Order::Lifo => Order::Lifo,
            },
            lease: Duration::from_millis(core.lease_ms),
            max_deliveries: core.max_deliveries,
            dead_letter_queue: core.dead_letter_queue,
            message_ttl: Duration::from_millis(core.message_ttl_ms),
            max_length: core.max_length,
            max_bytes: core.max_bytes,
            default_delay: Duration::from_millis(core.default_delay_ms),
            dedup_window: Duration::from_millis(core.dedup_window_ms),
            backoff_base: Duration::from_millis(core.backoff_base_ms),
            backoff_max: Duration::from_millis(core.backoff_max_ms),
            max_message_bytes: core.max_message_bytes,
        }
    }
}

/// Every setting given: a queue created with it is configured alike.
impl From<ResolvedQueueConfig> for QueueConfig {
    fn from(c: ResolvedQueueConfig) -> Self {
        Self {
            order: Some(c.order),
            lease: Some(c.lease),
            max_deliveries: Some(c.max_deliveries),
            dead_letter_queue: Some(c.dead_letter_queue.unwrap_or_default()),
            message_ttl: Some(c.message_ttl),
            max_length: Some(c.max_length),
            max_bytes: Some(c.max_bytes),
            default_delay: Some(c.default_delay),
            dedup_window: Some(c.dedup_window),
            backoff_base: Some(c.backoff_base),
            backoff_max: Some(c.backoff_max),
            max_message_bytes: Some(c.max_message_bytes),
        }
    }
}

/// A queue's gauges and counters, as of the read. The `*_total` counters
/// count since the queue was created (a purge keeps them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Messages visible now.
    pub ready: u64,
    /// Messages under a live lease.
    pub leased: u64,
    /// Messages not visible yet (delay, redelivery backoff).
    pub delayed: u64,
    /// Dead messages parked in this queue.
    pub dead: u64,
    /// Bytes of the messages held, in every state.
    pub total_bytes: u64,
    /// Age of the oldest ready message, in ms; 0 when none is ready.
    pub oldest_ready_age_ms: u64,
    pub published_total: u64,
    pub delivered_total: u64,
    pub acked_total: u64,
    pub nacked_total: u64,
    pub expired_total: u64,
    pub dead_lettered_total: u64,
    pub redriven_total: u64,
    pub duplicates_total: u64,
    /// Idempotency keys forgotten early because the dedup table was full.
    pub dedup_evicted_total: u64,
}

/// A queue: its name, resolved configuration and statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    pub name: String,
    pub config: ResolvedQueueConfig,
    pub stats: QueueStats,
    pub created_at_ms: u64,
}

/// The outcome of publishing one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublishResult {
    /// The message's id in the queue.
    pub message_id: u64,
    /// The idempotency key was already seen in the dedup window: nothing
    /// new was stored and `message_id` is the original message's.
    pub duplicate: bool,
}

/// What a nack did to the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NackOutcome {
    /// The message will be visible again at `visible_at_ms`.
    Redeliver { visible_at_ms: u64 },
    /// The message was dead-lettered (moved to the dead-letter queue, or
    /// parked in its queue as dead).
    DeadLettered,
}

/// Where a message is in its life cycle; also the filter of
/// [`Client::peek`] (`None` there = any state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageState {
    /// Visible: handed to the next consumer in order.
    Ready,
    /// Not visible yet (publish delay, redelivery backoff).
    Delayed,
    /// Under a live lease.
    Leased,
    /// Dead, parked in its own queue until redriven, purged or deleted.
    Dead,
}

/// Where and why a message was dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterInfo {
    /// The queue it died in.
    pub source_queue: String,
    /// Its id in `source_queue`.
    pub source_message_id: u64,
    /// Its delivery count when it died.
    pub delivery_count: u32,
    /// Why it died.
    pub reason: String,
    pub dead_lettered_at_ms: u64,
}

/// One event in a message's life (the server keeps the most recent ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryEvent {
    /// Stored by Publish; first visible at `visible_at_ms`.
    Published { at_ms: u64, visible_at_ms: u64 },
    /// Leased to a consumer.
    Delivered { at_ms: u64, delivery_count: u32, lease_expires_at_ms: u64 },
    /// A live lease was extended to a new deadline.
    LeaseExtended { at_ms: u64, delivery_count: u32, lease_expires_at_ms: u64 },
    /// A lease ran out without ack or nack.
    LeaseExpired { at_ms: u64, delivery_count: u32 },
    /// The subscription holding the lease ended; the lease was released.
    Released { at_ms: u64, delivery_count: u32 },
    /// A consumer nacked the delivery.
    Nacked { at_ms: u64, delivery_count: u32, reason: String },
    /// Scheduled to be visible again after a failed delivery.
    Requeued { at_ms: u64, visible_at_ms: u64 },
    /// The message died: moved to `target_queue`, or parked in its own
    /// queue (`None`).
    DeadLettered { at_ms: u64, reason: String, target_queue: Option<String> },
    /// Moved back by Redrive from `from_queue`.
    Redriven { at_ms: u64, from_queue: String },
    /// An event this client does not know (from a newer server).
    Unknown { at_ms: u64 },
}

impl HistoryEvent {
    /// When it happened.
    pub fn at_ms(&self) -> u64 {
        match self {
            Self::Published { at_ms, .. }
            | Self::Delivered { at_ms, .. }
            | Self::LeaseExtended { at_ms, .. }
            | Self::LeaseExpired { at_ms, .. }
            | Self::Released { at_ms, .. }
            | Self::Nacked { at_ms, .. }
            | Self::Requeued { at_ms, .. }
            | Self::DeadLettered { at_ms, .. }
            | Self::Redriven { at_ms, .. }
            | Self::Unknown { at_ms } => *at_ms,
        }
    }
}

/// A message as stored: from [`Client::peek`], [`Client::inspect`] and in
/// a [`Delivery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its id in its queue.
    pub message_id: u64,
    /// The payload.
    pub body: Bytes,
    /// The attributes given at publish.
    pub attributes: HashMap<String, String>,
    /// Its current state.
    pub state: MessageState,
    /// How many times it has been delivered (leased) so far.
    pub delivery_count: u32,
    /// When it was published (stored in this queue).
    pub published_at_ms: u64,
    /// When it became or becomes visible; 0 while leased or dead.
    pub visible_at_ms: u64,
    /// While leased: when the current lease ends; 0 otherwise.
    pub lease_expires_at_ms: u64,
    /// When its TTL runs out; 0 = no TTL.
    pub expires_at_ms: u64,
    /// The idempotency key it was published with.
    pub idempotency_key: Option<String>,
    /// Set if it was dead-lettered.
    pub dead_letter: Option<DeadLetterInfo>,
    /// Its history, oldest first; filled in by [`Client::inspect`] only.
    pub history: Vec<HistoryEvent>,
}

/// One page of [`Client::peek`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeekPage {
    /// In ascending id order, history left empty.
    pub messages: Vec<Message>,
    /// Pass as `after_id` for the next page; `None` = no more messages.
    pub next_after_id: Option<u64>,
}

/// A node's Raft role, as the answering node knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeRole {
    Leader,
    Follower,
    Candidate,
    /// A non-voting member.
    Learner,
    /// Not known to the answering node (e.g. another node, seen from a
    /// follower), or a role this client does not know.
    Unknown,
}

/// Raft state of one node, as the answering node knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub node_id: u64,
    /// Its client address, `host:port`.
    pub address: String,
    pub role: NodeRole,
    /// False for a learner.
    pub voter: bool,
    /// Reported by the node itself only; 0 in the other nodes' entries
    /// (so are `committed_index`, `last_applied_index`, `snapshot_index`).
    pub last_log_index: u64,
    pub committed_index: u64,
    pub last_applied_index: u64,
    /// Whether the answering node reached it recently.
    pub reachable: bool,
    /// In a leader's answer, for the other nodes: how far it replicated its
    /// log to this one.
    pub matched_index: Option<u64>,
    pub snapshot_index: u64,
    /// In a leader's answer, for the other nodes: how long ago the node
    /// last acknowledged the leader's replication or heartbeat.
    pub last_contact: Option<std::time::Duration>,
}

/// A node's state digest and the applied index it belongs to (G8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDigest {
    pub applied_index: u64,
    /// The stored digest, 32 lowercase hex characters.
    pub digest: String,
    /// The digest recomputed from every pair, when a full scan was asked.
    pub full_digest: Option<String>,
}

/// The cluster's Raft state as one node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatus {
    /// The node that answered.
    pub node_id: u64,
    /// The leader it knows of.
    pub leader_id: Option<u64>,
    /// That leader's client address, `host:port`.
    pub leader_address: Option<String>,
    /// Its current term.
    pub term: u64,
    /// Every member, ascending by id.
    pub nodes: Vec<NodeStatus>,
    /// Its state digest, when asked for.
    pub digest: Option<StateDigest>,
    /// Its raftq version.
    pub version: String,
}

/// One cluster member.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Member {
    pub node_id: u64,
    /// Its client address, `host:port`.
    pub address: String,
    /// Its peer (Raft transport) address, `host:port`.
    pub peer_address: String,
}

/// Who votes and who only replicates, each ascending by node id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    pub voters: Vec<Member>,
    pub learners: Vec<Member>,
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
    fn queue_config_builders_set_their_fields() {
        let config = QueueConfig::default().max_length(10).lease(Duration::from_secs(30)).dead_letter_queue("dlq");
        let expected = QueueConfig {
            max_length: Some(10),
            lease: Some(Duration::from_secs(30)),
            dead_letter_queue: Some("dlq".into()),
            ..QueueConfig::default()
        };
        assert_eq!(config, expected);
        let defaults = ResolvedQueueConfig::default();
        assert_eq!(
            (defaults.order, defaults.lease, defaults.dead_letter_queue.clone()),
            (Order::Fifo, Duration::from_secs(30), None)
        );
        assert_eq!(QueueConfig::from(defaults).dead_letter_queue.as_deref(), Some(""), "none, given explicitly");
    }

    #[test]
    fn message_builders_and_size() {
        let m = OutgoingMessage::new("hello")
            .with_attribute("k", "vv")
            .with_delay(Duration::from_secs(2))
            .with_idempotency_key("key");
        assert_eq!(m.size_bytes(), 5 + 1 + 2);
        assert_eq!(m.delay, Some(Duration::from_secs(2)));
        assert_eq!(m.idempotency_key.as_deref(), Some("key"));
    }
}

// ---------------------------------------------------------------------------
// Topics
// ---------------------------------------------------------------------------

/// A topic's configuration, fixed at creation. `Default`: accept unrouted
/// messages, the server's default dedup window (5 min).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicConfig {
    /// Refuse a message that matches no binding (FAILED_PRECONDITION,
    /// `UNROUTABLE`) instead of counting it as unrouted.
    pub require_route: bool,
    /// How long the topic remembers an idempotency key; `None` = the
    /// server's default, zero = no dedup.
    pub dedup_window: Option<Duration>,
}

/// One condition of a [`Filter`] on one attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Present and equal to the value.
    Equals(String, String),
    /// Present and equal to one of the values.
    OneOf(String, Vec<String>),
    /// Present and starting with the value.
    Prefix(String, String),
    /// Present, any value.
    Exists(String),
    /// Absent.
    NotExists(String),
}

/// A binding's filter: every condition must hold; none = every message.
/// Build with [`Filter::all`] and the condition helpers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub conditions: Vec<Condition>,
}

impl Filter {
    /// Matches every message.
    pub fn all() -> Self {
        Self::default()
    }

    pub fn equals(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.conditions.push(Condition::Equals(key.into(), value.into()));
        self
    }

    pub fn one_of<V: Into<String>>(mut self, key: impl Into<String>, values: impl IntoIterator<Item = V>) -> Self {
        self.conditions.push(Condition::OneOf(key.into(), values.into_iter().map(Into::into).collect()));
        self
    }

    pub fn prefix(mut self, key: impl Into<String>, prefix: impl Into<String>) -> Self {
        self.conditions.push(Condition::Prefix(key.into(), prefix.into()));
        self
    }

    pub fn exists(mut self, key: impl Into<String>) -> Self {
        self.conditions.push(Condition::Exists(key.into()));
        self
    }

    pub fn not_exists(mut self, key: impl Into<String>) -> Self {
        self.conditions.push(Condition::NotExists(key.into()));
        self
    }
}

/// One queue bound to a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub queue: String,
    pub filter: Filter,
}

/// A topic's lifetime counters (replicated, never reset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicStats {
    pub published_total: u64,
    pub routed_copies_total: u64,
    pub unrouted_total: u64,
    pub duplicates_total: u64,
    pub dedup_evicted_total: u64,
}

/// A topic: its configuration (dedup window resolved), counters and
/// bindings in queue name order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub require_route: bool,
    pub dedup_window: Duration,
    pub stats: TopicStats,
    pub bindings: Vec<Binding>,
    pub created_at_ms: u64,
}

/// One queue's copy of a topic message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicCopy {
    pub queue: String,
    /// The copy's id in `queue`.
    pub message_id: u64,
    /// The queue's own dedup window held the key: `message_id` is the
    /// message it stored before.
    pub duplicate: bool,
}

/// The outcome of publishing one message to a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPublishResult {
    /// The topic-level id (the original's for a duplicate).
    pub message_id: u64,
    /// The topic's dedup window held the key: nothing was stored.
    pub duplicate: bool,
    /// One per matching bound queue, in queue name order.
    pub copies: Vec<TopicCopy>,
}
