//! The RocksDB store: one database per node directory.
//!
//! Column families:
//! - `log`: big-endian index → framed openraft entry.
//! - `meta`: `vote`, `last_purged`, `committed` → framed values;
//!   `state_format` (the layout version) and `state_generation`.
//! - `state`: the queue state, one generation byte then the core's key
//!   (see `docs/storage.md`), and the applied log id and membership;
//!   `state_messages`, `state_contents`, `state_ready`, `state_timers`,
//!   `state_dedup`, `state_dedup_by_queue`, `state_dedup_by_expiry`: the
//!   tables that grow with the backlog, one each, keyed the same way.
//!
//! Every log write goes to RocksDB unsynced (readable at once) and then
//! waits for the group-commit thread (`syncer`) to fsync the WAL before it
//! is acknowledged. State writes skip the WAL: the log is their redo log.
//! They become durable when RocksDB flushes the memtables (all column
//! families at once: atomic flush), and a snapshot build flushes them
//! before openraft may purge the log behind it; a crash that loses
//! unflushed state writes loses their applied id with them, and the node
//! re-applies those entries from its log.
//! No compression: log records are small and bodies are the user's bytes.
//!
//! Memory: one budget ([`StoreOptions::memory_budget_bytes`]) bounds the
//! block cache, which memtables are charged to as well (a write buffer
//! manager), index and filter blocks included; RocksDB stays inside it
//! whatever the backlog.

mod log_store;
mod state;
mod syncer;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, DBCompressionType, DBRecoveryMode, Options};

pub use self::log_store::{RocksLogReader, RocksLogStore};
pub use self::state::RocksState;
use crate::error::OpenError;
use crate::machine::StateMachine;

/// The state machine on RocksDB.
pub type RocksStateMachine = StateMachine<RocksState>;

pub(crate) const CF_LOG: &str = "log";
pub(crate) const CF_META: &str = "meta";
pub(crate) const CF_STATE: &str = "state";
/// The column family of storage format 1 (the whole state as one snapshot
/// record): its presence means a data dir this build cannot read.
const CF_FORMAT_1: &str = "sm";

/// The storage format this build writes and reads (`meta` key
/// `state_format`). Format 1 kept the queue state in memory and one snapshot
/// record; format 2 keeps it in the `state` column family; format 3 adds
/// scan floors to the state's records (their encoding changed); format 4
/// records two addresses per member (client and peer) in the log's and the
/// state's membership; format 5 stores a message's body and attributes
/// apart from its head (state, counts, history); format 6 keeps each table
/// that grows with the backlog in a column family of its own; format 7
/// stores an idempotency key's entry in its two index keys as well.
pub const STORAGE_FORMAT_VERSION: u8 = 7;
/// Files in level 0 of a dedup family before they are compacted into
/// level 1 (RocksDB's default is 4; see `open_db`).
const DEDUP_L0_FILES: i32 = 16;
const META_FORMAT: &str = "state_format";

/// Default [`StoreOptions::memory_budget_bytes`]: RocksDB's share of a
/// container with 512 MiB.
pub const MEMORY_BUDGET_DEFAULT_BYTES: usize = 256 << 20;
/// Smallest budget accepted: below it RocksDB thrashes.
pub const MEMORY_BUDGET_MIN_BYTES: usize = 32 << 20;

/// Write-ahead log kept on disk at most (about): older files are released
/// by flushing the column families that still need them.
pub const WAL_BYTES_MAX: u64 = 64 << 20;

/// How a store is opened.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// RocksDB's memory: block cache, memtables, index and filter blocks.
    pub memory_budget_bytes: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { memory_budget_bytes: MEMORY_BUDGET_DEFAULT_BYTES }
    }
}

/// Opens (or creates) the node's RocksDB store.
#[derive(Debug)]
pub struct RocksStore;

impl RocksStore {
    /// Opens the database in `path`, checks the log tail and the snapshot,
    /// and returns the log store and state machine to hand to openraft.
    /// Damage other than a torn last record is an error naming what is
    /// damaged and where; the node must not start.
    pub async fn open(path: impl AsRef<Path>) -> Result<(RocksLogStore, RocksStateMachine), OpenError> {
        Self::open_with(path, &StoreOptions::default()).await
    }

    /// [`RocksStore::open`] with options.
    pub async fn open_with(
        path: impl AsRef<Path>,
        options: &StoreOptions,
    ) -> Result<(RocksLogStore, RocksStateMachine), OpenError> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        check_format_1(path)?;
        let db = open_db(path, options.memory_budget_bytes).map_err(|source| open_error(path, source))?;
        check_format(&db, &origin)?;
        let db = Arc::new(db);
        let origin: Arc<str> = origin.into();
        let log_store = RocksLogStore::open(db.clone(), origin.clone())?;
        let machine = StateMachine::open(RocksState::open(db, origin)?)?;
        Ok((log_store, machine))
    }
}

