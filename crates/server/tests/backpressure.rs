//! Backpressure: a burst of proposals meets a bounded queue. Past the bound
//! a proposal is refused at once with RESOURCE_EXHAUSTED, never buffered.
//! Before the fix the proposal queue was unbounded: every proposal of the
//! burst was queued and none was refused.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{lead_alone, raft_on};
use futures_util::FutureExt;
use openraft::Raft;
use raftq_core::{Command, NewMessage};
use raftq_server::{Node, PROPOSALS_PENDING_MAX_DEFAULT, ProposalLimits, SystemClock};
use raftq_storage::{MemDisk, MemStateMachine};
use tonic::{Code, Status};

const BODY_BYTES: usize = 1024;

fn publish(i: usize) -> Command {
    Command::Publish {
        queue: "q".into(),
        messages: vec![NewMessage {
            body: vec![b'x'; BODY_BYTES].into(),
            attributes: Default::default(),
            delay_ms: None,
            idempotency_key: Some(format!("key-{i}")),
        }],
    }
}

/// The bytes the node counts for [`publish`]`(i)`: its encoded size.
fn command_bytes(i: usize) -> usize {
    postcard::to_stdvec(&publish(i)).expect("encodes").len()
}

async fn raft() -> Raft<raftq_storage::TypeConfig, MemStateMachine> {
    raft_on(MemDisk::new(), "backpressure").await
}

/// The overload answer: RESOURCE_EXHAUSTED naming the full queue, with
/// `raftq-retry-after-ms` (what tells clients nothing happened).
fn assert_overloaded(status: &Status) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("proposal queue is full"), "{status:?}");
    let retry_after = status.metadata().get(raftq_proto::RETRY_AFTER_MS_METADATA_KEY).expect("retry-after metadata");
    assert!(retry_after.to_str().expect("ascii").parse::<u64>().expect("ms") > 0);
}

/// On a current-thread runtime the proposer task cannot run while the test
/// proposes without awaiting, so the whole burst meets the queue at once:
/// exactly the bound is admitted, every proposal past it is refused on its
/// first poll (no wait at all), and the pending depth stays at the bound.
#[tokio::test(flavor = "current_thread")]
async fn a_burst_past_the_bound_is_refused_at_once() {
    let node = Node::new(1, raft().await, Arc::new(SystemClock));
    let burst = 20_000;
    let (mut queued, mut refused) = (0usize, 0usize);
    for i in 0..burst {
        match node.propose(publish(i)).now_or_never() {
            None => queued += 1,
            Some(Err(status)) if status.code() == Code::ResourceExhausted => {
                refused += 1;
                assert_overloaded(&status);
            }
            Some(other) => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(refused > 0, "all {queued} proposals of the burst were queued: the queue is unbounded");
    assert_eq!(queued, PROPOSALS_PENDING_MAX_DEFAULT, "the count bound (1 KiB messages stay under the byte bound)");
    let depth = node.proposal_queue();
    assert_eq!((depth.commands, depth.bytes), (queued, (0..queued).map(command_bytes).sum::<usize>()));
    assert_eq!(depth.rejected_total, refused as u64);
    assert_eq!(depth.peak_commands, queued);
}

/// The byte bound holds on its own: 64 KiB of pending commands admits ~60
/// publishes of 1 KiB, though the count bound would allow 1,000.
#[tokio::test(flavor = "current_thread")]
async fn the_byte_bound_holds() {
    let limits = ProposalLimits { commands_max: 1_000, bytes_max: 64 * 1024 };
    let node = Node::with_limits(1, raft().await, Arc::new(SystemClock), limits);
    let mut queued = 0;
    for i in 0..1_000 {
        match node.propose(publish(i)).now_or_never() {
            None => queued += 1,
            Some(Err(status)) => assert_overloaded(&status),
            Some(Ok(outcome)) => panic!("nothing can commit here: {outcome:?}"),
        }
    }
    let fit = (0..).scan(0, |bytes, i| {
        *bytes += command_bytes(i);
        Some(*bytes)
    });
    let expected = fit.take_while(|bytes| *bytes <= limits.bytes_max).count();
    assert_eq!(queued, expected);
    let depth = node.proposal_queue();
    assert!(depth.bytes <= limits.bytes_max, "{depth:?}");
    assert_eq!(depth.rejected_total, 1_000 - queued as u64);
    // One command bigger than the whole byte bound still gets in when the
    // queue is empty, so no valid command is refused forever.
    let tiny = ProposalLimits { commands_max: 10, bytes_max: 100 };
    let node = Node::with_limits(1, raft().await, Arc::new(SystemClock), tiny);
    assert!(node.propose(publish(0)).now_or_never().is_none(), "admitted into the empty queue");
    let second = node.propose(publish(1)).now_or_never().expect("refused at once").expect_err("refused");
    assert_overloaded(&second);
}

/// A live leader whose disk stopped syncing (nothing commits) under a
/// flood of concurrent proposals: the queue fills to its bound, entries in
/// flight stay at theirs, and everything else is refused quickly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_cannot_commit_refuses_the_overflow_quickly() {
    let disk = MemDisk::new();
    let raft = raft_on(disk.clone(), "backpressure").await;
    lead_alone(&raft).await;
    disk.set_sync_delay(Duration::from_secs(3600));
    let limits = ProposalLimits { commands_max: 100, bytes_max: 1024 * 1024 };
    let node = Arc::new(Node::with_limits(1, raft, Arc::new(SystemClock), limits));

    let flood = 10_000;
    let started = tokio::time::Instant::now();
    let (answers_tx, mut answers) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for i in 0..flood {
        let (node, answers_tx) = (node.clone(), answers_tx.clone());
        tasks.push(tokio::spawn(async move {
            let answer = node.propose(publish(i)).await;
            let _ = answers_tx.send((answer, started.elapsed()));
        }));
    }
    drop(answers_tx);
    // At most ENTRIES_IN_FLIGHT_MAX entries of COMMANDS_PER_ENTRY_MAX
    // commands are in flight (plus one carried over) and `commands_max`
    // wait; every other proposal must be refused.
    let must_refuse = flood - 4 * 1024 - 1 - limits.commands_max;
    let mut refused = 0;
    while refused < must_refuse {
        let (answer, after) = tokio::time::timeout(Duration::from_secs(10), answers.recv())
            .await
            .unwrap_or_else(|_| panic!("only {refused} of {must_refuse} refusals within 10 s"))
            .expect("answers pending");
        let status = answer.expect_err("nothing can commit");
        assert_overloaded(&status);
        assert!(after < Duration::from_secs(5), "a refusal took {after:?}");
        refused += 1;
        let depth = node.proposal_queue();
        assert!(depth.commands <= limits.commands_max && depth.bytes <= limits.bytes_max, "{depth:?}");
    }
    let depth = node.proposal_queue();
    assert!(depth.peak_commands <= limits.commands_max, "{depth:?}");
    assert!(depth.rejected_total >= must_refuse as u64, "{depth:?}");
    for task in tasks {
        task.abort();
    }
}
