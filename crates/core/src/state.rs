//! `QueueState`: every queue, the cluster-wide timer set, and `apply`.
//!
//! `apply(entry_time_ms, command)` is a pure function of (state, entry).
//! Time comes only from the entry timestamp the leader stamped; the state
//! keeps it monotonic by never moving `now_ms` backwards, so a new leader
//! with a slower clock cannot make a lease live again.

use std::collections::{BTreeMap, BTreeSet};

use crate::command::{Command, NewMessage};
use crate::config::{ConfigUpdate, QueueConfig, validate_queue_name};
use crate::error::QueueError;
use crate::limits::*;
use crate::message::{Message, MessageState, StateFilter};
use crate::queue::{Queue, TimerKind, Timers};
use crate::response::{Outcome, PeekPage, PublishResult, QueueInfo, Response};

/// The replicated state of every queue.
#[derive(Clone, Debug, Default)]
pub struct QueueState {
    /// The latest entry time applied; never decreases.
    pub(crate) now_ms: u64,
    /// The uid the next created queue gets.
    pub(crate) next_queue_uid: u64,
    /// The id the next message gets, in whichever queue. Ids are unique
    /// across all queues and never reused, so a receipt from a deleted
    /// queue can never name a message of a new queue of the same name.
    pub(crate) next_message_id: u64,
    pub(crate) queues: BTreeMap<String, Queue>,
    /// Derived: queue uid → name, for firing timers.
    pub(crate) names_by_uid: BTreeMap<u64, String>,
    /// Derived: every pending delay end, lease end and TTL.
    pub(crate) timers: Timers,
    /// Derived: idempotency keys remembered by all queues together.
    pub(crate) dedup_keys: usize,
    /// Derived: `(expiry of the queue's first key, queue uid)` for every
    /// queue that remembers a key, so the cluster-wide bound finds the key
    /// closest to the end of its window in any queue.
    pub(crate) dedup_heads: BTreeSet<(u64, u64)>,
    /// The dedup bounds: the constants, smaller in tests. Not state.
    pub(crate) dedup_caps: DedupCaps,
}

/// Bounds on remembered idempotency keys (see `DEDUP_KEYS_MAX` and
/// `DEDUP_KEYS_TOTAL_MAX`). Replicas must use the same ones; only tests
/// change them, through [`QueueState::with_dedup_caps`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DedupCaps {
    /// Most keys one queue remembers.
    pub per_queue: usize,
    /// Most keys all queues remember together.
    pub total: usize,
}

impl Default for DedupCaps {
    fn default() -> Self {
        Self { per_queue: DEDUP_KEYS_MAX, total: DEDUP_KEYS_TOTAL_MAX }
    }
}

impl QueueState {
    pub fn new() -> Self {
        Self { next_queue_uid: 1, next_message_id: 1, ..Self::default() }
    }

    /// A new state with smaller dedup bounds, for tests that reach them.
    /// Panics unless `0 < per_queue <= total` (as the constants are).
    pub fn with_dedup_caps(caps: DedupCaps) -> Self {
        assert!(0 < caps.per_queue && caps.per_queue <= caps.total, "bad dedup caps {caps:?}");
        Self { dedup_caps: caps, ..Self::new() }
    }

    /// Idempotency keys remembered by all queues together (bounded by
    /// `DEDUP_KEYS_TOTAL_MAX`).
    pub fn dedup_keys(&self) -> usize {
        self.dedup_keys
    }

    /// Applies one command at the leader-stamped `entry_time_ms`.
    pub fn apply(&mut self, entry_time_ms: u64, command: &Command) -> Response {
        self.advance_to(entry_time_ms);
        command.validate()?;
        match command {
            Command::CreateQueue { name, config } => self.create_queue(name, config),
            Command::UpdateQueue { name, update } => self.update_queue(name, update),
            Command::DeleteQueue { name } => self.delete_queue(name),
            Command::PurgeQueue { name } => self.purge_queue(name),
            Command::Publish { queue, messages } => self.publish(queue, messages),
            Command::Receive { queue, max_messages, lease_ms } => self.receive(queue, *max_messages, *lease_ms),
            Command::Ack { receipts } => self.ack(receipts),
            Command::Nack { receipt, delay_ms, dead_letter, reason } => {
                self.nack(receipt, *delay_ms, *dead_letter, reason)
            }
            Command::ExtendLease { receipt, lease_ms } => self.extend_lease(receipt, *lease_ms),
            Command::Redrive { queue, max_messages } => self.redrive(queue, *max_messages),
            Command::Tick => Ok(Outcome::Ticked),
        }
    }

