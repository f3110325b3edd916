//! Conversions between wire types (`raftq_proto::v1`) and the state
//! machine's types (`raftq_core`). The only place that knows both.

use std::collections::BTreeMap;

use raftq_core as core;
use raftq_proto::v1 as pb;
use tonic::Status;

fn invalid(field: &str, reason: impl std::fmt::Display) -> Status {
    crate::error::invalid(field, reason)
}

pub fn order_from_pb(value: i32, field: &str) -> Result<Option<core::Order>, Status> {
    match pb::Order::try_from(value) {
        Ok(pb::Order::Unspecified) => Ok(None),
        Ok(pb::Order::Fifo) => Ok(Some(core::Order::Fifo)),
        Ok(pb::Order::Lifo) => Ok(Some(core::Order::Lifo)),
        Err(_) => Err(invalid(field, format!("unknown order {value}"))),
    }
}

/// A wire config (unset = default / unchanged) as a core update. An empty
/// `dead_letter_queue` clears it.
pub fn config_update(config: Option<pb::QueueConfig>) -> Result<core::ConfigUpdate, Status> {
    let Some(c) = config else { return Ok(core::ConfigUpdate::default()) };
    let order = match c.order {
        Some(value) => order_from_pb(value, "config.order")?,
        None => None,
    };
    Ok(core::ConfigUpdate {
        order,
        lease_ms: c.lease_ms,
        max_deliveries: c.max_deliveries,
        dead_letter_queue: c.dead_letter_queue.map(|q| (!q.is_empty()).then_some(q)),
        message_ttl_ms: c.message_ttl_ms,
        max_length: c.max_length,
        max_bytes: c.max_bytes,
        default_delay_ms: c.default_delay_ms,
        dedup_window_ms: c.dedup_window_ms,
        backoff_base_ms: c.backoff_base_ms,
        backoff_max_ms: c.backoff_max_ms,
        max_message_bytes: c.max_message_bytes,
    })
}

pub fn config_to_pb(c: &core::QueueConfig) -> pb::QueueConfig {
    let order = match c.order {
        core::Order::Fifo => pb::Order::Fifo,
        core::Order::Lifo => pb::Order::Lifo,
    };
    pb::QueueConfig {
        order: Some(order as i32),
        lease_ms: Some(c.lease_ms),
        max_deliveries: Some(c.max_deliveries),
        dead_letter_queue: Some(c.dead_letter_queue.clone().unwrap_or_default()),
        message_ttl_ms: Some(c.message_ttl_ms),
        max_length: Some(c.max_length),
        max_bytes: Some(c.max_bytes),
        default_delay_ms: Some(c.default_delay_ms),
        dedup_window_ms: Some(c.dedup_window_ms),
        backoff_base_ms: Some(c.backoff_base_ms),
        backoff_max_ms: Some(c.backoff_max_ms),
        max_message_bytes: Some(c.max_message_bytes),
    }
}