/// Refuses a data dir written by storage format 1.
fn check_format_1(path: &Path) -> Result<(), OpenError> {
    let Ok(families) = DB::list_cf(&Options::default(), path) else { return Ok(()) };
    if families.iter().any(|name| name == CF_FORMAT_1) {
        return Err(OpenError::Format { origin: path.display().to_string(), found: 1 });
    }
    Ok(())
}

/// Checks the stored format version; writes it into a new database.
fn check_format(db: &DB, origin: &str) -> Result<(), OpenError> {
    let rocks_err = |source| OpenError::Rocks { origin: origin.to_string(), source };
    match db.get_cf(cf(db, CF_META), META_FORMAT).map_err(rocks_err)? {
        Some(found) if found.as_slice() == [STORAGE_FORMAT_VERSION] => Ok(()),
        Some(found) => {
            Err(OpenError::Format { origin: origin.to_string(), found: found.first().copied().unwrap_or(0) })
        }
        None => {
            let has_log = db.iterator_cf(cf(db, CF_LOG), rocksdb::IteratorMode::Start).next().is_some();
            if has_log {
                return Err(OpenError::Format { origin: origin.to_string(), found: 0 });
            }
            let mut opts = rocksdb::WriteOptions::default();
            opts.set_sync(true);
            let mut batch = rocksdb::WriteBatch::default();
            batch.put_cf(cf(db, CF_META), META_FORMAT, [STORAGE_FORMAT_VERSION]);
            db.write_opt(batch, &opts).map_err(rocks_err)
        }
    }
}

/// A failed RocksDB open as an [`OpenError`]: corruption names the
/// directory and its write-ahead log files (RocksDB's message does not).
fn open_error(path: &Path, source: rocksdb::Error) -> OpenError {
    let origin = path.display().to_string();
    if !matches!(source.kind(), rocksdb::ErrorKind::Corruption) {
        return OpenError::Rocks { origin, source };
    }
    let mut wals: Vec<String> = std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".log") && name != "LOG")
        .collect();
    wals.sort();
    let wal_files = if wals.is_empty() { "none".to_string() } else { wals.join(", ") };
    OpenError::CorruptRocks { origin, wal_files, source }
}

