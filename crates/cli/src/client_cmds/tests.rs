//! Argument parsing and output shapes of the client commands (no server).

use std::{collections::HashMap, time::Duration};

use bytes::Bytes;
use clap::{CommandFactory as _, Parser};
use raftq_client::{
    ClusterStatus, HistoryEvent, Member, Membership, Message, MessageState, NodeRole, NodeStatus, Order,
    OutgoingMessage, QueueConfig, QueueInfo, QueueStats, Receipt, ResolvedQueueConfig, StateDigest,
};
use serde_json::json;
use tokio::io::AsyncWriteExt as _;

use super::{
    ClientCommand, ClusterCommand, DlqCommand, QueueCommand, cluster,
    messages::{Batches, Line, StateArg, StdinLines},
    output,
};

#[derive(Debug, Parser)]
struct TestCli {
    #[command(subcommand)]
    command: ClientCommand,
}

fn parse(args: &[&str]) -> Result<ClientCommand, clap::Error> {
    TestCli::try_parse_from(std::iter::once("raftq").chain(args.iter().copied())).map(|cli| cli.command)
}

fn ok(args: &[&str]) -> ClientCommand {
    parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

#[test]
fn the_command_definitions_are_consistent() {
    TestCli::command().debug_assert();
}

#[test]
fn queue_create_maps_every_flag() {
    let ClientCommand::Queue(QueueCommand::Create { name, config }) = ok(&[
        "queue",
        "create",
        "orders",
        "--lease",
        "30s",
        "--max-deliveries",
        "5",
        "--dead-letter-queue",
        "orders.dlq",
        "--ttl",
        "1h",
        "--max-length",
        "1000",
        "--max-bytes",
        "1048576",
        "--order",
        "lifo",
        "--delay",
        "250ms",
        "--dedup-window",
        "5m",
        "--backoff-base",
        "1s",
        "--backoff-max",
        "1m",
        "--max-message-bytes",
        "2048",
    ]) else {
        panic!("not queue create");
    };
    assert_eq!(name, "orders");
    let config = config.to_config();
    assert_eq!(config.lease, Some(Duration::from_secs(30)));
    assert_eq!(config.max_deliveries, Some(5));
    assert_eq!(config.dead_letter_queue.as_deref(), Some("orders.dlq"));
    assert_eq!(config.message_ttl, Some(Duration::from_secs(3_600)));
    assert_eq!((config.max_length, config.max_bytes), (Some(1000), Some(1_048_576)));
    assert_eq!(config.order, Some(Order::Lifo));
    assert_eq!(config.default_delay, Some(Duration::from_millis(250)));
    assert_eq!(config.dedup_window, Some(Duration::from_secs(300)));
    assert_eq!(
        (config.backoff_base, config.backoff_max),
        (Some(Duration::from_secs(1)), Some(Duration::from_secs(60)))
    );
    assert_eq!(config.max_message_bytes, Some(2048));
}

#[test]
fn queue_update_sets_only_what_is_given() {
    let ClientCommand::Queue(QueueCommand::Update { config, .. }) = ok(&["queue", "update", "q", "--lease", "5m"])
    else {
        panic!("not queue update");
    };
    assert_eq!(config.to_config(), QueueConfig::default().lease(Duration::from_secs(300)));
    assert!(matches!(ok(&["queue", "list"]), ClientCommand::Queue(QueueCommand::List { prefix }) if prefix.is_empty()));
    assert!(
        matches!(ok(&["queue", "list", "--prefix", "ord"]), ClientCommand::Queue(QueueCommand::List { prefix }) if prefix == "ord")
    );
    for args in [&["queue", "get", "q"][..], &["queue", "delete", "q"], &["queue", "purge", "q"]] {
        ok(args);
    }
}

#[test]
fn bad_arguments_are_refused() {
    for args in [
        &["queue", "create", "q", "--lease", "soon"][..],
        &["queue", "create", "q", "--order", "random"],
        &["publish", "q", "--attr", "novalue"],
        &["publish", "q", "--attr", "=v"],
        &["consume", "q"],
        &["consume", "q", "--max", "0"],
        &["ack"],
        &["ack", "q/1"],
        &["nack", "q/x/1"],
        &["peek", "q", "--state", "gone"],
        &["dlq", "redrive", "q", "--rate", "0/s"],
        &["dlq", "redrive", "q", "--rate", "fast"],
        &["cluster", "add", "4"],
        &["cluster", "promote", "x"],
    ] {
        assert!(parse(args).is_err(), "{args:?} should fail");
    }
}

#[test]
fn publish_flags() {
    let ClientCommand::Publish(args) =
        ok(&["publish", "q", "a", "b", "--attr", "k=v=w", "--attr", "x=", "--delay", "2s", "--key", "k1"])
    else {
        panic!("not publish");
    };
    assert_eq!(args.content.bodies, ["a", "b"]);
    assert_eq!(args.content.attributes, [("k".into(), "v=w".into()), ("x".into(), String::new())]);
    assert_eq!(args.content.delay, Some(Duration::from_secs(2)));
    assert_eq!(args.content.key.as_deref(), Some("k1"));
}

#[test]
fn consume_defaults() {
    let ClientCommand::Consume(args) = ok(&["consume", "q", "--max", "10"]) else { panic!("not consume") };
    assert_eq!((args.max, args.wait, args.no_ack, args.lease), (10, Duration::from_secs(5), false, None));
    let ClientCommand::Consume(args) = ok(&["consume", "q", "--max", "1", "--wait", "0s", "--no-ack", "--lease", "1m"])
    else {
        panic!("not consume")
    };
    assert_eq!((args.wait, args.no_ack, args.lease), (Duration::ZERO, true, Some(Duration::from_secs(60))));
}

#[test]
fn receipts_ack_nack_peek_inspect_dlq() {
    let ClientCommand::Ack(args) = ok(&["ack", "q/1/1", "other.q/22/3"]) else { panic!("not ack") };
    assert_eq!(args.receipts[1], Receipt { queue: "other.q".into(), message_id: 22, delivery_count: 3 });
    let ClientCommand::Nack(args) = ok(&["nack", "q/7/2", "--delay", "10s", "--dead-letter", "--reason", "boom"])
    else {
        panic!("not nack")
    };
    assert_eq!((args.receipt.message_id, args.delay, args.dead_letter), (7, Some(Duration::from_secs(10)), true));
    assert_eq!(args.reason, "boom");
    let ClientCommand::Peek(args) = ok(&["peek", "q"]) else { panic!("not peek") };
    assert_eq!((args.state, args.limit), (StateArg::Any, 100));
    let ClientCommand::Peek(args) = ok(&["peek", "q", "--state", "dead", "--limit", "5"]) else { panic!("not peek") };
    assert_eq!((args.state.to_state(), args.limit), (Some(MessageState::Dead), 5));
    assert_eq!(StateArg::Any.to_state(), None);
    assert!(matches!(ok(&["inspect", "q", "42"]), ClientCommand::Inspect(a) if a.id == 42));
    let ClientCommand::Dlq(DlqCommand::Redrive { queue, max, rate }) =
        ok(&["dlq", "redrive", "q.dlq", "--max", "10", "--rate", "100/s"])
    else {
        panic!("not redrive")
    };
    assert_eq!((queue.as_str(), max, rate), ("q.dlq", 10, Some(100)));
    assert!(matches!(
        ok(&["dlq", "redrive", "q", "--rate", "7"]),
        ClientCommand::Dlq(DlqCommand::Redrive { rate: Some(7), max: 0, .. })
    ));
}

#[test]
fn cluster_commands() {
    assert!(matches!(ok(&["cluster", "status"]), ClientCommand::Cluster(ClusterCommand::Status { node: None })));
    assert!(matches!(
        ok(&["cluster", "status", "--node", "127.0.0.1:7102"]),
        ClientCommand::Cluster(ClusterCommand::Status { node: Some(addr) }) if addr == "127.0.0.1:7102"
    ));
    assert!(matches!(
        ok(&["cluster", "add", "4", "127.0.0.1:7004", "127.0.0.1:7204"]),
        ClientCommand::Cluster(ClusterCommand::Add { id: 4, addr, peer_addr })
            if addr == "127.0.0.1:7004" && peer_addr == "127.0.0.1:7204"
    ));
    assert!(matches!(ok(&["cluster", "promote", "4"]), ClientCommand::Cluster(ClusterCommand::Promote { id: 4 })));
    assert!(matches!(ok(&["cluster", "remove", "2"]), ClientCommand::Cluster(ClusterCommand::Remove { id: 2 })));
    assert!(matches!(
        ok(&["cluster", "transfer-leader", "3"]),
        ClientCommand::Cluster(ClusterCommand::TransferLeader { id: 3 })
    ));
    assert!(matches!(ok(&["cluster", "snapshot"]), ClientCommand::Cluster(ClusterCommand::Snapshot { node: None })));
}

fn view(id: u64, body: &'static [u8]) -> Message {
    Message {
        message_id: id,
        body: Bytes::from_static(body),
        attributes: HashMap::from([("k".to_owned(), "v".to_owned())]),
        state: MessageState::Leased,
        delivery_count: 2,
        published_at_ms: 0,
        visible_at_ms: 0,
        lease_expires_at_ms: 0,
        expires_at_ms: 0,
        idempotency_key: None,
        dead_letter: None,
        history: vec![],
    }
}

#[test]
fn deliveries_print_text_or_base64() {
    let receipt = Receipt { queue: "q".into(), message_id: 9, delivery_count: 2 };
    let text = output::delivery_json(&view(9, b"hello"), &receipt, 1234);
    assert_eq!(text["message_id"], 9);
    assert_eq!(text["body"], "hello");
    assert_eq!(text["body_base64"], false);
    assert_eq!(text["delivery_count"], 2);
    assert_eq!(text["attributes"], json!({ "k": "v" }));
    assert_eq!(text["receipt"], "q/9/2");
    assert_eq!(text["receipt"].as_str().unwrap().parse::<Receipt>().unwrap(), receipt);
    let binary = output::delivery_json(&view(9, b"\xff\x00a"), &receipt, 1234);
    assert_eq!(binary["body"], "/wBh");
    assert_eq!(binary["body_base64"], true);
    assert_eq!(output::delivery_line(&view(9, b"hello world")), "id=9 delivery=2 hello world");
    assert_eq!(output::delivery_line(&view(9, b"\xff")), "id=9 delivery=2 base64:/w==");
}

#[test]
fn messages_and_history() {
    let mut m = view(5, b"x");
    m.history = vec![
        HistoryEvent::Delivered { at_ms: 1_000, delivery_count: 1, lease_expires_at_ms: 31_000 },
        HistoryEvent::Nacked { at_ms: 2_000, delivery_count: 1, reason: "boom".into() },
    ];
    let j = output::message_json(&m);
    assert_eq!(j["state"], "leased");
    assert_eq!(
        j["history"][0],
        json!({ "at_ms": 1000, "event": "delivered", "delivery_count": 1, "lease_expires_at_ms": 31000 })
    );
    assert_eq!(j["history"][1]["reason"], "boom");
    assert_eq!(j["dead_letter"], serde_json::Value::Null);
    assert_eq!(output::message_line(&m), "id=5 state=leased delivery=2 x");
    let details = output::message_details(&m);
    assert!(details.contains("state:          leased"), "{details}");
    assert!(details.contains("1970-01-01T00:00:02.000Z  nacked (attempt 1): boom"), "{details}");
}

#[test]
fn queues() {
    let info = QueueInfo {
        name: "orders".into(),
        config: ResolvedQueueConfig {
            order: Order::Fifo,
            lease: Duration::from_secs(30),
            dead_letter_queue: None,
            ..ResolvedQueueConfig::default()
        },
        stats: QueueStats { ready: 3, published_total: 7, ..Default::default() },
        created_at_ms: 1,
    };
    let j = output::queue_json(&info);
    assert_eq!(j["name"], "orders");
    assert_eq!(j["config"]["order"], "fifo");
    assert_eq!(j["config"]["lease_ms"], 30_000);
    assert_eq!(j["stats"]["ready"], 3);
    assert_eq!(j["stats"]["published_total"], 7);
    let details = output::queue_details(&info);
    assert!(details.contains("ready 3") && details.contains("lease 30s") && details.contains("dead-letter queue -"));
    let table = output::queue_table(&[info]);
    assert!(table.starts_with("NAME  ") && table.lines().nth(1).unwrap().starts_with("orders"), "{table}");
}

#[test]
fn cluster_status_json_shape() {
    let node = |id, role: NodeRole, voter| NodeStatus {
        node_id: id,
        address: format!("127.0.0.1:710{id}"),
        role,
        voter,
        last_log_index: 10,
        committed_index: 9,
        last_applied_index: 8,
        reachable: true,
        matched_index: (id != 2).then_some(7),
        snapshot_index: 5,
        last_contact: (id == 3).then_some(Duration::from_millis(40)),
    };
    let status = ClusterStatus {
        leader_id: Some(1),
        leader_address: Some("127.0.0.1:7101".into()),
        term: 4,
        nodes: vec![
            node(1, NodeRole::Unknown, true),
            node(2, NodeRole::Follower, true),
            node(3, NodeRole::Unknown, true),
            node(4, NodeRole::Learner, false),
        ],
        node_id: 2,
        digest: Some(StateDigest { applied_index: 8, digest: "ab".repeat(16), full_digest: None }),
        version: "0.1.0".into(),
    };
    let j = cluster::status_json(&status);
    assert_eq!((j["leader"].clone(), j["term"].clone()), (json!(1), json!(4)));
    assert_eq!(j["version"], json!("0.1.0"));
    assert!(cluster::status_table(&status).contains("as seen by node 2 (raftq 0.1.0)"));
    let roles: Vec<&str> = j["nodes"].as_array().unwrap().iter().map(|n| n["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["leader", "follower", "unknown", "learner"]);
    assert_eq!(
        j["nodes"][1],
        json!({ "node_id": 2, "address": "127.0.0.1:7102", "role": "follower", "voter": true,
                "last_applied": 8, "last_log_index": 10, "committed": 9, "snapshot_index": 5, "matched": null,
                "reachable": true, "last_contact_ms": null })
    );
    assert_eq!(j["nodes"][2]["last_contact_ms"], json!(40));
    // Another node's indexes are not known to the answering node: null, and
    // only what the leader replicated to it is reported.
    assert_eq!(
        (j["nodes"][0]["last_applied"].clone(), j["nodes"][0]["matched"].clone()),
        (serde_json::Value::Null, json!(7))
    );
    assert_eq!(j["digest"], json!({ "applied_index": 8, "digest": "ab".repeat(16) }));
    let table = cluster::status_table(&status);
    assert!(table.contains("MATCHED") && table.contains("state digest of node 2 at applied index 8"), "{table}");
    let leaderless = cluster::status_json(&ClusterStatus {
        node_id: 0,
        leader_id: None,
        leader_address: None,
        term: 5,
        nodes: vec![],
        digest: None,
        version: String::new(),
    });
    assert_eq!(leaderless["leader"], serde_json::Value::Null);
    assert!(cluster::status_table(&status).contains("leader node 1 (127.0.0.1:7101)"));
    let membership = Membership {
        voters: vec![Member { node_id: 1, address: "a:1".into(), peer_address: "a:2".into() }],
        learners: vec![],
    };
    assert_eq!(
        cluster::membership_json(&membership),
        json!({ "voters": [{ "node_id": 1, "address": "a:1", "peer_address": "a:2" }], "learners": [] })
    );
    assert_eq!(cluster::membership_text(&membership), "voters: 1 (a:1, peers a:2)\nlearners: -");
}

#[test]
fn publish_batches_stay_within_server_limits() {
    let mut batches = Batches::default();
    let mut sent = Vec::new();
    for _ in 0..2500 {
        sent.extend(batches.push(OutgoingMessage::new("x")).map(|b| b.len()));
    }
    sent.push(batches.take().len());
    assert_eq!(sent, [1000, 1000, 500]);
    let mb = vec![0u8; 1024 * 1024];
    let mut sent = Vec::new();
    for _ in 0..9 {
        sent.extend(batches.push(OutgoingMessage::new(mb.clone())).map(|b| b.len()));
    }
    sent.push(batches.take().len());
    assert_eq!(sent, [4, 4, 1], "4 MiB per request");
    assert!(batches.take().is_empty());
}

#[tokio::test]
async fn stdin_lines() {
    let input: &[u8] = b"one\r\ntwo\n\n\xffbin\nlast";
    let mut lines = StdinLines::new(input);
    let mut got = Vec::new();
    loop {
        match lines.next(None).await.unwrap() {
            Line::Text(line) => got.push(line),
            Line::Idle => panic!("no linger given"),
            Line::End => break,
        }
    }
    assert_eq!(got, [&b"one"[..], b"two", b"", b"\xffbin", b"last"]);

    let (mut tx, rx) = tokio::io::duplex(64);
    let mut lines = StdinLines::new(tokio::io::BufReader::new(rx));
    tx.write_all(b"par").await.unwrap();
    assert_eq!(lines.next(Some(Duration::from_millis(20))).await.unwrap(), Line::Idle);
    tx.write_all(b"tial\n").await.unwrap();
    assert_eq!(lines.next(Some(Duration::from_millis(500))).await.unwrap(), Line::Text(Bytes::from_static(b"partial")));
    drop(tx);
    assert_eq!(lines.next(None).await.unwrap(), Line::End);
}

#[test]
fn small_parsers() {
    assert_eq!(super::parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(super::parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
    assert!(super::parse_duration("5").is_err());
    assert_eq!(super::parse_rate("100/s"), Ok(100));
    assert!(super::parse_rate("-1/s").is_err());
    let base = raftq_client::ClientConfig::default;
    let with_token = |token: &str| raftq_client::ClientConfig {
        token: Some(raftq_client::BearerToken::new(token)),
        ..raftq_client::ClientConfig::default()
    };
    assert!(super::connect(vec![], base()).is_err());
    assert!(super::connect(vec![" , ".into()], base()).is_err());
    assert!(super::connect(vec!["a:1,b:2".into()], base()).is_ok());
    assert!(super::connect(vec!["a:1".into()], with_token("rq_x")).is_ok());
    assert!(super::connect(vec!["a:1".into()], with_token("two words")).is_err(), "a token must be a header value");
}

#[test]
fn topic_commands_and_where_conditions() {
    use raftq_client::Condition;

    use super::topic::{TopicCommand, parse_condition};
    let ClientCommand::Topic(TopicCommand::Bind(args)) =
        ok(&["topic", "bind", "orders", "search", "--where", "kind=created|updated", "--where", "!test"])
    else {
        panic!("not a bind")
    };
    assert_eq!((args.topic.as_str(), args.queue.as_str()), ("orders", "search"));
    assert_eq!(
        args.conditions,
        [
            Condition::OneOf("kind".into(), vec!["created".into(), "updated".into()]),
            Condition::NotExists("test".into())
        ]
    );
    assert_eq!(parse_condition("region=eu"), Ok(Condition::Equals("region".into(), "eu".into())));
    assert_eq!(parse_condition("path^=/api"), Ok(Condition::Prefix("path".into(), "/api".into())));
    assert_eq!(parse_condition("urgent"), Ok(Condition::Exists("urgent".into())));
    assert_eq!(parse_condition("k="), Ok(Condition::Equals("k".into(), String::new())));
    for bad in ["", "!", "=v", "^=v"] {
        assert!(parse_condition(bad).is_err(), "{bad:?} accepted");
    }
    let ClientCommand::Topic(TopicCommand::Publish(args)) =
        ok(&["topic", "publish", "orders", "--attr", "kind=created", "--key", "k1", "body"])
    else {
        panic!("not a publish")
    };
    assert_eq!((args.topic.as_str(), args.content.key.as_deref()), ("orders", Some("k1")));
    assert!(matches!(
        ok(&["topic", "create", "t", "--require-route", "--dedup-window", "1m"]),
        ClientCommand::Topic(TopicCommand::Create { require_route: true, dedup_window: Some(d), .. }) if d == Duration::from_secs(60)
    ));
}

#[test]
fn topic_results_and_details_print_every_copy() {
    use raftq_client::{Binding, Filter, TopicCopy, TopicInfo, TopicPublishResult, TopicStats};
    let copy = |queue: &str, id, duplicate| TopicCopy { queue: queue.into(), message_id: id, duplicate };
    let routed =
        TopicPublishResult { message_id: 5, duplicate: false, copies: vec![copy("a", 6, false), copy("b", 3, true)] };
    assert_eq!(output::topic_result_line(&routed), "5 -> a/6 b/3 (duplicate)");
    assert_eq!(
        output::topic_result_json(&routed),
        json!({"message_id": 5, "duplicate": false, "copies": [
            {"queue": "a", "message_id": 6, "duplicate": false}, {"queue": "b", "message_id": 3, "duplicate": true}]})
    );
    let unrouted = TopicPublishResult { message_id: 9, duplicate: false, copies: vec![] };
    assert_eq!(output::topic_result_line(&unrouted), "9 (unrouted)");
    let again = TopicPublishResult { message_id: 5, duplicate: true, copies: vec![] };
    assert_eq!(output::topic_result_line(&again), "5 (duplicate)");
    let info = TopicInfo {
        name: "orders".into(),
        require_route: true,
        dedup_window: Duration::from_secs(300),
        stats: TopicStats { published_total: 7, ..TopicStats::default() },
        bindings: vec![
            Binding { queue: "billing".into(), filter: Filter::all() },
            Binding { queue: "eu".into(), filter: Filter::all().equals("region", "eu").not_exists("test") },
        ],
        created_at_ms: 0,
    };
    let details = output::topic_details(&info);
    assert!(details.contains("billing <- (every message)"), "{details}");
    assert!(details.contains("eu <- region=eu and !test"), "{details}");
    let json = output::topic_json(&info);
    assert_eq!(
        json["bindings"][1]["filter"],
        json!([{"key": "region", "equals": "eu"}, {"key": "test", "not_exists": true}])
    );
    assert_eq!(json["config"], json!({"require_route": true, "dedup_window_ms": 300_000}));
    assert!(output::topic_table(&[info]).contains("orders"));
}
