//! The queue state in RocksDB: the `state` column family for the small
//! tables and the host's pairs, and one column family for each table that
//! grows with the backlog ([`raftq_core::GROWING_TABLES`]: messages,
//! contents, the ready, timer and dedup indexes).
//!
//! Why apart: each of those tables is appended at one end of its key range
//! and consumed at the other. Kept in one column family, every flushed
//! file held the new end of several tables at once, so its key range
//! spanned all their backlogs and every compaction rewrote every file
//! below it (a 1,000,000-message backlog: 9–11 GB compacted for 1.2 GB
//! flushed). Apart, a table filled in key order flushes files that overlap
//! nothing below them, which RocksDB moves down without rewriting.
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

use raftq_core::kv::{Direction, KvRead, StoreFault, WriteSet, in_ranges, merged_ranges};
use rocksdb::{DB, ReadOptions, WriteBatch, WriteOptions};

use super::{CF_META, CF_STATE, cf};
use crate::error::{OpenError, rocks_io};
use crate::machine::StateStore;
use crate::snapshot_stream::{ChunkSender, Decoder, Encoder, SnapshotData};

/// The state's column families: `state` (index 0) holds every table not
/// named here and the host's pairs; the others hold one growing table
/// each, named by its table byte.
pub(crate) const STATE_FAMILIES: [&str; 8] = [
    CF_STATE,
    "state_messages",
    "state_contents",
    "state_ready",
    "state_timers",
    "state_dedup",
    "state_dedup_by_queue",
    "state_dedup_by_expiry",
];
/// The family of message contents (table `b`).
pub(crate) const CONTENTS_FAMILY: &str = STATE_FAMILIES[2];
/// The families of message heads (`m`) and the ready index (`r`): written
/// at both ends of a queue's backlog at once.
pub(crate) const BACKLOG_INDEX_FAMILIES: [&str; 2] = [STATE_FAMILIES[1], STATE_FAMILIES[3]];
/// The families of the three idempotency-key tables (`k`, `x`, `X`): the
/// last three of `STATE_FAMILIES`.
pub(crate) const DEDUP_FAMILIES: &[&str] = STATE_FAMILIES.split_at(5).1;
/// The table byte of `STATE_FAMILIES[1..]`, in that order.
const GROWING_FAMILY_TABLES: [u8; 7] = [b'm', b'b', b'r', b't', b'k', b'x', b'X'];

/// Where each state key lives, by its first byte.
struct Layout {
    /// Index into [`STATE_FAMILIES`] of each first byte.
    family_of: [usize; 256],
    /// The key space cut where the family changes, in key order: segment
    /// `i` holds the keys from `segments[i].0` up to `segments[i + 1].0`
    /// (the last one: every key after it) and lives in family
    /// `segments[i].1`.
    segments: Vec<(Vec<u8>, usize)>,
}

static LAYOUT: std::sync::LazyLock<Layout> = std::sync::LazyLock::new(|| {
    let mut family_of = [0; 256];
    for (index, table) in GROWING_FAMILY_TABLES.iter().enumerate() {
        family_of[usize::from(*table)] = index + 1;
    }
    let mut segments = vec![(Vec::new(), family_of[0])];
    for byte in 1..=255u8 {
        if family_of[usize::from(byte)] != family_of[usize::from(byte - 1)] {
            segments.push((vec![byte], family_of[usize::from(byte)]));
        }
    }
    Layout { family_of, segments }
});

impl Layout {
    fn family(&self, key: &[u8]) -> usize {
        key.first().map_or(0, |byte| self.family_of[usize::from(*byte)])
    }

    /// The parts of `[start, end)` in each segment, in key order: (family,
    /// from, to).
    fn split<'a>(&'a self, start: &'a [u8], end: &'a [u8]) -> impl Iterator<Item = (usize, &'a [u8], &'a [u8])> {
        self.segments.iter().enumerate().filter_map(move |(i, (from, family))| {
            let lo = std::cmp::max(start, from.as_slice());
            let hi = match self.segments.get(i + 1) {
                Some((next, _)) => std::cmp::min(end, next.as_slice()),
                None => end,
            };
            (lo < hi).then_some((*family, lo, hi))
        })
    }
}

