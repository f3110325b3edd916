//! The state machine: apply through raftq-core, snapshots, restart.

use openraft::storage::{RaftLogStorage, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, StorageHelper};
use raftq_core::QueueState;

use super::{append_synced, apply, blank, entry, membership, workload};
use crate::mem::{MemDisk, MemStateMachine, MemStore};
use crate::types::LogPayload;

async fn fresh() -> MemStateMachine {
    MemStore::open(MemDisk::new()).await.expect("open").1
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
    assert_eq!(sm.state().digest(), reference.digest());
    assert!(sm.state().now_ms() > 0, "time came from the entries");
}

#[tokio::test]
async fn replicas_applying_the_same_log_hold_the_same_state() {
    let (mut a, mut b) = (fresh().await, fresh().await);
    apply(&mut a, workload(50)).await;
    apply(&mut b, workload(50)).await;
    assert_eq!(a.state().digest(), b.state().digest());
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
    let before = a.state().digest();
    let commands = vec![raftq_core::Command::Tick, raftq_core::Command::PurgeQueue { name: "q".into() }];
    let mut future = entry(1_000, 100, Vec::new());
    future.payload = EntryPayload::Normal(LogPayload { format_version: 2, time_ms: u64::MAX, commands });
    let (ra, rb) = (a.apply_entry(future.clone()).responses, b.apply_entry(future).responses);
    assert_eq!(ra, rb, "every replica answers the same");
    assert_eq!(ra.len(), 2, "one answer per command");
    for response in &ra {
        let err = response.as_ref().expect_err("rejected");
        assert!(err.to_string().contains("format version 2 is not supported"), "{err}");
    }
    assert_eq!(a.state().digest(), before, "nothing changed, not even time");
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
async fn snapshot_build_and_install_keep_the_digest() {
    let mut leader = fresh().await;
    apply(&mut leader, workload(40)).await;
    let built = leader.try_create_snapshot_builder(true).await.unwrap().build_snapshot().await.unwrap();
    assert_eq!(built.meta.last_log_id, leader.applied());

    let mut follower = fresh().await;
    let current = leader.get_current_snapshot().await.unwrap().expect("persisted");
    follower.install_snapshot(&current.meta, current.snapshot).await.unwrap();
    assert_eq!(follower.state().digest(), leader.state().digest());
    assert_eq!(follower.applied_state().await.unwrap(), leader.applied_state().await.unwrap());
    let installed = follower.get_current_snapshot().await.unwrap().expect("persisted");
    assert_eq!(installed.meta, built.meta);
}

#[tokio::test]
async fn corrupt_snapshot_is_not_installed() {
    let mut leader = fresh().await;
    apply(&mut leader, workload(10)).await;
    let mut snap = leader.try_create_snapshot_builder(true).await.unwrap().build_snapshot().await.unwrap();
    let bytes = snap.snapshot.get_mut();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    let mut follower = fresh().await;
    let err = follower.install_snapshot(&snap.meta, snap.snapshot).await.unwrap_err();
    assert!(err.to_string().contains("unusable"), "{err}");
    assert_eq!(follower.applied(), None);
    assert!(follower.get_current_snapshot().await.unwrap().is_none());
}

#[tokio::test]
async fn stored_snapshot_never_moves_backwards() {
    let mut sm = fresh().await;
    apply(&mut sm, workload(10)).await;
    let mut stale = sm.try_create_snapshot_builder(true).await.unwrap();
    apply(&mut sm, vec![blank(11), blank(12)]).await;
    sm.try_create_snapshot_builder(true).await.unwrap().build_snapshot().await.unwrap();
    stale.build_snapshot().await.unwrap();
    let current = sm.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta.last_log_id.map(|id| id.index), Some(12));
}

#[tokio::test]
async fn restart_restores_snapshot_then_reapplies_committed_log() {
    let disk = MemDisk::new();
    let entries = workload(40);
    let (mut log, mut sm) = MemStore::open(disk.clone()).await.unwrap();
    append_synced(&mut log, entries.clone()).await;
    log.save_committed(entries.last().map(|e| e.log_id)).await.unwrap();
    apply(&mut sm, entries[..20].to_vec()).await;
    sm.try_create_snapshot_builder(true).await.unwrap().build_snapshot().await.unwrap();
    apply(&mut sm, entries[20..].to_vec()).await;
    let digest = sm.state().digest();

    disk.crash();
    let (mut log, mut sm) = MemStore::open(disk.clone()).await.unwrap();
    assert_eq!(sm.applied().map(|id| id.index), Some(19), "the snapshot is restored on open");
    StorageHelper::new(&mut log, &mut sm).with_id(1).get_initial_state().await.unwrap();
    assert_eq!(sm.applied().map(|id| id.index), Some(40), "openraft re-applied the committed log");
    assert_eq!(sm.state().digest(), digest);
}
