//! [`Publisher`]: batches single publishes into requests in a background
//! task, sent over one [`PublishStream`] (falling back to unary Publish
//! retries for any request the stream does not settle).
//!
//! Each message gets its idempotency key when it is enqueued, before any
//! batch exists, so a batch retried after a leader failover carries the same
//! keys and is deduplicated rather than stored twice.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use futures_util::{StreamExt, stream::FuturesUnordered};
use raftq_proto::v1 as proto;
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};

use crate::{
    client::Client, config::PublisherConfig, convert::publish_message, error::ClientError,
    publish_stream::PublishStream, types::OutgoingMessage,
};

/// Most messages waiting in the channel to the batching task; beyond this
/// `enqueue` waits (back-pressure instead of unbounded memory).
const QUEUED_MESSAGES_MAX: usize = 65_536;

/// A batching publisher for one queue. Cheap to clone; the background task
/// stops once every clone is dropped and what was enqueued is settled.
#[derive(Debug, Clone)]
pub struct Publisher {
    /// Assigns idempotency keys at enqueue time.
    client: Client,
    /// To the batching task.
    tx: mpsc::Sender<Command>,
}

/// The outcome of one enqueued message: resolves to its id once the batch
/// holding it committed (or to the batch's error).
#[derive(Debug)]
pub struct PendingPublish {
    rx: oneshot::Receiver<Result<u64, ClientError>>,
}

impl Future for PendingPublish {
    type Output = Result<u64, ClientError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map(|result| result.unwrap_or(Err(ClientError::Closed("publisher"))))
    }
}

#[derive(Debug)]
enum Command {
    Publish(Item),
    /// Send everything enqueued so far, then answer.
    Flush(oneshot::Sender<()>),
}

/// One enqueued message.
#[derive(Debug)]
struct Item {
    /// Keyed wire message.
    message: proto::PublishMessage,
    /// Its size against `max_batch_bytes`.
    size_bytes: usize,
    done: oneshot::Sender<Result<u64, ClientError>>,
}

impl Client {
    /// A batching publisher to `queue`, running on the current Tokio runtime.
    pub fn publisher(&self, queue: &str, config: PublisherConfig) -> Result<Publisher, ClientError> {
        config.validate()?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| ClientError::Config("a publisher needs a Tokio runtime".into()))?;
        let capacity = (config.max_batch_messages * config.max_inflight_batches).min(QUEUED_MESSAGES_MAX);
        let (tx, rx) = mpsc::channel(capacity);
        let batcher = Batcher {
            stream: self.publish_stream(),
            queue: Arc::from(queue),
            config,
            rx,
            open: true,
            batch: Vec::new(),
            batch_bytes: 0,
            linger_until: None,
            held: None,
            flushes: Vec::new(),
        };
        runtime.spawn(batcher.run());
        Ok(Publisher { client: self.clone(), tx })
    }
}

impl Publisher {
    /// Enqueues `message` (waiting only for room in the queue to the
    /// batching task) and returns the future of its id.
    pub async fn enqueue(&self, mut message: OutgoingMessage) -> Result<PendingPublish, ClientError> {
        self.client.assign_key(&mut message);
        let size_bytes = message.size_bytes();
        let (done, rx) = oneshot::channel();
        let item = Item { message: publish_message(message), size_bytes, done };
        self.tx.send(Command::Publish(item)).await.map_err(|_| ClientError::Closed("publisher"))?;
        Ok(PendingPublish { rx })
    }

    /// Publishes `message` through the batcher; resolves to its id.
    pub async fn publish(&self, message: OutgoingMessage) -> Result<u64, ClientError> {
        self.enqueue(message).await?.await
    }

    /// Sends every message enqueued before this call at once (ignoring
    /// linger) and waits until all of them are settled.
    pub async fn flush(&self) -> Result<(), ClientError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Command::Flush(tx)).await.map_err(|_| ClientError::Closed("publisher"))?;
        rx.await.map_err(|_| ClientError::Closed("publisher"))
    }
}

