//! The workload: producers and consumers as turmoil clients, each driving
//! the real `raftq_client::Client` and recording every call in the
//! [`History`]. Producers publish unique values (the value is also the
//! idempotency key); consumers receive under leases and ack, nack, extend,
//! dead-letter, abandon (the lease expires) or ack too late (a stale receipt
//! that must be refused). After the final heal every consumer drains.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use raftq_client::{
    Client, ClientConfig, ClientError, ClusterStatus, Delivery, Filter, OutgoingMessage, PublishResult, PublishStream,
    QueueConfig, RetryPolicy, TopicConfig,
};
use tokio::time::sleep;

use crate::history::{Call, Delivered, History, Lease, Op, Outcome, Reply};
use crate::net::client_connector;
use crate::node::sim_now_ms;
use crate::plan::Plan;

/// The queue producers publish to.
pub const WORK_QUEUE: &str = "work";
/// `WORK_QUEUE`'s dead-letter queue.
pub const DEAD_LETTER_QUEUE: &str = "dlq";
/// The topic producers also publish to, with `require_route`: a message
/// no binding matches is refused, and with it its whole batch.
pub const TOPIC: &str = "events";
/// The queues bound to [`TOPIC`], each with a filter on the `kind`
/// attribute: `fan-a` kind = a, `fan-ab` kind one of a, b, `fan-c` kind
/// starts with c. Kind `z` matches none.
pub const FAN_QUEUES: [&str; 3] = ["fan-a", "fan-ab", "fan-c"];
/// Every queue the workload consumes from.
pub const ALL_QUEUES: [&str; 5] = [WORK_QUEUE, DEAD_LETTER_QUEUE, FAN_QUEUES[0], FAN_QUEUES[1], FAN_QUEUES[2]];
/// Kinds of topic messages, and how often each is drawn (z: unroutable).
const KINDS: [(&str, u32); 5] = [("a", 30), ("b", 25), ("c1", 20), ("c2", 20), ("z", 5)];

/// The queues a topic message of `kind` must be copied to: what the
/// bindings made in `setup` route, written out independently of them.
pub fn topic_routes(kind: &str) -> Vec<&'static str> {
    let mut routes = Vec::new();
    if kind == "a" {
        routes.push(FAN_QUEUES[0]);
    }
    if kind == "a" || kind == "b" {
        routes.push(FAN_QUEUES[1]);
    }
    if kind.starts_with('c') {
        routes.push(FAN_QUEUES[2]);
    }
    routes
}

/// The kind a topic value carries (after its last `.`).
pub fn kind_of(value: &str) -> &str {
    value.rsplit_once('.').map_or("", |(_, kind)| kind)
}

