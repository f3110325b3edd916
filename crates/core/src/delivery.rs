//! Deliveries and their ends: receive, ack, nack, extend, the retry policy
//! on every failure path, dead-lettering, and redrive.

use std::collections::BTreeSet;

use crate::command::Receipt;
use crate::error::QueueError;
use crate::limits::{PEEK_SCAN_MAX, RECEIVE_BYTES_MAX};
use crate::message::{DeadLetterInfo, HistoryEvent, Message, MessageState};
use crate::response::{Delivery, NackOutcome, Outcome, Response};
use crate::retry::retry_delay_ms;
use crate::state::QueueState;

impl QueueState {
    pub(crate) fn receive(&mut self, name: &str, max_messages: u32, lease_ms: Option<u64>) -> Response {
        let now_ms = self.now_ms;
        let queue = self.queues.get_mut(name).ok_or_else(|| QueueError::not_found(format!("queue {name:?}")))?;
        let lease_ms = lease_ms.unwrap_or(queue.config.lease_ms);
        let deadline_ms = now_ms.saturating_add(lease_ms);
        let mut deliveries = Vec::new();
        let mut body_bytes = 0usize;
        while deliveries.len() < max_messages as usize {
            let Some(id) = queue.next_ready() else { break };
            let size = queue.messages[&id].body.len();
            if !deliveries.is_empty() && body_bytes + size > RECEIVE_BYTES_MAX {
                break;
            }
            body_bytes += size;
            // Saturating: 4 billion deliveries of one message cannot happen
            // in practice; if it did, receipts would repeat, not wrap.
            let attempt = queue.messages[&id].delivery_count.saturating_add(1);
            queue.set_state(&mut self.timers, id, MessageState::Leased { attempt, deadline_ms });
            let message = queue.messages.get_mut(&id).expect("ready index is exact");
            message.delivery_count = attempt;
            message.record(HistoryEvent::Delivered { at_ms: now_ms, attempt, lease_deadline_ms: deadline_ms });
            let mut delivered = message.clone();
            delivered.history.clear();
            deliveries.push(Delivery {
                message: delivered,
                receipt: Receipt { queue: name.to_string(), message_id: id, attempt },
                lease_deadline_ms: deadline_ms,
            });
            queue.counters.delivered_total += 1;
        }
        Ok(Outcome::Received(deliveries))
    }

    /// Checks that `receipt` names a live lease now; `field` names it in errors.
    pub(crate) fn check_live(&self, field: &str, receipt: &Receipt) -> Result<(), QueueError> {
        let Some(queue) = self.queues.get(&receipt.queue) else {
            return Err(QueueError::precondition(field, format!("queue {:?} does not exist", receipt.queue)));
        };
        let Some(message) = queue.messages.get(&receipt.message_id) else {
            return Err(QueueError::precondition(field, "receipt unknown: the message is gone"));
        };
        match message.state {
            MessageState::Leased { attempt, deadline_ms } if attempt == receipt.attempt => {
                if deadline_ms > self.now_ms {
                    Ok(())
                } else {
                    Err(QueueError::precondition(field, "lease ended; the message will be redelivered"))
                }
            }
            _ if receipt.attempt < message.delivery_count => {
                Err(QueueError::precondition(field, "lease superseded by a later delivery"))
            }
            _ if receipt.attempt > message.delivery_count => {
                Err(QueueError::precondition(field, "receipt unknown: no such delivery attempt"))
            }
            _ => Err(QueueError::precondition(field, "lease ended; the message will be redelivered")),
        }
    }

    pub(crate) fn ack(&mut self, receipts: &[Receipt]) -> Response {
        let mut seen = BTreeSet::new();
        for (i, receipt) in receipts.iter().enumerate() {
            let field = format!("receipts[{i}]");
            if !seen.insert(receipt) {
                return Err(QueueError::invalid(field, "duplicate receipt in one ack"));
            }
            self.check_live(&field, receipt)?;
        }
        for receipt in receipts {
            let queue = self.queues.get_mut(&receipt.queue).expect("checked live");
            queue.remove(&mut self.timers, receipt.message_id).expect("checked live");
            queue.counters.acked_total += 1;
        }
        Ok(Outcome::Acked { count: receipts.len() as u64 })
    }

