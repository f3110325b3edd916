//! `raftq bench`: load against a running cluster, like `nats bench` or
//! RabbitMQ's PerfTest. Every message body starts with its sequence number
//! and send time, so the run ends by checking that what consumers got is
//! exactly what producers had confirmed (lost and duplicates counted), and
//! end-to-end latency is measured per message. Latencies go into HDR
//! histograms; results print as a table or `--json`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::{BufMut, Bytes, BytesMut};
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use raftq_client::{Client, ClientConfig, ClientError, OutgoingMessage, PublishStream, QueueConfig};

mod apply;
mod sweep;

/// Ack requests in flight per consumer.
const ACKS_IN_FLIGHT: usize = 4;
/// The long poll of each bench consumer receive.
const BENCH_RECEIVE_WAIT: Duration = Duration::from_millis(500);
/// Sequence numbers of the standing backlog's messages (`--standing`)
/// start here: never confirmed, consumed, or checked as the run's own.
const STANDING_SEQ_BASE: u64 = 1 << 62;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Producers only; measures confirmed publish throughput and latency.
    Publish,
    /// Producers and acking consumers together; adds end-to-end latency.
    EndToEnd,
    /// Publish `--messages` first, then measure consumers draining them.
    Drain,
    /// Publish `--messages` in `--steps` steps, leaving them in the queue,
    /// printing the publish rate of each step and every `--pids` node's RSS
    /// (and `--data-dirs` sizes) as the backlog grows; then drain it with
    /// one consumer and print them again. How cost grows with the backlog.
    Backlog,
    /// Producers publish to a topic with `--fanout` bound queues (every
    /// message matches every binding); reports topic messages/s and
    /// copies/s, then checks each queue holds one copy of every confirmed
    /// message.
    Topic,
    /// No cluster: append `--size` bytes and fdatasync, `--messages` times,
    /// in a file under `--dir`. The disk's commit latency, the floor of a
    /// single producer's confirm latency (G1 fsyncs before every OK).
    Fsync,
    /// No cluster: one node's state machine alone, on a `--state` store in
    /// a scratch dir under `--dir`. Publishes `--messages` in batches of
    /// `--batch`, then receives and acks `--receive-batch` at a time,
    /// applying each command as a node does (as the answering node and as
    /// a follower), and prints what applying cost per message.
    Apply,
}

/// Where the apply scenario keeps the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StateKind {
    /// RocksDB, as a node stores it.
    Rocksdb,
    /// The in-memory store the simulation uses: the cost of the queue's
    /// rules and transactions without a storage engine.
    Memory,
}

