//! What a scan costs over a store that keeps deleted keys, as an LSM tree
//! (RocksDB) does until a compaction: the state's scans must start past the
//! keys it deleted itself, or each command steps over more of them than the
//! last, and a steady publish/receive/ack load slows down without end.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::kv::{Direction, KvRead, StoreFault, Txn, WriteSet};
use crate::*;

/// A store that keeps a tombstone for every deleted key, never compacted,
/// and counts every key a scan steps over, tombstones included.
#[derive(Default)]
struct TombstoneKv {
    map: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    steps: AtomicU64,
    gets: AtomicU64,
    /// Reads of a message's content (table `b`), by point read or by a
    /// scan stepping onto it.
    content_reads: AtomicU64,
    /// Point reads of a message's head (table `m`).
    head_gets: AtomicU64,
    /// Heads (table `m`) a scan stepped onto.
    head_steps: AtomicU64,
    scans: AtomicU64,
}

impl TombstoneKv {
    /// Writes every pair as a point write (a deleted key leaves its
    /// tombstone); cleared ranges are not deleted whole, so the steps
    /// counted are those of a store without range deletions (at least as
    /// many).
    fn write(&mut self, writes: WriteSet) {
        self.map.extend(writes.into_parts().0);
    }

    fn take_steps(&self) -> u64 {
        self.steps.swap(0, Ordering::Relaxed)
    }
}