    /// The time of the latest applied entry.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// When the next timer (delay end, lease end, TTL) is due, if any. The
    /// server proposes a `Tick` then, so time-driven changes are applied
    /// even when no client writes.
    pub fn next_timer_ms(&self) -> Option<u64> {
        self.timers.first().map(|timer| timer.due_ms)
    }

    /// Moves time forward and fires due timers (at most
    /// `TIMERS_PER_APPLY_MAX`; the rest fire on the next entries).
    fn advance_to(&mut self, entry_time_ms: u64) {
        self.now_ms = self.now_ms.max(entry_time_ms);
        for _ in 0..TIMERS_PER_APPLY_MAX {
            let Some(timer) = self.timers.first().copied() else { break };
            if timer.due_ms > self.now_ms {
                break;
            }
            let name = self.names_by_uid.get(&timer.queue_uid).cloned().expect("timer for a live queue");
            match timer.kind {
                TimerKind::Ttl => {
                    let queue = self.queues.get_mut(&name).expect("uid index is exact");
                    queue.remove(&mut self.timers, timer.message_id).expect("timer for a live message");
                    queue.counters.expired_total += 1;
                }
                TimerKind::State => self.fire_state_timer(&name, timer.message_id),
            }
        }
    }

    fn fire_state_timer(&mut self, name: &str, id: u64) {
        let queue = self.queues.get_mut(name).expect("uid index is exact");
        let message = queue.messages.get(&id).expect("timer for a live message");
        match message.state {
            MessageState::Delayed { .. } => queue.set_state(&mut self.timers, id, MessageState::Ready),
            MessageState::Leased { attempt, .. } => {
                let now_ms = self.now_ms;
                let message = queue.messages.get_mut(&id).expect("checked above");
                message.record(crate::message::HistoryEvent::LeaseExpired { at_ms: now_ms, attempt });
                self.fail_delivery(name, id, None, false, "lease expired");
            }
            MessageState::Ready | MessageState::Dead => unreachable!("no state timer for ready or dead messages"),
        }
    }

    pub(crate) fn queue(&self, name: &str) -> Result<&Queue, QueueError> {
        self.queues.get(name).ok_or_else(|| QueueError::not_found(format!("queue {name:?}")))
    }

    pub(crate) fn queue_mut(&mut self, name: &str) -> Result<&mut Queue, QueueError> {
        self.queues.get_mut(name).ok_or_else(|| QueueError::not_found(format!("queue {name:?}")))
    }

    fn check_dead_letter_target(&self, name: &str, config: &QueueConfig) -> Result<(), QueueError> {
        match &config.dead_letter_queue {
            Some(dlq) if dlq == name => Err(QueueError::invalid("dead_letter_queue", "cannot be the queue itself")),
            Some(dlq) if !self.queues.contains_key(dlq) => {
                Err(QueueError::not_found(format!("dead_letter_queue {dlq:?}")))
            }
            _ => Ok(()),
        }
    }

    fn create_queue(&mut self, name: &str, update: &ConfigUpdate) -> Response {
        if self.queues.contains_key(name) {
            return Err(QueueError::AlreadyExists { name: name.to_string() });
        }
        if self.queues.len() >= QUEUES_MAX {
            return Err(QueueError::exhausted("name", format!("the cluster already holds {QUEUES_MAX} queues")));
        }
        let config = update.apply_to(&QueueConfig::default());
        config.validate()?;
        self.check_dead_letter_target(name, &config)?;
        let uid = self.next_queue_uid;
        self.next_queue_uid += 1;
        self.queues.insert(name.to_string(), Queue::new(uid, name.to_string(), config, self.now_ms));
        self.names_by_uid.insert(uid, name.to_string());
        Ok(Outcome::QueueCreated(self.queue_info(name)?))
    }

    fn update_queue(&mut self, name: &str, update: &ConfigUpdate) -> Response {
        let config = update.apply_to(&self.queue(name)?.config);
        config.validate()?;
        self.check_dead_letter_target(name, &config)?;
        self.queue_mut(name)?.config = config;
        Ok(Outcome::QueueUpdated(self.queue_info(name)?))
    }

    fn delete_queue(&mut self, name: &str) -> Response {
        let queue = self.queues.remove(name).ok_or_else(|| QueueError::not_found(format!("queue {name:?}")))?;
        for timer in queue.timers() {
            assert!(self.timers.remove(&timer), "timer index out of sync for {name}");
        }
        self.names_by_uid.remove(&queue.uid);
        if let Some(first) = queue.dedup_first_expiry() {
            self.dedup_heads.remove(&(first, queue.uid));
        }
        self.dedup_keys -= queue.dedup.len();
        Ok(Outcome::QueueDeleted { messages_deleted: queue.len() })
    }