/// The background task's state.
struct Batcher {
    stream: PublishStream,
    queue: Arc<str>,
    config: PublisherConfig,
    rx: mpsc::Receiver<Command>,
    /// False once every `Publisher` is dropped: drain, then stop.
    open: bool,
    /// The batch being filled.
    batch: Vec<Item>,
    batch_bytes: usize,
    /// When the batch must go even if not full; `None` while it is empty.
    linger_until: Option<Instant>,
    /// A message that did not fit the current batch's bytes: it starts the
    /// next one. While set, nothing more is accepted.
    held: Option<Item>,
    /// Flush requests waiting for everything before them to settle.
    flushes: Vec<oneshot::Sender<()>>,
}

impl Batcher {
    async fn run(mut self) {
        let mut inflight = FuturesUnordered::new();
        loop {
            while inflight.len() < self.config.max_inflight_batches && self.ready_to_send() {
                inflight.push(self.take_batch());
                if let Some(item) = self.held.take() {
                    self.add(item);
                }
            }
            let idle = self.batch.is_empty() && self.held.is_none() && inflight.is_empty();
            if idle {
                for flush in self.flushes.drain(..) {
                    let _ = flush.send(());
                }
                if !self.open {
                    return;
                }
            }
            let accept = self.open
                && self.held.is_none()
                && self.flushes.is_empty()
                && self.batch.len() < self.config.max_batch_messages;
            let linger = self.linger_until;
            tokio::select! {
                command = self.rx.recv(), if accept => match command {
                    None => self.open = false,
                    Some(Command::Publish(item)) => self.add(item),
                    Some(Command::Flush(done)) => self.flushes.push(done),
                },
                // Wakes the loop to send a lingering batch; once the time has
                // passed the guard is off, so a batch waiting for room in
                // flight does not spin.
                () = sleep_until(linger), if linger.is_some_and(|t| t > Instant::now()) => {}
                Some(()) = inflight.next(), if !inflight.is_empty() => {}
                else => {
                    // Unreachable by the guards above (a non-empty batch with
                    // no room has requests in flight); stop rather than spin.
                    debug_assert!(false, "publisher batcher has nothing to wait for");
                    return;
                }
            }
        }
    }

    /// Whether the current batch should go now.
    fn ready_to_send(&self) -> bool {
        !self.batch.is_empty()
            && (self.batch.len() >= self.config.max_batch_messages
                || self.held.is_some()
                || self.linger_until.is_some_and(|t| t <= Instant::now())
                || !self.open
                || !self.flushes.is_empty())
    }

    /// Adds `item` to the batch, or holds it for the next one if it would
    /// push the batch past `max_batch_bytes` (an item alone always fits).
    fn add(&mut self, item: Item) {
        if !self.batch.is_empty() && self.batch_bytes + item.size_bytes > self.config.max_batch_bytes {
            self.held = Some(item);
            return;
        }
        if self.batch.is_empty() {
            self.linger_until = Some(Instant::now() + self.config.linger);
        }
        self.batch_bytes += item.size_bytes;
        self.batch.push(item);
    }

    /// Takes the batch and returns the request that settles its messages.
    fn take_batch(&mut self) -> impl Future<Output = ()> + use<> {
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        self.linger_until = None;
        let stream = self.stream.clone();
        let queue = Arc::clone(&self.queue);
        async move {
            let (messages, dones): (Vec<_>, Vec<_>) = batch.into_iter().map(|item| (item.message, item.done)).unzip();
            match stream.publish_keyed(&queue, messages).await {
                Ok(results) => {
                    for (done, result) in dones.into_iter().zip(results) {
                        let _ = done.send(Ok(result.message_id));
                    }
                }
                Err(err) => {
                    for done in dones {
                        let _ = done.send(Err(err.clone()));
                    }
                }
            }
        }
    }
}

/// Sleeps until `deadline`; forever for `None` (the branch is disabled
/// then anyway).
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
