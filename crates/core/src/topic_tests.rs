//! Topics: bindings, filters, fan-out publish (all or none), topic dedup,
//! and how they interplay with queue deletion, through `apply` and reads.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::limits::*;
use crate::*;

const T0: u64 = 1_000_000;

fn msg(body: &str, attributes: &[(&str, &str)]) -> NewMessage {
    NewMessage {
        body: Bytes::copy_from_slice(body.as_bytes()),
        attributes: attributes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        delay_ms: None,
        idempotency_key: None,
    }
}

fn keyed(body: &str, key: &str) -> NewMessage {
    NewMessage { idempotency_key: Some(key.into()), ..msg(body, &[]) }
}

fn ok(s: &mut QueueState, t: u64, command: Command) -> Outcome {
    s.apply(t, &command).unwrap_or_else(|e| panic!("{command:?}: {e}"))
}

fn queue(s: &mut QueueState, name: &str, config: ConfigUpdate) {
    ok(s, T0, Command::CreateQueue { name: name.into(), config });
}

fn topic(s: &mut QueueState, name: &str, config: TopicConfig) {
    ok(s, T0, Command::CreateTopic { name: name.into(), config });
}

fn bind(s: &mut QueueState, topic: &str, queue: &str, conditions: Vec<Condition>) -> Response {
    s.apply(T0, &Command::Bind { topic: topic.into(), queue: queue.into(), filter: Filter { conditions } })
}

fn cond(key: &str, test: Test) -> Condition {
    Condition { key: key.into(), test }
}

fn publish(
    s: &mut QueueState,
    t: u64,
    topic: &str,
    messages: Vec<NewMessage>,
) -> Result<Vec<TopicPublishResult>, QueueError> {
    match s.apply(t, &Command::PublishTopic { topic: topic.into(), messages })? {
        Outcome::TopicPublished(results) => Ok(results),
        other => panic!("publish to a topic answered {other:?}"),
    }
}

fn depth(s: &QueueState, queue: &str) -> u64 {
    let stats = s.queue_info(queue).unwrap().stats;
    stats.ready + stats.delayed + stats.leased + stats.dead
}

fn bodies(s: &QueueState, queue: &str) -> Vec<String> {
    let page = s.peek(queue, StateFilter::Any, 0, 1_000).unwrap();
    page.messages.iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()).collect()
}

/// Three queues bound to topic `t`: `all` with no filter, `eu` for
/// region = eu, `big` for size one of (l, xl) and no `test` attribute.
fn routed() -> QueueState {
    let mut s = QueueState::new();
    for name in ["all", "eu", "big", "other"] {
        queue(&mut s, name, ConfigUpdate::default());
    }
    topic(&mut s, "t", TopicConfig::default());
    bind(&mut s, "t", "all", vec![]).unwrap();
    bind(&mut s, "t", "eu", vec![cond("region", Test::Equals("eu".into()))]).unwrap();
    let big = vec![cond("size", Test::OneOf(vec!["l".into(), "xl".into()])), cond("test", Test::NotExists)];
    bind(&mut s, "t", "big", big).unwrap();
    s
}

