//! Unit tests of every queue rule, through the public `apply` and reads.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::limits::*;
use crate::*;

const T0: u64 = 1_000_000;

fn msg(body: &str) -> NewMessage {
    NewMessage {
        body: Bytes::copy_from_slice(body.as_bytes()),
        attributes: BTreeMap::new(),
        delay_ms: None,
        idempotency_key: None,
    }
}

fn keyed(body: &str, key: &str) -> NewMessage {
    NewMessage { idempotency_key: Some(key.into()), ..msg(body) }
}

fn create(s: &mut QueueState, t: u64, name: &str, config: ConfigUpdate) {
    s.apply(t, &Command::CreateQueue { name: name.into(), config }).expect("create");
}

fn with_queue(config: ConfigUpdate) -> QueueState {
    let mut s = QueueState::new();
    create(&mut s, T0, "q", config);
    s
}

fn publish_all(s: &mut QueueState, t: u64, queue: &str, messages: Vec<NewMessage>) -> Vec<PublishResult> {
    match s.apply(t, &Command::Publish { queue: queue.into(), messages }) {
        Ok(Outcome::Published(results)) => results,
        other => panic!("publish: {other:?}"),
    }
}

fn publish(s: &mut QueueState, t: u64, queue: &str, bodies: &[&str]) -> Vec<u64> {
    publish_all(s, t, queue, bodies.iter().map(|b| msg(b)).collect()).iter().map(|r| r.id).collect()
}

fn receive(s: &mut QueueState, t: u64, queue: &str, max: u32) -> Vec<Delivery> {
    match s.apply(t, &Command::Receive { queue: queue.into(), max_messages: max, lease_ms: None }) {
        Ok(Outcome::Received(deliveries)) => deliveries,
        other => panic!("receive: {other:?}"),
    }
}

fn ids(deliveries: &[Delivery]) -> Vec<u64> {
    deliveries.iter().map(|d| d.message.id).collect()
}

fn ack(s: &mut QueueState, t: u64, receipts: &[&Receipt]) -> Response {
    s.apply(t, &Command::Ack { receipts: receipts.iter().map(|r| (*r).clone()).collect() })
}

fn nack(s: &mut QueueState, t: u64, receipt: &Receipt, delay_ms: Option<u64>, dead_letter: bool) -> Response {
    s.apply(t, &Command::Nack { receipt: receipt.clone(), delay_ms, dead_letter, reason: "test".into() })
}

fn stats(s: &QueueState, queue: &str) -> QueueStats {
    s.queue_info(queue).unwrap().stats
}

fn assert_precondition(response: Response) {
    assert!(
        matches!(response, Err(QueueError::FailedPrecondition { .. })),
        "expected FailedPrecondition: {response:?}"
    );
}

