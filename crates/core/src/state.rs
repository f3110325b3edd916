//! `apply`: one command at one entry time, over a key-value transaction.
//!
//! `apply(txn, caps, entry_time_ms, command)` is a pure function of (the
//! state in `txn`, the entry). Time comes only from the entry timestamp the
//! leader stamped; the state keeps it monotonic by never moving `now_ms`
//! backwards, so a new leader with a slower clock cannot make a lease live
//! again. [`QueueState`] is the same over an in-memory store, for tests.

use crate::command::{Command, NewMessage};
use crate::config::{ConfigUpdate, QueueConfig};
use crate::error::{Limit, QueueError, Reason};
use crate::keys::{self, Parts};
use crate::kv::{Direction, KvRead, MemKv, StoreFault, Txn};
use crate::limits::*;
use crate::message::{Content, Head, HistoryEvent, Message, MessageState};
use crate::response::{Outcome, PublishResult, Response};
use crate::store::{Ctx, Fail, Globals, Io, QueueRecord, Step, TIMER_STATE, TIMER_TTL, encode, first_timer};

/// Bounds on remembered idempotency keys (see `DEDUP_KEYS_MAX` and
/// `DEDUP_KEYS_TOTAL_MAX`). Replicas must use the same ones; only tests
/// change them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DedupCaps {
    /// Most keys one queue remembers.
    pub per_queue: usize,
    /// Most keys all queues remember together.
    pub total: usize,
    /// Most index keys one eviction reads ahead (`DEDUP_EVICT_AHEAD_MAX`;
    /// tests set 1, the one-scan-per-key reference). Changes how many
    /// scans an apply makes, never what it does: replicas may differ here.
    pub evict_ahead: usize,
}

impl Default for DedupCaps {
    fn default() -> Self {
        Self { per_queue: DEDUP_KEYS_MAX, total: DEDUP_KEYS_TOTAL_MAX, evict_ahead: DEDUP_EVICT_AHEAD_MAX }
    }
}

impl DedupCaps {
    /// Panics unless `0 < per_queue <= total` (as the constants are) and
    /// `evict_ahead > 0`.
    pub fn checked(self) -> Self {
        assert!(0 < self.per_queue && self.per_queue <= self.total && self.evict_ahead > 0, "bad dedup caps {self:?}");
        self
    }
}

/// Whether anyone reads a command's response. The node that proposed a
/// command answers its client; a follower, or a node re-applying its log
/// after a restart, throws the response away. The state a command leaves
/// is the same either way (G8): only what the response carries differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The whole response: a receive's deliveries carry their bodies.
    Wanted,
    /// Nobody reads it: a receive does not read the bodies it delivers
    /// (its deliveries carry empty ones), the one read a response alone
    /// needs.
    Unread,
}

/// Applies one command at the leader-stamped `entry_time_ms`, writing its
/// changes into `txn`. `Err` only if the store failed: then `txn` must be
/// dropped, not written, and the host must stop applying.
pub fn apply(
    txn: &mut Txn<'_>,
    caps: DedupCaps,
    entry_time_ms: u64,
    command: &Command,
) -> Result<Response, StoreFault> {
    apply_for(txn, caps, entry_time_ms, command, Answer::Wanted)
}

/// [`apply`], saying whether anyone reads the response.
pub fn apply_for(
    txn: &mut Txn<'_>,
    caps: DedupCaps,
    entry_time_ms: u64,
    command: &Command,
    answer: Answer,
) -> Result<Response, StoreFault> {
    let g = Globals::load(txn)?;
    let mut ctx =
        Ctx { kv: txn, g, caps, answer, evict_ahead: None, keyed_ahead: 0, expire_left: DEDUP_EXPIRE_PER_APPLY_MAX };
    ctx.advance_to(entry_time_ms)?;
    let result = command.validate().map_err(Fail::Reject).and_then(|()| ctx.dispatch(command));
    let response = match result {
        Ok(outcome) => Ok(outcome),
        Err(Fail::Reject(error)) => Err(error),
        Err(Fail::Store(fault)) => return Err(fault),
    };
    ctx.clean_up()?;
    let g = ctx.g.clone();
    ctx.kv.put(keys::GLOBALS.to_vec(), encode(&g));
    Ok(response)
}

