//! openraft's log store on RocksDB: the `log` and `meta` column families.

use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::sync::Arc;

use openraft::storage::{RaftLogReader, RaftLogStorage};
use openraft::{OptionalSend, RaftTypeConfig};
use rocksdb::{DB, Direction, IteratorMode, WriteBatch};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::syncer::Syncer;
use super::{CF_LOG, CF_META, cf};
use crate::codec::{self, META_COMMITTED, META_LAST_PURGED, META_VOTE, index_key, index_range, key_index};
use crate::error::{OpenError, corrupt, rocks_io};
use crate::recovery;
use crate::types::{Entry, IOFlushed, LogId, LogState, TypeConfig, Vote};

/// The log store openraft owns. Every mutation is acknowledged only after
/// the group-commit thread has fsynced the WAL that holds it.
#[derive(Debug)]
pub struct RocksLogStore {
    db: Arc<DB>,
    /// The database path, for error messages.
    origin: Arc<str>,
    syncer: Syncer,
    /// Cached: only this store writes it, and openraft serializes writes.
    last_purged: Option<LogId>,
}

impl RocksLogStore {
    pub(crate) fn open(db: Arc<DB>, origin: Arc<str>) -> Result<Self, OpenError> {
        let rocks_err = |source: rocksdb::Error| OpenError::Rocks { origin: origin.to_string(), source };
        let meta = recovery::check_meta(&origin, |key| db.get_cf(cf(&db, CF_META), key).map_err(rocks_err))?;
        let newest_first = db.iterator_cf(cf(&db, CF_LOG), IteratorMode::End).map(|item| item.map_err(rocks_err));
        if let Some(torn) = recovery::check_log(&origin, &meta, newest_first)? {
            let mut batch = WriteBatch::default();
            batch.delete_cf(cf(&db, CF_LOG), index_key(torn));
            let mut opts = rocksdb::WriteOptions::default();
            opts.set_sync(true);
            db.write_opt(batch, &opts).map_err(rocks_err)?;
        }
        let syncer = Syncer::start(db.clone())?;
        Ok(Self { db, origin, syncer, last_purged: meta.last_purged })
    }

    /// WAL fsyncs so far. Under concurrent load it grows slower than the
    /// number of writes: that is group commit at work.
    pub fn sync_count(&self) -> u64 {
        self.syncer.sync_count()
    }

    #[cfg(test)]
    pub(crate) fn db(&self) -> &DB {
        &self.db
    }

    #[cfg(test)]
    pub(crate) fn sync_gate(&self) -> Arc<std::sync::Mutex<()>> {
        self.syncer.gate()
    }

    fn reader(&self) -> RocksLogReader {
        RocksLogReader { db: self.db.clone(), origin: self.origin.clone() }
    }

    /// Writes `batch` unsynced (readable at once), then waits for the fsync.
    async fn write_synced(&self, batch: WriteBatch) -> io::Result<()> {
        self.db.write(batch).map_err(rocks_io)?;
        self.syncer.flush().await
    }
}

fn read_meta<T: DeserializeOwned>(db: &DB, key: &'static str, origin: &str) -> io::Result<Option<T>> {
    let record = db.get_pinned_cf(cf(db, CF_META), key).map_err(rocks_io)?;
    let value = record.map(|bytes| codec::decode(&bytes)).transpose();
    value.map_err(|e| corrupt(format_args!("stored {key}"), origin, e))
}

fn put_meta<T: Serialize>(db: &DB, batch: &mut WriteBatch, key: &str, value: &T) {
    batch.put_cf(cf(db, CF_META), key, codec::encode(value));
}

/// Reads log entries; cheap to clone, one per replication task.
#[derive(Clone, Debug)]
pub struct RocksLogReader {
    db: Arc<DB>,
    origin: Arc<str>,
}

impl RocksLogReader {
    fn last_entry(&self) -> io::Result<Option<Entry>> {
        let Some(item) = self.db.iterator_cf(cf(&self.db, CF_LOG), IteratorMode::End).next() else {
            return Ok(None);
        };
        let (key, value) = item.map_err(rocks_io)?;
        decode_entry(&key, &value, &self.origin).map(Some)
    }
}

