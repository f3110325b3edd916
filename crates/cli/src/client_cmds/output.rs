//! Every JSON shape and human line the client commands print, as pure
//! functions of the results (so tests check them without a server).
//!
//! Bodies are UTF-8 text when they are; otherwise base64 with
//! `"body_base64": true` in JSON, and `base64:...` in prose. Times are ms
//! since the Unix epoch in JSON (`*_at_ms`), RFC 3339 in prose.

use std::{
    fmt::Write as _,
    time::{Duration, UNIX_EPOCH},
};

use base64::Engine as _;
use raftq_client::{
    Condition, Filter, HistoryEvent, Message, MessageState, Order, QueueInfo, Receipt, TopicInfo, TopicPublishResult,
};
use serde_json::{Value, json};

/// A body for JSON: `(value, is_base64)`.
pub(crate) fn body_json(body: &[u8]) -> (Value, bool) {
    match std::str::from_utf8(body) {
        Ok(text) => (Value::String(text.to_owned()), false),
        Err(_) => (Value::String(base64::engine::general_purpose::STANDARD.encode(body)), true),
    }
}

/// A body for prose.
pub(crate) fn body_text(body: &[u8]) -> String {
    match std::str::from_utf8(body) {
        Ok(text) => text.to_owned(),
        Err(_) => format!("base64:{}", base64::engine::general_purpose::STANDARD.encode(body)),
    }
}

/// A timestamp for prose; `-` for 0 (unset).
pub(crate) fn timestamp(at_ms: u64) -> String {
    if at_ms == 0 {
        return "-".into();
    }
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(at_ms)).to_string()
}

/// A duration in ms for prose.
pub(crate) fn duration(ms: u64) -> String {
    humantime::format_duration(Duration::from_millis(ms)).to_string()
}

/// One delivery, as `consume --json` prints it.
pub(crate) fn delivery_json(message: &Message, receipt: &Receipt, lease_expires_at_ms: u64) -> Value {
    let (body, body_base64) = body_json(&message.body);
    json!({
        "queue": receipt.queue,
        "message_id": message.message_id,
        "body": body,
        "body_base64": body_base64,
        "delivery_count": message.delivery_count,
        "attributes": message.attributes,
        "receipt": receipt.to_string(),
        "published_at_ms": message.published_at_ms,
        "lease_expires_at_ms": lease_expires_at_ms,
    })
}

/// One delivery, as `consume` prints it: `id=<id> delivery=<n> <body>`.
pub(crate) fn delivery_line(message: &Message) -> String {
    format!("id={} delivery={} {}", message.message_id, message.delivery_count, body_text(&message.body))
}

/// A message state's lowercase name.
pub(crate) fn state_name(state: MessageState) -> &'static str {
    match state {
        MessageState::Ready => "ready",
        MessageState::Delayed => "delayed",
        MessageState::Leased => "leased",
        MessageState::Dead => "dead",
    }
}

/// A message for `peek --json` and `inspect --json` (with `history` when
/// the server sent it).
pub(crate) fn message_json(m: &Message) -> Value {
    let (body, body_base64) = body_json(&m.body);
    let dead_letter = m.dead_letter.as_ref().map(|d| {
        json!({
            "source_queue": d.source_queue,
            "source_message_id": d.source_message_id,
            "delivery_count": d.delivery_count,
            "reason": d.reason,
            "dead_lettered_at_ms": d.dead_lettered_at_ms,
        })
    });
    json!({
        "message_id": m.message_id,
        "state": state_name(m.state),
        "body": body,
        "body_base64": body_base64,
        "attributes": m.attributes,
        "delivery_count": m.delivery_count,
        "published_at_ms": m.published_at_ms,
        "visible_at_ms": m.visible_at_ms,
        "lease_expires_at_ms": m.lease_expires_at_ms,
        "expires_at_ms": m.expires_at_ms,
        "idempotency_key": m.idempotency_key.as_deref().unwrap_or_default(),
        "dead_letter": dead_letter,
        "history": m.history.iter().map(history_json).collect::<Vec<_>>(),
    })
}

/// A message for `peek`: `id=<id> state=<state> delivery=<n> <body>`.
pub(crate) fn message_line(m: &Message) -> String {
    format!("id={} state={} delivery={} {}", m.message_id, state_name(m.state), m.delivery_count, body_text(&m.body))
}