    pub(crate) fn nack(
        &mut self,
        receipt: &Receipt,
        delay_ms: Option<u64>,
        dead_letter: bool,
        reason: &str,
    ) -> Response {
        self.check_live("receipt", receipt)?;
        let now_ms = self.now_ms;
        let queue = self.queues.get_mut(&receipt.queue).expect("checked live");
        queue.counters.nacked_total += 1;
        let message = queue.messages.get_mut(&receipt.message_id).expect("checked live");
        message.record(HistoryEvent::Nacked { at_ms: now_ms, attempt: receipt.attempt, reason: reason.to_string() });
        let reason = if reason.is_empty() { "nacked" } else { reason };
        Ok(Outcome::Nacked(self.fail_delivery(&receipt.queue, receipt.message_id, delay_ms, dead_letter, reason)))
    }

    pub(crate) fn extend_lease(&mut self, receipt: &Receipt, lease_ms: u64) -> Response {
        self.check_live("receipt", receipt)?;
        let now_ms = self.now_ms;
        let deadline_ms = now_ms.saturating_add(lease_ms);
        let queue = self.queues.get_mut(&receipt.queue).expect("checked live");
        let state = MessageState::Leased { attempt: receipt.attempt, deadline_ms };
        queue.set_state(&mut self.timers, receipt.message_id, state);
        let message = queue.messages.get_mut(&receipt.message_id).expect("checked live");
        message.record(HistoryEvent::LeaseExtended {
            at_ms: now_ms,
            attempt: receipt.attempt,
            lease_deadline_ms: deadline_ms,
        });
        Ok(Outcome::LeaseExtended { deadline_ms })
    }

    /// The one failure path (nack, lease end): dead-letter the message if it
    /// is asked for or its delivery budget is spent, else schedule the retry.
    pub(crate) fn fail_delivery(
        &mut self,
        name: &str,
        id: u64,
        delay_ms: Option<u64>,
        dead_letter: bool,
        reason: &str,
    ) -> NackOutcome {
        let now_ms = self.now_ms;
        let queue = self.queues.get_mut(name).expect("caller checked");
        let config = &queue.config;
        let message = &queue.messages[&id];
        let budget_spent = config.max_deliveries > 0 && message.deliveries_since_redrive() >= config.max_deliveries;
        if dead_letter || budget_spent {
            let reason = if budget_spent && !dead_letter {
                format!("{reason}; max_deliveries {} reached", config.max_deliveries)
            } else {
                reason.to_string()
            };
            return NackOutcome::DeadLettered { queue: self.dead_letter(name, id, &reason) };
        }
        let delay_ms = delay_ms.unwrap_or_else(|| {
            retry_delay_ms(config.backoff_base_ms, config.backoff_max_ms, id, message.delivery_count)
        });
        let visible_at_ms = now_ms.saturating_add(delay_ms);
        let state = if delay_ms == 0 { MessageState::Ready } else { MessageState::Delayed { visible_at_ms } };
        queue.set_state(&mut self.timers, id, state);
        let message = queue.messages.get_mut(&id).expect("checked above");
        message.record(HistoryEvent::Retry { at_ms: now_ms, visible_at_ms });
        NackOutcome::Redeliver { visible_at_ms }
    }

    /// Moves message `id` to its queue's dead-letter queue, or parks it here
    /// in state Dead if there is none or it is full. Never drops it. Returns
    /// the queue it went to (`None` = parked in place).
    fn dead_letter(&mut self, name: &str, id: u64, reason: &str) -> Option<String> {
        let now_ms = self.now_ms;
        let queue = &self.queues[name];
        let message_bytes = queue.messages[&id].size_bytes();
        let target = queue
            .config
            .dead_letter_queue
            .clone()
            .filter(|dlq| dlq != name)
            .filter(|dlq| self.queues.get(dlq).is_some_and(|t| t.would_overflow(1, message_bytes).is_none()));
        let queue = self.queues.get_mut(name).expect("caller checked");
        queue.counters.dead_lettered_total += 1;
        let event =
            HistoryEvent::DeadLettered { at_ms: now_ms, reason: reason.to_string(), target_queue: target.clone() };
        let message = &queue.messages[&id];
        let info = DeadLetterInfo {
            source_queue: name.to_string(),
            source_id: id,
            delivery_count: message.delivery_count,
            reason: reason.to_string(),
            dead_lettered_at_ms: now_ms,
            source_published_at_ms: message.published_at_ms,
        };
        let Some(target) = target else {
            queue.set_state(&mut self.timers, id, MessageState::Dead);
            let message = queue.messages.get_mut(&id).expect("caller checked");
            message.record(event);
            // A dead letter that failed again in its dead-letter queue keeps
            // naming its source, so a redrive can still send it home.
            if message.dead_letter.is_none() {
                message.dead_letter = Some(info);
            }
            return None;
        };
        let mut old = queue.remove(&mut self.timers, id).expect("caller checked");
        old.record(event);
        self.move_into(&target, old, Some(info));
        Some(target)
    }

