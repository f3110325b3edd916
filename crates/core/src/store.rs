//! The state's records and the operations that keep them and their indexes
//! exact. Every change to a message goes through `insert_message`,
//! `remove_message` or `set_state`, which keep the per-queue counts, the
//! ready index and the timer index in step with it.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::{Order, QueueConfig};
use crate::error::{Limit, QueueError};
use crate::keys::{self, Parts};
use crate::kv::{Direction, KvRead, StoreFault, Txn, pair_hash};
use crate::limits::CLEANUP_PER_APPLY_MAX;
use crate::message::{Content, Head, Message, MessageState};
use crate::response::QueueStats;
use crate::state::DedupCaps;

/// Why a step stopped: a replicated rejection, or a store failure that
/// must stop the host.
#[derive(Debug)]
pub(crate) enum Fail {
    Reject(QueueError),
    Store(StoreFault),
}

impl From<QueueError> for Fail {
    fn from(error: QueueError) -> Self {
        Fail::Reject(error)
    }
}

impl From<StoreFault> for Fail {
    fn from(fault: StoreFault) -> Self {
        Fail::Store(fault)
    }
}

pub(crate) type Step<T> = Result<T, Fail>;
pub(crate) type Io<T> = Result<T, StoreFault>;

/// Encodes `value` into a vector of exactly its size: sized first, then
/// written in place (growing a vector as the encoding goes reallocated a
/// message head several times, once per write of it).
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let size = postcard::experimental::serialized_size(value).expect("sizing an encoding cannot fail");
    let mut out = vec![0; size];
    let written = postcard::to_slice(value, &mut out).expect("the encoding fits the size measured").len();
    debug_assert_eq!(written, size);
    out
}

pub(crate) fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Io<T> {
    postcard::from_bytes(bytes).map_err(|e| StoreFault(format!("{what} does not decode: {e}")))
}

pub(crate) fn get<T: DeserializeOwned>(kv: &dyn KvRead, what: &str, key: &[u8]) -> Io<Option<T>> {
    kv.get(key)?.map(|bytes| decode(what, &bytes)).transpose()
}

/// The first key (and value) with `prefix`, in `direction`.
pub(crate) fn first(kv: &dyn KvRead, prefix: &[u8], direction: Direction) -> Io<Option<(Vec<u8>, Vec<u8>)>> {
    first_in(kv, prefix, &keys::prefix_end(prefix), direction)
}

/// The first key (and value) in `start..end`, in `direction`.
pub(crate) fn first_in(
    kv: &dyn KvRead,
    start: &[u8],
    end: &[u8],
    direction: Direction,
) -> Io<Option<(Vec<u8>, Vec<u8>)>> {
    let mut found = None;
    kv.scan(start, end, direction, &mut |k, v| {
        found = Some((k.to_vec(), v.to_vec()));
        false
    })?;
    Ok(found)
}

/// Up to `limit` keys (and values) in `start..end`, from the first.
pub(crate) fn first_n_in(kv: &dyn KvRead, start: &[u8], end: &[u8], limit: usize) -> Io<crate::kv::Pairs> {
    let mut found = Vec::new();
    if limit == 0 {
        return Ok(found);
    }
    kv.scan(start, end, Direction::Forward, &mut |k, v| {
        found.push((k.to_vec(), v.to_vec()));
        found.len() < limit
    })?;
    Ok(found)
}

/// The first timer key, scanning from the floor kept in `g`.
pub(crate) fn first_timer(kv: &dyn KvRead, g: &Globals) -> Io<Option<Vec<u8>>> {
    let prefix = keys::table(keys::TIMER);
    let start = keys::scan_start(&prefix, &g.timer_floor);
    Ok(first_in(kv, &start, &keys::prefix_end(&prefix), Direction::Forward)?.map(|(key, _)| key))
}

/// Cluster-wide scalars, one record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Globals {
    /// The latest entry time applied; never decreases.
    pub now_ms: u64,
    /// The next queue uid or message space (one counter, never reused).
    pub next_queue_uid: u64,
    /// The id the next message gets, in whichever queue. Ids are unique
    /// across all queues and never reused, so a receipt from a deleted
    /// queue can never name a message of a new queue of the same name.
    pub next_message_id: u64,
    /// Idempotency keys stored by all queues together (deleted queues'
    /// included until they are cleaned up).
    pub dedup_keys: u64,
    /// No timer key sorts before this (see [`keys::scan_start`]): firing a
    /// timer moves it past that timer, a timer put lower moves it back.
    pub timer_floor: Vec<u8>,
    /// No key of the cluster-wide dedup expiry index (`X`) sorts before
    /// this.
    pub dedup_floor: Vec<u8>,
    /// Cleanup marks (`Z` and `Y` keys) stored: when 0, an entry need not
    /// look for cleanup work (two seeks saved on every entry).
    pub cleanup_marks: u64,
}