impl KvRead for TombstoneKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreFault> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        match key.first() {
            Some(b'b') => self.content_reads.fetch_add(1, Ordering::Relaxed),
            Some(b'm') => self.head_gets.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        Ok(self.map.get(key).cloned().flatten())
    }

    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        direction: Direction,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreFault> {
        self.scans.fetch_add(1, Ordering::Relaxed);
        if start >= end {
            return Ok(());
        }
        let range = self.map.range::<[u8], _>((std::ops::Bound::Included(start), std::ops::Bound::Excluded(end)));
        let mut step = |(key, value): (&Vec<u8>, &Option<Vec<u8>>)| {
            self.steps.fetch_add(1, Ordering::Relaxed);
            match key.first() {
                Some(b'b') => self.content_reads.fetch_add(1, Ordering::Relaxed),
                Some(b'm') => self.head_steps.fetch_add(1, Ordering::Relaxed),
                _ => 0,
            };
            value.as_ref().is_none_or(|value| visit(key, value))
        };
        match direction {
            Direction::Forward => {
                for pair in range {
                    if !step(pair) {
                        break;
                    }
                }
            }
            Direction::Reverse => {
                for pair in range.rev() {
                    if !step(pair) {
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}

struct Harness {
    kv: TombstoneKv,
    caps: DedupCaps,
    /// The most keys one command's scans stepped over.
    worst: u64,
    /// The most point reads one command (and its `finish`) made.
    worst_gets: u64,
    /// The last command's write set.
    last_writes: WriteSet,
}

impl Harness {
    fn new(caps: DedupCaps) -> Self {
        Self { kv: TombstoneKv::default(), caps, worst: 0, worst_gets: 0, last_writes: WriteSet::new() }
    }

    fn apply(&mut self, time_ms: u64, command: &Command) -> Response {
        self.apply_for(time_ms, command, Answer::Wanted)
    }

    fn apply_for(&mut self, time_ms: u64, command: &Command, answer: Answer) -> Response {
        self.kv.take_steps();
        self.kv.gets.store(0, Ordering::Relaxed);
        self.kv.content_reads.store(0, Ordering::Relaxed);
        self.kv.head_gets.store(0, Ordering::Relaxed);
        self.kv.head_steps.store(0, Ordering::Relaxed);
        let mut txn = Txn::new(&self.kv);
        let response = apply_for(&mut txn, self.caps, time_ms, command, answer).expect("memory never fails");
        let steps = self.kv.take_steps();
        self.worst = self.worst.max(steps);
        let writes = txn.finish().expect("memory never fails");
        self.worst_gets = self.worst_gets.max(self.kv.gets.load(Ordering::Relaxed));
        self.last_writes = writes.clone();
        self.kv.write(writes);
        response
    }

    /// The steps of a read (not counted in `worst`).
    fn read_steps(&self, read: impl FnOnce(&read::Reader<'_>)) -> u64 {
        self.kv.take_steps();
        read(&read::Reader::new(&self.kv));
        self.kv.take_steps()
    }
}

fn message(i: u64, key: Option<String>) -> NewMessage {
    NewMessage { body: Bytes::from(format!("m{i}")), attributes: BTreeMap::new(), delay_ms: None, idempotency_key: key }
}

fn received(response: Response) -> Vec<Delivery> {
    match response {
        Ok(Outcome::Received(deliveries)) => deliveries,
        other => panic!("receive: {other:?}"),
    }
}

const ROUNDS: u64 = 3_000;
/// Keys one command may step over, whatever it deleted before: a handful
/// of index keys of its own, never a count that grows with the rounds.
const STEPS_MAX: u64 = 64;

fn run_publish_receive_ack(order: Order) -> Harness {
    let mut h = Harness::new(DedupCaps::default());
    let config = ConfigUpdate { order: Some(order), ..ConfigUpdate::default() };
    h.apply(1, &Command::CreateQueue { name: "q".into(), config }).expect("create");
    // A backlog that stays, so LIFO takes from the middle of the ids too.
    let backlog = (0..50).map(|i| message(i, None)).collect();
    h.apply(1, &Command::Publish { queue: "q".into(), messages: backlog }).expect("publish");
    for round in 0..ROUNDS {
        let t = 2 + round;
        h.apply(t, &Command::Publish { queue: "q".into(), messages: vec![message(round, None)] }).expect("publish");
        let deliveries = received(h.apply(t, &Command::Receive { queue: "q".into(), max_messages: 1, lease_ms: None }));
        let receipts = deliveries.iter().map(|d| d.receipt.clone()).collect();
        h.apply(t, &Command::Ack { receipts }).expect("ack");
    }
    check_invariants(&h.kv, h.caps).expect("invariants");
    h
}

#[test]
fn fifo_receive_and_timers_do_not_step_over_what_was_taken_before() {
    let h = run_publish_receive_ack(Order::Fifo);
    assert!(h.worst <= STEPS_MAX, "a command stepped over {} keys after {ROUNDS} rounds", h.worst);
    let steps = h.read_steps(|r| {
        r.next_timer_ms().expect("read");
        r.queue_info("q").expect("read").expect("queue");
    });
    assert!(steps <= STEPS_MAX, "reads stepped over {steps} keys");
}

#[test]
fn lifo_receive_does_not_step_over_what_was_taken_before() {
    let h = run_publish_receive_ack(Order::Lifo);
    assert!(h.worst <= STEPS_MAX, "a command stepped over {} keys after {ROUNDS} rounds", h.worst);
}

#[test]
fn expiring_and_evicting_idempotency_keys_do_not_step_over_forgotten_ones() {
    // A one-second window and a per-queue bound of 100 keys: every publish
    // after the first hundred forgets a key, by expiry or by eviction.
    let caps = DedupCaps { per_queue: 100, total: 150, ..DedupCaps::default() };
    let mut h = Harness::new(caps);
    let window = ConfigUpdate { dedup_window_ms: Some(1_000), ..ConfigUpdate::default() };
    h.apply(1, &Command::CreateQueue { name: "a".into(), config: window.clone() }).expect("create");
    h.apply(1, &Command::CreateQueue { name: "b".into(), config: window }).expect("create");
    for round in 0..ROUNDS {
        // Ten publishes a millisecond: keys outlive the window's start by
        // up to a second, so both expiry and eviction forget keys.
        let t = 2 + round / 10;
        let queue = if round % 3 == 0 { "b" } else { "a" };
        let messages = vec![message(round, Some(format!("key-{round}")))];
        h.apply(t, &Command::Publish { queue: queue.into(), messages }).expect("publish");
    }
    check_invariants(&h.kv, h.caps).expect("invariants");
    assert!(h.worst <= STEPS_MAX, "a publish stepped over {} keys after {ROUNDS} rounds", h.worst);
}

#[test]
fn a_publish_into_a_full_dedup_table_finds_the_keys_to_forget_in_one_scan() {
    let caps = DedupCaps { per_queue: 1_000, total: 2_000, ..DedupCaps::default() };
    let mut h = Harness::new(caps);
    let window = ConfigUpdate { dedup_window_ms: Some(60_000), ..ConfigUpdate::default() };
    h.apply(1, &Command::CreateQueue { name: "q".into(), config: window }).expect("create");
    let keyed = |batch: u64| (0..100).map(|i| message(i, Some(format!("key-{batch}-{i}")))).collect::<Vec<_>>();
    for batch in 0..10 {
        h.apply(2 + batch, &Command::Publish { queue: "q".into(), messages: keyed(batch) }).expect("publish");
    }
    // The table is full: each of the next 100 keys forgets one.
    h.kv.scans.store(0, Ordering::Relaxed);
    h.worst_gets = 0;
    h.apply(20, &Command::Publish { queue: "q".into(), messages: keyed(10) }).expect("publish");
    let info = read::Reader::new(&h.kv).queue_info("q").expect("read").expect("queue");
    assert_eq!(info.stats.dedup_evicted_total, 100);
    // This took a scan per forgotten key (a RocksDB iterator each: most of
    // a publish's apply time past a million keys) and a point read of each
    // forgotten key's entry, to delete it: 100 of each. Now the keys to
    // forget come from one scan, with their entries.
    let scans = h.kv.scans.load(Ordering::Relaxed);
    assert!(scans <= 5, "a publish of 100 keys into a full table made {scans} scans");
    // One read per new key (is it a duplicate?) and a few for the queue.
    assert!(h.worst_gets <= 100 + 5, "a publish of 100 keys into a full table made {} point reads", h.worst_gets);
    check_invariants(&h.kv, h.caps).expect("invariants");
}

#[test]
fn cleaning_up_a_purged_queue_does_not_step_over_what_it_deleted() {
    let mut h = Harness::new(DedupCaps::default());
    h.apply(1, &Command::CreateQueue { name: "q".into(), config: ConfigUpdate::default() }).expect("create");
    let total = 20 * limits::CLEANUP_PER_APPLY_MAX as u64;
    for batch in 0..total / 500 {
        let messages = (0..500).map(|i| message(batch * 500 + i, Some(format!("k{batch}-{i}")))).collect();
        h.apply(1, &Command::Publish { queue: "q".into(), messages }).expect("publish");
    }
    h.apply(2, &Command::PurgeQueue { name: "q".into() }).expect("purge");
    h.apply(2, &Command::DeleteQueue { name: "q".into() }).expect("delete");
    h.worst = 0;
    h.worst_gets = 0;
    let mut ticks = 0;
    // Cleanup pending shows as a timer due now.
    while read::Reader::new(&h.kv).next_timer_ms().expect("read") == Some(2) {
        h.apply(2, &Command::Tick).expect("tick");
        ticks += 1;
        assert!(ticks < 1_000, "cleanup never ends");
    }
    check_invariants(&h.kv, h.caps).expect("invariants");
    // One tick deletes up to CLEANUP_PER_APPLY_MAX messages (and as many
    // keys): it may step over those, not over the ones deleted before.
    let bound = 2 * limits::CLEANUP_PER_APPLY_MAX as u64 + STEPS_MAX;
    assert!(h.worst <= bound, "a cleanup tick stepped over {} keys (bound {bound})", h.worst);
    assert!(ticks >= 20, "{ticks} ticks cleaned up {total} messages");
    // The messages and keys come from the scan and the index keys exist as
    // their records say: a tick reads none of them again (it used to read each
    // message, its index key and its idempotency key once more: 3,005
    // reads a tick).
    assert!(h.worst_gets <= STEPS_MAX, "a cleanup tick made {} point reads", h.worst_gets);
}

#[test]
fn an_entry_with_nothing_to_clean_up_does_not_look_for_cleanup_work() {
    let mut h = Harness::new(DedupCaps::default());
    h.apply(1, &Command::CreateQueue { name: "q".into(), config: ConfigUpdate::default() }).expect("create");
    h.kv.scans.store(0, Ordering::Relaxed);
    h.apply(2, &Command::Tick).expect("tick");
    // No seek at all (each costs a RocksDB iterator over every level): the
    // timer floor says the timer index is empty, and the count of cleanup
    // marks that nothing waits. Looking for purge and delete leftovers took
    // two seeks on every entry.
    assert_eq!(h.kv.scans.load(Ordering::Relaxed), 0);
    let reads = h.read_steps(|r| assert_eq!(r.next_timer_ms().expect("read"), None));
    assert_eq!(reads, 0);
}

/// The last command's puts and deletes of message contents (table `b`),
/// and its reads of them.
fn content_io(h: &Harness) -> (usize, usize, u64) {
    let contents = h.last_writes.pairs().iter().filter(|(key, _)| key.first() == Some(&b'b'));
    let (puts, deletes) = contents.fold((0, 0), |(p, d), (_, v)| if v.is_some() { (p + 1, d) } else { (p, d + 1) });
    (puts, deletes, h.kv.content_reads.load(Ordering::Relaxed))
}

#[test]
fn a_body_is_written_once_and_read_only_to_deliver_it() {
    let mut h = Harness::new(DedupCaps::default());
    let config = ConfigUpdate { lease_ms: Some(1_000), ..ConfigUpdate::default() };
    h.apply(1, &Command::CreateQueue { name: "q".into(), config }).expect("create");
    let body = Bytes::from(vec![7u8; 1_000]);
    let messages = (0..10).map(|_| NewMessage { body: body.clone(), ..message(0, None) }).collect();
    h.apply(1, &Command::Publish { queue: "q".into(), messages }).expect("publish");
    assert_eq!(content_io(&h), (10, 0, 0), "publish writes each content once");
    let receive = |max_messages| Command::Receive { queue: "q".into(), max_messages, lease_ms: None };
    let first = received(h.apply(2, &receive(10)));
    assert!(first.iter().all(|d| d.message.body == body));
    assert_eq!(content_io(&h), (0, 0, 10), "receive reads each content it delivers and rewrites none");
    let receipt = |i: usize| first[i].receipt.clone();
    h.apply(3, &Command::ExtendLease { receipt: receipt(0), lease_ms: 5_000 }).expect("extend");
    assert_eq!(content_io(&h), (0, 0, 0), "extend");
    h.apply(3, &Command::Nack { receipt: receipt(1), delay_ms: Some(0), dead_letter: false, reason: "r".into() })
        .expect("nack");
    assert_eq!(content_io(&h), (0, 0, 0), "nack");
    // Leases of 2..10 end at 1,002: their expiry makes them ready again.
    h.apply(1_500, &Command::Tick).expect("tick");
    assert_eq!(content_io(&h), (0, 0, 0), "lease expiry");
    let second = received(h.apply(1_500, &receive(10)));
    assert_eq!(second.len(), 9);
    let receipts = std::iter::once(receipt(0)).chain(second.iter().map(|d| d.receipt.clone())).collect();
    h.apply(1_500, &Command::Ack { receipts }).expect("ack");
    assert_eq!(content_io(&h), (0, 10, 0), "ack deletes the contents without reading them");
    check_invariants(&h.kv, h.caps).expect("invariants");
}

#[test]
fn neighbouring_messages_are_read_in_one_scan_not_a_point_read_each() {
    let mut h = Harness::new(DedupCaps::default());
    h.apply(1, &Command::CreateQueue { name: "q".into(), config: ConfigUpdate::default() }).expect("create");
    let messages = (0..100).map(|i| message(i, None)).collect();
    h.apply(1, &Command::Publish { queue: "q".into(), messages }).expect("publish");
    let deliveries = received(h.apply(2, &Command::Receive { queue: "q".into(), max_messages: 100, lease_ms: None }));
    assert_eq!(deliveries.len(), 100);
    // Consecutive ids: their heads and contents come from one scan each
    // (a point read each walks every level of an LSM tree).
    assert_eq!(h.kv.head_gets.load(Ordering::Relaxed), 0, "receive: heads by point read");
    assert_eq!(h.kv.head_steps.load(Ordering::Relaxed), 100, "receive: each head read once");
    assert_eq!(h.kv.content_reads.load(Ordering::Relaxed), 100, "receive: each content read once");
    let receipts = deliveries.iter().map(|d| d.receipt.clone()).collect();
    h.apply(3, &Command::Ack { receipts }).expect("ack");
    assert_eq!(h.kv.head_gets.load(Ordering::Relaxed), 0, "ack: heads by point read");
    assert_eq!(h.kv.head_steps.load(Ordering::Relaxed), 100, "ack: each head read once");
    assert_eq!(h.kv.content_reads.load(Ordering::Relaxed), 0, "ack reads no content");
    check_invariants(&h.kv, h.caps).expect("invariants");

    // Ids far apart are read one by one: a scan would step over the
    // messages between them.
    let messages = (0..50).map(|i| message(i, None)).collect();
    h.apply(4, &Command::Publish { queue: "q".into(), messages }).expect("publish");
    let first = received(h.apply(5, &Command::Receive { queue: "q".into(), max_messages: 48, lease_ms: None }));
    let receipt = |d: &Delivery| d.receipt.clone();
    h.apply(
        5,
        &Command::Nack { receipt: receipt(&first[0]), delay_ms: Some(0), dead_letter: false, reason: String::new() },
    )
    .expect("nack");
    let sparse = received(h.apply(6, &Command::Receive { queue: "q".into(), max_messages: 3, lease_ms: None }));
    assert_eq!(sparse.iter().map(|d| d.receipt.message_id).collect::<Vec<_>>(), [101, 149, 150]);
    assert_eq!(h.kv.head_gets.load(Ordering::Relaxed), 3, "far apart: a point read each");
    assert_eq!(h.kv.head_steps.load(Ordering::Relaxed), 0, "no scan over the leased messages between them");
    check_invariants(&h.kv, h.caps).expect("invariants");
}

#[test]
fn a_receive_reads_the_contents_between_its_messages_in_one_scan_and_delivers_each_its_own_body() {
    let mut h = Harness::new(DedupCaps::default());
    h.apply(1, &Command::CreateQueue { name: "q".into(), config: ConfigUpdate::default() }).expect("create");
    let messages = (0..10).map(|i| message(i, None)).collect();
    h.apply(1, &Command::Publish { queue: "q".into(), messages }).expect("publish");
    let first = received(h.apply(2, &Command::Receive { queue: "q".into(), max_messages: 4, lease_ms: None }));
    let nack = Command::Nack {
        receipt: first[1].receipt.clone(),
        delay_ms: Some(0),
        dead_letter: false,
        reason: String::new(),
    };
    h.apply(2, &nack).expect("nack");
    // Ready now: 2 and 5..=10; 3 and 4 stay leased between them.
    let taken = received(h.apply(3, &Command::Receive { queue: "q".into(), max_messages: 10, lease_ms: None }));
    let ids: Vec<u64> = taken.iter().map(|d| d.receipt.message_id).collect();
    assert_eq!(ids, [2, 5, 6, 7, 8, 9, 10]);
    for delivery in &taken {
        let id = delivery.receipt.message_id;
        assert_eq!(delivery.message.body, Bytes::from(format!("m{}", id - 1)), "message {id} got its own body");
    }
    // One scan from 2 to 10 steps onto the two leased contents too, and
    // reads none of the seven again.
    assert_eq!(h.kv.content_reads.load(Ordering::Relaxed), 9, "the contents 2..=10, each once");
    check_invariants(&h.kv, h.caps).expect("invariants");
}

#[test]
fn a_receive_stops_reading_contents_at_its_byte_budget_among_large_leased_messages() {
    let mut h = Harness::new(DedupCaps::default());
    h.apply(1, &Command::CreateQueue { name: "q".into(), config: ConfigUpdate::default() }).expect("create");
    // Ids 1..=24: odd ones small, even ones of 1,000,000 bytes.
    let large = Bytes::from(vec![b'x'; 1_000_000]);
    for i in 0..24u64 {
        let mut m = message(i, None);
        if i % 2 == 1 {
            m.body = large.clone();
        }
        h.apply(1, &Command::Publish { queue: "q".into(), messages: vec![m] }).expect("publish");
    }
    // Lease all of them, then give the small ones back.
    let mut small = Vec::new();
    for _ in 0..24 {
        let one = received(h.apply(2, &Command::Receive { queue: "q".into(), max_messages: 1, lease_ms: None }));
        if one[0].receipt.message_id % 2 == 1 {
            small.push(one[0].receipt.clone());
        }
    }
    for receipt in small {
        let nack = Command::Nack { receipt, delay_ms: Some(0), dead_letter: false, reason: String::new() };
        h.apply(2, &nack).expect("nack");
    }
    let taken = received(h.apply(3, &Command::Receive { queue: "q".into(), max_messages: 100, lease_ms: None }));
    assert_eq!(taken.iter().map(|d| d.receipt.message_id).collect::<Vec<_>>(), (1..=23).step_by(2).collect::<Vec<_>>());
    for delivery in &taken {
        let id = delivery.receipt.message_id;
        assert_eq!(delivery.message.body, Bytes::from(format!("m{}", id - 1)), "message {id} got its own body");
    }
    // The scan stops at the first content past 8 MiB of values (id 18, the
    // ninth large one); the three small ones after it are read one by one.
    assert_eq!(h.kv.content_reads.load(Ordering::Relaxed), 18 + 3);
    check_invariants(&h.kv, h.caps).expect("invariants");
}

#[test]
fn a_receive_whose_answer_nobody_reads_reads_no_bodies_and_changes_the_same() {
    let mut leader = Harness::new(DedupCaps::default());
    let mut follower = Harness::new(DedupCaps::default());
    let create = Command::CreateQueue { name: "q".into(), config: ConfigUpdate::default() };
    let messages: Vec<NewMessage> = (0..20).map(|i| message(i, None)).collect();
    let publish = Command::Publish { queue: "q".into(), messages };
    for h in [&mut leader, &mut follower] {
        h.apply_for(1, &create, Answer::Unread).expect("create");
        h.apply_for(1, &publish, Answer::Unread).expect("publish");
    }
    let receive = Command::Receive { queue: "q".into(), max_messages: 20, lease_ms: None };
    let answered = received(leader.apply_for(2, &receive, Answer::Wanted));
    assert_eq!(leader.kv.content_reads.load(Ordering::Relaxed), 20);
    let unread = received(follower.apply_for(2, &receive, Answer::Unread));
    assert_eq!(follower.kv.content_reads.load(Ordering::Relaxed), 0, "a follower reads no body");
    assert!(answered.iter().all(|d| !d.message.body.is_empty()));
    assert_eq!(
        answered.iter().map(|d| &d.receipt).collect::<Vec<_>>(),
        unread.iter().map(|d| &d.receipt).collect::<Vec<_>>(),
        "the same messages delivered"
    );
    // The same writes, so the same state and digest (G8).
    assert_eq!(leader.last_writes, follower.last_writes);
    check_invariants(&follower.kv, follower.caps).expect("invariants");
}

#[test]
fn a_keyed_publish_with_no_key_expired_opens_no_scan() {
    let mut h = Harness::new(DedupCaps::default());
    h.apply(1, &Command::CreateQueue { name: "q".into(), config: ConfigUpdate::default() }).expect("create");
    h.apply(1, &Command::Publish { queue: "q".into(), messages: vec![message(0, Some("k0".into()))] })
        .expect("publish");
    for i in 1..5u64 {
        h.kv.scans.store(0, Ordering::Relaxed);
        h.apply(1 + i, &Command::Publish { queue: "q".into(), messages: vec![message(i, Some(format!("k{i}")))] })
            .expect("publish");
        // The queue's first idempotency key is live and its window open:
        // one point read says nothing expired (a store iterator per
        // command was 10 % of the leader's time with 256 publishes in
        // flight).
        assert_eq!(h.kv.scans.load(Ordering::Relaxed), 0, "publish {i}");
    }
    check_invariants(&h.kv, h.caps).expect("invariants");
}

#[test]
fn receipts_far_apart_are_checked_without_a_scan_over_the_messages_between() {
    let mut h = Harness::new(DedupCaps::default());
    h.apply(1, &Command::CreateQueue { name: "q".into(), config: ConfigUpdate::default() }).expect("create");
    let messages = (0..20).map(|i| message(i, None)).collect();
    h.apply(1, &Command::Publish { queue: "q".into(), messages }).expect("publish");
    let receipt = |message_id| Receipt { queue: "q".into(), message_id, attempt: 1 };
    // Ids 1 and u64::MAX: a scan between them would walk all 20 heads.
    let answer = h.apply(2, &Command::Ack { receipts: vec![receipt(1), receipt(u64::MAX)] });
    let error = answer.expect_err("message 1 is not leased");
    assert_eq!(error.field(), Some("receipts[0]"));
    assert_eq!(h.kv.head_steps.load(Ordering::Relaxed), 0, "no scan over the messages between");
}

/// A receive of consecutive ready ids and an ack of consecutive leases
/// name cleared ranges (one per table, not a tombstone per key, in a store
/// that deletes ranges): the ready keys taken; the heads, contents and
/// lease timers acked. A run shorter than `CLEARED_RUN_MIN` names none.
#[test]
fn a_run_of_consecutive_ids_is_cleared_as_ranges() {
    let mut h = Harness::new(DedupCaps::default());
    h.apply(1, &Command::CreateQueue { name: "q".into(), config: ConfigUpdate::default() }).unwrap();
    let messages = (0..400).map(|i| message(i, None)).collect();
    h.apply(2, &Command::Publish { queue: "q".into(), messages }).unwrap();
    let got = received(h.apply(3, &Command::Receive { queue: "q".into(), max_messages: 400, lease_ms: None }));
    let tables = |writes: &WriteSet| -> Vec<u8> { writes.cleared().iter().map(|(start, _)| start[0]).collect() };
    assert_eq!(tables(&h.last_writes), [b'r']);
    let receipts: Vec<Receipt> = got.iter().map(|d| d.receipt.clone()).collect();
    h.apply(4, &Command::Ack { receipts: receipts[..260].to_vec() }).unwrap();
    let mut cleared = tables(&h.last_writes);
    cleared.sort_unstable();
    assert_eq!(cleared, [b'b', b'm', b't']);
    let short = crate::store::CLEARED_RUN_MIN - 1;
    h.apply(5, &Command::Ack { receipts: receipts[260..260 + short].to_vec() }).unwrap();
    assert!(h.last_writes.cleared().is_empty());
    // A consumer taking 16 at a time clears nothing: a range deletion per
    // 16 keys filled RocksDB's memtables with thousands of them, each
    // making the next read rebuild their list (a drain 32 % slower).
    let messages = (0..16).map(|i| message(i, None)).collect();
    h.apply(6, &Command::Publish { queue: "q".into(), messages }).unwrap();
    let got = received(h.apply(7, &Command::Receive { queue: "q".into(), max_messages: 16, lease_ms: None }));
    assert_eq!(got.len(), 16);
    assert!(h.last_writes.cleared().is_empty());
    h.apply(8, &Command::Ack { receipts: got.iter().map(|d| d.receipt.clone()).collect() }).unwrap();
    assert!(h.last_writes.cleared().is_empty());
}
