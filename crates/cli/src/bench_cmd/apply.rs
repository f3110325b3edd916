//! The apply scenario: no cluster, no network, no Raft log. One node's
//! state machine alone, in a scratch directory: the same `raftq-core`
//! commands a node applies, each read and written as the node does
//! (a transaction over the store, one batch per entry), timed on this
//! thread. What a message costs inside `apply`, apart from everything
//! else a cluster does, and how much of it is the store's.
//!
//! Two replicas are driven side by side with the same commands: the
//! answering node's (a receive reads the bodies it delivers) and a
//! follower's (it does not); a cluster of three applies each entry once
//! on the first and twice like the second.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use raftq_core::kv::Txn;
use raftq_core::{Answer, Command, ConfigUpdate, DedupCaps, NewMessage, Outcome, Receipt};
use raftq_storage::{MemDisk, MemStore, RocksStore, StateStore};

use super::{BenchArgs, StateKind};

/// A leader-stamped entry time that moves 1 ms per entry: leases (30 s by
/// default) stay live through any run this bench makes.
const START_MS: u64 = 1_700_000_000_000;

/// One replica under test and the time spent applying to it.
struct Replica<S: StateStore> {
    store: S,
    answer: Answer,
    spent: Duration,
}

impl<S: StateStore> Replica<S> {
    fn apply(&mut self, time_ms: u64, command: &Command) -> Result<Outcome> {
        let began = Instant::now();
        let mut txn = Txn::new(self.store.kv());
        let response = raftq_core::apply_for(&mut txn, DedupCaps::default(), time_ms, command, self.answer)
            .map_err(|fault| anyhow::anyhow!("applying: {fault}"))?;
        let writes = txn.finish().map_err(|fault| anyhow::anyhow!("finishing: {fault}"))?;
        self.store.write(writes).context("writing the state")?;
        self.spent += began.elapsed();
        response.map_err(|e| anyhow::anyhow!("the command was refused: {e}"))
    }
}

/// Message `n`'s body: `n` in its first 8 bytes, then filler to `size`.
fn numbered_body(n: u64, size: usize) -> Bytes {
    let mut body = vec![b'x'; size.max(8)];
    body[..8].copy_from_slice(&n.to_be_bytes());
    Bytes::from(body)
}

/// Runs the scenario on the state store `--state` names.
pub(super) async fn run(args: &BenchArgs, json: bool) -> Result<()> {
    let dir = tempfile::tempdir_in(&args.dir).with_context(|| format!("a scratch dir in {}", args.dir.display()))?;
    match args.state {
        StateKind::Rocksdb => {
            let (_, leader) = RocksStore::open(dir.path().join("leader")).await?;
            let (_, follower) = RocksStore::open(dir.path().join("follower")).await?;
            drive(args, json, leader.store().clone(), follower.store().clone()).await
        }
        StateKind::Memory => {
            let (_, leader) = MemStore::open(MemDisk::new()).await?;
            let (_, follower) = MemStore::open(MemDisk::new()).await?;
            drive(args, json, leader.store().clone(), follower.store().clone()).await
        }
    }
}

