//! Model-based property tests of the queue state machine, through its public
//! API only.
//!
//! Random command sequences (create/update/delete/purge, publish with
//! idempotency keys and delays, receive, ack batches, nack, extend, redrive,
//! tick; entry times that mostly advance and sometimes go backwards) run
//! against `QueueState`. A small independent model follows along: which
//! queues exist (and which incarnation of a name), their configs, each
//! queue's dedup window, the one live lease per message, and the largest
//! message id used (ids are unique across queues and only grow). Every
//! published body carries a unique tag, so each
//! message can be followed across dead-lettering and redrive.
//!
//! Each step is checked in two phases. First time passes (the state is
//! cloned and ticked to the entry time): a message may only change if one of
//! its timers was due, and then only as the contract says (a delay ends; a
//! lease ends and the message is retried with bounded backoff, parked dead or
//! moved to its dead-letter queue; its TTL removes it). Then the command
//! applies: its answer must be the one the model predicts, the messages it
//! names must change exactly as it says, and every other message must be
//! left byte-for-byte alone. Across the two phases that proves, at every
//! step:
//! - no loss: a tag disappears only by an Ok ack of its live receipt, an Ok
//!   purge/delete of its queue, or a due TTL; it moves only by dead-lettering
//!   (with `dead_letter` naming its source) or redrive; it never appears
//!   twice, and never appears unless an Ok, non-duplicate publish stored it;
//! - leases: each message has at most one live lease, equal to the model's;
//!   receive hands out the oldest (fifo) / newest (lifo) ready messages with
//!   attempt = delivery count; stale, superseded, expired and made-up
//!   receipts get FAILED_PRECONDITION; a live receipt's ack/nack/extend works;
//! - a rejection changes nothing but time (digest equals a Tick's);
//! - snapshot → restore gives the same digest and passes `check_invariants`
//!   (and some steps continue from the restored state);
//! - determinism: a twin state fed the same entries answers the same and has
//!   the same digest; a command after an explicit Tick at the same time too;
//! - time never goes backwards; no timer stays due; `next_timer_ms`,
//!   `has_visible`, stats and every peek filter agree with the messages.
//!
//! Steps per `cargo test` run: the proptest runs 200 cases of 50..=70 steps
//! (≥ 10,000 steps, plus a 0–3 step prelude each), and the seeded random
//! walks run 20,000 + 10,000 steps: ≥ 40,000 checked steps in all.
//!
//! Core bugs found are reproduced by the regression tests at the end.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use raftq_core::limits::HISTORY_EVENTS_MAX;
use raftq_core::{
    Command, ConfigUpdate, DeadLetterInfo, HistoryEvent, Message, MessageState, NackOutcome, NewMessage, Order,
    Outcome, PublishResult, QueueConfig, QueueError, QueueState, QueueStats, Receipt, Response, StateFilter,
};

/// The queue names commands use: three real ones and one invalid name.
const NAMES: [&str; 4] = ["a", "b", "dlq", "no such/queue"];
const VALID: [&str; 3] = ["a", "b", "dlq"];
const BAD: usize = 3;

// ---------------------------------------------------------------------------
// Steps: what the generators produce. Receipts are picked when the step runs
// (from the deliveries seen so far), so shrinking keeps steps meaningful.

#[derive(Clone, Debug)]
enum Pick {
    /// The k-th (mod count) receipt that is live now, per the model.
    Live(usize),
    /// One of the last few receipts handed out (often still live).
    Recent(usize),
    /// Any receipt ever handed out (usually stale).
    Any(usize),
    /// A receipt nobody was given.
    MadeUp { queue: usize, id: u64, attempt: u32 },
}

#[derive(Clone, Debug)]
struct PubMsg {
    key: Option<u8>,
    delay_ms: Option<u64>,
    pad: u8,
}

#[derive(Clone, Debug)]
enum Op {
    Create { queue: usize, config: ConfigUpdate },
    Update { queue: usize, update: ConfigUpdate },
    Delete { queue: usize },
    Purge { queue: usize },
    Publish { queue: usize, messages: Vec<PubMsg> },
    Receive { queue: usize, max: u32, lease_ms: Option<u64> },
    Ack { picks: Vec<Pick> },
    Nack { pick: Pick, delay_ms: Option<u64>, dead_letter: bool, reason: bool },
    Extend { pick: Pick, lease_ms: u64 },
    Redrive { queue: usize, max: u32 },
    Tick,
}

#[derive(Clone, Debug)]
struct Step {
    /// Entry time change: mostly 0..=2000 ms forward, sometimes up to 500 back.
    dt: i64,
    op: Op,
    /// Continue from `from_snapshot(to_snapshot())` after this step.
    restore: bool,
}

fn setup_step(op: Op) -> Step {
    Step { dt: 0, op, restore: false }
}

// ---------------------------------------------------------------------------
// Message tags: every published body is a unique u64 plus padding.

fn body_for(tag: u64, pad: u8) -> Bytes {
    let mut body = tag.to_le_bytes().to_vec();
    body.extend(std::iter::repeat_n(0xAB, usize::from(pad)));
    Bytes::from(body)
}

fn attributes_for(pad: u8) -> BTreeMap<String, String> {
    if pad % 2 == 1 { BTreeMap::from([("pad".to_string(), pad.to_string())]) } else { BTreeMap::new() }
}

fn tag_of(body: &[u8]) -> u64 {
    assert!(body.len() >= 8 && body[8..].iter().all(|b| *b == 0xAB), "a body that was never published: {body:?}");
    u64::from_le_bytes(body[..8].try_into().expect("8 bytes"))
}

// ---------------------------------------------------------------------------
// Observation: everything the public reads show, cross-checked against itself.

#[derive(Clone, Debug, Default)]
struct Obs {
    configs: BTreeMap<String, QueueConfig>,
    /// tag → (queue, message)
    msgs: BTreeMap<u64, (String, Message)>,
    /// (queue, id) → tag
    by_loc: BTreeMap<(String, u64), u64>,
}

impl Obs {
    fn in_queue(&self, queue: &str) -> Vec<(u64, &Message)> {
        self.by_loc
            .range((queue.to_string(), 0)..=(queue.to_string(), u64::MAX))
            .map(|(_, tag)| (*tag, &self.msgs[tag].1))
            .collect()
    }

    fn len(&self, queue: &str) -> u64 {
        self.in_queue(queue).len() as u64
    }

    fn at(&self, queue: &str, id: u64) -> Option<(u64, &Message)> {
        self.by_loc.get(&(queue.to_string(), id)).map(|tag| (*tag, &self.msgs[tag].1))
    }

    fn is_full(&self, queue: &str) -> bool {
        self.configs.get(queue).is_some_and(|c| c.max_length > 0 && self.len(queue) >= c.max_length)
    }
}

fn peek_all(s: &QueueState, name: &str, filter: StateFilter, page: u32) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::new();
    let mut after = 0;
    loop {
        let p = s.peek(name, filter, after, page).expect("peek of an existing queue");
        assert!(p.messages.len() <= page as usize, "peek returned more than its limit");
        assert!(p.messages.iter().all(|m| m.id > after && filter.matches(&m.state)), "peek ignored after_id/filter");
        out.extend(p.messages);
        match p.next_after_id {
            Some(next) => {
                assert!(next > after, "peek paging does not advance");
                after = next;
            }
            None => return out,
        }
    }
}

fn state_due(state: &MessageState) -> Option<u64> {
    match *state {
        MessageState::Delayed { visible_at_ms } => Some(visible_at_ms),
        MessageState::Leased { lease_expires_at_ms, .. } => Some(lease_expires_at_ms),
        MessageState::Ready | MessageState::Dead => None,
    }
}