#[derive(Clone, Debug, Args)]
pub struct BenchArgs {
    #[arg(long, value_enum, default_value_t = Scenario::Publish)]
    pub scenario: Scenario,
    /// The queue to use; created if missing, purged before the run.
    #[arg(long, default_value = "bench")]
    pub queue: String,
    #[arg(long, default_value_t = 1)]
    pub producers: u32,
    /// Client connections the producers share (each its own `Client`, so
    /// its own TCP connection per node); producer i uses connection
    /// i mod N. `--connections` equal to `--producers` gives each producer
    /// its own, as separate client processes would have. With more than
    /// one, consumers and setup use another connection of their own.
    #[arg(long, default_value_t = 1)]
    pub connections: u32,
    /// Consumers (end-to-end and drain; default 1 there).
    #[arg(long)]
    pub consumers: Option<u32>,
    /// Message body size in bytes (at least 16: sequence number and time).
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Messages to publish in all.
    #[arg(long, default_value_t = 10_000, conflicts_with = "duration")]
    pub messages: u64,
    /// Publish for this long instead of a fixed count (e.g. `30s`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Publish requests in flight per producer.
    #[arg(long, default_value_t = 64)]
    pub inflight: u32,
    /// Messages per publish request.
    #[arg(long, default_value_t = 1)]
    pub batch: u32,
    /// Publish with one unary Publish call per request instead of over one
    /// PublishStream per producer (the default; the topic scenario is
    /// always unary), and consume with unary Receive and Ack calls instead
    /// of one Consume stream per consumer.
    #[arg(long)]
    pub unary: bool,
    /// Messages per receive (consumers).
    #[arg(long, default_value_t = 100)]
    pub receive_batch: u32,
    /// End-to-end scenario: publish this many messages first (not
    /// measured), then keep the queue that deep while producers and
    /// consumers run: a consumer takes a message only once as many have
    /// been confirmed as consumed. The steady state of a queue that holds
    /// a backlog, where every ack deletes at the front while publishes
    /// append at the back. The rest is drained at the end.
    #[arg(long, default_value_t = 0, conflicts_with = "sweep")]
    pub standing: u64,
    /// Directory for the fsync scenario's scratch file and the apply
    /// scenario's stores (use the disk the nodes' data dirs are on).
    #[arg(long, default_value = ".")]
    pub dir: std::path::PathBuf,
    /// Apply scenario: the store the state lives in.
    #[arg(long, value_enum, default_value_t = StateKind::Rocksdb)]
    pub state: StateKind,
    /// Topic scenario: queues bound to the topic (`QUEUE-topic`, queues
    /// `QUEUE-fan-0`..).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub fanout: u32,
    /// Backlog scenario: how many steps the publishing is measured in.
    #[arg(long, default_value_t = 4)]
    pub steps: u64,
    /// Backlog scenario: process ids of the nodes (on this machine) whose
    /// resident memory to report, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub pids: Vec<u32>,
    /// Backlog scenario: read the node pids from this file (one per line)
    /// at every sample instead, for nodes restarted during the run.
    #[arg(long)]
    pub pid_file: Option<std::path::PathBuf>,
    /// Backlog scenario: the nodes' data dirs whose size to report.
    #[arg(long, value_delimiter = ',')]
    pub data_dirs: Vec<std::path::PathBuf>,
    /// Backlog scenario: a shell command run once the backlog is published
    /// and before it is drained (say, restarts to time under the backlog);
    /// the bench waits for it and fails if it fails.
    #[arg(long)]
    pub before_drain: Option<String>,
    /// The throughput–latency curve: publish (or end-to-end) open loop at
    /// rising offered rates, latency measured from each request's due time;
    /// stops at the first rate not kept up with, then runs half of the
    /// highest rate achieved; writes `sweep.csv` and `sweep.svg` to `--out`.
    #[arg(long)]
    pub sweep: bool,
    /// Sweep: the offered rates in msgs/s, comma-separated (default: from
    /// `--sweep-start`, ×1.5 per step, `--sweep-steps` steps at most).
    #[arg(long, value_delimiter = ',', requires = "sweep")]
    pub rates: Vec<u64>,
    /// Sweep: the first offered rate in msgs/s.
    #[arg(long, default_value_t = 1_000)]
    pub sweep_start: u64,
    /// Sweep: how many rising rates at most.
    #[arg(long, default_value_t = 12)]
    pub sweep_steps: u32,
    /// Sweep: how long each rate is offered.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub step_duration: Duration,
    /// Sweep: the directory for `sweep.csv` and `sweep.svg`.
    #[arg(long, default_value = "bench-sweep")]
    pub out: std::path::PathBuf,
}

/// Counters and histograms shared by the workers.
struct Totals {
    start: Instant,
    next_seq: AtomicU64,
    confirmed: Mutex<HashSet<u64>>,
    /// Sequence numbers whose publish call failed: their outcome is
    /// unknown (a timed-out attempt may still commit).
    failed: Mutex<HashSet<u64>>,
    publish_errors: AtomicU64,
    received: Mutex<Vec<u64>>,
    /// Messages of the standing backlog (`--standing`) consumed.
    standing_received: AtomicU64,
    /// Signalled at every confirm and when producing ends (consumers of a
    /// standing backlog wait for it).
    confirms: tokio::sync::Notify,
    confirm_us: Mutex<Histogram<u64>>,
    e2e_us: Mutex<Histogram<u64>>,
    producing: AtomicBool,
}

/// Latencies up to an hour, in µs. The backlog scenario drains messages
/// published minutes earlier; anything longer is recorded as an hour
/// (`saturating_record`) rather than failing the run.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

impl Totals {
    /// Producing is over: consumers stop waiting for more confirms.
    fn end_producing(&self) {
        self.producing.store(false, Ordering::SeqCst);
        self.confirms.notify_waiters();
    }

    /// Empty totals whose clock starts at `start` and whose sequence
    /// numbers start at `first_seq`.
    fn new(start: Instant, first_seq: u64) -> Self {
        Self {
            start,
            next_seq: AtomicU64::new(first_seq),
            confirmed: Mutex::new(HashSet::new()),
            failed: Mutex::new(HashSet::new()),
            publish_errors: AtomicU64::new(0),
            received: Mutex::new(Vec::new()),
            standing_received: AtomicU64::new(0),
            confirms: tokio::sync::Notify::new(),
            confirm_us: Mutex::new(histogram()),
            e2e_us: Mutex::new(histogram()),
            producing: AtomicBool::new(true),
        }
    }

    fn elapsed_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }
}

fn body(seq: u64, sent_us: u64, size: usize) -> Bytes {
    let mut body = BytesMut::with_capacity(size);
    body.put_u64(seq);
    body.put_u64(sent_us);
    body.resize(size, b'x');
    body.freeze()
}

