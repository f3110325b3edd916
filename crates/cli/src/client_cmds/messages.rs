//! `publish`, `consume`, `ack`, `nack`, `peek`, `inspect`, `dlq redrive`.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use raftq_client::{
    BATCH_BYTES_MAX, BATCH_MESSAGES_MAX, Client, MessageState, NackOutcome, OutgoingMessage, PublishStream,
    RECEIVE_WAIT_MAX, Receipt,
};
use serde_json::json;
use tokio::{
    io::{AsyncBufRead, AsyncBufReadExt as _, BufReader},
    time::Instant,
};

use super::{output, parse_attribute, parse_duration, parse_rate, parse_receipt};

/// `publish QUEUE [BODY...]`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Queue to publish to.
    pub queue: String,
    #[command(flatten)]
    pub content: MessageArgs,
}

/// The messages of a publish (to a queue or a topic).
#[derive(Debug, Args)]
pub struct MessageArgs {
    /// Message bodies, one message each. None: each line of stdin is one.
    pub bodies: Vec<String>,
    /// Idempotency key (only with exactly one message). Without it the
    /// client makes one per message.
    #[arg(long)]
    pub key: Option<String>,
    /// Delay before the messages are visible.
    #[arg(long, value_parser = parse_duration)]
    pub delay: Option<Duration>,
    /// Attribute key=value on every message (repeatable).
    #[arg(long = "attr", value_name = "KEY=VALUE", value_parser = parse_attribute)]
    pub attributes: Vec<(String, String)>,
}

/// `consume QUEUE --max N`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Queue to consume.
    pub queue: String,
    /// Most messages to receive.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max: u64,
    /// Stop when nothing new arrived for this long.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub wait: Duration,
    /// Print without acking (the messages come back when their leases end).
    #[arg(long)]
    pub no_ack: bool,
    /// Lease for these deliveries (default: the queue's).
    #[arg(long, value_parser = parse_duration)]
    pub lease: Option<Duration>,
}

/// `ack RECEIPT...`.
#[derive(Debug, Args)]
pub struct AckArgs {
    /// Receipts `queue/id/attempt`, acked all or none (per 1000).
    #[arg(required = true, value_parser = parse_receipt)]
    pub receipts: Vec<Receipt>,
}

/// `nack RECEIPT`.
#[derive(Debug, Args)]
pub struct NackArgs {
    /// Receipt `queue/id/attempt`.
    #[arg(value_parser = parse_receipt)]
    pub receipt: Receipt,
    /// Redeliver after this long (default: the queue's backoff).
    #[arg(long, value_parser = parse_duration)]
    pub delay: Option<Duration>,
    /// Dead-letter the message now.
    #[arg(long)]
    pub dead_letter: bool,
    /// Why, kept in the message history.
    #[arg(long, default_value = "")]
    pub reason: String,
}

/// Which messages `peek` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateArg {
    Ready,
    Leased,
    Delayed,
    Dead,
    Any,
}

impl StateArg {
    /// Peek's filter: `None` = any state.
    pub(crate) fn to_state(self) -> Option<MessageState> {
        match self {
            Self::Ready => Some(MessageState::Ready),
            Self::Leased => Some(MessageState::Leased),
            Self::Delayed => Some(MessageState::Delayed),
            Self::Dead => Some(MessageState::Dead),
            Self::Any => None,
        }
    }
}

/// `peek QUEUE`.
#[derive(Debug, Args)]
pub struct PeekArgs {
    /// Queue to look into.
    pub queue: String,
    /// Only messages in this state.
    #[arg(long, value_enum, default_value_t = StateArg::Any)]
    pub state: StateArg,
    /// Most messages to show.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: u64,
}

/// `inspect QUEUE ID`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Queue holding the message.
    pub queue: String,
    /// Message id.
    pub id: u64,
}

/// Dead-letter commands.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Move dead letters back to the queues they died in.
    Redrive {
        /// The dead-letter queue (or a queue with parked dead messages).
        queue: String,
        /// Most messages to move (default: all).
        #[arg(long, default_value_t = 0)]
        max: u32,
        /// Rate limit, e.g. 100/s.
        #[arg(long, value_parser = parse_rate)]
        rate: Option<u32>,
    },
}

/// How long a partial batch read from stdin waits for the next line, so
/// `tail -f log | raftq publish q` sends promptly.
const STDIN_LINGER: Duration = Duration::from_millis(50);
/// An empty receive that came back sooner than this did not long-poll (the
/// server answered early): `consume` then pauses instead of spinning.
const EARLY_EMPTY_RECEIVE: Duration = Duration::from_millis(10);
/// The pause after such an early empty receive.
const EARLY_EMPTY_PAUSE: Duration = Duration::from_millis(100);

/// Groups messages into Publish requests within the server's limits (1000
/// messages, 4 MiB of bodies and attributes).
#[derive(Debug, Default)]
pub(crate) struct Batches {
    batch: Vec<OutgoingMessage>,
    batch_bytes: usize,
}