fn observe(s: &QueueState, page: u32) -> Obs {
    let now = s.now_ms();
    let mut obs = Obs::default();
    let mut next_timer: Option<u64> = None;
    for name in VALID {
        let info = match s.queue_info(name) {
            Ok(info) => info,
            Err(e) => {
                assert!(matches!(e, QueueError::NotFound { .. }), "queue_info({name}): {e:?}");
                assert!(!s.has_visible(name));
                assert!(matches!(s.peek(name, StateFilter::Any, 0, 10), Err(QueueError::NotFound { .. })));
                continue;
            }
        };
        assert_eq!(info.name, name);
        let all = peek_all(s, name, StateFilter::Any, page);
        assert!(all.windows(2).all(|w| w[0].id < w[1].id), "peek out of id order in {name}");
        for filter in [StateFilter::Ready, StateFilter::Delayed, StateFilter::Leased, StateFilter::Dead] {
            let want: Vec<Message> = all.iter().filter(|m| filter.matches(&m.state)).cloned().collect();
            assert_eq!(peek_all(s, name, filter, 1000), want, "peek {filter:?} disagrees with peek Any in {name}");
        }
        let count = |f: StateFilter| all.iter().filter(|m| f.matches(&m.state)).count() as u64;
        let stats = &info.stats;
        assert_eq!(
            (stats.ready, stats.delayed, stats.leased, stats.dead),
            (
                count(StateFilter::Ready),
                count(StateFilter::Delayed),
                count(StateFilter::Leased),
                count(StateFilter::Dead)
            ),
            "stats by state disagree with peek in {name}"
        );
        assert_eq!(stats.total_bytes, all.iter().map(Message::size_bytes).sum::<u64>(), "total_bytes in {name}");
        let oldest = all.iter().find(|m| m.state == MessageState::Ready).map_or(0, |m| now - m.published_at_ms);
        assert_eq!(stats.oldest_ready_age_ms, oldest, "oldest_ready_age_ms in {name}");
        assert_eq!(s.has_visible(name), stats.ready > 0, "has_visible({name})");
        assert!(s.inspect(name, 0).is_err());
        for m in &all {
            assert_eq!(s.inspect(name, m.id).as_ref(), Ok(m), "inspect disagrees with peek");
            for due in state_due(&m.state).into_iter().chain(m.expires_at_ms) {
                assert!(due > now, "{name}/{}: a timer due at {due} is still pending at {now}: {m:?}", m.id);
                next_timer = Some(next_timer.map_or(due, |t| t.min(due)));
            }
            if let MessageState::Leased { attempt, .. } = m.state {
                assert_eq!(attempt, m.delivery_count, "{name}/{}: leased under a stale attempt", m.id);
            }
            assert!(m.redrive_base <= m.delivery_count);
            assert!(m.published_at_ms <= now);
            let tag = tag_of(&m.body);
            let before = obs.msgs.insert(tag, (name.to_string(), m.clone()));
            assert!(before.is_none(), "tag {tag} is present twice: {before:?} and {name}/{}", m.id);
            obs.by_loc.insert((name.to_string(), m.id), tag);
        }
        obs.configs.insert(name.to_string(), info.config);
    }
    assert_eq!(s.next_timer_ms(), next_timer, "next_timer_ms disagrees with the messages");
    obs
}

// ---------------------------------------------------------------------------
// Small helpers for expected messages.

/// `m` in `state` with `events` appended to its bounded history.
fn with_events(m: &Message, state: MessageState, events: &[HistoryEvent]) -> Message {
    let mut m = m.clone();
    m.state = state;
    for event in events {
        if m.history.len() == HISTORY_EVENTS_MAX {
            m.history.pop_front();
            m.history_dropped += 1;
        }
        m.history.push_back(event.clone());
    }
    m
}

/// `m` parked dead in its own `queue`: it carries dead-letter info naming
/// itself as the source — unless it already names where it came from (a
/// dead letter that failed again in its dead-letter queue keeps its source).
fn parked_dead(queue: &str, m: &Message, events: &[HistoryEvent], reason: &str, now: u64) -> Message {
    let mut parked = with_events(m, MessageState::Dead, events);
    if parked.dead_letter.is_some() {
        return parked;
    }
    parked.dead_letter = Some(DeadLetterInfo {
        source_queue: queue.into(),
        source_id: m.id,
        delivery_count: m.delivery_count,
        reason: reason.into(),
        dead_lettered_at_ms: now,
        source_published_at_ms: m.published_at_ms,
    });
    parked
}

/// Has `m` used up its delivery budget under `config`?
fn budget_spent(config: &QueueConfig, m: &Message) -> bool {
    config.max_deliveries > 0 && m.delivery_count - m.redrive_base >= config.max_deliveries
}

/// The documented retry delay: min(max, base·2^(count−1)), minus ≤ ¼ jitter.
fn check_retry_delay(config: &QueueConfig, delivery_count: u32, delay: u64) {
    if config.backoff_base_ms == 0 {
        assert_eq!(delay, 0, "no backoff configured, yet a retry delay");
        return;
    }
    let exponent = delivery_count.saturating_sub(1).min(63);
    let full = config.backoff_base_ms.saturating_mul(1u64 << exponent).min(config.backoff_max_ms);
    assert!(delay <= full && delay >= full - full / 4, "retry delay {delay} outside [{}, {full}]", full - full / 4);
}

fn check_reason(actual: &str, base: &str, budget: bool) {
    if budget {
        assert!(actual.starts_with(base) && actual.contains("max_deliveries"), "dead-letter reason {actual:?}");
    } else {
        assert_eq!(actual, base, "dead-letter reason");
    }
}

fn err_kind(e: &QueueError) -> &'static str {
    match e {
        QueueError::InvalidArgument { .. } => "InvalidArgument",
        QueueError::NotFound { .. } => "NotFound",
        QueueError::AlreadyExists { .. } => "AlreadyExists",
        QueueError::FailedPrecondition { .. } => "FailedPrecondition",
        QueueError::ResourceExhausted { .. } => "ResourceExhausted",
    }
}

fn check_answer(resp: &Response, want: Result<(), &str>) {
    match (resp, want) {
        (Ok(_), Ok(())) => {}
        (Err(e), Err(kind)) => assert_eq!(err_kind(e), kind, "wrong rejection: {e:?}"),
        (got, want) => panic!("expected {want:?}, got {got:?}"),
    }
}

fn receipt_valid(r: &Receipt) -> bool {
    raftq_core::validate_queue_name(&r.queue).is_ok() && r.message_id > 0 && r.attempt > 0
}

fn name_valid(name: &str) -> bool {
    raftq_core::validate_queue_name(name).is_ok()
}

/// Prints what the failing step was, when a check panics.
struct PanicContext(String);

impl Drop for PanicContext {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("model check failed at {}", self.0);
        }
    }
}

// ---------------------------------------------------------------------------
// The model and the harness.

#[derive(Clone, Debug)]
struct ModelQueue {
    /// Which incarnation of this name (a deleted and re-created queue is new).
    incarnation: u64,
    config: QueueConfig,
    /// idempotency key → (original id, forgotten at)
    dedup: BTreeMap<String, (u64, u64)>,
}

#[derive(Clone, Debug, Default)]
struct Model {
    queues: BTreeMap<String, ModelQueue>,
    next_incarnation: u64,
    /// (queue, id) → (attempt, deadline) of the one live lease.
    leases: BTreeMap<(String, u64), (u32, u64)>,
    /// Largest message id seen in any queue: ids are unique across queues
    /// and never reused, so every new message's id is larger.
    max_id: u64,
}

/// A receipt a consumer holds, with the queue incarnation it came from.
#[derive(Clone, Debug)]
struct Held {
    receipt: Receipt,
    incarnation: u64,
}

#[derive(Debug, Default)]
struct Plan {
    /// Tags of the published messages, in order.
    tags: Vec<u64>,
    /// Receipts of an ack/nack/extend, with their incarnations.
    held: Vec<Held>,
}

#[derive(Debug)]
struct Harness {
    state: QueueState,
    twin: QueueState,
    model: Model,
    obs: Obs,
    clock: u64,
    now: u64,
    next_tag: u64,
    pool: Vec<Held>,
    step_no: u64,
    counts: BTreeMap<String, u64>,
}

impl Harness {
    fn new() -> Self {
        Self {
            state: QueueState::new(),
            twin: QueueState::new(),
            model: Model { next_incarnation: 1, ..Model::default() },
            obs: Obs::default(),
            clock: 1_000_000,
            now: 0,
            next_tag: 1,
            pool: Vec::new(),
            step_no: 0,
            counts: BTreeMap::new(),
        }
    }

    fn count(&mut self, what: &str) {
        if let Some(n) = self.counts.get_mut(what) {
            *n += 1;
        } else {
            self.counts.insert(what.to_string(), 1);
        }
    }

    fn run(&mut self, steps: &[Step]) {
        for step in steps {
            self.step(step);
        }
    }

