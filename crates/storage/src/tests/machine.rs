//! The state machine: apply through raftq-core, snapshots, restart.

use openraft::storage::{RaftLogStorage, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, StorageHelper};
use raftq_core::{DedupCaps, QueueState};

use super::{append_synced, apply, blank, entry, membership, workload};
use crate::machine::StateStore;
use crate::mem::{MemDisk, MemStateMachine, MemStore};
use crate::snapshot_stream::SnapshotData;
use crate::types::LogPayload;

async fn fresh() -> MemStateMachine {
    MemStore::open(MemDisk::new()).await.expect("open").1
}

fn digest(sm: &MemStateMachine) -> [u8; 16] {
    sm.reader().digest().expect("digest")
}

fn check(sm: &MemStateMachine) {
    raftq_core::check_invariants(sm.store(), DedupCaps::default()).expect("invariants");
}

#[tokio::test]
async fn apply_runs_every_command_through_core_at_entry_time() {
    let mut sm = fresh().await;
    let mut reference = QueueState::new();
    for entry in workload(30) {
        let expected: Vec<_> = match &entry.payload {
            EntryPayload::Normal(p) => p.commands.iter().map(|c| reference.apply(p.time_ms, c)).collect(),
            _ => Vec::new(),
        };
        let log_id = entry.log_id;
        assert_eq!(sm.apply_entry(entry).responses, expected);
        assert_eq!(sm.applied(), Some(log_id));
    }
    assert_eq!(digest(&sm), reference.digest(), "the host keys stay outside the digest");
    assert!(sm.reader().now_ms().unwrap() > 0, "time came from the entries");
    check(&sm);
}

#[tokio::test]
async fn replicas_applying_the_same_log_hold_the_same_state() {
    let (mut a, mut b) = (fresh().await, fresh().await);
    apply(&mut a, workload(50)).await;
    apply(&mut b, workload(50)).await;
    assert_eq!(digest(&a), digest(&b));
    assert_eq!(a.applied_state().await.unwrap(), b.applied_state().await.unwrap());
}

#[tokio::test]
async fn blank_and_membership_entries_answer_nothing() {
    let mut sm = fresh().await;
    assert!(sm.apply_entry(membership(0)).responses.is_empty());
    assert!(sm.apply_entry(blank(1)).responses.is_empty());
    let (applied, stored) = sm.applied_state().await.unwrap();
    assert_eq!(applied.map(|id| id.index), Some(1));
    assert_eq!(stored.log_id().as_ref().map(|id| id.index), Some(0));
}

/// An entry in an unknown payload format used to hit an `assert_eq!`: once
/// committed, every replica crashed on it at every restart. Now each of its
/// commands is rejected alike on every replica and the state is unchanged.
#[tokio::test]
async fn unknown_payload_format_is_rejected_alike_without_a_panic() {
    let (mut a, mut b) = (fresh().await, fresh().await);
    apply(&mut a, workload(10)).await;
    apply(&mut b, workload(10)).await;
    let before = digest(&a);
    let commands = vec![raftq_core::Command::Tick, raftq_core::Command::PurgeQueue { name: "q".into() }];
    let mut future = entry(1_000, 100, Vec::new());
    future.payload = EntryPayload::Normal(LogPayload { format_version: 2, time_ms: u64::MAX, commands });
    let (ra, rb) = (a.apply_entry(future.clone()).responses, b.apply_entry(future).responses);
    assert_eq!(ra, rb, "every replica answers the same");
    assert_eq!(ra.len(), 2, "one answer per command");
    for response in &ra {
        let err = response.as_ref().expect_err("rejected");
        assert!(err.to_string().contains("format version 2 is not supported"), "{err}");
        assert_eq!(err.reason(), raftq_core::Reason::UnsupportedFormat);
    }
    assert_eq!(digest(&a), before, "nothing changed, not even time");
    assert_eq!(a.applied().map(|id| id.index), Some(1_000), "the entry still counts as applied");
}

#[tokio::test]
#[should_panic(expected = "asked to apply")]
async fn applying_out_of_order_stops_the_replica() {
    let mut sm = fresh().await;
    sm.apply_entry(blank(5));
    sm.apply_entry(blank(4));
}

#[tokio::test]
async fn a_snapshot_streamed_to_another_node_installs_the_same_state() {
    let mut leader = fresh().await;
    apply(&mut leader, workload(40)).await;
    let built = leader.try_create_snapshot_builder(true).await.unwrap().build_snapshot().await.unwrap();
    assert_eq!(built.meta.last_log_id, leader.applied());

    let mut follower = fresh().await;
    apply(&mut follower, workload(7)).await;
    let current = leader.get_current_snapshot().await.unwrap().expect("a state to send");
    assert_eq!(current.meta, built.meta);
    follower.install_snapshot(&current.meta, current.snapshot).await.unwrap();
    assert_eq!(digest(&follower), digest(&leader));
    assert_eq!(follower.applied_state().await.unwrap(), leader.applied_state().await.unwrap());
    check(&follower);
}