impl Batches {
    /// Adds `message`; returns the full batch it did not fit in, if any.
    pub(crate) fn push(&mut self, message: OutgoingMessage) -> Option<Vec<OutgoingMessage>> {
        let size = message.size_bytes();
        let full = !self.batch.is_empty()
            && (self.batch.len() >= BATCH_MESSAGES_MAX || self.batch_bytes + size > BATCH_BYTES_MAX);
        let done = full.then(|| self.take());
        self.batch_bytes += size;
        self.batch.push(message);
        done
    }

    /// Takes what is batched so far.
    pub(crate) fn take(&mut self) -> Vec<OutgoingMessage> {
        self.batch_bytes = 0;
        std::mem::take(&mut self.batch)
    }
}

/// Where a publish goes.
#[derive(Clone, Copy, Debug)]
pub(super) enum Target<'a> {
    Queue(&'a str),
    Topic(&'a str),
}

pub(super) async fn publish(client: &Client, args: PublishArgs, json: bool) -> Result<()> {
    publish_to(client, Target::Queue(&args.queue), args.content, json).await
}

/// Publishes each body (or each line of stdin) to `target`, in batches, one
/// after another (queue batches over a PublishStream), so the ids print in
/// order and a failure stops before the next batch.
pub(super) async fn publish_to(client: &Client, target: Target<'_>, args: MessageArgs, json: bool) -> Result<()> {
    let stream = client.publish_stream();
    let sender = &Sender { client, stream: &stream };
    let build = |body: Bytes| {
        let mut message = OutgoingMessage::new(body);
        message.attributes.extend(args.attributes.iter().cloned());
        message.delay = args.delay;
        message.idempotency_key.clone_from(&args.key);
        message
    };
    let mut batches = Batches::default();
    if !args.bodies.is_empty() {
        if args.key.is_some() && args.bodies.len() != 1 {
            bail!("--key needs exactly one message, got {}", args.bodies.len());
        }
        for body in &args.bodies {
            if let Some(batch) = batches.push(build(Bytes::from(body.clone()))) {
                publish_batch(sender, target, batch, json).await?;
            }
        }
        return publish_batch(sender, target, batches.take(), json).await;
    }
    // With --key the whole of stdin must be read first: it must be one line.
    let linger = if args.key.is_some() { None } else { Some(STDIN_LINGER) };
    let mut stdin = StdinLines::new(BufReader::new(tokio::io::stdin()));
    let mut lines = 0usize;
    loop {
        let line = match stdin.next(linger.filter(|_| !batches.batch.is_empty())).await? {
            Line::Text(line) => line,
            Line::Idle => {
                publish_batch(sender, target, batches.take(), json).await?;
                continue;
            }
            Line::End => break,
        };
        lines += 1;
        if args.key.is_some() && lines > 1 {
            bail!("--key needs exactly one message, but stdin has more than one line");
        }
        if let Some(batch) = batches.push(build(line)) {
            publish_batch(sender, target, batch, json).await?;
        }
    }
    if args.key.is_some() && lines == 0 {
        bail!("--key needs exactly one message, but stdin is empty");
    }
    publish_batch(sender, target, batches.take(), json).await
}

/// The client, and the stream queue publishes go over.
struct Sender<'a> {
    client: &'a Client,
    stream: &'a PublishStream,
}

/// Publishes one batch (nothing for an empty one) and prints the ids.
async fn publish_batch(sender: &Sender<'_>, target: Target<'_>, batch: Vec<OutgoingMessage>, json: bool) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let queue = match target {
        Target::Queue(queue) => queue,
        Target::Topic(topic) => {
            for result in sender.client.publish_topic(topic, batch).await? {
                if json {
                    println!("{}", output::topic_result_json(&result));
                } else {
                    println!("{}", output::topic_result_line(&result));
                }
            }
            return Ok(());
        }
    };
    for result in sender.stream.publish(queue, batch).await? {
        if json {
            println!("{}", json!({ "message_id": result.message_id, "duplicate": result.duplicate }));
        } else {
            println!("{}", result.message_id);
        }
    }
    Ok(())
}

/// What [`StdinLines::next`] saw.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// One line, without its `\n` (or `\r\n`).
    Text(Bytes),
    /// No complete line within the linger.
    Idle,
    /// End of input.
    End,
}

/// Lines of a byte stream (not necessarily UTF-8), with an optional wait.
pub(crate) struct StdinLines<R> {
    reader: R,
    /// A line read so far; kept across an `Idle`, so nothing is lost.
    partial: Vec<u8>,
}

impl<R: AsyncBufRead + Unpin> StdinLines<R> {
    pub(crate) fn new(reader: R) -> Self {
        Self { reader, partial: Vec::new() }
    }