/// A message for `inspect`: fields, then history, one per line.
pub(crate) fn message_details(m: &Message) -> String {
    let mut out = format!("id:             {}\nstate:          {}\n", m.message_id, state_name(m.state));
    let mut field = |name: &str, value: String| {
        let _ = writeln!(out, "{:<16}{value}", format!("{name}:"));
    };
    field("delivery count", m.delivery_count.to_string());
    field("published", timestamp(m.published_at_ms));
    field("visible", timestamp(m.visible_at_ms));
    field("lease expires", timestamp(m.lease_expires_at_ms));
    field("expires", timestamp(m.expires_at_ms));
    field("key", m.idempotency_key.clone().unwrap_or_else(|| "-".into()));
    let mut attributes: Vec<String> = m.attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    attributes.sort();
    field("attributes", if attributes.is_empty() { "-".into() } else { attributes.join(" ") });
    if let Some(d) = &m.dead_letter {
        field(
            "dead letter",
            format!(
                "from {}/{} after {} deliveries: {}",
                d.source_queue, d.source_message_id, d.delivery_count, d.reason
            ),
        );
    }
    field("body", body_text(&m.body));
    out.push_str("history:\n");
    for event in &m.history {
        let _ = writeln!(out, "  {}", history_line(event));
    }
    out
}

/// One history event for JSON: `at_ms`, `event` and the event's fields.
pub(crate) fn history_json(e: &HistoryEvent) -> Value {
    let (event, fields) = match e {
        HistoryEvent::Published { visible_at_ms, .. } => ("published", json!({ "visible_at_ms": visible_at_ms })),
        HistoryEvent::Delivered { delivery_count, lease_expires_at_ms, .. } => {
            ("delivered", json!({ "delivery_count": delivery_count, "lease_expires_at_ms": lease_expires_at_ms }))
        }
        HistoryEvent::LeaseExtended { delivery_count, lease_expires_at_ms, .. } => {
            ("lease_extended", json!({ "delivery_count": delivery_count, "lease_expires_at_ms": lease_expires_at_ms }))
        }
        HistoryEvent::LeaseExpired { delivery_count, .. } => {
            ("lease_expired", json!({ "delivery_count": delivery_count }))
        }
        HistoryEvent::Released { delivery_count, .. } => ("released", json!({ "delivery_count": delivery_count })),
        HistoryEvent::Nacked { delivery_count, reason, .. } => {
            ("nacked", json!({ "delivery_count": delivery_count, "reason": reason }))
        }
        HistoryEvent::Requeued { visible_at_ms, .. } => ("requeued", json!({ "visible_at_ms": visible_at_ms })),
        HistoryEvent::DeadLettered { reason, target_queue, .. } => {
            ("dead_lettered", json!({ "reason": reason, "target_queue": target_queue.as_deref().unwrap_or_default() }))
        }
        HistoryEvent::Redriven { from_queue, .. } => ("redriven", json!({ "from_queue": from_queue })),
        HistoryEvent::Unknown { .. } => ("unknown", json!({})),
    };
    let mut object = json!({ "at_ms": e.at_ms(), "event": event });
    if let (Value::Object(object), Value::Object(fields)) = (&mut object, fields) {
        object.extend(fields);
    }
    object
}

/// One history event for prose.
pub(crate) fn history_line(e: &HistoryEvent) -> String {
    let what = match e {
        HistoryEvent::Published { visible_at_ms, .. } => format!("published, visible {}", timestamp(*visible_at_ms)),
        HistoryEvent::Delivered { delivery_count, lease_expires_at_ms, .. } => {
            format!("delivered (attempt {delivery_count}) under a lease until {}", timestamp(*lease_expires_at_ms))
        }
        HistoryEvent::LeaseExtended { delivery_count, lease_expires_at_ms, .. } => {
            format!("lease of attempt {delivery_count} extended until {}", timestamp(*lease_expires_at_ms))
        }
        HistoryEvent::LeaseExpired { delivery_count, .. } => format!("lease of attempt {delivery_count} expired"),
        HistoryEvent::Released { delivery_count, .. } => {
            format!("lease of attempt {delivery_count} released (subscription ended)")
        }
        HistoryEvent::Nacked { delivery_count, reason, .. } => format!("nacked (attempt {delivery_count}): {reason}"),
        HistoryEvent::Requeued { visible_at_ms, .. } => format!("requeued, visible {}", timestamp(*visible_at_ms)),
        HistoryEvent::DeadLettered { reason, target_queue: None, .. } => format!("dead, parked here: {reason}"),
        HistoryEvent::DeadLettered { reason, target_queue: Some(target), .. } => {
            format!("dead-lettered to {target}: {reason}")
        }
        HistoryEvent::Redriven { from_queue, .. } => format!("redriven from {from_queue}"),
        HistoryEvent::Unknown { .. } => "unknown event".into(),
    };
    format!("{}  {what}", timestamp(e.at_ms()))
}