impl Ctx<'_, '_> {
    fn dispatch(&mut self, command: &Command) -> Step<Outcome> {
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
            Command::CreateTopic { name, config } => self.create_topic(name, config),
            Command::DeleteTopic { name } => self.delete_topic(name),
            Command::Bind { topic, queue, filter } => self.bind(topic, queue, filter),
            Command::Unbind { topic, queue } => self.unbind(topic, queue),
            Command::PublishTopic { topic, messages } => self.publish_topic(topic, messages),
        }
    }

    /// Moves time forward and fires due timers (at most
    /// `TIMERS_PER_APPLY_MAX`; the rest fire on the next entries).
    fn advance_to(&mut self, entry_time_ms: u64) -> Io<()> {
        self.g.now_ms = self.g.now_ms.max(entry_time_ms);
        for _ in 0..TIMERS_PER_APPLY_MAX {
            let Some(key) = first_timer(self.kv, &self.g)? else {
                self.g.timer_floor = keys::prefix_end(&keys::table(keys::TIMER));
                break;
            };
            let mut parts = Parts::of(&key);
            let (due_ms, space, id, kind) = (parts.u64(), parts.u64(), parts.u64(), parts.u8());
            if due_ms > self.now_ms() {
                self.g.timer_floor = key;
                break;
            }
            // Past this timer, before firing it: a timer that firing puts
            // lower moves the floor back.
            self.g.timer_floor = keys::successor(&key);
            let Some(name) = crate::store::get::<String>(self.kv, "space index", &keys::space(space))? else {
                // A purged or deleted queue's message, not cleaned up yet:
                // clean it up now.
                let message = self.message(space, id)?;
                self.delete_message_keys(space, &message);
                continue;
            };
            let mut queue = self
                .queue(&name)?
                .ok_or_else(|| StoreFault(format!("space {space} names queue {name:?}, which is missing")))?;
            match kind {
                TIMER_TTL => {
                    self.remove_message(&mut queue, id)?;
                    queue.stats.expired_total += 1;
                }
                TIMER_STATE => self.fire_state_timer(&mut queue, id)?,
                other => return Err(StoreFault(format!("timer of unknown kind {other}"))),
            }
            self.save_queue(&queue);
        }
        Ok(())
    }

    fn fire_state_timer(&mut self, queue: &mut QueueRecord, id: u64) -> Io<()> {
        let mut message = self.message(queue.space, id)?;
        let counted = message.size_bytes();
        match message.state {
            MessageState::Delayed { .. } => {
                self.set_state(queue, &mut message, MessageState::Ready);
                self.put_message(queue, counted, &message);
            }
            MessageState::Leased { attempt, .. } => {
                message.record(HistoryEvent::LeaseExpired { at_ms: self.now_ms(), attempt });
                self.fail_delivery(queue, message, counted, None, false, "lease expired")?;
            }
            MessageState::Ready | MessageState::Dead => {
                return Err(StoreFault(format!("state timer for message {id}, which is ready or dead")));
            }
        }
        Ok(())
    }

    fn check_dead_letter_target(&self, name: &str, config: &QueueConfig) -> Step<()> {
        match &config.dead_letter_queue {
            Some(dlq) if dlq == name => {
                Err(QueueError::invalid("dead_letter_queue", "cannot be the queue itself").into())
            }
            Some(dlq) if self.queue(dlq)?.is_none() => {
                Err(QueueError::named_queue_not_found("dead_letter_queue", dlq).into())
            }
            _ => Ok(()),
        }
    }

    fn queue_count(&self) -> Io<usize> {
        let mut count = 0;
        let prefix = keys::table(keys::QUEUE);
        self.kv.scan(&prefix, &keys::prefix_end(&prefix), Direction::Forward, &mut |_, _| {
            count += 1;
            count <= QUEUES_MAX
        })?;
        Ok(count)
    }

    fn create_queue(&mut self, name: &str, update: &ConfigUpdate) -> Step<Outcome> {
        if self.queue(name)?.is_some() {
            return Err(QueueError::AlreadyExists { kind: Reason::QueueExists, name: name.to_string() }.into());
        }
        if self.queue_count()? >= QUEUES_MAX {
            return Err(QueueError::exhausted(
                Reason::QueueLimitReached,
                "queue",
                format!("the cluster already holds {QUEUES_MAX} queues"),
                Limit { name: "queues".into(), value: QUEUES_MAX as u64, queue: None },
            )
            .into());
        }
        let config = update.apply_to(&QueueConfig::default());
        config.validate()?;
        self.check_dead_letter_target(name, &config)?;
        let uid = self.take_uid();
        let space = self.take_uid();
        let queue = QueueRecord::new(uid, space, name, config, self.now_ms());
        self.kv.put(keys::uid(uid), encode(&queue.name));
        self.kv.put(keys::space(space), encode(&queue.name));
        self.save_queue(&queue);
        Ok(Outcome::QueueCreated(crate::read::info(self.kv, &queue, self.now_ms())?))
    }

    fn update_queue(&mut self, name: &str, update: &ConfigUpdate) -> Step<Outcome> {
        let mut queue = self.must_queue(name)?;
        let config = update.apply_to(&queue.config);
        config.validate()?;
        self.check_dead_letter_target(name, &config)?;
        queue.config = config;
        self.save_queue(&queue);
        Ok(Outcome::QueueUpdated(crate::read::info(self.kv, &queue, self.now_ms())?))
    }

    fn delete_queue(&mut self, name: &str) -> Step<Outcome> {
        let queue = self.must_queue(name)?;
        self.unbind_queue(name)?;
        self.kv.delete(keys::queue(name));
        self.kv.delete(keys::uid(queue.uid));
        self.doom_space(queue.space);
        if queue.dedup_keys > 0 {
            self.doom_dedup(queue.uid);
        }
        Ok(Outcome::QueueDeleted { messages_deleted: queue.len() })
    }

    fn purge_queue(&mut self, name: &str) -> Step<Outcome> {
        let mut queue = self.must_queue(name)?;
        let purged = queue.len();
        self.doom_space(queue.space);
        queue.space = self.take_uid();
        queue.clear_ready_range();
        self.kv.put(keys::space(queue.space), encode(&queue.name));
        let stats = &mut queue.stats;
        (stats.ready, stats.leased, stats.delayed, stats.dead, stats.total_bytes) = (0, 0, 0, 0, 0);
        self.save_queue(&queue);
        Ok(Outcome::QueuePurged { messages_purged: purged })
    }

    fn publish(&mut self, name: &str, messages: &[NewMessage]) -> Step<Outcome> {
        let mut queue = self.must_queue(name)?;
        // Decide every message's fate without changing anything, so the
        // batch commits whole or not at all; then store.
        let share: Vec<(usize, &NewMessage)> = messages.iter().enumerate().collect();
        let plan = self.plan_publish(&queue, &share)?;
        let stored = self.store_planned(&mut queue, &share, &plan)?;
        self.save_queue(&queue);
        Ok(Outcome::Published(stored.into_iter().map(|(id, duplicate)| PublishResult { id, duplicate }).collect()))
    }

    pub(crate) fn store_new(&mut self, queue: &mut QueueRecord, new: &NewMessage) -> Io<u64> {
        let now_ms = self.now_ms();
        let id = self.take_message_id();
        let delay_ms = new.delay_ms.unwrap_or(queue.config.default_delay_ms);
        let state = if delay_ms == 0 {
            MessageState::Ready
        } else {
            MessageState::Delayed { visible_at_ms: now_ms.saturating_add(delay_ms) }
        };
        let ttl_ms = queue.config.message_ttl_ms;
        let expires_at_ms = (ttl_ms > 0).then(|| now_ms.saturating_add(ttl_ms));
        let message =
            Head { idempotency_key: new.idempotency_key.clone(), ..Head::new(id, now_ms, state, expires_at_ms) };
        let content = Content { body: new.body.clone(), attributes: new.attributes.clone() };
        self.insert_message(queue, message, &content);
        let window_ms = queue.config.dedup_window_ms;
        if let Some(key) = &new.idempotency_key
            && window_ms > 0
        {
            self.dedup_remember(queue, key, id, now_ms.saturating_add(window_ms))?;
        }
        Ok(id)
    }
}

