//! `raftq server --metrics-listen`: a real one-node server, scraped over
//! HTTP. Checks `/healthz`, `/readyz`, and that `/metrics` carries the Raft
//! gauges, the per-queue gauges and the per-RPC request metrics.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use raftq_client::{Client, ClientConfig, OutgoingMessage, QueueConfig};

mod common;
use common::{Server, free_port};

/// A plain HTTP/1.1 GET: (status, body), or `None` if nothing answers.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())?;
    Some((status, body))
}

/// Polls `check` every 100 ms until it returns `Some`, at most `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The value of the sample of `metric` whose labels include every one of
/// `labels` (`key="value"`), if any.
fn sample(text: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    text.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (name, rest) = series.split_once('{').unwrap_or((series, ""));
        (name == metric && labels.iter().all(|l| rest.contains(l))).then(|| value.parse().ok())?
    })
}

#[test]
fn metrics_endpoint_serves_raft_queue_and_rpc_metrics() {
    let (grpc, peer, http) = (free_port(), free_port(), free_port());
    let data = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{grpc}");
    let peer_addr = format!("127.0.0.1:{peer}");
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_raftq"))
            .args(["server", "--node-id", "1", "--listen", &addr, "--peer-listen", &peer_addr])
            .args(["--peers", &format!("1={addr}/{peer_addr}")])
            .args(["--metrics-listen", &format!("127.0.0.1:{http}")])
            .arg("--data-dir")
            .arg(data.path())
            .stdin(Stdio::null())
            .spawn()
            .expect("starting raftq server"),
    );

    assert_eq!(wait_for("/healthz", Duration::from_secs(30), || get(http, "/healthz")).0, 200);
    wait_for("/readyz to say ready", Duration::from_secs(30), || get(http, "/readyz").filter(|(s, _)| *s == 200));
    assert_eq!(get(http, "/nope").map(|(status, _)| status), Some(404));

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = Client::connect(ClientConfig::new([addr.as_str()])).unwrap();
        client.create_queue("metered", QueueConfig::default()).await.unwrap();
        client.publish("metered", vec![OutgoingMessage::new("a"), OutgoingMessage::new("b")]).await.unwrap();
        // One request on each kind of stream, counted per request.
        client.create_queue("streamed", QueueConfig::default()).await.unwrap();
        client.publish_stream().publish("streamed", vec![OutgoingMessage::new("s")]).await.unwrap();
        let mut stream = client.consume("streamed", 1, None).await.unwrap();
        let delivery = stream.next().await.unwrap().unwrap();
        stream.settler().ack(&[delivery.receipt]).await.unwrap();
    });
    // Closes the client's connection: a graceful stop waits for open ones.
    drop(runtime);

    // Queue gauges are sampled every few seconds: wait for the publish.
    let ready = ["queue=\"metered\"", "state=\"ready\""];
    let text = wait_for("the queue gauges", Duration::from_secs(20), || {
        get(http, "/metrics")
            .map(|(_, body)| body)
            .filter(|body| sample(body, "raftq_queue_messages", &ready) == Some(2.0))
    });
    assert_eq!(sample(&text, "raftq_raft_is_leader", &["node=\"1\""]), Some(1.0));
    assert_eq!(sample(&text, "raftq_raft_leader_known", &[]), Some(1.0));
    assert!(sample(&text, "raftq_raft_term", &[]).is_some_and(|term| term >= 1.0));
    let applied = sample(&text, "raftq_raft_applied_index", &[]).unwrap();
    assert!(applied >= 3.0, "membership, create, publish applied: {applied}");
    assert_eq!(sample(&text, "raftq_raft_commit_index", &[]), Some(applied));
    assert_eq!(sample(&text, "raftq_queue_published_total", &["queue=\"metered\""]), Some(2.0));
    assert_eq!(sample(&text, "raftq_queue_messages", &["queue=\"metered\"", "state=\"leased\""]), Some(0.0));
    assert_eq!(sample(&text, "raftq_queue_dedup_evicted_total", &["queue=\"metered\""]), Some(0.0));
    assert_eq!(sample(&text, "raftq_dedup_keys", &[]), Some(3.0), "the client keys every publish (two + one streamed)");
    // Backpressure: the proposal queue's depth, bound and refusals.
    assert_eq!(sample(&text, "raftq_proposals_pending", &[]), Some(0.0));
    assert_eq!(sample(&text, "raftq_proposals_pending_bytes", &[]), Some(0.0));
    assert_eq!(sample(&text, "raftq_proposals_pending_max", &[]), Some(10_000.0));
    assert_eq!(sample(&text, "raftq_proposals_rejected_total", &[]), Some(0.0));
    let publish = ["rpc=\"Queue/Publish\"", "code=\"Ok\""];
    assert_eq!(sample(&text, "raftq_grpc_requests_total", &publish), Some(1.0));
    assert!(text.contains("# TYPE raftq_grpc_request_duration_seconds histogram"), "{text}");
    let streamed = ["rpc=\"Queue/PublishStream\"", "kind=\"publish\"", "code=\"Ok\""];
    assert_eq!(sample(&text, "raftq_stream_requests_total", &streamed), Some(1.0), "{text}");
    let acked = ["rpc=\"Queue/Consume\"", "kind=\"ack\"", "code=\"Ok\""];
    assert_eq!(sample(&text, "raftq_stream_requests_total", &acked), Some(1.0), "{text}");
    let all_publishes = ["rpc=\"Queue/Publish\"", "le=\"+Inf\""];
    assert_eq!(sample(&text, "raftq_grpc_request_duration_seconds_bucket", &all_publishes), Some(1.0));
    // The store's memory by use, from RocksDB's own counts: the memtables
    // hold the writes so far, and are charged to the block cache.
    let text = wait_for("the storage memory gauges", Duration::from_secs(20), || {
        get(http, "/metrics")
            .map(|(_, body)| body)
            .filter(|body| sample(body, "raftq_rocksdb_memtable_bytes", &[]).is_some_and(|bytes| bytes > 0.0))
    });
    assert!(sample(&text, "raftq_rocksdb_block_cache_bytes", &[]).is_some_and(|bytes| bytes > 0.0), "{text}");
    assert!(sample(&text, "raftq_rocksdb_block_cache_pinned_bytes", &[]).is_some(), "{text}");
    assert!(sample(&text, "raftq_rocksdb_table_readers_bytes", &[]).is_some(), "{text}");

    // SIGTERM stops the node cleanly, metrics endpoint and all.
    kill(Pid::from_raw(server.0.id() as i32), Signal::SIGTERM).unwrap();
    let status = wait_for("the server to exit", Duration::from_secs(30), || server.0.try_wait().unwrap());
    assert!(status.success(), "{status}");
    assert!(get(http, "/healthz").is_none(), "the metrics port closes with the server");
}