impl Globals {
    pub(crate) fn initial() -> Self {
        Self {
            now_ms: 0,
            next_queue_uid: 1,
            next_message_id: 1,
            dedup_keys: 0,
            timer_floor: Vec::new(),
            dedup_floor: Vec::new(),
            cleanup_marks: 0,
        }
    }

    pub(crate) fn load(kv: &dyn KvRead) -> Io<Self> {
        Ok(get(kv, "globals", keys::GLOBALS)?.unwrap_or_else(Self::initial))
    }
}

/// One queue: identity, config, and counts kept exact by every change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct QueueRecord {
    /// Never reused, so a deleted queue's dedup keys can't hit a new one.
    pub uid: u64,
    /// Where its messages live now (changes at every purge).
    pub space: u64,
    pub name: String,
    pub config: QueueConfig,
    pub created_at_ms: u64,
    /// By-state counts, bytes held and lifetime counters
    /// (`oldest_ready_age_ms` is computed when read).
    pub stats: QueueStats,
    /// Idempotency keys this queue stores.
    pub dedup_keys: u64,
    /// Every ready id of the current space lies in `ready_low..ready_high`
    /// (none when `ready_low >= ready_high`): receive scans only that
    /// range, so it never steps over the ids it took before (see
    /// [`keys::scan_start`]).
    pub ready_low: u64,
    pub ready_high: u64,
    /// No key of this queue's dedup expiry index (`x`) sorts before this.
    pub dedup_floor: Vec<u8>,
}

impl QueueRecord {
    /// A new queue's record: no messages, no keys.
    pub(crate) fn new(uid: u64, space: u64, name: &str, config: QueueConfig, created_at_ms: u64) -> Self {
        Self {
            uid,
            space,
            name: name.to_string(),
            config,
            created_at_ms,
            stats: QueueStats::default(),
            dedup_keys: 0,
            ready_low: u64::MAX,
            ready_high: 0,
            dedup_floor: Vec::new(),
        }
    }

    /// The key range that holds every ready id of the queue, or `None`
    /// if it holds none.
    pub(crate) fn ready_range(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        if self.ready_low >= self.ready_high {
            return None;
        }
        let end = match self.ready_high {
            u64::MAX => keys::prefix_end(&keys::ready_of(self.space)),
            high => keys::ready(self.space, high),
        };
        Some((keys::ready(self.space, self.ready_low), end))
    }

    /// Moves to a fresh, empty space (create keeps it, purge calls this).
    pub(crate) fn clear_ready_range(&mut self) {
        (self.ready_low, self.ready_high) = (u64::MAX, 0);
    }

    pub(crate) fn len(&self) -> u64 {
        self.stats.ready + self.stats.leased + self.stats.delayed + self.stats.dead
    }

    /// Would `count` more messages of `bytes` in all pass a limit?
    pub(crate) fn would_overflow(&self, count: u64, bytes: u64) -> Option<(String, Limit)> {
        let limit = |name: &str, value| Limit { name: name.into(), value, queue: Some(self.name.clone()) };
        let max_length = self.config.max_length;
        if max_length > 0 && self.len() + count > max_length {
            return Some((
                format!("queue {:?} is full: {} of max_length {max_length} messages", self.name, self.len()),
                limit("max_length", max_length),
            ));
        }
        let max_bytes = self.config.max_bytes;
        if max_bytes > 0 && self.stats.total_bytes + bytes > max_bytes {
            return Some((
                format!("queue {:?} is full: {} of max_bytes {max_bytes} bytes", self.name, self.stats.total_bytes),
                limit("max_bytes", max_bytes),
            ));
        }
        None
    }
}

/// What owns a dedup table: a queue, or a topic. Both take their uid from
/// one counter, so the dedup tables (`k`, `x`, `X`) hold both and the
/// cluster-wide bound counts both.
pub(crate) trait DedupOwner {
    fn dedup_uid(&self) -> u64;
    /// The keys it stores, the floor of its expiry index (`x`), and its
    /// count of keys forgotten before their window ended.
    fn dedup_book(&mut self) -> (&mut u64, &mut Vec<u8>, &mut u64);
}