    fn step(&mut self, step: &Step) {
        self.step_no += 1;
        self.clock = if step.dt >= 0 {
            self.clock + step.dt.unsigned_abs()
        } else {
            self.clock.saturating_sub(step.dt.unsigned_abs())
        };
        let t = self.clock;
        let page = 1 + (self.step_no % 4) as u32;

        // Phase 1: time passes.
        let before_now = self.state.now_ms();
        let mut ticked = self.state.clone();
        assert_eq!(ticked.apply(t, &Command::Tick), Ok(Outcome::Ticked));
        self.now = ticked.now_ms();
        assert_eq!(self.now, before_now.max(t), "time must be the latest entry time, never less");
        if t < before_now {
            self.count("entry time behind state time");
        }
        let obs1 = observe(&ticked, page);
        let obs0 = std::mem::take(&mut self.obs);
        {
            let _ctx = PanicContext(format!("step {} (time passing to {t}), before {:?}", self.step_no, step.op));
            self.check_time_phase(&obs0, &obs1);
        }

        // Phase 2: the command.
        let (command, plan) = self.resolve(&step.op);
        let _ctx = PanicContext(format!("step {} at t={t} (now {}): {command:?}", self.step_no, self.now));
        let ticked_digest = ticked.digest();
        let response = self.state.apply(t, &command);
        assert_eq!(self.state.now_ms(), self.now);
        assert_eq!(self.twin.apply(t, &command), response, "determinism: a twin answered differently");
        assert_eq!(ticked.apply(t, &command), response, "the command answers differently after an explicit Tick");
        let digest = self.state.digest();
        assert_eq!(self.twin.digest(), digest, "determinism: a twin's digest differs");
        assert_eq!(ticked.digest(), digest, "the command does something else after an explicit Tick");
        let obs2 = observe(&self.state, page);
        if response.is_err() {
            assert_eq!(digest, ticked_digest, "a rejection changed more than time: {response:?}");
        }
        self.check_command(&command, &plan, &response, &obs1, &obs2);
        self.bump_max_id(&obs2);
        self.check_model(&obs2);

        // Snapshots.
        let snapshot = self.state.to_snapshot();
        let restored = QueueState::from_snapshot(&snapshot).expect("own snapshot restores");
        assert_eq!(restored.digest(), digest, "snapshot → restore changed the digest");
        self.state.check_invariants().expect("invariants");
        restored.check_invariants().expect("invariants after restore");
        if self.step_no.is_multiple_of(97) {
            let mut corrupt = snapshot;
            let at = (self.step_no as usize * 31) % corrupt.len();
            corrupt[at] ^= 0x40;
            assert!(QueueState::from_snapshot(&corrupt).is_err(), "a corrupt snapshot restored");
        }
        if step.restore {
            self.state = restored;
            self.count("continued from a restored snapshot");
        }
        self.obs = obs2;
    }

    // ---- Picking receipts and building commands.

    fn made_up(&self, queue: usize, id: u64, attempt: u32) -> Held {
        let name = NAMES[queue];
        let incarnation = self.model.queues.get(name).map_or(0, |q| q.incarnation);
        Held { receipt: Receipt { queue: name.to_string(), message_id: id, attempt }, incarnation }
    }

    fn pick(&self, pick: &Pick) -> Held {
        let n = self.pool.len();
        let live = self.model.leases.len();
        match *pick {
            Pick::Live(k) if live > 0 => {
                let ((queue, id), (attempt, _)) = self.model.leases.iter().nth(k % live).expect("k % len < len");
                let incarnation = self.model.queues[queue].incarnation;
                Held { receipt: Receipt { queue: queue.clone(), message_id: *id, attempt: *attempt }, incarnation }
            }
            Pick::Live(k) | Pick::Recent(k) if n > 0 => self.pool[n - 1 - k % n.min(6)].clone(),
            Pick::Any(i) if n > 0 => self.pool[i % n].clone(),
            Pick::MadeUp { queue, id, attempt } => self.made_up(queue, id, attempt),
            _ => self.made_up(0, 1, 1),
        }
    }

    fn resolve(&mut self, op: &Op) -> (Command, Plan) {
        let mut plan = Plan::default();
        let command = match op {
            Op::Create { queue, config } => Command::CreateQueue { name: NAMES[*queue].into(), config: config.clone() },
            Op::Update { queue, update } => Command::UpdateQueue { name: NAMES[*queue].into(), update: update.clone() },
            Op::Delete { queue } => Command::DeleteQueue { name: NAMES[*queue].into() },
            Op::Purge { queue } => Command::PurgeQueue { name: NAMES[*queue].into() },
            Op::Publish { queue, messages } => {
                let name = NAMES[*queue];
                let messages = messages
                    .iter()
                    .map(|pm| {
                        let tag = self.next_tag;
                        self.next_tag += 1;
                        plan.tags.push(tag);
                        NewMessage {
                            body: body_for(tag, pm.pad),
                            attributes: attributes_for(pm.pad),
                            delay_ms: pm.delay_ms,
                            idempotency_key: pm.key.map(|k| format!("key-{k}")),
                        }
                    })
                    .collect();
                Command::Publish { queue: name.into(), messages }
            }
            Op::Receive { queue, max, lease_ms } => {
                Command::Receive { queue: NAMES[*queue].into(), max_messages: *max, lease_ms: *lease_ms }
            }
            Op::Ack { picks } => {
                plan.held = picks.iter().map(|p| self.pick(p)).collect();
                Command::Ack { receipts: plan.held.iter().map(|h| h.receipt.clone()).collect() }
            }
            Op::Nack { pick, delay_ms, dead_letter, reason } => {
                plan.held = vec![self.pick(pick)];
                Command::Nack {
                    receipt: plan.held[0].receipt.clone(),
                    delay_ms: *delay_ms,
                    dead_letter: *dead_letter,
                    reason: if *reason { "handler failed".into() } else { String::new() },
                }
            }
            Op::Extend { pick, lease_ms } => {
                plan.held = vec![self.pick(pick)];
                Command::ExtendLease { receipt: plan.held[0].receipt.clone(), lease_ms: *lease_ms }
            }
            Op::Redrive { queue, max } => Command::Redrive { queue: NAMES[*queue].into(), max_messages: *max },
            Op::Tick => Command::Tick,
        };
        (command, plan)
    }

    /// Is this receipt's lease the message's live lease (per the model)?
    fn live(&self, h: &Held) -> bool {
        let r = &h.receipt;
        self.model.queues.get(&r.queue).is_some_and(|q| q.incarnation == h.incarnation)
            && self.model.leases.get(&(r.queue.clone(), r.message_id)).is_some_and(|(a, _)| *a == r.attempt)
    }

    fn exists(&self, name: &str) -> bool {
        self.model.queues.contains_key(name)
    }

    fn config(&self, name: &str) -> &QueueConfig {
        &self.model.queues[name].config
    }

    fn bump_max_id(&mut self, obs: &Obs) {
        for (queue, m) in obs.msgs.values() {
            assert!(self.exists(queue), "a message in a queue that does not exist");
            self.model.max_id = self.model.max_id.max(m.id);
        }
    }

    /// The queues, configs and live leases the state shows are the model's.
    fn check_model(&self, obs: &Obs) {
        assert!(obs.configs.keys().eq(self.model.queues.keys()), "queue set differs from the model");
        for (name, config) in &obs.configs {
            assert_eq!(config, self.config(name), "config of {name} differs from the model");
        }
        let leases: BTreeMap<(String, u64), (u32, u64)> = obs
            .msgs
            .values()
            .filter_map(|(q, m)| match m.state {
                MessageState::Leased { attempt, lease_expires_at_ms } => {
                    Some(((q.clone(), m.id), (attempt, lease_expires_at_ms)))
                }
                _ => None,
            })
            .collect();
        assert_eq!(leases, self.model.leases, "leased messages differ from the model's live leases");
    }

    // ---- Phase 1: time passes.

    fn check_time_phase(&mut self, o0: &Obs, o1: &Obs) {
        let now = self.now;
        self.model.leases.retain(|_, (_, deadline)| *deadline > now);
        for (tag, (q0, m0)) in &o0.msgs {
            match o1.msgs.get(tag) {
                None => {
                    assert!(
                        m0.expires_at_ms.is_some_and(|e| e <= now),
                        "no loss: {q0}/{} (tag {tag}) vanished as time passed to {now} with no TTL due: {m0:?}",
                        m0.id
                    );
                    self.model.leases.remove(&(q0.clone(), m0.id));
                    self.count("message expired by TTL");
                }
                Some((q1, m1)) if q1 == q0 && m1.id == m0.id => self.check_timer_transition(q0, m0, m1),
                Some((q1, m1)) => {
                    let MessageState::Leased { attempt, lease_expires_at_ms } = m0.state else {
                        panic!("{q0}/{} moved to {q1}/{} as time passed but was not leased", m0.id, m1.id)
                    };
                    assert!(lease_expires_at_ms <= now, "moved before its lease ended");
                    let config = self.config(q0);
                    assert!(budget_spent(config, m0), "dead-lettered by lease end with budget left");
                    assert_eq!(config.dead_letter_queue.as_deref(), Some(q1.as_str()), "moved to a non-DLQ");
                    let events = [HistoryEvent::LeaseExpired { at_ms: now, attempt }];
                    self.check_dead_letter_move((q0, m0), &events, (q1, m1), ("lease expired", true));
                    self.count("dead-lettered to DLQ by lease end");
                }
            }
        }
        for tag in o1.msgs.keys() {
            assert!(o0.msgs.contains_key(tag), "tag {tag} appeared as time passed");
        }
        self.bump_max_id(o1);
        self.check_model(o1);
    }

