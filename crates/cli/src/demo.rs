//! `raftq demo`: walks the queue state machine through a publish → receive
//! → lease end → dead-letter → redrive → ack story, in process, no cluster.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use raftq_core::{Command, ConfigUpdate, NewMessage, Outcome, QueueState};

/// Applies one command at `time_ms` and prints what happened.
fn step(state: &mut QueueState, time_ms: u64, what: &str, command: Command, json: bool) -> Result<Outcome> {
    let outcome = state.apply(time_ms, &command).with_context(|| format!("{what} was rejected"))?;
    if json {
        println!("{}", serde_json::json!({ "t_ms": time_ms, "step": what, "outcome": format!("{outcome:?}") }));
    } else {
        println!("t={time_ms:>6}ms  {what}");
    }
    Ok(outcome)
}

pub fn run(json: bool) -> Result<()> {
    let mut state = QueueState::new();
    let dlq = ConfigUpdate::default();
    step(
        &mut state,
        0,
        "create queue orders.dlq",
        Command::CreateQueue { name: "orders.dlq".into(), config: dlq },
        json,
    )?;
    let config = ConfigUpdate {
        lease_ms: Some(1_000),
        max_deliveries: Some(2),
        dead_letter_queue: Some(Some("orders.dlq".into())),
        ..Default::default()
    };
    step(
        &mut state,
        0,
        "create queue orders (lease 1s, 2 deliveries, dlq)",
        Command::CreateQueue { name: "orders".into(), config },
        json,
    )?;
    let messages = ["order #1", "order #2"]
        .iter()
        .map(|body| NewMessage {
            body: body.as_bytes().to_vec().into(),
            attributes: BTreeMap::new(),
            delay_ms: None,
            idempotency_key: Some(format!("key-{body}")),
        })
        .collect::<Vec<_>>();
    step(
        &mut state,
        10,
        "publish 2 messages",
        Command::Publish { queue: "orders".into(), messages: messages.clone() },
        json,
    )?;
    step(
        &mut state,
        20,
        "publish them again (same keys: deduplicated)",
        Command::Publish { queue: "orders".into(), messages },
        json,
    )?;
    let receive = || Command::Receive { queue: "orders".into(), max_messages: 1, lease_ms: None };
    let Outcome::Received(first) = step(&mut state, 30, "receive 1 (lease until t=1030)", receive(), json)? else {
        bail!("receive answered something else");
    };
    let receipt = first[0].receipt.clone();
    step(&mut state, 1_030, "lease ends: order #1 is redelivered", receive(), json)?;
    let stale = state.apply(1_040, &Command::Ack { receipts: vec![receipt] });
    println!(
        "t=  1040ms  ack with the first, stale receipt -> {}",
        stale.map(|_| "ok".to_string()).unwrap_or_else(|e| e.to_string())
    );
    step(&mut state, 2_030, "second lease ends: 2 deliveries spent, order #1 dead-lettered", Command::Tick, json)?;
    step(
        &mut state,
        2_040,
        "redrive orders.dlq back to orders",
        Command::Redrive { queue: "orders.dlq".into(), max_messages: 10 },
        json,
    )?;
    let Outcome::Received(all) = step(
        &mut state,
        2_050,
        "receive the rest",
        Command::Receive { queue: "orders".into(), max_messages: 10, lease_ms: None },
        json,
    )?
    else {
        bail!("receive answered something else");
    };
    let receipts = all.iter().map(|d| d.receipt.clone()).collect();
    step(&mut state, 2_060, &format!("ack {} messages", all.len()), Command::Ack { receipts }, json)?;
    for name in ["orders", "orders.dlq"] {
        let stats = state.queue_info(name)?.stats;
        println!(
            "{name}: ready={} leased={} published={} delivered={} acked={} dead_lettered={} duplicates={}",
            stats.ready,
            stats.leased,
            stats.published_total,
            stats.delivered_total,
            stats.acked_total,
            stats.dead_lettered_total,
            stats.duplicates_total
        );
    }
    println!("state digest: {}", state.digest_hex());
    Ok(())
}
