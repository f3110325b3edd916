//! Topics: publish once, a copy in every bound queue whose filter matches.
//!
//! A topic holds no messages. Its *bindings* name queues, each with an
//! optional [`Filter`] over message attributes. Publishing to a topic is one
//! command, so one log entry: on apply, every fresh message is stored once
//! in each bound queue whose filter it matches, with that queue's ids,
//! delay, TTL, limits and dedup rules, **all or none**: if any copy would
//! be refused (a full queue, a message over a queue's `max_message_bytes`),
//! the whole publish is refused and nothing is stored anywhere.
//!
//! Idempotency keys belong to the topic (its own dedup table, with its own
//! window): a retried topic publish is answered as a duplicate and stores
//! nothing in any queue. A message that matches no binding is accepted and
//! counted as unrouted, or refused (UNROUTABLE) if the topic was created
//! with `require_route`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::command::NewMessage;
use crate::error::{Limit, QueueError, Reason};
use crate::keys;
use crate::kv::{Direction, KvRead};
use crate::limits::*;
use crate::response::Outcome;
use crate::store::{Ctx, DedupOwner, Fail, Io, QueueRecord, Step, decode, encode, get};

/// A topic's configuration, fixed when it is created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicConfig {
    /// Refuse (FAILED_PRECONDITION, UNROUTABLE) a message that matches no
    /// binding, instead of accepting it and counting it as unrouted.
    pub require_route: bool,
    /// How long the topic remembers an idempotency key; 0 = no dedup.
    pub dedup_window_ms: u64,
}

impl Default for TopicConfig {
    fn default() -> Self {
        Self { require_route: false, dedup_window_ms: DEDUP_WINDOW_MS_DEFAULT }
    }
}

impl TopicConfig {
    pub fn validate(&self) -> Result<(), QueueError> {
        if self.dedup_window_ms > DEDUP_WINDOW_MS_MAX {
            return Err(QueueError::invalid(
                "dedup_window_ms",
                format!("{} exceeds {DEDUP_WINDOW_MS_MAX}", self.dedup_window_ms),
            ));
        }
        Ok(())
    }
}

/// What one condition asks of one attribute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Test {
    /// The attribute is present and equals the value.
    Equals(String),
    /// The attribute is present and equals one of the values.
    OneOf(Vec<String>),
    /// The attribute is present and starts with the value.
    Prefix(String),
    /// The attribute is present (any value).
    Exists,
    /// The attribute is absent.
    NotExists,
}

/// One condition: `key` passes `test`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    pub key: String,
    pub test: Test,
}

/// A binding's filter: every condition must hold (an empty filter matches
/// every message). Attribute keys and values compare as exact bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    pub conditions: Vec<Condition>,
}

impl Filter {
    /// True if every condition holds for `attributes`.
    pub fn matches(&self, attributes: &BTreeMap<String, String>) -> bool {
        self.conditions.iter().all(|condition| {
            let value = attributes.get(&condition.key);
            match (&condition.test, value) {
                (Test::Equals(want), Some(got)) => want == got,
                (Test::OneOf(wants), Some(got)) => wants.iter().any(|want| want == got),
                (Test::Prefix(prefix), Some(got)) => got.starts_with(prefix.as_str()),
                (Test::Exists, Some(_)) => true,
                (Test::NotExists, None) => true,
                _ => false,
            }
        })
    }