    fn check_timer_transition(&mut self, queue: &str, m0: &Message, m1: &Message) {
        let now = self.now;
        match m0.state {
            MessageState::Delayed { visible_at_ms } if visible_at_ms <= now => {
                assert_eq!(m1, &with_events(m0, MessageState::Ready, &[]), "a delay ended wrongly");
                self.count("delay ended");
            }
            MessageState::Leased { attempt, lease_expires_at_ms } if lease_expires_at_ms <= now => {
                let config = self.config(queue);
                let spent = budget_spent(config, m0);
                let expired = HistoryEvent::LeaseExpired { at_ms: now, attempt };
                match m1.history.back() {
                    Some(retry @ HistoryEvent::Retry { at_ms, visible_at_ms }) => {
                        assert!(!spent, "retried though max_deliveries is spent: {m1:?}");
                        assert_eq!(*at_ms, now);
                        let delay = visible_at_ms.checked_sub(now).expect("retry scheduled in the past");
                        check_retry_delay(config, m0.delivery_count, delay);
                        let state = if delay == 0 {
                            MessageState::Ready
                        } else {
                            MessageState::Delayed { visible_at_ms: *visible_at_ms }
                        };
                        assert_eq!(m1, &with_events(m0, state, &[expired, retry.clone()]), "lease end retry");
                        self.count("lease ended, retried");
                    }
                    Some(HistoryEvent::DeadLettered { reason, target_queue: None, .. }) => {
                        assert!(spent, "parked dead by lease end with budget left: {m1:?}");
                        assert!(self.may_park(queue), "parked dead though its DLQ had room: {m1:?}");
                        check_reason(reason, "lease expired", true);
                        let parked =
                            HistoryEvent::DeadLettered { at_ms: now, reason: reason.clone(), target_queue: None };
                        let want = parked_dead(queue, m0, &[expired, parked], reason, now);
                        assert_eq!(m1, &want, "lease end park");
                        self.count("lease ended, parked dead");
                    }
                    other => panic!("lease of {queue}/{} ended with last event {other:?}: {m1:?}", m0.id),
                }
            }
            _ => assert_eq!(m1, m0, "{queue}/{} changed as time passed, though none of its timers was due", m0.id),
        }
    }

    /// May a failed message of `queue` be parked in place rather than moved?
    fn may_park(&self, queue: &str) -> bool {
        match &self.config(queue).dead_letter_queue {
            None => true,
            Some(target) if target == queue => true,
            Some(target) => self.model.queues.get(target).is_none_or(|t| t.config.max_length > 0),
        }
    }

    /// `m0` (source) left its queue as a dead letter and is now `m1` in `dst`.
    fn check_dead_letter_move(
        &self,
        (src, m0): (&str, &Message),
        events: &[HistoryEvent],
        (dst, m1): (&str, &Message),
        (reason_base, budget): (&str, bool),
    ) {
        let now = self.now;
        let Some(HistoryEvent::DeadLettered { reason, .. }) = m1.history.back() else {
            panic!("a dead letter without a DeadLettered event: {m1:?}")
        };
        check_reason(reason, reason_base, budget);
        let mut events = events.to_vec();
        events.push(HistoryEvent::DeadLettered { at_ms: now, reason: reason.clone(), target_queue: Some(dst.into()) });
        let old = with_events(m0, m0.state, &events);
        let target = &self.model.queues[dst];
        assert!(m1.id > self.model.max_id, "{dst}: id {} reused (max so far {})", m1.id, self.model.max_id);
        let ttl = target.config.message_ttl_ms;
        let want = Message {
            id: m1.id,
            body: old.body,
            attributes: old.attributes,
            published_at_ms: now,
            delivery_count: 0,
            redrive_base: 0,
            state: MessageState::Ready,
            expires_at_ms: (ttl > 0).then_some(now + ttl),
            idempotency_key: old.idempotency_key,
            dead_letter: Some(DeadLetterInfo {
                source_queue: src.into(),
                source_id: m0.id,
                delivery_count: m0.delivery_count,
                reason: reason.clone(),
                dead_lettered_at_ms: now,
                source_published_at_ms: m0.published_at_ms,
            }),
            history: old.history,
            history_dropped: old.history_dropped,
        };
        assert_eq!(m1, &want, "dead letter {src}/{} → {dst}", m0.id);
    }

    // ---- Phase 2: the command.

    fn check_command(&mut self, command: &Command, plan: &Plan, resp: &Response, o1: &Obs, o2: &Obs) {
        let touched = match command {
            Command::CreateQueue { name, config } => self.on_create(name, config, resp),
            Command::UpdateQueue { name, update } => self.on_update(name, update, resp),
            Command::DeleteQueue { name } => self.on_clear(name, true, resp, o1, o2),
            Command::PurgeQueue { name } => self.on_clear(name, false, resp, o1, o2),
            Command::Publish { queue, messages } => self.on_publish(queue, messages, plan, resp, o1, o2),
            Command::Receive { queue, max_messages, lease_ms } => {
                self.on_receive(queue, *max_messages, *lease_ms, resp, o1, o2)
            }
            Command::Ack { .. } => self.on_ack(&plan.held, resp, o1, o2),
            Command::Nack { delay_ms, dead_letter, reason, .. } => {
                self.on_nack(&plan.held[0], *delay_ms, *dead_letter, reason, resp, o1, o2)
            }
            Command::ExtendLease { lease_ms, .. } => self.on_extend(&plan.held[0], *lease_ms, resp, o1, o2),
            Command::Redrive { queue, max_messages } => self.on_redrive(queue, *max_messages, resp, o1, o2),
            Command::Tick => {
                assert_eq!(resp, &Ok(Outcome::Ticked));
                BTreeSet::new()
            }
            // Topics have their own model test (`topic_tests` in the crate).
            Command::CreateTopic { .. }
            | Command::DeleteTopic { .. }
            | Command::Bind { .. }
            | Command::Unbind { .. }
            | Command::PublishTopic { .. } => unreachable!("this model generates no topic commands"),
        };
        if resp.is_err() {
            assert!(touched.is_empty());
        }
        // The frame: everything the command did not name is untouched.
        for (tag, (q1, m1)) in &o1.msgs {
            if touched.contains(tag) {
                continue;
            }
            match o2.msgs.get(tag) {
                Some((q2, m2)) => assert!(q2 == q1 && m2 == m1, "{q1}/{} changed though not named: {m2:?}", m1.id),
                None => panic!("no loss: {q1}/{} (tag {tag}) vanished, though not named by the command", m1.id),
            }
        }
        for tag in o2.msgs.keys() {
            assert!(o1.msgs.contains_key(tag) || touched.contains(tag), "tag {tag} appeared from nowhere");
        }
        let outcome = match resp {
            Ok(_) => "ok",
            Err(e) => err_kind(e),
        };
        let kind = match command {
            Command::CreateQueue { .. } => "create",
            Command::UpdateQueue { .. } => "update",
            Command::DeleteQueue { .. } => "delete",
            Command::PurgeQueue { .. } => "purge",
            Command::Publish { .. } => "publish",
            Command::Receive { .. } => "receive",
            Command::Ack { .. } => "ack",
            Command::Nack { .. } => "nack",
            Command::ExtendLease { .. } => "extend",
            Command::Redrive { .. } => "redrive",
            Command::Tick => "tick",
            _ => "topic",
        };
        self.count(&format!("{kind} {outcome}"));
    }

