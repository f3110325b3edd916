//! The queue state in RocksDB's `state` column family.
//!
//! Every key of the state (the core's pairs and the host's applied log id
//! and membership) is stored behind a one-byte *generation*: `0` or `1`.
//! Reads and writes use the active generation, named in the `meta` column
//! family. Installing a snapshot writes the other generation (staging, its
//! old contents range-deleted first) without the WAL, flushes it to SST
//! files, and then switches in one synced batch that names the new
//! generation and range-deletes the old one. A crash before the switch
//! leaves the old state active; open deletes a half-written staging area.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use raftq_core::kv::{Direction, KvRead, StoreFault, WriteSet};
use rocksdb::{DB, ReadOptions, WriteBatch, WriteOptions};

use super::{CF_META, CF_STATE, cf};
use crate::error::{OpenError, rocks_io};
use crate::machine::StateStore;
use crate::snapshot_stream::{ChunkSender, Decoder, Encoder, SnapshotData};

/// `meta` key naming the active generation (one byte).
const META_GENERATION: &str = "state_generation";

/// [`StateStore`] on RocksDB. Clones share the database.
#[derive(Clone, Debug)]
pub struct RocksState {
    db: Arc<DB>,
    origin: Arc<str>,
    generation: Arc<AtomicU8>,
    /// Keys deleted by `write` since the store was opened.
    deleted: Arc<std::sync::atomic::AtomicU64>,
}

fn prefixed(generation: u8, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 1);
    out.push(generation);
    out.extend_from_slice(key);
    out
}

fn fault(err: rocksdb::Error) -> StoreFault {
    StoreFault(format!("RocksDB: {err}"))
}

impl RocksState {
    pub(crate) fn open(db: Arc<DB>, origin: Arc<str>) -> Result<Self, OpenError> {
        let rocks_err = |source| OpenError::Rocks { origin: origin.to_string(), source };
        let generation = match db.get_cf(cf(&db, CF_META), META_GENERATION).map_err(rocks_err)? {
            None => 0,
            Some(bytes) if bytes.as_slice() == [0] || bytes.as_slice() == [1] => bytes[0],
            Some(bytes) => {
                return Err(OpenError::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("state generation {bytes:?} in {origin} is not 0 or 1"),
                )));
            }
        };
        // A snapshot install that crashed before its switch leaves staging
        // pairs in the other generation: drop them.
        let staging = 1 - generation;
        db.delete_range_cf(cf(&db, CF_STATE), [staging], [staging + 1]).map_err(rocks_err)?;
        Ok(Self { db, origin, generation: Arc::new(AtomicU8::new(generation)), deleted: Arc::default() })
    }

    fn active(&self) -> u8 {
        self.generation.load(Ordering::Acquire)
    }

    /// Streams generation `generation` of the state from a database
    /// snapshot, on this thread, until the reader is gone.
    fn produce(db: &DB, generation: u8, tx: &ChunkSender, ready: std::sync::mpsc::SyncSender<()>) {
        let snapshot = db.snapshot();
        // The view is fixed: the caller may go on applying.
        let _ = ready.send(());
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(vec![generation]);
        opts.set_iterate_upper_bound(vec![generation + 1]);
        opts.fill_cache(false);
        let mut iter = snapshot.raw_iterator_cf_opt(cf(db, CF_STATE), opts);
        iter.seek_to_first();
        if !tx.blocking_send(Ok(Encoder::header())) {
            return;
        }
        let mut encoder = Encoder::new();
        while iter.valid() {
            let (Some(key), Some(value)) = (iter.key(), iter.value()) else { break };
            if let Some(chunk) = encoder.push(&key[1..], value)
                && !tx.blocking_send(Ok(chunk))
            {
                return;
            }
            iter.next();
        }
        if let Err(err) = iter.status() {
            tx.blocking_send(Err(rocks_io(err)));
            return;
        }
        for chunk in encoder.finish() {
            if !tx.blocking_send(Ok(chunk)) {
                return;
            }
        }
    }
}

impl KvRead for RocksState {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreFault> {
        let value = self.db.get_pinned_cf(cf(&self.db, CF_STATE), prefixed(self.active(), key)).map_err(fault)?;
        Ok(value.map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        direction: Direction,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreFault> {
        if start >= end {
            return Ok(());
        }
        let generation = self.active();
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(prefixed(generation, start));
        opts.set_iterate_upper_bound(prefixed(generation, end));
        let mut iter = self.db.raw_iterator_cf_opt(cf(&self.db, CF_STATE), opts);
        match direction {
            Direction::Forward => iter.seek_to_first(),
            Direction::Reverse => iter.seek_to_last(),
        }
        while iter.valid() {
            let (Some(key), Some(value)) = (iter.key(), iter.value()) else { break };
            if !visit(&key[1..], value) {
                return Ok(());
            }
            match direction {
                Direction::Forward => iter.next(),
                Direction::Reverse => iter.prev(),
            }
        }
        iter.status().map_err(fault)
    }
}

impl StateStore for RocksState {
    fn kv(&self) -> &dyn KvRead {
        self
    }

