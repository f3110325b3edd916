//! openraft's log store on a [`MemDisk`]: the same records and rules as the
//! RocksDB store, with no threads and no real I/O.

use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;

use openraft::storage::{RaftLogReader, RaftLogStorage};
use openraft::{OptionalSend, RaftTypeConfig};
use serde::de::DeserializeOwned;

use super::disk::{MemDisk, Op};
use crate::codec::{self, META_COMMITTED, META_LAST_PURGED, META_VOTE, index_range};
use crate::error::{OpenError, corrupt};
use crate::recovery;
use crate::types::{Entry, IOFlushed, LogId, LogState, TypeConfig, Vote};

/// Names the simulated disk in error messages.
pub(crate) const ORIGIN: &str = "the simulated disk";

/// The in-memory twin's log store. An append is synced before its callback
/// fires (unless the disk is in its broken `ack_before_sync` mode).
#[derive(Debug)]
pub struct MemLogStore {
    disk: MemDisk,
    /// The disk generation this store was opened in; a crash ends it.
    generation: u64,
    /// Cached: only this store writes it, and openraft serializes writes.
    last_purged: Option<LogId>,
    /// With a sync delay: the group-commit task's queue of callbacks.
    syncer: Option<tokio::sync::mpsc::UnboundedSender<IOFlushed>>,
}

impl MemLogStore {
    pub(crate) fn open(disk: MemDisk) -> Result<Self, OpenError> {
        let generation = disk.generation();
        let mut state = disk.access(generation)?;
        let meta = recovery::check_meta(ORIGIN, |key| Ok(state.live.meta.get(key).cloned()))?;
        let newest_first = state.live.log.iter().rev().map(|(index, record)| Ok((codec::index_key(*index), record)));
        if let Some(torn) = recovery::check_log(ORIGIN, &meta, newest_first)? {
            state.write(vec![Op::DeleteLog { from: torn, to: torn.saturating_add(1) }], true);
        }
        drop(state);
        Ok(Self { disk, generation, last_purged: meta.last_purged, syncer: None })
    }

    fn reader(&self) -> MemLogReader {
        MemLogReader { disk: self.disk.clone(), generation: self.generation }
    }

    fn write(&self, ops: Vec<Op>, sync: bool) -> io::Result<()> {
        self.disk.access(self.generation)?.write(ops, sync);
        Ok(())
    }
}

/// The twin's group commit: waits `delay` after the first queued append,
/// syncs everything written so far in one step, then acknowledges every
/// append queued before the sync, in order.
async fn sync_in_groups(
    disk: MemDisk,
    generation: u64,
    delay: std::time::Duration,
    mut queued: tokio::sync::mpsc::UnboundedReceiver<IOFlushed>,
) {
    while let Some(first) = queued.recv().await {
        tokio::time::sleep(delay).await;
        let mut group = vec![first];
        while let Ok(next) = queued.try_recv() {
            group.push(next);
        }
        let synced = disk.access(generation).map(|mut state| state.sync());
        for callback in group {
            let result = match &synced {
                Ok(()) => Ok(()),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            };
            callback.io_completed(result);
        }
    }
}

/// Reads log entries from the disk's live image.
#[derive(Clone, Debug)]
pub struct MemLogReader {
    disk: MemDisk,
    generation: u64,
}

impl MemLogReader {
    fn read_meta<T: DeserializeOwned>(&self, key: &'static str) -> io::Result<Option<T>> {
        let state = self.disk.access(self.generation)?;
        let value = state.live.meta.get(key).map(|record| codec::decode(record)).transpose();
        value.map_err(|e| corrupt(format_args!("stored {key}"), ORIGIN, e))
    }

    fn last_log_id(&self) -> io::Result<Option<LogId>> {
        let state = self.disk.access(self.generation)?;
        let Some((index, record)) = state.live.log.last_key_value() else { return Ok(None) };
        Ok(Some(codec::decode_entry(*index, record, ORIGIN)?.log_id))
    }
}

impl RaftLogReader<TypeConfig> for MemLogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> io::Result<Vec<Entry>> {
        let (start, end) = index_range(&range);
        let state = self.disk.access(self.generation)?;
        let records = match end {
            Some(end) if end <= start => return Ok(Vec::new()),
            Some(end) => state.live.log.range(start..end),
            None => state.live.log.range(start..),
        };
        records.map(|(index, record)| codec::decode_entry(*index, record, ORIGIN)).collect()
    }

    async fn read_vote(&mut self) -> io::Result<Option<Vote>> {
        self.read_meta(META_VOTE)
    }
}

impl RaftLogStorage<TypeConfig> for MemLogStore {
    type LogReader = MemLogReader;

    async fn get_log_state(&mut self) -> io::Result<LogState> {
        let last = self.reader().last_log_id()?;
        Ok(LogState { last_purged_log_id: self.last_purged, last_log_id: last.or(self.last_purged) })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.reader()
    }

    async fn save_vote(&mut self, vote: &Vote) -> io::Result<()> {
        self.write(vec![Op::PutMeta(META_VOTE, codec::encode(vote))], true)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> io::Result<()> {
        // Like RocksDB: not synced on its own; the next sync carries it.
        self.write(vec![Op::PutMeta(META_COMMITTED, codec::encode(&committed))], false)
    }

    async fn read_committed(&mut self) -> io::Result<Option<LogId>> {
        Ok(self.reader().read_meta::<Option<LogId>>(META_COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed) -> io::Result<()>
    where
        I: IntoIterator<Item = <TypeConfig as RaftTypeConfig>::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let ops = entries.into_iter().map(|entry| Op::PutLog(entry.log_id.index, codec::encode(&entry))).collect();
        let mut state = self.disk.access(self.generation)?;
        let delay = state.sync_delay();
        // Acknowledged at once: synced inside the append when there is no
        // sync delay; still pending in the broken mode.
        if state.ack_before_sync() || delay.is_zero() {
            let sync = !state.ack_before_sync();
            state.write(ops, sync);
            drop(state);
            callback.io_completed(Ok(()));
            return Ok(());
        }
        state.write(ops, false);
        drop(state);
        let (disk, generation) = (self.disk.clone(), self.generation);
        let syncer = self.syncer.get_or_insert_with(|| {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(sync_in_groups(disk, generation, delay, rx));
            tx
        });
        if let Err(unsent) = syncer.send(callback) {
            unsent.0.io_completed(Err(io::Error::other("the simulated disk's sync task stopped")));
        }
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> io::Result<()> {
        let from = last_log_id.map_or(0, |id| id.index.saturating_add(1));
        self.write(vec![Op::DeleteLog { from, to: u64::MAX }], true)
    }

    async fn purge(&mut self, log_id: LogId) -> io::Result<()> {
        let ops = vec![
            Op::PutMeta(META_LAST_PURGED, codec::encode(&log_id)),
            Op::DeleteLog { from: 0, to: log_id.index.saturating_add(1) },
        ];
        self.write(ops, true)?;
        self.last_purged = Some(log_id);
        Ok(())
    }
}