    fn dead_letter_target_check(&self, name: &str, config: &QueueConfig) -> Result<(), &'static str> {
        match &config.dead_letter_queue {
            Some(target) if target == name => Err("InvalidArgument"),
            Some(target) if !self.exists(target) => Err("NotFound"),
            _ => Ok(()),
        }
    }

    fn on_create(&mut self, name: &str, update: &ConfigUpdate, resp: &Response) -> BTreeSet<u64> {
        let config = update.apply_to(&QueueConfig::default());
        let want = if !name_valid(name) {
            Err("InvalidArgument")
        } else if self.exists(name) {
            Err("AlreadyExists")
        } else {
            self.dead_letter_target_check(name, &config)
        };
        check_answer(resp, want);
        if let Ok(outcome) = resp {
            let Outcome::QueueCreated(info) = outcome else { panic!("create answered {outcome:?}") };
            assert_eq!((info.name.as_str(), &info.config), (name, &config));
            assert_eq!((&info.stats, info.created_at_ms), (&QueueStats::default(), self.now));
            let incarnation = self.model.next_incarnation;
            self.model.next_incarnation += 1;
            let queue = ModelQueue { incarnation, config, dedup: BTreeMap::new() };
            self.model.queues.insert(name.into(), queue);
        }
        BTreeSet::new()
    }

    fn on_update(&mut self, name: &str, update: &ConfigUpdate, resp: &Response) -> BTreeSet<u64> {
        let want = if !name_valid(name) {
            Err("InvalidArgument")
        } else if !self.exists(name) {
            Err("NotFound")
        } else {
            self.dead_letter_target_check(name, &update.apply_to(self.config(name)))
        };
        check_answer(resp, want);
        if let Ok(outcome) = resp {
            let config = update.apply_to(self.config(name));
            let Outcome::QueueUpdated(info) = outcome else { panic!("update answered {outcome:?}") };
            assert_eq!((info.name.as_str(), &info.config), (name, &config));
            self.model.queues.get_mut(name).expect("exists").config = config;
        }
        BTreeSet::new()
    }

    /// Delete (`delete`) or purge a queue: all its messages go, nothing else.
    fn on_clear(&mut self, name: &str, delete: bool, resp: &Response, o1: &Obs, o2: &Obs) -> BTreeSet<u64> {
        let want = if !name_valid(name) {
            Err("InvalidArgument")
        } else if !self.exists(name) {
            Err("NotFound")
        } else {
            Ok(())
        };
        check_answer(resp, want);
        let Ok(outcome) = resp else { return BTreeSet::new() };
        let held = o1.len(name);
        if delete {
            assert_eq!(outcome, &Outcome::QueueDeleted { messages_deleted: held });
            assert!(!o2.configs.contains_key(name));
            self.model.queues.remove(name);
        } else {
            assert_eq!(outcome, &Outcome::QueuePurged { messages_purged: held });
            assert!(o2.configs.contains_key(name) && o2.len(name) == 0);
        }
        self.model.leases.retain(|(queue, _), _| queue != name);
        let touched: BTreeSet<u64> = o1.in_queue(name).into_iter().map(|(tag, _)| tag).collect();
        for tag in &touched {
            assert!(!o2.msgs.contains_key(tag), "a purged/deleted message survived");
        }
        touched
    }

    fn on_publish(
        &mut self,
        queue: &str,
        messages: &[NewMessage],
        plan: &Plan,
        resp: &Response,
        o1: &Obs,
        o2: &Obs,
    ) -> BTreeSet<u64> {
        let now = self.now;
        if !name_valid(queue) || !self.exists(queue) {
            check_answer(resp, Err(if name_valid(queue) { "NotFound" } else { "InvalidArgument" }));
            return BTreeSet::new();
        }
        let q = self.model.queues.get_mut(queue).expect("exists");
        q.dedup.retain(|_, (_, until)| *until > now);
        // Each message's fate: Err(original id) = seen in the window,
        // Ok(Some(i)) = repeats message i of this batch, Ok(None) = fresh.
        let mut fates: Vec<Result<Option<usize>, u64>> = Vec::new();
        let mut batch_keys: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, m) in messages.iter().enumerate() {
            let key = m.idempotency_key.as_deref();
            if let Some((id, _)) = key.and_then(|k| q.dedup.get(k)) {
                fates.push(Err(*id));
            } else if let Some(first) = key.and_then(|k| batch_keys.get(k)) {
                fates.push(Ok(Some(*first)));
            } else {
                if let Some(k) = key {
                    batch_keys.insert(k, i);
                }
                fates.push(Ok(None));
            }
        }
        let fresh = fates.iter().filter(|f| matches!(f, Ok(None))).count() as u64;
        let max_length = q.config.max_length;
        if max_length > 0 && o1.len(queue) + fresh > max_length {
            check_answer(resp, Err("ResourceExhausted"));
            self.count("publish refused: queue full");
            return BTreeSet::new();
        }
        check_answer(resp, Ok(()));
        let Ok(Outcome::Published(results)) = resp else { panic!("publish answered {resp:?}") };
        assert_eq!(results.len(), messages.len());
        let mut touched = BTreeSet::new();
        let mut last_id = self.model.max_id;
        let config = q.config.clone();
        for (i, (fate, result)) in fates.iter().zip(results).enumerate() {
            match *fate {
                Err(id) => assert_eq!(*result, PublishResult { id, duplicate: true }, "dedup by window"),
                Ok(Some(first)) => {
                    assert_eq!(*result, PublishResult { id: results[first].id, duplicate: true }, "dedup in batch")
                }
                Ok(None) => {
                    assert!(!result.duplicate && result.id > last_id, "fresh ids must be new and increasing");
                    last_id = result.id;
                    let m = &messages[i];
                    let tag = plan.tags[i];
                    let delay = m.delay_ms.unwrap_or(config.default_delay_ms);
                    let want = Message {
                        id: result.id,
                        body: m.body.clone(),
                        attributes: m.attributes.clone(),
                        published_at_ms: now,
                        delivery_count: 0,
                        redrive_base: 0,
                        state: if delay == 0 {
                            MessageState::Ready
                        } else {
                            MessageState::Delayed { visible_at_ms: now + delay }
                        },
                        expires_at_ms: (config.message_ttl_ms > 0).then_some(now + config.message_ttl_ms),
                        idempotency_key: m.idempotency_key.clone(),
                        dead_letter: None,
                        history: Default::default(),
                        history_dropped: 0,
                    };
                    assert_eq!(o2.msgs.get(&tag), Some(&(queue.to_string(), want)), "published message as stored");
                    touched.insert(tag);
                    if let Some(key) = &m.idempotency_key
                        && config.dedup_window_ms > 0
                    {
                        q.dedup.insert(key.clone(), (result.id, now + config.dedup_window_ms));
                    }
                }
            }
        }
        self.model.max_id = last_id;
        if (fresh as usize) < messages.len() {
            self.count("publish answered a duplicate");
        }
        touched
    }

    fn on_receive(
        &mut self,
        queue: &str,
        max: u32,
        lease_ms: Option<u64>,
        resp: &Response,
        o1: &Obs,
        o2: &Obs,
    ) -> BTreeSet<u64> {
        let want = if !name_valid(queue) {
            Err("InvalidArgument")
        } else if !self.exists(queue) {
            Err("NotFound")
        } else {
            Ok(())
        };
        check_answer(resp, want);
        let Ok(outcome) = resp else { return BTreeSet::new() };
        let Outcome::Received(deliveries) = outcome else { panic!("receive answered {outcome:?}") };
        let config = self.config(queue).clone();
        let mut ready: Vec<(u64, &Message)> =
            o1.in_queue(queue).into_iter().filter(|(_, m)| m.state == MessageState::Ready).collect();
        if config.order == Order::Lifo {
            ready.reverse();
        }
        ready.truncate(max as usize);
        let got: Vec<u64> = deliveries.iter().map(|d| d.receipt.message_id).collect();
        let expected: Vec<u64> = ready.iter().map(|(_, m)| m.id).collect();
        assert_eq!(got, expected, "receive must take the {:?}-first visible messages", config.order);
        let deadline = self.now + lease_ms.unwrap_or(config.lease_ms);
        let incarnation = self.model.queues[queue].incarnation;
        let mut touched = BTreeSet::new();
        for (d, (tag, m1)) in deliveries.iter().zip(ready) {
            let attempt = m1.delivery_count + 1;
            assert_eq!(d.receipt, Receipt { queue: queue.into(), message_id: m1.id, attempt });
            assert_eq!(d.lease_expires_at_ms, deadline);
            let mut want = with_events(
                m1,
                MessageState::Leased { attempt, lease_expires_at_ms: deadline },
                &[HistoryEvent::Delivered { at_ms: self.now, attempt, lease_expires_at_ms: deadline }],
            );
            want.delivery_count = attempt;
            assert_eq!(o2.msgs.get(&tag), Some(&(queue.to_string(), want.clone())), "a delivered message as stored");
            want.history.clear();
            assert_eq!(d.message, want, "a delivery's message");
            assert_eq!(d.message.delivery_count, d.receipt.attempt);
            let before = self.model.leases.insert((queue.into(), m1.id), (attempt, deadline));
            assert!(before.is_none(), "double lease of {queue}/{}", m1.id);
            self.pool.push(Held { receipt: d.receipt.clone(), incarnation });
            touched.insert(tag);
        }
        if !deliveries.is_empty() && config.order == Order::Fifo {
            self.count("receive ok, fifo, non-empty");
        }
        touched
    }

    fn on_ack(&mut self, held: &[Held], resp: &Response, o1: &Obs, o2: &Obs) -> BTreeSet<u64> {
        let want = if held.iter().any(|h| !receipt_valid(&h.receipt)) {
            Err("InvalidArgument")
        } else {
            let mut seen = BTreeSet::new();
            let mut verdict = Ok(());
            for h in held {
                if !seen.insert(&h.receipt) {
                    verdict = Err("InvalidArgument");
                    break;
                }
                if !self.live(h) {
                    verdict = Err("FailedPrecondition");
                    break;
                }
            }
            verdict
        };
        check_answer(resp, want);
        if want == Err("FailedPrecondition") {
            self.count("ack of a stale receipt refused");
        }
        let Ok(outcome) = resp else { return BTreeSet::new() };
        assert_eq!(outcome, &Outcome::Acked { count: held.len() as u64 });
        let mut touched = BTreeSet::new();
        for h in held {
            let r = &h.receipt;
            let (tag, _) = o1.at(&r.queue, r.message_id).expect("an acked message existed");
            assert!(!o2.msgs.contains_key(&tag), "an acked message is still there");
            self.model.leases.remove(&(r.queue.clone(), r.message_id));
            touched.insert(tag);
        }
        touched
    }

    /// Common answer for nack/extend: validation, then liveness.
    fn single_receipt_answer(&mut self, h: &Held, resp: &Response) -> bool {
        let want = if !receipt_valid(&h.receipt) {
            Err("InvalidArgument")
        } else if !self.live(h) {
            Err("FailedPrecondition")
        } else {
            Ok(())
        };
        check_answer(resp, want);
        if want == Err("FailedPrecondition") {
            self.count("nack/extend of a stale receipt refused");
        }
        resp.is_ok()
    }

    #[allow(clippy::too_many_arguments)]
    fn on_nack(
        &mut self,
        h: &Held,
        delay_ms: Option<u64>,
        dead_letter: bool,
        reason: &str,
        resp: &Response,
        o1: &Obs,
        o2: &Obs,
    ) -> BTreeSet<u64> {
        if !self.single_receipt_answer(h, resp) {
            return BTreeSet::new();
        }
        let now = self.now;
        let r = &h.receipt;
        let queue = r.queue.as_str();
        let (tag, m1) = o1.at(queue, r.message_id).expect("a live lease's message exists");
        assert!(matches!(m1.state, MessageState::Leased { attempt, .. } if attempt == r.attempt), "{m1:?}");
        self.model.leases.remove(&(queue.to_string(), r.message_id));
        let config = self.config(queue).clone();
        let spent = budget_spent(&config, m1);
        let nacked = HistoryEvent::Nacked { at_ms: now, attempt: r.attempt, reason: reason.into() };
        let base = if reason.is_empty() { "nacked" } else { reason };
        let Ok(Outcome::Nacked(outcome)) = resp else { panic!("nack answered {resp:?}") };
        if dead_letter || spent {
            let target = config.dead_letter_queue.clone().filter(|t| {
                t != queue
                    && self
                        .model
                        .queues
                        .get(t)
                        .is_some_and(|tq| tq.config.max_length == 0 || o1.len(t) < tq.config.max_length)
            });
            assert_eq!(outcome, &NackOutcome::DeadLettered { queue: target.clone() });
            let budget = spent && !dead_letter;
            match target {
                Some(target) => {
                    let (q2, m2) = o2.msgs.get(&tag).expect("no loss: a dead-lettered message vanished");
                    assert_eq!(q2, &target);
                    self.check_dead_letter_move((queue, m1), &[nacked], (&target, m2), (base, budget));
                    self.count("nack dead-lettered to DLQ");
                }
                None => {
                    let (q2, m2) = o2.msgs.get(&tag).expect("no loss: a parked message vanished");
                    let Some(HistoryEvent::DeadLettered { reason, .. }) = m2.history.back() else {
                        panic!("parked without a DeadLettered event: {m2:?}")
                    };
                    check_reason(reason, base, budget);
                    let parked = HistoryEvent::DeadLettered { at_ms: now, reason: reason.clone(), target_queue: None };
                    assert_eq!(q2, queue);
                    assert_eq!(m2, &parked_dead(queue, m1, &[nacked, parked], reason, now), "nack parked dead");
                    self.count("nack parked dead");
                }
            }
        } else {
            let NackOutcome::Redeliver { visible_at_ms } = *outcome else { panic!("nack answered {outcome:?}") };
            let delay = visible_at_ms.checked_sub(now).expect("redelivery in the past");
            match delay_ms {
                Some(asked) => assert_eq!(delay, asked, "nack delay"),
                None => check_retry_delay(&config, m1.delivery_count, delay),
            }
            let state = if delay == 0 { MessageState::Ready } else { MessageState::Delayed { visible_at_ms } };
            let retry = HistoryEvent::Retry { at_ms: now, visible_at_ms };
            let want = with_events(m1, state, &[nacked, retry]);
            assert_eq!(o2.msgs.get(&tag), Some(&(queue.to_string(), want)), "nacked message");
            self.count("nack redelivers");
        }
        BTreeSet::from([tag])
    }

    fn on_extend(&mut self, h: &Held, lease_ms: u64, resp: &Response, o1: &Obs, o2: &Obs) -> BTreeSet<u64> {
        if !self.single_receipt_answer(h, resp) {
            return BTreeSet::new();
        }
        let r = &h.receipt;
        let deadline = self.now + lease_ms;
        assert_eq!(resp, &Ok(Outcome::LeaseExtended { lease_expires_at_ms: deadline }));
        let (tag, m1) = o1.at(&r.queue, r.message_id).expect("a live lease's message exists");
        let want = with_events(
            m1,
            MessageState::Leased { attempt: r.attempt, lease_expires_at_ms: deadline },
            &[HistoryEvent::LeaseExtended { at_ms: self.now, attempt: r.attempt, lease_expires_at_ms: deadline }],
        );
        assert_eq!(o2.msgs.get(&tag), Some(&(r.queue.clone(), want)), "extended message");
        self.model.leases.insert((r.queue.clone(), r.message_id), (r.attempt, deadline));
        self.count("extend ok");
        BTreeSet::from([tag])
    }

    fn on_redrive(&mut self, queue: &str, max: u32, resp: &Response, o1: &Obs, o2: &Obs) -> BTreeSet<u64> {
        let want = if !name_valid(queue) {
            Err("InvalidArgument")
        } else if !self.exists(queue) {
            Err("NotFound")
        } else {
            Ok(())
        };
        check_answer(resp, want);
        let Ok(outcome) = resp else { return BTreeSet::new() };
        let Outcome::Redriven { moved } = *outcome else { panic!("redrive answered {outcome:?}") };
        let now = self.now;
        let mut touched = BTreeSet::new();
        let mut count = 0u64;
        let mut unchanged = Vec::new();
        for (tag, m1) in o1.in_queue(queue) {
            touched.insert(tag);
            let (q2, m2) = o2.msgs.get(&tag).expect("no loss: redrive lost a message");
            if q2 == queue && m2.id == m1.id {
                if m2 == m1 {
                    unchanged.push(m1);
                    continue;
                }
                assert_eq!(m1.state, MessageState::Dead, "redrive changed a message that was not dead: {m2:?}");
                let event = HistoryEvent::Redriven { at_ms: now, from_queue: None };
                let mut want = with_events(m1, MessageState::Ready, &[event]);
                want.redrive_base = m1.delivery_count;
                if m1.dead_letter.as_ref().is_some_and(|info| info.source_queue == queue) {
                    want.dead_letter = None;
                }
                assert_eq!(m2, &want, "redrive in place");
                self.count("redriven in place");
            } else {
                assert_ne!(q2, queue, "redrive gave a message a new id in place");
                let info = m1.dead_letter.as_ref().expect("only dead letters are redriven");
                assert_eq!(&info.source_queue, q2, "redriven somewhere other than its source");
                assert!(!matches!(m1.state, MessageState::Leased { .. }), "redrove a leased one");
                let source = &self.model.queues[q2];
                assert!(m2.id > self.model.max_id, "{q2}: id {} reused", m2.id);
                let event = HistoryEvent::Redriven { at_ms: now, from_queue: Some(queue.into()) };
                let old = with_events(m1, m1.state, &[event]);
                let ttl = source.config.message_ttl_ms;
                let want = Message {
                    id: m2.id,
                    body: old.body,
                    attributes: old.attributes,
                    published_at_ms: now,
                    delivery_count: 0,
                    redrive_base: 0,
                    state: MessageState::Ready,
                    expires_at_ms: (ttl > 0).then_some(now + ttl),
                    idempotency_key: old.idempotency_key,
                    dead_letter: None,
                    history: old.history,
                    history_dropped: old.history_dropped,
                };
                assert_eq!(m2, &want, "redriven back to its source");
                self.count("redriven to source");
            }
            count += 1;
        }
        assert_eq!(moved, count, "redrive's count");
        assert!(count <= u64::from(max), "redrive moved more than asked");
        // Fewer than asked: nothing redrivable may be left behind, unless a
        // full source queue made redrive skip some.
        if count < u64::from(max) && !VALID.iter().any(|q| o2.is_full(q)) {
            for m in unchanged {
                let redrivable = m.state == MessageState::Dead
                    || (!matches!(m.state, MessageState::Leased { .. })
                        && m.dead_letter
                            .as_ref()
                            .is_some_and(|i| i.source_queue != queue && o2.configs.contains_key(&i.source_queue)));
                assert!(!redrivable, "redrive moved {count} < {max} but left {queue}/{}: {m:?}", m.id);
            }
        }
        touched
    }
}

