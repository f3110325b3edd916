//! Reads of the state: what the server answers after a linearizable read
//! barrier, from any consistent view ([`KvRead`]). Each is bounded: none
//! walks the backlog beyond `PEEK_SCAN_MAX` messages.

use crate::command::Receipt;
use crate::config::validate_queue_name;
use crate::delivery::check_live;
use crate::error::QueueError;
use crate::keys::{self, Parts};
use crate::kv::{Direction, KvRead, StoreFault, stored_digest};
use crate::limits::{LIST_QUEUES_MAX, LIST_TOPICS_MAX, PEEK_MESSAGES_MAX, PEEK_SCAN_MAX};
use crate::message::{Head, Message, StateFilter};
use crate::response::{PeekPage, QueueInfo};
use crate::store::{
    self, Ctx, Fail, Globals, Io, QueueRecord, decode, load_content, load_head, load_message, load_queue, not_found,
};
use crate::topic::{TopicInfo, TopicRecord, load_topic};

/// Read-side answers that may be refusals, over a store that may fail.
pub type ReadResult<T> = Result<Result<T, QueueError>, StoreFault>;

fn split<T>(result: Result<T, Fail>) -> ReadResult<T> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(Fail::Reject(error)) => Ok(Err(error)),
        Err(Fail::Store(fault)) => Err(fault),
    }
}

/// A queue's info as of `now_ms`.
pub(crate) fn info(kv: &dyn KvRead, queue: &QueueRecord, now_ms: u64) -> Io<QueueInfo> {
    let mut stats = queue.stats.clone();
    stats.oldest_ready_age_ms = 0;
    if let Some(id) = store::first_ready(kv, queue, Direction::Forward)? {
        let oldest = load_head(kv, queue.space, id)?
            .ok_or_else(|| StoreFault(format!("ready message {id} of {:?} is missing", queue.name)))?;
        stats.oldest_ready_age_ms = now_ms.saturating_sub(oldest.published_at_ms);
    }
    Ok(QueueInfo { name: queue.name.clone(), config: queue.config.clone(), stats, created_at_ms: queue.created_at_ms })
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads over one consistent view of the state.
#[derive(Clone, Copy)]
pub struct Reader<'a> {
    kv: &'a dyn KvRead,
}

impl std::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reader")
    }
}

impl<'a> Reader<'a> {
    pub fn new(kv: &'a dyn KvRead) -> Self {
        Self { kv }
    }

    fn globals(&self) -> Io<Globals> {
        Globals::load(self.kv)
    }

    /// The time of the latest applied entry.
    pub fn now_ms(&self) -> Result<u64, StoreFault> {
        Ok(self.globals()?.now_ms)
    }

    /// Idempotency keys stored by all queues together.
    pub fn dedup_keys(&self) -> Result<u64, StoreFault> {
        Ok(self.globals()?.dedup_keys)
    }

    /// When the next timer (delay end, lease end, TTL) is due, or now if
    /// purged or deleted messages wait for cleanup. The server proposes a
    /// `Tick` then, so time-driven changes are applied even when no client
    /// writes.
    pub fn next_timer_ms(&self) -> Result<Option<u64>, StoreFault> {
        let g = Globals::load(self.kv)?;
        if Ctx::cleanup_pending(&g) {
            return Ok(Some(g.now_ms));
        }
        Ok(store::first_timer(self.kv, &g)?.map(|key| Parts::of(&key).u64()))
    }

    /// The stored digest (16 bytes): equal on replicas with equal state.
    pub fn digest(&self) -> Result<[u8; 16], StoreFault> {
        Ok(stored_digest(self.kv)?.to_be_bytes())
    }

    pub fn queue_info(&self, name: &str) -> ReadResult<QueueInfo> {
        split((|| {
            let queue = load_queue(self.kv, name)?.ok_or_else(|| Fail::Reject(not_found(name)))?;
            Ok(info(self.kv, &queue, self.now_ms()?)?)
        })())
    }

    /// Queues whose name starts with `prefix`, after `start_after`, in name
    /// order; the second value is where the next page starts, if any.
    pub fn list_queues(
        &self,
        prefix: &str,
        start_after: &str,
        limit: u32,
    ) -> Result<(Vec<QueueInfo>, Option<String>), StoreFault> {
        let limit = limit.clamp(1, LIST_QUEUES_MAX) as usize;
        let from = if start_after.as_bytes() >= prefix.as_bytes() {
            let mut after = keys::queue(start_after);
            after.push(0);
            after
        } else {
            keys::queue(prefix)
        };
        let end = keys::prefix_end(&keys::queue(prefix));
        let mut records = Vec::new();
        let mut fault = None;
        self.kv.scan(&from, &end, Direction::Forward, &mut |_, value| {
            match decode::<QueueRecord>("queue record", value) {
                Ok(record) => records.push(record),
                Err(e) => fault = Some(e),
            }
            fault.is_none() && records.len() <= limit
        })?;
        if let Some(fault) = fault {
            return Err(fault);
        }
        let more = records.len() > limit;
        records.truncate(limit);
        let now_ms = self.now_ms()?;
        let page = records.iter().map(|record| info(self.kv, record, now_ms)).collect::<Io<Vec<_>>>()?;
        let next = if more { page.last().map(|info| info.name.clone()) } else { None };
        Ok((page, next))
    }

