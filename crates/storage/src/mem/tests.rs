//! The twin's fault model: crashes, acknowledged-but-unsynced appends,
//! torn and corrupted records.

use openraft::storage::{RaftLogReader, RaftLogStorage};
use openraft::testing::log_id;
use openraft::type_config::TypeConfigExt;

use super::{MemDisk, MemLogStore, MemStore};
use crate::OpenError;
use crate::tests::{append_synced, blank, workload};
use crate::types::{IOFlushed, TypeConfig, Vote};

async fn open(disk: &MemDisk) -> MemLogStore {
    MemStore::open(disk.clone()).await.expect("open").0
}

async fn last_index(log: &mut MemLogStore) -> Option<u64> {
    log.get_log_state().await.unwrap().last_log_id.map(|id| id.index)
}

#[tokio::test]
async fn crash_keeps_synced_writes_and_drops_unsynced_ones() {
    let disk = MemDisk::new();
    let mut log = open(&disk).await;
    append_synced(&mut log, workload(5)).await;
    log.save_vote(&Vote::new(3, 1)).await.unwrap();
    log.save_committed(Some(log_id::<TypeConfig>(1, 1, 5))).await.unwrap();
    assert_eq!(disk.pending_writes(), 1, "committed waits for the next sync");

    disk.crash();
    let mut log = open(&disk).await;
    assert_eq!(last_index(&mut log).await, Some(5));
    assert_eq!(log.get_log_reader().await.read_vote().await.unwrap(), Some(Vote::new(3, 1)));
    assert_eq!(log.read_committed().await.unwrap(), None, "the unsynced write is gone");
}

#[tokio::test]
async fn append_is_synced_before_its_callback() {
    let disk = MemDisk::new();
    let mut log = open(&disk).await;
    let before = disk.sync_count();
    append_synced(&mut log, workload(3)).await;
    assert_eq!(disk.pending_writes(), 0);
    assert_eq!(disk.sync_count(), before + 1);
}

#[tokio::test]
async fn ack_before_sync_then_crash_loses_an_acknowledged_append() {
    let disk = MemDisk::new();
    let mut log = open(&disk).await;
    append_synced(&mut log, workload(3)).await;
    disk.set_ack_before_sync(true);
    append_synced(&mut log, vec![blank(4)]).await;
    assert_eq!(last_index(&mut log).await, Some(4), "readable after append");

    disk.crash();
    let mut log = open(&disk).await;
    assert_eq!(last_index(&mut log).await, Some(3), "the acknowledged entry 4 was lost");
}

#[tokio::test]
async fn a_store_from_before_a_crash_stops_working() {
    let disk = MemDisk::new();
    let mut log = open(&disk).await;
    disk.crash();
    let (tx, _rx) = TypeConfig::oneshot();
    assert!(log.append(vec![blank(0)], IOFlushed::signal(tx)).await.is_err());
    assert!(log.get_log_state().await.is_err());
}

/// Appends `index` with a sync that takes an hour: the write is issued and
/// readable, but not synced and not acknowledged.
async fn append_in_flight(disk: &MemDisk, log: &mut MemLogStore, index: u64) -> TypeConfigOneshotRx {
    disk.set_sync_delay(std::time::Duration::from_secs(3600));
    let (tx, rx) = TypeConfig::oneshot();
    log.append(vec![blank(index)], IOFlushed::signal(tx)).await.unwrap();
    rx
}

type TypeConfigOneshotRx = openraft::alias::OneshotReceiverOf<TypeConfig, Result<(), std::io::Error>>;

#[tokio::test]
async fn torn_tail_is_dropped_on_open() {
    let disk = MemDisk::new();
    let mut log = open(&disk).await;
    append_synced(&mut log, workload(5)).await;
    let _unacknowledged = append_in_flight(&disk, &mut log, 6).await;
    assert_eq!(disk.pending_writes(), 1);
    assert_eq!(disk.tear_last_write(), Some(6));
    let mut log = open(&disk).await;
    assert_eq!(last_index(&mut log).await, Some(5));
    let entries = log.get_log_reader().await.try_get_log_entries(0..).await.unwrap();
    assert_eq!(entries.len(), 6, "entries 0..=5 survive");
}

#[tokio::test]
async fn a_tear_never_damages_an_acknowledged_record() {
    let disk = MemDisk::new();
    let mut log = open(&disk).await;
    append_synced(&mut log, workload(5)).await;
    assert_eq!(disk.tear_last_write(), None, "nothing was in flight: a plain crash");
    let mut log = open(&disk).await;
    assert_eq!(last_index(&mut log).await, Some(5));
}