// ---------------------------------------------------------------------------
// Generators: proptest strategies.

fn queue_index() -> impl Strategy<Value = usize> {
    prop_oneof![12 => Just(0usize), 5 => Just(1usize), 6 => Just(2usize), 1 => Just(BAD)]
}

fn config_update() -> impl Strategy<Value = ConfigUpdate> {
    (
        prop::option::weighted(0.3, prop_oneof![Just(Order::Fifo), Just(Order::Lifo)]),
        prop::option::weighted(0.5, 0u32..=3),
        prop::option::weighted(
            0.4,
            prop_oneof![4 => Just(Some("dlq".to_string())), 1 => Just(Some("a".to_string())), 3 => Just(None)],
        ),
        prop::option::weighted(0.3, prop_oneof![Just(0u64), 3_000u64..=10_000]),
        prop::option::weighted(0.3, prop_oneof![Just(0u64), 2u64..=10]),
        prop::option::weighted(0.3, prop_oneof![Just(0u64), Just(100u64)]),
        prop::option::weighted(0.3, 100u64..=3_000),
        prop::option::weighted(0.2, prop_oneof![Just(0u64), 1_000u64..=20_000]),
        prop::option::weighted(0.1, prop_oneof![Just(0u64), 1u64..=3_000]),
    )
        .prop_map(
            |(order, max_deliveries, dead_letter_queue, ttl, max_length, backoff, lease, dedup, default_delay)| {
                ConfigUpdate {
                    order,
                    lease_ms: lease,
                    max_deliveries,
                    dead_letter_queue,
                    message_ttl_ms: ttl,
                    max_length,
                    default_delay_ms: default_delay,
                    dedup_window_ms: dedup,
                    backoff_base_ms: backoff,
                    ..ConfigUpdate::default()
                }
            },
        )
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        4 => (0usize..8).prop_map(Pick::Live),
        3 => prop_oneof![2 => Just(0usize), 1 => 0usize..6].prop_map(Pick::Recent),
        3 => (0usize..10_000).prop_map(Pick::Any),
        1 => (
            prop_oneof![10 => 0usize..3, 1 => Just(BAD)],
            prop_oneof![20 => 1u64..=10, 1 => Just(0u64)],
            prop_oneof![20 => 1u32..=4, 1 => Just(0u32)],
        )
            .prop_map(|(queue, id, attempt)| Pick::MadeUp { queue, id, attempt }),
    ]
}