    /// Sizes and counts within the `FILTER_*` limits; `field` names the
    /// filter in errors (`filter.conditions[2].key`).
    pub fn validate(&self, field: &str) -> Result<(), QueueError> {
        if self.conditions.len() > FILTER_CONDITIONS_MAX {
            return Err(QueueError::invalid(
                format!("{field}.conditions"),
                format!("{} conditions exceeds {FILTER_CONDITIONS_MAX}", self.conditions.len()),
            ));
        }
        let mut bytes = 0usize;
        for (i, condition) in self.conditions.iter().enumerate() {
            let at = format!("{field}.conditions[{i}]");
            if condition.key.is_empty() || condition.key.len() > ATTRIBUTE_KEY_BYTES_MAX {
                return Err(QueueError::invalid(
                    format!("{at}.key"),
                    format!("must be 1..={ATTRIBUTE_KEY_BYTES_MAX} bytes, got {}", condition.key.len()),
                ));
            }
            bytes += condition.key.len();
            let values: &[String] = match &condition.test {
                Test::Equals(value) | Test::Prefix(value) => std::slice::from_ref(value),
                Test::OneOf(values) => {
                    if values.is_empty() || values.len() > FILTER_VALUES_MAX {
                        return Err(QueueError::invalid(
                            format!("{at}.one_of"),
                            format!("{} values is outside 1..={FILTER_VALUES_MAX}", values.len()),
                        ));
                    }
                    values
                }
                Test::Exists | Test::NotExists => &[],
            };
            for value in values {
                if value.len() > ATTRIBUTE_VALUE_BYTES_MAX {
                    return Err(QueueError::invalid(
                        format!("{at}.value"),
                        format!("{} bytes exceeds {ATTRIBUTE_VALUE_BYTES_MAX}", value.len()),
                    ));
                }
                bytes += value.len();
            }
        }
        if bytes > FILTER_BYTES_MAX {
            return Err(QueueError::exhausted(
                Reason::RequestTooLarge,
                field,
                format!("names {bytes} bytes of keys and values, more than {FILTER_BYTES_MAX}"),
                Limit { name: "filter_bytes".into(), value: FILTER_BYTES_MAX as u64, queue: None },
            ));
        }
        Ok(())
    }
}

/// A topic's lifetime counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicStats {
    /// Messages accepted (duplicates not counted).
    pub published_total: u64,
    /// Copies stored in bound queues (a copy a queue's own dedup answered
    /// as a duplicate not counted).
    pub routed_copies_total: u64,
    /// Accepted messages that matched no binding.
    pub unrouted_total: u64,
    /// Publishes answered from the topic's dedup window.
    pub duplicates_total: u64,
    /// Idempotency keys forgotten before their window ended (the dedup
    /// bounds are shared with queues).
    pub dedup_evicted_total: u64,
}

/// One binding as reads show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingInfo {
    pub queue: String,
    pub filter: Filter,
}

/// A topic's config, counters and bindings (in queue name order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicInfo {
    pub name: String,
    pub config: TopicConfig,
    pub stats: TopicStats,
    pub bindings: Vec<BindingInfo>,
    pub created_at_ms: u64,
}

/// What a topic publish did with one message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicPublishResult {
    /// The message's topic-level id (unique among all message ids). For a
    /// duplicate, the original publish's.
    pub id: u64,
    /// The idempotency key was seen within the topic's window: nothing was
    /// stored, and `copies` is empty.
    pub duplicate: bool,
    /// One per matching bound queue, in queue name order.
    pub copies: Vec<TopicCopy>,
}

/// One queue's copy of a topic message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicCopy {
    pub queue: String,
    /// The copy's id in `queue`.
    pub id: u64,
    /// The queue's own dedup window held the key: `id` is the message it
    /// stored before, and nothing new was stored there.
    pub duplicate: bool,
}

/// One topic: identity, config, counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TopicRecord {
    /// From the queue uid counter, so its dedup keys share the tables.
    pub uid: u64,
    pub name: String,
    pub config: TopicConfig,
    pub created_at_ms: u64,
    pub stats: TopicStats,
    /// Bindings it has (`B` keys under its name).
    pub bindings: u64,
    /// Idempotency keys it stores.
    pub dedup_keys: u64,
    /// No key of its dedup expiry index (`x`) sorts before this.
    pub dedup_floor: Vec<u8>,
}

impl DedupOwner for TopicRecord {
    fn dedup_uid(&self) -> u64 {
        self.uid
    }

    fn dedup_book(&mut self) -> (&mut u64, &mut Vec<u8>, &mut u64) {
        (&mut self.dedup_keys, &mut self.dedup_floor, &mut self.stats.dedup_evicted_total)
    }
}

pub(crate) fn load_topic(kv: &dyn KvRead, name: &str) -> Io<Option<TopicRecord>> {
    get(kv, "topic record", &keys::topic(name))
}