impl DedupOwner for QueueRecord {
    fn dedup_uid(&self) -> u64 {
        self.uid
    }

    fn dedup_book(&mut self) -> (&mut u64, &mut Vec<u8>, &mut u64) {
        (&mut self.dedup_keys, &mut self.dedup_floor, &mut self.stats.dedup_evicted_total)
    }
}

/// What a timer does when it fires (the last byte of its key).
pub(crate) const TIMER_STATE: u8 = 0;
pub(crate) const TIMER_TTL: u8 = 1;

/// A dedup key's memory: the id it produced and when it is forgotten.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DedupEntry {
    pub id: u64,
    pub expires_at_ms: u64,
}

/// Reads of queue records and messages, for apply and for reads alike.
pub(crate) fn load_queue(kv: &dyn KvRead, name: &str) -> Io<Option<QueueRecord>> {
    get(kv, "queue record", &keys::queue(name))
}

/// A message's head (its state, counts and history; not its content).
pub(crate) fn load_head(kv: &dyn KvRead, space: u64, id: u64) -> Io<Option<Head>> {
    get(kv, "message", &keys::message(space, id))
}

/// The content of a message whose head exists: its absence is a broken store.
pub(crate) fn load_content(kv: &dyn KvRead, space: u64, id: u64) -> Io<Content> {
    get(kv, "message content", &keys::content(space, id))?
        .ok_or_else(|| StoreFault(format!("message {id} of space {space} has no content")))
}

/// A whole message: head and content.
pub(crate) fn load_message(kv: &dyn KvRead, space: u64, id: u64) -> Io<Option<Message>> {
    let Some(head) = load_head(kv, space, id)? else { return Ok(None) };
    let content = load_content(kv, space, id)?;
    Ok(Some(head.with_content(content)))
}

pub(crate) fn not_found(name: &str) -> QueueError {
    QueueError::queue_not_found(name)
}

/// The next visible message in delivery order, if any.
pub(crate) fn next_ready(kv: &dyn KvRead, queue: &QueueRecord) -> Io<Option<u64>> {
    let direction = match queue.config.order {
        Order::Fifo => Direction::Forward,
        Order::Lifo => Direction::Reverse,
    };
    first_ready(kv, queue, direction)
}

/// The lowest (`Forward`) or highest (`Reverse`) ready id, if any.
pub(crate) fn first_ready(kv: &dyn KvRead, queue: &QueueRecord, direction: Direction) -> Io<Option<u64>> {
    let Some((start, end)) = queue.ready_range() else { return Ok(None) };
    Ok(first_in(kv, &start, &end, direction)?.map(|(key, _)| {
        let mut parts = Parts::of(&key);
        parts.u64();
        parts.u64()
    }))
}

/// A doomed space's cleanup cursor: the next message id to delete.
fn space_cursor(value: &[u8]) -> Io<u64> {
    match value.len() {
        0 => Ok(0),
        8 => Ok(u64::from_be_bytes(value.try_into().expect("8 bytes"))),
        n => Err(StoreFault(format!("cleanup cursor of a doomed space is {n} bytes, not 8"))),
    }
}

/// Fewer keys than this in a row are deleted one by one, never as a
/// cleared range ([`Txn::clear_range`]). A range deletion makes RocksDB
/// rebuild its memtable's whole list of range deletions at the next read,
/// so their number must stay small against the keys they spare: with runs
/// of 8 or more cleared, a drain whose consumer received 16 at a time fell
/// from 8.1k to 5.5k msgs/s (thousands of range deletions per memtable).
pub(crate) const CLEARED_RUN_MIN: usize = 128;

/// A run of removed messages whose state timers fall due at more distinct
/// times than this deletes its timers one by one (one range per due).
const CLEARED_DUES_MAX: usize = 4;

/// The deadline a message's state sets a timer for, if any.
pub(crate) fn state_due(state: &MessageState) -> Option<u64> {
    match *state {
        MessageState::Delayed { visible_at_ms } => Some(visible_at_ms),
        MessageState::Leased { lease_expires_at_ms, .. } => Some(lease_expires_at_ms),
        MessageState::Ready | MessageState::Dead => None,
    }
}