fn invalid_field(response: Response) -> String {
    match response {
        Err(QueueError::InvalidArgument { field, .. }) => field,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn queue_admin_lifecycle() {
    let mut s = QueueState::new();
    create(&mut s, T0, "orders", ConfigUpdate { lease_ms: Some(5_000), ..Default::default() });
    let again = s.apply(T0, &Command::CreateQueue { name: "orders".into(), config: Default::default() });
    assert!(matches!(again, Err(QueueError::AlreadyExists { .. })));
    assert_eq!(s.queue_info("orders").unwrap().config.lease_ms, 5_000);

    let update = ConfigUpdate { max_length: Some(10), ..Default::default() };
    s.apply(T0, &Command::UpdateQueue { name: "orders".into(), update }).unwrap();
    let config = s.queue_info("orders").unwrap().config;
    assert_eq!((config.lease_ms, config.max_length), (5_000, 10));

    publish(&mut s, T0, "orders", &["a", "b"]);
    assert_eq!(
        s.apply(T0, &Command::PurgeQueue { name: "orders".into() }),
        Ok(Outcome::QueuePurged { messages_purged: 2 })
    );
    publish(&mut s, T0, "orders", &["c"]);
    assert_eq!(
        s.apply(T0, &Command::DeleteQueue { name: "orders".into() }),
        Ok(Outcome::QueueDeleted { messages_deleted: 1 })
    );
    assert!(matches!(s.queue_info("orders"), Err(QueueError::NotFound { .. })));
    assert!(matches!(s.apply(T0, &Command::DeleteQueue { name: "orders".into() }), Err(QueueError::NotFound { .. })));
    s.check_invariants().unwrap();
}

#[test]
fn list_pages_by_prefix() {
    let mut s = QueueState::new();
    for name in ["a.1", "a.2", "a.3", "b.1"] {
        create(&mut s, T0, name, Default::default());
    }
    let (page, next) = s.list_queues("a.", "", 2);
    assert_eq!(page.iter().map(|q| q.name.as_str()).collect::<Vec<_>>(), ["a.1", "a.2"]);
    let (page, next) = s.list_queues("a.", &next.unwrap(), 2);
    assert_eq!(page.iter().map(|q| q.name.as_str()).collect::<Vec<_>>(), ["a.3"]);
    assert_eq!(next, None);
    assert_eq!(s.list_queues("", "", 100).0.len(), 4);
}

#[test]
fn queue_count_is_bounded() {
    let mut s = QueueState::new();
    for i in 0..QUEUES_MAX {
        create(&mut s, T0, &format!("q{i}"), Default::default());
    }
    let over = s.apply(T0, &Command::CreateQueue { name: "one-more".into(), config: Default::default() });
    assert!(matches!(over, Err(QueueError::ResourceExhausted { .. })), "{over:?}");
    assert_eq!(over.expect_err("refused").reason(), crate::Reason::QueueLimitReached);
}

#[test]
fn dead_letter_queue_must_exist_and_differ() {
    let mut s = QueueState::new();
    let config = ConfigUpdate { dead_letter_queue: Some(Some("dlq".into())), ..Default::default() };
    let missing = s.apply(T0, &Command::CreateQueue { name: "q".into(), config: config.clone() });
    assert!(matches!(missing, Err(QueueError::NotFound { .. })), "{missing:?}");
    let itself = ConfigUpdate { dead_letter_queue: Some(Some("q".into())), ..Default::default() };
    assert_eq!(
        invalid_field(s.apply(T0, &Command::CreateQueue { name: "q".into(), config: itself })),
        "dead_letter_queue"
    );
    create(&mut s, T0, "dlq", Default::default());
    create(&mut s, T0, "q", config);
}

#[test]
fn publish_assigns_increasing_ids_and_fifo_delivers_oldest_first() {
    let mut s = with_queue(Default::default());
    assert_eq!(publish(&mut s, T0, "q", &["a", "b", "c"]), [1, 2, 3]);
    assert_eq!(publish(&mut s, T0 + 1, "q", &["d"]), [4]);
    let got = receive(&mut s, T0 + 2, "q", 2);
    assert_eq!(ids(&got), [1, 2]);
    assert_eq!(got[0].message.body, Bytes::from_static(b"a"));
    assert_eq!(got[0].receipt, Receipt { queue: "q".into(), message_id: 1, attempt: 1 });
    assert_eq!(got[0].lease_expires_at_ms, T0 + 2 + LEASE_MS_DEFAULT);
    assert_eq!(ids(&receive(&mut s, T0 + 3, "q", 10)), [3, 4]);
    assert!(receive(&mut s, T0 + 4, "q", 10).is_empty(), "leased messages are invisible");
}

#[test]
fn lifo_delivers_newest_first() {
    let mut s = with_queue(ConfigUpdate { order: Some(Order::Lifo), ..Default::default() });
    publish(&mut s, T0, "q", &["a", "b", "c"]);
    assert_eq!(ids(&receive(&mut s, T0, "q", 2)), [3, 2]);
    assert_eq!(ids(&receive(&mut s, T0, "q", 2)), [1]);
}

#[test]
fn redelivery_keeps_id_and_place() {
    let mut s = with_queue(ConfigUpdate { lease_ms: Some(1_000), ..Default::default() });
    publish(&mut s, T0, "q", &["a", "b"]);
    let first = receive(&mut s, T0, "q", 1);
    assert_eq!(ids(&first), [1]);
    // The lease on 1 ends; 1 is older than 2, so it comes first again.
    let again = receive(&mut s, T0 + 1_000, "q", 1);
    assert_eq!(ids(&again), [1]);
    assert_eq!(again[0].message.delivery_count, 2);
    assert_eq!(again[0].receipt.attempt, 2);
}

#[test]
fn batch_publish_is_all_or_nothing() {
    let mut s = with_queue(ConfigUpdate { max_length: Some(3), ..Default::default() });
    publish(&mut s, T0, "q", &["a", "b"]);
    let full = s.apply(T0, &Command::Publish { queue: "q".into(), messages: vec![msg("c"), msg("d")] });
    assert!(matches!(full, Err(QueueError::ResourceExhausted { .. })), "{full:?}");
    assert_eq!(s.queue_info("q").unwrap().stats.ready, 2, "nothing of the rejected batch is stored");

    let mut s = with_queue(ConfigUpdate { max_message_bytes: Some(4), ..Default::default() });
    let too_big = s.apply(T0, &Command::Publish { queue: "q".into(), messages: vec![msg("ok"), msg("too long")] });
    match too_big {
        Err(QueueError::ResourceExhausted { field, .. }) => assert_eq!(field, "messages[1].body"),
        other => panic!("{other:?}"),
    }
    assert_eq!(stats(&s, "q").ready, 0);
}

#[test]
fn max_bytes_rejects_when_full() {
    let mut s = with_queue(ConfigUpdate { max_bytes: Some(10), ..Default::default() });
    publish(&mut s, T0, "q", &["12345678"]);
    let full = s.apply(T0, &Command::Publish { queue: "q".into(), messages: vec![msg("abc")] });
    assert!(matches!(full, Err(QueueError::ResourceExhausted { .. })), "{full:?}");
    assert_eq!(stats(&s, "q").total_bytes, 8);
}

#[test]
fn history_text_counts_against_max_bytes() {
    // A 10-byte message nacked with long reasons grows by what its history
    // holds; before, only body and attributes counted, so a queue could hold
    // far more than max_bytes.
    let mut s = with_queue(ConfigUpdate { max_bytes: Some(3_000), ..Default::default() });
    publish(&mut s, T0, "q", &["0123456789"]);
    let reason = "r".repeat(1_000);
    for round in 0..2u64 {
        let t = T0 + round;
        let delivery = receive(&mut s, t, "q", 1).pop().expect("a delivery");
        let receipt = delivery.receipt;
        let nacked =
            s.apply(t, &Command::Nack { receipt, delay_ms: Some(0), dead_letter: false, reason: reason.clone() });
        assert!(nacked.is_ok(), "{nacked:?}");
    }
    assert_eq!(stats(&s, "q").total_bytes, 10 + 2_000, "body plus two reasons");
    let full = s.apply(T0 + 2, &Command::Publish { queue: "q".into(), messages: vec![msg(&"x".repeat(1_000))] });
    assert!(matches!(full, Err(QueueError::ResourceExhausted { .. })), "{full:?}");
    crate::check_invariants(s.kv(), crate::DedupCaps::default()).expect("invariants");
}

#[test]
fn idempotency_key_dedups_within_window_only() {
    let mut s = with_queue(ConfigUpdate { dedup_window_ms: Some(60_000), ..Default::default() });
    let first = publish_all(&mut s, T0, "q", vec![keyed("a", "k1")]);
    assert_eq!(first, [PublishResult { id: 1, duplicate: false }]);
    let again = publish_all(&mut s, T0 + 59_999, "q", vec![keyed("a", "k1"), keyed("b", "k2"), keyed("b", "k2")]);
    assert_eq!(
        again,
        [
            PublishResult { id: 1, duplicate: true },
            PublishResult { id: 2, duplicate: false },
            PublishResult { id: 2, duplicate: true },
        ]
    );
    assert_eq!(stats(&s, "q").ready, 2);
    assert_eq!(stats(&s, "q").duplicates_total, 2);
    // The ack does not end the window: a retry still gets the original id.
    let d = receive(&mut s, T0 + 59_999, "q", 1);
    ack(&mut s, T0 + 59_999, &[&d[0].receipt]).unwrap();
    assert_eq!(
        publish_all(&mut s, T0 + 59_999, "q", vec![keyed("a", "k1")])[0],
        PublishResult { id: 1, duplicate: true }
    );
    // After the window the key is new again.
    assert_eq!(
        publish_all(&mut s, T0 + 60_000, "q", vec![keyed("a", "k1")])[0],
        PublishResult { id: 3, duplicate: false }
    );
}

#[test]
fn ack_removes_and_stale_receipts_are_rejected() {
    let mut s = with_queue(ConfigUpdate { lease_ms: Some(1_000), ..Default::default() });
    publish(&mut s, T0, "q", &["a"]);
    let d1 = receive(&mut s, T0, "q", 1).remove(0);
    // Lease ended: rejected, even though no entry has fired the timer yet.
    assert_precondition(ack(&mut s, T0 + 1_000, &[&d1.receipt]));
    let d2 = receive(&mut s, T0 + 1_000, "q", 1).remove(0);
    assert_eq!(d2.receipt.attempt, 2);
    // Superseded by the later delivery.
    assert_precondition(ack(&mut s, T0 + 1_001, &[&d1.receipt]));
    assert_precondition(s.apply(T0 + 1_001, &Command::ExtendLease { receipt: d1.receipt.clone(), lease_ms: 1_000 }));
    assert_precondition(nack(&mut s, T0 + 1_001, &d1.receipt, None, false));
    assert_eq!(ack(&mut s, T0 + 1_001, &[&d2.receipt]), Ok(Outcome::Acked { count: 1 }));
    assert_precondition(ack(&mut s, T0 + 1_002, &[&d2.receipt]));
    assert_eq!(stats(&s, "q").acked_total, 1);
    assert_eq!(s.queue_info("q").unwrap().stats.ready + stats(&s, "q").leased, 0);
}

#[test]
fn ack_batch_is_all_or_nothing() {
    let mut s = with_queue(Default::default());
    publish(&mut s, T0, "q", &["a", "b"]);
    let d = receive(&mut s, T0, "q", 2);
    let bogus = Receipt { queue: "q".into(), message_id: 9, attempt: 1 };
    match ack(&mut s, T0, &[&d[0].receipt, &bogus]) {
        Err(QueueError::FailedPrecondition { field, .. }) => assert_eq!(field, "receipts[1]"),
        other => panic!("{other:?}"),
    }
    assert_eq!(stats(&s, "q").leased, 2, "the valid receipt was not acked either");
    assert_eq!(invalid_field(ack(&mut s, T0, &[&d[0].receipt, &d[0].receipt])), "receipts[1]");
    assert_eq!(ack(&mut s, T0, &[&d[0].receipt, &d[1].receipt]), Ok(Outcome::Acked { count: 2 }));
}

#[test]
fn extend_moves_the_deadline_from_now() {
    let mut s = with_queue(ConfigUpdate { lease_ms: Some(1_000), ..Default::default() });
    publish(&mut s, T0, "q", &["a"]);
    let d = receive(&mut s, T0, "q", 1).remove(0);
    let extended = s.apply(T0 + 900, &Command::ExtendLease { receipt: d.receipt.clone(), lease_ms: 5_000 });
    assert_eq!(extended, Ok(Outcome::LeaseExtended { lease_expires_at_ms: T0 + 5_900 }));
    assert!(receive(&mut s, T0 + 5_899, "q", 1).is_empty(), "still leased");
    ack(&mut s, T0 + 5_899, &[&d.receipt]).unwrap();
}

#[test]
fn nack_redelivers_now_or_after_delay() {
    let mut s = with_queue(Default::default());
    publish(&mut s, T0, "q", &["a"]);
    let d = receive(&mut s, T0, "q", 1).remove(0);
    assert_eq!(
        nack(&mut s, T0, &d.receipt, None, false),
        Ok(Outcome::Nacked(NackOutcome::Redeliver { visible_at_ms: T0 }))
    );
    let d = receive(&mut s, T0, "q", 1).remove(0);
    assert_eq!(d.message.delivery_count, 2);
    nack(&mut s, T0, &d.receipt, Some(500), false).unwrap();
    assert!(receive(&mut s, T0 + 499, "q", 1).is_empty());
    assert_eq!(ids(&receive(&mut s, T0 + 500, "q", 1)), [1]);
    assert_eq!(stats(&s, "q").nacked_total, 2);
}

#[test]
fn retry_policy_applies_backoff_on_nack_and_lease_end() {
    let config = ConfigUpdate {
        backoff_base_ms: Some(1_000),
        backoff_max_ms: Some(4_000),
        lease_ms: Some(100),
        ..Default::default()
    };
    let mut s = with_queue(config);
    publish(&mut s, T0, "q", &["a"]);
    let d = receive(&mut s, T0, "q", 1).remove(0);
    let Ok(Outcome::Nacked(NackOutcome::Redeliver { visible_at_ms })) = nack(&mut s, T0, &d.receipt, None, false)
    else {
        panic!("nack")
    };
    let expected = retry::retry_delay_ms(1_000, 4_000, 1, 1);
    assert_eq!(visible_at_ms, T0 + expected);
    assert!((750..=1_000).contains(&expected));
    assert_eq!(stats(&s, "q").delayed, 1);
    // Second delivery; its lease runs out at +100, then backoff for attempt 2.
    let d = receive(&mut s, visible_at_ms, "q", 1).remove(0);
    assert_eq!(d.receipt.attempt, 2);
    s.apply(visible_at_ms + 100, &Command::Tick).unwrap();
    let inspected = s.inspect("q", 1).unwrap();
    let MessageState::Delayed { visible_at_ms: next } = inspected.state else { panic!("{:?}", inspected.state) };
    assert_eq!(next, visible_at_ms + 100 + retry::retry_delay_ms(1_000, 4_000, 1, 2));
    assert!(matches!(inspected.history.back(), Some(HistoryEvent::Retry { .. })));
}

#[test]
fn max_deliveries_moves_to_dead_letter_queue_with_history() {
    let mut s = QueueState::new();
    create(&mut s, T0, "dlq", Default::default());
    let config = ConfigUpdate {
        max_deliveries: Some(2),
        dead_letter_queue: Some(Some("dlq".into())),
        lease_ms: Some(100),
        ..Default::default()
    };
    create(&mut s, T0, "q", config);
    publish(&mut s, T0, "q", &["poison"]);
    let d = receive(&mut s, T0, "q", 1).remove(0);
    nack(&mut s, T0, &d.receipt, None, false).unwrap();
    receive(&mut s, T0, "q", 1);
    // The second lease ends: the budget of 2 deliveries is spent.
    s.apply(T0 + 100, &Command::Tick).unwrap();
    assert_eq!(stats(&s, "q").dead_lettered_total, 1);
    assert_eq!(s.queue_info("q").unwrap().stats.ready, 0);
    let dead = receive(&mut s, T0 + 100, "dlq", 1).remove(0);
    assert_eq!(dead.message.body, Bytes::from_static(b"poison"));
    let info = dead.message.dead_letter.clone().expect("dead letter info");
    assert_eq!((info.source_queue.as_str(), info.source_id, info.delivery_count), ("q", 1, 2));
    assert!(info.reason.contains("max_deliveries"), "{}", info.reason);
    let history = s.inspect("dlq", dead.message.id).unwrap().history;
    assert!(history.iter().any(|e| matches!(e, HistoryEvent::Nacked { .. })));
    assert!(
        history.iter().any(|e| matches!(e, HistoryEvent::DeadLettered { target_queue: Some(q), .. } if q == "dlq"))
    );
}

#[test]
fn nack_dead_letter_now_and_redrive_back() {
    let mut s = QueueState::new();
    create(&mut s, T0, "dlq", Default::default());
    create(&mut s, T0, "q", ConfigUpdate { dead_letter_queue: Some(Some("dlq".into())), ..Default::default() });
    publish(&mut s, T0, "q", &["a", "b"]);
    for d in receive(&mut s, T0, "q", 2) {
        let outcome = nack(&mut s, T0, &d.receipt, None, true).unwrap();
        assert_eq!(outcome, Outcome::Nacked(NackOutcome::DeadLettered { queue: Some("dlq".into()) }));
    }
    assert_eq!(stats(&s, "dlq").ready, 2);
    assert_eq!(
        s.apply(T0, &Command::Redrive { queue: "dlq".into(), max_messages: 1 }),
        Ok(Outcome::Redriven { moved: 1 })
    );
    assert_eq!(stats(&s, "q").ready, 1);
    assert_eq!(stats(&s, "dlq").ready, 1);
    let back = receive(&mut s, T0, "q", 1).remove(0);
    // Ids are unique across queues: 1, 2 in q; 3, 4 in dlq; 5 back in q.
    assert_eq!((back.message.id, back.message.body.as_ref()), (5, b"a".as_ref()));
    assert_eq!(back.message.delivery_count, 1, "a redriven message starts a fresh delivery budget");
}

#[test]
fn without_dead_letter_queue_dead_messages_are_parked_not_dropped() {
    let mut s = with_queue(ConfigUpdate { max_deliveries: Some(1), ..Default::default() });
    publish(&mut s, T0, "q", &["a"]);
    let d = receive(&mut s, T0, "q", 1).remove(0);
    let outcome = nack(&mut s, T0, &d.receipt, None, false).unwrap();
    assert_eq!(outcome, Outcome::Nacked(NackOutcome::DeadLettered { queue: None }));
    assert_eq!(stats(&s, "q").dead, 1);
    assert!(receive(&mut s, T0, "q", 1).is_empty(), "dead messages are not delivered");
    let page = s.peek("q", StateFilter::Dead, 0, 10).unwrap();
    assert_eq!(page.messages.len(), 1);
    let info = page.messages[0].dead_letter.clone().expect("parked messages say why they died");
    assert_eq!((info.source_queue.as_str(), info.source_id, info.delivery_count), ("q", 1, 1));
    s.apply(T0, &Command::Redrive { queue: "q".into(), max_messages: 10 }).unwrap();
    let again = receive(&mut s, T0, "q", 1).remove(0);
    assert_eq!((again.message.id, again.receipt.attempt), (1, 2), "redrive in place keeps the id");
    // The budget restarted: one more failure parks it again.
    nack(&mut s, T0, &again.receipt, None, false).unwrap();
    assert_eq!(stats(&s, "q").dead, 1);
}

#[test]
fn full_dead_letter_queue_parks_instead_of_dropping() {
    let mut s = QueueState::new();
    create(&mut s, T0, "dlq", ConfigUpdate { max_length: Some(1), ..Default::default() });
    publish(&mut s, T0, "dlq", &["occupant"]);
    create(&mut s, T0, "q", ConfigUpdate { dead_letter_queue: Some(Some("dlq".into())), ..Default::default() });
    publish(&mut s, T0, "q", &["a"]);
    let d = receive(&mut s, T0, "q", 1).remove(0);
    nack(&mut s, T0, &d.receipt, None, true).unwrap();
    assert_eq!(stats(&s, "q").dead, 1);
    assert_eq!(stats(&s, "dlq").ready, 1);
}

#[test]
fn delayed_messages_become_visible_on_time() {
    let mut s = with_queue(ConfigUpdate { default_delay_ms: Some(2_000), ..Default::default() });
    let explicit = NewMessage { delay_ms: Some(500), ..msg("soon") };
    publish_all(&mut s, T0, "q", vec![msg("later"), explicit]);
    assert_eq!(stats(&s, "q").delayed, 2);
    assert_eq!(s.next_timer_ms(), Some(T0 + 500));
    assert!(receive(&mut s, T0 + 499, "q", 5).is_empty());
    assert_eq!(ids(&receive(&mut s, T0 + 500, "q", 5)), [2]);
    assert_eq!(ids(&receive(&mut s, T0 + 2_000, "q", 5)), [1]);
}

#[test]
fn ttl_removes_messages_in_any_state() {
    let mut s = with_queue(ConfigUpdate { message_ttl_ms: Some(10_000), ..Default::default() });
    publish(&mut s, T0, "q", &["a", "b"]);
    let d = receive(&mut s, T0, "q", 1).remove(0);
    s.apply(T0 + 10_000, &Command::Tick).unwrap();
    let st = stats(&s, "q");
    assert_eq!((st.ready, st.leased, st.expired_total), (0, 0, 2));
    assert_precondition(ack(&mut s, T0 + 10_000, &[&d.receipt]));
}

#[test]
fn time_never_goes_backwards() {
    let mut s = with_queue(ConfigUpdate { lease_ms: Some(1_000), ..Default::default() });
    publish(&mut s, T0, "q", &["a"]);
    let d = receive(&mut s, T0, "q", 1).remove(0);
    s.apply(T0 + 1_000, &Command::Tick).unwrap();
    // A new leader with a slow clock stamps an earlier time: the lease stays ended.
    assert_precondition(ack(&mut s, T0 + 10, &[&d.receipt]));
    assert_eq!(s.now_ms(), T0 + 1_000);
    assert_eq!(ids(&receive(&mut s, T0 + 20, "q", 1)), [1]);
}

#[test]
fn peek_and_inspect_change_nothing() {
    let mut s = with_queue(Default::default());
    publish(&mut s, T0, "q", &["a", "b", "c"]);
    receive(&mut s, T0, "q", 1);
    let before = s.digest();
    let page = s.peek("q", StateFilter::Ready, 0, 10).unwrap();
    assert_eq!(page.messages.iter().map(|m| m.id).collect::<Vec<_>>(), [2, 3]);
    let leased = s.peek("q", StateFilter::Leased, 0, 10).unwrap();
    assert_eq!(leased.messages.len(), 1);
    let page = s.peek("q", StateFilter::Any, 0, 2).unwrap();
    assert_eq!(page.next_after_id, Some(2));
    let inspected = s.inspect("q", 1).unwrap();
    assert!(matches!(inspected.state, MessageState::Leased { attempt: 1, .. }));
    assert!(matches!(inspected.history.front(), Some(HistoryEvent::Delivered { attempt: 1, .. })));
    assert!(matches!(s.inspect("q", 99), Err(QueueError::NotFound { .. })));
    assert_eq!(s.digest(), before);
}

#[test]
fn history_is_bounded() {
    let mut s = with_queue(Default::default());
    publish(&mut s, T0, "q", &["a"]);
    for _ in 0..100 {
        let d = receive(&mut s, T0, "q", 1).remove(0);
        nack(&mut s, T0, &d.receipt, None, false).unwrap();
    }
    let m = s.inspect("q", 1).unwrap();
    assert_eq!(m.history.len(), HISTORY_EVENTS_MAX);
    assert_eq!(m.history_dropped, 300 - HISTORY_EVENTS_MAX as u64);
    assert_eq!(m.delivery_count, 100);
}

#[test]
fn stats_count_states_and_totals() {
    let mut s = with_queue(Default::default());
    publish(&mut s, T0, "q", &["aa", "bb", "cc"]);
    publish_all(&mut s, T0, "q", vec![NewMessage { delay_ms: Some(100), ..msg("dd") }]);
    let d = receive(&mut s, T0 + 50, "q", 1).remove(0);
    ack(&mut s, T0 + 50, &[&d.receipt]).unwrap();
    receive(&mut s, T0 + 50, "q", 1);
    let st = stats(&s, "q");
    assert_eq!((st.ready, st.leased, st.delayed, st.dead, st.total_bytes), (1, 1, 1, 0, 6));
    assert_eq!((st.published_total, st.delivered_total, st.acked_total), (4, 2, 1));
    assert_eq!(st.oldest_ready_age_ms, 50);
}

#[test]
fn deleting_a_queue_ends_its_leases() {
    let mut s = with_queue(Default::default());
    publish(&mut s, T0, "q", &["a"]);
    let d = receive(&mut s, T0, "q", 1).remove(0);
    s.apply(T0, &Command::DeleteQueue { name: "q".into() }).unwrap();
    create(&mut s, T0, "q", Default::default());
    assert_eq!(s.next_timer_ms(), None, "no timer of the deleted queue survives");
    publish(&mut s, T0, "q", &["b"]);
    let fresh = receive(&mut s, T0, "q", 1).remove(0);
    assert_ne!(fresh.receipt, d.receipt, "ids are never reused, so receipts never repeat");
    // Same queue name, but the old lease is gone with the old queue.
    assert_precondition(ack(&mut s, T0, &[&d.receipt]));
    s.check_invariants().unwrap();
}

#[test]
fn invalid_requests_name_the_field_and_change_nothing() {
    let mut s = with_queue(Default::default());
    let before = s.clone();
    let too_many = vec![msg("x"); PUBLISH_MESSAGES_MAX + 1];
    let cases: Vec<(Command, &str)> = vec![
        (Command::Publish { queue: "q".into(), messages: vec![] }, "messages"),
        (Command::Publish { queue: "q".into(), messages: too_many }, "messages"),
        (Command::Publish { queue: "bad name".into(), messages: vec![msg("x")] }, "queue"),
        (Command::Publish { queue: "q".into(), messages: vec![keyed("x", "")] }, "messages[0].idempotency_key"),
        (
            Command::Publish {
                queue: "q".into(),
                messages: vec![NewMessage { delay_ms: Some(DELAY_MS_MAX + 1), ..msg("x") }],
            },
            "messages[0].delay_ms",
        ),
        (Command::Receive { queue: "q".into(), max_messages: 0, lease_ms: None }, "max_messages"),
        (Command::Receive { queue: "q".into(), max_messages: 1, lease_ms: Some(1) }, "lease_ms"),
        (Command::Ack { receipts: vec![] }, "receipts"),
        (Command::Ack { receipts: vec![Receipt { queue: "q".into(), message_id: 0, attempt: 1 }] }, "receipts[0]"),
        (Command::CreateQueue { name: "".into(), config: Default::default() }, "queue"),
        (
            Command::CreateQueue { name: "x".into(), config: ConfigUpdate { lease_ms: Some(0), ..Default::default() } },
            "lease_ms",
        ),
        (Command::Redrive { queue: "q".into(), max_messages: 0 }, "max_messages"),
    ];
    for (command, field) in cases {
        assert_eq!(invalid_field(s.apply(T0, &command)), field, "{command:?}");
    }
    let huge = NewMessage { body: Bytes::from(vec![0u8; MESSAGE_BYTES_CAP as usize + 1]), ..msg("") };
    let rejected = s.apply(T0, &Command::Publish { queue: "q".into(), messages: vec![huge] });
    assert!(
        matches!(rejected, Err(QueueError::ResourceExhausted { ref field, .. }) if field == "messages[0].body"),
        "{rejected:?}"
    );
    let batch = vec![NewMessage { body: Bytes::from(vec![0u8; 1 << 20]), ..msg("") }; 5];
    let rejected = s.apply(T0, &Command::Publish { queue: "q".into(), messages: batch });
    assert!(
        matches!(rejected, Err(QueueError::ResourceExhausted { ref field, .. }) if field == "messages"),
        "{rejected:?}"
    );
    assert_eq!(s.digest(), before.digest());
}

#[test]
fn missing_queue_is_not_found() {
    let mut s = QueueState::new();
    for command in [
        Command::Publish { queue: "nope".into(), messages: vec![msg("x")] },
        Command::Receive { queue: "nope".into(), max_messages: 1, lease_ms: None },
        Command::PurgeQueue { name: "nope".into() },
        Command::Redrive { queue: "nope".into(), max_messages: 1 },
    ] {
        assert!(matches!(s.apply(T0, &command), Err(QueueError::NotFound { .. })), "{command:?}");
    }
}

#[test]
fn snapshot_roundtrip_keeps_digest_and_behaviour() {
    let mut s = QueueState::new();
    create(&mut s, T0, "dlq", Default::default());
    let config = ConfigUpdate {
        dead_letter_queue: Some(Some("dlq".into())),
        message_ttl_ms: Some(60_000),
        lease_ms: Some(1_000),
        ..Default::default()
    };
    create(&mut s, T0, "q", config);
    publish_all(&mut s, T0, "q", vec![keyed("a", "k"), msg("b"), NewMessage { delay_ms: Some(10), ..msg("c") }]);
    let d = receive(&mut s, T0, "q", 1).remove(0);
    let restored = QueueState::from_snapshot(&s.to_snapshot()).unwrap();
    assert_eq!(restored.digest(), s.digest());
    restored.check_invariants().unwrap();
    // Both continue identically: the restored copy honours the lease and dedup.
    let mut r = restored;
    for state in [&mut s, &mut r] {
        assert_eq!(publish_all(state, T0 + 1, "q", vec![keyed("x", "k")])[0].id, 1);
        ack(state, T0 + 2, &[&d.receipt]).unwrap();
        state.apply(T0 + 5_000, &Command::Tick).unwrap();
    }
    assert_eq!(r.digest(), s.digest());
}

#[test]
fn corrupt_snapshots_are_refused() {
    let mut s = with_queue(Default::default());
    publish(&mut s, T0, "q", &["a"]);
    let good = s.to_snapshot();
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x40;
    assert_eq!(QueueState::from_snapshot(&flipped).unwrap_err(), SnapshotError::Checksum);
    assert!(matches!(
        QueueState::from_snapshot(&good[..10]),
        Err(SnapshotError::Truncated(_) | SnapshotError::Checksum)
    ));
    let mut other_version = good.clone();
    other_version[4] = 99;
    assert_eq!(QueueState::from_snapshot(&other_version).unwrap_err(), SnapshotError::UnsupportedVersion(99));
    assert_eq!(
        QueueState::from_snapshot(b"nonsense-nonsense-nonsense-nonsense-nonsense").unwrap_err(),
        SnapshotError::BadMagic
    );
}

#[test]
fn digest_differs_when_state_differs() {
    let mut a = with_queue(Default::default());
    let mut b = a.clone();
    assert_eq!(a.digest(), b.digest());
    publish(&mut a, T0, "q", &["x"]);
    publish(&mut b, T0, "q", &["y"]);
    assert_ne!(a.digest(), b.digest());
}

/// No bound across queues: before the fix, 10,000 queues could each hold
/// `DEDUP_KEYS_MAX` keys. At the real bounds: one key in queue "a", then
/// more than `DEDUP_KEYS_TOTAL_MAX` keys spread over three other queues
/// (each below its own cap). The cluster-wide bound forgets the key closest
/// to the end of its window in any queue ("a"'s, published first), counts it
/// in "a"'s `dedup_evicted_total`, and a republish of it is new.
#[test]
fn dedup_keys_are_bounded_across_queues() {
    let total_max = 2_000_000; // DEDUP_KEYS_TOTAL_MAX
    let mut s = QueueState::new();
    for name in ["a", "b", "c", "d"] {
        create(&mut s, T0, name, ConfigUpdate::default());
    }
    publish_all(&mut s, T0, "a", vec![keyed("x", "k0")]);
    let per_queue = 700_000;
    assert!(3 * per_queue > total_max && per_queue < DEDUP_KEYS_MAX);
    let mut n = 0u64;
    for name in ["b", "c", "d"] {
        for _ in 0..per_queue / 1000 {
            let batch = (0..1000).map(|_| {
                n += 1;
                keyed("x", &format!("key-{n}"))
            });
            publish_all(&mut s, T0 + 1, name, batch.collect());
            // Keys outlive their messages: purging keeps memory low here.
            s.apply(T0 + 1, &Command::PurgeQueue { name: name.into() }).expect("purge");
        }
    }
    let evicted: u64 = ["a", "b", "c", "d"].iter().map(|q| stats(&s, q).dedup_evicted_total).sum();
    assert_eq!(evicted, 3 * per_queue as u64 + 1 - total_max as u64, "every key past the bound evicts one early");
    assert_eq!(stats(&s, "a").dedup_evicted_total, 1, "the key closest to its window's end went first");
    let again = publish_all(&mut s, T0 + 2, "a", vec![keyed("x", "k0")]);
    assert!(!again[0].duplicate, "k0 was forgotten, and counted as such");
}

fn with_caps(per_queue: usize, total: usize, queues: &[&str], window_ms: u64) -> QueueState {
    let mut s = QueueState::with_dedup_caps(DedupCaps { per_queue, total, ..DedupCaps::default() });
    for name in queues {
        create(&mut s, T0, name, ConfigUpdate { dedup_window_ms: Some(window_ms), ..Default::default() });
    }
    s
}

fn is_duplicate(s: &mut QueueState, t: u64, queue: &str, key: &str) -> bool {
    publish_all(s, t, queue, vec![keyed("x", key)])[0].duplicate
}

#[test]
fn the_cluster_wide_dedup_bound_forgets_the_key_closest_to_its_window_end_in_any_queue() {
    let mut s = with_caps(3, 5, &["a", "b", "c"], 60_000);
    // a: a1 a2 a3 (the per-queue cap), b: b1 b2 — 5 keys, the total cap.
    for (t, queue, key) in [(0, "a", "a1"), (1, "a", "a2"), (2, "b", "b1"), (3, "a", "a3"), (4, "b", "b2")] {
        assert!(!is_duplicate(&mut s, T0 + t, queue, key));
    }
    assert_eq!(s.dedup_keys(), 5);
    // c1 needs room: a1 ends its window first, whatever queue it is in.
    assert!(!is_duplicate(&mut s, T0 + 5, "c", "c1"));
    assert_eq!(s.dedup_keys(), 5);
    assert_eq!(stats(&s, "a").dedup_evicted_total, 1);
    // Then a2, then b1: in window-end order across queues.
    assert!(!is_duplicate(&mut s, T0 + 6, "c", "c2"));
    assert!(!is_duplicate(&mut s, T0 + 7, "c", "c3"));
    assert_eq!((stats(&s, "a").dedup_evicted_total, stats(&s, "b").dedup_evicted_total), (2, 1));
    // c is at its own cap: c4 evicts c's own oldest key, not another queue's.
    assert!(!is_duplicate(&mut s, T0 + 8, "c", "c4"));
    assert_eq!(stats(&s, "c").dedup_evicted_total, 1);
    assert_eq!(s.dedup_keys(), 5);
    // What is left is still deduplicated; what was forgotten is new again.
    for (queue, key, remembered) in [("a", "a3", true), ("b", "b2", true), ("c", "c2", true), ("c", "c4", true)] {
        assert_eq!(is_duplicate(&mut s, T0 + 9, queue, key), remembered, "{queue}/{key}");
    }
    s.check_invariants().expect("invariants");
    assert!(is_duplicate(&mut s, T0 + 9, "c", "c3"));
    assert!(!is_duplicate(&mut s, T0 + 9, "a", "a1"), "a1 was forgotten early");
    s.check_invariants().expect("invariants");
    assert!(s.dedup_keys() <= 5);
    let restored = QueueState::from_snapshot(&s.to_snapshot()).expect("restore");
    assert_eq!(restored.digest(), s.digest());
    assert_eq!(restored.dedup_keys(), s.dedup_keys());
}

#[test]
fn a_key_whose_window_had_ended_is_not_counted_as_evicted_early() {
    let mut s = with_caps(2, 2, &["a", "b"], 1_000);
    assert!(!is_duplicate(&mut s, T0, "a", "a1"));
    assert!(!is_duplicate(&mut s, T0, "a", "a2"));
    // a's window ended; only a's own publishes expire its keys, so the
    // cluster-wide bound finds them still held, and forgets them uncounted.
    assert!(!is_duplicate(&mut s, T0 + 5_000, "b", "b1"));
    assert_eq!(stats(&s, "a").dedup_evicted_total, 0);
    assert_eq!(s.dedup_keys(), 2);
    // b1 did not end its window: forgetting it is counted.
    assert!(!is_duplicate(&mut s, T0 + 5_001, "b", "b2"));
    assert!(!is_duplicate(&mut s, T0 + 5_002, "b", "b3"));
    assert_eq!(stats(&s, "b").dedup_evicted_total, 1);
    s.check_invariants().expect("invariants");
}

#[test]
fn deleting_a_queue_frees_its_keys_from_the_cluster_wide_count() {
    let mut s = with_caps(3, 4, &["a", "b"], 60_000);
    for key in ["a1", "a2", "a3"] {
        assert!(!is_duplicate(&mut s, T0, "a", key));
    }
    assert!(!is_duplicate(&mut s, T0, "b", "b1"));
    assert_eq!(s.dedup_keys(), 4);
    s.apply(T0, &Command::DeleteQueue { name: "a".into() }).expect("delete");
    assert_eq!(s.dedup_keys(), 1);
    s.check_invariants().expect("invariants");
    for key in ["b2", "b3"] {
        assert!(!is_duplicate(&mut s, T0 + 1, "b", key));
    }
    assert_eq!(stats(&s, "b").dedup_evicted_total, 0, "room again: nothing forgotten");
    assert!(is_duplicate(&mut s, T0 + 1, "b", "b1"));
}

#[test]
fn replicas_with_small_caps_evict_the_same_keys() {
    let run = || {
        let mut s = with_caps(4, 6, &["a", "b", "c"], 30_000);
        for i in 0..200u64 {
            let queue = ["a", "b", "c"][(i * 7 % 3) as usize];
            publish_all(&mut s, T0 + i * 97 % 40_000, queue, vec![keyed("x", &format!("k{}", i % 23))]);
            assert!(s.dedup_keys() <= 6);
        }
        s.check_invariants().expect("invariants");
        s
    };
    let (one, two) = (run(), run());
    assert_eq!(one.digest(), two.digest());
    let evicted = |s: &QueueState| ["a", "b", "c"].map(|q| stats(s, q).dedup_evicted_total);
    assert_eq!(evicted(&one), evicted(&two));
    assert!(evicted(&one).iter().sum::<u64>() > 0, "the test reaches the bounds");
}

/// One step of `reading_ahead_for_eviction_changes_nothing`.
#[derive(Clone, Debug)]
enum DedupStep {
    /// Keyed (`Some(key index)`) or unkeyed messages into queue a or b.
    Publish(bool, Vec<Option<u8>>),
    /// A new window for queue a or b: a shorter one puts new keys before
    /// old ones in the eviction order.
    Window(bool, u64),
    /// Delete queue a or b and create it again (its keys wait for cleanup).
    Recreate(bool),
    /// Keyed or unkeyed messages into topic `t`, bound to a and b: the
    /// topic's keys and both copies' keys compete for the same bounds.
    PublishTopic(Vec<Option<u8>>),
    /// A new window for topic `t`.
    TopicWindow(u64),
    /// Delete topic `t` and create and bind it again.
    RecreateTopic,
    Tick,
}

fn dedup_step() -> impl proptest::strategy::Strategy<Value = (u64, DedupStep)> {
    use proptest::prelude::*;
    let step = prop_oneof![
        6 => (any::<bool>(), proptest::collection::vec(proptest::option::weighted(0.9, 0u8..40), 1..12))
            .prop_map(|(b, keys)| DedupStep::Publish(b, keys)),
        2 => (any::<bool>(), prop_oneof![Just(0u64), Just(300), Just(2_000), Just(60_000)])
            .prop_map(|(b, w)| DedupStep::Window(b, w)),
        1 => any::<bool>().prop_map(DedupStep::Recreate),
        4 => proptest::collection::vec(proptest::option::weighted(0.9, 0u8..40), 1..8).prop_map(DedupStep::PublishTopic),
        1 => prop_oneof![Just(0u64), Just(300), Just(2_000), Just(60_000)].prop_map(DedupStep::TopicWindow),
        1 => Just(DedupStep::RecreateTopic),
        1 => Just(DedupStep::Tick),
    ];
    (0u64..700, step)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
    /// Eviction reads the next keys of a full dedup table ahead in one
    /// scan; that must forget exactly the keys that one scan per key
    /// (`evict_ahead: 1`) forgets, whatever windows, deletes and batches
    /// reorder: same responses, same state, step by step. Queues and a
    /// topic bound to both share the bounds, so a topic publish evicts
    /// and expires keys of the topic and of the queues it stores copies
    /// in within one entry; the invariants hold after every command.
    #[test]
    fn reading_ahead_for_eviction_changes_nothing(
        per_queue in 1usize..7,
        extra in 0usize..6,
        steps in proptest::collection::vec(dedup_step(), 1..60),
    ) {
        let caps = |evict_ahead| DedupCaps { per_queue, total: per_queue + extra, evict_ahead };
        let mut one = QueueState::with_dedup_caps(caps(1));
        let mut ahead = QueueState::with_dedup_caps(caps(DEDUP_EVICT_AHEAD_MAX));
        let window = |w| ConfigUpdate { dedup_window_ms: Some(w), ..Default::default() };
        let mut t = T0;
        let mut commands = Vec::new();
        for name in ["a", "b"] {
            commands.push(Command::CreateQueue { name: name.into(), config: window(5_000) });
        }
        let bind = |queue: &str| Command::Bind { topic: "t".into(), queue: queue.into(), filter: Filter::default() };
        let topic_window = |w| TopicConfig { dedup_window_ms: w, ..Default::default() };
        commands.push(Command::CreateTopic { name: "t".into(), config: topic_window(5_000) });
        commands.extend([bind("a"), bind("b")]);
        let keyed_batch = |keys: &[Option<u8>]| -> Vec<NewMessage> {
            keys.iter()
                .enumerate()
                .map(|(i, k)| match k {
                    Some(k) => keyed(&format!("m{i}"), &format!("key-{k}")),
                    None => msg(&format!("m{i}")),
                })
                .collect()
        };
        for (dt, step) in steps {
            t += dt;
            let name = |b: bool| if b { "a" } else { "b" }.to_string();
            match step {
                DedupStep::Publish(b, keys) => {
                    commands.push(Command::Publish { queue: name(b), messages: keyed_batch(&keys) });
                }
                DedupStep::PublishTopic(keys) => {
                    commands.push(Command::PublishTopic { topic: "t".into(), messages: keyed_batch(&keys) });
                }
                DedupStep::TopicWindow(w) => {
                    let config = topic_window(w);
                    commands.push(Command::DeleteTopic { name: "t".into() });
                    commands.push(Command::CreateTopic { name: "t".into(), config });
                    commands.extend([bind("a"), bind("b")]);
                }
                DedupStep::Window(b, w) => commands.push(Command::UpdateQueue { name: name(b), update: window(w) }),
                DedupStep::Recreate(b) => {
                    commands.push(Command::DeleteQueue { name: name(b) });
                    commands.push(Command::CreateQueue { name: name(b), config: window(5_000) });
                    commands.push(bind(&name(b)));
                }
                DedupStep::RecreateTopic => {
                    commands.push(Command::DeleteTopic { name: "t".into() });
                    commands.push(Command::CreateTopic { name: "t".into(), config: topic_window(5_000) });
                    commands.extend([bind("a"), bind("b")]);
                }
                DedupStep::Tick => commands.push(Command::Tick),
            }
            for command in commands.drain(..) {
                let (a, b) = (one.apply(t, &command), ahead.apply(t, &command));
                proptest::prop_assert_eq!(&a, &b, "{:?}", command);
                proptest::prop_assert_eq!(one.digest(), ahead.digest(), "state after {:?}", command);
                ahead.check_invariants().map_err(|e| proptest::test_runner::TestCaseError::fail(format!("after {command:?}: {e}")))?;
            }
        }
        one.check_invariants().map_err(proptest::test_runner::TestCaseError::fail)?;
        ahead.check_invariants().map_err(proptest::test_runner::TestCaseError::fail)?;
    }
}

#[test]
#[should_panic(expected = "bad dedup caps")]
fn dedup_caps_must_nest() {
    let _ = QueueState::with_dedup_caps(DedupCaps { per_queue: 5, total: 4, ..DedupCaps::default() });
}

/// Purge and delete used to walk every message of the queue in one apply:
/// a queue of millions stalled every replica. Now they answer at once and
/// the leftovers are deleted a bounded number per entry, driven by ticks.
#[test]
fn purge_and_delete_of_a_large_queue_cost_a_bounded_amount_per_entry() {
    let n = 3 * CLEANUP_PER_APPLY_MAX + 10;
    let mut s = with_queue(ConfigUpdate { message_ttl_ms: Some(3_600_000), ..Default::default() });
    create(&mut s, T0, "other", ConfigUpdate { dedup_window_ms: Some(60_000), ..Default::default() });
    for chunk in 0..n / 500 + 1 {
        let messages: Vec<NewMessage> = (0..500).map(|i| keyed("x", &format!("k{chunk}-{i}"))).collect();
        publish_all(&mut s, T0, "q", messages.clone());
        publish_all(&mut s, T0, "other", messages);
    }
    receive(&mut s, T0, "q", 100);
    let small = {
        let mut empty = with_queue(ConfigUpdate::default());
        create(&mut empty, T0, "other", ConfigUpdate::default());
        empty.kv().len()
    };
    let answer = s.apply(T0 + 1, &Command::PurgeQueue { name: "q".into() }).expect("purge");
    assert!(matches!(answer, Outcome::QueuePurged { messages_purged } if messages_purged as usize >= n));
    assert_eq!(stats(&s, "q").ready, 0, "purged at once for every reader");
    assert_eq!(s.peek("q", StateFilter::Any, 0, 10).unwrap().messages.len(), 0);
    assert_eq!(s.next_timer_ms(), Some(T0 + 1), "leftovers make the leader tick now");
    s.check_invariants().expect("invariants while cleaning up");
    // Publishing goes on meanwhile; each entry deletes at most the bound.
    let fresh = publish(&mut s, T0 + 2, "q", &["new"]);
    let mut ticks = 0;
    while s.next_timer_ms() == Some(s.now_ms()) {
        let before = s.kv().len();
        s.apply(T0 + 3, &Command::Tick).expect("tick");
        assert!(before - s.kv().len() <= 4 * CLEANUP_PER_APPLY_MAX, "one entry deleted too much");
        ticks += 1;
        assert!(ticks < 100, "cleanup never ends");
    }
    assert!(ticks >= 2, "the cleanup took several entries ({ticks})");
    s.check_invariants().expect("invariants after cleanup");
    assert_eq!(ids(&receive(&mut s, T0 + 4, "q", 10)), fresh, "only the new message is left");
    // Deleting a queue with many idempotency keys: the same.
    let keys_before = s.dedup_keys();
    assert!(keys_before >= n);
    s.apply(T0 + 5, &Command::DeleteQueue { name: "other".into() }).expect("delete");
    while s.next_timer_ms() == Some(s.now_ms()) {
        s.apply(T0 + 6, &Command::Tick).expect("tick");
    }
    s.check_invariants().expect("invariants after delete");
    assert_eq!(s.dedup_keys(), keys_before / 2, "the deleted queue's keys are gone, the other's kept");
    s.apply(T0 + 7, &Command::DeleteQueue { name: "q".into() }).expect("delete");
    while s.next_timer_ms() == Some(s.now_ms()) {
        s.apply(T0 + 8, &Command::Tick).expect("tick");
    }
    assert!(s.kv().len() <= small, "the space came back: {} pairs left, {small} in a fresh state", s.kv().len());
}

/// Receives and acks of runs of consecutive ids give the store cleared
/// ranges (`kv::WriteSet`: ranges it may delete whole), and the in-memory
/// store behind `QueueState` checks every claim: a key inside one that the
/// write set does not write panics there. A message left leased inside an
/// acked run, a nack, a lease that ends, TTL timers among the lease timers
/// and LIFO order keep every claim true and the state whole.
#[test]
fn cleared_ranges_claim_only_keys_the_write_set_writes() {
    for order in [Order::Fifo, Order::Lifo] {
        let config = ConfigUpdate {
            order: Some(order),
            lease_ms: Some(1_000),
            message_ttl_ms: Some(60_000),
            ..Default::default()
        };
        let mut s = with_queue(config);
        let bodies: Vec<String> = (0..400).map(|i| format!("m{i}")).collect();
        let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
        publish(&mut s, T0, "q", &bodies);
        let got = receive(&mut s, T0 + 1, "q", 300);
        assert_eq!(got.len(), 300);
        // Ack all but the 141st and the 291st delivered: runs around them
        // (140 and 149 long, cleared; the last 9, deleted key by key).
        let kept = [&got[140], &got[290]];
        let acked: Vec<&Receipt> =
            got.iter().filter(|d| !kept.iter().any(|k| k.message.id == d.message.id)).map(|d| &d.receipt).collect();
        assert!(matches!(ack(&mut s, T0 + 2, &acked), Ok(Outcome::Acked { count: 298 })));
        s.check_invariants().unwrap();
        // The two kept are still leased: one is nacked back, one acked.
        assert!(nack(&mut s, T0 + 3, &kept[0].receipt, None, false).is_ok());
        assert!(matches!(ack(&mut s, T0 + 3, &[&kept[1].receipt]), Ok(Outcome::Acked { count: 1 })));
        // The rest (100 + the nacked one) delivered, and their leases end.
        let rest = receive(&mut s, T0 + 4, "q", 1_000);
        assert_eq!(rest.len(), 101);
        let again = receive(&mut s, T0 + 4 + 1_000, "q", 1_000);
        assert_eq!(again.len(), 101, "every lease ended and its message came back");
        s.check_invariants().unwrap();
        let receipts: Vec<&Receipt> = again.iter().map(|d| &d.receipt).collect();
        assert!(matches!(ack(&mut s, T0 + 4 + 1_001, &receipts), Ok(Outcome::Acked { count: 101 })));
        assert_eq!(stats(&s, "q").ready + stats(&s, "q").leased, 0);
        s.check_invariants().unwrap();
    }
}
