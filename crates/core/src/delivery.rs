//! Deliveries and their ends: receive, ack, nack, extend, the retry policy
//! on every failure path, dead-lettering, and redrive.

use std::collections::{BTreeMap, BTreeSet};

use crate::command::Receipt;
use crate::config::Order;
use crate::error::{QueueError, Reason};
use crate::keys::{self, Parts};
use crate::kv::{Direction, KvRead, Txn};
use crate::limits::{PEEK_SCAN_MAX, RECEIVE_BYTES_MAX};
use crate::message::{Content, DeadLetterInfo, Head, HistoryEvent, MessageState};
use crate::response::{Delivery, NackOutcome, Outcome};
use crate::retry::retry_delay_ms;
use crate::state::Answer;
use crate::store::{
    CLEARED_RUN_MIN, Ctx, Fail, Io, QueueRecord, Step, decode, load_content, load_head, load_queue, state_due,
};

/// A live lease, checked: its queue and message, ready to change.
pub(crate) struct Lease {
    pub queue: QueueRecord,
    pub message: Head,
}

/// Checks that `receipt` names a live lease as of `now_ms`; `field` names
/// it in errors. Returns the queue and message it names.
pub(crate) fn check_live(kv: &dyn KvRead, now_ms: u64, field: &str, receipt: &Receipt) -> Step<Lease> {
    let Some(queue) = load_queue(kv, &receipt.queue)? else { return Err(no_queue(field, receipt)) };
    let message = live_head(kv, &queue, now_ms, || field.to_string(), receipt)?;
    Ok(Lease { queue, message })
}

/// The refusal of a receipt whose queue does not exist.
fn no_queue(field: &str, receipt: &Receipt) -> Fail {
    QueueError::precondition(Reason::ReceiptUnknown, field, format!("queue {:?} does not exist", receipt.queue)).into()
}

/// [`check_live`] with the receipt's queue already read: the message's
/// head if the lease is live.
fn live_head(
    kv: &dyn KvRead,
    queue: &QueueRecord,
    now_ms: u64,
    field: impl FnOnce() -> String,
    receipt: &Receipt,
) -> Step<Head> {
    let Some(message) = load_head(kv, queue.space, receipt.message_id)? else {
        return Err(
            QueueError::precondition(Reason::ReceiptUnknown, field(), "receipt unknown: the message is gone").into()
        );
    };
    let (kind, refusal) = match message.state {
        MessageState::Leased { attempt, lease_expires_at_ms } if attempt == receipt.attempt => {
            if lease_expires_at_ms > now_ms {
                return Ok(message);
            }
            (Reason::LeaseExpired, "lease ended; the message will be redelivered")
        }
        _ if receipt.attempt < message.delivery_count => (Reason::LeaseExpired, "lease superseded by a later delivery"),
        _ if receipt.attempt > message.delivery_count => {
            (Reason::ReceiptUnknown, "receipt unknown: no such delivery attempt")
        }
        _ => (Reason::LeaseExpired, "lease ended; the message will be redelivered"),
    };
    Err(QueueError::precondition(kind, field(), refusal).into())
}

/// The number of ids from `low` to `high` if `count` distinct ids among
/// them lie close enough together to be read in one scan: two at least,
/// and the scan visits at most twice as many keys as are wanted
/// (consecutive ids, the usual case: a FIFO queue delivers and acks in
/// publish order).
fn scan_span(low: u64, high: u64, count: usize) -> Option<u64> {
    // Saturating: a client's receipts may name any ids.
    let span = (high - low).saturating_add(1);
    (count >= 2 && span <= 2 * count as u64).then_some(span)
}

/// Reads the heads of `ids` (message ids of one space) ahead in one scan
/// when they lie close together ([`scan_span`]); otherwise each is read
/// on its own when asked for. The scan also holds the heads of the other
/// messages between them, so it stops at `RECEIVE_BYTES_MAX` of values.
/// Reads only; the result of every later read is the same either way.
fn read_ahead(kv: &Txn<'_>, ids: &[u64], space: u64) -> Io<()> {
    let (Some(&low), Some(&high)) = (ids.iter().min(), ids.iter().max()) else { return Ok(()) };
    let Some(span) = scan_span(low, high, ids.len()) else { return Ok(()) };
    let (start, end) = (keys::message(space, low), keys::successor(&keys::message(space, high)));
    kv.prefetch(&start, &end, span as usize, RECEIVE_BYTES_MAX)?;
    Ok(())
}