/// One apply's working state: the transaction, the globals, the bounds.
pub(crate) struct Ctx<'t, 'a> {
    pub kv: &'t mut Txn<'a>,
    pub g: Globals,
    pub caps: DedupCaps,
    /// Whether the response is read (see [`crate::state::Answer`]).
    pub answer: crate::state::Answer,
    /// The next keys an eviction will forget, read ahead in one scan (see
    /// [`EvictAhead`]); `None` when nothing was read or it went stale.
    pub evict_ahead: Option<EvictAhead>,
    /// How many keyed messages this command may still store: how far an
    /// eviction reads ahead.
    pub keyed_ahead: usize,
    /// How many expired keys this entry may still forget, over every owner
    /// it touches (a topic publish expires the topic's keys and each bound
    /// queue's): [`crate::limits::DEDUP_EXPIRE_PER_APPLY_MAX`] per entry, not per owner.
    pub expire_left: usize,
}

/// Dedup index keys read ahead for eviction: the first keys at or past the
/// floor of one queue's index (`uid: Some`) or of the cluster-wide one
/// (`None`), in order, with their values. At the cap every new key forgets
/// one old key; reading them one scan at a time (one store iterator per
/// publish, most of the apply time past a million keys) or a batch at a
/// time forgets exactly the same keys, as long as the batch stays the true
/// head of its index: any other change to the dedup indexes drops it (see
/// `forget_key`, `dedup_remember`).
#[derive(Debug)]
pub(crate) struct EvictAhead {
    uid: Option<u64>,
    pairs: std::collections::VecDeque<(Vec<u8>, Vec<u8>)>,
}

impl Ctx<'_, '_> {
    pub(crate) fn now_ms(&self) -> u64 {
        self.g.now_ms
    }

    pub(crate) fn queue(&self, name: &str) -> Io<Option<QueueRecord>> {
        load_queue(self.kv, name)
    }

    pub(crate) fn must_queue(&self, name: &str) -> Step<QueueRecord> {
        self.queue(name)?.ok_or_else(|| Fail::Reject(not_found(name)))
    }

    pub(crate) fn save_queue(&mut self, queue: &QueueRecord) {
        self.kv.put(keys::queue(&queue.name), encode(queue));
    }

    /// The head of a message the indexes say exists: its absence is a
    /// broken store.
    pub(crate) fn message(&self, space: u64, id: u64) -> Io<Head> {
        load_head(self.kv, space, id)?
            .ok_or_else(|| StoreFault(format!("message {id} of space {space} is indexed but missing")))
    }

    /// Stores `message`'s head back in `queue` after a change (its content
    /// never changes); `counted` is its [`Head::size_bytes`] as stored
    /// before (history text may have grown or been dropped): the queue's
    /// byte count follows the difference.
    pub(crate) fn put_message(&mut self, queue: &mut QueueRecord, counted: u64, message: &Head) {
        queue.stats.total_bytes = (queue.stats.total_bytes + message.size_bytes()).saturating_sub(counted);
        self.kv.put(keys::message(queue.space, message.id), encode(message));
    }

    pub(crate) fn take_message_id(&mut self) -> u64 {
        let id = self.g.next_message_id;
        self.g.next_message_id += 1;
        id
    }

    pub(crate) fn take_uid(&mut self) -> u64 {
        let uid = self.g.next_queue_uid;
        self.g.next_queue_uid += 1;
        uid
    }

    /// Stores a message whose id was just taken, head and content: none of
    /// its keys can exist yet, so they are written with [`Txn::put_new`].
    /// Sets the head's content size and digest share.
    pub(crate) fn insert_message(&mut self, queue: &mut QueueRecord, mut message: Head, content: &Content) {
        let content_key = keys::content(queue.space, message.id);
        let content_value = encode(content);
        message.content_bytes = content.bytes();
        message.content_hash = pair_hash(&content_key, &content_value);
        self.kv.put_new_hashed(content_key, content_value, message.content_hash);
        queue.stats.total_bytes += message.size_bytes();
        self.index_state(queue, message.id, &message.state);
        if let Some(due_ms) = message.expires_at_ms {
            self.put_timer(keys::timer(due_ms, queue.space, message.id, TIMER_TTL));
        }
        self.kv.put_new(keys::message(queue.space, message.id), encode(&message));
    }

    pub(crate) fn remove_message(&mut self, queue: &mut QueueRecord, id: u64) -> Io<Head> {
        let message = self.message(queue.space, id)?;
        self.remove_head(queue, &message);
        Ok(message)
    }

    /// [`Ctx::remove_message`] with the message's stored head already read.
    pub(crate) fn remove_head(&mut self, queue: &mut QueueRecord, message: &Head) {
        queue.stats.total_bytes -= message.size_bytes();
        self.unindex_state(queue, message.id, &message.state);
        self.delete_message_keys(queue.space, message);
    }

