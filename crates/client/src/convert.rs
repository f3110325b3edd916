//! Every conversion between the client's own types ([`crate::types`]) and
//! the wire types (`raftq.v1`, [`crate::proto`]), in both directions where
//! both exist. Nothing else in the crate builds a client type from a wire
//! type or the reverse.
//!
//! From the wire, a field the protocol says is always set but is missing,
//! or an enum value this client does not know where it cannot stand in for
//! one (an order, a message state, a nack outcome), is a
//! [`ClientError::Protocol`]. Only what reads as "unknown" anyway degrades
//! quietly: a node role this client does not know is [`NodeRole::Unknown`],
//! a history event it does not know is [`HistoryEvent::Unknown`], and
//! absent queue stats are all zero.

use std::time::Duration;

use raftq_proto::v1::{
    self as proto,
    history_event::{self as h, Kind},
};

use crate::{
    client::Client,
    error::ClientError,
    types::{
        Binding, ClusterStatus, Condition, DeadLetterInfo, Delivery, Filter, HistoryEvent, Member, Membership, Message,
        MessageState, NackOutcome, NodeRole, NodeStatus, Order, OutgoingMessage, PeekPage, PublishResult, QueueConfig,
        QueueInfo, QueueStats, Receipt, ResolvedQueueConfig, StateDigest, TopicConfig, TopicCopy, TopicInfo,
        TopicPublishResult, TopicStats,
    },
};

/// A response field the protocol says is always set was missing.
pub(crate) fn missing(field: &str) -> ClientError {
    ClientError::Protocol(format!("{field} missing"))
}

/// A wire enum value this client cannot take.
fn unknown(field: &str, value: i32) -> ClientError {
    ClientError::Protocol(format!("{field}: unknown value {value}"))
}