/// A topic's bindings, in queue name order (at most
/// `BINDINGS_PER_TOPIC_MAX`).
pub(crate) fn load_bindings(kv: &dyn KvRead, topic: &str) -> Io<Vec<BindingInfo>> {
    let prefix = keys::bindings_of(topic);
    let mut pairs = Vec::new();
    kv.scan(&prefix, &keys::prefix_end(&prefix), Direction::Forward, &mut |k, v| {
        pairs.push((k.to_vec(), v.to_vec()));
        true
    })?;
    pairs
        .into_iter()
        .map(|(key, value)| {
            let queue = keys::second_name(&key)
                .ok_or_else(|| crate::kv::StoreFault(format!("binding key {key:?} names no queue")))?
                .to_string();
            Ok(BindingInfo { queue, filter: decode("binding filter", &value)? })
        })
        .collect()
}

/// The topics `queue` is bound to, in name order.
pub(crate) fn topics_of_queue(kv: &dyn KvRead, queue: &str) -> Io<Vec<String>> {
    let prefix = keys::bindings_by_queue_of(queue);
    let mut topics = Vec::new();
    kv.scan(&prefix, &keys::prefix_end(&prefix), Direction::Forward, &mut |k, _| {
        topics.push(keys::second_name(k).map(str::to_string));
        true
    })?;
    topics
        .into_iter()
        .map(|t| t.ok_or_else(|| crate::kv::StoreFault("binding index key names no topic".into())))
        .collect()
}

pub(crate) fn info(kv: &dyn KvRead, topic: &TopicRecord) -> Io<TopicInfo> {
    Ok(TopicInfo {
        name: topic.name.clone(),
        config: topic.config.clone(),
        stats: topic.stats.clone(),
        bindings: load_bindings(kv, &topic.name)?,
        created_at_ms: topic.created_at_ms,
    })
}

fn limit_reached(field: &str, reason: String, name: &str, value: usize) -> Fail {
    QueueError::exhausted(
        Reason::LimitReached,
        field,
        reason,
        Limit { name: name.into(), value: value as u64, queue: None },
    )
    .into()
}

/// What a topic publish does with one message, decided before anything
/// changes.
enum TopicFate {
    /// The topic's window holds its key: the original topic message id.
    Seen(u64),
    /// Repeats the key of an earlier message of this batch.
    Repeat(usize),
    /// New: stored in the bound queues at these binding indexes.
    Fresh(Vec<usize>),
}

/// What a publish does with one message in one queue.
#[derive(Clone, Copy)]
pub(crate) enum QueueFate {
    /// The queue's window holds its key: that message's id.
    Seen(u64),
    /// Repeats the key of the message at this position of the same plan.
    Repeat(usize),
    Fresh,
}

impl Ctx<'_, '_> {
    pub(crate) fn save_topic(&mut self, topic: &TopicRecord) {
        self.kv.put(keys::topic(&topic.name), encode(topic));
    }

    fn must_topic(&self, name: &str) -> Step<TopicRecord> {
        load_topic(self.kv, name)?.ok_or_else(|| Fail::Reject(QueueError::topic_not_found(name)))
    }

    /// Decides each message's fate in `queue` (dedup, size), and refuses
    /// if storing the fresh ones would pass a limit of the queue. Changes
    /// nothing. `messages` pairs each message with its index in the request,
    /// for error fields.
    pub(crate) fn plan_publish(
        &mut self,
        queue: &QueueRecord,
        messages: &[(usize, &NewMessage)],
    ) -> Step<Vec<QueueFate>> {
        let max_message_bytes = queue.config.max_message_bytes as usize;
        let mut batch_keys: BTreeMap<&str, usize> = BTreeMap::new();
        let (mut fresh, mut fresh_bytes) = (0u64, 0u64);
        let mut plan = Vec::with_capacity(messages.len());
        for (position, &(i, message)) in messages.iter().enumerate() {
            if message.size_bytes() > max_message_bytes {
                return Err(QueueError::exhausted(
                    Reason::MessageTooLarge,
                    format!("messages[{i}].body"),
                    format!(
                        "{} bytes exceeds max_message_bytes {max_message_bytes} of queue {:?}",
                        message.size_bytes(),
                        queue.name
                    ),
                    Limit {
                        name: "max_message_bytes".into(),
                        value: max_message_bytes as u64,
                        queue: Some(queue.name.clone()),
                    },
                )
                .into());
            }
            let key = message.idempotency_key.as_deref();
            let seen = match key {
                Some(k) => self.dedup_lookup(queue.uid, k)?,
                None => None,
            };
            if let Some(id) = seen {
                plan.push(QueueFate::Seen(id));
            } else if let Some(&first) = key.and_then(|k| batch_keys.get(k)) {
                plan.push(QueueFate::Repeat(first));
            } else {
                if let Some(k) = key {
                    batch_keys.insert(k, position);
                    self.keyed_ahead += 1;
                }
                fresh += 1;
                fresh_bytes += message.size_bytes() as u64;
                plan.push(QueueFate::Fresh);
            }
        }
        if let Some((reason, limit)) = queue.would_overflow(fresh, fresh_bytes) {
            return Err(QueueError::exhausted(Reason::QueueFull, "queue", reason, limit).into());
        }
        Ok(plan)
    }

