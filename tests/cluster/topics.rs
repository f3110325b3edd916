//! Topics end to end on a real cluster: bindings with filters made through
//! the CLI and the Rust client, a topic publish copied into exactly the
//! matching queues, a retried publish stored nowhere again, a full queue
//! refusing the whole publish, and bindings following queue and topic
//! deletion. Permissions on topics are in `auth`.

use std::time::Duration;

use raftq_client::{Client, Code, ErrorReason, Filter, OutgoingMessage, QueueConfig, TopicConfig};
use tokio::process::Command;

use crate::harness::{Cluster, Options};

/// Runs `raftq --json ARGS` against `servers` and returns each JSON line.
async fn cli(servers: &str, args: &[&str]) -> Vec<serde_json::Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_raftq"))
        .args(["--servers", servers, "--json"])
        .args(args)
        .output()
        .await
        .expect("run raftq");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "raftq {args:?} failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))).collect()
}

/// Every body in `queue`, received and acked.
async fn drain(client: &Client, queue: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let got = client.receive(queue, 100, Duration::ZERO, None).await.expect("receive");
        if got.is_empty() {
            return bodies;
        }
        let receipts: Vec<_> = got.iter().map(|d| d.receipt.clone()).collect();
        bodies.extend(got.iter().map(|d| String::from_utf8_lossy(d.body()).into_owned()));
        client.ack(&receipts).await.expect("ack");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_topic_publish_reaches_exactly_the_matching_queues_once() {
    let mut cluster = Cluster::start("topics", 3, Options::default()).await;
    let servers = cluster.running_ids().iter().map(|id| cluster.addr(*id)).collect::<Vec<_>>().join(",");
    let client = cluster.client();
    for queue in ["billing", "search", "eu-audit"] {
        client.create_queue(queue, QueueConfig::default()).await.expect("create queue");
    }
    // Made and bound through the CLI...
    let created = cli(&servers, &["topic", "create", "orders"]).await;
    assert_eq!(created[0]["name"], "orders");
    cli(&servers, &["topic", "bind", "orders", "billing"]).await;
    let bound = cli(&servers, &["topic", "bind", "orders", "search", "--where", "kind=created|updated"]).await;
    assert_eq!(bound[0]["bindings"][1]["filter"][0]["one_of"], serde_json::json!(["created", "updated"]));
    // ... and through the client.
    let filter = Filter::all().equals("region", "eu").not_exists("test");
    let info = client.bind("orders", "eu-audit", filter.clone()).await.expect("bind");
    assert_eq!(info.bindings.iter().map(|b| b.queue.as_str()).collect::<Vec<_>>(), ["billing", "eu-audit", "search"]);
    assert_eq!(info.bindings[1].filter, filter);

    let message = |body: &str, attributes: &[(&str, &str)]| {
        attributes.iter().fold(OutgoingMessage::new(body.to_owned()), |m, (k, v)| m.with_attribute(*k, *v))
    };
    let results = client
        .publish_topic(
            "orders",
            vec![
                message("created-eu", &[("kind", "created"), ("region", "eu")]),
                message("deleted-us", &[("kind", "deleted"), ("region", "us")]),
                message("updated-eu-test", &[("kind", "updated"), ("region", "eu"), ("test", "1")]),
            ],
        )
        .await
        .expect("publish to the topic");
    let routed: Vec<Vec<&str>> = results.iter().map(|r| r.copies.iter().map(|c| c.queue.as_str()).collect()).collect();
    assert_eq!(routed, [vec!["billing", "eu-audit", "search"], vec!["billing"], vec!["billing", "search"]]);
    // The CLI publishes too, and prints each copy.
    let printed =
        cli(&servers, &["topic", "publish", "orders", "--attr", "kind=created", "--key", "cli-1", "from-cli"]).await;
    assert_eq!(printed[0]["copies"].as_array().map(Vec::len), Some(2), "{printed:?}");
    // A retry with the same key stores nothing anywhere.
    let again =
        cli(&servers, &["topic", "publish", "orders", "--attr", "kind=created", "--key", "cli-1", "from-cli"]).await;
    assert_eq!(
        (again[0]["duplicate"].as_bool(), again[0]["message_id"].clone()),
        (Some(true), printed[0]["message_id"].clone())
    );

    assert_eq!(drain(&client, "billing").await, ["created-eu", "deleted-us", "updated-eu-test", "from-cli"]);
    assert_eq!(drain(&client, "search").await, ["created-eu", "updated-eu-test", "from-cli"]);
    assert_eq!(drain(&client, "eu-audit").await, ["created-eu"]);

    // A full queue refuses the whole publish: nothing lands anywhere.
    client.update_queue("eu-audit", QueueConfig::default().max_length(1)).await.expect("update");
    client.publish_topic("orders", vec![message("fills", &[("region", "eu")])]).await.expect("fits");
    let refused = client
        .publish_topic("orders", vec![message("a", &[]), message("b", &[("region", "eu")])])
        .await
        .expect_err("eu-audit is full");
    assert_eq!((refused.code(), refused.reason()), (Code::ResourceExhausted, ErrorReason::QueueFull), "{refused:?}");
    assert_eq!(refused.info("queue"), Some("eu-audit"), "the error names the queue: {refused:?}");
    assert_eq!(drain(&client, "billing").await, ["fills"], "the refused batch stored nothing");

    // Counters, and bindings following deletion.
    let stats = cli(&servers, &["topic", "get", "orders"]).await[0]["stats"].clone();
    assert_eq!((stats["published_total"].as_u64(), stats["duplicates_total"].as_u64()), (Some(5), Some(1)), "{stats}");
    client.delete_queue("search").await.expect("delete queue");
    let info = client.get_topic("orders").await.expect("get topic");
    assert_eq!(info.bindings.iter().map(|b| b.queue.as_str()).collect::<Vec<_>>(), ["billing", "eu-audit"]);
    let removed = cli(&servers, &["topic", "delete", "orders"]).await;
    assert_eq!(removed[0]["bindings_removed"], 2);
    assert_eq!(client.get_queue("eu-audit").await.expect("queue stays").stats.ready, 1, "its message stays");
    let gone = client.get_topic("orders").await.expect_err("deleted");
    assert_eq!((gone.code(), gone.reason()), (Code::NotFound, ErrorReason::TopicNotFound));
    let exists = client.create_topic("t2", TopicConfig::default()).await.map(|_| ());
    assert!(exists.is_ok());
    let twice = client.create_topic("t2", TopicConfig::default()).await.expect_err("taken");
    assert_eq!((twice.code(), twice.reason()), (Code::AlreadyExists, ErrorReason::TopicExists));
    cluster.assert_running();
}

/// The refusals only topics give, each with its reason and nothing stored.
#[tokio::test(flavor = "multi_thread")]
async fn topic_refusals_have_reasons() {
    let mut cluster = Cluster::start("topic-refusals", 3, Options::default()).await;
    let client = cluster.client();
    client.create_queue("eu", QueueConfig::default()).await.expect("create queue");
    let strict = TopicConfig { require_route: true, dedup_window: None };
    client.create_topic("strict", strict).await.expect("create topic");
    client.bind("strict", "eu", Filter::all().equals("region", "eu")).await.expect("bind");
    let messages = vec![
        OutgoingMessage::new("eu").with_attribute("region", "eu"),
        OutgoingMessage::new("us").with_attribute("region", "us"),
    ];
    let unroutable = client.publish_topic("strict", messages).await.expect_err("us matches no binding");
    assert_eq!((unroutable.code(), unroutable.reason()), (Code::FailedPrecondition, ErrorReason::Unroutable));
    assert_eq!(unroutable.info("field"), Some("messages[1]"), "{unroutable:?}");
    assert_eq!(client.get_queue("eu").await.expect("stats").stats.ready, 0, "all or none");

    let missing = client.unbind("strict", "nope").await.expect_err("not bound");
    assert_eq!((missing.code(), missing.reason()), (Code::NotFound, ErrorReason::BindingNotFound));

    // One queue bound to its most topics: one more binding is refused.
    for i in 0..raftq_core::limits::BINDINGS_PER_QUEUE_MAX - 1 {
        let name = format!("t{i}");
        client.create_topic(&name, TopicConfig::default()).await.expect("create topic");
        client.bind(&name, "eu", Filter::all()).await.expect("bind");
    }
    client.create_topic("one-more", TopicConfig::default()).await.expect("create topic");
    let full = client.bind("one-more", "eu", Filter::all()).await.expect_err("eu has its most bindings");
    assert_eq!((full.code(), full.reason()), (Code::ResourceExhausted, ErrorReason::LimitReached));
    assert_eq!(full.info("limit"), Some("bindings_per_queue"), "{full:?}");
    cluster.assert_running();
}