/// A duration in whole ms for the wire, rounded up (so 500 µs is 1 ms, not
/// "unset" or 0) and saturating.
pub(crate) fn duration_ms(duration: Duration) -> u64 {
    let ms = duration.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// A wire duration in ms.
fn ms_duration(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// A wire string where empty means none.
fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

// ---------------------------------------------------------------------------
// Queues
// ---------------------------------------------------------------------------

impl From<Order> for proto::Order {
    fn from(order: Order) -> Self {
        match order {
            Order::Fifo => Self::Fifo,
            Order::Lifo => Self::Lifo,
        }
    }
}

/// A wire order; `None` for ORDER_UNSPECIFIED.
fn order_from_wire(value: i32, field: &str) -> Result<Option<Order>, ClientError> {
    match proto::Order::try_from(value) {
        Ok(proto::Order::Unspecified) => Ok(None),
        Ok(proto::Order::Fifo) => Ok(Some(Order::Fifo)),
        Ok(proto::Order::Lifo) => Ok(Some(Order::Lifo)),
        Err(_) => Err(unknown(field, value)),
    }
}

impl From<QueueConfig> for proto::QueueConfig {
    fn from(c: QueueConfig) -> Self {
        Self {
            order: c.order.map(|o| proto::Order::from(o).into()),
            lease_ms: c.lease.map(duration_ms),
            max_deliveries: c.max_deliveries,
            dead_letter_queue: c.dead_letter_queue,
            message_ttl_ms: c.message_ttl.map(duration_ms),
            max_length: c.max_length,
            max_bytes: c.max_bytes,
            default_delay_ms: c.default_delay.map(duration_ms),
            dedup_window_ms: c.dedup_window.map(duration_ms),
            backoff_base_ms: c.backoff_base.map(duration_ms),
            backoff_max_ms: c.backoff_max.map(duration_ms),
            max_message_bytes: c.max_message_bytes,
        }
    }
}

/// ORDER_UNSPECIFIED reads as "not set".
impl TryFrom<proto::QueueConfig> for QueueConfig {
    type Error = ClientError;

    fn try_from(c: proto::QueueConfig) -> Result<Self, ClientError> {
        let order = match c.order {
            Some(value) => order_from_wire(value, "QueueConfig.order")?,
            None => None,
        };
        Ok(Self {
            order,
            lease: c.lease_ms.map(ms_duration),
            max_deliveries: c.max_deliveries,
            dead_letter_queue: c.dead_letter_queue,
            message_ttl: c.message_ttl_ms.map(ms_duration),
            max_length: c.max_length,
            max_bytes: c.max_bytes,
            default_delay: c.default_delay_ms.map(ms_duration),
            dedup_window: c.dedup_window_ms.map(ms_duration),
            backoff_base: c.backoff_base_ms.map(ms_duration),
            backoff_max: c.backoff_max_ms.map(ms_duration),
            max_message_bytes: c.max_message_bytes,
        })
    }
}

impl From<ResolvedQueueConfig> for proto::QueueConfig {
    fn from(c: ResolvedQueueConfig) -> Self {
        QueueConfig::from(c).into()
    }
}

/// Every field must be set (as in a `QueueInfo`).
impl TryFrom<proto::QueueConfig> for ResolvedQueueConfig {
    type Error = ClientError;

    fn try_from(c: proto::QueueConfig) -> Result<Self, ClientError> {
        fn set<T>(value: Option<T>, field: &str) -> Result<T, ClientError> {
            value.ok_or_else(|| missing(&format!("QueueConfig.{field}")))
        }
        let order = order_from_wire(set(c.order, "order")?, "QueueConfig.order")?;
        Ok(Self {
            order: order.ok_or_else(|| missing("QueueConfig.order"))?,
            lease: ms_duration(set(c.lease_ms, "lease_ms")?),
            max_deliveries: set(c.max_deliveries, "max_deliveries")?,
            dead_letter_queue: non_empty(set(c.dead_letter_queue, "dead_letter_queue")?),
            message_ttl: ms_duration(set(c.message_ttl_ms, "message_ttl_ms")?),
            max_length: set(c.max_length, "max_length")?,
            max_bytes: set(c.max_bytes, "max_bytes")?,
            default_delay: ms_duration(set(c.default_delay_ms, "default_delay_ms")?),
            dedup_window: ms_duration(set(c.dedup_window_ms, "dedup_window_ms")?),
            backoff_base: ms_duration(set(c.backoff_base_ms, "backoff_base_ms")?),
            backoff_max: ms_duration(set(c.backoff_max_ms, "backoff_max_ms")?),
            max_message_bytes: set(c.max_message_bytes, "max_message_bytes")?,
        })
    }
}

impl From<QueueStats> for proto::QueueStats {
    fn from(s: QueueStats) -> Self {
        Self {
            ready: s.ready,
            leased: s.leased,
            delayed: s.delayed,
            dead: s.dead,
            total_bytes: s.total_bytes,
            oldest_ready_age_ms: s.oldest_ready_age_ms,
            published_total: s.published_total,
            delivered_total: s.delivered_total,
            acked_total: s.acked_total,
            nacked_total: s.nacked_total,
            expired_total: s.expired_total,
            dead_lettered_total: s.dead_lettered_total,
            redriven_total: s.redriven_total,
            duplicates_total: s.duplicates_total,
            dedup_evicted_total: s.dedup_evicted_total,
        }
    }
}

impl From<proto::QueueStats> for QueueStats {
    fn from(s: proto::QueueStats) -> Self {
        Self {
            ready: s.ready,
            leased: s.leased,
            delayed: s.delayed,
            dead: s.dead,
            total_bytes: s.total_bytes,
            oldest_ready_age_ms: s.oldest_ready_age_ms,
            published_total: s.published_total,
            delivered_total: s.delivered_total,
            acked_total: s.acked_total,
            nacked_total: s.nacked_total,
            expired_total: s.expired_total,
            dead_lettered_total: s.dead_lettered_total,
            redriven_total: s.redriven_total,
            duplicates_total: s.duplicates_total,
            dedup_evicted_total: s.dedup_evicted_total,
        }
    }
}

impl From<QueueInfo> for proto::QueueInfo {
    fn from(q: QueueInfo) -> Self {
        Self {
            name: q.name,
            config: Some(q.config.into()),
            stats: Some(q.stats.into()),
            created_at_ms: q.created_at_ms,
        }
    }
}

/// The config must be there, fully resolved; absent stats are all zero.
impl TryFrom<proto::QueueInfo> for QueueInfo {
    type Error = ClientError;

    fn try_from(q: proto::QueueInfo) -> Result<Self, ClientError> {
        let config = q.config.ok_or_else(|| missing("QueueInfo.config"))?;
        Ok(Self {
            name: q.name,
            config: config.try_into()?,
            stats: q.stats.unwrap_or_default().into(),
            created_at_ms: q.created_at_ms,
        })
    }
}

// ---------------------------------------------------------------------------
// Publishing and consuming
// ---------------------------------------------------------------------------

/// A Nack request for the wire (unary, batch entry, or a settle on a
/// Consume stream).
pub(crate) fn nack_request(
    receipt: &Receipt,
    delay: Option<Duration>,
    dead_letter: bool,
    reason: &str,
) -> proto::NackRequest {
    proto::NackRequest {
        receipt: Some(receipt.into()),
        delay_ms: delay.map(duration_ms),
        dead_letter,
        reason: reason.to_owned(),
    }
}

/// An ExtendLease request for the wire (unary, batch entry, or a settle).
pub(crate) fn extend_request(receipt: &Receipt, lease: Duration) -> proto::ExtendLeaseRequest {
    proto::ExtendLeaseRequest { receipt: Some(receipt.into()), lease_ms: duration_ms(lease) }
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

impl From<PublishResult> for proto::PublishResult {
    fn from(r: PublishResult) -> Self {
        Self { message_id: r.message_id, duplicate: r.duplicate }
    }
}

impl From<proto::PublishResult> for PublishResult {
    fn from(r: proto::PublishResult) -> Self {
        Self { message_id: r.message_id, duplicate: r.duplicate }
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
        message: message.try_into()?,
        receipt: receipt.into(),
        lease_expires_at_ms: wire.lease_expires_at_ms,
        client: client.clone(),
    })
}

impl From<NackOutcome> for proto::NackResponse {
    fn from(outcome: NackOutcome) -> Self {
        match outcome {
            NackOutcome::Redeliver { visible_at_ms } => {
                Self { outcome: proto::NackOutcome::Redeliver.into(), visible_at_ms }
            }
            NackOutcome::DeadLettered => Self { outcome: proto::NackOutcome::DeadLettered.into(), visible_at_ms: 0 },
        }
    }
}

impl TryFrom<proto::NackResponse> for NackOutcome {
    type Error = ClientError;

    fn try_from(resp: proto::NackResponse) -> Result<Self, ClientError> {
        match proto::NackOutcome::try_from(resp.outcome) {
            Ok(proto::NackOutcome::Redeliver) => Ok(Self::Redeliver { visible_at_ms: resp.visible_at_ms }),
            Ok(proto::NackOutcome::DeadLettered) => Ok(Self::DeadLettered),
            Ok(proto::NackOutcome::Unspecified) | Err(_) => Err(unknown("NackResponse.outcome", resp.outcome)),
        }
    }
}

// ---------------------------------------------------------------------------
// Inspection
// ---------------------------------------------------------------------------

impl From<MessageState> for proto::MessageState {
    fn from(state: MessageState) -> Self {
        match state {
            MessageState::Ready => Self::Ready,
            MessageState::Delayed => Self::Delayed,
            MessageState::Leased => Self::Leased,
            MessageState::Dead => Self::Dead,
        }
    }
}

/// MESSAGE_STATE_UNSPECIFIED is "any state", not a state.
impl TryFrom<proto::MessageState> for MessageState {
    type Error = ClientError;

    fn try_from(state: proto::MessageState) -> Result<Self, ClientError> {
        match state {
            proto::MessageState::Ready => Ok(Self::Ready),
            proto::MessageState::Delayed => Ok(Self::Delayed),
            proto::MessageState::Leased => Ok(Self::Leased),
            proto::MessageState::Dead => Ok(Self::Dead),
            proto::MessageState::Unspecified => Err(unknown("MessageView.state", state.into())),
        }
    }
}

/// Peek's filter: `None` = any state.
pub(crate) fn state_filter(state: Option<MessageState>) -> proto::MessageState {
    state.map_or(proto::MessageState::Unspecified, Into::into)
}

impl From<DeadLetterInfo> for proto::DeadLetterInfo {
    fn from(d: DeadLetterInfo) -> Self {
        Self {
            source_queue: d.source_queue,
            source_message_id: d.source_message_id,
            delivery_count: d.delivery_count,
            reason: d.reason,
            dead_lettered_at_ms: d.dead_lettered_at_ms,
        }
    }
}

impl From<proto::DeadLetterInfo> for DeadLetterInfo {
    fn from(d: proto::DeadLetterInfo) -> Self {
        Self {
            source_queue: d.source_queue,
            source_message_id: d.source_message_id,
            delivery_count: d.delivery_count,
            reason: d.reason,
            dead_lettered_at_ms: d.dead_lettered_at_ms,
        }
    }
}

impl From<HistoryEvent> for proto::HistoryEvent {
    fn from(event: HistoryEvent) -> Self {
        let at_ms = event.at_ms();
        let kind = match event {
            HistoryEvent::Published { visible_at_ms, .. } => Some(Kind::Published(h::Published { visible_at_ms })),
            HistoryEvent::Delivered { delivery_count, lease_expires_at_ms, .. } => {
                Some(Kind::Delivered(h::Delivered { delivery_count, lease_expires_at_ms }))
            }
            HistoryEvent::LeaseExtended { delivery_count, lease_expires_at_ms, .. } => {
                Some(Kind::LeaseExtended(h::LeaseExtended { delivery_count, lease_expires_at_ms }))
            }
            HistoryEvent::LeaseExpired { delivery_count, .. } => {
                Some(Kind::LeaseExpired(h::LeaseExpired { delivery_count }))
            }
            HistoryEvent::Released { delivery_count, .. } => Some(Kind::Released(h::Released { delivery_count })),
            HistoryEvent::Nacked { delivery_count, reason, .. } => {
                Some(Kind::Nacked(h::Nacked { delivery_count, reason }))
            }
            HistoryEvent::Requeued { visible_at_ms, .. } => Some(Kind::Requeued(h::Requeued { visible_at_ms })),
            HistoryEvent::DeadLettered { reason, target_queue, .. } => {
                Some(Kind::DeadLettered(h::DeadLettered { reason, target_queue: target_queue.unwrap_or_default() }))
            }
            HistoryEvent::Redriven { from_queue, .. } => Some(Kind::Redriven(h::Redriven { from_queue })),
            HistoryEvent::Unknown { .. } => None,
        };
        Self { at_ms, kind }
    }
}

/// An event without a kind this client knows (a newer server's) is
/// [`HistoryEvent::Unknown`].
impl From<proto::HistoryEvent> for HistoryEvent {
    fn from(event: proto::HistoryEvent) -> Self {
        let at_ms = event.at_ms;
        match event.kind {
            Some(Kind::Published(k)) => Self::Published { at_ms, visible_at_ms: k.visible_at_ms },
            Some(Kind::Delivered(k)) => {
                Self::Delivered { at_ms, delivery_count: k.delivery_count, lease_expires_at_ms: k.lease_expires_at_ms }
            }
            Some(Kind::LeaseExtended(k)) => Self::LeaseExtended {
                at_ms,
                delivery_count: k.delivery_count,
                lease_expires_at_ms: k.lease_expires_at_ms,
            },
            Some(Kind::LeaseExpired(k)) => Self::LeaseExpired { at_ms, delivery_count: k.delivery_count },
            Some(Kind::Released(k)) => Self::Released { at_ms, delivery_count: k.delivery_count },
            Some(Kind::Nacked(k)) => Self::Nacked { at_ms, delivery_count: k.delivery_count, reason: k.reason },
            Some(Kind::Requeued(k)) => Self::Requeued { at_ms, visible_at_ms: k.visible_at_ms },
            Some(Kind::DeadLettered(k)) => {
                Self::DeadLettered { at_ms, reason: k.reason, target_queue: non_empty(k.target_queue) }
            }
            Some(Kind::Redriven(k)) => Self::Redriven { at_ms, from_queue: k.from_queue },
            None => Self::Unknown { at_ms },
        }
    }
}

impl From<Message> for proto::MessageView {
    fn from(m: Message) -> Self {
        Self {
            message_id: m.message_id,
            body: m.body,
            attributes: m.attributes,
            published_at_ms: m.published_at_ms,
            delivery_count: m.delivery_count,
            state: proto::MessageState::from(m.state).into(),
            visible_at_ms: m.visible_at_ms,
            lease_expires_at_ms: m.lease_expires_at_ms,
            expires_at_ms: m.expires_at_ms,
            idempotency_key: m.idempotency_key.unwrap_or_default(),
            dead_letter: m.dead_letter.map(Into::into),
            history: m.history.into_iter().map(Into::into).collect(),
        }
    }
}

/// The state must be one this client knows.
impl TryFrom<proto::MessageView> for Message {
    type Error = ClientError;

    fn try_from(m: proto::MessageView) -> Result<Self, ClientError> {
        let state = proto::MessageState::try_from(m.state).map_err(|_| unknown("MessageView.state", m.state))?;
        Ok(Self {
            message_id: m.message_id,
            body: m.body,
            attributes: m.attributes,
            state: state.try_into()?,
            delivery_count: m.delivery_count,
            published_at_ms: m.published_at_ms,
            visible_at_ms: m.visible_at_ms,
            lease_expires_at_ms: m.lease_expires_at_ms,
            expires_at_ms: m.expires_at_ms,
            idempotency_key: non_empty(m.idempotency_key),
            dead_letter: m.dead_letter.map(Into::into),
            history: m.history.into_iter().map(Into::into).collect(),
        })
    }
}

impl From<PeekPage> for proto::PeekResponse {
    fn from(page: PeekPage) -> Self {
        Self {
            messages: page.messages.into_iter().map(Into::into).collect(),
            next_after_id: page.next_after_id.unwrap_or(0),
        }
    }
}

impl TryFrom<proto::PeekResponse> for PeekPage {
    type Error = ClientError;

    fn try_from(page: proto::PeekResponse) -> Result<Self, ClientError> {
        Ok(Self {
            messages: page.messages.into_iter().map(Message::try_from).collect::<Result<_, _>>()?,
            next_after_id: (page.next_after_id != 0).then_some(page.next_after_id),
        })
    }
}

// ---------------------------------------------------------------------------
// Cluster
// ---------------------------------------------------------------------------

impl From<NodeRole> for proto::NodeRole {
    fn from(role: NodeRole) -> Self {
        match role {
            NodeRole::Leader => Self::Leader,
            NodeRole::Follower => Self::Follower,
            NodeRole::Candidate => Self::Candidate,
            NodeRole::Learner => Self::Learner,
            NodeRole::Unknown => Self::Unspecified,
        }
    }
}

impl From<proto::NodeRole> for NodeRole {
    fn from(role: proto::NodeRole) -> Self {
        match role {
            proto::NodeRole::Leader => Self::Leader,
            proto::NodeRole::Follower => Self::Follower,
            proto::NodeRole::Candidate => Self::Candidate,
            proto::NodeRole::Learner => Self::Learner,
            proto::NodeRole::Unspecified => Self::Unknown,
        }
    }
}

impl From<NodeStatus> for proto::NodeStatus {
    fn from(n: NodeStatus) -> Self {
        Self {
            node_id: n.node_id,
            address: n.address,
            role: proto::NodeRole::from(n.role).into(),
            voter: n.voter,
            last_log_index: n.last_log_index,
            committed_index: n.committed_index,
            last_applied_index: n.last_applied_index,
            reachable: n.reachable,
            matched_index: n.matched_index,
            snapshot_index: n.snapshot_index,
            last_contact_ms: n.last_contact.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

/// A role this client does not know is [`NodeRole::Unknown`].
impl From<proto::NodeStatus> for NodeStatus {
    fn from(n: proto::NodeStatus) -> Self {
        Self {
            node_id: n.node_id,
            address: n.address,
            role: proto::NodeRole::try_from(n.role).unwrap_or(proto::NodeRole::Unspecified).into(),
            voter: n.voter,
            last_log_index: n.last_log_index,
            committed_index: n.committed_index,
            last_applied_index: n.last_applied_index,
            reachable: n.reachable,
            matched_index: n.matched_index,
            snapshot_index: n.snapshot_index,
            last_contact: n.last_contact_ms.map(std::time::Duration::from_millis),
        }
    }
}

impl From<StateDigest> for proto::StateDigest {
    fn from(d: StateDigest) -> Self {
        Self { applied_index: d.applied_index, digest: d.digest, full_digest: d.full_digest.unwrap_or_default() }
    }
}

impl From<proto::StateDigest> for StateDigest {
    fn from(d: proto::StateDigest) -> Self {
        Self { applied_index: d.applied_index, digest: d.digest, full_digest: non_empty(d.full_digest) }
    }
}

impl From<ClusterStatus> for proto::StatusResponse {
    fn from(s: ClusterStatus) -> Self {
        Self {
            leader_id: s.leader_id,
            leader_address: s.leader_address.unwrap_or_default(),
            term: s.term,
            nodes: s.nodes.into_iter().map(Into::into).collect(),
            node_id: s.node_id,
            digest: s.digest.map(Into::into),
            version: s.version,
        }
    }
}

impl From<proto::StatusResponse> for ClusterStatus {
    fn from(s: proto::StatusResponse) -> Self {
        Self {
            node_id: s.node_id,
            leader_id: s.leader_id,
            leader_address: non_empty(s.leader_address),
            term: s.term,
            nodes: s.nodes.into_iter().map(Into::into).collect(),
            digest: s.digest.map(Into::into),
            version: s.version,
        }
    }
}

impl From<Member> for proto::Member {
    fn from(m: Member) -> Self {
        Self { node_id: m.node_id, address: m.address, peer_address: m.peer_address }
    }
}

impl From<proto::Member> for Member {
    fn from(m: proto::Member) -> Self {
        Self { node_id: m.node_id, address: m.address, peer_address: m.peer_address }
    }
}

impl From<Membership> for proto::Membership {
    fn from(m: Membership) -> Self {
        Self {
            voters: m.voters.into_iter().map(Into::into).collect(),
            learners: m.learners.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<proto::Membership> for Membership {
    fn from(m: proto::Membership) -> Self {
        Self {
            voters: m.voters.into_iter().map(Into::into).collect(),
            learners: m.learners.into_iter().map(Into::into).collect(),
        }
    }
}

// ---------------------------------------------------------------------------
// Topics
// ---------------------------------------------------------------------------

impl From<TopicConfig> for proto::TopicConfig {
    fn from(c: TopicConfig) -> Self {
        Self { require_route: c.require_route, dedup_window_ms: c.dedup_window.map(duration_ms) }
    }
}

impl From<Filter> for proto::Filter {
    fn from(f: Filter) -> Self {
        use proto::filter_condition::Test;
        let conditions = f
            .conditions
            .into_iter()
            .map(|c| {
                let (key, test) = match c {
                    Condition::Equals(k, v) => (k, Test::Equals(v)),
                    Condition::OneOf(k, values) => (k, Test::OneOf(proto::FilterValues { values })),
                    Condition::Prefix(k, p) => (k, Test::Prefix(p)),
                    Condition::Exists(k) => (k, Test::Exists(true)),
                    Condition::NotExists(k) => (k, Test::NotExists(true)),
                };
                proto::FilterCondition { key, test: Some(test) }
            })
            .collect();
        Self { conditions }
    }
}

impl TryFrom<proto::Filter> for Filter {
    type Error = ClientError;

    fn try_from(f: proto::Filter) -> Result<Self, ClientError> {
        use proto::filter_condition::Test;
        let conditions = f
            .conditions
            .into_iter()
            .map(|c| match c.test {
                Some(Test::Equals(v)) => Ok(Condition::Equals(c.key, v)),
                Some(Test::OneOf(values)) => Ok(Condition::OneOf(c.key, values.values)),
                Some(Test::Prefix(p)) => Ok(Condition::Prefix(c.key, p)),
                Some(Test::Exists(true)) => Ok(Condition::Exists(c.key)),
                Some(Test::NotExists(true)) => Ok(Condition::NotExists(c.key)),
                _ => Err(ClientError::Protocol(format!("filter condition on {:?} has no test", c.key))),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { conditions })
    }
}

impl TryFrom<proto::TopicInfo> for TopicInfo {
    type Error = ClientError;

    fn try_from(t: proto::TopicInfo) -> Result<Self, ClientError> {
        let config = t.config.ok_or_else(|| missing("TopicInfo.config"))?;
        let stats = t.stats.unwrap_or_default();
        let bindings = t
            .bindings
            .into_iter()
            .map(|b| Ok(Binding { queue: b.queue, filter: b.filter.unwrap_or_default().try_into()? }))
            .collect::<Result<_, ClientError>>()?;
        Ok(Self {
            name: t.name,
            require_route: config.require_route,
            dedup_window: Duration::from_millis(config.dedup_window_ms.unwrap_or_default()),
            stats: TopicStats {
                published_total: stats.published_total,
                routed_copies_total: stats.routed_copies_total,
                unrouted_total: stats.unrouted_total,
                duplicates_total: stats.duplicates_total,
                dedup_evicted_total: stats.dedup_evicted_total,
            },
            bindings,
            created_at_ms: t.created_at_ms,
        })
    }
}

impl From<proto::TopicPublishResult> for TopicPublishResult {
    fn from(r: proto::TopicPublishResult) -> Self {
        Self {
            message_id: r.message_id,
            duplicate: r.duplicate,
            copies: r
                .copies
                .into_iter()
                .map(|c| TopicCopy { queue: c.queue, message_id: c.message_id, duplicate: c.duplicate })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bytes::Bytes;

    use super::*;

    /// `value` to the wire and back is `value` again.
    fn round_trip<T, W>(value: T) -> T
    where
        T: Clone + Into<W> + TryFrom<W> + std::fmt::Debug,
        <T as TryFrom<W>>::Error: std::fmt::Debug,
    {
        T::try_from(value.into()).expect("converts back")
    }

    fn config() -> ResolvedQueueConfig {
        ResolvedQueueConfig {
            order: Order::Lifo,
            lease: Duration::from_secs(45),
            max_deliveries: 5,
            dead_letter_queue: Some("orders.dlq".into()),
            message_ttl: Duration::from_secs(3_600),
            max_length: 1_000,
            max_bytes: 1 << 20,
            default_delay: Duration::from_millis(250),
            dedup_window: Duration::from_secs(600),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            max_message_bytes: 2_048,
        }
    }

    fn message() -> Message {
        Message {
            message_id: 42,
            body: Bytes::from_static(b"hello"),
            attributes: HashMap::from([("k".to_owned(), "v".to_owned())]),
            state: MessageState::Dead,
            delivery_count: 3,
            published_at_ms: 1_000,
            visible_at_ms: 0,
            lease_expires_at_ms: 0,
            expires_at_ms: 9_000,
            idempotency_key: Some("key-1".into()),
            dead_letter: Some(DeadLetterInfo {
                source_queue: "orders".into(),
                source_message_id: 7,
                delivery_count: 3,
                reason: "boom".into(),
                dead_lettered_at_ms: 5_000,
            }),
            history: vec![
                HistoryEvent::Published { at_ms: 1_000, visible_at_ms: 1_000 },
                HistoryEvent::Delivered { at_ms: 2_000, delivery_count: 1, lease_expires_at_ms: 32_000 },
                HistoryEvent::DeadLettered { at_ms: 5_000, reason: "boom".into(), target_queue: None },
            ],
        }
    }

    fn status() -> ClusterStatus {
        ClusterStatus {
            node_id: 2,
            leader_id: Some(1),
            leader_address: Some("n1:7001".into()),
            term: 4,
            nodes: vec![NodeStatus {
                node_id: 1,
                address: "n1:7001".into(),
                role: NodeRole::Leader,
                voter: true,
                last_log_index: 0,
                committed_index: 0,
                last_applied_index: 0,
                reachable: true,
                matched_index: Some(9),
                snapshot_index: 0,
                last_contact: Some(std::time::Duration::from_millis(12)),
            }],
            digest: Some(StateDigest { applied_index: 8, digest: "ab".repeat(16), full_digest: None }),
            version: "0.1.0".into(),
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
    fn queue_config_round_trips_and_sets_only_what_is_given() {
        let partial = QueueConfig::default().lease(Duration::from_millis(1_500)).dead_letter_queue("");
        let wire = proto::QueueConfig::from(partial.clone());
        assert_eq!(
            wire,
            proto::QueueConfig {
                lease_ms: Some(1_500),
                dead_letter_queue: Some(String::new()),
                ..proto::QueueConfig::default()
            }
        );
        assert_eq!(round_trip::<_, proto::QueueConfig>(partial.clone()), partial);
        let full = QueueConfig::from(config());
        assert_eq!(round_trip::<_, proto::QueueConfig>(full.clone()), full);
        let lifo = proto::QueueConfig { order: Some(proto::Order::Lifo.into()), ..Default::default() };
        assert_eq!(QueueConfig::try_from(lifo).unwrap().order, Some(Order::Lifo));
        let unspecified = proto::QueueConfig { order: Some(0), ..Default::default() };
        assert_eq!(QueueConfig::try_from(unspecified).unwrap(), QueueConfig::default());
        let bad = proto::QueueConfig { order: Some(9), ..Default::default() };
        assert!(matches!(QueueConfig::try_from(bad), Err(ClientError::Protocol(_))));
    }

    #[test]
    fn resolved_config_round_trips_and_needs_every_field() {
        assert_eq!(round_trip::<_, proto::QueueConfig>(config()), config());
        let parked = ResolvedQueueConfig { dead_letter_queue: None, ..config() };
        let wire = proto::QueueConfig::from(parked.clone());
        assert_eq!(wire.dead_letter_queue.as_deref(), Some(""), "none is sent as empty");
        assert_eq!(ResolvedQueueConfig::try_from(wire.clone()).unwrap(), parked);
        let err = ResolvedQueueConfig::try_from(proto::QueueConfig { backoff_max_ms: None, ..wire.clone() });
        assert!(matches!(err, Err(ClientError::Protocol(ref m)) if m.contains("backoff_max_ms")), "{err:?}");
        let err = ResolvedQueueConfig::try_from(proto::QueueConfig { order: Some(0), ..wire });
        assert!(matches!(err, Err(ClientError::Protocol(ref m)) if m.contains("order")), "{err:?}");
    }

    #[test]
    fn queue_info_and_stats_round_trip() {
        let stats = QueueStats { ready: 3, published_total: 7, dedup_evicted_total: 1, ..QueueStats::default() };
        assert_eq!(QueueStats::from(proto::QueueStats::from(stats)), stats);
        let info = QueueInfo { name: "orders".into(), config: config(), stats, created_at_ms: 11 };
        assert_eq!(round_trip::<_, proto::QueueInfo>(info.clone()), info);
        let no_stats = proto::QueueInfo { stats: None, ..info.clone().into() };
        assert_eq!(QueueInfo::try_from(no_stats).unwrap().stats, QueueStats::default());
        let no_config = proto::QueueInfo { config: None, ..info.into() };
        assert!(matches!(QueueInfo::try_from(no_config), Err(ClientError::Protocol(_))));
    }

    #[test]
    fn publish_result_round_trips() {
        let result = PublishResult { message_id: 9, duplicate: true };
        assert_eq!(PublishResult::from(proto::PublishResult::from(result)), result);
    }

    #[test]
    fn outgoing_message_goes_to_the_wire_with_its_key() {
        let m = OutgoingMessage::new("hello")
            .with_attribute("k", "vv")
            .with_delay(Duration::from_secs(2))
            .with_idempotency_key("key");
        let wire = publish_message(m);
        assert_eq!(wire.body, Bytes::from_static(b"hello"));
        assert_eq!(wire.delay_ms, Some(2000));
        assert_eq!(wire.idempotency_key, "key");
        assert_eq!(wire.attributes["k"], "vv");
    }

    #[test]
    fn receipt_round_trips() {
        let receipt = Receipt { queue: "q".into(), message_id: 3, delivery_count: 2 };
        assert_eq!(Receipt::from(proto::Receipt::from(&receipt)), receipt);
    }

    #[test]
    fn nack_outcome_round_trips() {
        for outcome in [NackOutcome::Redeliver { visible_at_ms: 77 }, NackOutcome::DeadLettered] {
            assert_eq!(round_trip::<_, proto::NackResponse>(outcome), outcome);
        }
        let unspecified = proto::NackResponse { outcome: 0, visible_at_ms: 0 };
        assert!(matches!(NackOutcome::try_from(unspecified), Err(ClientError::Protocol(_))));
    }

    #[test]
    fn message_state_round_trips_and_any_is_no_state() {
        for state in [MessageState::Ready, MessageState::Delayed, MessageState::Leased, MessageState::Dead] {
            assert_eq!(round_trip::<_, proto::MessageState>(state), state);
            assert_eq!(state_filter(Some(state)), proto::MessageState::from(state));
        }
        assert_eq!(state_filter(None), proto::MessageState::Unspecified);
        assert!(MessageState::try_from(proto::MessageState::Unspecified).is_err());
    }

    #[test]
    fn dead_letter_info_round_trips() {
        let info = message().dead_letter.unwrap();
        assert_eq!(DeadLetterInfo::from(proto::DeadLetterInfo::from(info.clone())), info);
    }

    #[test]
    fn history_events_round_trip() {
        let events = [
            HistoryEvent::Published { at_ms: 1, visible_at_ms: 2 },
            HistoryEvent::Delivered { at_ms: 3, delivery_count: 1, lease_expires_at_ms: 4 },
            HistoryEvent::LeaseExtended { at_ms: 5, delivery_count: 1, lease_expires_at_ms: 6 },
            HistoryEvent::LeaseExpired { at_ms: 7, delivery_count: 1 },
            HistoryEvent::Released { at_ms: 8, delivery_count: 2 },
            HistoryEvent::Nacked { at_ms: 9, delivery_count: 3, reason: "boom".into() },
            HistoryEvent::Requeued { at_ms: 10, visible_at_ms: 11 },
            HistoryEvent::DeadLettered { at_ms: 12, reason: "r".into(), target_queue: Some("dlq".into()) },
            HistoryEvent::DeadLettered { at_ms: 13, reason: "r".into(), target_queue: None },
            HistoryEvent::Redriven { at_ms: 14, from_queue: "dlq".into() },
            HistoryEvent::Unknown { at_ms: 15 },
        ];
        for event in events {
            assert_eq!(HistoryEvent::from(proto::HistoryEvent::from(event.clone())), event);
        }
        let parked =
            proto::HistoryEvent::from(HistoryEvent::DeadLettered { at_ms: 1, reason: "r".into(), target_queue: None });
        assert!(matches!(parked.kind, Some(Kind::DeadLettered(ref k)) if k.target_queue.is_empty()));
        assert_eq!(
            HistoryEvent::from(proto::HistoryEvent { at_ms: 16, kind: None }),
            HistoryEvent::Unknown { at_ms: 16 }
        );
    }

    #[test]
    fn message_round_trips() {
        assert_eq!(round_trip::<_, proto::MessageView>(message()), message());
        let plain = Message { idempotency_key: None, dead_letter: None, history: vec![], ..message() };
        let wire = proto::MessageView::from(plain.clone());
        assert_eq!(wire.idempotency_key, "");
        assert_eq!(Message::try_from(wire.clone()).unwrap(), plain);
        for bad_state in [0, 99] {
            let bad = proto::MessageView { state: bad_state, ..wire.clone() };
            assert!(matches!(Message::try_from(bad), Err(ClientError::Protocol(_))), "state {bad_state}");
        }
    }

    #[test]
    fn peek_page_round_trips() {
        let more = PeekPage { messages: vec![message()], next_after_id: Some(42) };
        assert_eq!(round_trip::<_, proto::PeekResponse>(more.clone()), more);
        let last = PeekPage { messages: vec![], next_after_id: None };
        assert_eq!(proto::PeekResponse::from(last.clone()).next_after_id, 0);
        assert_eq!(round_trip::<_, proto::PeekResponse>(last.clone()), last);
    }

    #[test]
    fn node_role_round_trips_and_unknown_values_are_unknown() {
        for role in [NodeRole::Leader, NodeRole::Follower, NodeRole::Candidate, NodeRole::Learner, NodeRole::Unknown] {
            assert_eq!(NodeRole::from(proto::NodeRole::from(role)), role);
        }
        let wire = proto::NodeStatus { role: 99, ..proto::NodeStatus::default() };
        assert_eq!(NodeStatus::from(wire).role, NodeRole::Unknown);
    }

    #[test]
    fn node_status_round_trips() {
        let node = status().nodes.remove(0);
        assert_eq!(NodeStatus::from(proto::NodeStatus::from(node.clone())), node);
    }

    #[test]
    fn state_digest_round_trips() {
        for full_digest in [None, Some("cd".repeat(16))] {
            let digest = StateDigest { applied_index: 3, digest: "ab".repeat(16), full_digest };
            assert_eq!(StateDigest::from(proto::StateDigest::from(digest.clone())), digest);
        }
    }

    #[test]
    fn cluster_status_round_trips() {
        assert_eq!(ClusterStatus::from(proto::StatusResponse::from(status())), status());
        let leaderless = ClusterStatus { leader_id: None, leader_address: None, digest: None, ..status() };
        let wire = proto::StatusResponse::from(leaderless.clone());
        assert_eq!((wire.leader_id, wire.leader_address.as_str()), (None, ""));
        assert_eq!(ClusterStatus::from(wire), leaderless);
    }

    #[test]
    fn membership_round_trips() {
        let member =
            |node_id| Member { node_id, address: format!("n{node_id}:1"), peer_address: format!("n{node_id}:2") };
        assert_eq!(Member::from(proto::Member::from(member(1))), member(1));
        let membership = Membership { voters: vec![member(1), member(2)], learners: vec![member(4)] };
        assert_eq!(Membership::from(proto::Membership::from(membership.clone())), membership);
    }
}
