//! Leader discovery, what is retried, and the bounds on retrying.

use std::time::{Duration, Instant};

use raftq_client::{Client, ClientError, Code, OutgoingMessage, QueueConfig};

use crate::fake::{Fake, Script, config, dead_addr};

#[tokio::test]
async fn publish_follows_the_leader_hint_and_retries_with_the_same_keys() {
    let leader = Fake::start(Script { unavailable: 1, ..Script::default() }).await;
    let follower = Fake::start(Script { unavailable: 2, hint: Some(leader.addr.clone()), ..Script::default() }).await;
    let client = Client::connect(config(&[&follower.addr])).unwrap();

    let messages = vec![
        OutgoingMessage::new("a"),
        OutgoingMessage::new("b").with_idempotency_key("mine-1"),
        OutgoingMessage::new("c"),
    ];
    let results = client.publish("q", messages).await.unwrap();

    assert_eq!(
        results.iter().map(|r| (r.message_id, r.duplicate)).collect::<Vec<_>>(),
        [(1, false), (2, false), (3, false)]
    );
    assert_eq!(client.leader().as_deref(), Some(leader.addr.as_str()));
    // follower (hint) → leader (no hint: back off, seeds) → follower (hint) → leader.
    let seen: Vec<Vec<String>> =
        [&follower, &leader].iter().flat_map(|node| node.script().publish_keys.clone()).collect();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(seen.iter().all(|keys| *keys == seen[0]), "every attempt carries the same keys: {seen:?}");
    assert_eq!(seen[0][1], "mine-1", "a caller's key is kept");
    assert!(seen[0][0].starts_with(&client.client_id()) && seen[0][0] != seen[0][2]);
    assert_eq!(leader.script().ready.len(), 3, "stored once");
}

#[tokio::test]
async fn a_publish_that_committed_before_failing_is_answered_from_the_dedup_window() {
    let node = Fake::start(Script { commit_then_fail: 1, ..Script::default() }).await;
    let client = Client::connect(config(&[&node.addr])).unwrap();
    let results = client.publish("q", vec![OutgoingMessage::new("a"), OutgoingMessage::new("b")]).await.unwrap();
    assert_eq!(results.iter().map(|r| (r.message_id, r.duplicate)).collect::<Vec<_>>(), [(1, true), (2, true)]);
    assert_eq!(node.script().ready.len(), 2, "no duplicate stored");
    let keys = node.script().publish_keys.clone();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1]);
}

#[tokio::test]
async fn a_topic_publish_that_committed_before_failing_is_retried_with_the_same_keys() {
    let node = Fake::start(Script { commit_then_fail: 1, ..Script::default() }).await;
    let client = Client::connect(config(&[&node.addr])).unwrap();
    let messages = vec![OutgoingMessage::new("a"), OutgoingMessage::new("b").with_idempotency_key("mine")];
    let results = client.publish_topic("t", messages).await.unwrap();
    assert!(results.iter().all(|r| r.duplicate), "answered from the dedup window: {results:?}");
    assert_eq!(node.script().ready.len(), 2, "no duplicate stored");
    let keys = node.script().publish_keys.clone();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1], "the retry carries the keys of the first attempt");
    assert!(keys[0][0].starts_with(&client.client_id()) && keys[0][1] == "mine");
}

#[tokio::test]
async fn a_refused_connection_is_retried_even_for_mutations() {
    let node = Fake::start(Script::default()).await;
    let client = Client::connect(config(&[&dead_addr().await, &node.addr])).unwrap();
    let info = client.create_queue("orders", QueueConfig::default()).await.unwrap();
    assert_eq!(info.name, "orders");
    assert_eq!(node.calls("create_queue"), 1);
    assert_eq!(client.leader().as_deref(), Some(node.addr.as_str()));
}

#[tokio::test]
async fn a_mutation_that_timed_out_is_not_retried() {
    let node = Fake::start(Script { hang: true, ..Script::default() }).await;
    let mut config = config(&[&node.addr]);
    config.request_timeout = Duration::from_millis(100);
    let client = Client::connect(config).unwrap();
    let err = client.create_queue("orders", QueueConfig::default()).await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    assert_eq!(err.code(), Code::DeadlineExceeded);
    assert_eq!(node.calls("create_queue"), 1, "may have committed: not sent again");
}

/// AddLearner answers once the learner has caught up, which may take far
/// longer than one request's timeout: the client waits for it (it used to
/// report DEADLINE_EXCEEDED while the server went on adding the learner).
#[tokio::test]
async fn add_learner_waits_for_the_catch_up_past_the_request_timeout() {
    let node = Fake::start(Script { learner_catch_up: Duration::from_millis(500), ..Script::default() }).await;
    let mut config = config(&[&node.addr]);
    config.request_timeout = Duration::from_millis(100);
    let client = Client::connect(config).unwrap();
    let membership = client.add_learner(4, "n4:7101", "n4:7151").await.expect("added after the catch-up");
    assert_eq!(membership.learners.len(), 1);
    assert_eq!(node.calls("add_learner"), 1);
}