fn pub_msg() -> impl Strategy<Value = PubMsg> {
    (prop::option::weighted(0.5, 0u8..6), prop::option::weighted(0.3, prop_oneof![Just(0u64), 1u64..=5_000]), 0u8..4)
        .prop_map(|(key, delay_ms, pad)| PubMsg { key, delay_ms, pad })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        25 => (queue_index(), prop::collection::vec(pub_msg(), 1..=3))
            .prop_map(|(queue, messages)| Op::Publish { queue, messages }),
        20 => (queue_index(), 1u32..=4, prop::option::weighted(0.5, 100u64..=3_000))
            .prop_map(|(queue, max, lease_ms)| Op::Receive { queue, max, lease_ms }),
        8 => (1usize..=4, 0usize..8).prop_map(|(n, k)| Op::Ack { picks: (k..k + n).map(Pick::Live).collect() }),
        6 => prop::collection::vec(pick(), 1..=4).prop_map(|picks| Op::Ack { picks }),
        9 => (pick(), prop::option::weighted(0.4, 0u64..=5_000), prop::bool::weighted(0.3), any::<bool>())
            .prop_map(|(pick, delay_ms, dead_letter, reason)| Op::Nack { pick, delay_ms, dead_letter, reason }),
        5 => (pick(), 100u64..=3_000).prop_map(|(pick, lease_ms)| Op::Extend { pick, lease_ms }),
        6 => Just(Op::Tick),
        5 => (queue_index(), 1u32..=5).prop_map(|(queue, max)| Op::Redrive { queue, max }),
        6 => (queue_index(), config_update()).prop_map(|(queue, update)| Op::Update { queue, update }),
        6 => (queue_index(), config_update()).prop_map(|(queue, config)| Op::Create { queue, config }),
        2 => queue_index().prop_map(|queue| Op::Purge { queue }),
        1 => queue_index().prop_map(|queue| Op::Delete { queue }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    (prop_oneof![5 => 0i64..=300, 4 => 0i64..=2_000, 1 => -500i64..=0], op(), prop::bool::weighted(0.05))
        .prop_map(|(dt, op, restore)| Step { dt, op, restore })
}

/// Usually a DLQ, then "a" (pointing at it when it exists), sometimes "b".
fn prelude() -> impl Strategy<Value = Vec<Step>> {
    (prop::bool::weighted(0.7), prop::bool::weighted(0.9), prop::bool::weighted(0.4), config_update(), config_update())
        .prop_map(|(with_dlq, with_a, with_b, dlq_config, a_config)| {
            let mut steps = Vec::new();
            if with_dlq {
                let config = ConfigUpdate { dead_letter_queue: Some(None), ..dlq_config };
                steps.push(setup_step(Op::Create { queue: 2, config }));
            }
            if with_a {
                let dead_letter_queue = Some(with_dlq.then(|| "dlq".to_string()));
                steps.push(setup_step(Op::Create { queue: 0, config: ConfigUpdate { dead_letter_queue, ..a_config } }));
            }
            if with_b {
                steps.push(setup_step(Op::Create { queue: 1, config: ConfigUpdate::default() }));
            }
            steps
        })
}

proptest! {
    // 200 cases × 50..=70 steps: at least 10,000 random steps per run.
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn model_holds_for_random_command_sequences(
        prelude in prelude(),
        steps in prop::collection::vec(step(), 50..=70),
    ) {
        let mut harness = Harness::new();
        harness.run(&prelude);
        harness.run(&steps);
    }
}

// ---------------------------------------------------------------------------
// Seeded random walks: a guaranteed number of steps, whatever proptest does.

/// SplitMix64: small, seeded, good enough to drive a walk.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in lo..=hi.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn maybe<T>(&mut self, percent: u64, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
        if self.chance(percent) { Some(f(self)) } else { None }
    }

    fn queue(&mut self) -> usize {
        match self.next() % 24 {
            0..=11 => 0,
            12..=16 => 1,
            17..=22 => 2,
            _ => BAD,
        }
    }

    fn config(&mut self) -> ConfigUpdate {
        ConfigUpdate {
            order: self.maybe(30, |r| if r.chance(50) { Order::Fifo } else { Order::Lifo }),
            max_deliveries: self.maybe(50, |r| r.range(0, 3) as u32),
            dead_letter_queue: self.maybe(40, |r| match r.next() % 8 {
                0..=3 => Some("dlq".to_string()),
                4 => Some("a".to_string()),
                _ => None,
            }),
            message_ttl_ms: self.maybe(30, |r| if r.chance(40) { 0 } else { r.range(3_000, 10_000) }),
            max_length: self.maybe(30, |r| if r.chance(40) { 0 } else { r.range(2, 10) }),
            backoff_base_ms: self.maybe(30, |r| if r.chance(50) { 0 } else { 100 }),
            lease_ms: self.maybe(30, |r| r.range(100, 3_000)),
            dedup_window_ms: self.maybe(20, |r| if r.chance(30) { 0 } else { r.range(1_000, 20_000) }),
            default_delay_ms: self.maybe(10, |r| if r.chance(50) { 0 } else { r.range(1, 3_000) }),
            ..ConfigUpdate::default()
        }
    }

    fn pick(&mut self) -> Pick {
        match self.next() % 10 {
            0..=3 => Pick::Live(self.range(0, 7) as usize),
            4..=5 => Pick::Recent(if self.chance(60) { 0 } else { self.range(0, 5) as usize }),
            6..=8 => Pick::Any(self.next() as usize),
            _ => Pick::MadeUp {
                queue: if self.chance(90) { self.range(0, 2) as usize } else { BAD },
                id: if self.chance(95) { self.range(1, 10) } else { 0 },
                attempt: if self.chance(95) { self.range(1, 4) as u32 } else { 0 },
            },
        }
    }

    fn step(&mut self) -> Step {
        let dt = match self.next() % 10 {
            0..=4 => self.range(0, 300) as i64,
            5..=8 => self.range(0, 2_000) as i64,
            _ => -(self.range(0, 500) as i64),
        };
        let op = match self.next() % 100 {
            0..=24 => Op::Publish {
                queue: self.queue(),
                messages: (0..self.range(1, 3))
                    .map(|_| PubMsg {
                        key: self.maybe(50, |r| r.range(0, 5) as u8),
                        delay_ms: self.maybe(30, |r| if r.chance(30) { 0 } else { r.range(1, 5_000) }),
                        pad: self.range(0, 3) as u8,
                    })
                    .collect(),
            },
            25..=44 => Op::Receive {
                queue: self.queue(),
                max: self.range(1, 4) as u32,
                lease_ms: self.maybe(50, |r| r.range(100, 3_000)),
            },
            45..=58 if self.chance(60) => {
                let k = self.range(0, 7) as usize;
                Op::Ack { picks: (k..k + self.range(1, 4) as usize).map(Pick::Live).collect() }
            }
            45..=58 => Op::Ack { picks: (0..self.range(1, 4)).map(|_| self.pick()).collect() },
            59..=67 => Op::Nack {
                pick: self.pick(),
                delay_ms: self.maybe(40, |r| r.range(0, 5_000)),
                dead_letter: self.chance(30),
                reason: self.chance(50),
            },
            68..=72 => Op::Extend { pick: self.pick(), lease_ms: self.range(100, 3_000) },
            73..=78 => Op::Tick,
            79..=83 => Op::Redrive { queue: self.queue(), max: self.range(1, 5) as u32 },
            84..=89 => Op::Update { queue: self.queue(), update: self.config() },
            90..=96 => Op::Create { queue: self.queue(), config: self.config() },
            97..=98 => Op::Purge { queue: self.queue() },
            _ => Op::Delete { queue: self.queue() },
        };
        Step { dt, op, restore: self.chance(5) }
    }
}

