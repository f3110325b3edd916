//! `apply` is total: any command at any entry time either applies or is
//! rejected, never panics, and two replicas applying the same entries end
//! byte-identical (PRODUCT.md G8).
//!
//! The model test (`model.rs`) drives realistic workloads and compares
//! answers with a reference; this one throws raw values at `apply` — entry
//! times anywhere in `u64` (near `u64::MAX` above all, where `now + lease`
//! used to overflow and crash every replica on every restart), durations at
//! and past every limit, unknown queues and receipts — and checks only that
//! nothing panics, the state's invariants hold, and replicas agree.

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;
use raftq_core::limits::*;
use raftq_core::{Command, ConfigUpdate, NewMessage, Order, QueueState, Receipt};

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just("a".to_string()),
        4 => Just("dlq".to_string()),
        1 => Just(String::new()),
        1 => Just("bad name".to_string()),
        1 => Just("x".repeat(QUEUE_NAME_BYTES_MAX + 1)),
    ]
}

/// Durations and times: small, at the limits, anywhere, and near the top.
fn big_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..5_000,
        2 => prop_oneof![
            Just(LEASE_MS_MAX), Just(DELAY_MS_MAX), Just(MESSAGE_TTL_MS_MAX),
            Just(DEDUP_WINDOW_MS_MAX), Just(BACKOFF_MS_MAX),
        ],
        1 => any::<u64>(),
        2 => (u64::MAX - 100_000)..=u64::MAX,
    ]
}

fn entry_time() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 0u64..100_000,
        1 => any::<u64>(),
        3 => (u64::MAX - 10_000_000)..=u64::MAX,
    ]
}

fn config_update() -> impl Strategy<Value = ConfigUpdate> {
    (
        prop::option::of(prop_oneof![Just(Order::Fifo), Just(Order::Lifo)]),
        prop::option::of(big_u64()),
        prop::option::of(prop_oneof![Just(0u32), Just(1u32), any::<u32>()]),
        prop::option::of(prop::option::of(name())),
        prop::option::of(big_u64()),
        prop::option::of(prop_oneof![Just(0u64), 1u64..5, any::<u64>()]),
        prop::option::of(big_u64()),
        prop::option::of(big_u64()),
        prop::option::of(big_u64()),
        prop::option::of(big_u64()),
    )
        .prop_map(
            |(order, lease_ms, max_deliveries, dead_letter_queue, ttl, max_length, delay, dedup, base, max)| {
                ConfigUpdate {
                    order,
                    lease_ms,
                    max_deliveries,
                    dead_letter_queue,
                    message_ttl_ms: ttl,
                    max_length,
                    default_delay_ms: delay,
                    dedup_window_ms: dedup,
                    backoff_base_ms: base,
                    backoff_max_ms: max,
                    ..ConfigUpdate::default()
                }
            },
        )
}

fn receipt() -> impl Strategy<Value = Receipt> {
    (name(), prop_oneof![3 => 0u64..12, 1 => any::<u64>()], prop_oneof![3 => 0u32..4, 1 => any::<u32>()])
        .prop_map(|(queue, message_id, attempt)| Receipt { queue, message_id, attempt })
}

fn new_message() -> impl Strategy<Value = NewMessage> {
    (
        prop_oneof![Just(0usize), 1usize..64],
        prop::option::of(big_u64()),
        prop::option::of(prop_oneof![Just("k1".to_string()), Just("k2".to_string()), Just(String::new())]),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(len, delay_ms, idempotency_key, attribute)| NewMessage {
            body: Bytes::from(vec![7u8; len]),
            attributes: if attribute { BTreeMap::from([("k".into(), "v".into())]) } else { BTreeMap::new() },
            delay_ms,
            idempotency_key,
        })
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        3 => (name(), config_update()).prop_map(|(name, config)| Command::CreateQueue { name, config }),
        2 => (name(), config_update()).prop_map(|(name, update)| Command::UpdateQueue { name, update }),
        1 => name().prop_map(|name| Command::DeleteQueue { name }),
        1 => name().prop_map(|name| Command::PurgeQueue { name }),
        6 => (name(), prop::collection::vec(new_message(), 0..4))
            .prop_map(|(queue, messages)| Command::Publish { queue, messages }),
        5 => (name(), prop_oneof![Just(0u32), 1u32..5, any::<u32>()], prop::option::of(big_u64()))
            .prop_map(|(queue, max_messages, lease_ms)| Command::Receive { queue, max_messages, lease_ms }),
        3 => prop::collection::vec(receipt(), 0..3).prop_map(|receipts| Command::Ack { receipts }),
        3 => (receipt(), prop::option::of(big_u64()), any::<bool>())
            .prop_map(|(receipt, delay_ms, dead_letter)| Command::Nack {
                receipt, delay_ms, dead_letter, reason: "r".into(),
            }),
        2 => (receipt(), big_u64()).prop_map(|(receipt, lease_ms)| Command::ExtendLease { receipt, lease_ms }),
        1 => (name(), prop_oneof![Just(0u32), 1u32..5, any::<u32>()])
            .prop_map(|(queue, max_messages)| Command::Redrive { queue, max_messages }),
        2 => Just(Command::Tick),
    ]
}

proptest! {
    // PROPTEST_CASES raises the count (ProptestConfig::default reads it).
    #![proptest_config(ProptestConfig { cases: ProptestConfig::default().cases.max(400), ..ProptestConfig::default() })]

    #[test]
    fn apply_never_panics_and_replicas_agree(
        entries in prop::collection::vec((entry_time(), command()), 1..60),
    ) {
        let mut first = QueueState::new();
        let mut second = QueueState::new();
        let mut latest_ms = 0;
        for (time_ms, command) in &entries {
            let a = first.apply(*time_ms, command);
            let b = second.apply(*time_ms, command);
            prop_assert_eq!(a, b);
            latest_ms = latest_ms.max(*time_ms);
            prop_assert_eq!(first.now_ms(), latest_ms, "time is the latest entry time, never earlier");
        }
        prop_assert_eq!(first.digest(), second.digest());
        if let Err(broken) = first.check_invariants() {
            return Err(TestCaseError::fail(broken));
        }
        // A snapshot of such a state restores to the same digest.
        let restored = QueueState::from_snapshot(&first.to_snapshot()).expect("own snapshot restores");
        prop_assert_eq!(restored.digest(), first.digest());
    }
}

/// The case that crashed every replica: an entry stamped near `u64::MAX`
/// while messages are leased, delayed and expiring.
#[test]
fn entry_time_at_the_top_of_u64_applies() {
    let mut state = QueueState::new();
    let config = ConfigUpdate { message_ttl_ms: Some(60_000), ..ConfigUpdate::default() };
    state.apply(1_000, &Command::CreateQueue { name: "a".into(), config }).unwrap();
    let message = NewMessage {
        body: Bytes::from_static(b"x"),
        attributes: BTreeMap::new(),
        delay_ms: None,
        idempotency_key: Some("k".into()),
    };
    state.apply(1_000, &Command::Publish { queue: "a".into(), messages: vec![message.clone(); 1] }).unwrap();
    let top = u64::MAX - 5;
    state.apply(top, &Command::Publish { queue: "a".into(), messages: vec![message] }).unwrap();
    state.apply(top, &Command::Receive { queue: "a".into(), max_messages: 10, lease_ms: Some(LEASE_MS_MAX) }).unwrap();
    state.apply(u64::MAX, &Command::Tick).unwrap();
    assert_eq!(state.now_ms(), u64::MAX);
    state.check_invariants().unwrap();
}
