//! Every invariant of the stored state, checked by a full scan: each index
//! and count equals a rebuild from the messages, the digest equals a
//! recomputation. For tests, snapshot restores and `cluster verify`.

use std::collections::{BTreeMap, BTreeSet};

use crate::keys::{self, Parts};
use crate::kv::{Direction, KvRead, Pairs, full_digest, pair_hash, stored_digest};
use crate::message::{Content, Head, MessageState};
use crate::state::DedupCaps;
use crate::store::{DedupEntry, Globals, QueueRecord, TIMER_STATE, TIMER_TTL, decode, state_due};
use crate::topic::{Filter, TopicRecord};

fn table(kv: &dyn KvRead, table: u8) -> Result<Pairs, String> {
    let prefix = keys::table(table);
    let mut pairs = Vec::new();
    kv.scan(&prefix, &keys::prefix_end(&prefix), Direction::Forward, &mut |k, v| {
        pairs.push((k.to_vec(), v.to_vec()));
        true
    })
    .map_err(|e| e.to_string())?;
    Ok(pairs)
}

fn u64s(key: &[u8], n: usize) -> Result<Vec<u64>, String> {
    if key.len() < 1 + 8 * n {
        return Err(format!("key {key:?} is too short"));
    }
    let mut parts = Parts::of(key);
    Ok((0..n).map(|_| parts.u64()).collect())
}

