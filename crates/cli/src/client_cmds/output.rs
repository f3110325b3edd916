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
    Receipt,
    proto::{self, history_event::Kind},
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
pub(crate) fn delivery_json(message: &proto::MessageView, receipt: &Receipt, lease_expires_at_ms: u64) -> Value {
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
pub(crate) fn delivery_line(message: &proto::MessageView) -> String {
    format!("id={} delivery={} {}", message.message_id, message.delivery_count, body_text(&message.body))
}

/// A message state's lowercase name.
pub(crate) fn state_name(state: proto::MessageState) -> &'static str {
    match state {
        proto::MessageState::Unspecified => "unknown",
        proto::MessageState::Ready => "ready",
        proto::MessageState::Delayed => "delayed",
        proto::MessageState::Leased => "leased",
        proto::MessageState::Dead => "dead",
    }
}

/// A message for `peek --json` and `inspect --json` (with `history` when
/// the server sent it).
pub(crate) fn message_json(m: &proto::MessageView) -> Value {
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
        "state": state_name(m.state()),
        "body": body,
        "body_base64": body_base64,
        "attributes": m.attributes,
        "delivery_count": m.delivery_count,
        "published_at_ms": m.published_at_ms,
        "visible_at_ms": m.visible_at_ms,
        "lease_expires_at_ms": m.lease_expires_at_ms,
        "expires_at_ms": m.expires_at_ms,
        "idempotency_key": m.idempotency_key,
        "dead_letter": dead_letter,
        "history": m.history.iter().map(history_json).collect::<Vec<_>>(),
    })
}

/// A message for `peek`: `id=<id> state=<state> delivery=<n> <body>`.
pub(crate) fn message_line(m: &proto::MessageView) -> String {
    format!("id={} state={} delivery={} {}", m.message_id, state_name(m.state()), m.delivery_count, body_text(&m.body))
}

/// A message for `inspect`: fields, then history, one per line.
pub(crate) fn message_details(m: &proto::MessageView) -> String {
    let mut out = format!("id:             {}\nstate:          {}\n", m.message_id, state_name(m.state()));
    let mut field = |name: &str, value: String| {
        let _ = writeln!(out, "{:<16}{value}", format!("{name}:"));
    };
    field("delivery count", m.delivery_count.to_string());
    field("published", timestamp(m.published_at_ms));
    field("visible", timestamp(m.visible_at_ms));
    field("lease expires", timestamp(m.lease_expires_at_ms));
    field("expires", timestamp(m.expires_at_ms));
    field("key", if m.idempotency_key.is_empty() { "-".into() } else { m.idempotency_key.clone() });
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
pub(crate) fn history_json(e: &proto::HistoryEvent) -> Value {
    let (event, fields) = match &e.kind {
        Some(Kind::Published(k)) => ("published", json!({ "visible_at_ms": k.visible_at_ms })),
        Some(Kind::Delivered(k)) => {
            ("delivered", json!({ "delivery_count": k.delivery_count, "lease_expires_at_ms": k.lease_expires_at_ms }))
        }
        Some(Kind::LeaseExtended(k)) => (
            "lease_extended",
            json!({ "delivery_count": k.delivery_count, "lease_expires_at_ms": k.lease_expires_at_ms }),
        ),
        Some(Kind::LeaseExpired(k)) => ("lease_expired", json!({ "delivery_count": k.delivery_count })),
        Some(Kind::Released(k)) => ("released", json!({ "delivery_count": k.delivery_count })),
        Some(Kind::Nacked(k)) => ("nacked", json!({ "delivery_count": k.delivery_count, "reason": k.reason })),
        Some(Kind::Requeued(k)) => ("requeued", json!({ "visible_at_ms": k.visible_at_ms })),
        Some(Kind::DeadLettered(k)) => ("dead_lettered", json!({ "reason": k.reason, "target_queue": k.target_queue })),
        Some(Kind::Redriven(k)) => ("redriven", json!({ "from_queue": k.from_queue })),
        None => ("unknown", json!({})),
    };
    let mut object = json!({ "at_ms": e.at_ms, "event": event });
    if let (Value::Object(object), Value::Object(fields)) = (&mut object, fields) {
        object.extend(fields);
    }
    object
}

/// One history event for prose.
pub(crate) fn history_line(e: &proto::HistoryEvent) -> String {
    let what = match &e.kind {
        Some(Kind::Published(k)) => format!("published, visible {}", timestamp(k.visible_at_ms)),
        Some(Kind::Delivered(k)) => {
            format!("delivered (attempt {}) under a lease until {}", k.delivery_count, timestamp(k.lease_expires_at_ms))
        }
        Some(Kind::LeaseExtended(k)) => {
            format!("lease of attempt {} extended until {}", k.delivery_count, timestamp(k.lease_expires_at_ms))
        }
        Some(Kind::LeaseExpired(k)) => format!("lease of attempt {} expired", k.delivery_count),
        Some(Kind::Released(k)) => format!("lease of attempt {} released (subscription ended)", k.delivery_count),
        Some(Kind::Nacked(k)) => format!("nacked (attempt {}): {}", k.delivery_count, k.reason),
        Some(Kind::Requeued(k)) => format!("requeued, visible {}", timestamp(k.visible_at_ms)),
        Some(Kind::DeadLettered(k)) if k.target_queue.is_empty() => format!("dead, parked here: {}", k.reason),
        Some(Kind::DeadLettered(k)) => format!("dead-lettered to {}: {}", k.target_queue, k.reason),
        Some(Kind::Redriven(k)) => format!("redriven from {}", k.from_queue),
        None => "unknown event".into(),
    };
    format!("{}  {what}", timestamp(e.at_ms))
}

/// A queue order's lowercase name.
pub(crate) fn order_name(order: proto::Order) -> &'static str {
    match order {
        proto::Order::Lifo => "lifo",
        proto::Order::Fifo | proto::Order::Unspecified => "fifo",
    }
}