/// The replicated state of every queue over an in-memory store: `apply`
/// and every read, for tests and tools. Hosts with their own store call
/// [`apply`] and [`crate::read`] directly.
#[derive(Clone, Debug, Default)]
pub struct QueueState {
    pub(crate) kv: MemKv,
    /// The dedup bounds: the constants, smaller in tests. Not state.
    pub(crate) dedup_caps: DedupCaps,
}

impl QueueState {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new state with smaller dedup bounds, for tests that reach them.
    /// Panics unless `0 < per_queue <= total` (as the constants are).
    pub fn with_dedup_caps(caps: DedupCaps) -> Self {
        Self { dedup_caps: caps.checked(), ..Self::new() }
    }

    /// The store itself.
    pub fn kv(&self) -> &MemKv {
        &self.kv
    }

    /// Applies one command at the leader-stamped `entry_time_ms`.
    pub fn apply(&mut self, entry_time_ms: u64, command: &Command) -> Response {
        let mut txn = Txn::new(&self.kv);
        let response = apply(&mut txn, self.dedup_caps, entry_time_ms, command).expect("memory never fails");
        let writes = txn.finish().expect("memory never fails");
        self.kv.write(writes);
        response
    }

    fn reader(&self) -> crate::read::Reader<'_> {
        crate::read::Reader::new(&self.kv)
    }

    /// Idempotency keys stored by all queues together (bounded by
    /// `DEDUP_KEYS_TOTAL_MAX`).
    pub fn dedup_keys(&self) -> usize {
        self.reader().dedup_keys().expect("memory never fails") as usize
    }

    /// The time of the latest applied entry.
    pub fn now_ms(&self) -> u64 {
        self.reader().now_ms().expect("memory never fails")
    }

    /// When the next timer (delay end, lease end, TTL) or cleanup is due.
    pub fn next_timer_ms(&self) -> Option<u64> {
        self.reader().next_timer_ms().expect("memory never fails")
    }

    pub fn queue_info(&self, name: &str) -> Result<crate::QueueInfo, QueueError> {
        self.reader().queue_info(name).expect("memory never fails")
    }

    pub fn list_queues(&self, prefix: &str, start_after: &str, limit: u32) -> (Vec<crate::QueueInfo>, Option<String>) {
        self.reader().list_queues(prefix, start_after, limit).expect("memory never fails")
    }

    pub fn topic_info(&self, name: &str) -> Result<crate::TopicInfo, QueueError> {
        self.reader().topic_info(name).expect("memory never fails")
    }

    pub fn list_topics(&self, prefix: &str, start_after: &str, limit: u32) -> (Vec<crate::TopicInfo>, Option<String>) {
        self.reader().list_topics(prefix, start_after, limit).expect("memory never fails")
    }

    pub fn peek(
        &self,
        name: &str,
        filter: crate::StateFilter,
        after_id: u64,
        limit: u32,
    ) -> Result<crate::PeekPage, QueueError> {
        self.reader().peek(name, filter, after_id, limit).expect("memory never fails")
    }

    pub fn inspect(&self, name: &str, id: u64) -> Result<Message, QueueError> {
        self.reader().inspect(name, id).expect("memory never fails")
    }

    pub fn receipt_is_live(&self, receipt: &crate::Receipt) -> bool {
        self.reader().receipt_is_live(receipt).expect("memory never fails")
    }

    pub fn has_visible(&self, name: &str) -> bool {
        self.reader().has_visible(name).expect("memory never fails").unwrap_or(false)
    }

    /// The state digest: equal iff the stored pairs are (see `kv`).
    pub fn digest(&self) -> [u8; 16] {
        self.reader().digest().expect("memory never fails")
    }

    /// The digest as lowercase hex, for logs and status output.
    pub fn digest_hex(&self) -> String {
        crate::read::hex(&self.digest())
    }

    /// Checks every invariant by a full scan. For tests and verify.
    pub fn check_invariants(&self) -> Result<(), String> {
        crate::invariants::check(&self.kv, self.dedup_caps)
    }
}