fn parse_body(body: &[u8]) -> Option<(u64, u64)> {
    let seq = u64::from_be_bytes(body.get(0..8)?.try_into().ok()?);
    let sent = u64::from_be_bytes(body.get(8..16)?.try_into().ok()?);
    Some((seq, sent))
}

pub async fn run(args: BenchArgs, servers: Vec<String>, base: ClientConfig, json: bool) -> Result<()> {
    if args.size < 16 {
        bail!("--size must be at least 16 bytes");
    }
    if args.producers == 0
        || args.inflight == 0
        || args.connections == 0
        || !(1..=raftq_client::BATCH_MESSAGES_MAX as u64).contains(&u64::from(args.batch))
    {
        bail!(
            "--producers, --connections and --inflight must be positive, --batch 1..={}",
            raftq_client::BATCH_MESSAGES_MAX
        );
    }
    if args.scenario == Scenario::Fsync {
        return fsync_latency(&args, json);
    }
    if args.scenario == Scenario::Apply {
        return apply::run(&args, json).await;
    }
    let client = Client::connect(ClientConfig { servers: servers.clone(), ..base.clone() }).context("connecting")?;
    // With one connection everything shares it (as before); with more, the
    // producers get their own and the consumers keep `client`'s, so a
    // producer's full stream window never delays a consumer.
    let producer_clients = if args.connections == 1 {
        vec![client.clone()]
    } else {
        (0..args.connections)
            .map(|_| Client::connect(ClientConfig { servers: servers.clone(), ..base.clone() }).context("connecting"))
            .collect::<Result<Vec<_>>>()?
    };
    match client.create_queue(&args.queue, QueueConfig::default()).await {
        Ok(_) => {}
        Err(e) if e.code() == tonic::Code::AlreadyExists => {
            client.purge_queue(&args.queue).await.context("purging the bench queue")?;
        }
        Err(e) => return Err(e).context("creating the bench queue"),
    }
    if args.sweep {
        return sweep::run(&client, &producer_clients, &args, json).await;
    }
    let totals = Arc::new(Totals::new(Instant::now(), 0));
    if args.scenario == Scenario::Backlog {
        return backlog(&client, &producer_clients, &args, &totals, json).await;
    }
    if args.scenario == Scenario::Topic {
        return topic(&client, &producer_clients, &args, &totals, json).await;
    }
    let consumers = match args.scenario {
        Scenario::Publish => 0,
        _ => args.consumers.unwrap_or(1),
    };
    if args.standing > 0 {
        if args.scenario != Scenario::EndToEnd {
            bail!("--standing is for the end-to-end scenario");
        }
        publish_standing(&producer_clients, &args).await?;
    }
    let publish_started = Instant::now();
    let producers = spawn_producers(&producer_clients, &args, &totals);
    let mut consumer_tasks = Vec::new();
    if args.scenario == Scenario::EndToEnd {
        consumer_tasks = spawn_consumers(&client, &args, &totals, consumers);
    }
    for producer in producers {
        producer.await.context("producer task")??;
    }
    let publish_secs = publish_started.elapsed().as_secs_f64();
    totals.end_producing();
    run_before_drain(&args).await?;
    let drain_started = Instant::now();
    if args.scenario == Scenario::Drain {
        consumer_tasks = spawn_consumers(&client, &args, &totals, consumers);
    }
    for consumer in consumer_tasks {
        consumer.await.context("consumer task")??;
    }
    let drain_secs = drain_started.elapsed().as_secs_f64();
    report(&args, &totals, publish_secs, drain_secs, json)
}

/// How a producer publishes: over its own PublishStream (the default), or
/// with one unary call per request (`--unary`, and topics).
#[derive(Clone)]
struct Producer {
    client: Client,
    stream: Option<PublishStream>,
}

impl Producer {
    fn new(client: &Client, args: &BenchArgs) -> Self {
        let stream = (!args.unary && args.scenario != Scenario::Topic).then(|| client.publish_stream());
        Self { client: client.clone(), stream }
    }

    /// One producer per `--producers`, producer i on connection i mod N.
    fn all(clients: &[Client], args: &BenchArgs) -> Vec<Self> {
        (0..args.producers as usize).map(|i| Self::new(&clients[i % clients.len()], args)).collect()
    }

    async fn publish(&self, queue: &str, messages: Vec<OutgoingMessage>) -> Result<(), ClientError> {
        match &self.stream {
            Some(stream) => stream.publish(queue, messages).await.map(|_| ()),
            None => self.client.publish(queue, messages).await.map(|_| ()),
        }
    }
}