    /// Stores `messages` in `queue` as `plan` decided (the publish was
    /// accepted): forgets the queue's expired keys, then stores each fresh
    /// message. Returns (id, duplicate) per message.
    pub(crate) fn store_planned(
        &mut self,
        queue: &mut QueueRecord,
        messages: &[(usize, &NewMessage)],
        plan: &[QueueFate],
    ) -> Io<Vec<(u64, bool)>> {
        // Only now, with the publish accepted, forget keys whose window has
        // passed (lookups already ignore them): a rejected command changes
        // nothing but time.
        self.dedup_expire(queue)?;
        let mut results: Vec<(u64, bool)> = Vec::with_capacity(messages.len());
        for (&(_, message), fate) in messages.iter().zip(plan) {
            let result = match *fate {
                QueueFate::Seen(id) => (id, true),
                QueueFate::Repeat(first) => (results[first].0, true),
                QueueFate::Fresh => (self.store_new(queue, message)?, false),
            };
            if result.1 {
                queue.stats.duplicates_total += 1;
            } else {
                queue.stats.published_total += 1;
            }
            results.push(result);
        }
        Ok(results)
    }

    pub(crate) fn create_topic(&mut self, name: &str, config: &TopicConfig) -> Step<Outcome> {
        if load_topic(self.kv, name)?.is_some() {
            return Err(QueueError::AlreadyExists { kind: Reason::TopicExists, name: name.to_string() }.into());
        }
        let mut count = 0;
        let prefix = keys::table(keys::TOPIC);
        self.kv.scan(&prefix, &keys::prefix_end(&prefix), Direction::Forward, &mut |_, _| {
            count += 1;
            count < TOPICS_MAX
        })?;
        if count >= TOPICS_MAX {
            return Err(limit_reached(
                "topic",
                format!("the cluster already holds {TOPICS_MAX} topics"),
                "topics",
                TOPICS_MAX,
            ));
        }
        config.validate()?;
        let topic = TopicRecord {
            uid: self.take_uid(),
            name: name.to_string(),
            config: config.clone(),
            created_at_ms: self.now_ms(),
            stats: TopicStats::default(),
            bindings: 0,
            dedup_keys: 0,
            dedup_floor: Vec::new(),
        };
        self.kv.put(keys::topic_uid(topic.uid), encode(&topic.name));
        self.save_topic(&topic);
        Ok(Outcome::TopicCreated(info(self.kv, &topic)?))
    }

    /// Deletes a topic and its bindings (at most `BINDINGS_PER_TOPIC_MAX`);
    /// the queues and their messages stay.
    pub(crate) fn delete_topic(&mut self, name: &str) -> Step<Outcome> {
        let topic = self.must_topic(name)?;
        let bindings = load_bindings(self.kv, name)?;
        for binding in &bindings {
            self.kv.delete(keys::binding(name, &binding.queue));
            self.kv.delete_known(keys::binding_by_queue(&binding.queue, name), Vec::new());
        }
        self.kv.delete(keys::topic(name));
        self.kv.delete(keys::topic_uid(topic.uid));
        if topic.dedup_keys > 0 {
            self.doom_dedup(topic.uid);
        }
        Ok(Outcome::TopicDeleted { bindings_removed: bindings.len() as u64 })
    }