#[test]
fn a_topic_publish_stores_one_copy_in_each_matching_queue_and_none_elsewhere() {
    let mut s = routed();
    let results = publish(
        &mut s,
        T0 + 1,
        "t",
        vec![
            msg("plain", &[]),
            msg("eu-xl", &[("region", "eu"), ("size", "xl")]),
            msg("xl-test", &[("size", "xl"), ("test", "1")]),
            msg("us-l", &[("region", "us"), ("size", "l")]),
        ],
    )
    .unwrap();
    let queues = |r: &TopicPublishResult| r.copies.iter().map(|c| c.queue.clone()).collect::<Vec<_>>();
    assert_eq!(queues(&results[0]), ["all"]);
    assert_eq!(queues(&results[1]), ["all", "big", "eu"], "copies come in queue name order");
    assert_eq!(queues(&results[2]), ["all"]);
    assert_eq!(queues(&results[3]), ["all", "big"]);
    assert_eq!(bodies(&s, "all"), ["plain", "eu-xl", "xl-test", "us-l"]);
    assert_eq!(bodies(&s, "eu"), ["eu-xl"]);
    assert_eq!(bodies(&s, "big"), ["eu-xl", "us-l"]);
    assert_eq!(depth(&s, "other"), 0);
    // Each copy is a message of its queue, under the id the reply names;
    // every id (topic-level ones too) is unique.
    let mut ids = Vec::new();
    for result in &results {
        ids.push(result.id);
        for copy in &result.copies {
            assert!(!copy.duplicate);
            assert_eq!(s.inspect(&copy.queue, copy.id).unwrap().id, copy.id);
            ids.push(copy.id);
        }
    }
    let unique: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
    let stats = s.topic_info("t").unwrap().stats;
    assert_eq!((stats.published_total, stats.routed_copies_total, stats.unrouted_total), (4, 7, 0));
    s.check_invariants().unwrap();
}