fn spawn_producers(
    clients: &[Client],
    args: &BenchArgs,
    totals: &Arc<Totals>,
) -> Vec<tokio::task::JoinHandle<Result<()>>> {
    let deadline = args.duration.map(|d| Instant::now() + d);
    let producers = Producer::all(clients, args);
    let mut tasks = Vec::new();
    for task in 0..args.producers * args.inflight {
        let producer = producers[(task / args.inflight) as usize].clone();
        let (totals, queue) = (totals.clone(), args.queue.clone());
        let to_topic = args.scenario == Scenario::Topic;
        let (batch, size, limit) = (u64::from(args.batch), args.size, args.messages);
        tasks.push(tokio::spawn(async move {
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(());
                }
                let first = totals.next_seq.fetch_add(batch, Ordering::SeqCst);
                if deadline.is_none() && first >= limit {
                    return Ok(());
                }
                let last = if deadline.is_none() { (first + batch).min(limit) } else { first + batch };
                let sent_us = totals.elapsed_us();
                let messages = (first..last).map(|seq| OutgoingMessage::new(body(seq, sent_us, size))).collect();
                let published = if to_topic {
                    producer.client.publish_topic(&topic_name(&queue), messages).await.map(|_| ())
                } else {
                    producer.publish(&queue, messages).await
                };
                match published {
                    Ok(()) => {
                        let took = totals.elapsed_us().saturating_sub(sent_us).max(1);
                        totals.confirm_us.lock().expect("lock").saturating_record(took);
                        totals.confirmed.lock().expect("lock").extend(first..last);
                        totals.confirms.notify_waiters();
                    }
                    Err(e) => {
                        totals.publish_errors.fetch_add(last - first, Ordering::Relaxed);
                        totals.failed.lock().expect("lock").extend(first..last);
                        tracing::warn!(error = %e, "publish failed");
                    }
                }
            }
        }));
    }
    tasks
}

fn spawn_consumers(
    client: &Client,
    args: &BenchArgs,
    totals: &Arc<Totals>,
    consumers: u32,
) -> Vec<tokio::task::JoinHandle<Result<()>>> {
    let mut tasks = Vec::new();
    for _ in 0..consumers {
        let (client, totals, queue, max) = (client.clone(), totals.clone(), args.queue.clone(), args.receive_batch);
        let standing = args.standing > 0;
        if args.unary {
            tasks.push(tokio::spawn(consume_unary(client, totals, queue, max, standing)));
        } else {
            tasks.push(tokio::spawn(consume_streamed(client, totals, queue, max, standing)));
        }
    }
    tasks
}

/// Publishes the standing backlog (`--standing`) before the measured run:
/// the run's producers on sequence numbers of their own (from
/// `STANDING_SEQ_BASE`), in batches of 100, 16 requests in flight each.
async fn publish_standing(clients: &[Client], args: &BenchArgs) -> Result<()> {
    let standing_args = BenchArgs {
        messages: STANDING_SEQ_BASE + args.standing,
        duration: None,
        batch: 100,
        inflight: 16,
        ..args.clone()
    };
    let totals = Arc::new(Totals::new(Instant::now(), STANDING_SEQ_BASE));
    for producer in spawn_producers(clients, &standing_args, &totals) {
        producer.await.context("standing backlog producer")??;
    }
    let failed = totals.publish_errors.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} messages of the standing backlog were not published");
    }
    eprintln!("standing backlog: {} messages published", args.standing);
    Ok(())
}

/// With a standing backlog, waits until a consumer may take `max` more
/// messages and leave the queue as deep as it started: until as many have
/// been confirmed as consumed (the standing messages included). No wait
/// once producing is over.
async fn keep_standing(totals: &Totals, max: u32) {
    loop {
        // Made before the checks, so a confirm or the end of producing in
        // between still wakes it.
        let confirmed_more = totals.confirms.notified();
        if !totals.producing.load(Ordering::SeqCst) {
            return;
        }
        let consumed =
            totals.received.lock().expect("lock").len() as u64 + totals.standing_received.load(Ordering::Relaxed);
        let confirmed = totals.confirmed.lock().expect("lock").len() as u64;
        if consumed + u64::from(max) <= confirmed {
            return;
        }
        confirmed_more.await;
    }
}

/// Acks in flight per consumer, and waiting for all of them.
struct Acks(Arc<tokio::sync::Semaphore>);

impl Acks {
    fn new() -> Self {
        Self(Arc::new(tokio::sync::Semaphore::new(ACKS_IN_FLIGHT)))
    }

    async fn slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        self.0.clone().acquire_owned().await.context("ack slots")
    }

    async fn all_done(&self) {
        let _all = self.0.acquire_many(ACKS_IN_FLIGHT as u32).await;
    }
}