fn bindings() -> [(&'static str, Filter); 3] {
    [
        (FAN_QUEUES[0], Filter::all().equals("kind", "a")),
        (FAN_QUEUES[1], Filter::all().one_of("kind", ["a", "b"])),
        (FAN_QUEUES[2], Filter::all().prefix("kind", "c")),
    ]
}

/// A queue that never exists: publishes to it must fail with NOT_FOUND.
const MISSING_QUEUE: &str = "missing";
/// A delay the server must refuse (more than 7 days).
const INVALID_DELAY: Duration = Duration::from_secs(8 * 24 * 3600);
/// How far past a lease's end a deliberately late ack is sent.
const STALE_MARGIN_MS: u64 = 20;
/// A value whose publish ended in doubt is retried this many times more.
const PUBLISH_RETRIES_MAX: u32 = 3;

/// What every simulated client shares.
#[derive(Debug)]
pub struct Shared {
    pub plan: Plan,
    pub history: History,
    /// Every node's address, the spare's included.
    pub servers: Vec<String>,
    /// The queues exist.
    pub setup_done: AtomicBool,
    /// Producers still running; the drain is complete only once this is 0.
    pub producers_left: AtomicU32,
    /// Simulated elapsed ms of the final heal (0 until then).
    pub healed_at_ms: AtomicU64,
    /// Every queue is empty after the final heal: consumers stop.
    pub drained: AtomicBool,
    /// Simulated elapsed ms when the drain completed.
    pub drained_at_ms: AtomicU64,
    /// Liveness failures found inside the simulation.
    notes: Mutex<Vec<String>>,
    /// What the nemesis did, one line per action.
    nemesis_log: Mutex<Vec<String>>,
    /// Nodes down for good (refused to start, or removed): left out of the
    /// final comparison.
    dead: Mutex<BTreeSet<u64>>,
    /// The cluster's members (voters and learners) after the drain, as the
    /// leader reports them; `None` if no leader answered.
    final_members: Mutex<Option<BTreeSet<u64>>>,
    /// If the drain gave up: the values still in the queues then.
    undrained: Mutex<BTreeSet<String>>,
}

impl Shared {
    pub fn new(plan: Plan, servers: Vec<String>) -> Self {
        Self {
            producers_left: AtomicU32::new(plan.producers),
            plan,
            history: History::default(),
            servers,
            setup_done: AtomicBool::new(false),
            healed_at_ms: AtomicU64::new(0),
            drained: AtomicBool::new(false),
            drained_at_ms: AtomicU64::new(0),
            notes: Mutex::default(),
            nemesis_log: Mutex::default(),
            dead: Mutex::default(),
            final_members: Mutex::default(),
            undrained: Mutex::default(),
        }
    }

    pub fn set_undrained(&self, values: BTreeSet<String>) {
        *lock(&self.undrained) = values;
    }

    pub fn undrained(&self) -> BTreeSet<String> {
        lock(&self.undrained).clone()
    }

    pub fn set_final_members(&self, members: BTreeSet<u64>) {
        *lock(&self.final_members) = Some(members);
    }

    pub fn final_members(&self) -> Option<BTreeSet<u64>> {
        lock(&self.final_members).clone()
    }

    /// Adds a line to the nemesis log (inside the simulation).
    pub fn log(&self, line: String) {
        self.log_at(elapsed_ms(), line);
    }

    /// Adds a line to the nemesis log, at simulated time `at_ms`.
    pub fn log_at(&self, at_ms: u64, line: String) {
        tracing::info!(%line, "nemesis");
        lock(&self.nemesis_log).push(format!("{at_ms:>6} ms  {line}"));
    }

    pub fn nemesis_log(&self) -> Vec<String> {
        lock(&self.nemesis_log).clone()
    }

    pub fn mark_dead(&self, node: u64) {
        lock(&self.dead).insert(node);
    }

    pub fn dead(&self) -> BTreeSet<u64> {
        lock(&self.dead).clone()
    }

    /// Records a liveness failure.
    pub fn note(&self, note: String) {
        tracing::warn!(%note, "liveness failure");
        lock(&self.notes).push(note);
    }

    pub fn notes(&self) -> Vec<String> {
        lock(&self.notes).clone()
    }

    /// A client of the cluster for one simulated process.
    pub fn client(&self) -> Client {
        self.client_starting_at(0)
    }

    /// A client whose seed list starts at server `first` (mod the count).
    /// The harness's own admin calls (setup, membership, the final barrier)
    /// take a fresh client per attempt, starting at the next server: the
    /// client sticks to a node after a non-idempotent call fails in doubt
    /// there (see the crate README, "Findings"), and the harness must not
    /// stall on that.
    /// The status of the node that leads in the newest term: every node is
    /// asked, and of those that say they lead, the highest term wins. A
    /// node removed while cut off has not heard of its removal and may
    /// still say it leads the old membership, but in a term the cluster
    /// has left behind (seed 1015: trusting its answer kept it counted
    /// as a member).
    pub async fn leader_status(&self) -> Option<ClusterStatus> {
        let client = self.client();
        let mut newest: Option<ClusterStatus> = None;
        for addr in &self.servers {
            let Ok(Ok(status)) = tokio::time::timeout(Duration::from_secs(2), client.cluster_status_of(addr)).await
            else {
                continue;
            };
            if status.leader_id == Some(status.node_id) && newest.as_ref().is_none_or(|n| status.term > n.term) {
                newest = Some(status);
            }
        }
        newest
    }

    pub fn client_starting_at(&self, first: usize) -> Client {
        let mut servers = self.servers.clone();
        let shift = first % servers.len().max(1);
        servers.rotate_left(shift);
        let config = ClientConfig {
            servers,
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(2),
            retry: RetryPolicy {
                max_attempts: 10,
                base_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_secs(1),
                deadline: Duration::from_secs(8),
            },
            token: None,
            tls: None,
        };
        let connector = client_connector(&config);
        let client = Client::with_connector(config, connector).expect("the simulation's client config is valid");
        if self.plan.retry_in_doubt {
            client.plant_bug_retry_in_doubt();
        }
        client
    }

    fn past_workload(&self) -> bool {
        elapsed_ms() >= self.plan.workload_ms
    }

    /// Runs `call` as operation `what` of `process` and records it.
    async fn invoke<T, F>(
        &self,
        process: u32,
        what: Call,
        call: F,
        reply: impl FnOnce(&T) -> Reply,
    ) -> Result<T, ClientError>
    where
        F: Future<Output = Result<T, ClientError>>,
    {
        let invoked_ms = sim_now_ms();
        let result = call.await;
        let outcome = match &result {
            Ok(value) => Outcome::Ok(reply(value)),
            Err(error) => Outcome::of_error(error),
        };
        self.history.record(Op { process, invoked_ms, completed_ms: sim_now_ms(), call: what, outcome });
        result
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Simulated time since the start of the run, in ms.
pub fn elapsed_ms() -> u64 {
    turmoil::sim_elapsed().map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// A process's own random numbers: from the seed and the process id.
fn process_rng(plan: &Plan, process: u32) -> fastrand::Rng {
    fastrand::Rng::with_seed(plan.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (u64::from(process).wrapping_add(1) << 32))
}

/// Creates the two queues (producer 0 does this; everyone else waits).
async fn setup(shared: &Shared) {
    let dlq = QueueConfig::default();
    let work = QueueConfig::default()
        .lease(Duration::from_millis(shared.plan.lease_ms))
        .max_deliveries(shared.plan.max_deliveries)
        .dead_letter_queue(DEAD_LETTER_QUEUE);
    let mut attempt = 0;
    let fan = FAN_QUEUES.map(|name| (name, QueueConfig::default().lease(Duration::from_millis(shared.plan.lease_ms))));
    for (name, config) in [(DEAD_LETTER_QUEUE, dlq), (WORK_QUEUE, work)].into_iter().chain(fan) {
        let what = format!("create queue {name}");
        let created = until_done(shared, &mut attempt, &what, |client| {
            let config = config.clone();
            async move { client.create_queue(name, config).await.map(|_| ()) }
        });
        if !created.await {
            return;
        }
    }
    let topic = TopicConfig { require_route: true, dedup_window: None };
    let created = until_done(shared, &mut attempt, "create topic", |client| {
        let topic = topic.clone();
        async move { client.create_topic(TOPIC, topic).await.map(|_| ()) }
    });
    if !created.await {
        return;
    }
    for (queue, filter) in bindings() {
        let what = format!("bind {queue}");
        let bound = until_done(shared, &mut attempt, &what, |client| {
            let filter = filter.clone();
            async move { client.bind(TOPIC, queue, filter).await.map(|_| ()) }
        });
        if !bound.await {
            return;
        }
    }
    shared.setup_done.store(true, Ordering::SeqCst);
}

/// Runs one setup call until it succeeds (or finds it done before:
/// ALREADY_EXISTS), each attempt from a fresh client; false (noted) if the
/// workload ended first.
async fn until_done<F, Fut>(shared: &Shared, attempt: &mut usize, what: &str, call: F) -> bool
where
    F: Fn(Client) -> Fut,
    Fut: Future<Output = Result<(), ClientError>>,
{
    loop {
        *attempt += 1;
        match call(shared.client_starting_at(*attempt)).await {
            Ok(()) => return true,
            Err(e) if e.code() == raftq_client::Code::AlreadyExists => return true,
            Err(e) if shared.past_workload() => {
                shared.note(format!("could not {what} during the whole workload: {e}"));
                return false;
            }
            Err(_) => sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn wait_for_setup(shared: &Shared) {
    while !shared.setup_done.load(Ordering::SeqCst) && !shared.past_workload() {
        sleep(Duration::from_millis(50)).await;
    }
}

/// A producer: publishes unique values until the workload ends.
pub async fn producer(shared: Arc<Shared>, process: u32) -> turmoil::Result {
    let client = shared.client();
    // Odd producers publish to the work queue over a PublishStream: its
    // requests in flight when a node fails are settled by unary retries
    // with the same keys, and the checker holds them to the same rules.
    let stream = (process % 2 == 1).then(|| client.publish_stream());
    let mut rng = process_rng(&shared.plan, process);
    if process == 0 {
        setup(&shared).await;
    }
    wait_for_setup(&shared).await;
    let mut n = 0u64;
    while !shared.past_workload() {
        sleep(Duration::from_millis(rng.u64(0..150))).await;
        let roll = rng.u32(0..100);
        let value = format!("p{process}-{n}");
        n += 1;
        if roll < 2 {
            // Definitely refused: these values must never be delivered.
            publish(&shared, &client, stream.as_ref(), process, MISSING_QUEUE, vec![value], None).await;
            continue;
        }
        if roll < 4 {
            publish(&shared, &client, stream.as_ref(), process, WORK_QUEUE, vec![value], Some(INVALID_DELAY)).await;
            continue;
        }
        if (14..34).contains(&roll) {
            // To the topic: 1..3 messages of random kinds, all copied or
            // none (a `z` among them refuses the batch).
            let mut values = Vec::new();
            for _ in 0..rng.u32(1..4) {
                values.push(format!("t{process}-{n}.{}", pick_kind(&mut rng)));
                n += 1;
            }
            for _ in 0..=PUBLISH_RETRIES_MAX {
                if !publish_topic(&shared, &client, process, values.clone()).await {
                    break;
                }
                sleep(Duration::from_millis(rng.u64(50..500))).await;
            }
            continue;
        }
        let delay = (rng.u32(0..100) < 15).then(|| Duration::from_millis(rng.u64(100..3_000)));
        let mut values = vec![value];
        if roll < 14 {
            // A small batch: all of it commits or none.
            for _ in 0..rng.u32(1..4) {
                values.push(format!("p{process}-{n}"));
                n += 1;
            }
        }
        for _ in 0..=PUBLISH_RETRIES_MAX {
            // An indefinite outcome is retried with the same keys, as an
            // application would: the dedup window makes that safe.
            if !publish(&shared, &client, stream.as_ref(), process, WORK_QUEUE, values.clone(), delay).await {
                break;
            }
            sleep(Duration::from_millis(rng.u64(50..500))).await;
        }
    }
    shared.producers_left.fetch_sub(1, Ordering::SeqCst);
    Ok(())
}

/// Publishes `values` (each its own idempotency key) as one batch. Returns
/// whether the outcome is unknown (worth retrying).
async fn publish(
    shared: &Shared,
    client: &Client,
    stream: Option<&PublishStream>,
    process: u32,
    queue: &str,
    values: Vec<String>,
    delay: Option<Duration>,
) -> bool {
    let messages = values
        .iter()
        .map(|value| {
            let message = OutgoingMessage::new(value.clone()).with_idempotency_key(value.clone());
            match delay {
                Some(delay) => message.with_delay(delay),
                None => message,
            }
        })
        .collect();
    let delay_ms = delay.map_or(0, |d| d.as_millis() as u64);
    let call = Call::Publish { queue: queue.to_owned(), values, delay_ms };
    let result = shared
        .invoke(process, call, publish_via(client, stream, queue, messages), |results| Reply::Published {
            ids: results.iter().map(|r| r.message_id).collect(),
            duplicates: results.iter().map(|r| r.duplicate).collect(),
        })
        .await;
    matches!(result, Err(ref e) if Outcome::of_error(e).is_info())
}

/// Publishes over `stream` if given, else with a unary call.
async fn publish_via(
    client: &Client,
    stream: Option<&PublishStream>,
    queue: &str,
    messages: Vec<OutgoingMessage>,
) -> Result<Vec<PublishResult>, ClientError> {
    match stream {
        Some(stream) => stream.publish(queue, messages).await,
        None => client.publish(queue, messages).await,
    }
}

fn pick_kind(rng: &mut fastrand::Rng) -> &'static str {
    let total: u32 = KINDS.iter().map(|(_, weight)| weight).sum();
    let mut roll = rng.u32(0..total);
    for (kind, weight) in KINDS {
        if roll < weight {
            return kind;
        }
        roll -= weight;
    }
    unreachable!("the roll is below the total weight")
}

/// Publishes `values` to [`TOPIC`] as one batch, each with its kind as the
/// `kind` attribute. Returns whether the outcome is unknown.
async fn publish_topic(shared: &Shared, client: &Client, process: u32, values: Vec<String>) -> bool {
    let messages = values
        .iter()
        .map(|value| {
            OutgoingMessage::new(value.clone())
                .with_idempotency_key(value.clone())
                .with_attribute("kind", kind_of(value))
        })
        .collect();
    let call = Call::PublishTopic { topic: TOPIC.to_owned(), values };
    let result = shared
        .invoke(process, call, client.publish_topic(TOPIC, messages), |results| Reply::PublishedTopic {
            ids: results.iter().map(|r| r.message_id).collect(),
            copies: results
                .iter()
                .map(|r| r.copies.iter().map(|c| (c.queue.clone(), c.message_id)).collect())
                .collect(),
            duplicates: results.iter().map(|r| r.duplicate).collect(),
        })
        .await;
    matches!(result, Err(ref e) if Outcome::of_error(e).is_info())
}

/// What a consumer does with one delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handling {
    Ack,
    ExtendThenAck,
    Nack,
    DeadLetter,
    Abandon,
    AckTooLate,
}

fn pick_handling(rng: &mut fastrand::Rng) -> Handling {
    match rng.u32(0..100) {
        0..55 => Handling::Ack,
        55..63 => Handling::ExtendThenAck,
        63..76 => Handling::Nack,
        76..79 => Handling::DeadLetter,
        79..93 => Handling::Abandon,
        _ => Handling::AckTooLate,
    }
}

/// A consumer: receives and handles deliveries until the drain is done.
pub async fn consumer(shared: Arc<Shared>, process: u32) -> turmoil::Result {
    let client = shared.client();
    let mut rng = process_rng(&shared.plan, process);
    wait_for_setup(&shared).await;
    let lease_ms = shared.plan.lease_ms;
    let mut round = 0u64;
    while !shared.drained.load(Ordering::SeqCst) {
        round += 1;
        let draining = shared.past_workload();
        let queue = match (draining, rng.u32(0..100)) {
            (true, _) => ALL_QUEUES[(round % ALL_QUEUES.len() as u64) as usize],
            (false, 0..20) => DEAD_LETTER_QUEUE,
            (false, 20..35) => FAN_QUEUES[rng.usize(0..FAN_QUEUES.len())],
            (false, _) => WORK_QUEUE,
        };
        let (max, wait_ms) = if draining { (10, 300) } else { (rng.u32(1..4), rng.u64(0..800)) };
        let call = Call::Receive { queue: queue.to_owned(), max, lease_ms };
        let wait = Duration::from_millis(wait_ms);
        let lease = Some(Duration::from_millis(lease_ms));
        let received = shared
            .invoke(process, call, client.receive(queue, max, wait, lease), |deliveries| {
                Reply::Received(deliveries.iter().map(delivered).collect())
            })
            .await;
        let deliveries = match received {
            Ok(deliveries) => deliveries,
            Err(_) => {
                sleep(Duration::from_millis(rng.u64(50..300))).await;
                continue;
            }
        };
        for delivery in deliveries {
            let handling = match (draining, pick_handling(&mut rng)) {
                (true, _) => Handling::Ack,
                // Only the work queue has a DLQ: a message dead-lettered
                // elsewhere is parked for good (PRODUCT.md), and the drain
                // could never finish.
                (false, Handling::DeadLetter) if queue != WORK_QUEUE => Handling::Nack,
                (false, handling) => handling,
            };
            handle(&shared, &client, process, &mut rng, &delivery, handling).await;
        }
    }
    Ok(())
}

/// The value a delivery carries: its body, or `BODY@QUEUE` for a copy of
/// a topic message (see [`Delivered::value`]).
pub fn value_of(queue: &str, body: &[u8]) -> String {
    let body = String::from_utf8_lossy(body);
    if FAN_QUEUES.contains(&queue) { format!("{body}@{queue}") } else { body.into_owned() }
}

fn delivered(delivery: &Delivery) -> Delivered {
    Delivered {
        lease: Lease::from(&delivery.receipt),
        value: value_of(&delivery.receipt.queue, delivery.body()),
        lease_deadline_ms: delivery.lease_expires_at_ms,
        published_at_ms: delivery.message.published_at_ms,
    }
}

async fn handle(
    shared: &Shared,
    client: &Client,
    process: u32,
    rng: &mut fastrand::Rng,
    delivery: &Delivery,
    handling: Handling,
) {
    let lease = Lease::from(&delivery.receipt);
    let value = value_of(&delivery.receipt.queue, delivery.body());
    let receipt = &delivery.receipt;
    let lease_ms = shared.plan.lease_ms;
    match handling {
        Handling::Abandon => {}
        Handling::Ack | Handling::ExtendThenAck | Handling::AckTooLate => {
            if handling == Handling::AckTooLate {
                let late_ms = delivery.lease_expires_at_ms + STALE_MARGIN_MS;
                sleep(Duration::from_millis(late_ms.saturating_sub(sim_now_ms()))).await;
            } else if !shared.past_workload() {
                // Some work before the ack, sometimes longer than the lease.
                sleep(Duration::from_millis(rng.u64(0..lease_ms / 2))).await;
            }
            if handling == Handling::ExtendThenAck {
                let call = Call::Extend { lease: lease.clone(), value: value.clone(), lease_ms };
                let extend = client.extend_lease(receipt, Duration::from_millis(lease_ms));
                let _ =
                    shared.invoke(process, call, extend, |deadline| Reply::Extended { deadline_ms: *deadline }).await;
            }
            let call = Call::Ack { lease, value };
            let _ = shared.invoke(process, call, client.ack(std::slice::from_ref(receipt)), |_| Reply::Acked).await;
        }
        Handling::Nack | Handling::DeadLetter => {
            let dead_letter = handling == Handling::DeadLetter;
            let delay = (!dead_letter).then(|| Duration::from_millis(rng.u64(0..300)));
            let call = Call::Nack { lease, value, dead_letter };
            let nack = client.nack(receipt, delay, dead_letter, "simulated failure");
            let _ = shared.invoke(process, call, nack, |_| Reply::Nacked).await;
        }
    }
}