pub fn stats_to_pb(s: &core::QueueStats) -> pb::QueueStats {
    pb::QueueStats {
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

pub fn queue_info_to_pb(info: &core::QueueInfo) -> pb::QueueInfo {
    pb::QueueInfo {
        name: info.name.clone(),
        config: Some(config_to_pb(&info.config)),
        stats: Some(stats_to_pb(&info.stats)),
        created_at_ms: info.created_at_ms,
    }
}

pub fn new_message(m: pb::PublishMessage) -> core::NewMessage {
    core::NewMessage {
        body: m.body,
        attributes: m.attributes.into_iter().collect::<BTreeMap<_, _>>(),
        delay_ms: m.delay_ms,
        idempotency_key: (!m.idempotency_key.is_empty()).then_some(m.idempotency_key),
    }
}

pub fn topic_config_from_pb(config: Option<pb::TopicConfig>) -> core::TopicConfig {
    let config = config.unwrap_or_default();
    let defaults = core::TopicConfig::default();
    core::TopicConfig {
        require_route: config.require_route,
        dedup_window_ms: config.dedup_window_ms.unwrap_or(defaults.dedup_window_ms),
    }
}

pub fn topic_config_to_pb(c: &core::TopicConfig) -> pb::TopicConfig {
    pb::TopicConfig { require_route: c.require_route, dedup_window_ms: Some(c.dedup_window_ms) }
}

/// A filter from the wire: each condition must set exactly one test.
pub fn filter_from_pb(filter: Option<pb::Filter>) -> Result<core::Filter, Status> {
    use pb::filter_condition::Test as T;
    let conditions = filter.map(|f| f.conditions).unwrap_or_default();
    if conditions.len() > core::limits::FILTER_CONDITIONS_MAX {
        return Err(invalid(
            "filter.conditions",
            format!("{} conditions exceeds {}", conditions.len(), core::limits::FILTER_CONDITIONS_MAX),
        ));
    }
    let mut out = Vec::with_capacity(conditions.len());
    for (i, condition) in conditions.into_iter().enumerate() {
        let field = format!("filter.conditions[{i}]");
        let test = match condition.test {
            Some(T::Equals(value)) => core::Test::Equals(value),
            Some(T::OneOf(values)) => core::Test::OneOf(values.values),
            Some(T::Prefix(prefix)) => core::Test::Prefix(prefix),
            Some(T::Exists(true)) => core::Test::Exists,
            Some(T::NotExists(true)) => core::Test::NotExists,
            Some(T::Exists(false) | T::NotExists(false)) | None => {
                return Err(invalid(&field, "set one test: equals, one_of, prefix, exists or not_exists (true)"));
            }
        };
        out.push(core::Condition { key: condition.key, test });
    }
    Ok(core::Filter { conditions: out })
}

pub fn filter_to_pb(filter: &core::Filter) -> pb::Filter {
    use pb::filter_condition::Test as T;
    let conditions = filter
        .conditions
        .iter()
        .map(|c| pb::FilterCondition {
            key: c.key.clone(),
            test: Some(match &c.test {
                core::Test::Equals(value) => T::Equals(value.clone()),
                core::Test::OneOf(values) => T::OneOf(pb::FilterValues { values: values.clone() }),
                core::Test::Prefix(prefix) => T::Prefix(prefix.clone()),
                core::Test::Exists => T::Exists(true),
                core::Test::NotExists => T::NotExists(true),
            }),
        })
        .collect();
    pb::Filter { conditions }
}

pub fn topic_info_to_pb(info: &core::TopicInfo) -> pb::TopicInfo {
    let s = &info.stats;
    pb::TopicInfo {
        name: info.name.clone(),
        config: Some(topic_config_to_pb(&info.config)),
        stats: Some(pb::TopicStats {
            published_total: s.published_total,
            routed_copies_total: s.routed_copies_total,
            unrouted_total: s.unrouted_total,
            duplicates_total: s.duplicates_total,
            dedup_evicted_total: s.dedup_evicted_total,
        }),
        bindings: info
            .bindings
            .iter()
            .map(|b| pb::Binding { queue: b.queue.clone(), filter: Some(filter_to_pb(&b.filter)) })
            .collect(),
        created_at_ms: info.created_at_ms,
    }
}

pub fn topic_result_to_pb(r: &core::TopicPublishResult) -> pb::TopicPublishResult {
    pb::TopicPublishResult {
        message_id: r.id,
        duplicate: r.duplicate,
        copies: r
            .copies
            .iter()
            .map(|c| pb::TopicCopy { queue: c.queue.clone(), message_id: c.id, duplicate: c.duplicate })
            .collect(),
    }
}

pub fn receipt_from_pb(receipt: Option<pb::Receipt>, field: &str) -> Result<core::Receipt, Status> {
    Ok(receipt_of(receipt.ok_or_else(|| invalid(field, "missing"))?))
}

pub fn receipt_of(r: pb::Receipt) -> core::Receipt {
    core::Receipt { queue: r.queue, message_id: r.message_id, attempt: r.delivery_count }
}

pub fn receipt_to_pb(r: &core::Receipt) -> pb::Receipt {
    pb::Receipt { queue: r.queue.clone(), message_id: r.message_id, delivery_count: r.attempt }
}

pub fn state_filter(value: i32) -> Result<core::StateFilter, Status> {
    match pb::MessageState::try_from(value) {
        Ok(pb::MessageState::Unspecified) => Ok(core::StateFilter::Any),
        Ok(pb::MessageState::Ready) => Ok(core::StateFilter::Ready),
        Ok(pb::MessageState::Delayed) => Ok(core::StateFilter::Delayed),
        Ok(pb::MessageState::Leased) => Ok(core::StateFilter::Leased),
        Ok(pb::MessageState::Dead) => Ok(core::StateFilter::Dead),
        Err(_) => Err(invalid("state", format!("unknown message state {value}"))),
    }
}

fn history_to_pb(event: &core::HistoryEvent) -> pb::HistoryEvent {
    use pb::history_event::{self as h, Kind};
    let (at_ms, kind) = match event {
        core::HistoryEvent::Delivered { at_ms, attempt, lease_expires_at_ms } => (
            *at_ms,
            Kind::Delivered(h::Delivered { delivery_count: *attempt, lease_expires_at_ms: *lease_expires_at_ms }),
        ),
        core::HistoryEvent::LeaseExtended { at_ms, attempt, lease_expires_at_ms } => (
            *at_ms,
            Kind::LeaseExtended(h::LeaseExtended {
                delivery_count: *attempt,
                lease_expires_at_ms: *lease_expires_at_ms,
            }),
        ),
        core::HistoryEvent::LeaseExpired { at_ms, attempt } => {
            (*at_ms, Kind::LeaseExpired(h::LeaseExpired { delivery_count: *attempt }))
        }
        core::HistoryEvent::Nacked { at_ms, attempt, reason } => {
            (*at_ms, Kind::Nacked(h::Nacked { delivery_count: *attempt, reason: reason.clone() }))
        }
        core::HistoryEvent::Retry { at_ms, visible_at_ms } => {
            (*at_ms, Kind::Requeued(h::Requeued { visible_at_ms: *visible_at_ms }))
        }
        core::HistoryEvent::DeadLettered { at_ms, reason, target_queue } => (
            *at_ms,
            Kind::DeadLettered(h::DeadLettered {
                reason: reason.clone(),
                target_queue: target_queue.clone().unwrap_or_default(),
            }),
        ),
        core::HistoryEvent::Redriven { at_ms, from_queue } => {
            (*at_ms, Kind::Redriven(h::Redriven { from_queue: from_queue.clone().unwrap_or_default() }))
        }
    };
    pb::HistoryEvent { at_ms, kind: Some(kind) }
}

/// A stored message as the wire shows it; `with_history` adds its events.
pub fn message_to_pb(m: &core::Message, with_history: bool) -> pb::MessageView {
    let (state, visible_at_ms, lease_expires_at_ms) = match m.state {
        core::MessageState::Ready => (pb::MessageState::Ready, 0, 0),
        core::MessageState::Delayed { visible_at_ms } => (pb::MessageState::Delayed, visible_at_ms, 0),
        core::MessageState::Leased { lease_expires_at_ms, .. } => (pb::MessageState::Leased, 0, lease_expires_at_ms),
        core::MessageState::Dead => (pb::MessageState::Dead, 0, 0),
    };
    let mut history: Vec<pb::HistoryEvent> = Vec::new();
    if with_history {
        let published = pb::history_event::Published { visible_at_ms: m.published_at_ms };
        history.push(pb::HistoryEvent {
            at_ms: m.published_at_ms,
            kind: Some(pb::history_event::Kind::Published(published)),
        });
        history.extend(m.history.iter().map(history_to_pb));
    }
    pb::MessageView {
        message_id: m.id,
        body: m.body.clone(),
        attributes: m.attributes.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        published_at_ms: m.published_at_ms,
        delivery_count: m.delivery_count,
        state: state as i32,
        visible_at_ms,
        lease_expires_at_ms,
        expires_at_ms: m.expires_at_ms.unwrap_or(0),
        idempotency_key: m.idempotency_key.clone().unwrap_or_default(),
        dead_letter: m.dead_letter.as_ref().map(|d| pb::DeadLetterInfo {
            source_queue: d.source_queue.clone(),
            source_message_id: d.source_id,
            delivery_count: d.delivery_count,
            reason: d.reason.clone(),
            dead_lettered_at_ms: d.dead_lettered_at_ms,
        }),
        history,
    }
}

pub fn delivery_to_pb(d: &core::Delivery) -> pb::Delivery {
    pb::Delivery {
        message: Some(message_to_pb(&d.message, false)),
        receipt: Some(receipt_to_pb(&d.receipt)),
        lease_expires_at_ms: d.lease_expires_at_ms,
    }
}

/// Request validation under arbitrary input, on stable Rust (proptest): any
/// wire request a client can send is converted and validated without a
/// panic, and a refusal is a client error that names a field. A valid
/// command also survives the log's encoding.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use raftq_core::Command;
    use tonic::Code;

    use super::*;

    /// Names: mostly plausible, sometimes empty, too long or with
    /// characters a queue name cannot have.
    fn name() -> impl Strategy<Value = String> {
        prop_oneof!["[a-z0-9._-]{1,12}", Just(String::new()), "[a-z]{120,140}", any::<String>(),]
    }

    fn small_or_any() -> impl Strategy<Value = u64> {
        prop_oneof![0u64..100_000, any::<u64>()]
    }

    fn config() -> impl Strategy<Value = Option<pb::QueueConfig>> {
        let numbers = (
            proptest::option::of(small_or_any()),
            proptest::option::of(any::<u32>()),
            proptest::option::of(small_or_any()),
            proptest::option::of(small_or_any()),
            proptest::option::of(small_or_any()),
            proptest::option::of(small_or_any()),
            proptest::option::of(small_or_any()),
            proptest::option::of(small_or_any()),
            proptest::option::of(small_or_any()),
            proptest::option::of(any::<u32>()),
        );
        proptest::option::of((proptest::option::of(any::<i32>()), proptest::option::of(name()), numbers).prop_map(
            |(order, dlq, n)| pb::QueueConfig {
                order,
                lease_ms: n.0,
                max_deliveries: n.1,
                dead_letter_queue: dlq,
                message_ttl_ms: n.2,
                max_length: n.3,
                max_bytes: n.4,
                default_delay_ms: n.5,
                dedup_window_ms: n.6,
                backoff_base_ms: n.7,
                backoff_max_ms: n.8,
                max_message_bytes: n.9,
            },
        ))
    }

    fn message() -> impl Strategy<Value = pb::PublishMessage> {
        (
            proptest::collection::vec(any::<u8>(), 0..64),
            proptest::collection::btree_map(name(), name(), 0..4),
            proptest::option::of(small_or_any()),
            name(),
        )
            .prop_map(|(body, attributes, delay_ms, idempotency_key)| pb::PublishMessage {
                body: body.into(),
                attributes: attributes.into_iter().collect(),
                delay_ms,
                idempotency_key,
            })
    }

    fn receipt() -> impl Strategy<Value = Option<pb::Receipt>> {
        proptest::option::of(
            (name(), small_or_any(), any::<u32>()).prop_map(|(queue, message_id, delivery_count)| pb::Receipt {
                queue,
                message_id,
                delivery_count,
            }),
        )
    }

    /// Validates `command` as the server does before proposing it; a valid
    /// one must encode and decode to itself, as the log stores it.
    fn check(command: Result<Command, Status>) -> Result<(), TestCaseError> {
        let checked = command.and_then(|c| c.validate().map(|()| c).map_err(crate::error::queue_error));
        match checked {
            Ok(command) => {
                let bytes = postcard::to_allocvec(&command).expect("a valid command encodes");
                let back: Command = postcard::from_bytes(&bytes).expect("and decodes");
                prop_assert_eq!(back, command);
            }
            Err(status) => {
                prop_assert!(
                    matches!(status.code(), Code::InvalidArgument | Code::ResourceExhausted | Code::OutOfRange),
                    "a refused request is the client's error: {:?}",
                    status
                );
                prop_assert!(status.message().contains(':'), "the refusal names a field: {:?}", status.message());
            }
        }
        Ok(())
    }

    proptest! {
        // PROPTEST_CASES raises the count (ProptestConfig::default reads it).
        #![proptest_config(ProptestConfig { cases: ProptestConfig::default().cases.max(2_000), ..ProptestConfig::default() })]

        #[test]
        fn queue_management_requests(name in name(), config in config(), update in any::<bool>()) {
            let command = config_update(config).map(|c| {
                if update { Command::update_queue(name, c).command } else { Command::create_queue(name, c).command }
            });
            check(command)?;
        }

        #[test]
        fn publish_requests(queue in name(), messages in proptest::collection::vec(message(), 0..8)) {
            check(Ok(Command::publish(queue, messages.into_iter().map(new_message).collect()).command))?;
        }

        #[test]
        fn consume_requests(
            queue in name(),
            max in any::<u32>(),
            lease in proptest::option::of(small_or_any()),
            receipts in proptest::collection::vec(receipt(), 0..4),
            delay in proptest::option::of(small_or_any()),
            dead_letter in any::<bool>(),
            reason in any::<String>(),
        ) {
            check(Ok(Command::receive(queue, max, lease).command))?;
            let acks: Result<Vec<_>, _> = receipts.iter().cloned().enumerate()
                .map(|(i, r)| receipt_from_pb(r, &format!("receipts[{i}]")))
                .collect();
            check(acks.map(|r| Command::ack(r).command))?;
            let first = receipts.first().cloned().flatten();
            check(receipt_from_pb(first.clone(), "receipt").map(|r| Command::nack(r, delay, dead_letter, reason).command))?;
            check(receipt_from_pb(first, "receipt").map(|r| Command::extend_lease(r, lease.unwrap_or(0)).command))?;
        }

        #[test]
        fn enums_out_of_range_are_refused_by_name(value in any::<i32>()) {
            if let Err(status) = state_filter(value) {
                prop_assert!(status.message().starts_with("state:"));
            }
            if let Err(status) = order_from_pb(value, "config.order") {
                prop_assert!(status.message().starts_with("config.order:"));
            }
        }
    }
}