    /// Binds `queue` to `topic` with `filter`, or replaces the filter of
    /// the binding that exists.
    pub(crate) fn bind(&mut self, topic_name: &str, queue: &str, filter: &Filter) -> Step<Outcome> {
        let mut topic = self.must_topic(topic_name)?;
        self.must_queue(queue)?;
        let key = keys::binding(topic_name, queue);
        if self.kv.get(&key)?.is_none() {
            if topic.bindings >= BINDINGS_PER_TOPIC_MAX as u64 {
                return Err(limit_reached(
                    "topic",
                    format!("topic {topic_name:?} already has {BINDINGS_PER_TOPIC_MAX} bindings"),
                    "bindings_per_topic",
                    BINDINGS_PER_TOPIC_MAX,
                ));
            }
            let prefix = keys::bindings_by_queue_of(queue);
            let mut count = 0;
            self.kv.scan(&prefix, &keys::prefix_end(&prefix), Direction::Forward, &mut |_, _| {
                count += 1;
                count < BINDINGS_PER_QUEUE_MAX
            })?;
            if count >= BINDINGS_PER_QUEUE_MAX {
                return Err(limit_reached(
                    "queue",
                    format!("queue {queue:?} is already bound to {BINDINGS_PER_QUEUE_MAX} topics"),
                    "bindings_per_queue",
                    BINDINGS_PER_QUEUE_MAX,
                ));
            }
            topic.bindings += 1;
            self.kv.put_new(keys::binding_by_queue(queue, topic_name), Vec::new());
            self.save_topic(&topic);
        }
        self.kv.put(key, encode(filter));
        Ok(Outcome::TopicBound(info(self.kv, &topic)?))
    }

    pub(crate) fn unbind(&mut self, topic_name: &str, queue: &str) -> Step<Outcome> {
        let mut topic = self.must_topic(topic_name)?;
        let key = keys::binding(topic_name, queue);
        if self.kv.get(&key)?.is_none() {
            return Err(QueueError::NotFound {
                kind: Reason::BindingNotFound,
                what: format!("binding of queue {queue:?} to topic {topic_name:?}"),
                queue: Some(queue.to_string()),
            }
            .into());
        }
        self.kv.delete(key);
        self.kv.delete_known(keys::binding_by_queue(queue, topic_name), Vec::new());
        topic.bindings -= 1;
        self.save_topic(&topic);
        Ok(Outcome::TopicUnbound(info(self.kv, &topic)?))
    }

    /// Removes every binding of a queue being deleted (at most
    /// `BINDINGS_PER_QUEUE_MAX`).
    pub(crate) fn unbind_queue(&mut self, queue: &str) -> Io<()> {
        for topic_name in topics_of_queue(self.kv, queue)? {
            self.kv.delete_known(keys::binding_by_queue(queue, &topic_name), Vec::new());
            self.kv.delete(keys::binding(&topic_name, queue));
            let mut topic = load_topic(self.kv, &topic_name)?.ok_or_else(|| {
                crate::kv::StoreFault(format!("queue {queue:?} is bound to topic {topic_name:?}, which is missing"))
            })?;
            topic.bindings -= 1;
            self.save_topic(&topic);
        }
        Ok(())
    }