    /// Deletes a message, its content and its index and timer keys (counts
    /// untouched). The index keys exist exactly as the message's state says
    /// (the invariant check proves it), so they are deleted as known; the
    /// content is deleted by the digest share its head keeps, unread.
    pub(crate) fn delete_message_keys(&mut self, space: u64, message: &Head) {
        let id = message.id;
        match state_due(&message.state) {
            Some(due) => self.kv.delete_known(keys::timer(due, space, id, TIMER_STATE), Vec::new()),
            None if message.state == MessageState::Ready => self.kv.delete_known(keys::ready(space, id), Vec::new()),
            None => {}
        }
        if let Some(due_ms) = message.expires_at_ms {
            self.kv.delete_known(keys::timer(due_ms, space, id, TIMER_TTL), Vec::new());
        }
        self.kv.delete_hashed(keys::content(space, id), message.content_hash);
        self.kv.delete(keys::message(space, id));
    }

    /// Claims the key ranges of the messages of `space` this transaction
    /// removes with [`Ctx::delete_message_keys`], given as (id, due of its
    /// state timer): for each run of at least [`CLEARED_RUN_MIN`]
    /// consecutive ids, their heads, their contents and their timers due
    /// at the run's state dues (any kind: a key there is one of these
    /// messages', and each of their timers is deleted) are cleared ranges
    /// ([`Txn::clear_range`]). Ids never come back, so nothing else in this
    /// transaction writes those ranges again.
    pub(crate) fn clear_removed(&mut self, space: u64, mut removed: Vec<(u64, Option<u64>)>) {
        removed.sort_unstable();
        removed.dedup_by_key(|(id, _)| *id);
        let mut start = 0;
        while start < removed.len() {
            let mut end = start + 1;
            while end < removed.len() && removed[end - 1].0.checked_add(1) == Some(removed[end].0) {
                end += 1;
            }
            let run = &removed[start..end];
            start = end;
            let (low, high) = (run[0].0, run[run.len() - 1].0);
            let Some(after) = high.checked_add(1) else { continue };
            if run.len() < CLEARED_RUN_MIN {
                continue;
            }
            self.kv.clear_range(keys::message(space, low), keys::message(space, after));
            self.kv.clear_range(keys::content(space, low), keys::content(space, after));
            let mut dues: Vec<u64> = run.iter().filter_map(|(_, due)| *due).collect();
            dues.sort_unstable();
            dues.dedup();
            if dues.len() <= CLEARED_DUES_MAX {
                for due in dues {
                    self.kv.clear_range(keys::timer(due, space, low, 0), keys::timer(due, space, after, 0));
                }
            }
        }
    }

    /// Moves `message` to `state`, keeping counts, indexes and timers exact.
    /// The caller stores the message.
    pub(crate) fn set_state(&mut self, queue: &mut QueueRecord, message: &mut Head, state: MessageState) {
        self.unindex_state(queue, message.id, &message.state);
        self.index_state(queue, message.id, &state);
        message.state = state;
    }

    /// Indexes `id` in `state`. The message is in no state's index now (new,
    /// or just unindexed), so its key is absent: written with
    /// [`Txn::put_new`].
    fn index_state(&mut self, queue: &mut QueueRecord, id: u64, state: &MessageState) {
        let stats = &mut queue.stats;
        match *state {
            MessageState::Ready => {
                stats.ready += 1;
                queue.ready_low = queue.ready_low.min(id);
                queue.ready_high = queue.ready_high.max(id.saturating_add(1));
                self.kv.put_new(keys::ready(queue.space, id), Vec::new());
            }
            MessageState::Dead => stats.dead += 1,
            MessageState::Delayed { visible_at_ms: due } | MessageState::Leased { lease_expires_at_ms: due, .. } => {
                if matches!(state, MessageState::Delayed { .. }) {
                    stats.delayed += 1;
                } else {
                    stats.leased += 1;
                }
                self.put_timer(keys::timer(due, queue.space, id, TIMER_STATE));
            }
        }
    }

    /// Puts a timer key the state does not hold, moving the timer floor
    /// back if it sorts lower.
    fn put_timer(&mut self, key: Vec<u8>) {
        if key < self.g.timer_floor {
            self.g.timer_floor = key.clone();
        }
        self.kv.put_new(key, Vec::new());
    }