/// A queue order's lowercase name.
pub(crate) fn order_name(order: Order) -> &'static str {
    match order {
        Order::Lifo => "lifo",
        Order::Fifo => "fifo",
    }
}

/// A duration in whole ms, as the JSON output gives durations.
fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A queue (config and stats) for JSON.
pub(crate) fn queue_json(q: &QueueInfo) -> Value {
    let config = &q.config;
    let stats = &q.stats;
    json!({
        "name": q.name,
        "created_at_ms": q.created_at_ms,
        "config": {
            "order": order_name(config.order),
            "lease_ms": ms(config.lease),
            "max_deliveries": config.max_deliveries,
            "dead_letter_queue": config.dead_letter_queue.as_deref().unwrap_or_default(),
            "message_ttl_ms": ms(config.message_ttl),
            "max_length": config.max_length,
            "max_bytes": config.max_bytes,
            "default_delay_ms": ms(config.default_delay),
            "dedup_window_ms": ms(config.dedup_window),
            "backoff_base_ms": ms(config.backoff_base),
            "backoff_max_ms": ms(config.backoff_max),
            "max_message_bytes": config.max_message_bytes,
        },
        "stats": {
            "ready": stats.ready,
            "leased": stats.leased,
            "delayed": stats.delayed,
            "dead": stats.dead,
            "total_bytes": stats.total_bytes,
            "oldest_ready_age_ms": stats.oldest_ready_age_ms,
            "published_total": stats.published_total,
            "delivered_total": stats.delivered_total,
            "acked_total": stats.acked_total,
            "nacked_total": stats.nacked_total,
            "expired_total": stats.expired_total,
            "dead_lettered_total": stats.dead_lettered_total,
            "redriven_total": stats.redriven_total,
            "duplicates_total": stats.duplicates_total,
        },
    })
}

/// A queue for prose: name, stats, counters, config.
pub(crate) fn queue_details(q: &QueueInfo) -> String {
    let c = &q.config;
    let s = &q.stats;
    let time = |d: Duration| duration(ms(d));
    let dlq = c.dead_letter_queue.as_deref().unwrap_or("-");
    format!(
        "queue {} (created {})\n\
         \x20 now:      ready {}  leased {}  delayed {}  dead {}  bytes {}  oldest ready {}\n\
         \x20 totals:   published {}  delivered {}  acked {}  nacked {}  expired {}  dead-lettered {}  redriven {}  duplicates {}\n\
         \x20 config:   order {}  lease {}  max deliveries {}  dead-letter queue {}  ttl {}  max length {}  max bytes {}\n\
         \x20           delay {}  dedup window {}  backoff {}..{}  max message bytes {}",
        q.name,
        timestamp(q.created_at_ms),
        s.ready,
        s.leased,
        s.delayed,
        s.dead,
        s.total_bytes,
        duration(s.oldest_ready_age_ms),
        s.published_total,
        s.delivered_total,
        s.acked_total,
        s.nacked_total,
        s.expired_total,
        s.dead_lettered_total,
        s.redriven_total,
        s.duplicates_total,
        order_name(c.order),
        time(c.lease),
        c.max_deliveries,
        dlq,
        time(c.message_ttl),
        c.max_length,
        c.max_bytes,
        time(c.default_delay),
        time(c.dedup_window),
        time(c.backoff_base),
        time(c.backoff_max),
        c.max_message_bytes,
    )
}

/// Queues as a table for prose.
pub(crate) fn queue_table(queues: &[QueueInfo]) -> String {
    let width = queues.iter().map(|q| q.name.len()).max().unwrap_or(0).max(4);
    let mut out = format!(
        "{:<width$}  {:>8}  {:>8}  {:>8}  {:>8}  {:>12}\n",
        "NAME", "READY", "LEASED", "DELAYED", "DEAD", "BYTES"
    );
    for q in queues {
        let s = &q.stats;
        let _ = writeln!(
            out,
            "{:<width$}  {:>8}  {:>8}  {:>8}  {:>8}  {:>12}",
            q.name, s.ready, s.leased, s.delayed, s.dead, s.total_bytes
        );
    }
    out
}