    fn purge_queue(&mut self, name: &str) -> Response {
        let queue = self.queues.get_mut(name).ok_or_else(|| QueueError::not_found(format!("queue {name:?}")))?;
        let ids: Vec<u64> = queue.messages.keys().copied().collect();
        for id in &ids {
            queue.remove(&mut self.timers, *id);
        }
        Ok(Outcome::QueuePurged { messages_purged: ids.len() as u64 })
    }

    fn publish(&mut self, name: &str, messages: &[NewMessage]) -> Response {
        let now_ms = self.now_ms;
        let queue = self.queue_mut(name)?;
        let max_message_bytes = queue.config.max_message_bytes as usize;
        // First pass: decide every message's fate without changing anything,
        // so the batch commits whole or not at all.
        let mut batch_keys: BTreeMap<&str, usize> = BTreeMap::new();
        let mut fresh = 0u64;
        let mut fresh_bytes = 0u64;
        let mut plan = Vec::with_capacity(messages.len());
        for (i, message) in messages.iter().enumerate() {
            if message.size_bytes() > max_message_bytes {
                return Err(QueueError::exhausted(
                    format!("messages[{i}].body"),
                    format!("{} bytes exceeds max_message_bytes {max_message_bytes}", message.size_bytes()),
                ));
            }
            let key = message.idempotency_key.as_deref();
            if let Some(id) = key.and_then(|k| queue.dedup_lookup(k, now_ms)) {
                plan.push(Err(id));
            } else if let Some(&first) = key.and_then(|k| batch_keys.get(k)) {
                plan.push(Ok(Some(first)));
            } else {
                if let Some(k) = key {
                    batch_keys.insert(k, i);
                }
                fresh += 1;
                fresh_bytes += message.size_bytes() as u64;
                plan.push(Ok(None));
            }
        }
        if let Some(reason) = queue.would_overflow(fresh, fresh_bytes) {
            return Err(QueueError::exhausted("queue", reason));
        }
        // Only now, with the publish accepted, forget keys whose window has
        // passed (lookups above already ignore them): a rejected command
        // changes nothing but time.
        self.with_dedup(name, |queue| queue.dedup_expire(now_ms));
        // Second pass: store. `plan[i]` is Err(original id) for a key seen
        // before, Ok(Some(j)) for a repeat of message j in this batch.
        let mut results: Vec<PublishResult> = Vec::with_capacity(messages.len());
        for (message, fate) in messages.iter().zip(plan) {
            let result = match fate {
                Err(id) => PublishResult { id, duplicate: true },
                Ok(Some(first)) => PublishResult { id: results[first].id, duplicate: true },
                Ok(None) => PublishResult { id: self.store_new(name, message), duplicate: false },
            };
            let queue = self.queues.get_mut(name).expect("checked above");
            if result.duplicate {
                queue.counters.duplicates_total += 1;
            } else {
                queue.counters.published_total += 1;
            }
            results.push(result);
        }
        Ok(Outcome::Published(results))
    }

    fn store_new(&mut self, name: &str, new: &NewMessage) -> u64 {
        let now_ms = self.now_ms;
        let id = self.take_message_id();
        let queue = self.queues.get_mut(name).expect("caller checked");
        let delay_ms = new.delay_ms.unwrap_or(queue.config.default_delay_ms);
        let state = if delay_ms == 0 {
            MessageState::Ready
        } else {
            MessageState::Delayed { visible_at_ms: now_ms.saturating_add(delay_ms) }
        };
        let ttl_ms = queue.config.message_ttl_ms;
        let message = Message {
            id,
            body: new.body.clone(),
            attributes: new.attributes.clone(),
            published_at_ms: now_ms,
            delivery_count: 0,
            redrive_base: 0,
            state,
            expires_at_ms: (ttl_ms > 0).then(|| now_ms.saturating_add(ttl_ms)),
            idempotency_key: new.idempotency_key.clone(),
            dead_letter: None,
            history: Default::default(),
            history_dropped: 0,
        };
        queue.insert(&mut self.timers, message);
        let window_ms = queue.config.dedup_window_ms;
        if let Some(key) = &new.idempotency_key
            && window_ms > 0
        {
            self.dedup_remember(name, key.clone(), id, now_ms.saturating_add(window_ms));
        }
        id
    }