    fn unindex_state(&mut self, queue: &mut QueueRecord, id: u64, state: &MessageState) {
        let stats = &mut queue.stats;
        match *state {
            MessageState::Ready => {
                stats.ready -= 1;
                self.kv.delete_known(keys::ready(queue.space, id), Vec::new());
            }
            MessageState::Dead => stats.dead -= 1,
            MessageState::Delayed { visible_at_ms: due } | MessageState::Leased { lease_expires_at_ms: due, .. } => {
                if matches!(state, MessageState::Delayed { .. }) {
                    stats.delayed -= 1;
                } else {
                    stats.leased -= 1;
                }
                self.kv.delete_known(keys::timer(due, queue.space, id, TIMER_STATE), Vec::new());
            }
        }
    }

    /// Marks a space for cleanup; its queue no longer points at it. The
    /// mark's value is the cleanup cursor, from id 0.
    pub(crate) fn doom_space(&mut self, space: u64) {
        self.kv.delete(keys::space(space));
        self.kv.put_new(keys::doomed_space(space), Vec::new());
        self.g.cleanup_marks += 1;
    }

    /// Marks a deleted queue's idempotency keys for cleanup.
    pub(crate) fn doom_dedup(&mut self, uid: u64) {
        self.kv.put_new(keys::doomed_dedup(uid), Vec::new());
        self.g.cleanup_marks += 1;
    }

    /// Deletes up to the per-apply bound of left-behind messages and dedup
    /// keys: a purge or delete of a huge queue costs a bounded amount per
    /// entry. Returns how many were deleted.
    pub(crate) fn clean_up(&mut self) -> Io<usize> {
        if self.g.cleanup_marks == 0 {
            return Ok(0);
        }
        let mut budget = CLEANUP_PER_APPLY_MAX;
        // Each mark's value is a cursor past what earlier entries deleted,
        // so no entry steps over those deleted keys again.
        while budget > 0 {
            let Some((mark, cursor)) = first(self.kv, &keys::table(keys::DOOMED_SPACE), Direction::Forward)? else {
                break;
            };
            let space = Parts::of(&mark).u64();
            let prefix = keys::messages_of(space);
            let from = keys::message(space, space_cursor(&cursor)?);
            let messages = first_n_in(self.kv, &from, &keys::prefix_end(&prefix), budget)?;
            for (key, value) in &messages {
                let message: Head = decode("message", value)?;
                self.kv.known(key, value.clone());
                self.delete_message_keys(space, &message);
            }
            match messages.last() {
                Some((last, _)) if messages.len() == budget => {
                    let mut parts = Parts::of(last);
                    parts.u64();
                    let next = parts.u64().saturating_add(1);
                    self.kv.put(mark, next.to_be_bytes().to_vec());
                }
                _ => {
                    self.kv.delete(mark);
                    self.g.cleanup_marks -= 1;
                }
            }
            budget -= messages.len();
        }
        while budget > 0 {
            let Some((mark, cursor)) = first(self.kv, &keys::table(keys::DOOMED_DEDUP), Direction::Forward)? else {
                break;
            };
            let uid = Parts::of(&mark).u64();
            let prefix = keys::dedup_of(uid);
            let from = keys::scan_start(&prefix, &cursor);
            let entries = first_n_in(self.kv, &from, &keys::prefix_end(&prefix), budget)?;
            for (key, value) in &entries {
                let entry: DedupEntry = decode("dedup entry", value)?;
                self.kv.known(key, value.clone());
                let mut parts = Parts::of(key);
                parts.u64();
                let dedup_key = String::from_utf8_lossy(parts.rest()).into_owned();
                self.forget_key(uid, &dedup_key, &entry);
            }
            match entries.last() {
                Some((last, _)) if entries.len() == budget => self.kv.put(mark, keys::successor(last)),
                _ => {
                    self.kv.delete(mark);
                    self.g.cleanup_marks -= 1;
                }
            }
            budget -= entries.len();
        }
        Ok(CLEANUP_PER_APPLY_MAX - budget)
    }

    /// True if left-behind messages or keys wait for cleanup.
    pub(crate) fn cleanup_pending(g: &Globals) -> bool {
        g.cleanup_marks > 0
    }

    // ---- Dedup.

    /// The original id for `key` if it is still within its window.
    pub(crate) fn dedup_lookup(&self, uid: u64, key: &str) -> Io<Option<u64>> {
        let entry: Option<DedupEntry> = get(self.kv, "dedup entry", &keys::dedup(uid, key))?;
        Ok(entry.filter(|entry| entry.expires_at_ms > self.now_ms()).map(|entry| entry.id))
    }