    fn write(&self, writes: WriteSet) -> io::Result<()> {
        let generation = self.active();
        let column = cf(&self.db, CF_STATE);
        let mut batch = WriteBatch::default();
        let mut deleted = 0;
        for (key, value) in writes {
            let key = prefixed(generation, &key);
            match value {
                Some(value) => batch.put_cf(column, key, value),
                None => {
                    batch.delete_cf(column, key);
                    deleted += 1;
                }
            }
        }
        self.db.write(batch).map_err(rocks_io)?;
        self.deleted.fetch_add(deleted, Ordering::Relaxed);
        Ok(())
    }

    async fn sync(&self) -> io::Result<()> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush_wal(true).map_err(rocks_io))
            .await
            .map_err(|e| io::Error::other(format!("WAL sync task failed: {e}")))?
    }

    fn stream(&self) -> io::Result<SnapshotData> {
        let (tx, data) = SnapshotData::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let (db, generation) = (self.db.clone(), self.active());
        std::thread::Builder::new()
            .name("raftq-snapshot-send".into())
            .spawn(move || Self::produce(&db, generation, &tx, ready_tx))?;
        // Wait until the thread holds its database snapshot: the stream is
        // the state as of this call, whatever is applied after it.
        ready_rx.recv().map_err(|_| io::Error::other("the snapshot thread ended before taking its view"))?;
        Ok(data)
    }

    async fn install(&self, mut data: SnapshotData) -> io::Result<()> {
        let column = cf(&self.db, CF_STATE);
        let live = self.active();
        let staging = 1 - live;
        self.db.delete_range_cf(column, [staging], [staging + 1]).map_err(rocks_io)?;
        let mut no_wal = WriteOptions::default();
        no_wal.disable_wal(true);
        let mut decoder = Decoder::new();
        while let Some(chunk) = data.next_chunk().await {
            let pairs = decoder.chunk(&chunk?)?;
            let mut batch = WriteBatch::default();
            for (key, value) in pairs {
                batch.put_cf(column, prefixed(staging, &key), value);
            }
            self.db.write_opt(batch, &no_wal).map_err(rocks_io)?;
        }
        if !decoder.is_complete() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "snapshot stream ended before its end frame"));
        }
        // Staging skipped the WAL: make it durable before it becomes live.
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush_cf(cf(&db, CF_STATE)).map_err(rocks_io))
            .await
            .map_err(|e| io::Error::other(format!("flush task failed: {e}")))??;
        let mut switch = WriteBatch::default();
        switch.put_cf(cf(&self.db, CF_META), META_GENERATION, [staging]);
        switch.delete_range_cf(column, [live], [live + 1]);
        let mut synced = WriteOptions::default();
        synced.set_sync(true);
        self.db.write_opt(switch, &synced).map_err(rocks_io)?;
        self.generation.store(staging, Ordering::Release);
        // Give the old generation's space back: drop the files wholly inside
        // it now (quick); its range tombstone lets compaction drop the rest.
        let db = self.db.clone();
        let freed =
            tokio::task::spawn_blocking(move || db.delete_file_in_range_cf(cf(&db, CF_STATE), [live], [live + 1]))
                .await
                .map_err(|e| io::Error::other(format!("file deletion task failed: {e}")))?;
        if let Err(err) = freed {
            tracing::warn!(origin = %self.origin, "could not drop the old state's files at once: {err}");
        }
        tracing::info!(origin = %self.origin, generation = staging, "installed a snapshot");
        Ok(())
    }

    fn origin(&self) -> String {
        self.origin.to_string()
    }

    fn compactor(&self) -> Option<crate::machine::Compactor> {
        let db = self.db.clone();
        Some(crate::machine::Compactor::new(Arc::new(move || compact_all(&db)), self.deleted.clone()))
    }
}

/// Compacts every column family down to its last level, dropping deleted
/// keys and the data they hid (acked messages, purged log entries): what a
/// drained, idle node needs, since without new writes no compaction would
/// come to reclaim the space.
pub(crate) fn compact_all(db: &DB) -> std::io::Result<()> {
    let mut opts = rocksdb::CompactOptions::default();
    opts.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
    for name in [CF_STATE, super::CF_LOG, CF_META] {
        db.compact_range_cf_opt(cf(db, name), None::<&[u8]>, None::<&[u8]>, &opts);
    }
    Ok(())
}