    /// The next line, or `Idle` if none completes within `linger`.
    pub(crate) async fn next(&mut self, linger: Option<Duration>) -> Result<Line> {
        // `read_until` appends to `partial` as bytes arrive, so a read cut off
        // by the timeout loses nothing: the next call continues the line.
        let read = self.reader.read_until(b'\n', &mut self.partial);
        let n = match linger {
            Some(linger) => match tokio::time::timeout(linger, read).await {
                Ok(n) => n,
                Err(_) => return Ok(Line::Idle),
            },
            None => read.await,
        }
        .context("reading stdin")?;
        if n == 0 && self.partial.is_empty() {
            return Ok(Line::End);
        }
        let mut line = std::mem::take(&mut self.partial);
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        Ok(Line::Text(Bytes::from(line)))
    }
}

pub(super) async fn consume(client: &Client, args: ConsumeArgs, json: bool) -> Result<()> {
    let mut received = 0u64;
    let mut quiet_until = Instant::now() + args.wait;
    while received < args.max {
        let left = quiet_until.saturating_duration_since(Instant::now());
        let max_messages = u32::try_from((args.max - received).min(BATCH_MESSAGES_MAX as u64)).unwrap_or(1);
        let started = Instant::now();
        let deliveries = client.receive(&args.queue, max_messages, left.min(RECEIVE_WAIT_MAX), args.lease).await?;
        if deliveries.is_empty() {
            if Instant::now() >= quiet_until {
                break;
            }
            // A server that answered before the wait ran out: don't spin.
            if started.elapsed() < EARLY_EMPTY_RECEIVE {
                tokio::time::sleep(EARLY_EMPTY_PAUSE.min(left)).await;
            }
            continue;
        }
        for d in &deliveries {
            if json {
                println!("{}", output::delivery_json(&d.message, &d.receipt, d.lease_expires_at_ms));
            } else {
                println!("{}", output::delivery_line(&d.message));
            }
        }
        if !args.no_ack {
            let receipts: Vec<Receipt> = deliveries.iter().map(|d| d.receipt.clone()).collect();
            client.ack(&receipts).await.context("acking the messages just printed")?;
        }
        received += deliveries.len() as u64;
        quiet_until = Instant::now() + args.wait;
    }
    Ok(())
}

pub(super) async fn ack(client: &Client, args: AckArgs, json: bool) -> Result<()> {
    let mut acked = 0;
    for chunk in args.receipts.chunks(BATCH_MESSAGES_MAX) {
        acked += client.ack(chunk).await?;
    }
    if json {
        println!("{}", json!({ "acked": acked }));
    } else {
        println!("acked {acked}");
    }
    Ok(())
}

pub(super) async fn nack(client: &Client, args: NackArgs, json: bool) -> Result<()> {
    let outcome = client.nack(&args.receipt, args.delay, args.dead_letter, &args.reason).await?;
    match outcome {
        NackOutcome::DeadLettered if json => {
            println!("{}", json!({ "outcome": "dead_lettered", "visible_at_ms": 0 }))
        }
        NackOutcome::DeadLettered => println!("dead-lettered {}", args.receipt),
        NackOutcome::Redeliver { visible_at_ms } if json => {
            println!("{}", json!({ "outcome": "redeliver", "visible_at_ms": visible_at_ms }))
        }
        NackOutcome::Redeliver { visible_at_ms } => {
            println!("{} will be redelivered at {}", args.receipt, output::timestamp(visible_at_ms))
        }
    }
    Ok(())
}

pub(super) async fn peek(client: &Client, args: PeekArgs, json: bool) -> Result<()> {
    let mut shown = 0u64;
    let mut after_id = None;
    while shown < args.limit {
        let page_size = u32::try_from((args.limit - shown).min(BATCH_MESSAGES_MAX as u64)).unwrap_or(1);
        let page = client.peek(&args.queue, args.state.to_state(), after_id, page_size).await?;
        for m in page.messages.iter().take(usize::try_from(args.limit - shown).unwrap_or(usize::MAX)) {
            if json {
                println!("{}", output::message_json(m));
            } else {
                println!("{}", output::message_line(m));
            }
            shown += 1;
        }
        match page.next_after_id {
            Some(next) if after_id.is_none_or(|after| next > after) && !page.messages.is_empty() => {
                after_id = Some(next)
            }
            _ => break,
        }
    }
    if shown == 0 && !json {
        // Say so rather than print nothing (acked messages are gone).
        let which = match args.state {
            StateArg::Any => String::new(),
            other => format!("{} ", format!("{other:?}").to_lowercase()),
        };
        eprintln!("{}: no {which}messages (acked, expired and purged messages are gone)", args.queue);
    }
    Ok(())
}

pub(super) async fn inspect(client: &Client, args: InspectArgs, json: bool) -> Result<()> {
    let message = client.inspect(&args.queue, args.id).await?;
    if json {
        println!("{}", output::message_json(&message));
    } else {
        print!("{}", output::message_details(&message));
    }
    Ok(())
}

pub(super) async fn dlq(client: &Client, command: DlqCommand, json: bool) -> Result<()> {
    let DlqCommand::Redrive { queue, max, rate } = command;
    let moved = client.redrive(&queue, max, rate).await?;
    if json {
        println!("{}", json!({ "moved": moved }));
    } else {
        println!("moved {moved} messages out of {queue}");
    }
    Ok(())
}