    /// Deletes one stored key's three records and counts it out of the
    /// cluster-wide total (the caller counts it out of its queue). All three
    /// hold `entry` encoded, so none is read back. Drops the keys read ahead
    /// for eviction: the caller puts them back if it took `key` from them.
    fn forget_key(&mut self, uid: u64, key: &str, entry: &DedupEntry) {
        let value = encode(entry);
        self.kv.delete_known(keys::dedup(uid, key), value.clone());
        self.kv.delete_known(keys::dedup_by_queue(uid, entry.expires_at_ms, key), value.clone());
        self.kv.delete_known(keys::dedup_by_expiry(entry.expires_at_ms, uid, key), value);
        self.g.dedup_keys -= 1;
        self.evict_ahead = None;
    }

    /// Forgets `owner`'s keys whose window has passed, as many as this
    /// entry's budget still allows (`expire_left`); lookups ignore the rest
    /// until a later entry forgets them.
    pub(crate) fn dedup_expire(&mut self, owner: &mut dyn DedupOwner) -> Io<()> {
        if self.expire_left == 0 {
            return Ok(());
        }
        let budget = self.expire_left;
        let now_ms = self.now_ms();
        let uid = owner.dedup_uid();
        let (_, floor, _) = owner.dedup_book();
        let prefix = keys::dedup_by_queue_of(uid);
        let end = keys::prefix_end(&prefix);
        // The usual case, answered by a point read instead of a scan (a
        // store iterator per command): the floor is a live key that has
        // not expired. The scan would stop at it and leave the floor where
        // it is, so skipping it changes nothing.
        if floor.len() >= prefix.len() + 8 && floor.starts_with(&prefix) {
            let mut parts = Parts::of(floor);
            parts.u64();
            if parts.u64() > now_ms && self.kv.get(floor)?.is_some() {
                return Ok(());
            }
        }
        let mut expired = Vec::new();
        let mut kept = None;
        self.kv.scan(&keys::scan_start(&prefix, floor), &end, Direction::Forward, &mut |key, value| {
            let mut parts = Parts::of(key);
            parts.u64();
            let expires_at_ms = parts.u64();
            if expires_at_ms > now_ms || expired.len() == budget {
                kept = Some(key.to_vec());
                return false;
            }
            expired.push((String::from_utf8_lossy(parts.rest()).into_owned(), value.to_vec()));
            true
        })?;
        // The first key kept, or past the end: all before it are forgotten.
        *floor = kept.unwrap_or(end);
        self.expire_left -= expired.len();
        for (key, value) in expired {
            let entry: DedupEntry = decode("dedup index entry", &value)?;
            self.forget_key(uid, &key, &entry);
            *owner.dedup_book().0 -= 1;
        }
        Ok(())
    }