fn open_db(path: &Path, memory_budget_bytes: usize) -> Result<DB, rocksdb::Error> {
    let budget = memory_budget_bytes.max(MEMORY_BUDGET_MIN_BYTES);
    // One cache holds data, index and filter blocks and is charged for the
    // memtables too: RocksDB's memory stays inside three quarters of the
    // budget (the rest is the process's own: buffers, requests).
    let cache = Cache::new_lru_cache(budget / 4 * 3);
    let memtables = rocksdb::WriteBufferManager::new_write_buffer_manager_with_cache(budget / 4, false, cache.clone());
    let write_buffer_bytes = (budget / 16).clamp(4 << 20, 64 << 20);
    let cf_options = || cf_options(&cache, write_buffer_bytes);
    let mut opts = cf_options();
    opts.set_write_buffer_manager(&memtables);
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    // The WAL is the durability mechanism: written on every write (never
    // buffered in process) and fsynced by the group-commit thread.
    opts.set_manual_wal_flush(false);
    // After a crash the WAL may end in a torn, never-synced (so never
    // acknowledged) record: that tail alone is dropped. Damage anywhere
    // before it refuses to open: point-in-time recovery would silently drop
    // every record after it (synced appends and votes included), and our own
    // record checksums would never see what is gone.
    opts.set_wal_recovery_mode(DBRecoveryMode::TolerateCorruptedTailRecords);
    opts.set_paranoid_checks(true);
    // A WAL file is kept until every column family has flushed what it
    // holds of it, and `meta` takes a few bytes per vote or commit: its
    // memtable almost never fills, so without a bound every WAL file since
    // its oldest write stayed (1 GiB of WAL after 300,000 messages, all
    // replayed at each start). Past this total RocksDB flushes the column
    // families holding the oldest file.
    opts.set_max_total_wal_size(WAL_BYTES_MAX);
    // The state's writes skip the WAL (`RocksState::write`): the Raft log
    // is their redo log. What survives a crash of them is what was flushed,
    // so every flush must cover all the state's families at one point of
    // the write sequence, or a crash could keep one table's changes
    // without another's (a message's head deleted, its queue's count not).
    // Atomic flush: every flush, ours or RocksDB's own, flushes all column
    // families together and records them in one step.
    opts.set_atomic_flush(true);
    let state = |name: &str| {
        let mut state = cf_options();
        if state::DEDUP_FAMILIES.contains(&name) {
            // A queue at its bound of idempotency keys forgets its oldest
            // key for every key it stores: each flushed file of these
            // families is half deletions and spans the family's whole live
            // range. Left to the defaults, the deletion-triggered
            // compaction below picked every such file at once and every
            // fourth flush rewrote the whole level below: 3.1 GB of
            // compaction for 214 MB flushed (2,000,000 keyed publishes).
            // Without the former and with sixteen files before the latter,
            // 0.36 GB; point reads check up to sixteen more (cached) filters.
            state.set_level_zero_file_num_compaction_trigger(DEDUP_L0_FILES);
            state.set_level_zero_slowdown_writes_trigger(DEDUP_L0_FILES * 3);
            state.set_level_zero_stop_writes_trigger(DEDUP_L0_FILES * 4);
            // Most point reads of these families are misses (is this
            // idempotency key new?): a bloom filter over the memtable
            // answers them without a skiplist walk, as the SST filters do
            // for the files. Only here: the other families' point reads
            // find what they look for (a message's head, a queue record),
            // so a memtable filter would cost every write a hash into it
            // (6 % of a follower's samples in a drain) and spare no read.
            state.set_memtable_whole_key_filtering(true);
            state.set_memtable_prefix_bloom_ratio(0.05);
        } else if state::BACKLOG_INDEX_FAMILIES.contains(&name) {
            // Heads and the ready index of a queue that holds a backlog are
            // written at both ends at once: publishes append at the back,
            // receives and acks rewrite and delete at the front. So every
            // file flushed spans the whole backlog, and each compaction of
            // level 0 rewrote every file of the level below (all of the
            // family while it is under 256 MB), which the deletion-triggered
            // compaction asked for at nearly every flush: with 1,000,000
            // messages standing, 300,000 more published and consumed
            // compacted the heads 7.4 GB read / 7.0 GB written on the three
            // nodes. Sixteen level-0 files per compaction, as the dedup
            // families, and no early compaction for deletions: 0.69 GB /
            // 0.35 GB. Scans of these families start at floors (the ready
            // range) or at the ids wanted; a peek or a redrive from the front
            // of a queue steps over at most sixteen files' worth more of
            // tombstones.
            state.set_level_zero_file_num_compaction_trigger(DEDUP_L0_FILES);
            state.set_level_zero_slowdown_writes_trigger(DEDUP_L0_FILES * 3);
            state.set_level_zero_stop_writes_trigger(DEDUP_L0_FILES * 4);
        } else if name == state::CONTENTS_FAMILY {
            // Bodies are read at the ids a receive takes (a scan spans at
            // most twice the ids it wants), never from the front of the
            // table, so the tombstones of acked bodies slow no read. Compacted
            // early, each file of them was merged with the bodies below it
            // while the drain was still deleting those: every flush rewrote
            // the bodies not yet acked. Left to RocksDB's level-0 trigger, a
            // drain of 300,000 messages compacted this family 0.57–0.66 GB
            // read / 0.07 GB written (three nodes) instead of 1.1–1.6 /
            // 0.35–0.89.
        } else {
            // The timer index is a queue: keys are deleted at the front as
            // fast as they are added at the back, and its scans start at the
            // front (the `state` family holds only small tables). Compact
            // files dense with deletions early, so finding the first live key
            // stays cheap.
            state.add_compact_on_deletion_collector_factory(10_000, 5_000, 0.5);
        }
        state
    };
    let mut cfs =
        vec![ColumnFamilyDescriptor::new(CF_LOG, cf_options()), ColumnFamilyDescriptor::new(CF_META, cf_options())];
    cfs.extend(state::STATE_FAMILIES.iter().map(|name| ColumnFamilyDescriptor::new(*name, state(name))));
    let db = DB::open_cf_descriptors(&opts, path, cfs)?;
    // A range deletion (a cleared range, `RocksState::write`) makes the
    // next read of its family rebuild the memtable's whole list of range
    // deletions. The core clears only long runs, so a memtable holds few;
    // past this many, RocksDB flushes it rather than let each rebuild grow.
    // (Not settable before open in this binding; a mutable option.)
    let limit = MEMTABLE_RANGE_DELETIONS_MAX.to_string();
    for name in state::STATE_FAMILIES {
        db.set_options_cf(cf(&db, name), &[("memtable_max_range_deletions", limit.as_str())])?;
    }
    Ok(db)
}

/// See `open_db`: range deletions one state family's memtable holds before
/// RocksDB flushes it.
const MEMTABLE_RANGE_DELETIONS_MAX: u32 = 1_000;

fn cf_options(cache: &Cache, write_buffer_bytes: usize) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_cache_index_and_filter_blocks(true);
    // Every read consults the newest files first: keep their filters and
    // indexes in the cache rather than reading them again after eviction.
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    table.set_bloom_filter(10.0, false);
    let mut opts = Options::default();
    opts.set_block_based_table_factory(&table);
    opts.set_compression_type(DBCompressionType::None);
    opts.set_write_buffer_size(write_buffer_bytes);
    opts
}

/// The column family `name`, which `open_db` always creates.
pub(crate) fn cf<'a>(db: &'a DB, name: &str) -> &'a rocksdb::ColumnFamily {
    db.cf_handle(name).unwrap_or_else(|| panic!("column family {name} exists: open_db creates it"))
}
