//! One queue: its messages, its dedup table, and the indexes over them.
//!
//! The serialized fields are the state; the `#[serde(skip)]` fields are
//! indexes rebuilt from it (`reindex`), so a snapshot holds each fact once and
//! two replicas with equal state encode to equal bytes. Every change to a
//! message goes through `insert`, `remove` or `set_state`, which keep the
//! indexes and the cluster-wide timer set exact.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::{Order, QueueConfig};
use crate::message::{Message, MessageState};
use crate::response::QueueStats;

/// What a timer does when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKind {
    /// The message's state deadline: a delay ends or a lease ends.
    State,
    /// The message's TTL ends.
    Ttl,
}

/// A pending time event, ordered by due time, then queue, message, kind:
/// firing order is fully determined by state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Timer {
    pub due_ms: u64,
    pub queue_uid: u64,
    pub message_id: u64,
    pub kind: TimerKind,
}

pub(crate) type Timers = BTreeSet<Timer>;

/// An idempotency key's memory: the id it produced and when it is forgotten.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DedupEntry {
    pub id: u64,
    pub expires_at_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Queue {
    /// Never reused, so timers of a deleted queue can't hit a new one.
    pub uid: u64,
    pub name: String,
    pub config: QueueConfig,
    pub created_at_ms: u64,
    pub messages: BTreeMap<u64, Message>,
    pub dedup: BTreeMap<String, DedupEntry>,
    /// Lifetime counters; the by-state counts are derived below.
    pub counters: QueueStats,

    #[serde(skip)]
    pub ready: BTreeSet<u64>,
    #[serde(skip)]
    pub dead: BTreeSet<u64>,
    #[serde(skip)]
    pub leased: u64,
    #[serde(skip)]
    pub delayed: u64,
    #[serde(skip)]
    pub total_bytes: u64,
    /// Dedup keys by the time they are forgotten.
    #[serde(skip)]
    pub dedup_expiry: BTreeSet<(u64, String)>,
}

impl Queue {
    pub fn new(uid: u64, name: String, config: QueueConfig, created_at_ms: u64) -> Self {
        Self {
            uid,
            name,
            config,
            created_at_ms,
            messages: BTreeMap::new(),
            dedup: BTreeMap::new(),
            counters: QueueStats::default(),
            ready: BTreeSet::new(),
            dead: BTreeSet::new(),
            leased: 0,
            delayed: 0,
            total_bytes: 0,
            dedup_expiry: BTreeSet::new(),
        }
    }

    pub fn len(&self) -> u64 {
        self.messages.len() as u64
    }

    /// Would `count` more messages of `bytes` in all pass a limit?
    pub fn would_overflow(&self, count: u64, bytes: u64) -> Option<String> {
        let max_length = self.config.max_length;
        if max_length > 0 && self.len() + count > max_length {
            return Some(format!("queue {:?} is full: {} of max_length {max_length} messages", self.name, self.len()));
        }
        let max_bytes = self.config.max_bytes;
        if max_bytes > 0 && self.total_bytes + bytes > max_bytes {
            return Some(format!("queue {:?} is full: {} of max_bytes {max_bytes} bytes", self.name, self.total_bytes));
        }
        None
    }

    /// The next visible message in delivery order, if any.
    pub fn next_ready(&self) -> Option<u64> {
        match self.config.order {
            Order::Fifo => self.ready.first().copied(),
            Order::Lifo => self.ready.last().copied(),
        }
    }

    pub fn insert(&mut self, timers: &mut Timers, message: Message) {
        self.total_bytes += message.size_bytes();
        self.index_state(timers, message.id, &message.state);
        if let Some(due_ms) = message.expires_at_ms {
            timers.insert(self.timer(due_ms, message.id, TimerKind::Ttl));
        }
        let previous = self.messages.insert(message.id, message);
        assert!(previous.is_none(), "message id reused in {}", self.name);
    }

    pub fn remove(&mut self, timers: &mut Timers, id: u64) -> Option<Message> {
        let message = self.messages.remove(&id)?;
        self.total_bytes -= message.size_bytes();
        self.unindex_state(timers, id, &message.state);
        if let Some(due_ms) = message.expires_at_ms {
            let removed = timers.remove(&self.timer(due_ms, id, TimerKind::Ttl));
            assert!(removed, "ttl timer missing for {}/{id}", self.name);
        }
        Some(message)
    }

    /// Moves message `id` to `state`, keeping indexes and timers exact.
    pub fn set_state(&mut self, timers: &mut Timers, id: u64, state: MessageState) {
        let old = self.messages.get(&id).map(|m| m.state).expect("set_state on a missing message");
        self.unindex_state(timers, id, &old);
        self.index_state(timers, id, &state);
        self.messages.get_mut(&id).expect("checked above").state = state;
    }

    fn timer(&self, due_ms: u64, message_id: u64, kind: TimerKind) -> Timer {
        Timer { due_ms, queue_uid: self.uid, message_id, kind }
    }

