//! Workloads the tests share: many keyed publishes from concurrent tasks,
//! and draining a queue completely.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use raftq_client::{Client, ClientError, Message, OutgoingMessage, PublishResult, PublishStream, Receipt};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep};

/// How long one message may keep failing (with retryable errors) before its
/// producer gives up on it: far beyond the two election timeouts a
/// failover should take (G7).
pub const PUBLISH_GIVE_UP: Duration = Duration::from_secs(60);
/// Pause after a failed publish before the producer tries it again (the
/// client has already backed off inside the call; this only keeps a
/// producer from spinning on an error that comes back at once).
const PUBLISH_RETRY_PAUSE: Duration = Duration::from_millis(100);
/// A drain is over once no message came for this long and the queue's
/// stats show nothing ready, leased or delayed.
const DRAIN_QUIET: Duration = Duration::from_secs(2);
/// Longest a whole drain may take.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);
/// Lease of a drain's deliveries: if an ack fails the message comes back
/// within the drain.
const DRAIN_LEASE: Duration = Duration::from_secs(15);
/// Long-poll wait of one drain receive.
const DRAIN_WAIT: Duration = Duration::from_millis(500);

/// One confirmed publish.
#[derive(Debug, Clone)]
pub struct Confirm {
    pub body: String,
    /// The id the cluster gave it.
    pub id: u64,
    /// When the attempt that got the confirmation was started.
    pub started: Instant,
    /// When the confirmation arrived.
    pub done: Instant,
}

/// What a [`publish_all`] achieved.
#[derive(Debug, Default)]
pub struct PublishOutcome {
    pub confirmed: Vec<Confirm>,
    /// Bodies given up on, with the last error.
    pub failed: Vec<(String, ClientError)>,
}

/// Publishes each body once from `producers` concurrent tasks, one message
/// per request, with the body as its idempotency key, so retrying a message
/// (here or inside the client) can never store it twice. A message that
/// fails with a retryable error is tried again until [`PUBLISH_GIVE_UP`]
/// passes; `on_confirm` sees every confirmation as it arrives.
pub async fn publish_all(
    client: &Client,
    queue: &str,
    bodies: Vec<String>,
    producers: usize,
    on_confirm: impl Fn(&Confirm) + Send + Sync + 'static,
) -> PublishOutcome {
    publish_all_via(Via::Unary(client.clone()), queue, bodies, producers, on_confirm).await
}

/// How a workload publishes: unary calls, or one shared PublishStream.
#[derive(Clone)]
pub enum Via {
    Unary(Client),
    Stream(PublishStream),
}

impl Via {
    async fn publish_one(&self, queue: &str, message: OutgoingMessage) -> Result<PublishResult, ClientError> {
        match self {
            Self::Unary(client) => client.publish_one(queue, message).await,
            Self::Stream(stream) => {
                let mut results = stream.publish(queue, vec![message]).await?;
                Ok(results.pop().expect("one result per message"))
            }
        }
    }
}

/// [`publish_all`] through `via`.
pub async fn publish_all_via(
    via: Via,
    queue: &str,
    bodies: Vec<String>,
    producers: usize,
    on_confirm: impl Fn(&Confirm) + Send + Sync + 'static,
) -> PublishOutcome {
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let on_confirm = Arc::new(on_confirm);
    let mut tasks = JoinSet::new();
    for _ in 0..producers {
        let (via, queue, bodies, next, on_confirm) =
            (via.clone(), queue.to_owned(), bodies.clone(), next.clone(), on_confirm.clone());
        tasks.spawn(async move {
            let mut outcome = PublishOutcome::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { return outcome };
                match publish_until_confirmed(&via, &queue, body).await {
                    Ok(confirm) => {
                        on_confirm(&confirm);
                        outcome.confirmed.push(confirm);
                    }
                    Err(err) => outcome.failed.push((body.clone(), err)),
                }
            }
        });
    }
    let mut all = PublishOutcome::default();
    while let Some(joined) = tasks.join_next().await {
        let outcome = joined.expect("producer task panicked");
        all.confirmed.extend(outcome.confirmed);
        all.failed.extend(outcome.failed);
    }
    all
}

async fn publish_until_confirmed(via: &Via, queue: &str, body: &str) -> Result<Confirm, ClientError> {
    let first = Instant::now();
    loop {
        let started = Instant::now();
        let message = OutgoingMessage::new(body.to_owned()).with_idempotency_key(body);
        match via.publish_one(queue, message).await {
            Ok(result) => {
                return Ok(Confirm { body: body.to_owned(), id: result.message_id, started, done: Instant::now() });
            }
            Err(err) if err.is_retryable() && first.elapsed() < PUBLISH_GIVE_UP => {
                sleep(PUBLISH_RETRY_PAUSE).await;
            }
            Err(err) => return Err(err),
        }
    }
}

/// Receives and acks until the queue is empty: no message for
/// [`DRAIN_QUIET`] and nothing ready, leased or delayed in its stats.
/// Returns every delivered message in delivery order (a redelivered one
/// appears once per delivery).
pub async fn drain(client: &Client, queue: &str) -> Vec<Message> {
    let deadline = Instant::now() + DRAIN_LIMIT;
    let mut delivered = Vec::new();
    let mut last_delivery = Instant::now();
    loop {
        assert!(
            Instant::now() < deadline,
            "drain of {queue:?} not done after {DRAIN_LIMIT:?} ({} deliveries so far)",
            delivered.len()
        );
        match client.receive(queue, 1_000, DRAIN_WAIT, Some(DRAIN_LEASE)).await {
            Ok(batch) if !batch.is_empty() => {
                let receipts: Vec<Receipt> = batch.iter().map(|d| d.receipt.clone()).collect();
                if let Err(err) = client.ack(&receipts).await {
                    // Those messages come back when the lease ends.
                    eprintln!("drain {queue}: ack of {} receipts failed: {err}", receipts.len());
                }
                delivered.extend(batch.into_iter().map(|d| d.message));
                last_delivery = Instant::now();
            }
            Ok(_) if last_delivery.elapsed() >= DRAIN_QUIET => {
                let info = client.get_queue(queue).await.expect("get_queue during drain");
                let stats = info.stats;
                if stats.ready + stats.leased + stats.delayed == 0 {
                    return delivered;
                }
            }
            Ok(_) => {}
            Err(err) if err.is_retryable() => {
                eprintln!("drain {queue}: receive failed, retrying: {err}");
                sleep(PUBLISH_RETRY_PAUSE).await;
            }
            Err(err) => panic!("drain {queue}: receive failed: {err}"),
        }
    }
}

/// A message body as text.
pub fn body_text(message: &Message) -> String {
    String::from_utf8_lossy(&message.body).into_owned()
}