/// Checks the state in `kv` (see module docs).
pub fn check(kv: &dyn KvRead, caps: DedupCaps) -> Result<(), String> {
    let e = |e: crate::kv::StoreFault| e.to_string();
    let g: Globals = match kv.get(keys::GLOBALS).map_err(e)? {
        Some(bytes) => decode("globals", &bytes).map_err(e)?,
        None => Globals::initial(),
    };
    let stored = stored_digest(kv).map_err(e)?;
    if stored != full_digest(kv).map_err(e)? {
        return Err("stored digest differs from a recomputation".into());
    }
    let doomed_space_marks = table(kv, keys::DOOMED_SPACE)?;
    let doomed_dedup_marks = table(kv, keys::DOOMED_DEDUP)?;
    let dedup_entries = table(kv, keys::DEDUP)?;
    let doomed_spaces: BTreeSet<u64> =
        doomed_space_marks.iter().map(|(k, _)| u64s(k, 1).map(|v| v[0])).collect::<Result<_, _>>()?;
    // Every message, by space.
    let mut messages: BTreeMap<(u64, u64), Head> = BTreeMap::new();
    for (key, value) in table(kv, keys::MESSAGE)? {
        let parts = u64s(&key, 2)?;
        let message: Head = decode("message", &value).map_err(e)?;
        if message.id != parts[1] || message.id == 0 || message.id >= g.next_message_id {
            return Err(format!("message {} stored under id {} (next id {})", message.id, parts[1], g.next_message_id));
        }
        if message.redrive_base > message.delivery_count {
            return Err(format!("message {}: redrive base above delivery count", message.id));
        }
        if let MessageState::Leased { attempt, .. } = message.state
            && attempt != message.delivery_count
        {
            return Err(format!("message {}: leased under a stale attempt", message.id));
        }
        messages.insert((parts[0], parts[1]), message);
    }
    // Each head has its content, of the size and digest share it names,
    // and no content is without a head.
    let contents = table(kv, keys::CONTENT)?;
    if contents.len() != messages.len() {
        return Err(format!("{} message contents stored for {} messages", contents.len(), messages.len()));
    }
    for (key, value) in &contents {
        let parts = u64s(key, 2)?;
        let Some(head) = messages.get(&(parts[0], parts[1])) else {
            return Err(format!("content of message {} in space {} has no head", parts[1], parts[0]));
        };
        let content: Content = decode("message content", value).map_err(e)?;
        if content.bytes() != head.content_bytes || pair_hash(key, value) != head.content_hash {
            return Err(format!("message {}: its head misdescribes its content", head.id));
        }
    }
    // The ready and timer indexes, rebuilt from the messages.
    let mut ready = BTreeSet::new();
    let mut timers = BTreeSet::new();
    for ((space, id), message) in &messages {
        if message.state == MessageState::Ready {
            ready.insert(keys::ready(*space, *id));
        }
        if let Some(due) = state_due(&message.state) {
            timers.insert(keys::timer(due, *space, *id, TIMER_STATE));
        }
        if let Some(due) = message.expires_at_ms {
            timers.insert(keys::timer(due, *space, *id, TIMER_TTL));
        }
    }
    let stored_ready: BTreeSet<Vec<u8>> = table(kv, keys::READY)?.into_iter().map(|(k, _)| k).collect();
    if stored_ready != ready {
        return Err("ready index differs from a rebuild".into());
    }
    let stored_timers: BTreeSet<Vec<u8>> = table(kv, keys::TIMER)?.into_iter().map(|(k, _)| k).collect();
    if stored_timers != timers {
        return Err("timer index differs from a rebuild".into());
    }
    let marks = doomed_space_marks.len() + doomed_dedup_marks.len();
    if marks as u64 != g.cleanup_marks {
        return Err(format!("{marks} cleanup marks stored, {} counted", g.cleanup_marks));
    }
    // Scan floors: nothing live below them (else a scan would miss it).
    if timers.first().is_some_and(|first| *first < g.timer_floor) {
        return Err("a timer sorts below the timer floor".into());
    }
    for (key, cursor) in &doomed_space_marks {
        let space = u64s(key, 1)?[0];
        let next = match cursor.len() {
            0 => 0,
            8 => u64::from_be_bytes(cursor.as_slice().try_into().expect("8 bytes")),
            n => return Err(format!("doomed space {space}: cursor of {n} bytes")),
        };
        if messages.range((space, 0)..(space, next)).next().is_some() {
            return Err(format!("doomed space {space} holds a message below its cleanup cursor {next}"));
        }
    }
    for (key, cursor) in &doomed_dedup_marks {
        let prefix = keys::dedup_of(u64s(key, 1)?[0]);
        let below = dedup_entries.iter().any(|(k, _)| k.starts_with(&prefix) && k < cursor);
        if below {
            return Err(format!("doomed dedup table {key:?} holds a key below its cleanup cursor"));
        }
    }
    // Queues: their identity indexes and counts.
    let mut live_spaces = BTreeSet::new();
    let mut live_uids = BTreeSet::new();
    for (key, value) in table(kv, keys::QUEUE)? {
        let queue: QueueRecord = decode("queue record", &value).map_err(e)?;
        let name = std::str::from_utf8(&key[1..]).map_err(|_| "queue key is not UTF-8".to_string())?;
        if queue.name != name {
            return Err(format!("queue {name:?} stored as {:?}", queue.name));
        }
        if queue.uid == 0 || queue.uid >= g.next_queue_uid || queue.space >= g.next_queue_uid {
            return Err(format!("queue {name:?} has a bad uid or space"));
        }
        if !live_uids.insert(queue.uid) || !live_spaces.insert(queue.space) || doomed_spaces.contains(&queue.space) {
            return Err(format!("queue {name:?} shares its uid or space"));
        }
        queue.config.validate().map_err(|err| format!("queue {name:?} config: {err}"))?;
        let named = |k: Vec<u8>| -> Result<bool, String> {
            Ok(kv.get(&k).map_err(e)?.map(|v| decode::<String>("name", &v)).transpose().map_err(e)?.as_deref()
                == Some(name))
        };
        if !named(keys::uid(queue.uid))? || !named(keys::space(queue.space))? {
            return Err(format!("queue {name:?}: uid or space index is wrong"));
        }
        let (mut counts, mut bytes) = ([0u64; 4], 0u64);
        for (_, message) in messages.range((queue.space, 0)..=(queue.space, u64::MAX)) {
            bytes += message.size_bytes();
            counts[match message.state {
                MessageState::Ready => 0,
                MessageState::Leased { .. } => 1,
                MessageState::Delayed { .. } => 2,
                MessageState::Dead => 3,
            }] += 1;
        }
        let s = &queue.stats;
        if [s.ready, s.leased, s.delayed, s.dead] != counts || s.total_bytes != bytes {
            return Err(format!("queue {name:?}: counts differ from a rebuild"));
        }
        let outside = ready
            .range(keys::ready(queue.space, 0)..keys::prefix_end(&keys::ready_of(queue.space)))
            .map(|key| u64s(key, 2).map(|parts| parts[1]))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .find(|id| *id < queue.ready_low || *id >= queue.ready_high);
        if let Some(id) = outside {
            return Err(format!(
                "queue {name:?}: ready id {id} outside the ready range {}..{}",
                queue.ready_low, queue.ready_high
            ));
        }
    }
    let queue_uids = live_uids.len();
    // Topics: identity, bindings both ways, binding counts.
    let mut topics: BTreeMap<String, TopicRecord> = BTreeMap::new();
    for (key, value) in table(kv, keys::TOPIC)? {
        let topic: TopicRecord = decode("topic record", &value).map_err(e)?;
        let name = std::str::from_utf8(&key[1..]).map_err(|_| "topic key is not UTF-8".to_string())?;
        if topic.name != name {
            return Err(format!("topic {name:?} stored as {:?}", topic.name));
        }
        if topic.uid == 0 || topic.uid >= g.next_queue_uid || !live_uids.insert(topic.uid) {
            return Err(format!("topic {name:?} has a bad or shared uid"));
        }
        topic.config.validate().map_err(|err| format!("topic {name:?} config: {err}"))?;
        let named = kv.get(&keys::topic_uid(topic.uid)).map_err(e)?.map(|v| decode::<String>("name", &v)).transpose();
        if named.map_err(e)?.as_deref() != Some(name) {
            return Err(format!("topic {name:?}: uid index is wrong"));
        }
        topics.insert(name.to_string(), topic);
    }
    if table(kv, keys::TOPIC_UID)?.len() != topics.len() {
        return Err("topic uid index names a topic that does not exist".into());
    }
    let mut bound: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_queue_rebuilt = BTreeSet::new();
    for (key, value) in table(kv, keys::BINDING)? {
        let rest = &key[1..];
        let zero = rest.iter().position(|b| *b == 0).ok_or("binding key without separator")?;
        let topic = std::str::from_utf8(&rest[..zero]).map_err(|_| "binding topic is not UTF-8")?;
        let queue = keys::second_name(&key).ok_or("binding queue is not UTF-8")?;
        let filter: Filter = decode("binding filter", &value).map_err(e)?;
        filter.validate("filter").map_err(|err| format!("binding {topic:?} → {queue:?}: {err}"))?;
        if !topics.contains_key(topic) || kv.get(&keys::queue(queue)).map_err(e)?.is_none() {
            return Err(format!("binding {topic:?} → {queue:?} names a missing topic or queue"));
        }
        *bound.entry(topic.to_string()).or_default() += 1;
        by_queue_rebuilt.insert(keys::binding_by_queue(queue, topic));
    }
    let by_queue_pairs = table(kv, keys::BINDING_BY_QUEUE)?;
    if by_queue_pairs.iter().any(|(_, value)| !value.is_empty()) {
        return Err("a bindings-by-queue index key holds a value".into());
    }
    let by_queue_stored: BTreeSet<Vec<u8>> = by_queue_pairs.into_iter().map(|(k, _)| k).collect();
    if by_queue_stored != by_queue_rebuilt {
        return Err("the bindings-by-queue index differs from a rebuild".into());
    }
    for (name, topic) in &topics {
        if bound.get(name).copied().unwrap_or(0) != topic.bindings {
            return Err(format!("topic {name:?}: binding count differs from a rebuild"));
        }
        if topic.bindings > crate::limits::BINDINGS_PER_TOPIC_MAX as u64 {
            return Err(format!("topic {name:?} has more bindings than its bound"));
        }
    }
    let mut per_queue_bindings: BTreeMap<&[u8], usize> = BTreeMap::new();
    for key in &by_queue_stored {
        let queue = &key[1..key.iter().position(|b| *b == 0).ok_or("bindings-by-queue key without separator")?];
        *per_queue_bindings.entry(queue).or_default() += 1;
    }
    if per_queue_bindings.values().any(|n| *n > crate::limits::BINDINGS_PER_QUEUE_MAX) {
        return Err("a queue has more bindings than its bound".into());
    }
    if table(kv, keys::UID)?.len() != queue_uids || table(kv, keys::SPACE)?.len() != live_spaces.len() {
        return Err("uid or space index names a queue that does not exist".into());
    }
    for (space, _) in messages.keys() {
        if !live_spaces.contains(space) && !doomed_spaces.contains(space) {
            return Err(format!("messages in space {space}, which is neither live nor being cleaned"));
        }
    }
    // Dedup: each key's three records agree; counts match.
    let mut per_uid: BTreeMap<u64, u64> = BTreeMap::new();
    let mut by_queue = BTreeMap::new();
    let mut by_expiry = BTreeMap::new();
    for (key, value) in &dedup_entries {
        let uid = u64s(key, 1)?[0];
        let entry: DedupEntry = decode("dedup entry", value).map_err(e)?;
        let dedup_key = std::str::from_utf8(&key[9..]).map_err(|_| "dedup key is not UTF-8".to_string())?;
        *per_uid.entry(uid).or_default() += 1;
        // Both index keys hold the entry itself.
        by_queue.insert(keys::dedup_by_queue(uid, entry.expires_at_ms, dedup_key), value.clone());
        by_expiry.insert(keys::dedup_by_expiry(entry.expires_at_ms, uid, dedup_key), value.clone());
    }
    let stored_by_queue: BTreeMap<Vec<u8>, Vec<u8>> = table(kv, keys::DEDUP_BY_QUEUE)?.into_iter().collect();
    let stored_by_expiry: BTreeMap<Vec<u8>, Vec<u8>> = table(kv, keys::DEDUP_BY_EXPIRY)?.into_iter().collect();
    if stored_by_queue != by_queue || stored_by_expiry != by_expiry {
        return Err("a dedup index differs from a rebuild".into());
    }
    if by_expiry.keys().next().is_some_and(|first| *first < g.dedup_floor) {
        return Err("a dedup expiry key sorts below the dedup floor".into());
    }
    // Keys belong to a live queue or topic, or to a deleted one's uid
    // marked for cleanup.
    let doomed_uids: BTreeSet<u64> =
        doomed_dedup_marks.iter().map(|(k, _)| u64s(k, 1).map(|v| v[0])).collect::<Result<_, _>>()?;
    if let Some(uid) = per_uid.keys().find(|uid| !live_uids.contains(uid) && !doomed_uids.contains(uid)) {
        return Err(format!("idempotency keys of uid {uid}, neither a live queue or topic nor being cleaned"));
    }
    let total: u64 = per_uid.values().sum();
    if total != g.dedup_keys {
        return Err(format!("{} idempotency keys stored, {} counted", total, g.dedup_keys));
    }
    for (_, value) in table(kv, keys::QUEUE)? {
        let queue: QueueRecord = decode("queue record", &value).map_err(e)?;
        if per_uid.get(&queue.uid).copied().unwrap_or(0) != queue.dedup_keys {
            return Err(format!("queue {:?}: dedup key count differs from a rebuild", queue.name));
        }
        let prefix = keys::dedup_by_queue_of(queue.uid);
        if queue.dedup_floor > prefix && by_queue.range(prefix.clone()..queue.dedup_floor.clone()).next().is_some() {
            return Err(format!("queue {:?}: a dedup expiry key sorts below its floor", queue.name));
        }
        if queue.dedup_keys > caps.per_queue as u64 {
            return Err(format!("queue {:?} remembers more keys than its bound", queue.name));
        }
    }
    for topic in topics.values() {
        if per_uid.get(&topic.uid).copied().unwrap_or(0) != topic.dedup_keys {
            return Err(format!("topic {:?}: dedup key count differs from a rebuild", topic.name));
        }
        let prefix = keys::dedup_by_queue_of(topic.uid);
        if topic.dedup_floor > prefix && by_queue.range(prefix.clone()..topic.dedup_floor.clone()).next().is_some() {
            return Err(format!("topic {:?}: a dedup expiry key sorts below its floor", topic.name));
        }
        if topic.dedup_keys > caps.per_queue as u64 {
            return Err(format!("topic {:?} remembers more keys than its bound", topic.name));
        }
    }
    if g.dedup_keys > caps.total as u64 {
        return Err("more idempotency keys remembered than the dedup bounds allow".into());
    }
    Ok(())
}