#[tokio::test]
async fn a_full_recount_agrees_with_the_stored_digest_and_finds_damage() {
    let mut sm = fresh().await;
    apply(&mut sm, workload(40)).await;
    let clean = crate::recount(sm.view().unwrap()).await.unwrap();
    assert_eq!(clean.applied, sm.applied());
    assert_eq!(clean.digest.stored, u128::from_be_bytes(digest(&sm)));
    assert_eq!(clean.digest.full, clean.digest.stored);

    // A pair changed behind the state machine's back (damage the digest
    // did not see): only the full recount notices.
    let mut first = None;
    sm.store()
        .kv()
        .scan(b"A", &[0xfe], raftq_core::kv::Direction::Forward, &mut |k, v| {
            first = Some((k.to_vec(), v.to_vec()));
            false
        })
        .unwrap();
    let (key, mut value) = first.expect("a pair");
    value.push(0);
    sm.store().write([(key, Some(value))].into_iter().collect()).unwrap();
    let damaged = crate::recount(sm.view().unwrap()).await.unwrap();
    assert_eq!(damaged.digest.stored, clean.digest.stored, "the stored digest did not move");
    assert_ne!(damaged.digest.full, damaged.digest.stored);
}

/// Chunks of a snapshot as a follower would receive them.
async fn chunks_of(sm: &mut MemStateMachine) -> (crate::types::SnapshotMeta, Vec<Vec<u8>>) {
    let snapshot = sm.get_current_snapshot().await.unwrap().expect("a state to send");
    let mut data = snapshot.snapshot;
    let mut chunks = Vec::new();
    while let Some(chunk) = data.next_chunk().await {
        chunks.push(chunk.unwrap());
    }
    (snapshot.meta, chunks)
}

#[tokio::test]
async fn a_damaged_or_cut_snapshot_is_not_installed_and_the_old_state_stays() {
    let mut leader = fresh().await;
    apply(&mut leader, workload(30)).await;
    let (meta, chunks) = chunks_of(&mut leader).await;
    let mut follower = fresh().await;
    apply(&mut follower, workload(5)).await;
    let before = (digest(&follower), follower.applied());

    let mut flipped = chunks.clone();
    let middle = flipped.len() / 2;
    let byte = flipped[middle].len() / 2;
    flipped[middle][byte] ^= 0x40;
    let err = follower.install_snapshot(&meta, SnapshotData::from_chunks(flipped)).await.unwrap_err();
    assert!(err.to_string().contains("snapshot"), "{err}");

    let cut = chunks[..chunks.len() - 1].to_vec();
    let err = follower.install_snapshot(&meta, SnapshotData::from_chunks(cut)).await.unwrap_err();
    assert!(err.to_string().contains("end frame"), "{err}");

    assert_eq!((digest(&follower), follower.applied()), before, "the old state is intact");
    check(&follower);
}

#[tokio::test]
async fn restart_reads_the_applied_id_and_reapplies_only_what_came_after() {
    let disk = MemDisk::new();
    let entries = workload(40);
    let (mut log, mut sm) = MemStore::open(disk.clone()).await.unwrap();
    append_synced(&mut log, entries.clone()).await;
    log.save_committed(entries.last().map(|e| e.log_id)).await.unwrap();
    // Committed is not synced on its own; the next log sync carries it (a
    // state flush does not: the state is not in the log's WAL).
    log.save_vote(&crate::types::Vote::new(1, 1)).await.unwrap();
    apply(&mut sm, entries[..20].to_vec()).await;
    sm.store().sync().await.unwrap();
    apply(&mut sm, entries[20..].to_vec()).await;
    let full = digest(&sm);

    // Power loss: state writes after the sync are lost with their applied id.
    disk.crash();
    let (mut log, mut sm) = MemStore::open(disk.clone()).await.unwrap();
    assert_eq!(sm.applied().map(|id| id.index), Some(19), "the state as of the last sync");
    check(&sm);
    StorageHelper::new(&mut log, &mut sm).with_id(1).get_initial_state().await.unwrap();
    assert_eq!(sm.applied().map(|id| id.index), Some(40), "openraft re-applied the committed log");
    assert_eq!(digest(&sm), full);
}

#[tokio::test]
async fn a_snapshot_build_makes_the_state_durable() {
    let disk = MemDisk::new();
    let (_log, mut sm) = MemStore::open(disk.clone()).await.unwrap();
    apply(&mut sm, workload(12)).await;
    let built = sm.try_create_snapshot_builder(true).await.unwrap().build_snapshot().await.unwrap();
    disk.crash();
    let (_log, sm) = MemStore::open(disk).await.unwrap();
    assert_eq!(sm.applied(), built.meta.last_log_id, "what openraft may purge behind survives power loss");
}

/// openraft takes the current snapshot's meta as durable and may purge the
/// log behind it; at startup it asks right after re-applying the log, whose
/// state writes are not flushed. Asking must flush them: before, a crash
/// after a purge to that meta left a state behind a purged log (the node
/// could not start).
#[tokio::test]
async fn the_current_snapshot_is_durable_when_openraft_is_told_of_it() {
    let disk = MemDisk::new();
    let (_log, mut sm) = MemStore::open(disk.clone()).await.unwrap();
    apply(&mut sm, workload(12)).await;
    assert!(disk.pending_state_writes() > 0, "the applied state is not flushed yet");
    let current = sm.get_current_snapshot().await.unwrap().expect("a state is applied");
    disk.crash();
    let (_log, sm) = MemStore::open(disk).await.unwrap();
    assert_eq!(sm.applied(), current.meta.last_log_id, "the snapshot openraft was given survives power loss");
}
