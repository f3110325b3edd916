//! The workload that runs through every fault: publishers sending unique
//! bodies (each keyed by its body, and retried with the same key until
//! confirmed), every other one to a topic whose bindings copy it into
//! queues by its `kind` attribute, and consumers receiving and acking on
//! every queue. Everything they see is recorded for the check, a topic
//! message as one body per copy (`BODY@QUEUE`), so each copy must arrive
//! in its queue exactly as a queue publish must. Odd publishers send their
//! queue publishes over a `PublishStream`.

use std::sync::Arc;
use std::time::Duration;

use raftq_client::{Client, Filter, OutgoingMessage, PublishStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

/// Most messages one Receive asks for.
const RECEIVE_MAX: u32 = 100;
/// Long-poll wait of one Receive.
const RECEIVE_WAIT: Duration = Duration::from_millis(500);
/// Pause after a failed Receive, so an outage is not a busy loop.
const RECEIVE_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// One publish call (the client's own retries inside it included).
#[derive(Debug, Clone)]
pub struct PublishAttempt {
    pub body: String,
    /// When it returned, ms since the workload started.
    pub end_ms: u64,
    pub ok: bool,
    pub error: Option<String>,
}

/// One message as a consumer received it.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub body: String,
    pub id: u64,
}

/// What the consumers saw.
#[derive(Debug, Default)]
pub struct ConsumerLog {
    pub deliveries: Vec<Delivered>,
    pub acks_ok: u64,
    pub acks_failed: u64,
    pub receive_errors: u64,
}

/// How hard the workload pushes.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    pub publishers: usize,
    /// Publish calls per second, per publisher.
    pub rate_per_publisher: f64,
    pub consumers: usize,
    /// Bound on one publish call (its retries included).
    pub call_limit: Duration,
}

/// A topic the publishers also publish to, and its bound queues, each with
/// the one `kind` it accepts (`None`: every kind). Messages alternate
/// between kinds `a` and `b`.
#[derive(Debug, Clone)]
pub struct TopicLoad {
    pub topic: String,
    pub queues: Vec<(String, Option<String>)>,
}

impl TopicLoad {
    /// The fan-out of the chaos scenarios: `{queue}-fan-a` takes kind a,
    /// `{queue}-fan-all` every message.
    pub fn for_queue(queue: &str) -> Self {
        Self {
            topic: format!("{queue}-topic"),
            queues: vec![(format!("{queue}-fan-a"), Some("a".into())), (format!("{queue}-fan-all"), None)],
        }
    }

    /// The filter each queue is bound with.
    pub fn bindings(&self) -> Vec<(String, Filter)> {
        self.queues
            .iter()
            .map(|(queue, kind)| {
                let filter = kind.as_ref().map_or_else(Filter::all, |kind| Filter::all().equals("kind", kind.clone()));
                (queue.clone(), filter)
            })
            .collect()
    }

    /// The body each copy of `body` (of `kind`) must arrive with.
    fn copies(&self, body: &str, kind: &str) -> Vec<String> {
        self.queues
            .iter()
            .filter(|(_, accepts)| accepts.as_deref().is_none_or(|k| k == kind))
            .map(|(queue, _)| copy_body(body, queue))
            .collect()
    }
}

/// How a copy of topic message `body` in `queue` is recorded.
fn copy_body(body: &str, queue: &str) -> String {
    format!("{body}@{queue}")
}

/// The running workload.
#[derive(Debug)]
pub struct Workload {
    pub started: Instant,
    /// Confirmed publishes so far (to wait for the first).
    confirmed: Arc<watch::Sender<u64>>,
    stop_publishers: watch::Sender<bool>,
    stop_consumers: watch::Sender<bool>,
    publishers: Vec<JoinHandle<Vec<PublishAttempt>>>,
    consumers: Vec<JoinHandle<ConsumerLog>>,
}

impl Workload {
    /// Starts publishers on `queue` and `topic`, consumers on `queue` and
    /// on each of the topic's queues; each gets its own client from
    /// `make_client`. Bodies are `"{run}-p{n}-{seq}"`, and
    /// `"{run}-p{n}-{seq}.{kind}"` for the topic.
    pub fn start(
        queue: &str,
        topic: &TopicLoad,
        run: &str,
        config: &WorkloadConfig,
        mut make_client: impl FnMut() -> anyhow::Result<Client>,
    ) -> anyhow::Result<Self> {
        let started = Instant::now();
        let confirmed = Arc::new(watch::Sender::new(0));
        let (stop_publishers, stop_p) = watch::channel(false);
        let (stop_consumers, stop_c) = watch::channel(false);
        let period = Duration::from_secs_f64(1.0 / config.rate_per_publisher.max(0.1));
        let mut publishers = Vec::new();
        for n in 0..config.publishers {
            let client = make_client()?;
            let publisher = Publisher {
                // Odd publishers send their queue publishes over a
                // PublishStream (the faults then break streams too).
                stream: (n % 2 == 1).then(|| client.publish_stream()),
                client,
                queue: queue.to_owned(),
                topic: topic.clone(),
                prefix: format!("{run}-p{n}"),
                period,
                started,
                confirmed: confirmed.clone(),
            };
            publishers.push(tokio::spawn(publisher.run(stop_p.clone())));
        }
        let mut consumers = Vec::new();
        for _ in 0..config.consumers {
            consumers.push(tokio::spawn(consume(make_client()?, queue.to_owned(), false, stop_c.clone())));
        }
        for (fan_queue, _) in &topic.queues {
            consumers.push(tokio::spawn(consume(make_client()?, fan_queue.clone(), true, stop_c.clone())));
        }
        Ok(Self { started, confirmed, stop_publishers, stop_consumers, publishers, consumers })
    }