#[test]
fn filters_test_equality_membership_presence_absence_and_prefix() {
    let attributes: BTreeMap<String, String> =
        [("kind", "order.created"), ("region", "eu")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let filter = |conditions: Vec<Condition>| Filter { conditions }.matches(&attributes);
    assert!(filter(vec![]), "an empty filter matches everything");
    assert!(filter(vec![cond("kind", Test::Prefix("order.".into()))]));
    assert!(!filter(vec![cond("kind", Test::Prefix("invoice.".into()))]));
    assert!(filter(vec![cond("region", Test::Exists), cond("tenant", Test::NotExists)]));
    assert!(!filter(vec![cond("region", Test::NotExists)]));
    assert!(!filter(vec![cond("tenant", Test::Exists)]));
    assert!(!filter(vec![cond("tenant", Test::Equals("".into()))]), "an absent attribute equals nothing");
    assert!(filter(vec![cond("region", Test::OneOf(vec!["us".into(), "eu".into()]))]));
    assert!(!filter(vec![cond("region", Test::Equals("eu".into())), cond("kind", Test::Equals("x".into()))]));
}

#[test]
fn a_full_queue_refuses_the_whole_topic_publish_and_nothing_is_stored_anywhere() {
    let mut s = routed();
    ok(
        &mut s,
        T0,
        Command::UpdateQueue { name: "eu".into(), update: ConfigUpdate { max_length: Some(1), ..Default::default() } },
    );
    publish(&mut s, T0 + 1, "t", vec![msg("first", &[("region", "eu")])]).unwrap();
    let before = s.clone();
    let refused = publish(&mut s, T0 + 2, "t", vec![msg("a", &[]), msg("b", &[("region", "eu")])]).unwrap_err();
    assert_eq!(refused.reason(), Reason::QueueFull);
    match &refused {
        QueueError::ResourceExhausted { limit: Some(limit), .. } => {
            assert_eq!((limit.name.as_str(), limit.queue.as_deref()), ("max_length", Some("eu")));
        }
        other => panic!("{other:?}"),
    }
    // Only time moved: the same state as a tick at that time.
    let mut ticked = before;
    ticked.apply(T0 + 2, &Command::Tick).unwrap();
    assert_eq!(s.digest(), ticked.digest());
    assert_eq!(bodies(&s, "all"), ["first"]);
    // A message too large for one bound queue refuses the publish too.
    ok(
        &mut s,
        T0,
        Command::UpdateQueue {
            name: "big".into(),
            update: ConfigUpdate { max_message_bytes: Some(4), ..Default::default() },
        },
    );
    let refused = publish(&mut s, T0 + 3, "t", vec![msg("small", &[]), msg("large", &[("size", "l")])]).unwrap_err();
    assert_eq!((refused.reason(), refused.field()), (Reason::MessageTooLarge, Some("messages[1].body")));
    assert_eq!(bodies(&s, "all"), ["first"]);
    s.check_invariants().unwrap();
}

#[test]
fn an_unrouted_message_is_counted_or_refused_when_the_topic_requires_a_route() {
    let mut s = QueueState::new();
    queue(&mut s, "eu", ConfigUpdate::default());
    topic(&mut s, "loose", TopicConfig::default());
    topic(&mut s, "strict", TopicConfig { require_route: true, ..TopicConfig::default() });
    for t in ["loose", "strict"] {
        bind(&mut s, t, "eu", vec![cond("region", Test::Equals("eu".into()))]).unwrap();
    }
    let results = publish(&mut s, T0, "loose", vec![msg("us", &[("region", "us")])]).unwrap();
    assert!(results[0].copies.is_empty() && !results[0].duplicate);
    assert_eq!(s.topic_info("loose").unwrap().stats.unrouted_total, 1);
    let refused = publish(&mut s, T0, "strict", vec![msg("eu", &[("region", "eu")]), msg("us", &[("region", "us")])])
        .unwrap_err();
    assert_eq!((refused.reason(), refused.field()), (Reason::Unroutable, Some("messages[1]")));
    assert!(matches!(refused, QueueError::FailedPrecondition { .. }));
    assert_eq!(depth(&s, "eu"), 0, "the routable message of the refused batch was not stored either");
    s.check_invariants().unwrap();
}

#[test]
fn a_retried_topic_publish_is_a_duplicate_and_stores_nothing_in_any_queue() {
    let mut s = routed();
    let first = publish(&mut s, T0 + 1, "t", vec![keyed("a", "k1"), keyed("b", "k2")]).unwrap();
    // The retry: same keys, and one repeated inside the batch.
    let retry = publish(&mut s, T0 + 2, "t", vec![keyed("a", "k1"), keyed("c", "k3"), keyed("c", "k3")]).unwrap();
    assert!(retry[0].duplicate && retry[0].copies.is_empty());
    assert_eq!(retry[0].id, first[0].id);
    assert!(!retry[1].duplicate && retry[2].duplicate && retry[2].id == retry[1].id);
    assert_eq!(bodies(&s, "all"), ["a", "b", "c"]);
    assert_eq!(s.topic_info("t").unwrap().stats.duplicates_total, 2);
    // Past the topic's window, the key is new again.
    let later = T0 + 2 + DEDUP_WINDOW_MS_DEFAULT;
    let again = publish(&mut s, later, "t", vec![keyed("a", "k1")]).unwrap();
    assert!(!again[0].duplicate && again[0].id != first[0].id);
    s.check_invariants().unwrap();
}

#[test]
fn a_copy_follows_its_queue_dedup_rules() {
    let mut s = routed();
    // The key was published to `eu` directly first.
    let direct = match ok(&mut s, T0, Command::Publish { queue: "eu".into(), messages: vec![keyed("direct", "k")] }) {
        Outcome::Published(results) => results[0].id,
        other => panic!("{other:?}"),
    };
    let mut message = keyed("via-topic", "k");
    message.attributes.insert("region".into(), "eu".into());
    let results = publish(&mut s, T0 + 1, "t", vec![message]).unwrap();
    let copies: BTreeMap<_, _> = results[0].copies.iter().map(|c| (c.queue.as_str(), (c.id, c.duplicate))).collect();
    assert_eq!(copies["eu"], (direct, true), "eu's own window answered with its message");
    assert!(!copies["all"].1);
    assert_eq!(bodies(&s, "eu"), ["direct"]);
    assert_eq!(s.topic_info("t").unwrap().stats.routed_copies_total, 1);
    s.check_invariants().unwrap();
}

#[test]
fn bindings_follow_queue_and_topic_deletion() {
    let mut s = routed();
    publish(&mut s, T0, "t", vec![msg("x", &[("region", "eu")])]).unwrap();
    // Deleting a bound queue removes its binding.
    ok(&mut s, T0, Command::DeleteQueue { name: "eu".into() });
    let info = s.topic_info("t").unwrap();
    assert_eq!(info.bindings.iter().map(|b| b.queue.as_str()).collect::<Vec<_>>(), ["all", "big"]);
    queue(&mut s, "eu", ConfigUpdate::default());
    let results = publish(&mut s, T0, "t", vec![msg("y", &[("region", "eu")])]).unwrap();
    assert_eq!(results[0].copies.len(), 1, "a new queue of the old name is not bound");
    // Binding again replaces the filter.
    bind(&mut s, "t", "all", vec![cond("region", Test::Equals("us".into()))]).unwrap();
    assert_eq!(s.topic_info("t").unwrap().bindings.len(), 2);
    let results = publish(&mut s, T0, "t", vec![msg("z", &[("region", "eu")])]).unwrap();
    assert!(results[0].copies.is_empty());
    // Unbinding what is not bound, or binding what does not exist, is NOT_FOUND.
    let missing = s.apply(T0, &Command::Unbind { topic: "t".into(), queue: "eu".into() }).unwrap_err();
    assert_eq!(missing.reason(), Reason::BindingNotFound);
    assert_eq!(bind(&mut s, "t", "nope", vec![]).unwrap_err().reason(), Reason::QueueNotFound);
    assert_eq!(bind(&mut s, "nope", "eu", vec![]).unwrap_err().reason(), Reason::TopicNotFound);
    // Deleting the topic leaves the queues and their messages.
    let all_before = depth(&s, "all");
    assert_eq!(
        ok(&mut s, T0, Command::DeleteTopic { name: "t".into() }),
        Outcome::TopicDeleted { bindings_removed: 2 }
    );
    assert_eq!(depth(&s, "all"), all_before);
    assert_eq!(s.topic_info("t").unwrap_err().reason(), Reason::TopicNotFound);
    let gone = publish(&mut s, T0, "t", vec![msg("late", &[])]).unwrap_err();
    assert_eq!(gone.reason(), Reason::TopicNotFound);
    // A new topic of the same name starts empty.
    topic(&mut s, "t", TopicConfig::default());
    assert!(s.topic_info("t").unwrap().bindings.is_empty());
    assert!(matches!(
        s.apply(T0, &Command::CreateTopic { name: "t".into(), config: TopicConfig::default() }),
        Err(QueueError::AlreadyExists { kind: Reason::TopicExists, .. })
    ));
    s.check_invariants().unwrap();
}

#[test]
fn a_deleted_topics_idempotency_keys_are_cleaned_up() {
    let mut s = routed();
    publish(&mut s, T0, "t", (0..10).map(|i| keyed("m", &format!("k{i}"))).collect()).unwrap();
    // The topic's ten, and the ten copies' in queue `all` (its own window).
    assert_eq!(s.dedup_keys(), 20);
    ok(&mut s, T0, Command::DeleteTopic { name: "t".into() });
    ok(&mut s, T0, Command::Tick);
    assert_eq!(s.dedup_keys(), 10, "the topic's keys are gone, the queue's stay");
    s.check_invariants().unwrap();
}

/// A topic publish forgets expired keys of the topic and of every bound
/// queue it stores a copy in; the bound on keys forgotten is per applied
/// entry, not per owner (it was per owner: 1,000 × (1 + bound queues) in
/// one entry, up to a million with a topic's thousand bindings).
#[test]
fn a_topic_publish_forgets_a_bounded_number_of_expired_keys_over_all_owners() {
    let mut s = QueueState::new();
    let queues = ["q0", "q1", "q2"];
    let per_owner = DEDUP_EXPIRE_PER_APPLY_MAX + 1;
    let keyed_batch = |prefix: &str, range: std::ops::Range<usize>| -> Vec<NewMessage> {
        range.map(|i| keyed("m", &format!("{prefix}-{i}"))).collect()
    };
    topic(&mut s, "t", TopicConfig::default());
    // The topic's own keys, before any binding (the messages go nowhere).
    for start in (0..per_owner).step_by(PUBLISH_MESSAGES_MAX) {
        publish(&mut s, T0, "t", keyed_batch("t", start..(start + PUBLISH_MESSAGES_MAX).min(per_owner))).unwrap();
    }
    for name in queues {
        queue(&mut s, name, ConfigUpdate::default());
        bind(&mut s, "t", name, vec![]).unwrap();
        for start in (0..per_owner).step_by(PUBLISH_MESSAGES_MAX) {
            let messages = keyed_batch(name, start..(start + PUBLISH_MESSAGES_MAX).min(per_owner));
            ok(&mut s, T0, Command::Publish { queue: name.into(), messages });
        }
    }
    let stored = 4 * per_owner;
    assert_eq!(s.dedup_keys(), stored);
    // Every window has passed: each publish forgets at most the bound.
    let later = T0 + DEDUP_WINDOW_MS_DEFAULT + 1;
    publish(&mut s, later, "t", vec![msg("late", &[])]).unwrap();
    assert_eq!(s.dedup_keys(), stored - DEDUP_EXPIRE_PER_APPLY_MAX, "one entry forgot more than its bound");
    s.check_invariants().unwrap();
    // The rest go with the next publishes, the same bound each.
    let mut publishes = 1;
    while s.dedup_keys() > 0 {
        let before = s.dedup_keys();
        publish(&mut s, later + publishes, "t", vec![msg("late", &[])]).unwrap();
        assert!(before - s.dedup_keys() <= DEDUP_EXPIRE_PER_APPLY_MAX);
        publishes += 1;
        assert!(publishes <= 5, "expired keys are left behind");
    }
    assert_eq!(publishes, stored.div_ceil(DEDUP_EXPIRE_PER_APPLY_MAX) as u64);
    s.check_invariants().unwrap();
}

#[test]
fn binding_counts_and_fan_out_are_bounded() {
    let mut s = QueueState::new();
    queue(&mut s, "q", ConfigUpdate::default());
    for i in 0..BINDINGS_PER_QUEUE_MAX {
        topic(&mut s, &format!("t{i}"), TopicConfig::default());
        bind(&mut s, &format!("t{i}"), "q", vec![]).unwrap();
    }
    topic(&mut s, "one-more", TopicConfig::default());
    let over = bind(&mut s, "one-more", "q", vec![]).unwrap_err();
    match over {
        QueueError::ResourceExhausted { kind: Reason::LimitReached, limit: Some(limit), .. } => {
            assert_eq!((limit.name.as_str(), limit.value), ("bindings_per_queue", BINDINGS_PER_QUEUE_MAX as u64));
        }
        other => panic!("{other:?}"),
    }
    // Fan-out × batch over TOPIC_COPIES_MAX is refused whole.
    let fan_out = TOPIC_COPIES_MAX / PUBLISH_MESSAGES_MAX + 1;
    for i in 0..fan_out {
        queue(&mut s, &format!("f{i}"), ConfigUpdate::default());
        bind(&mut s, "one-more", &format!("f{i}"), vec![]).unwrap();
    }
    let batch = (0..PUBLISH_MESSAGES_MAX).map(|_| msg("m", &[])).collect();
    let refused = publish(&mut s, T0, "one-more", batch).unwrap_err();
    assert_eq!(refused.reason(), Reason::RequestTooLarge);
    // Refused at the first message past the bound; later ones are not routed.
    let first_over = TOPIC_COPIES_MAX / fan_out;
    assert!(refused.to_string().contains(&format!("messages[{first_over}]")), "{refused}");
    assert_eq!(depth(&s, "f0"), 0);
    s.check_invariants().unwrap();
}

#[test]
fn bad_topic_commands_name_the_field() {
    let mut s = routed();
    let field = |r: Response| r.unwrap_err().field().map(str::to_string);
    assert_eq!(
        field(s.apply(T0, &Command::CreateTopic { name: "a b".into(), config: TopicConfig::default() })).as_deref(),
        Some("topic")
    );
    let long = TopicConfig { dedup_window_ms: DEDUP_WINDOW_MS_MAX + 1, ..TopicConfig::default() };
    assert_eq!(
        field(s.apply(T0, &Command::CreateTopic { name: "x".into(), config: long })).as_deref(),
        Some("dedup_window_ms")
    );
    let too_many = (0..=FILTER_CONDITIONS_MAX).map(|i| cond(&format!("k{i}"), Test::Exists)).collect();
    assert_eq!(field(bind(&mut s, "t", "all", too_many)).as_deref(), Some("filter.conditions"));
    assert_eq!(
        field(bind(&mut s, "t", "all", vec![cond("", Test::Exists)])).as_deref(),
        Some("filter.conditions[0].key")
    );
    assert_eq!(
        field(bind(&mut s, "t", "all", vec![cond("k", Test::OneOf(vec![]))])).as_deref(),
        Some("filter.conditions[0].one_of")
    );
    let wide = vec![cond("k", Test::OneOf((0..FILTER_VALUES_MAX).map(|i| format!("{i:0>100}")).collect()))];
    let over = bind(&mut s, "t", "all", wide).unwrap_err();
    assert_eq!((over.reason(), over.field()), (Reason::RequestTooLarge, Some("filter")));
    let empty = s.apply(T0, &Command::PublishTopic { topic: "t".into(), messages: vec![] });
    assert_eq!(field(empty).as_deref(), Some("messages"));
    // The bindings are as they were.
    assert_eq!(s.topic_info("t").unwrap(), routed().topic_info("t").unwrap());
}

#[test]
fn topics_list_by_prefix_in_pages() {
    let mut s = QueueState::new();
    for name in ["a.1", "a.2", "a.3", "b.1"] {
        topic(&mut s, name, TopicConfig::default());
    }
    let (page, next) = s.list_topics("a.", "", 2);
    assert_eq!(page.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["a.1", "a.2"]);
    let (rest, end) = s.list_topics("a.", next.as_deref().unwrap(), 2);
    assert_eq!(rest.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["a.3"]);
    assert_eq!(end, None);
}

/// One step of the fan-out property test.
#[derive(Clone, Debug)]
enum Step {
    /// Publish these messages (attribute `c` = value, maybe keyed) to the topic.
    Publish(Vec<(Option<u8>, Option<u8>)>),
    /// Drain one queue (receive and ack up to 20).
    Drain(usize),
    Rebind(usize, Option<u8>),
    Unbind(usize),
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        6 => proptest::collection::vec((proptest::option::of(0u8..3), proptest::option::weighted(0.5, 0u8..6)), 1..6)
            .prop_map(Step::Publish),
        2 => (0usize..4).prop_map(Step::Drain),
        1 => (0usize..4, proptest::option::of(0u8..3)).prop_map(|(q, v)| Step::Rebind(q, v)),
        1 => (0usize..4).prop_map(Step::Unbind),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
    /// Against a model of which queue should hold what: every accepted
    /// topic publish puts exactly one copy of each fresh message in each
    /// queue whose filter matched and none elsewhere; a refused one (a
    /// small queue full) changes nothing but time; a retried key stores
    /// nothing. Invariants hold throughout.
    #[test]
    fn fan_out_is_all_or_none_and_exact(
        max_lengths in proptest::collection::vec(0u64..8, 4),
        steps in proptest::collection::vec(step(), 1..40),
    ) {
        let mut s = QueueState::new();
        let names = ["q0", "q1", "q2", "q3"];
        let mut filters: Vec<Option<Option<u8>>> = vec![Some(None), Some(Some(0)), Some(Some(1)), None];
        topic(&mut s, "t", TopicConfig::default());
        for (i, name) in names.iter().enumerate() {
            queue(&mut s, name, ConfigUpdate { max_length: Some(max_lengths[i]), ..Default::default() });
        }
        let filter_of = |v: Option<u8>| match v {
            None => vec![],
            Some(v) => vec![cond("c", Test::Equals(v.to_string()))],
        };
        for (i, f) in filters.iter().enumerate() {
            if let Some(v) = f {
                bind(&mut s, "t", names[i], filter_of(*v)).unwrap();
            }
        }
        // The model: what each queue holds (bodies), which keys were seen.
        let mut held: Vec<Vec<String>> = vec![Vec::new(); 4];
        let mut seen_keys = std::collections::BTreeSet::new();
        let mut t = T0;
        for (n, step) in steps.into_iter().enumerate() {
            t += 1;
            match step {
                Step::Publish(specs) => {
                    let messages: Vec<NewMessage> = specs.iter().enumerate().map(|(i, (c, key))| {
                        let attributes: Vec<(String, String)> = c.iter().map(|c| ("c".to_string(), c.to_string())).collect();
                        let refs: Vec<(&str, &str)> = attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                        NewMessage { idempotency_key: key.map(|k| format!("k{k}")), ..msg(&format!("{n}.{i}"), &refs) }
                    }).collect();
                    let before = s.clone();
                    // The model's expectation: fresh messages and their queues.
                    let mut batch_keys = std::collections::BTreeSet::new();
                    let mut want: Vec<Vec<String>> = vec![Vec::new(); 4];
                    for (message, (c, _)) in messages.iter().zip(&specs) {
                        if let Some(k) = &message.idempotency_key
                            && (seen_keys.contains(k) || !batch_keys.insert(k.clone()))
                        {
                            continue;
                        }
                        for (q, f) in filters.iter().enumerate() {
                            if let Some(v) = f && (v.is_none() || *v == *c) {
                                want[q].push(String::from_utf8_lossy(&message.body).into_owned());
                            }
                        }
                    }
                    let fits = (0..4).all(|q| {
                        max_lengths[q] == 0 || held[q].len() + want[q].len() <= max_lengths[q] as usize
                    });
                    match publish(&mut s, t, "t", messages) {
                        Ok(_) => {
                            proptest::prop_assert!(fits, "accepted past a max_length");
                            for q in 0..4 {
                                held[q].append(&mut want[q]);
                            }
                            seen_keys.extend(batch_keys);
                        }
                        Err(e) => {
                            proptest::prop_assert!(!fits, "refused though everything fits: {e:?}");
                            proptest::prop_assert_eq!(e.reason(), Reason::QueueFull);
                            let mut ticked = before;
                            ticked.apply(t, &Command::Tick).unwrap();
                            proptest::prop_assert_eq!(s.digest(), ticked.digest(), "a refused publish changed state");
                        }
                    }
                }
                Step::Drain(q) => {
                    if let Ok(Outcome::Received(deliveries)) = s.apply(t, &Command::Receive { queue: names[q].into(), max_messages: 20, lease_ms: None }) {
                        if !deliveries.is_empty() {
                            let receipts = deliveries.iter().map(|d| d.receipt.clone()).collect();
                            s.apply(t, &Command::Ack { receipts }).unwrap();
                        }
                        let gone: Vec<String> = deliveries.iter().map(|d| String::from_utf8_lossy(&d.message.body).into_owned()).collect();
                        held[q].retain(|b| !gone.contains(b));
                    }
                }
                Step::Rebind(q, v) => {
                    bind(&mut s, "t", names[q], filter_of(v)).unwrap();
                    filters[q] = Some(v);
                }
                Step::Unbind(q) => {
                    let result = s.apply(t, &Command::Unbind { topic: "t".into(), queue: names[q].into() });
                    proptest::prop_assert_eq!(result.is_ok(), filters[q].is_some());
                    filters[q] = None;
                }
            }
            for q in 0..4 {
                proptest::prop_assert_eq!(&bodies(&s, names[q]), &held[q], "queue {}", names[q]);
            }
        }
        s.check_invariants().map_err(proptest::test_runner::TestCaseError::fail)?;
    }
}