/// The contents of `messages` (heads of one space), in their order, read
/// in one scan from the lowest id to the highest when they lie close
/// together ([`scan_span`]); each decoded straight from the store's
/// value, the others between skipped undecoded. The scan stops once the
/// values it visited reach `RECEIVE_BYTES_MAX`, so a few small ready
/// bodies among large leased ones cannot make it read those: `None` for
/// any the scan did not reach (the caller reads those one by one). Reads
/// only.
fn read_contents(kv: &Txn<'_>, space: u64, messages: &[Head]) -> Io<Vec<Option<Content>>> {
    let mut contents: Vec<Option<Content>> = messages.iter().map(|_| None).collect();
    let mut wanted: Vec<(u64, usize)> = messages.iter().enumerate().map(|(at, m)| (m.id, at)).collect();
    wanted.sort_unstable();
    let (Some(&(low, _)), Some(&(high, _))) = (wanted.first(), wanted.last()) else { return Ok(contents) };
    if scan_span(low, high, wanted.len()).is_none() {
        return Ok(contents);
    }
    let (mut fault, mut bytes) = (None, 0usize);
    let end = keys::successor(&keys::content(space, high));
    kv.scan(&keys::content(space, low), &end, Direction::Forward, &mut |key, value| {
        let mut parts = Parts::of(key);
        parts.u64();
        let id = parts.u64();
        if let Ok(found) = wanted.binary_search_by_key(&id, |(id, _)| *id) {
            match decode::<Content>("message content", value) {
                Ok(content) => contents[wanted[found].1] = Some(content),
                Err(e) => fault = Some(e),
            }
        }
        bytes += value.len();
        fault.is_none() && bytes < RECEIVE_BYTES_MAX
    })?;
    match fault {
        Some(fault) => Err(fault),
        None => Ok(contents),
    }
}

impl Ctx<'_, '_> {
    pub(crate) fn receive(&mut self, name: &str, max_messages: u32, lease_ms: Option<u64>) -> Step<Outcome> {
        let now_ms = self.now_ms();
        let mut queue = self.must_queue(name)?;
        let lease_ms = lease_ms.unwrap_or(queue.config.lease_ms);
        let lease_expires_at_ms = now_ms.saturating_add(lease_ms);
        // Nothing else becomes ready while this runs, so the first
        // `max_messages` ready ids in delivery order are the candidates.
        let direction = match queue.config.order {
            Order::Fifo => Direction::Forward,
            Order::Lifo => Direction::Reverse,
        };
        let mut ids = Vec::new();
        if let Some((start, end)) = queue.ready_range() {
            self.kv.scan(&start, &end, direction, &mut |key, _| {
                let mut parts = Parts::of(key);
                parts.u64();
                ids.push(parts.u64());
                ids.len() < max_messages as usize
            })?;
        }
        // The ids are the first ready ones in delivery order, and those taken
        // below are a prefix of them (the first always is): the range
        // shrinks past each one taken, so the next receive starts there.
        if ids.is_empty() {
            queue.clear_ready_range();
        }
        // The heads first (read ahead in one scan when the ids are close),
        // as many as the byte budget takes, then their contents (decoded
        // from one scan when close).
        read_ahead(self.kv, &ids, queue.space)?;
        let mut taken = Vec::new();
        let mut body_bytes = 0usize;
        for &id in &ids {
            let message = self.message(queue.space, id)?;
            let size = message.content_bytes as usize;
            if !taken.is_empty() && body_bytes + size > RECEIVE_BYTES_MAX {
                break;
            }
            body_bytes += size;
            taken.push(message);
        }
        let bodies = self.answer == Answer::Wanted;
        let mut contents = match bodies {
            true => read_contents(self.kv, queue.space, &taken)?,
            false => Vec::new(),
        };
        // Every ready key from the first id taken to the last is one taken
        // (the scan visited them in key order): the range is cleared.
        if taken.len() >= CLEARED_RUN_MIN
            && let (Some(low), Some(high)) = (taken.iter().map(|m| m.id).min(), taken.iter().map(|m| m.id).max())
            && let Some(after) = high.checked_add(1)
        {
            self.kv.clear_range(keys::ready(queue.space, low), keys::ready(queue.space, after));
        }
        let mut deliveries = Vec::with_capacity(taken.len());
        for (at, mut message) in taken.into_iter().enumerate() {
            let id = message.id;
            let counted = message.size_bytes();
            let content = match contents.get_mut(at).and_then(Option::take) {
                Some(content) => content,
                None if bodies => load_content(self.kv, queue.space, id)?,
                None => Content { body: Default::default(), attributes: Default::default() },
            };
            // Saturating: 4 billion deliveries of one message cannot happen
            // in practice; if it did, receipts would repeat, not wrap.
            let attempt = message.delivery_count.saturating_add(1);
            self.set_state(&mut queue, &mut message, MessageState::Leased { attempt, lease_expires_at_ms });
            message.delivery_count = attempt;
            message.record(HistoryEvent::Delivered { at_ms: now_ms, attempt, lease_expires_at_ms });
            self.put_message(&mut queue, counted, &message);
            let mut delivered = message;
            delivered.history.clear();
            deliveries.push(Delivery {
                message: delivered.with_content(content),
                receipt: Receipt { queue: name.to_string(), message_id: id, attempt },
                lease_expires_at_ms,
            });
            queue.stats.delivered_total += 1;
            match direction {
                Direction::Forward => queue.ready_low = id.saturating_add(1),
                Direction::Reverse => queue.ready_high = id,
            }
        }
        self.save_queue(&queue);
        Ok(Outcome::Received(deliveries))
    }