    /// Forgets the first key (closest to expiry) of queue `uid`, or of all
    /// queues if `uid` is `None`; counts it in its queue's
    /// `dedup_evicted_total` if its window had not ended. `current` is the
    /// queue being changed by the caller, updated in place if it is hit.
    fn dedup_evict_first(&mut self, uid: Option<u64>, current: &mut dyn DedupOwner) -> Io<()> {
        let current_uid = current.dedup_uid();
        debug_assert!(uid.is_none_or(|uid| uid == current_uid), "an owner evicts its own keys");
        let (prefix, floor) = match uid {
            Some(uid) => (keys::dedup_by_queue_of(uid), current.dedup_book().1),
            None => (keys::table(keys::DEDUP_BY_EXPIRY), &mut self.g.dedup_floor),
        };
        let end = keys::prefix_end(&prefix);
        let mut ahead = match self.evict_ahead.take() {
            Some(ahead) if ahead.uid == uid && !ahead.pairs.is_empty() => ahead,
            _ => {
                let start = keys::scan_start(&prefix, floor);
                let limit = self.keyed_ahead.clamp(1, self.caps.evict_ahead.max(1));
                EvictAhead { uid, pairs: first_n_in(self.kv, &start, &end, limit)?.into() }
            }
        };
        let Some((k, value)) = ahead.pairs.pop_front() else {
            *floor = end;
            return Ok(());
        };
        *floor = keys::successor(&k);
        let mut parts = Parts::of(&k);
        let (victim_uid, expires_at_ms) = match uid {
            Some(_) => {
                let uid = parts.u64();
                (uid, parts.u64())
            }
            None => {
                let expires_at_ms = parts.u64();
                (parts.u64(), expires_at_ms)
            }
        };
        let key = String::from_utf8_lossy(parts.rest()).into_owned();
        let entry: DedupEntry = decode("dedup index entry", &value)?;
        if entry.expires_at_ms != expires_at_ms {
            return Err(StoreFault(format!("dedup index key {k:?} names another expiry than its entry")));
        }
        self.forget_key(victim_uid, &key, &entry);
        // The rest are still the first keys past the new floor.
        self.evict_ahead = Some(ahead);
        let counts = expires_at_ms > self.now_ms();
        if victim_uid == current_uid {
            let (keys, _, evicted) = current.dedup_book();
            *keys -= 1;
            *evicted += u64::from(counts);
            return Ok(());
        }
        // Another live queue's or topic's key, or a deleted one's
        // left-behind key.
        if let Some(name) = get::<String>(self.kv, "uid index", &keys::uid(victim_uid))? {
            let mut victim = self
                .queue(&name)?
                .ok_or_else(|| StoreFault(format!("uid {victim_uid} names queue {name:?}, which is missing")))?;
            victim.dedup_keys -= 1;
            victim.stats.dedup_evicted_total += u64::from(counts);
            self.save_queue(&victim);
        } else if let Some(name) = get::<String>(self.kv, "topic uid index", &keys::topic_uid(victim_uid))? {
            let mut victim = crate::topic::load_topic(self.kv, &name)?
                .ok_or_else(|| StoreFault(format!("uid {victim_uid} names topic {name:?}, which is missing")))?;
            victim.dedup_keys -= 1;
            victim.stats.dedup_evicted_total += u64::from(counts);
            self.save_topic(&victim);
        }
        Ok(())
    }

    /// Remembers `key` → `id` in `queue` until `expires_at_ms`. If the queue
    /// holds `per_queue` keys, its key closest to expiry is forgotten; else
    /// if all queues hold `total`, the key closest to expiry in any queue is.
    /// Deterministic: ordered by (expiry, key) in a queue and (expiry, queue
    /// uid, key) across queues.
    pub(crate) fn dedup_remember(
        &mut self,
        owner: &mut dyn DedupOwner,
        key: &str,
        id: u64,
        expires_at_ms: u64,
    ) -> Io<()> {
        let caps = self.caps;
        let uid = owner.dedup_uid();
        let old: Option<DedupEntry> = get(self.kv, "dedup entry", &keys::dedup(uid, key))?;
        if let Some(old) = old {
            self.forget_key(uid, key, &old);
            *owner.dedup_book().0 -= 1;
        } else if *owner.dedup_book().0 >= caps.per_queue as u64 {
            self.dedup_evict_first(Some(uid), owner)?;
        } else if self.g.dedup_keys >= caps.total as u64 {
            self.dedup_evict_first(None, owner)?;
        }
        self.keyed_ahead = self.keyed_ahead.saturating_sub(1);
        // All three records hold the entry, so forgetting the key from
        // either index needs no read of the others.
        let value = encode(&DedupEntry { id, expires_at_ms });
        self.kv.put(keys::dedup(uid, key), value.clone());
        // The index keys name `expires_at_ms`, which is later than now; a
        // stored entry of this key (if any) has expired, so its index keys
        // name an earlier time: these two cannot exist yet.
        let by_queue = keys::dedup_by_queue(uid, expires_at_ms, key);
        let (owner_keys, owner_floor, _) = owner.dedup_book();
        if by_queue < *owner_floor {
            *owner_floor = by_queue.clone();
        }
        let by_expiry = keys::dedup_by_expiry(expires_at_ms, uid, key);
        if by_expiry < self.g.dedup_floor {
            self.g.dedup_floor = by_expiry.clone();
        }
        // A key read ahead for eviction stays first only if the new key
        // sorts after all of them (the usual case: one window, time moving
        // forward).
        if let Some(ahead) = &self.evict_ahead
            && let Some((last, _)) = ahead.pairs.back()
        {
            let new = if ahead.uid.is_some() { &by_queue } else { &by_expiry };
            if ahead.uid.is_some_and(|ahead_uid| ahead_uid != uid) || new <= last {
                self.evict_ahead = None;
            }
        }
        self.kv.put_new(by_queue, value.clone());
        self.kv.put_new(by_expiry, value);
        self.g.dedup_keys += 1;
        *owner_keys += 1;
        Ok(())
    }
}