    pub fn topic_info(&self, name: &str) -> ReadResult<TopicInfo> {
        if let Err(e) = validate_queue_name(name) {
            return Ok(Err(e.in_field("topic")));
        }
        match load_topic(self.kv, name)? {
            Some(topic) => Ok(Ok(crate::topic::info(self.kv, &topic)?)),
            None => Ok(Err(QueueError::topic_not_found(name))),
        }
    }

    /// Topics whose name starts with `prefix`, after `start_after`, in name
    /// order, with their bindings; the second value is where the next page
    /// starts, if any. A page holds at most `limit` topics and stops early
    /// once it holds `LIST_TOPICS_MAX` bindings in all.
    pub fn list_topics(
        &self,
        prefix: &str,
        start_after: &str,
        limit: u32,
    ) -> Result<(Vec<TopicInfo>, Option<String>), StoreFault> {
        let limit = limit.clamp(1, LIST_TOPICS_MAX) as usize;
        let from = if start_after.as_bytes() >= prefix.as_bytes() {
            keys::successor(&keys::topic(start_after))
        } else {
            keys::topic(prefix)
        };
        let end = keys::prefix_end(&keys::topic(prefix));
        let mut records = Vec::new();
        let mut fault = None;
        self.kv.scan(&from, &end, Direction::Forward, &mut |_, value| {
            match decode::<TopicRecord>("topic record", value) {
                Ok(record) => records.push(record),
                Err(e) => fault = Some(e),
            }
            fault.is_none() && records.len() <= limit
        })?;
        if let Some(fault) = fault {
            return Err(fault);
        }
        let mut more = records.len() > limit;
        records.truncate(limit);
        let mut page = Vec::with_capacity(records.len());
        let mut bindings = 0u64;
        for record in &records {
            if bindings >= u64::from(LIST_TOPICS_MAX) {
                more = true;
                break;
            }
            bindings += record.bindings;
            page.push(crate::topic::info(self.kv, record)?);
        }
        let next = if more { page.last().map(|info| info.name.clone()) } else { None };
        Ok((page, next))
    }

    /// Messages in `filter` state with id > `after_id`, without changing them.
    pub fn peek(&self, name: &str, filter: StateFilter, after_id: u64, limit: u32) -> ReadResult<PeekPage> {
        if let Err(e) = validate_queue_name(name) {
            return Ok(Err(e.in_field("queue")));
        }
        let queue = match load_queue(self.kv, name)? {
            Some(queue) => queue,
            None => return Ok(Err(not_found(name))),
        };
        let limit = limit.clamp(1, PEEK_MESSAGES_MAX) as usize;
        let start = keys::message(queue.space, after_id.saturating_add(1));
        let end = keys::prefix_end(&keys::messages_of(queue.space));
        let mut heads = Vec::new();
        let mut last_seen = None;
        let mut scanned = 0usize;
        let mut complete = true;
        let mut fault = None;
        if after_id < u64::MAX {
            self.kv.scan(&start, &end, Direction::Forward, &mut |_, value| {
                if heads.len() == limit || scanned == PEEK_SCAN_MAX {
                    complete = false;
                    return false;
                }
                scanned += 1;
                match decode::<Head>("message", value) {
                    Ok(head) => {
                        last_seen = Some(head.id);
                        if filter.matches(&head.state) {
                            heads.push(head);
                        }
                        true
                    }
                    Err(e) => {
                        fault = Some(e);
                        false
                    }
                }
            })?;
        }
        if let Some(fault) = fault {
            return Err(fault);
        }
        let mut messages = Vec::with_capacity(heads.len());
        for head in heads {
            let content = load_content(self.kv, queue.space, head.id)?;
            messages.push(head.with_content(content));
        }
        let next_after_id = if complete { None } else { last_seen };
        Ok(Ok(PeekPage { messages, next_after_id }))
    }

    /// One message with its state and history.
    pub fn inspect(&self, name: &str, id: u64) -> ReadResult<Message> {
        if let Err(e) = validate_queue_name(name) {
            return Ok(Err(e.in_field("queue")));
        }
        let Some(queue) = load_queue(self.kv, name)? else { return Ok(Err(not_found(name))) };
        Ok(load_message(self.kv, queue.space, id)?.ok_or_else(|| {
            // The store keeps no tombstones: say what absence can mean.
            QueueError::message_not_found(
                name,
                format!(
                    "message {id} in queue {name:?} (it was acked, expired, purged or redriven away, or never existed)"
                ),
            )
        }))
    }

    /// True if `receipt` names a live lease as of the last applied entry.
    pub fn receipt_is_live(&self, receipt: &Receipt) -> Result<bool, StoreFault> {
        match check_live(self.kv, self.now_ms()?, "receipt", receipt) {
            Ok(_) => Ok(true),
            Err(Fail::Reject(_)) => Ok(false),
            Err(Fail::Store(fault)) => Err(fault),
        }
    }

    /// True if a receive on `name` now would return something; NOT_FOUND
    /// if there is no such queue (it was deleted, or never created).
    pub fn has_visible(&self, name: &str) -> ReadResult<bool> {
        let Some(queue) = load_queue(self.kv, name)? else { return Ok(Err(not_found(name))) };
        Ok(Ok(store::next_ready(self.kv, &queue)?.is_some()))
    }
}