#[tokio::test]
async fn with_a_sync_delay_the_callback_waits_for_the_sync() {
    let disk = MemDisk::new();
    let mut log = open(&disk).await;
    disk.set_sync_delay(std::time::Duration::from_millis(5));
    let before = disk.sync_count();
    append_synced(&mut log, workload(3)).await;
    assert_eq!(disk.pending_writes(), 0, "synced before the callback fired");
    assert_eq!(disk.sync_count(), before + 1);
}

#[tokio::test]
async fn torn_committed_record_refuses_to_open() {
    let disk = MemDisk::new();
    let mut log = open(&disk).await;
    append_synced(&mut log, workload(5)).await;
    log.save_committed(Some(log_id::<TypeConfig>(1, 1, 6))).await.unwrap();
    log.save_vote(&Vote::new(1, 1)).await.unwrap(); // syncs `committed`
    let _unacknowledged = append_in_flight(&disk, &mut log, 6).await;
    assert_eq!(disk.tear_last_write(), Some(6));
    let err = MemStore::open(disk.clone()).await.unwrap_err();
    assert!(matches!(err, OpenError::CorruptLog { index: 6, .. }), "{err}");
}

#[tokio::test]
async fn corrupt_middle_record_refuses_to_open() {
    let disk = MemDisk::new();
    let mut log = open(&disk).await;
    append_synced(&mut log, workload(6)).await;
    assert!(disk.corrupt_log_entry(3));
    let err = MemStore::open(disk.clone()).await.unwrap_err();
    assert_eq!(err.to_string(), "log entry 3 checksum mismatch in the simulated disk: refusing to start");
}

#[tokio::test]
async fn corrupt_record_is_never_served() {
    let disk = MemDisk::new();
    let mut log = open(&disk).await;
    append_synced(&mut log, workload(6)).await;
    disk.corrupt_log_entry(2);
    let mut reader = log.get_log_reader().await;
    let err = reader.try_get_log_entries(0..4).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("log entry 2 checksum mismatch"), "{err}");
    assert_eq!(reader.try_get_log_entries(3..5).await.unwrap().len(), 2, "intact records still read");
}

/// State writes are not in the log's write-ahead log: a log sync leaves
/// them pending, so a crash loses them (with their applied id); a state
/// flush, or enough pending writes (a full memtable), makes them durable.
/// Before, every log sync made them durable too.
#[tokio::test]
async fn state_writes_survive_a_crash_only_once_flushed_never_through_a_log_sync() {
    use crate::machine::StateStore;
    use raftq_core::kv::KvRead;
    let disk = MemDisk::new();
    let (mut log, sm) = MemStore::open(disk.clone()).await.unwrap();
    sm.store().write([(b"test/a".to_vec(), Some(b"1".to_vec()))].into()).unwrap();
    append_synced(&mut log, workload(2)).await;
    assert_eq!(disk.pending_writes(), 0, "the log is synced");
    assert_eq!(disk.pending_state_writes(), 1, "the state write is still pending");
    disk.crash();

    let (_log, sm) = MemStore::open(disk.clone()).await.unwrap();
    assert_eq!(sm.store().get(b"test/a").unwrap(), None, "an unflushed state write is lost");
    sm.store().write([(b"test/b".to_vec(), Some(b"2".to_vec()))].into()).unwrap();
    sm.store().sync().await.unwrap();
    let flushes = disk.state_flush_count();
    for i in 0..super::disk::STATE_FLUSH_WRITES {
        sm.store().write([(format!("test/c{i:03}").into_bytes(), Some(b"3".to_vec()))].into()).unwrap();
    }
    assert_eq!(disk.state_flush_count(), flushes + 1, "a full memtable flushes on its own");
    sm.store().write([(b"test/d".to_vec(), Some(b"4".to_vec()))].into()).unwrap();
    disk.crash();

    let (_log, sm) = MemStore::open(disk).await.unwrap();
    let kv = sm.store();
    assert_eq!(kv.get(b"test/b").unwrap(), Some(b"2".to_vec()), "flushed by sync");
    assert_eq!(kv.get(b"test/c031").unwrap(), Some(b"3".to_vec()), "flushed on its own");
    assert_eq!(kv.get(b"test/d").unwrap(), None, "written after the last flush");
}