    /// Remembers `key` → `id` in queue `name` until `expires_at_ms`. If the
    /// queue holds `per_queue` keys, its key closest to expiry is forgotten;
    /// else if all queues hold `total`, the key closest to expiry in any
    /// queue is. Either is counted in its queue's `dedup_evicted_total` if
    /// its window had not ended. Deterministic: ordered by (expiry, key) in
    /// a queue and (expiry, queue uid) across queues.
    fn dedup_remember(&mut self, name: &str, key: String, id: u64, expires_at_ms: u64) {
        let (now_ms, caps) = (self.now_ms, self.dedup_caps);
        let queue = self.queues.get(name).expect("caller checked");
        let adds_a_key = !queue.dedup.contains_key(&key) && queue.dedup.len() < caps.per_queue;
        if adds_a_key
            && self.dedup_keys >= caps.total
            && let Some(&(_, uid)) = self.dedup_heads.first()
        {
            let victim = self.names_by_uid.get(&uid).cloned().expect("uid index is exact");
            self.with_dedup(&victim, |queue| queue.dedup_evict_first(now_ms));
        }
        self.with_dedup(name, |queue| queue.dedup_remember(key, id, expires_at_ms, caps.per_queue, now_ms));
    }

    /// Runs `change` on queue `name`'s dedup table, keeping the cluster-wide
    /// key count and heads exact.
    fn with_dedup<R>(&mut self, name: &str, change: impl FnOnce(&mut Queue) -> R) -> R {
        let queue = self.queues.get_mut(name).expect("caller checked");
        let (first_before, keys_before) = (queue.dedup_first_expiry(), queue.dedup.len());
        let result = change(queue);
        let (first_after, keys_after) = (queue.dedup_first_expiry(), queue.dedup.len());
        if first_before != first_after {
            if let Some(first) = first_before {
                self.dedup_heads.remove(&(first, queue.uid));
            }
            if let Some(first) = first_after {
                self.dedup_heads.insert((first, queue.uid));
            }
        }
        self.dedup_keys = self.dedup_keys - keys_before + keys_after;
        result
    }

    pub(crate) fn take_message_id(&mut self) -> u64 {
        let id = self.next_message_id;
        self.next_message_id += 1;
        id
    }

    // ---- Reads. The server calls these after a linearizable read barrier.

    pub fn queue_info(&self, name: &str) -> Result<QueueInfo, QueueError> {
        let queue = self.queue(name)?;
        Ok(QueueInfo {
            name: queue.name.clone(),
            config: queue.config.clone(),
            stats: queue.stats(self.now_ms),
            created_at_ms: queue.created_at_ms,
        })
    }

    /// Queues whose name starts with `prefix`, after `start_after`, in name
    /// order; the second value is where the next page starts, if any.
    pub fn list_queues(&self, prefix: &str, start_after: &str, limit: u32) -> (Vec<QueueInfo>, Option<String>) {
        let limit = limit.clamp(1, LIST_QUEUES_MAX) as usize;
        let mut names = self
            .queues
            .range::<str, _>((std::ops::Bound::Excluded(start_after), std::ops::Bound::Unbounded))
            .map(|(name, _)| name)
            .skip_while(|name| name.as_str() < prefix)
            .take_while(|name| name.starts_with(prefix));
        let page: Vec<QueueInfo> =
            names.by_ref().take(limit).map(|name| self.queue_info(name).expect("listed")).collect();
        let more = names.next().is_some();
        let next = if more { page.last().map(|info| info.name.clone()) } else { None };
        (page, next)
    }

    /// Messages in `filter` state with id > `after_id`, without changing them.
    pub fn peek(&self, name: &str, filter: StateFilter, after_id: u64, limit: u32) -> Result<PeekPage, QueueError> {
        validate_queue_name(name).map_err(|e| e.in_field("queue"))?;
        let queue = self.queue(name)?;
        let limit = limit.clamp(1, PEEK_MESSAGES_MAX) as usize;
        let mut messages = Vec::new();
        let mut last_seen = None;
        for (scanned, (id, message)) in queue.messages.range(after_id.saturating_add(1)..).enumerate() {
            if messages.len() == limit || scanned == PEEK_SCAN_MAX {
                return Ok(PeekPage { messages, next_after_id: last_seen });
            }
            last_seen = Some(*id);
            if filter.matches(&message.state) {
                messages.push(message.clone());
            }
        }
        Ok(PeekPage { messages, next_after_id: None })
    }

    /// One message with its state and history.
    pub fn inspect(&self, name: &str, id: u64) -> Result<Message, QueueError> {
        validate_queue_name(name).map_err(|e| e.in_field("queue"))?;
        let queue = self.queue(name)?;
        queue.messages.get(&id).cloned().ok_or_else(|| QueueError::not_found(format!("message {id} in queue {name:?}")))
    }

    /// True if `receipt` names a live lease as of the last applied entry.
    pub fn receipt_is_live(&self, receipt: &crate::command::Receipt) -> bool {
        self.check_live("receipt", receipt).is_ok()
    }

    /// True if a receive on `name` now would return something.
    pub fn has_visible(&self, name: &str) -> bool {
        self.queues.get(name).is_some_and(|queue| !queue.ready.is_empty())
    }
}