    /// Stores `old` in queue `target` as a new, ready message (new id, fresh
    /// delivery count, the target's TTL), keeping body, attributes and history.
    fn move_into(&mut self, target: &str, old: Message, dead_letter: Option<DeadLetterInfo>) -> u64 {
        let now_ms = self.now_ms;
        let id = self.take_message_id();
        let queue = self.queues.get_mut(target).expect("caller checked");
        let ttl_ms = queue.config.message_ttl_ms;
        let message = Message {
            id,
            body: old.body,
            attributes: old.attributes,
            published_at_ms: now_ms,
            delivery_count: 0,
            redrive_base: 0,
            state: MessageState::Ready,
            expires_at_ms: (ttl_ms > 0).then(|| now_ms.saturating_add(ttl_ms)),
            idempotency_key: old.idempotency_key,
            dead_letter,
            history: old.history,
            history_dropped: old.history_dropped,
        };
        queue.insert(&mut self.timers, message);
        id
    }

    /// Moves up to `max_messages` dead letters held in `name` back: parked
    /// ones become ready in place (keeping their id); ones that came from
    /// another queue go back to it if it exists and has room.
    pub(crate) fn redrive(&mut self, name: &str, max_messages: u32) -> Response {
        let now_ms = self.now_ms;
        let queue = self.queue(name)?;
        let mut candidates = Vec::new();
        for message in queue.messages.values().take(PEEK_SCAN_MAX) {
            if candidates.len() == max_messages as usize {
                break;
            }
            // Leased messages stay: their consumer may still ack them.
            if matches!(message.state, MessageState::Leased { .. }) {
                continue;
            }
            let home = message.dead_letter.as_ref().map(|info| &info.source_queue).filter(|source| {
                *source != name
                    && self.queues.get(*source).is_some_and(|s| s.would_overflow(1, message.size_bytes()).is_none())
            });
            match (home, message.state) {
                (Some(source), _) => candidates.push((message.id, Some(source.clone()))),
                (None, MessageState::Dead) => candidates.push((message.id, None)),
                _ => {}
            }
        }
        let mut moved = 0u64;
        for (id, source) in candidates {
            let queue = self.queues.get_mut(name).expect("checked above");
            match source {
                None => {
                    queue.set_state(&mut self.timers, id, MessageState::Ready);
                    let message = queue.messages.get_mut(&id).expect("candidate exists");
                    message.redrive_base = message.delivery_count;
                    // It is live again here; where it died stays in history.
                    if message.dead_letter.as_ref().is_some_and(|info| info.source_queue == name) {
                        message.dead_letter = None;
                    }
                    message.record(HistoryEvent::Redriven { at_ms: now_ms, from_queue: None });
                }
                Some(source) => {
                    // Capacity was checked per message above; several going
                    // to one source may together pass its limit: check again.
                    let size = queue.messages[&id].size_bytes();
                    if self.queues[&source].would_overflow(1, size).is_some() {
                        continue;
                    }
                    let queue = self.queues.get_mut(name).expect("checked above");
                    let mut message = queue.remove(&mut self.timers, id).expect("candidate exists");
                    message.record(HistoryEvent::Redriven { at_ms: now_ms, from_queue: Some(name.to_string()) });
                    self.move_into(&source, message, None);
                }
            }
            self.queues.get_mut(name).expect("checked above").counters.redriven_total += 1;
            moved += 1;
        }
        Ok(Outcome::Redriven { moved })
    }
}