/// True once producing is over and everything confirmed has been received.
fn consumed_all(totals: &Totals) -> bool {
    if totals.producing.load(Ordering::SeqCst) {
        return false;
    }
    let confirmed = totals.confirmed.lock().expect("lock").len();
    totals.received.lock().expect("lock").len() >= confirmed
}

/// Records a batch's end-to-end latencies and sequence numbers.
fn record_received(totals: &Totals, deliveries: &[raftq_client::Delivery]) -> Result<()> {
    let now_us = totals.elapsed_us();
    let mut e2e = totals.e2e_us.lock().expect("lock");
    let mut received = totals.received.lock().expect("lock");
    for delivery in deliveries {
        let (seq, sent_us) = parse_body(delivery.body()).context("a body the bench did not write")?;
        if seq >= STANDING_SEQ_BASE {
            totals.standing_received.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        e2e.saturating_record(now_us.saturating_sub(sent_us).max(1));
        received.push(seq);
    }
    Ok(())
}

/// A consumer of unary Receive calls, acking each batch with a unary Ack.
/// Acks are pipelined: the next receive goes out while the last batch's
/// ack commits, as a real consumer that acks after processing would
/// overlap them.
async fn consume_unary(client: Client, totals: Arc<Totals>, queue: String, max: u32, standing: bool) -> Result<()> {
    let acks = Acks::new();
    loop {
        if standing {
            keep_standing(&totals, max).await;
        }
        let deliveries = client.receive(&queue, max, BENCH_RECEIVE_WAIT, None).await?;
        if deliveries.is_empty() {
            if consumed_all(&totals) {
                acks.all_done().await;
                return Ok(());
            }
            continue;
        }
        record_received(&totals, &deliveries)?;
        let receipts: Vec<_> = deliveries.iter().map(|d| d.receipt.clone()).collect();
        let permit = acks.slot().await?;
        let client = client.clone();
        tokio::spawn(async move {
            // A failed ack only means a redelivery, counted as a
            // duplicate by the final check.
            if let Err(e) = client.ack(&receipts).await {
                tracing::warn!(error = %e, "ack failed");
            }
            drop(permit);
        });
    }
}

/// A consumer over one Consume stream (prefetch `max` × acks in flight):
/// what has arrived, up to `max`, is acked as one settle on the stream,
/// pipelined as in [`consume_unary`].
async fn consume_streamed(client: Client, totals: Arc<Totals>, queue: String, max: u32, standing: bool) -> Result<()> {
    let prefetch = (max * ACKS_IN_FLIGHT as u32).clamp(1, 1000);
    let mut stream = client.consume(&queue, prefetch, None).await?;
    let settler = stream.settler();
    let acks = Acks::new();
    loop {
        if standing {
            keep_standing(&totals, max).await;
        }
        let first = match tokio::time::timeout(BENCH_RECEIVE_WAIT, stream.next()).await {
            Ok(Some(delivery)) => delivery?,
            Ok(None) => bail!("the consume stream ended"),
            Err(_quiet) => {
                if consumed_all(&totals) {
                    acks.all_done().await;
                    return Ok(());
                }
                continue;
            }
        };
        let mut deliveries = vec![first];
        while deliveries.len() < max as usize {
            match stream.try_next() {
                Some(delivery) => deliveries.push(delivery?),
                None => break,
            }
        }
        record_received(&totals, &deliveries)?;
        let receipts: Vec<_> = deliveries.iter().map(|d| d.receipt.clone()).collect();
        let permit = acks.slot().await?;
        let settler = settler.clone();
        tokio::spawn(async move {
            if let Err(e) = settler.ack(&receipts).await {
                tracing::warn!(error = %e, "ack failed");
            }
            drop(permit);
        });
    }
}

/// Resident memory of process `pid` in MiB, from `/proc` (0 if unknown).
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    kib as f64 / 1024.0
}

/// Bytes of the files under `path`.
fn dir_bytes(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

/// One measurement of the backlog scenario.
fn backlog_sample(args: &BenchArgs, backlog: usize, rate: Option<f64>) -> serde_json::Value {
    let pids: Vec<u32> = match &args.pid_file {
        Some(file) => std::fs::read_to_string(file)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|pid| pid.parse().ok())
            .collect(),
        None => args.pids.clone(),
    };
    let rss: Vec<f64> = pids.iter().map(|pid| (rss_mib(*pid) * 10.0).round() / 10.0).collect();
    let disk: Vec<f64> =
        args.data_dirs.iter().map(|dir| (dir_bytes(dir) as f64 / 1_048_576.0 * 10.0).round() / 10.0).collect();
    let row = serde_json::json!({
        "backlog": backlog, "publish_msgs_per_sec": rate.map(f64::round), "rss_mib": rss, "data_dir_mib": disk,
    });
    eprintln!(
        "backlog {backlog:>9}: publish {:>8} msgs/s, RSS MiB {rss:?}, data dir MiB {disk:?}",
        rate.map_or("-".to_string(), |r| format!("{r:.0}"))
    );
    row
}