fn family(db: &DB, index: usize) -> &rocksdb::ColumnFamily {
    cf(db, STATE_FAMILIES[index])
}

/// Every state family's handle, by index: looked up once per batch rather
/// than by name for every key.
fn families(db: &DB) -> [&rocksdb::ColumnFamily; STATE_FAMILIES.len()] {
    STATE_FAMILIES.map(|name| cf(db, name))
}

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
        // Only where there are some: a range tombstone would make the
        // family's next flushed file span from the live generation's keys
        // to the staging one's, overlapping every file below it.
        let staging = 1 - generation;
        for name in STATE_FAMILIES {
            let mut opts = ReadOptions::default();
            opts.set_iterate_lower_bound(vec![staging]);
            opts.set_iterate_upper_bound(vec![staging + 1]);
            let mut iter = db.raw_iterator_cf_opt(cf(&db, name), opts);
            iter.seek_to_first();
            iter.status().map_err(rocks_err)?;
            if iter.valid() {
                drop(iter);
                db.delete_range_cf(cf(&db, name), [staging], [staging + 1]).map_err(rocks_err)?;
            }
        }
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
        if !tx.blocking_send(Ok(Encoder::header())) {
            return;
        }
        let mut encoder = Encoder::new();
        // Segment by segment, in key order: the stream is key-ordered.
        for (index, (from, fam)) in LAYOUT.segments.iter().enumerate() {
            let mut opts = ReadOptions::default();
            opts.set_iterate_lower_bound(prefixed(generation, from));
            opts.set_iterate_upper_bound(match LAYOUT.segments.get(index + 1) {
                Some((next, _)) => prefixed(generation, next),
                None => vec![generation + 1],
            });
            opts.fill_cache(false);
            let mut iter = snapshot.raw_iterator_cf_opt(family(db, *fam), opts);
            iter.seek_to_first();
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
        }
        for chunk in encoder.finish() {
            if !tx.blocking_send(Ok(chunk)) {
                return;
            }
        }
    }

    /// Scans `[start, end)` of one family in the active generation; false
    /// when `visit` asked to stop.
    fn scan_family(
        &self,
        generation: u8,
        fam: usize,
        (start, end): (&[u8], &[u8]),
        direction: Direction,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<bool, StoreFault> {
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(prefixed(generation, start));
        opts.set_iterate_upper_bound(prefixed(generation, end));
        let mut iter = self.db.raw_iterator_cf_opt(family(&self.db, fam), opts);
        match direction {
            Direction::Forward => iter.seek_to_first(),
            Direction::Reverse => iter.seek_to_last(),
        }
        while iter.valid() {
            let (Some(key), Some(value)) = (iter.key(), iter.value()) else { break };
            if !visit(&key[1..], value) {
                return Ok(false);
            }
            match direction {
                Direction::Forward => iter.next(),
                Direction::Reverse => iter.prev(),
            }
        }
        iter.status().map_err(fault)?;
        Ok(true)
    }
}

impl KvRead for RocksState {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreFault> {
        let column = family(&self.db, LAYOUT.family(key));
        let value = self.db.get_pinned_cf(column, prefixed(self.active(), key)).map_err(fault)?;
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
        let mut parts: Vec<_> = LAYOUT.split(start, end).collect();
        if direction == Direction::Reverse {
            parts.reverse();
        }
        for (fam, from, to) in parts {
            if !self.scan_family(generation, fam, (from, to), direction, visit)? {
                break;
            }
        }
        Ok(())
    }
}

impl StateStore for RocksState {
    fn kv(&self) -> &dyn KvRead {
        self
    }