fn random_walk(seed: u64, steps: usize) -> Harness {
    let mut rng = Rng(seed);
    let mut harness = Harness::new();
    harness.run(&[
        setup_step(Op::Create { queue: 2, config: ConfigUpdate::default() }),
        setup_step(Op::Create {
            queue: 0,
            config: ConfigUpdate {
                dead_letter_queue: Some(Some("dlq".into())),
                max_deliveries: Some(2),
                ..ConfigUpdate::default()
            },
        }),
        setup_step(Op::Create { queue: 1, config: ConfigUpdate::default() }),
    ]);
    for _ in 0..steps {
        let step = rng.step();
        harness.step(&step);
    }
    harness
}

/// The walk must have reached the interesting paths, or it proves little.
fn assert_coverage(harness: &Harness) {
    eprintln!("{} steps; events: {:#?}", harness.step_no, harness.counts);
    for needed in [
        "message expired by TTL",
        "delay ended",
        "lease ended, retried",
        "lease ended, parked dead",
        "dead-lettered to DLQ by lease end",
        "nack dead-lettered to DLQ",
        "nack parked dead",
        "nack redelivers",
        "redriven in place",
        "redriven to source",
        "extend ok",
        "ack ok",
        "ack of a stale receipt refused",
        "nack/extend of a stale receipt refused",
        "publish answered a duplicate",
        "publish refused: queue full",
        "receive ok, fifo, non-empty",
        "entry time behind state time",
        "continued from a restored snapshot",
        "purge ok",
        "delete ok",
    ] {
        assert!(harness.counts.get(needed).copied().unwrap_or(0) > 0, "the walk never reached {needed:?}");
    }
}

#[test]
fn random_walk_20000_steps() {
    let harness = random_walk(0x5EED_0001, 20_000);
    assert_coverage(&harness);
}

#[test]
fn random_walk_10000_steps_second_seed() {
    let harness = random_walk(0xC0FF_EE02, 10_000);
    assert_coverage(&harness);
}

// ---------------------------------------------------------------------------
// Deterministic checks and minimal reproductions of the core bugs found.

fn publish(queue: &str, tag: u64, key: Option<&str>) -> Command {
    Command::Publish {
        queue: queue.into(),
        messages: vec![NewMessage {
            body: body_for(tag, 0),
            attributes: BTreeMap::new(),
            delay_ms: None,
            idempotency_key: key.map(Into::into),
        }],
    }
}

fn receipt_of(resp: Response) -> Receipt {
    match resp {
        Ok(Outcome::Received(mut deliveries)) if deliveries.len() == 1 => deliveries.remove(0).receipt,
        other => panic!("expected one delivery, got {other:?}"),
    }
}

#[test]
fn time_never_goes_backwards() {
    let mut s = QueueState::new();
    s.apply(10_000, &Command::CreateQueue { name: "a".into(), config: ConfigUpdate::default() }).unwrap();
    s.apply(10_000, &publish("a", 1, None)).unwrap();
    let receive = Command::Receive { queue: "a".into(), max_messages: 1, lease_ms: Some(1_000) };
    let r = receipt_of(s.apply(10_000, &receive));
    // The lease ends at 11,000; an entry stamped earlier cannot revive it.
    s.apply(12_000, &Command::Tick).unwrap();
    assert_eq!(s.now_ms(), 12_000);
    let late = s.apply(10_500, &Command::Ack { receipts: vec![r] });
    assert!(matches!(late, Err(QueueError::FailedPrecondition { .. })), "{late:?}");
    assert_eq!(s.now_ms(), 12_000);
}

/// G3: "a receipt (queue, id, attempt) names this lease alone". A consumer
/// still holding a receipt from a deleted queue must not ack a message of a
/// new queue of the same name. (Found by this model while message ids were
/// per queue and restarted at 1; ids are now unique across queues.)
#[test]
fn receipt_from_a_deleted_queue_cannot_ack_a_message_of_its_successor() {
    let create = Command::CreateQueue { name: "a".into(), config: ConfigUpdate::default() };
    let receive = Command::Receive { queue: "a".into(), max_messages: 1, lease_ms: None };
    let mut s = QueueState::new();
    s.apply(1_000, &create).unwrap();
    s.apply(1_000, &publish("a", 1, None)).unwrap();
    let old = receipt_of(s.apply(1_000, &receive)); // consumer A
    s.apply(2_000, &Command::DeleteQueue { name: "a".into() }).unwrap();
    s.apply(2_000, &create).unwrap();
    s.apply(2_000, &publish("a", 2, None)).unwrap();
    let new = receipt_of(s.apply(2_000, &receive)); // consumer B
    let answer = s.apply(2_100, &Command::Ack { receipts: vec![old] });
    assert!(
        matches!(answer, Err(QueueError::FailedPrecondition { .. })),
        "consumer A's receipt, from the deleted queue, acked consumer B's message: {answer:?}"
    );
    assert!(s.inspect("a", new.message_id).is_ok(), "consumer B's message is gone");
    assert_eq!(s.apply(2_100, &Command::Ack { receipts: vec![new] }), Ok(Outcome::Acked { count: 1 }));
}

/// Core bug ("a rejection is a replicated answer that changes nothing but
/// time"). Regression: `publish` used to forget expired idempotency keys
/// before it checked for room, so a publish refused with RESOURCE_EXHAUSTED
/// still changed the state.
#[test]
fn rejected_publish_changes_nothing_but_time() {
    let config = ConfigUpdate { max_length: Some(1), dedup_window_ms: Some(1_000), ..ConfigUpdate::default() };
    let mut s = QueueState::new();
    s.apply(0, &Command::CreateQueue { name: "a".into(), config }).unwrap();
    s.apply(0, &publish("a", 1, Some("k"))).unwrap();
    let mut ticked = s.clone();
    ticked.apply(5_000, &Command::Tick).unwrap();
    let answer = s.apply(5_000, &publish("a", 2, None));
    assert!(matches!(answer, Err(QueueError::ResourceExhausted { .. })), "{answer:?}");
    assert_eq!(s.digest_hex(), ticked.digest_hex(), "the refused publish changed the state");
}

/// PRODUCT §2: "`Redrive` moves dead letters back to their source queue".
/// A message that failed in `a`, was moved to `dlq`, and then failed again in
/// `dlq` (which has no dead-letter queue of its own) is parked there. It must
/// keep naming `a` as its source so that a redrive takes it back there.
/// (Regression: parking used to overwrite its `dead_letter` info.)
#[test]
fn a_dead_letter_that_failed_again_in_its_dlq_can_still_be_redriven_to_its_source() {
    let mut s = QueueState::new();
    let dlq_config = ConfigUpdate { max_deliveries: Some(1), ..ConfigUpdate::default() };
    s.apply(0, &Command::CreateQueue { name: "dlq".into(), config: dlq_config }).unwrap();
    let a_config = ConfigUpdate {
        max_deliveries: Some(1),
        dead_letter_queue: Some(Some("dlq".into())),
        ..ConfigUpdate::default()
    };
    s.apply(0, &Command::CreateQueue { name: "a".into(), config: a_config }).unwrap();
    s.apply(0, &publish("a", 1, None)).unwrap();
    let receive = |queue: &str| Command::Receive { queue: queue.into(), max_messages: 1, lease_ms: Some(100) };
    receipt_of(s.apply(0, &receive("a")));
    s.apply(1_000, &Command::Tick).unwrap(); // lease ends: budget spent, moved to dlq
    let in_dlq = receipt_of(s.apply(1_000, &receive("dlq")));
    assert_eq!(s.inspect("dlq", in_dlq.message_id).unwrap().dead_letter.unwrap().source_queue, "a");
    s.apply(2_000, &Command::Tick).unwrap(); // fails in dlq too: parked dead there
    // An operator redrives the DLQ (the server loops until nothing moves).
    for t in [3_000, 3_001, 3_002] {
        s.apply(t, &Command::Redrive { queue: "dlq".into(), max_messages: 10 }).unwrap();
    }
    let in_a = s.peek("a", StateFilter::Any, 0, 10).unwrap().messages;
    let still_in_dlq = s.peek("dlq", StateFilter::Any, 0, 10).unwrap().messages;
    assert_eq!(in_a.len(), 1, "the dead letter never went back to its source queue; still in dlq: {still_in_dlq:#?}");
}