/// The backlog scenario (see [`Scenario::Backlog`]).
async fn backlog(
    client: &Client,
    producer_clients: &[Client],
    args: &BenchArgs,
    totals: &Arc<Totals>,
    json: bool,
) -> Result<()> {
    let steps = args.steps.max(1);
    let mut rows = vec![backlog_sample(args, 0, None)];
    let publish_started = Instant::now();
    let mut published = 0usize;
    for step in 1..=steps {
        let step_args = BenchArgs { messages: args.messages * step / steps, duration: None, ..args.clone() };
        let started = Instant::now();
        for producer in spawn_producers(producer_clients, &step_args, totals) {
            producer.await.context("producer task")??;
        }
        let confirmed = totals.confirmed.lock().expect("lock").len();
        let rate = (confirmed - published) as f64 / started.elapsed().as_secs_f64();
        published = confirmed;
        rows.push(backlog_sample(args, confirmed, Some(rate)));
    }
    let publish_secs = publish_started.elapsed().as_secs_f64();
    totals.end_producing();
    run_before_drain(args).await?;
    let drain_started = Instant::now();
    for consumer in spawn_consumers(client, args, totals, args.consumers.unwrap_or(1)) {
        consumer.await.context("consumer task")??;
    }
    let drain_secs = drain_started.elapsed().as_secs_f64();
    let drained = backlog_sample(args, 0, None);
    if json {
        println!("{}", serde_json::json!({ "scenario": "Backlog", "steps": rows, "after_drain": drained }));
    }
    report(args, totals, publish_secs, drain_secs, json)
}

/// The topic of the topic scenario.
fn topic_name(queue: &str) -> String {
    format!("{queue}-topic")
}

/// The topic scenario (see [`Scenario::Topic`]): the topic and its queues
/// made fresh, producers only, then every queue's depth checked.
async fn topic(
    client: &Client,
    producer_clients: &[Client],
    args: &BenchArgs,
    totals: &Arc<Totals>,
    json: bool,
) -> Result<()> {
    let topic = topic_name(&args.queue);
    match client.delete_topic(&topic).await {
        Ok(_) => {}
        Err(e) if e.code() == tonic::Code::NotFound => {}
        Err(e) => return Err(e).context("deleting the bench topic"),
    }
    client.create_topic(&topic, raftq_client::TopicConfig::default()).await.context("creating the bench topic")?;
    let queues: Vec<String> = (0..args.fanout).map(|i| format!("{}-fan-{i}", args.queue)).collect();
    for queue in &queues {
        match client.create_queue(queue, QueueConfig::default()).await {
            Ok(_) => {}
            Err(e) if e.code() == tonic::Code::AlreadyExists => {
                client.purge_queue(queue).await.context("purging a bench queue")?;
            }
            Err(e) => return Err(e).context("creating a bench queue"),
        }
        client.bind(&topic, queue, raftq_client::Filter::all()).await.context("binding a bench queue")?;
    }
    let publish_started = Instant::now();
    for producer in spawn_producers(producer_clients, args, totals) {
        producer.await.context("producer task")??;
    }
    let publish_secs = publish_started.elapsed().as_secs_f64();
    totals.end_producing();
    let confirmed = totals.confirmed.lock().expect("lock").len() as u64;
    let failed = totals.failed.lock().expect("lock").len() as u64;
    // Every queue holds one copy of each confirmed message (and of each
    // failed one that committed anyway: at most `failed` more).
    let mut wrong = Vec::new();
    for queue in &queues {
        let s = client.get_queue(queue).await.context("reading a bench queue")?.stats;
        let held = s.ready + s.leased + s.delayed + s.dead;
        if held < confirmed || held > confirmed + failed {
            wrong.push(format!("{queue} holds {held}"));
        }
    }
    let rate = confirmed as f64 / publish_secs;
    let copies = rate * f64::from(args.fanout);
    if json {
        println!(
            "{}",
            serde_json::json!({
                "scenario": "Topic", "fanout": args.fanout, "inflight": args.inflight, "batch": args.batch,
                "size": args.size, "confirmed": confirmed, "publish_errors": totals.publish_errors.load(Ordering::Relaxed),
                "publish_msgs_per_sec": rate.round(), "copies_per_sec": copies.round(),
                "confirm_latency": percentiles(&totals.confirm_us.lock().expect("lock")),
                "queues_wrong": wrong,
            })
        );
    } else {
        println!("scenario Topic, fan-out {}: {confirmed} confirmed in {publish_secs:.2}s", args.fanout);
        let latency = percentiles(&totals.confirm_us.lock().expect("lock"));
        let mb = rate * args.size as f64 / 1_000_000.0;
        print!(
            "{}",
            table(&[("publish (confirm latency)", rate, Some(mb), &latency), ("copies", copies, None, &latency)])
        );
        println!(
            "  check: every queue holds each confirmed message once: {}",
            if wrong.is_empty() { "ok" } else { "NO" }
        );
    }
    if !wrong.is_empty() {
        bail!("bench check failed: {}", wrong.join(", "));
    }
    // The copies stay (as every scenario's messages do): purging them here
    // would leave their cleanup running under the next scenario.
    Ok(())
}