    pub(crate) fn publish_topic(&mut self, name: &str, messages: &[NewMessage]) -> Step<Outcome> {
        let topic = self.must_topic(name)?;
        let bindings = load_bindings(self.kv, name)?;
        // The topic's dedup first, then the routes of each fresh message.
        let mut batch_keys: BTreeMap<&str, usize> = BTreeMap::new();
        let mut fates = Vec::with_capacity(messages.len());
        let (mut copies, mut copy_bytes) = (0usize, 0usize);
        for (i, message) in messages.iter().enumerate() {
            let key = message.idempotency_key.as_deref();
            let seen = match key {
                Some(k) => self.dedup_lookup(topic.uid, k)?,
                None => None,
            };
            if let Some(id) = seen {
                fates.push(TopicFate::Seen(id));
                continue;
            }
            if let Some(&first) = key.and_then(|k| batch_keys.get(k)) {
                fates.push(TopicFate::Repeat(first));
                continue;
            }
            if let Some(k) = key {
                batch_keys.insert(k, i);
                self.keyed_ahead += 1;
            }
            let routes: Vec<usize> =
                (0..bindings.len()).filter(|&b| bindings[b].filter.matches(&message.attributes)).collect();
            if routes.is_empty() && topic.config.require_route {
                return Err(QueueError::precondition(
                    Reason::Unroutable,
                    format!("messages[{i}]"),
                    format!("matches no binding of topic {name:?}, which requires a route"),
                )
                .into());
            }
            copies += routes.len();
            copy_bytes += routes.len() * message.size_bytes();
            // Refused as soon as the bound is passed: the routes of the
            // messages after it are never worked out.
            if copies > TOPIC_COPIES_MAX {
                return Err(QueueError::exhausted(
                    Reason::RequestTooLarge,
                    "messages",
                    format!(
                        "would store more than {TOPIC_COPIES_MAX} copies ({copies} by messages[{i}]); \
                         publish fewer messages at once"
                    ),
                    Limit { name: "topic_copies".into(), value: TOPIC_COPIES_MAX as u64, queue: None },
                )
                .into());
            }
            if copy_bytes > TOPIC_COPY_BYTES_MAX {
                return Err(QueueError::exhausted(
                    Reason::RequestTooLarge,
                    "messages",
                    format!(
                        "would store more than {TOPIC_COPY_BYTES_MAX} bytes over all copies \
                         ({copy_bytes} by messages[{i}]); publish fewer messages at once"
                    ),
                    Limit { name: "topic_copy_bytes".into(), value: TOPIC_COPY_BYTES_MAX as u64, queue: None },
                )
                .into());
            }
            fates.push(TopicFate::Fresh(routes));
        }
        // Each bound queue's share, planned against its limits and dedup:
        // any refusal refuses the whole publish, before anything changed.
        let mut shares: BTreeMap<usize, Vec<(usize, &NewMessage)>> = BTreeMap::new();
        for (i, fate) in fates.iter().enumerate() {
            if let TopicFate::Fresh(routes) = fate {
                for &b in routes {
                    shares.entry(b).or_default().push((i, &messages[i]));
                }
            }
        }
        let mut plans = Vec::with_capacity(shares.len());
        for (&b, share) in &shares {
            let queue_name = &bindings[b].queue;
            let queue = self.queue(queue_name)?.ok_or_else(|| {
                crate::kv::StoreFault(format!("topic {name:?} is bound to queue {queue_name:?}, which is missing"))
            })?;
            plans.push((b, self.plan_publish(&queue, share)?));
        }
        let routed: usize =
            plans.iter().map(|(_, plan)| plan.iter().filter(|fate| matches!(fate, QueueFate::Fresh)).count()).sum();
        // Accepted. The topic's keys and ids first; then each queue's
        // copies, one queue at a time, each record loaded just before and
        // saved just after (an eviction by the shared dedup bound may
        // change another record in between).
        let mut topic = topic;
        self.dedup_expire(&mut topic)?;
        let mut results: Vec<TopicPublishResult> = Vec::with_capacity(messages.len());
        for (i, fate) in fates.iter().enumerate() {
            let result = match fate {
                TopicFate::Seen(id) => TopicPublishResult { id: *id, duplicate: true, copies: Vec::new() },
                TopicFate::Repeat(first) => {
                    TopicPublishResult { id: results[*first].id, duplicate: true, copies: Vec::new() }
                }
                TopicFate::Fresh(routes) => {
                    let id = self.take_message_id();
                    if let Some(key) = &messages[i].idempotency_key
                        && topic.config.dedup_window_ms > 0
                    {
                        let expires_at_ms = self.now_ms().saturating_add(topic.config.dedup_window_ms);
                        self.dedup_remember(&mut topic, key, id, expires_at_ms)?;
                    }
                    topic.stats.published_total += 1;
                    topic.stats.unrouted_total += u64::from(routes.is_empty());
                    TopicPublishResult { id, duplicate: false, copies: Vec::with_capacity(routes.len()) }
                }
            };
            if result.duplicate {
                topic.stats.duplicates_total += 1;
            }
            results.push(result);
        }
        topic.stats.routed_copies_total += routed as u64;
        self.save_topic(&topic);
        for (b, plan) in plans {
            let share = &shares[&b];
            let queue_name = &bindings[b].queue;
            // Planned just above; nothing since can have removed it (and a
            // refusal now would leave this entry's writes half done).
            let mut queue = self.queue(queue_name)?.ok_or_else(|| {
                crate::kv::StoreFault(format!("bound queue {queue_name:?} vanished during a topic publish"))
            })?;
            let stored = self.store_planned(&mut queue, share, &plan)?;
            self.save_queue(&queue);
            for (&(i, _), (id, duplicate)) in share.iter().zip(stored) {
                results[i].copies.push(TopicCopy { queue: queue_name.clone(), id, duplicate });
            }
        }
        Ok(Outcome::TopicPublished(results))
    }
}