    pub(crate) fn ack(&mut self, receipts: &[Receipt]) -> Step<Outcome> {
        // Each queue named is read once (`None`: it does not exist), and its
        // messages' heads ahead in one scan where they lie close together.
        let mut named: BTreeMap<&str, Option<usize>> = BTreeMap::new();
        let mut records: Vec<(QueueRecord, Vec<u64>)> = Vec::new();
        for receipt in receipts {
            let slot = match named.entry(receipt.queue.as_str()) {
                std::collections::btree_map::Entry::Occupied(entry) => *entry.get(),
                std::collections::btree_map::Entry::Vacant(entry) => {
                    let slot = load_queue(self.kv, &receipt.queue)?.map(|queue| {
                        records.push((queue, Vec::new()));
                        records.len() - 1
                    });
                    *entry.insert(slot)
                }
            };
            if let Some(slot) = slot {
                records[slot].1.push(receipt.message_id);
            }
        }
        for (queue, ids) in &records {
            read_ahead(self.kv, ids, queue.space)?;
        }
        let mut seen = BTreeSet::new();
        let mut leased = Vec::with_capacity(receipts.len());
        for (i, receipt) in receipts.iter().enumerate() {
            // Named only when refused: a name per receipt was a formatted
            // string per acked message.
            let field = || format!("receipts[{i}]");
            if !seen.insert(receipt) {
                return Err(QueueError::invalid(field(), "duplicate receipt in one ack").into());
            }
            let Some(slot) = named.get(receipt.queue.as_str()).copied().flatten() else {
                return Err(no_queue(&field(), receipt));
            };
            leased.push((slot, live_head(self.kv, &records[slot].0, self.now_ms(), field, receipt)?));
        }
        let mut removed: Vec<Vec<(u64, Option<u64>)>> = vec![Vec::new(); records.len()];
        for (slot, message) in leased {
            let queue = &mut records[slot].0;
            self.remove_head(queue, &message);
            queue.stats.acked_total += 1;
            removed[slot].push((message.id, state_due(&message.state)));
        }
        for ((queue, _), removed) in records.iter().zip(removed) {
            self.clear_removed(queue.space, removed);
            self.save_queue(queue);
        }
        Ok(Outcome::Acked { count: receipts.len() as u64 })
    }

    pub(crate) fn nack(
        &mut self,
        receipt: &Receipt,
        delay_ms: Option<u64>,
        dead_letter: bool,
        reason: &str,
    ) -> Step<Outcome> {
        let Lease { mut queue, mut message } = check_live(self.kv, self.now_ms(), "receipt", receipt)?;
        let counted = message.size_bytes();
        queue.stats.nacked_total += 1;
        message.record(HistoryEvent::Nacked {
            at_ms: self.now_ms(),
            attempt: receipt.attempt,
            reason: reason.to_string(),
        });
        let reason = if reason.is_empty() { "nacked" } else { reason };
        let outcome = self.fail_delivery(&mut queue, message, counted, delay_ms, dead_letter, reason)?;
        self.save_queue(&queue);
        Ok(Outcome::Nacked(outcome))
    }