    fn index_state(&mut self, timers: &mut Timers, id: u64, state: &MessageState) {
        match *state {
            MessageState::Ready => assert!(self.ready.insert(id)),
            MessageState::Dead => assert!(self.dead.insert(id)),
            MessageState::Delayed { visible_at_ms } => {
                self.delayed += 1;
                assert!(timers.insert(self.timer(visible_at_ms, id, TimerKind::State)));
            }
            MessageState::Leased { deadline_ms, .. } => {
                self.leased += 1;
                assert!(timers.insert(self.timer(deadline_ms, id, TimerKind::State)));
            }
        }
    }

    fn unindex_state(&mut self, timers: &mut Timers, id: u64, state: &MessageState) {
        match *state {
            MessageState::Ready => assert!(self.ready.remove(&id)),
            MessageState::Dead => assert!(self.dead.remove(&id)),
            MessageState::Delayed { visible_at_ms } => {
                self.delayed -= 1;
                assert!(timers.remove(&self.timer(visible_at_ms, id, TimerKind::State)));
            }
            MessageState::Leased { deadline_ms, .. } => {
                self.leased -= 1;
                assert!(timers.remove(&self.timer(deadline_ms, id, TimerKind::State)));
            }
        }
    }

    /// Every timer this queue's messages need (for rebuilding the timer set).
    pub fn timers(&self) -> impl Iterator<Item = Timer> + '_ {
        self.messages.values().flat_map(move |m| {
            let state_due = match m.state {
                MessageState::Delayed { visible_at_ms } => Some(visible_at_ms),
                MessageState::Leased { deadline_ms, .. } => Some(deadline_ms),
                MessageState::Ready | MessageState::Dead => None,
            };
            let state = state_due.map(|due| self.timer(due, m.id, TimerKind::State));
            let ttl = m.expires_at_ms.map(|due| self.timer(due, m.id, TimerKind::Ttl));
            state.into_iter().chain(ttl)
        })
    }

    /// Rebuilds the derived indexes from the serialized state. The caller
    /// inserts `timers()` into the cluster-wide set.
    pub fn reindex(&mut self) {
        self.ready.clear();
        self.dead.clear();
        self.leased = 0;
        self.delayed = 0;
        self.total_bytes = 0;
        for message in self.messages.values() {
            self.total_bytes += message.size_bytes();
            match message.state {
                MessageState::Ready => _ = self.ready.insert(message.id),
                MessageState::Dead => _ = self.dead.insert(message.id),
                MessageState::Delayed { .. } => self.delayed += 1,
                MessageState::Leased { .. } => self.leased += 1,
            }
        }
        self.dedup_expiry = self.dedup.iter().map(|(key, entry)| (entry.expires_at_ms, key.clone())).collect();
    }

    /// The original id for `key` if it is still within its window.
    pub fn dedup_lookup(&self, key: &str, now_ms: u64) -> Option<u64> {
        self.dedup.get(key).filter(|entry| entry.expires_at_ms > now_ms).map(|entry| entry.id)
    }

    /// Forgets keys whose window has passed.
    pub fn dedup_expire(&mut self, now_ms: u64) {
        while let Some((expires_at_ms, _)) = self.dedup_expiry.first() {
            if *expires_at_ms > now_ms {
                break;
            }
            let (_, key) = self.dedup_expiry.pop_first().expect("checked non-empty");
            self.dedup.remove(&key);
        }
    }

    /// Remembers `key` → `id` until `expires_at_ms`, forgetting the key
    /// closest to expiry if the table holds `keys_max` keys (bounded memory).
    pub fn dedup_remember(&mut self, key: String, id: u64, expires_at_ms: u64, keys_max: usize, now_ms: u64) {
        if let Some(old) = self.dedup.get(&key) {
            self.dedup_expiry.remove(&(old.expires_at_ms, key.clone()));
        } else if self.dedup.len() >= keys_max {
            self.dedup_evict_first(now_ms);
        }
        self.dedup_expiry.insert((expires_at_ms, key.clone()));
        self.dedup.insert(key, DedupEntry { id, expires_at_ms });
    }

    /// Forgets the key closest to the end of its window, counting it in
    /// `dedup_evicted_total` if its window had not ended by `now_ms`.
    pub fn dedup_evict_first(&mut self, now_ms: u64) {
        let Some((expires_at_ms, evicted)) = self.dedup_expiry.pop_first() else { return };
        self.dedup.remove(&evicted);
        if expires_at_ms > now_ms {
            self.counters.dedup_evicted_total += 1;
        }
    }

    /// When this queue's first key is forgotten, if it has any.
    pub fn dedup_first_expiry(&self) -> Option<u64> {
        self.dedup_expiry.first().map(|(expires_at_ms, _)| *expires_at_ms)
    }

    pub fn stats(&self, now_ms: u64) -> QueueStats {
        let oldest_ready = self.ready.first().and_then(|id| self.messages.get(id));
        QueueStats {
            ready: self.ready.len() as u64,
            leased: self.leased,
            delayed: self.delayed,
            dead: self.dead.len() as u64,
            total_bytes: self.total_bytes,
            oldest_ready_age_ms: oldest_ready.map_or(0, |m| now_ms.saturating_sub(m.published_at_ms)),
            ..self.counters.clone()
        }
    }
}
