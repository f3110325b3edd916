//! The RocksDB store: reopen, damage found at open, group commit.

use std::path::{Path, PathBuf};

use futures_util::FutureExt;
use openraft::StorageHelper;
use openraft::storage::{RaftLogReader, RaftLogStorage, RaftSnapshotBuilder, RaftStateMachine};
use openraft::testing::log_id;
use openraft::type_config::TypeConfigExt;
use rocksdb::DB;

use super::{CF_LOG, MEMORY_BUDGET_DEFAULT_BYTES, RocksStore, cf, open_db};
use crate::OpenError;
use crate::codec::index_key;
use crate::tests::{append_synced, apply, blank, workload};
use crate::types::{IOFlushed, TypeConfig, Vote};

/// Changes the database of a closed store directly, as damage would.
fn poke(path: &Path, change: impl FnOnce(&DB)) {
    let db = open_db(path, MEMORY_BUDGET_DEFAULT_BYTES).expect("open raw db");
    change(&db);
}

fn damage_record(db: &DB, cf_name: &str, key: &[u8], damage: impl FnOnce(&mut Vec<u8>)) {
    let mut record = db.get_cf(cf(db, cf_name), key).unwrap().expect("record exists");
    damage(&mut record);
    db.put_cf(cf(db, cf_name), key, record).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_recovers_vote_log_committed_and_state_without_loading_it() {
    let dir = tempfile::tempdir().unwrap();
    let entries = workload(30);
    let digest = {
        let (mut log, mut sm) = RocksStore::open(dir.path()).await.unwrap();
        log.save_vote(&Vote::new(7, 2)).await.unwrap();
        append_synced(&mut log, entries.clone()).await;
        log.save_committed(Some(log_id::<TypeConfig>(1, 1, 30))).await.unwrap();
        apply(&mut sm, entries[..=20].to_vec()).await;
        sm.try_create_snapshot_builder(true).await.unwrap().build_snapshot().await.unwrap();
        apply(&mut sm, entries[21..].to_vec()).await;
        log.purge(log_id::<TypeConfig>(1, 1, 10)).await.unwrap();
        sm.reader().digest().unwrap()
    };

    let (mut log, mut sm) = RocksStore::open(dir.path()).await.unwrap();
    assert_eq!(log.get_log_reader().await.read_vote().await.unwrap(), Some(Vote::new(7, 2)));
    assert_eq!(log.read_committed().await.unwrap(), Some(log_id::<TypeConfig>(1, 1, 30)));
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id.map(|id| id.index), Some(10));
    assert_eq!(state.last_log_id.map(|id| id.index), Some(30));
    // A clean shutdown kept every state write: nothing to re-apply.
    assert_eq!(sm.applied().map(|id| id.index), Some(30), "the applied id is stored with the state");
    assert_eq!(sm.reader().digest().unwrap(), digest);
    let snapshot = sm.get_current_snapshot().await.unwrap().expect("the state is the snapshot");
    assert_eq!(snapshot.meta.last_log_id.map(|id| id.index), Some(30));
    StorageHelper::new(&mut log, &mut sm).with_id(1).get_initial_state().await.unwrap();
    assert_eq!(sm.applied().map(|id| id.index), Some(30));
    raftq_core::check_invariants(sm.store(), raftq_core::DedupCaps::default()).expect("invariants");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_streams_between_two_rocksdb_stores() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_log_a, mut leader) = RocksStore::open(a.path()).await.unwrap();
    apply(&mut leader, workload(60)).await;
    let (_log_b, mut follower) = RocksStore::open(b.path()).await.unwrap();
    apply(&mut follower, workload(5)).await;
    let snapshot = leader.get_current_snapshot().await.unwrap().unwrap();
    // The leader goes on applying; the stream is the state as of the call.
    let digest = leader.reader().digest().unwrap();
    apply(&mut leader, vec![blank(61)]).await;
    follower.install_snapshot(&snapshot.meta, snapshot.snapshot).await.unwrap();
    assert_eq!(follower.reader().digest().unwrap(), digest);
    assert_eq!(follower.applied().map(|id| id.index), Some(60));
    raftq_core::check_invariants(follower.store(), raftq_core::DedupCaps::default()).expect("invariants");
    drop((_log_b, follower));
    // The switch is durable: a reopen serves the installed state.
    let (_log_b, follower) = RocksStore::open(b.path()).await.unwrap();
    assert_eq!(follower.applied().map(|id| id.index), Some(60));
    assert_eq!(follower.reader().digest().unwrap(), digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_in_a_middle_record_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    append_synced(&mut RocksStore::open(dir.path()).await.unwrap().0, workload(6)).await;
    poke(dir.path(), |db| damage_record(db, CF_LOG, &index_key(3), |r| *r.last_mut().unwrap() ^= 0x08));

    let err = RocksStore::open(dir.path()).await.unwrap_err();
    let want = format!("log entry 3 checksum mismatch in {}: refusing to start", dir.path().display());
    assert_eq!(err.to_string(), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_last_record_is_dropped_on_open() {
    let dir = tempfile::tempdir().unwrap();
    append_synced(&mut RocksStore::open(dir.path()).await.unwrap().0, workload(6)).await;
    poke(dir.path(), |db| damage_record(db, CF_LOG, &index_key(6), |r| r.truncate(r.len() - 3)));

    for _ in 0..2 {
        let (mut log, _sm) = RocksStore::open(dir.path()).await.unwrap();
        let last = log.get_log_state().await.unwrap().last_log_id;
        assert_eq!(last.map(|id| id.index), Some(5));
    }
}

/// Appends `workload(n)` in batches of ten (one WAL record each), then saves
/// a vote, and closes the store. RocksDB does not flush memtables on close
/// while the WAL is on, so everything is still only in the WAL.
async fn write_wal_only(path: &Path, n: u64) {
    let (mut log, _sm) = RocksStore::open(path).await.unwrap();
    for batch in workload(n).chunks(10) {
        append_synced(&mut log, batch.to_vec()).await;
    }
    log.save_vote(&Vote::new(3, 1)).await.unwrap();
}

/// The files in `path` whose names end in `.{ext}`.
fn files_with_ext(path: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|file| file.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// The one non-empty WAL file of a store written by `write_wal_only`.
fn the_wal(path: &Path) -> PathBuf {
    assert!(files_with_ext(path, "sst").is_empty(), "the data must still be only in the WAL");
    let wals: Vec<PathBuf> =
        files_with_ext(path, "log").into_iter().filter(|wal| std::fs::metadata(wal).unwrap().len() > 0).collect();
    assert_eq!(wals.len(), 1, "one WAL holds the writes: {wals:?}");
    wals.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_in_the_middle_of_the_wal_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    write_wal_only(dir.path(), 200).await;
    let wal = the_wal(dir.path());
    let mut bytes = std::fs::read(&wal).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&wal, bytes).unwrap();

    // Point-in-time recovery would open with every record after the flipped
    // byte silently gone (the newest entries and the vote).
    let err = RocksStore::open(dir.path()).await.unwrap_err();
    assert!(matches!(err, OpenError::CorruptRocks { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&dir.path().display().to_string()), "names the directory: {message}");
    assert!(message.contains(&*wal.file_name().unwrap().to_string_lossy()), "names the WAL: {message}");
    assert!(message.contains("refusing to start"), "{message}");
    // And it keeps refusing: nothing was repaired or dropped by the attempt.
    assert!(RocksStore::open(dir.path()).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_wal_tail_is_dropped_on_open() {
    let dir = tempfile::tempdir().unwrap();
    write_wal_only(dir.path(), 200).await;
    let wal = the_wal(dir.path());
    // Tear the newest record (the vote): as a crash in the middle of writing it.
    let len = std::fs::metadata(&wal).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&wal).unwrap().set_len(len - 3).unwrap();

    let (mut log, _sm) = RocksStore::open(dir.path()).await.unwrap();
    assert_eq!(log.get_log_state().await.unwrap().last_log_id.map(|id| id.index), Some(200));
    assert_eq!(log.get_log_reader().await.read_vote().await.unwrap(), None, "the torn vote is dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_of_storage_format_1_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        DB::open_cf(&opts, dir.path(), ["log", "meta", "sm"]).unwrap();
    }
    let err = RocksStore::open(dir.path()).await.unwrap_err();
    assert!(matches!(err, OpenError::Format { found: 1, .. }), "{err}");
    assert!(err.to_string().contains("storage format 1, this build reads format 7"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_dirs_of_storage_formats_5_and_6_are_refused_by_name() {
    // Format 5 kept the whole state in the one `state` column family;
    // format 6 left the dedup index values empty.
    for (format, family, key) in [(5u8, "state", vec![0, b'm', 1]), (6, "state_dedup_by_queue", vec![0, b'x', 1])] {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut opts = rocksdb::Options::default();
            opts.create_if_missing(true);
            opts.create_missing_column_families(true);
            let db = DB::open_cf(&opts, dir.path(), ["log", "meta", family]).unwrap();
            db.put_cf(db.cf_handle("meta").unwrap(), "state_format", [format]).unwrap();
            db.put_cf(db.cf_handle(family).unwrap(), key, b"").unwrap();
        }
        let err = RocksStore::open(dir.path()).await.unwrap_err();
        assert!(matches!(err, OpenError::Format { found, .. } if found == format), "{err}");
        let expected = format!("storage format {format}, this build reads format 7");
        assert!(err.to_string().contains(&expected), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_queued_during_a_sync_share_the_next_one() {
    const APPENDS: u64 = 50;
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _sm) = RocksStore::open(dir.path()).await.unwrap();
    let before = log.sync_count();
    let mut flushed = Vec::new();
    {
        // A "slow disk": the sync thread cannot fsync while this is held.
        let gate = log.sync_gate();
        let _busy = gate.lock().unwrap();
        for index in 0..APPENDS {
            let (tx, rx) = TypeConfig::oneshot();
            let append = log.append(vec![blank(index)], IOFlushed::signal(tx));
            append.now_or_never().expect("append never waits").unwrap();
            flushed.push(rx);
        }
        assert_eq!(log.sync_count(), before, "nothing is acknowledged before its fsync");
    }
    for rx in flushed {
        rx.await.unwrap().unwrap();
    }
    let syncs = log.sync_count() - before;
    assert!(syncs <= 2, "{APPENDS} appends took {syncs} fsyncs");
    let entries = log.get_log_reader().await.try_get_log_entries(0..APPENDS).await.unwrap();
    assert_eq!(entries.len() as u64, APPENDS);
}

/// Bytes of SST files in the log column family.
fn log_sst_bytes(db: &DB) -> u64 {
    db.property_int_value_cf(cf(db, CF_LOG), "rocksdb.total-sst-files-size").unwrap().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_gives_back_the_log_files_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _sm) = RocksStore::open(dir.path()).await.unwrap();
    let entries = workload(3_000);
    let last = entries.last().unwrap().log_id;
    append_synced(&mut log, entries).await;
    log.db().flush_cf(cf(log.db(), CF_LOG)).unwrap();
    // Where a log lives once compactions have run: below level 0 (RocksDB
    // drops only files of the lower levels by range; level 0's overlap).
    log.db().compact_range_cf(cf(log.db(), CF_LOG), None::<&[u8]>, None::<&[u8]>);
    assert!(log_sst_bytes(log.db()) > 0, "the entries are in SST files");
    // No write follows the purge, so no compaction would come to drop them.
    log.purge(last).await.unwrap();
    assert_eq!(log_sst_bytes(log.db()), 0, "files wholly inside the purged range are gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_ahead_log_stays_bounded_when_one_column_family_is_idle() {
    use bytes::Bytes;
    use raftq_core::{Command, NewMessage};

    use super::WAL_BYTES_MAX;
    use crate::tests::entry;

    let dir = tempfile::tempdir().unwrap();
    let (mut log, _sm) = RocksStore::open(dir.path()).await.unwrap();
    // One small write to `meta`, then only log appends: 4 × the bound.
    log.save_committed(Some(log_id::<TypeConfig>(1, 1, 0))).await.unwrap();
    let body = Bytes::from(vec![7u8; 256 << 10]);
    let message = NewMessage { body, attributes: Default::default(), delay_ms: None, idempotency_key: None };
    let per_entry = 4;
    let entries = (4 * WAL_BYTES_MAX) / (per_entry * (256 << 10));
    for index in 1..=entries {
        let publish = Command::Publish { queue: "q".into(), messages: vec![message.clone(); per_entry as usize] };
        append_synced(&mut log, vec![entry(index, 1_000, vec![publish])]).await;
    }
    let wal_bytes = bytes_with_ext(dir.path(), "log");
    assert!(
        wal_bytes < 2 * WAL_BYTES_MAX,
        "{} MiB of WAL after {} MiB written (bound {} MiB)",
        wal_bytes >> 20,
        (4 * WAL_BYTES_MAX) >> 20,
        WAL_BYTES_MAX >> 20
    );
}

/// Bytes of the files in `dir` named `*.ext` (`sst`: tables, `log`: WAL).
fn bytes_with_ext(dir: &Path, ext: &str) -> u64 {
    files_with_ext(dir, ext).iter().map(|file| file.metadata().unwrap().len()).sum()
}

/// Deleted state keeps its space until a compaction rewrites the files
/// holding it; with no further writes (a drained, idle node) none comes.
/// The compactor the idle task calls gives the space back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compactor_gives_back_the_space_of_deleted_state() {
    use crate::machine::StateStore;
    let dir = tempfile::tempdir().unwrap();
    let (_log, sm) = RocksStore::open(dir.path()).await.unwrap();
    let store = sm.store().clone();
    let compactor = sm.compactor().expect("RocksDB has files to compact");
    let compact = || compactor.compact();
    let key = |batch: u32, i: u32| format!("test/{batch:04}/{i:06}").into_bytes();
    for batch in 0..10 {
        let writes = (0..1_000).map(|i| (key(batch, i), Some(vec![7u8; 4096]))).collect();
        store.write(writes).unwrap();
    }
    store.sync().await.unwrap();
    compact().unwrap();
    let full = bytes_with_ext(dir.path(), "sst");
    assert!(full > 30 << 20, "the state is on disk: {full} bytes");
    for batch in 0..10 {
        store.write((0..1_000).map(|i| (key(batch, i), None)).collect()).unwrap();
    }
    store.sync().await.unwrap();
    assert!(bytes_with_ext(dir.path(), "sst") >= full, "deleting alone frees nothing");
    assert_eq!(compactor.deleted_keys(), 10_000, "every deleted key is counted");
    compact().unwrap();
    let after = bytes_with_ext(dir.path(), "sst");
    assert!(after < full / 10, "compacted: {after} of {full} bytes left");
}

/// The state is spread over several column families (one per growing
/// table); to the core it must still be one ordered key space. Every range
/// between a set of boundaries around and inside the family cuts, scanned
/// both ways and stopped early or not, answers what an in-memory map does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_across_the_state_families_see_one_ordered_key_space() {
    use raftq_core::kv::{Direction, KvRead, MemKv, WriteSet};

    use crate::machine::StateStore;

    let dir = tempfile::tempdir().unwrap();
    let (_log, sm) = RocksStore::open(dir.path()).await.unwrap();
    let firsts = [b'#', b'G', b'Q', b'W', b'X', b'Y', b'b', b'c', b'k', b'm', b'r', b's', b't', b'x', b'y', 0xfe, 0xff];
    let mut writes = WriteSet::new();
    for first in firsts {
        writes.insert(vec![first], Some(vec![first]));
        for second in 0..3u8 {
            writes.insert(vec![first, second], Some(vec![first, second, 7]));
        }
    }
    let mut mem = MemKv::new();
    mem.write(writes.clone());
    sm.store().write(writes).unwrap();
    // Deletes land in the right family too.
    let deletes: WriteSet = [vec![b'm', 1], vec![b'Q'], vec![b'x', 0]].into_iter().map(|key| (key, None)).collect();
    mem.write(deletes.clone());
    sm.store().write(deletes).unwrap();
    // A cleared range across two families (`k`, `m`) is deleted whole, and
    // a put inside it survives.
    let mut cleared: WriteSet = [
        (vec![b'k'], None),
        (vec![b'k', 0], None),
        (vec![b'k', 1], Some(b"put inside the range".to_vec())),
        (vec![b'k', 2], None),
        (vec![b'm'], None),
        (vec![b'm', 0], None),
    ]
    .into();
    cleared.clear(vec![b'k'], vec![b'm', 2]);
    mem.write(cleared.clone());
    sm.store().write(cleared).unwrap();

    let collect = |kv: &dyn KvRead, start: &[u8], end: &[u8], direction, limit: usize| {
        let mut out = Vec::new();
        kv.scan(start, end, direction, &mut |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            out.len() < limit
        })
        .unwrap();
        out
    };
    let bounds: Vec<Vec<u8>> = vec![
        vec![],
        vec![b'#'],
        vec![b'X'],
        vec![b'X', 1],
        vec![b'Y'],
        vec![b'a'],
        vec![b'b', 2],
        vec![b'm'],
        vec![b'm', 1],
        vec![b'n'],
        vec![b't', 1],
        vec![b'x'],
        vec![b'y'],
        vec![0xff],
        vec![0xff, 0xff],
    ];
    let mut compared = 0;
    for start in &bounds {
        for end in &bounds {
            for direction in [Direction::Forward, Direction::Reverse] {
                for limit in [1, 4, usize::MAX] {
                    let ours = collect(sm.store(), start, end, direction, limit);
                    let want = collect(&mem, start, end, direction, limit);
                    assert_eq!(ours, want, "scan [{start:?}, {end:?}) {direction:?} limit {limit}");
                    compared += ours.len();
                }
            }
        }
    }
    assert!(compared > 1_000, "the ranges cover the keys: {compared}");
    for key in [
        vec![b'm', 0],
        vec![b'm', 1],
        vec![b'Q'],
        vec![0xff, 2],
        vec![b'b'],
        vec![b'k', 1],
        vec![b'k', 2],
        vec![b'm', 2],
    ] {
        assert_eq!(sm.store().get(&key).unwrap(), mem.get(&key).unwrap(), "get {key:?}");
    }
}

/// Publishing appends to the messages, contents and ready tables; in one
/// column family every flushed file spanned all three backlogs, so each
/// overlapped every file before it and compaction rewrote them all again
/// and again (format 5: 11.8 GB of compaction for a 1,000,000-message
/// run). Each growing table in a family of its own: a flush while
/// publishing covers only ids newer than every file before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_flushed_while_publishing_do_not_overlap_in_a_growing_table() {
    use crate::tests::{entry, membership, publish};

    let dir = tempfile::tempdir().unwrap();
    let mut index = 0;
    // Three rounds, each ending in a close; the reopen flushes what the
    // round wrote into one file per family (fewer files than trigger a
    // compaction).
    for round in 0..3u64 {
        let (_log, mut sm) = RocksStore::open(dir.path()).await.unwrap();
        let mut entries = Vec::new();
        if round == 0 {
            entries.push(membership(0));
            index += 1;
            entries.push(entry(
                index,
                1_000,
                vec![raftq_core::Command::CreateQueue { name: "jobs".into(), config: Default::default() }],
            ));
        }
        for _ in 0..50 {
            index += 1;
            entries.push(entry(index, 1_000 + index, vec![publish("jobs", "a body"), publish("jobs", "another")]));
        }
        apply(&mut sm, entries).await;
    }
    drop(RocksStore::open(dir.path()).await.unwrap());

    let db = open_db(dir.path(), MEMORY_BUDGET_DEFAULT_BYTES).unwrap();
    let files = db.live_files().unwrap();
    let ranges_of = |family: &str| {
        let mut ranges: Vec<(Vec<u8>, Vec<u8>)> = files
            .iter()
            .filter(|file| file.column_family_name == family)
            .map(|file| (file.start_key.clone().unwrap(), file.end_key.clone().unwrap()))
            .collect();
        ranges.sort();
        ranges
    };
    // The check can see overlap: `state` holds tables every round rewrites
    // (the queue record, the globals), so its files overlap, as every
    // file did when the growing tables lived there too.
    let small = ranges_of("state");
    assert!(small.len() >= 3 && small.windows(2).any(|pair| pair[0].1 >= pair[1].0), "{small:?}");
    for family in ["state_messages", "state_contents", "state_ready"] {
        let ranges = ranges_of(family);
        assert!(ranges.len() >= 3, "{family}: one file per round, got {ranges:?}");
        for pair in ranges.windows(2) {
            assert!(pair[0].1 < pair[1].0, "{family}: files {:?} and {:?} overlap", pair[0], pair[1]);
        }
    }
}

/// A snapshot install that crashed before its switch left pairs in the
/// staging generation: the next open deletes them, in every family, and
/// the live state is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_deletes_a_half_installed_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let digest = {
        let (_log, mut sm) = RocksStore::open(dir.path()).await.unwrap();
        apply(&mut sm, workload(20)).await;
        sm.reader().digest().unwrap()
    };
    poke(dir.path(), |db| {
        for family in ["state", "state_messages", "state_contents", "state_ready"] {
            db.put_cf(cf(db, family), [1, b'm', 7], b"half of a snapshot").unwrap();
        }
    });
    let (_log, sm) = RocksStore::open(dir.path()).await.unwrap();
    assert_eq!(sm.reader().digest().unwrap(), digest);
    drop((_log, sm));
    poke(dir.path(), |db| {
        for family in super::state::STATE_FAMILIES {
            let left = db.iterator_cf(cf(db, family), rocksdb::IteratorMode::From(&[1], rocksdb::Direction::Forward));
            assert_eq!(left.count(), 0, "{family} still holds staging pairs");
        }
    });
}

/// The options RocksDB recorded for each column family at its last open
/// (its newest `OPTIONS-*` file), as `name=value` lines per family.
fn recorded_family_options(dir: &Path) -> std::collections::BTreeMap<String, Vec<String>> {
    let newest = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("OPTIONS-"))
        .max_by_key(|name| name["OPTIONS-".len()..].parse::<u64>().unwrap_or(0))
        .expect("RocksDB writes an OPTIONS file");
    let mut families = std::collections::BTreeMap::new();
    let mut current = None;
    for line in std::fs::read_to_string(dir.join(newest)).unwrap().lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("[CFOptions \"").and_then(|rest| rest.strip_suffix("\"]")) {
            current = Some(name.to_string());
        } else if line.starts_with('[') {
            current = None;
        } else if let Some(name) = &current {
            families.entry(name.clone()).or_insert_with(Vec::new).push(line.to_string());
        }
    }
    families
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_timer_index_is_compacted_for_its_deletions() {
    // A queue at its bound of idempotency keys deletes one for every one it
    // stores. With the deletion-triggered compaction and RocksDB's four
    // level-0 files, the three dedup families were compacted ~15 times
    // what was flushed to them (2,000,000 keyed publishes: 3.1 GB for
    // 214 MB on one node), and the publish rate halved from there.
    let dir = tempfile::tempdir().unwrap();
    drop(RocksStore::open(dir.path()).await.unwrap());
    let families = recorded_family_options(dir.path());
    let has = |family: &str, option: &str| families[family].iter().any(|line| line.starts_with(option));
    let dedup = super::state::DEDUP_FAMILIES;
    assert_eq!(dedup, ["state_dedup", "state_dedup_by_queue", "state_dedup_by_expiry"]);
    for &family in dedup {
        assert!(has(family, "level0_file_num_compaction_trigger=16"), "{family}: {:?}", families[family]);
        assert!(!has(family, "table_properties_collectors={{id=CompactOnDeletionCollector"), "{family}");
    }
    // Nor are message contents: they are read only at the ids a receive
    // takes, so their tombstones slow no scan, and compacting each file of
    // them early rewrote the bodies below not yet acked.
    assert_eq!(super::state::CONTENTS_FAMILY, "state_contents");
    assert!(!has("state_contents", "table_properties_collectors={{id=CompactOnDeletionCollector"));
    assert!(has("state_contents", "level0_file_num_compaction_trigger=4"));
    // Nor are heads and the ready index, which a queue holding a backlog
    // writes at both ends at once (every flushed file spans the backlog):
    // with 1,000,000 messages standing, 300,000 more going through had the
    // heads' compactions write 7.0 GB on three nodes. They wait for sixteen
    // files.
    assert_eq!(super::state::BACKLOG_INDEX_FAMILIES, ["state_messages", "state_ready"]);
    for family in super::state::BACKLOG_INDEX_FAMILIES {
        assert!(!has(family, "table_properties_collectors={{id=CompactOnDeletionCollector"), "{family}");
        assert!(has(family, "level0_file_num_compaction_trigger=16"), "{family}");
    }
    // The timer index keeps it: its scans start at the front.
    assert!(has("state_timers", "table_properties_collectors={{id=CompactOnDeletionCollector"));
    assert!(has("state_timers", "level0_file_num_compaction_trigger=4"));
}

/// Sends SIGKILL to process `pid` (through `kill`: this crate has no
/// unsafe code).
fn kill_9(pid: u32) {
    let status = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().expect("run kill");
    assert!(status.success(), "kill -9 {pid}: {status}");
}

/// Env var naming the data dir when this test binary runs as the child of
/// `a_crash_loses_unflushed_state_writes_and_the_log_re_applies_them`.
const CRASH_CHILD_DIR: &str = "RAFTQ_TEST_CRASH_CHILD_DIR";

/// State writes skip the WAL (the log is their redo log). A real process
/// crash (`kill -9`: no shutdown flush) after applying past the last flush
/// loses those state writes with their applied id, never part of them, and
/// re-applying the synced log gives the state back. Before, state writes
/// went through the WAL and survived the crash: the first assertion fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loses_unflushed_state_writes_and_the_log_re_applies_them() {
    let entries = workload(40);
    if let Ok(dir) = std::env::var(CRASH_CHILD_DIR) {
        let dir = PathBuf::from(dir);
        let (mut log, mut sm) = RocksStore::open(&dir).await.unwrap();
        append_synced(&mut log, entries.clone()).await;
        log.save_committed(entries.last().map(|e| e.log_id)).await.unwrap();
        apply(&mut sm, entries[..20].to_vec()).await;
        sm.try_create_snapshot_builder(true).await.unwrap().build_snapshot().await.unwrap();
        apply(&mut sm, entries[20..].to_vec()).await;
        let digest = sm.reader().digest().unwrap();
        std::fs::write(dir.join("child-digest"), digest).unwrap();
        // Dies by `kill -9`: no destructor, no shutdown flush.
        kill_9(std::process::id());
        loop {
            std::thread::park();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "rocks::tests::a_crash_loses_unflushed_state_writes_and_the_log_re_applies_them"])
        .args(["--nocapture", "--test-threads", "1"])
        .env(CRASH_CHILD_DIR, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let waiting = tokio::task::spawn_blocking(move || child.wait());
    let Ok(status) = tokio::time::timeout(std::time::Duration::from_secs(120), waiting).await else {
        kill_9(pid);
        panic!("the child did not end within 120 s");
    };
    let status = status.unwrap().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "the child was killed where it should be: {status}");
    let full = std::fs::read(dir.path().join("child-digest")).expect("the child applied every entry before it died");

    let (mut log, mut sm) = RocksStore::open(dir.path()).await.unwrap();
    assert_eq!(sm.applied(), Some(entries[19].log_id), "the state as of the flush at the snapshot build");
    raftq_core::check_invariants(sm.store(), raftq_core::DedupCaps::default()).expect("a consistent state");
    assert_eq!(log.get_log_state().await.unwrap().last_log_id, entries.last().map(|e| e.log_id), "the log was synced");
    StorageHelper::new(&mut log, &mut sm).with_id(1).get_initial_state().await.unwrap();
    assert_eq!(sm.applied(), entries.last().map(|e| e.log_id), "openraft re-applied the committed log");
    assert_eq!(sm.reader().digest().unwrap().to_vec(), full, "the same state as before the crash");
}

/// The state's writes are not in the write-ahead log: 4 MiB of state adds
/// almost nothing to it (before, every byte was written there as well).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_writes_stay_out_of_the_write_ahead_log() {
    use crate::machine::StateStore;
    use raftq_core::kv::KvRead;
    let dir = tempfile::tempdir().unwrap();
    let (_log, sm) = RocksStore::open(dir.path()).await.unwrap();
    let store = sm.store().clone();
    let before = bytes_with_ext(dir.path(), "log");
    for batch in 0..4u32 {
        store
            .write((0..256u32).map(|i| (format!("test/{batch}/{i:04}").into_bytes(), Some(vec![9u8; 4096]))).collect())
            .unwrap();
    }
    let grown = bytes_with_ext(dir.path(), "log") - before;
    assert!(grown < 64 << 10, "the WAL grew by {grown} bytes for 4 MiB of state");
    assert_eq!(store.get(b"test/3/0255").unwrap(), Some(vec![9u8; 4096]), "readable at once");
}