/// A filter as JSON: a list of `{key, test, value(s)}`.
pub(crate) fn filter_json(filter: &Filter) -> Value {
    let conditions: Vec<Value> = filter
        .conditions
        .iter()
        .map(|c| match c {
            Condition::Equals(k, v) => json!({ "key": k, "equals": v }),
            Condition::OneOf(k, vs) => json!({ "key": k, "one_of": vs }),
            Condition::Prefix(k, p) => json!({ "key": k, "prefix": p }),
            Condition::Exists(k) => json!({ "key": k, "exists": true }),
            Condition::NotExists(k) => json!({ "key": k, "not_exists": true }),
        })
        .collect();
    Value::Array(conditions)
}

/// A filter as the CLI's own `--where` syntax, `-` for none.
pub(crate) fn filter_text(filter: &Filter) -> String {
    if filter.conditions.is_empty() {
        return "(every message)".into();
    }
    let parts: Vec<String> = filter
        .conditions
        .iter()
        .map(|c| match c {
            Condition::Equals(k, v) => format!("{k}={v}"),
            Condition::OneOf(k, vs) => format!("{k}={}", vs.join("|")),
            Condition::Prefix(k, p) => format!("{k}^={p}"),
            Condition::Exists(k) => k.clone(),
            Condition::NotExists(k) => format!("!{k}"),
        })
        .collect();
    parts.join(" and ")
}

/// A topic (config, counters, bindings) for JSON.
pub(crate) fn topic_json(t: &TopicInfo) -> Value {
    let s = &t.stats;
    let bindings: Vec<Value> =
        t.bindings.iter().map(|b| json!({ "queue": b.queue, "filter": filter_json(&b.filter) })).collect();
    json!({
        "name": t.name,
        "created_at_ms": t.created_at_ms,
        "config": { "require_route": t.require_route, "dedup_window_ms": ms(t.dedup_window) },
        "stats": {
            "published_total": s.published_total,
            "routed_copies_total": s.routed_copies_total,
            "unrouted_total": s.unrouted_total,
            "duplicates_total": s.duplicates_total,
            "dedup_evicted_total": s.dedup_evicted_total,
        },
        "bindings": bindings,
    })
}

/// A topic for prose: counters, config, one line per binding.
pub(crate) fn topic_details(t: &TopicInfo) -> String {
    let s = &t.stats;
    let mut out = format!(
        "topic {} (created {})\n\
         \x20 totals:   published {}  routed copies {}  unrouted {}  duplicates {}\n\
         \x20 config:   require route {}  dedup window {}\n\
         \x20 bindings: {}",
        t.name,
        timestamp(t.created_at_ms),
        s.published_total,
        s.routed_copies_total,
        s.unrouted_total,
        s.duplicates_total,
        if t.require_route { "yes" } else { "no" },
        duration(ms(t.dedup_window)),
        t.bindings.len(),
    );
    for b in &t.bindings {
        let _ = write!(out, "\n    {} <- {}", b.queue, filter_text(&b.filter));
    }
    out
}

/// Topics as a table for prose.
pub(crate) fn topic_table(topics: &[TopicInfo]) -> String {
    let width = topics.iter().map(|t| t.name.len()).max().unwrap_or(0).max(4);
    let mut out =
        format!("{:<width$}  {:>8}  {:>10}  {:>10}  {:>8}\n", "NAME", "BINDINGS", "PUBLISHED", "COPIES", "UNROUTED");
    for t in topics {
        let s = &t.stats;
        let _ = writeln!(
            out,
            "{:<width$}  {:>8}  {:>10}  {:>10}  {:>8}",
            t.name,
            t.bindings.len(),
            s.published_total,
            s.routed_copies_total,
            s.unrouted_total
        );
    }
    out
}

/// One topic publish result for JSON.
pub(crate) fn topic_result_json(r: &TopicPublishResult) -> Value {
    let copies: Vec<Value> = r
        .copies
        .iter()
        .map(|c| json!({ "queue": c.queue, "message_id": c.message_id, "duplicate": c.duplicate }))
        .collect();
    json!({ "message_id": r.message_id, "duplicate": r.duplicate, "copies": copies })
}

/// One topic publish result for prose: the topic id, then `queue/id` per
/// copy (`(duplicate)` where nothing new was stored).
pub(crate) fn topic_result_line(r: &TopicPublishResult) -> String {
    if r.duplicate {
        return format!("{} (duplicate)", r.message_id);
    }
    if r.copies.is_empty() {
        return format!("{} (unrouted)", r.message_id);
    }
    let copies: Vec<String> = r
        .copies
        .iter()
        .map(|c| format!("{}/{}{}", c.queue, c.message_id, if c.duplicate { " (duplicate)" } else { "" }))
        .collect();
    format!("{} -> {}", r.message_id, copies.join(" "))
}
