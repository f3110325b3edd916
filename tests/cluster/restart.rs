//! Killing every node and starting them again loses nothing (G1): messages
//! in every state, live leases and delivery counts come back as they were.
//! A node left alone still stops cleanly on SIGTERM.

use std::time::Duration;

use raftq_client::{Delivery, Message, OutgoingMessage, QueueConfig, Receipt};

use crate::harness::{Cluster, Options};
use crate::workload::body_text;

/// Lease of the messages left unacked across the restart: long enough to
/// outlive it by far.
const LONG_LEASE: Duration = Duration::from_secs(600);
/// Delay of the delayed messages: they must still be delayed afterwards.
const LONG_DELAY: Duration = Duration::from_secs(600);
/// Times each retried message is delivered and nacked before the restart.
const NACK_ROUNDS: u32 = 3;
/// Long-poll wait of the test's receives.
const RECEIVE_WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread")]
async fn whole_cluster_restart_keeps_everything() {
    const QUEUE: &str = "keep";
    let mut cluster = Cluster::start("whole-restart", 3, Options::default()).await;
    let client = cluster.client();
    let config = QueueConfig::default().lease(Duration::from_secs(45)).dedup_window(Duration::from_secs(600));
    client.create_queue(QUEUE, config).await.expect("create queue");

    // Leased and never acked.
    publish(&client, QUEUE, "leased", 3, None).await;
    let leased = client.receive(QUEUE, 3, RECEIVE_WAIT, Some(LONG_LEASE)).await.expect("receive the leased ones");
    assert_eq!(bodies(&leased), ["leased-0", "leased-1", "leased-2"]);
    let leased: Vec<Receipt> = leased.into_iter().map(|d| d.receipt).collect();

    // Delivered and nacked a few times: ready again, with a delivery count.
    publish(&client, QUEUE, "retried", 2, None).await;
    for round in 1..=NACK_ROUNDS {
        let retried = client.receive(QUEUE, 2, RECEIVE_WAIT, Some(LONG_LEASE)).await.expect("receive to nack");
        assert_eq!(bodies(&retried), ["retried-0", "retried-1"], "round {round}");
        for delivery in retried {
            assert_eq!(delivery.delivery_count(), round);
            delivery.nack(Some(Duration::ZERO), false, &format!("round {round}")).await.expect("nack");
        }
    }

    // Ready, and delayed.
    publish(&client, QUEUE, "ready", 5, None).await;
    publish(&client, QUEUE, "delayed", 3, Some(LONG_DELAY)).await;

    let before = inspect_all(&client, QUEUE).await;
    assert_eq!(before.len(), 13, "every message is in the queue");
    let info_before = client.get_queue(QUEUE).await.expect("get queue");
    let stats = info_before.stats;
    assert_eq!((stats.ready, stats.leased, stats.delayed), (7, 3, 3), "{stats:?}");

    for id in cluster.running_ids() {
        cluster.kill(id).await;
    }
    for id in 1..=3 {
        cluster.restart(id);
    }
    let leader = cluster.leader_id().await;
    eprintln!("[whole-restart] all nodes restarted; node {leader} leads");

    let client = cluster.client();
    let after = inspect_all(&client, QUEUE).await;
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(old, new, "message {} changed across the restart", old.message_id);
    }
    assert_eq!(before.len(), after.len(), "messages lost or gained across the restart");
    let info_after = client.get_queue(QUEUE).await.expect("get queue after restart");
    assert_eq!(info_after.config, info_before.config, "queue config changed");
    let (old, new) = (stats, info_after.stats);
    assert_eq!(
        (new.ready, new.leased, new.delayed, new.published_total, new.delivered_total, new.nacked_total),
        (old.ready, old.leased, old.delayed, old.published_total, old.delivered_total, old.nacked_total),
        "stats changed across the restart: before {old:?}, after {new:?}"
    );

    // The leases survived: their receipts still work.
    assert_eq!(client.ack(&leased).await.expect("ack leases granted before the restart"), 3);
    // Delivery counts survived: the retried messages come first (lowest
    // ids) on their next delivery; the delayed ones stay hidden.
    let next = client.receive(QUEUE, 100, RECEIVE_WAIT, None).await.expect("receive after restart");
    let counts: Vec<(String, u32)> = next.iter().map(|d| (body_text(&d.message), d.delivery_count())).collect();
    let retried = (0..2).map(|i| (format!("retried-{i}"), NACK_ROUNDS + 1));
    let expected: Vec<(String, u32)> = retried.chain((0..5).map(|i| (format!("ready-{i}"), 1))).collect();
    assert_eq!(counts, expected, "deliveries after the restart");
}

/// Publishes `count` messages `{prefix}-{i}` in one batch.
async fn publish(client: &raftq_client::Client, queue: &str, prefix: &str, count: usize, delay: Option<Duration>) {
    let messages = (0..count)
        .map(|i| {
            let message = OutgoingMessage::new(format!("{prefix}-{i}")).with_attribute("kind", prefix);
            match delay {
                Some(delay) => message.with_delay(delay),
                None => message,
            }
        })
        .collect();
    client.publish(queue, messages).await.expect("publish");
}

fn bodies(deliveries: &[Delivery]) -> Vec<String> {
    deliveries.iter().map(|d| body_text(&d.message)).collect()
}

/// Every message of `queue` with its history, in id order.
async fn inspect_all(client: &raftq_client::Client, queue: &str) -> Vec<Message> {
    let page = client.peek(queue, None, None, 1_000).await.expect("peek");
    assert_eq!(page.next_after_id, None, "one page holds them all");
    let mut views = Vec::new();
    for message in page.messages {
        views.push(client.inspect(queue, message.message_id).await.expect("inspect"));
    }
    views
}

/// The last node standing stops on SIGTERM. It leads without a quorum, so
/// the time tick an idle leader proposes every two seconds never commits.
/// A benchmark's last node ran on for ten minutes after SIGTERM: the node
/// waited for its pending tick before shutting Raft down (reproduced by
/// hand: three `raftq server`s idle for 4 s, SIGTERM to both followers,
/// then to the leader, whose status showed the tick appended and not
/// committed). This test guards the shutdown of a lone leader; under the
/// harness the tick was not appended in time to reproduce that exact race.
#[tokio::test(flavor = "multi_thread")]
async fn a_leader_left_without_a_quorum_stops_on_sigterm() {
    let mut cluster = Cluster::start("stop-alone", 3, Options::default()).await;
    let leader = cluster.leader_id().await;
    for id in [1, 2, 3].into_iter().filter(|id| *id != leader) {
        cluster.stop(id).await;
    }
    // An idle leader proposes a tick once 2 s pass without an entry; the
    // proposal shows nowhere outside until it commits (which it never
    // will here), so give it the time to be made.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let started = std::time::Instant::now();
    cluster.stop(leader).await;
    assert!(started.elapsed() < Duration::from_secs(15), "stopped after {:?}", started.elapsed());
}