    /// Waits (at most `limit`) for the first confirmed publish.
    pub async fn wait_first_confirmed(&self, limit: Duration) -> bool {
        let mut confirmed = self.confirmed.subscribe();
        matches!(tokio::time::timeout(limit, confirmed.wait_for(|n| *n > 0)).await, Ok(Ok(_)))
    }

    /// Stops the publishers (each finishes the call in flight) and returns
    /// every attempt, and the time they stopped (ms since start).
    pub async fn stop_publishing(&mut self) -> (Vec<PublishAttempt>, u64) {
        let _ = self.stop_publishers.send(true);
        let mut attempts = Vec::new();
        for handle in self.publishers.drain(..) {
            attempts.extend(handle.await.unwrap_or_default());
        }
        (attempts, self.started.elapsed().as_millis() as u64)
    }

    /// Stops the consumers and returns what they saw.
    pub async fn stop_consuming(mut self) -> ConsumerLog {
        let _ = self.stop_consumers.send(true);
        let mut log = ConsumerLog::default();
        for handle in self.consumers.drain(..) {
            let part = handle.await.unwrap_or_default();
            log.deliveries.extend(part.deliveries);
            log.acks_ok += part.acks_ok;
            log.acks_failed += part.acks_failed;
            log.receive_errors += part.receive_errors;
        }
        log
    }
}

/// One publishing task.
struct Publisher {
    client: Client,
    stream: Option<PublishStream>,
    queue: String,
    topic: TopicLoad,
    prefix: String,
    /// Time between publish calls.
    period: Duration,
    started: Instant,
    confirmed: Arc<watch::Sender<u64>>,
}

impl Publisher {
    /// Publishes body after body; a failed call is retried with the same
    /// body and key (so the dedup window, not luck, keeps it single).
    async fn run(self, mut stop: watch::Receiver<bool>) -> Vec<PublishAttempt> {
        let mut attempts = Vec::new();
        let mut ticks = tokio::time::interval(self.period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut seq = 0u64;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return attempts;
            }
            // Odd sequence numbers go to the topic, alternating kinds.
            let kind = if seq % 4 == 1 { "a" } else { "b" };
            let to_topic = seq % 2 == 1;
            let body =
                if to_topic { format!("{}-{seq}.{kind}", self.prefix) } else { format!("{}-{seq}", self.prefix) };
            let message = OutgoingMessage::new(body.clone()).with_idempotency_key(body.clone());
            let result = if to_topic {
                let message = message.with_attribute("kind", kind);
                self.client.publish_topic(&self.topic.topic, vec![message]).await.map(|_| ())
            } else {
                match &self.stream {
                    Some(stream) => stream.publish(&self.queue, vec![message]).await.map(|_| ()),
                    None => self.client.publish_one(&self.queue, message).await.map(|_| ()),
                }
            };
            let end_ms = self.started.elapsed().as_millis() as u64;
            let ok = result.is_ok();
            if ok {
                seq += 1;
                self.confirmed.send_modify(|n| *n += 1);
            }
            let error = result.err().map(|e| e.to_string());
            // A topic message is judged copy by copy.
            let bodies = if to_topic { self.topic.copies(&body, kind) } else { vec![body] };
            for body in bodies {
                attempts.push(PublishAttempt { body, end_ms, ok, error: error.clone() });
            }
        }
    }
}

/// One consuming task: receive, record, ack the batch.
/// `copies`: the queue holds copies of topic messages (recorded as
/// `BODY@QUEUE`).
async fn consume(client: Client, queue: String, copies: bool, mut stop: watch::Receiver<bool>) -> ConsumerLog {
    let mut log = ConsumerLog::default();
    while !*stop.borrow() {
        match client.receive(&queue, RECEIVE_MAX, RECEIVE_WAIT, None).await {
            Ok(deliveries) if deliveries.is_empty() => {}
            Ok(deliveries) => {
                let receipts: Vec<_> = deliveries.iter().map(|d| d.receipt.clone()).collect();
                for delivery in &deliveries {
                    let mut body = String::from_utf8_lossy(delivery.body()).into_owned();
                    if copies {
                        body = copy_body(&body, &queue);
                    }
                    log.deliveries.push(Delivered { body, id: delivery.message_id() });
                }
                match client.ack(&receipts).await {
                    Ok(n) => log.acks_ok += n,
                    // Ack is all-or-nothing: these come back after their lease.
                    Err(_) => log.acks_failed += receipts.len() as u64,
                }
            }
            Err(e) => {
                log.receive_errors += 1;
                tracing::debug!(error = %e, "receive failed");
                tokio::select! {
                    _ = tokio::time::sleep(RECEIVE_ERROR_PAUSE) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
    log
}