/// The fsync scenario (see [`Scenario::Fsync`]).
fn fsync_latency(args: &BenchArgs, json: bool) -> Result<()> {
    use std::io::Write;
    let file = tempfile::NamedTempFile::new_in(&args.dir)
        .with_context(|| format!("creating a scratch file in {}", args.dir.display()))?;
    let mut handle = file.as_file();
    let block = vec![b'x'; args.size];
    let mut latency = histogram();
    let start = Instant::now();
    for _ in 0..args.messages {
        let began = Instant::now();
        handle.write_all(&block).context("writing the scratch file")?;
        handle.sync_data().context("fdatasync")?;
        latency.record((began.elapsed().as_micros() as u64).max(1))?;
    }
    let rate = args.messages as f64 / start.elapsed().as_secs_f64();
    let result = serde_json::json!({
        "scenario": "Fsync", "dir": args.dir.display().to_string(), "size": args.size,
        "syncs": args.messages, "syncs_per_sec": rate.round(), "fsync_latency": percentiles(&latency),
    });
    if json {
        println!("{result}");
    } else {
        println!("fsync: {} appends of {} bytes + fdatasync in {}", args.messages, args.size, args.dir.display());
        print!("{}", table(&[("fsync", rate, None, &result["fsync_latency"])]));
    }
    Ok(())
}

fn percentiles(h: &Histogram<u64>) -> serde_json::Value {
    let ms = |us: u64| us as f64 / 1000.0;
    serde_json::json!({
        "count": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
    })
}

/// The human report's rates and latencies as an aligned table, one row per
/// `(what, per second, MB/s, latency percentiles as [`percentiles`] gives)`.
fn table(rows: &[(&str, f64, Option<f64>, &serde_json::Value)]) -> String {
    let width = rows.iter().map(|row| row.0.len()).max().unwrap_or(0).max(4);
    let mut out = format!(
        "  {:<width$}  {:>9}  {:>7}  {:>9}  {:>9}  {:>9}  {:>9}\n",
        "", "per sec", "MB/s", "p50 ms", "p99 ms", "p999 ms", "max ms"
    );
    for (what, rate, mb, latency) in rows {
        let ms = |key: &str| latency[key].as_f64().map_or("-".to_string(), |v| format!("{v:.2}"));
        let mb = mb.map_or("-".to_string(), |mb| format!("{mb:.1}"));
        out.push_str(&format!(
            "  {what:<width$}  {rate:>9.0}  {mb:>7}  {:>9}  {:>9}  {:>9}  {:>9}\n",
            ms("p50_ms"),
            ms("p99_ms"),
            ms("p999_ms"),
            ms("max_ms")
        ));
    }
    out
}