    pub(crate) fn extend_lease(&mut self, receipt: &Receipt, lease_ms: u64) -> Step<Outcome> {
        let now_ms = self.now_ms();
        let Lease { mut queue, mut message } = check_live(self.kv, now_ms, "receipt", receipt)?;
        let counted = message.size_bytes();
        let lease_expires_at_ms = now_ms.saturating_add(lease_ms);
        let state = MessageState::Leased { attempt: receipt.attempt, lease_expires_at_ms };
        self.set_state(&mut queue, &mut message, state);
        message.record(HistoryEvent::LeaseExtended { at_ms: now_ms, attempt: receipt.attempt, lease_expires_at_ms });
        self.put_message(&mut queue, counted, &message);
        self.save_queue(&queue);
        Ok(Outcome::LeaseExtended { lease_expires_at_ms })
    }

    /// The one failure path (nack, lease end): dead-letter the message if it
    /// is asked for or its delivery budget is spent, else schedule the retry.
    /// `message` is the stored message with this failure's event recorded,
    /// `counted` its size as stored before; the caller saves `queue`.
    pub(crate) fn fail_delivery(
        &mut self,
        queue: &mut QueueRecord,
        mut message: Head,
        counted: u64,
        delay_ms: Option<u64>,
        dead_letter: bool,
        reason: &str,
    ) -> Io<NackOutcome> {
        let now_ms = self.now_ms();
        let config = &queue.config;
        let budget_spent = config.max_deliveries > 0 && message.deliveries_since_redrive() >= config.max_deliveries;
        if dead_letter || budget_spent {
            let reason = if budget_spent && !dead_letter {
                format!("{reason}; max_deliveries {} reached", config.max_deliveries)
            } else {
                reason.to_string()
            };
            return Ok(NackOutcome::DeadLettered { queue: self.dead_letter(queue, message, counted, &reason)? });
        }
        let delay_ms = delay_ms.unwrap_or_else(|| {
            retry_delay_ms(config.backoff_base_ms, config.backoff_max_ms, message.id, message.delivery_count)
        });
        let visible_at_ms = now_ms.saturating_add(delay_ms);
        let state = if delay_ms == 0 { MessageState::Ready } else { MessageState::Delayed { visible_at_ms } };
        self.set_state(queue, &mut message, state);
        message.record(HistoryEvent::Retry { at_ms: now_ms, visible_at_ms });
        self.put_message(queue, counted, &message);
        Ok(NackOutcome::Redeliver { visible_at_ms })
    }

    /// Moves `message` to its queue's dead-letter queue, or parks it here in
    /// state Dead if there is none or it is full. Never drops it. Returns the
    /// queue it went to (`None` = parked in place).
    fn dead_letter(
        &mut self,
        queue: &mut QueueRecord,
        mut message: Head,
        counted: u64,
        reason: &str,
    ) -> Io<Option<String>> {
        let now_ms = self.now_ms();
        let size = message.size_bytes();
        let mut target = None;
        if let Some(dlq) = queue.config.dead_letter_queue.clone().filter(|dlq| *dlq != queue.name)
            && let Some(record) = self.queue(&dlq)?
            && record.would_overflow(1, size).is_none()
        {
            target = Some(record);
        }
        queue.stats.dead_lettered_total += 1;
        let event = HistoryEvent::DeadLettered {
            at_ms: now_ms,
            reason: reason.to_string(),
            target_queue: target.as_ref().map(|t| t.name.clone()),
        };
        let info = DeadLetterInfo {
            source_queue: queue.name.clone(),
            source_id: message.id,
            delivery_count: message.delivery_count,
            reason: reason.to_string(),
            dead_lettered_at_ms: now_ms,
            source_published_at_ms: message.published_at_ms,
        };
        let Some(mut target) = target else {
            self.set_state(queue, &mut message, MessageState::Dead);
            message.record(event);
            // A dead letter that failed again in its dead-letter queue keeps
            // naming its source, so a redrive can still send it home.
            if message.dead_letter.is_none() {
                message.dead_letter = Some(info);
            }
            self.put_message(queue, counted, &message);
            return Ok(None);
        };
        let content = load_content(self.kv, queue.space, message.id)?;
        self.remove_message(queue, message.id)?;
        message.record(event);
        self.move_into(&mut target, message, &content, Some(info));
        self.save_queue(&target);
        Ok(Some(target.name))
    }