impl RaftLogReader<TypeConfig> for RocksLogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> io::Result<Vec<Entry>> {
        let (start, end) = index_range(&range);
        let (db, origin) = (self.db.clone(), self.origin.clone());
        // A range read may touch SST files: keep it off the async workers.
        tokio::task::spawn_blocking(move || read_range(&db, &origin, start, end))
            .await
            .map_err(|e| io::Error::other(format!("log read task failed: {e}")))?
    }

    async fn read_vote(&mut self) -> io::Result<Option<Vote>> {
        read_meta(&self.db, META_VOTE, &self.origin)
    }
}

fn read_range(db: &DB, origin: &str, start: u64, end: Option<u64>) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let from = index_key(start);
    for item in db.iterator_cf(cf(db, CF_LOG), IteratorMode::From(&from, Direction::Forward)) {
        let (key, value) = item.map_err(rocks_io)?;
        if end.is_some_and(|end| key_index(&key).is_some_and(|index| index >= end)) {
            break;
        }
        entries.push(decode_entry(&key, &value, origin)?);
    }
    Ok(entries)
}

/// Decodes a log record stored under `key`.
fn decode_entry(key: &[u8], value: &[u8], origin: &str) -> io::Result<Entry> {
    let index = key_index(key)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("log key {key:02x?} in {origin}")))?;
    codec::decode_entry(index, value, origin)
}

impl RaftLogStorage<TypeConfig> for RocksLogStore {
    type LogReader = RocksLogReader;

    async fn get_log_state(&mut self) -> io::Result<LogState> {
        let last = self.reader().last_entry()?.map(|entry| entry.log_id);
        Ok(LogState { last_purged_log_id: self.last_purged, last_log_id: last.or(self.last_purged) })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.reader()
    }

    async fn save_vote(&mut self, vote: &Vote) -> io::Result<()> {
        let mut batch = WriteBatch::default();
        put_meta(&self.db, &mut batch, META_VOTE, vote);
        self.write_synced(batch).await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> io::Result<()> {
        // Not waited for: `committed` only lets a restart re-apply sooner,
        // and the next fsync (any append or vote) carries it.
        let mut batch = WriteBatch::default();
        put_meta(&self.db, &mut batch, META_COMMITTED, &committed);
        self.db.write(batch).map_err(rocks_io)
    }

    async fn read_committed(&mut self) -> io::Result<Option<LogId>> {
        Ok(read_meta::<Option<LogId>>(&self.db, META_COMMITTED, &self.origin)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed) -> io::Result<()>
    where
        I: IntoIterator<Item = <TypeConfig as RaftTypeConfig>::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::default();
        for entry in entries {
            batch.put_cf(cf(&self.db, CF_LOG), index_key(entry.log_id.index), codec::encode(&entry));
        }
        // Readable when this returns; durable when the callback fires.
        self.db.write(batch).map_err(rocks_io)?;
        self.syncer.flush_then(callback);
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> io::Result<()> {
        let from = last_log_id.map_or(0, |id| id.index.saturating_add(1));
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(cf(&self.db, CF_LOG), index_key(from), index_key(u64::MAX));
        self.write_synced(batch).await
    }

    async fn purge(&mut self, log_id: LogId) -> io::Result<()> {
        // The purge mark and the deletion in one batch: no state on disk has
        // one without the other.
        let mut batch = WriteBatch::default();
        put_meta(&self.db, &mut batch, META_LAST_PURGED, &log_id);
        batch.delete_range_cf(cf(&self.db, CF_LOG), index_key(0), index_key(log_id.index.saturating_add(1)));
        self.write_synced(batch).await?;
        self.last_purged = Some(log_id);
        // The range tombstone hides the purged entries at once, but their
        // files stay until a compaction reaches them, and once the writes
        // stop (a drained queue) none comes: drop the files wholly inside
        // the purged range now. The end is inclusive, so it is the last
        // purged index itself.
        let db = self.db.clone();
        let freed = tokio::task::spawn_blocking(move || {
            db.delete_file_in_range_cf(cf(&db, CF_LOG), index_key(0), index_key(log_id.index))
        })
        .await
        .map_err(|e| io::Error::other(format!("log file deletion task failed: {e}")))?;
        if let Err(err) = freed {
            tracing::warn!(origin = %self.origin, "could not drop purged log files at once: {err}");
        }
        Ok(())
    }
}