/// A queue (config and stats) for JSON.
pub(crate) fn queue_json(q: &proto::QueueInfo) -> Value {
    let config = q.config.clone().unwrap_or_default();
    let stats = q.stats.unwrap_or_default();
    json!({
        "name": q.name,
        "created_at_ms": q.created_at_ms,
        "config": {
            "order": order_name(config.order()),
            "lease_ms": config.lease_ms,
            "max_deliveries": config.max_deliveries,
            "dead_letter_queue": config.dead_letter_queue,
            "message_ttl_ms": config.message_ttl_ms,
            "max_length": config.max_length,
            "max_bytes": config.max_bytes,
            "default_delay_ms": config.default_delay_ms,
            "dedup_window_ms": config.dedup_window_ms,
            "backoff_base_ms": config.backoff_base_ms,
            "backoff_max_ms": config.backoff_max_ms,
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
pub(crate) fn queue_details(q: &proto::QueueInfo) -> String {
    let c = q.config.clone().unwrap_or_default();
    let s = q.stats.unwrap_or_default();
    let ms = |v: Option<u64>| v.map_or("-".into(), duration);
    let num = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
    let dlq = c.dead_letter_queue.clone().filter(|d| !d.is_empty()).unwrap_or_else(|| "-".into());
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
        order_name(c.order()),
        ms(c.lease_ms),
        c.max_deliveries.map_or("-".into(), |v| v.to_string()),
        dlq,
        ms(c.message_ttl_ms),
        num(c.max_length),
        num(c.max_bytes),
        ms(c.default_delay_ms),
        ms(c.dedup_window_ms),
        ms(c.backoff_base_ms),
        ms(c.backoff_max_ms),
        c.max_message_bytes.map_or("-".into(), |v| v.to_string()),
    )
}

/// Queues as a table for prose.
pub(crate) fn queue_table(queues: &[proto::QueueInfo]) -> String {
    let width = queues.iter().map(|q| q.name.len()).max().unwrap_or(0).max(4);
    let mut out = format!(
        "{:<width$}  {:>8}  {:>8}  {:>8}  {:>8}  {:>12}\n",
        "NAME", "READY", "LEASED", "DELAYED", "DEAD", "BYTES"
    );
    for q in queues {
        let s = q.stats.unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<width$}  {:>8}  {:>8}  {:>8}  {:>8}  {:>12}",
            q.name, s.ready, s.leased, s.delayed, s.dead, s.total_bytes
        );
    }
    out
}