    /// Stores `old` (with `content`) in queue `target` as a new, ready
    /// message (new id, fresh delivery count, the target's TTL), keeping
    /// body, attributes and history. The caller saves `target`.
    fn move_into(
        &mut self,
        target: &mut QueueRecord,
        old: Head,
        content: &Content,
        dead_letter: Option<DeadLetterInfo>,
    ) -> u64 {
        let now_ms = self.now_ms();
        let id = self.take_message_id();
        let ttl_ms = target.config.message_ttl_ms;
        let expires_at_ms = (ttl_ms > 0).then(|| now_ms.saturating_add(ttl_ms));
        let message = Head {
            idempotency_key: old.idempotency_key,
            dead_letter,
            history: old.history,
            history_dropped: old.history_dropped,
            ..Head::new(id, now_ms, MessageState::Ready, expires_at_ms)
        };
        self.insert_message(target, message, content);
        id
    }

    /// Moves up to `max_messages` dead letters held in `name` back: parked
    /// ones become ready in place (keeping their id); ones that came from
    /// another queue go back to it if it exists and has room.
    pub(crate) fn redrive(&mut self, name: &str, max_messages: u32) -> Step<Outcome> {
        let now_ms = self.now_ms();
        let mut queue = self.must_queue(name)?;
        // Source queues, as loaded and changed by this redrive.
        let mut sources: BTreeMap<String, Option<QueueRecord>> = BTreeMap::new();
        let mut candidates: Vec<(u64, Option<String>)> = Vec::new();
        // What the choice needs of each message, not its head: a scan of
        // up to PEEK_SCAN_MAX messages must not hold their histories.
        struct Scanned {
            id: u64,
            dead: bool,
            source: Option<String>,
            size: u64,
        }
        let mut scanned: Vec<Scanned> = Vec::new();
        let mut seen = 0usize;
        let prefix = keys::messages_of(queue.space);
        let mut fault = None;
        self.kv.scan(&prefix, &keys::prefix_end(&prefix), Direction::Forward, &mut |_, value| {
            seen += 1;
            match decode::<Head>("message", value) {
                // Leased messages stay: their consumer may still ack them.
                Ok(message) if matches!(message.state, MessageState::Leased { .. }) => {}
                Ok(message) => scanned.push(Scanned {
                    id: message.id,
                    dead: message.state == MessageState::Dead,
                    size: message.size_bytes(),
                    source: message.dead_letter.map(|info| info.source_queue).filter(|s| s != name),
                }),
                Err(e) => fault = Some(e),
            }
            fault.is_none() && seen < PEEK_SCAN_MAX
        })?;
        if let Some(fault) = fault {
            return Err(Fail::Store(fault));
        }
        for message in &scanned {
            if candidates.len() == max_messages as usize {
                break;
            }
            let mut home = None;
            if let Some(source) = &message.source {
                if !sources.contains_key(source) {
                    sources.insert(source.clone(), self.queue(source)?);
                }
                if sources[source].as_ref().is_some_and(|s| s.would_overflow(1, message.size).is_none()) {
                    home = Some(source.clone());
                }
            }
            match home {
                Some(source) => candidates.push((message.id, Some(source))),
                None if message.dead => candidates.push((message.id, None)),
                None => {}
            }
        }
        let mut moved = 0u64;
        for (id, source) in candidates {
            let mut message = self.message(queue.space, id)?;
            let counted = message.size_bytes();
            match source {
                None => {
                    self.set_state(&mut queue, &mut message, MessageState::Ready);
                    message.redrive_base = message.delivery_count;
                    // It is live again here; where it died stays in history.
                    if message.dead_letter.as_ref().is_some_and(|info| info.source_queue == name) {
                        message.dead_letter = None;
                    }
                    message.record(HistoryEvent::Redriven { at_ms: now_ms, from_queue: None });
                    self.put_message(&mut queue, counted, &message);
                }
                Some(source) => {
                    // Capacity was checked per message above; several going
                    // to one source may together pass its limit: check again.
                    let mut target = sources[&source].clone().expect("candidates name live sources");
                    if target.would_overflow(1, message.size_bytes()).is_some() {
                        continue;
                    }
                    let content = load_content(self.kv, queue.space, id)?;
                    self.remove_message(&mut queue, id)?;
                    message.record(HistoryEvent::Redriven { at_ms: now_ms, from_queue: Some(name.to_string()) });
                    self.move_into(&mut target, message, &content, None);
                    sources.insert(source, Some(target));
                }
            }
            queue.stats.redriven_total += 1;
            moved += 1;
        }
        for source in sources.values().flatten() {
            self.save_queue(source);
        }
        self.save_queue(&queue);
        Ok(Outcome::Redriven { moved })
    }
}