fn report(args: &BenchArgs, totals: &Totals, publish_secs: f64, drain_secs: f64, json: bool) -> Result<()> {
    let confirmed = totals.confirmed.lock().expect("lock").clone();
    let received = totals.received.lock().expect("lock").clone();
    let mut seen = HashSet::new();
    let duplicated = received.iter().filter(|seq| !seen.insert(**seq)).count();
    let lost = if args.scenario == Scenario::Publish { 0 } else { confirmed.difference(&seen).count() };
    // Delivered but never confirmed: "recovered" if its publish call failed
    // (an ambiguous failure may still have committed; at-least-once allows
    // it), "unexpected" otherwise (never sent: a bug).
    let failed = totals.failed.lock().expect("lock").clone();
    let (recovered, unexpected) = seen
        .difference(&confirmed)
        .fold((0usize, 0usize), |(r, u), seq| if failed.contains(seq) { (r + 1, u) } else { (r, u + 1) });
    let publish_rate = confirmed.len() as f64 / publish_secs;
    let drain_rate = seen.len() as f64 / drain_secs.max(f64::EPSILON);
    let mb = |rate: f64| rate * args.size as f64 / 1_000_000.0;
    let result = serde_json::json!({
        "scenario": format!("{:?}", args.scenario),
        "producers": args.producers, "connections": args.connections, "inflight": args.inflight, "batch": args.batch, "size": args.size,
        "confirmed": confirmed.len(), "publish_errors": totals.publish_errors.load(Ordering::Relaxed),
        "received": received.len(), "lost": lost, "duplicated": duplicated, "unexpected": unexpected, "recovered": recovered,
        "standing": args.standing, "standing_received": totals.standing_received.load(Ordering::Relaxed),
        "publish_msgs_per_sec": publish_rate.round(), "publish_mb_per_sec": mb(publish_rate),
        "drain_msgs_per_sec": drain_rate.round(),
        "confirm_latency": percentiles(&totals.confirm_us.lock().expect("lock")),
        "end_to_end_latency": percentiles(&totals.e2e_us.lock().expect("lock")),
    });
    if json {
        println!("{result}");
    } else {
        println!("scenario {:?}: {} confirmed in {publish_secs:.2}s", args.scenario, confirmed.len());
        if args.standing > 0 {
            println!(
                "  with {} messages standing in the queue ({} of them consumed by the end)",
                args.standing,
                totals.standing_received.load(Ordering::Relaxed)
            );
        }
        let mut rows =
            vec![("publish (confirm latency)", publish_rate, Some(mb(publish_rate)), &result["confirm_latency"])];
        if args.scenario != Scenario::Publish {
            println!("  consumed {} in {drain_secs:.2}s", received.len());
            rows.push((
                "consume (end-to-end latency)",
                drain_rate,
                Some(mb(drain_rate)),
                &result["end_to_end_latency"],
            ));
        }
        print!("{}", table(&rows));
        println!("  check: lost={lost} duplicated={duplicated} unexpected={unexpected} recovered={recovered}");
    }
    if lost > 0 || unexpected > 0 {
        bail!("bench check failed: lost={lost} unexpected={unexpected}");
    }
    Ok(())
}

/// Runs the `--before-drain` command, if any, between publishing and the
/// drain; its failure ends the run.
async fn run_before_drain(args: &BenchArgs) -> anyhow::Result<()> {
    if let Some(command) = &args.before_drain {
        eprintln!("running before the drain: {command}");
        let status = tokio::process::Command::new("sh").arg("-c").arg(command).status().await?;
        if !status.success() {
            anyhow::bail!("--before-drain command failed: {status}");
        }
    }
    Ok(())
}

#[cfg(test)]
impl BenchArgs {
    /// `raftq bench ARGS` parsed as the command line would be.
    pub(crate) fn parse_for_test(args: &[&str]) -> Self {
        #[derive(clap::Parser)]
        struct Command {
            #[command(flatten)]
            bench: BenchArgs,
        }
        <Command as clap::Parser>::parse_from(std::iter::once("bench").chain(args.iter().copied())).bench
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_human_report_is_an_aligned_table_in_milliseconds() {
        let latency =
            serde_json::json!({"count": 3, "p50_ms": 1.5, "p99_ms": 20.25, "p999_ms": 300.0, "max_ms": 1234.5});
        let out =
            table(&[("publish (confirm latency)", 10940.6, Some(11.2), &latency), ("fsync", 5996.0, None, &latency)]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines.iter().all(|l| l.len() == lines[0].len()), "columns line up:\n{out}");
        assert!(lines[0].contains("per sec") && lines[0].contains("p999 ms"), "{out}");
        assert!(lines[1].contains("10941") && lines[1].contains("11.2") && lines[1].contains("1234.50"), "{out}");
        assert!(lines[2].contains("fsync") && lines[2].contains("-"), "{out}");
        assert!(!out.contains('{'), "no raw JSON in human output:\n{out}");
    }

    #[tokio::test]
    async fn the_apply_scenario_delivers_every_message_once_in_order_on_either_store() {
        for state in ["memory", "rocksdb"] {
            let dir = tempfile::tempdir().expect("tempdir");
            let dir = dir.path().to_str().expect("utf-8 path");
            let args = BenchArgs::parse_for_test(&[
                "--scenario",
                "apply",
                "--state",
                state,
                "--dir",
                dir,
                "--size",
                "64",
                "--messages",
                "1000",
                "--batch",
                "100",
                "--receive-batch",
                "128",
            ]);
            apply::run(&args, true).await.unwrap_or_else(|e| panic!("{state}: {e:#}"));
        }
    }

    #[test]
    fn bodies_carry_sequence_and_time() {
        let b = body(42, 7_000, 64);
        assert_eq!(b.len(), 64);
        assert_eq!(parse_body(&b), Some((42, 7_000)));
        assert_eq!(parse_body(b"short"), None);
    }
}