    fn write(&self, writes: WriteSet) -> io::Result<()> {
        let generation = self.active();
        let columns = families(&self.db);
        let mut batch = WriteBatch::default();
        let mut deleted = 0;
        let (pairs, cleared) = writes.into_parts();
        // The cleared ranges first, each deleted whole (one range tombstone
        // per family it spans), then the pairs: the deletes inside a range
        // are skipped, the puts come after it and survive.
        let cleared = merged_ranges(cleared);
        for (start, end) in &cleared {
            for (fam, from, to) in LAYOUT.split(start, end) {
                batch.delete_range_cf(columns[fam], prefixed(generation, from), prefixed(generation, to));
            }
        }
        let mut next_range = 0;
        for (key, value) in pairs {
            let column = columns[LAYOUT.family(&key)];
            match value {
                Some(value) => batch.put_cf(column, prefixed(generation, &key), value),
                None => {
                    if !in_ranges(&cleared, &mut next_range, &key) {
                        batch.delete_cf(column, prefixed(generation, &key));
                    }
                    deleted += 1;
                }
            }
        }
        // Not through the WAL: the entries this batch applies are in the
        // Raft log, synced, and the log is never purged past the applied id
        // flushed with the state (`sync`, at every snapshot build). A crash
        // before RocksDB flushes this batch loses it together with its
        // applied id, and openraft re-applies the entries. Each body was
        // written to the WAL twice before (log entry and state).
        let mut no_wal = WriteOptions::default();
        no_wal.disable_wal(true);
        self.db.write_opt(batch, &no_wal).map_err(rocks_io)?;
        self.deleted.fetch_add(deleted, Ordering::Relaxed);
        Ok(())
    }

    /// Flushes the state's memtables to files (every family at one point:
    /// the database flushes atomically), and waits for it.
    async fn sync(&self) -> io::Result<()> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            db.flush_cfs_opt(&families(&db), &rocksdb::FlushOptions::default()).map_err(rocks_io)
        })
        .await
        .map_err(|e| io::Error::other(format!("state flush task failed: {e}")))?
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
        let live = self.active();
        let staging = 1 - live;
        for name in STATE_FAMILIES {
            self.db.delete_range_cf(cf(&self.db, name), [staging], [staging + 1]).map_err(rocks_io)?;
        }
        let mut no_wal = WriteOptions::default();
        no_wal.disable_wal(true);
        let columns = families(&self.db);
        let mut decoder = Decoder::new();
        let (started, mut received, mut pair_count) = (std::time::Instant::now(), 0u64, 0u64);
        while let Some(chunk) = data.next_chunk().await {
            let chunk = chunk?;
            received += chunk.len() as u64;
            let pairs = decoder.chunk(&chunk)?;
            pair_count += pairs.len() as u64;
            let mut batch = WriteBatch::default();
            for (key, value) in pairs {
                batch.put_cf(columns[LAYOUT.family(&key)], prefixed(staging, &key), value);
            }
            self.db.write_opt(batch, &no_wal).map_err(rocks_io)?;
        }
        if !decoder.is_complete() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "snapshot stream ended before its end frame"));
        }
        // Staging skipped the WAL: make it durable before it becomes live.
        self.sync().await?;
        let mut switch = WriteBatch::default();
        switch.put_cf(cf(&self.db, CF_META), META_GENERATION, [staging]);
        for name in STATE_FAMILIES {
            switch.delete_range_cf(cf(&self.db, name), [live], [live + 1]);
        }
        let mut synced = WriteOptions::default();
        synced.set_sync(true);
        self.db.write_opt(switch, &synced).map_err(rocks_io)?;
        self.generation.store(staging, Ordering::Release);
        // Give the old generation's space back: drop the files wholly inside
        // it now (quick); its range tombstone lets compaction drop the rest.
        let db = self.db.clone();
        let freed = tokio::task::spawn_blocking(move || {
            STATE_FAMILIES.iter().try_for_each(|name| db.delete_file_in_range_cf(cf(&db, name), [live], [live + 1]))
        })
        .await
        .map_err(|e| io::Error::other(format!("file deletion task failed: {e}")))?;
        if let Err(err) = freed {
            tracing::warn!(origin = %self.origin, "could not drop the old state's files at once: {err}");
        }
        let secs = started.elapsed().as_secs_f64();
        tracing::info!(
            origin = %self.origin,
            generation = staging,
            pairs = pair_count,
            bytes = received,
            secs,
            mb_per_s = received as f64 / 1e6 / secs.max(1e-9),
            "installed a snapshot"
        );
        Ok(())
    }

    fn origin(&self) -> String {
        self.origin.to_string()
    }

    fn compactor(&self) -> Option<crate::machine::Compactor> {
        let db = self.db.clone();
        Some(crate::machine::Compactor::new(Arc::new(move || compact_all(&db)), self.deleted.clone()))
    }

    fn memory(&self) -> Option<crate::machine::StoreMemory> {
        // Every family shares the one cache (asked through `log`: the
        // default family, which asked alone, has a cache of its own);
        // memtables and readers are per family. A property RocksDB cannot
        // give counts as 0.
        let db = &*self.db;
        let whole = |name: &str| db.property_int_value_cf(cf(db, super::CF_LOG), name).ok().flatten().unwrap_or(0);
        let families = [super::CF_LOG, super::CF_META].into_iter().chain(STATE_FAMILIES);
        let (mut memtables, mut table_readers) = (0, 0);
        for name in families {
            let of = |property: &str| db.property_int_value_cf(cf(db, name), property).ok().flatten().unwrap_or(0);
            memtables += of("rocksdb.size-all-mem-tables");
            table_readers += of("rocksdb.estimate-table-readers-mem");
        }
        Some(crate::machine::StoreMemory {
            block_cache: whole("rocksdb.block-cache-usage"),
            block_cache_pinned: whole("rocksdb.block-cache-pinned-usage"),
            memtables,
            table_readers,
        })
    }
}