async fn drive<S: StateStore>(args: &BenchArgs, json: bool, leader: S, follower: S) -> Result<()> {
    let mut replicas = [
        Replica { store: leader, answer: Answer::Wanted, spent: Duration::ZERO },
        Replica { store: follower, answer: Answer::Unread, spent: Duration::ZERO },
    ];
    let mut time_ms = START_MS;
    let mut apply = |replicas: &mut [Replica<S>; 2], command: Command| -> Result<Outcome> {
        time_ms += 1;
        let outcome = replicas[0].apply(time_ms, &command)?;
        let other = replicas[1].apply(time_ms, &command)?;
        if std::mem::discriminant(&outcome) != std::mem::discriminant(&other) {
            bail!("the replicas answered differently");
        }
        Ok(outcome)
    };
    let queue = args.queue.clone();
    apply(&mut replicas, Command::CreateQueue { name: queue.clone(), config: ConfigUpdate::default() })?;

    let batch = u64::from(args.batch.max(1));
    let mut published = 0u64;
    while published < args.messages {
        let count = batch.min(args.messages - published);
        let messages = (published..published + count)
            .map(|n| NewMessage {
                body: numbered_body(n, args.size),
                attributes: BTreeMap::new(),
                delay_ms: None,
                idempotency_key: Some(format!("apply-bench-{n}")),
            })
            .collect();
        apply(&mut replicas, Command::Publish { queue: queue.clone(), messages })?;
        published += count;
    }
    let publish: Vec<Duration> = replicas.iter_mut().map(|r| std::mem::take(&mut r.spent)).collect();

    super::run_before_drain(args).await?;
    let (mut consumed, mut last_id) = (0u64, None);
    loop {
        let receive = Command::Receive { queue: queue.clone(), max_messages: args.receive_batch, lease_ms: None };
        let Outcome::Received(deliveries) = apply(&mut replicas, receive)? else {
            bail!("a receive answered no deliveries")
        };
        if deliveries.is_empty() {
            break;
        }
        for (n, delivery) in (consumed..).zip(&deliveries) {
            if delivery.message.body != numbered_body(n, args.size) {
                bail!("delivery {n} did not carry message {n}'s body");
            }
            let id = delivery.message.id;
            if last_id.is_some_and(|last| last >= id) {
                bail!("message {id} was delivered after {last_id:?}: out of order or twice");
            }
            last_id = Some(id);
        }
        consumed += deliveries.len() as u64;
        let receipts: Vec<Receipt> = deliveries.into_iter().map(|d| d.receipt).collect();
        apply(&mut replicas, Command::Ack { receipts })?;
    }
    if consumed != args.messages {
        bail!("published {} messages, consumed {consumed}", args.messages);
    }
    let drain: Vec<Duration> = replicas.iter().map(|r| r.spent).collect();
    let digests = replicas
        .iter()
        .map(|r| raftq_core::kv::stored_digest(r.store.kv()).map_err(|fault| anyhow::anyhow!("the digest: {fault}")))
        .collect::<Result<Vec<_>>>()?;
    if digests[0] != digests[1] {
        bail!("the answering replica and the follower hold different states");
    }

    let rate = |d: Duration| args.messages as f64 / d.as_secs_f64().max(1e-9);
    let micros = |d: Duration| d.as_secs_f64() * 1e6 / args.messages.max(1) as f64;
    let result = serde_json::json!({
        "scenario": "Apply", "state": format!("{:?}", args.state).to_lowercase(), "size": args.size,
        "messages": args.messages, "batch": batch, "receive_batch": args.receive_batch,
        "publish": {
            "answering_msgs_per_sec": rate(publish[0]).round(), "follower_msgs_per_sec": rate(publish[1]).round(),
            "answering_us_per_msg": micros(publish[0]), "follower_us_per_msg": micros(publish[1]),
        },
        "drain": {
            "answering_msgs_per_sec": rate(drain[0]).round(), "follower_msgs_per_sec": rate(drain[1]).round(),
            "answering_us_per_msg": micros(drain[0]), "follower_us_per_msg": micros(drain[1]),
        },
    });
    if json {
        println!("{result}");
        return Ok(());
    }
    println!(
        "apply: {} × {} B on {:?} state, publish batches of {batch}, receive and ack {} at a time; every message delivered once, in order, with its body; both replicas' states equal",
        args.messages, args.size, args.state, args.receive_batch
    );
    println!("  {:<22}  {:>11}  {:>11}", "", "answering", "follower");
    for (what, spent) in [("publish", &publish), ("drain (receive + ack)", &drain)] {
        println!("  {what:<22}  {:>7.0}/s  {:>7.0}/s", rate(spent[0]), rate(spent[1]));
        println!("  {:<22}  {:>8.2} µs  {:>8.2} µs", "  per message", micros(spent[0]), micros(spent[1]));
    }
    Ok(())
}
