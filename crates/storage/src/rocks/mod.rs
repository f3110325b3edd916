//! The RocksDB store: one database per node directory.
//!
//! Column families:
//! - `log`: big-endian index → framed openraft entry.
//! - `meta`: `vote`, `last_purged`, `committed` → framed values.
//! - `sm`: `snapshot` → the framed [`StoredSnapshot`](crate::StoredSnapshot).
//!
//! Every write goes to RocksDB unsynced (readable at once) and then waits
//! for the group-commit thread (`syncer`) to fsync the WAL before it is
//! acknowledged. No compression: log records are small and already dense.

mod log_store;
mod snapshots;
mod syncer;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use rocksdb::{ColumnFamilyDescriptor, DB, DBCompressionType, DBRecoveryMode, Options};

pub use self::log_store::{RocksLogReader, RocksLogStore};
pub use self::snapshots::RocksSnapshots;
use crate::error::OpenError;
use crate::machine::StateMachine;

/// The state machine persisting its snapshots in RocksDB.
pub type RocksStateMachine = StateMachine<RocksSnapshots>;

pub(crate) const CF_LOG: &str = "log";
pub(crate) const CF_META: &str = "meta";
pub(crate) const CF_SM: &str = "sm";

/// RocksDB memtable size per column family: big enough that a burst of
/// appends does not stall on flushes, small enough for three nodes on a
/// laptop.
const WRITE_BUFFER_BYTES: usize = 64 << 20;

/// Opens (or creates) the node's RocksDB store.
#[derive(Debug)]
pub struct RocksStore;

impl RocksStore {
    /// Opens the database in `path`, checks the log tail and the snapshot,
    /// and returns the log store and state machine to hand to openraft.
    /// Damage other than a torn last record is an error naming what is
    /// damaged and where; the node must not start.
    pub async fn open(path: impl AsRef<Path>) -> Result<(RocksLogStore, RocksStateMachine), OpenError> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let db = open_db(path).map_err(|source| open_error(path, source))?;
        let db = Arc::new(db);
        let origin: Arc<str> = origin.into();
        let log_store = RocksLogStore::open(db.clone(), origin.clone())?;
        let machine = StateMachine::open(RocksSnapshots::new(db, origin)).await?;
        Ok((log_store, machine))
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

fn open_db(path: &Path) -> Result<DB, rocksdb::Error> {
    let mut opts = cf_options();
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
    let cfs = [CF_LOG, CF_META, CF_SM].map(|name| ColumnFamilyDescriptor::new(name, cf_options()));
    DB::open_cf_descriptors(&opts, path, cfs)
}

fn cf_options() -> Options {
    let mut opts = Options::default();
    opts.set_compression_type(DBCompressionType::None);
    opts.set_write_buffer_size(WRITE_BUFFER_BYTES);
    opts
}

/// The column family `name`, which `open_db` always creates.
pub(crate) fn cf<'a>(db: &'a DB, name: &str) -> &'a rocksdb::ColumnFamily {
    db.cf_handle(name).unwrap_or_else(|| panic!("column family {name} exists: open_db creates it"))
}