/// Compacts every column family down to its last level, dropping deleted
/// keys and the data they hid (acked messages, purged log entries): what a
/// drained, idle node needs, since without new writes no compaction would
/// come to reclaim the space.
pub(crate) fn compact_all(db: &DB) -> std::io::Result<()> {
    let mut opts = rocksdb::CompactOptions::default();
    opts.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
    for name in STATE_FAMILIES.iter().chain(&[super::CF_LOG, CF_META]) {
        db.compact_range_cf_opt(cf(db, name), None::<&[u8]>, None::<&[u8]>, &opts);
    }
    Ok(())
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    #[test]
    fn every_growing_table_has_its_own_family() {
        let mut ours = GROWING_FAMILY_TABLES;
        let mut core = raftq_core::GROWING_TABLES;
        ours.sort_unstable();
        core.sort_unstable();
        assert_eq!(ours, core);
    }

    #[test]
    fn a_range_splits_into_its_families_in_key_order() {
        let parts: Vec<_> =
            LAYOUT.split(b"", &[0xff, 0xff]).map(|(fam, from, to)| (fam, from.to_vec(), to.to_vec())).collect();
        // Contiguous, in order, covering the whole range.
        assert_eq!(parts.first().unwrap().1, b"".to_vec());
        assert_eq!(parts.last().unwrap().2, vec![0xff, 0xff]);
        for pair in parts.windows(2) {
            assert_eq!(pair[0].2, pair[1].1);
            assert_ne!(pair[0].0, pair[1].0, "neighbouring parts in one family would have been one segment");
        }
        assert_eq!(LAYOUT.family(b"m\x00"), 1);
        assert_eq!(LAYOUT.family(b"Q"), 0);
        assert_eq!(LAYOUT.family(&[0xff, b'a']), 0);
        // A range inside one table stays in its family.
        let inside: Vec<_> = LAYOUT.split(b"r\x01", b"r\x09").collect();
        assert_eq!(inside, vec![(3, &b"r\x01"[..], &b"r\x09"[..])]);
    }
}