#[tokio::test]
async fn a_read_that_timed_out_is_retried_until_max_attempts() {
    let node = Fake::start(Script { hang: true, ..Script::default() }).await;
    let mut config = config(&[&node.addr]);
    config.request_timeout = Duration::from_millis(50);
    let client = Client::connect(config).unwrap();
    let err = client.get_queue("orders").await.unwrap_err();
    assert!(matches!(err, ClientError::RetriesExhausted { attempts: 6, .. }), "{err:?}");
    assert_eq!(err.code(), Code::DeadlineExceeded);
    assert_eq!(node.calls("get_queue"), 6);
}

#[tokio::test]
async fn other_errors_are_returned_at_once() {
    let node = Fake::start(Script::default()).await;
    let client = Client::connect(config(&[&node.addr])).unwrap();
    let err = client.get_queue("nope").await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.to_string().starts_with("NOT_FOUND: queue \"nope\""), "{err}");
    assert!(!err.is_retryable());
    assert_eq!(node.calls("get_queue"), 1);
}

#[tokio::test]
async fn retries_stop_at_max_attempts() {
    let node = Fake::start(Script { unavailable: usize::MAX, ..Script::default() }).await;
    let client = Client::connect(config(&[&node.addr])).unwrap();
    let err = client.get_queue("q").await.unwrap_err();
    assert!(matches!(err, ClientError::RetriesExhausted { attempts: 6, .. }), "{err:?}");
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(node.calls("get_queue"), 6);
}

#[tokio::test]
async fn retries_stop_at_the_deadline() {
    let node = Fake::start(Script { unavailable: usize::MAX, ..Script::default() }).await;
    let mut config = config(&[&node.addr]);
    config.retry.max_attempts = 10_000;
    config.retry.deadline = Duration::from_millis(300);
    let client = Client::connect(config).unwrap();
    let start = Instant::now();
    let err = client.get_queue("q").await.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    assert!(matches!(err, ClientError::RetriesExhausted { .. }), "{err:?}");
    assert!(node.calls("get_queue") < 100);
}

#[tokio::test]
async fn nodes_naming_each_other_cannot_spin_the_client() {
    let a = Fake::start(Script { unavailable: usize::MAX, ..Script::default() }).await;
    let b = Fake::start(Script { unavailable: usize::MAX, hint: Some(a.addr.clone()), ..Script::default() }).await;
    a.script().hint = Some(b.addr.clone());
    let client = Client::connect(config(&[&a.addr])).unwrap();
    let err = client.publish_one("q", OutgoingMessage::new("x")).await.unwrap_err();
    assert!(matches!(err, ClientError::RetriesExhausted { attempts: 6, .. }), "{err:?}");
    assert_eq!(a.calls("publish") + b.calls("publish"), 6);
}

#[tokio::test]
async fn list_queues_follows_every_page() {
    let node = Fake::start(Script::default()).await;
    let client = Client::connect(config(&[&node.addr])).unwrap();
    let names: Vec<String> = client.list_queues("").await.unwrap().into_iter().map(|q| q.name).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(node.calls("list_queues"), 3);
}

#[tokio::test]
async fn cluster_status_asks_the_leader_for_the_full_picture() {
    let leader = Fake::start(Script { node_id: 2, ..Script::default() }).await;
    leader.script().leader = Some((2, leader.addr.clone()));
    let follower =
        Fake::start(Script { node_id: 1, leader: Some((2, leader.addr.clone())), ..Script::default() }).await;
    let client = Client::connect(config(&[&follower.addr])).unwrap();
    let status = client.cluster_status().await.unwrap();
    assert_eq!(status.node_id, 2);
    assert_eq!(client.leader().as_deref(), Some(leader.addr.as_str()));
    assert_eq!(client.cluster_status_of(&follower.addr).await.unwrap().node_id, 1);
}

#[tokio::test]
async fn cluster_status_falls_back_to_a_followers_view_when_the_leader_is_down() {
    let dead = dead_addr().await;
    let follower = Fake::start(Script { node_id: 1, leader: Some((2, dead)), ..Script::default() }).await;
    let client = Client::connect(config(&[&follower.addr])).unwrap();
    let start = Instant::now();
    let status = client.cluster_status().await.unwrap();
    assert_eq!(status.node_id, 1);
    assert!(start.elapsed() < Duration::from_secs(1), "one attempt at the named leader: {:?}", start.elapsed());
    assert_eq!(client.leader(), None, "a leader that did not answer is not remembered");
}

#[tokio::test]
async fn a_transfer_that_another_node_won_is_asked_for_again_a_bounded_number_of_times() {
    let leader = Fake::start(Script { transfer_aborted: 1, ..Script::default() }).await;
    let client = Client::connect(config(&[&leader.addr])).unwrap();
    client.transfer_leader(2).await.expect("the second attempt succeeds");
    assert_eq!(leader.calls("transfer_leader"), 2);

    let stubborn = Fake::start(Script { transfer_aborted: usize::MAX, ..Script::default() }).await;
    let client = Client::connect(config(&[&stubborn.addr])).unwrap();
    let err = client.transfer_leader(2).await.expect_err("every attempt aborted");
    assert!(matches!(err, ClientError::Status { code: Code::Aborted, .. }), "{err:?}");
    assert_eq!(stubborn.calls("transfer_leader"), raftq_client::TRANSFER_ATTEMPTS as usize);
}
