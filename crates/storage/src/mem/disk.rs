//! `MemDisk`: the simulated disk behind the in-memory twin.
//!
//! ## Fault model
//!
//! The disk holds two images: `live` (what reads see) and `durable` (what
//! survives a crash). A write changes `live` at once and is *pending*:
//! - a log or meta write until a sync, which makes every pending log and
//!   meta write durable in order, like fsync on a write-ahead log;
//! - a state write until the state is *flushed*, as RocksDB's memtables of
//!   the state (written without the WAL) are: by an explicit flush
//!   ([`DiskState::flush_state`], what a snapshot build and an install
//!   do), or on its own once [`STATE_FLUSH_WRITES`] state writes are
//!   pending, like a memtable that fills. A flush makes every pending state
//!   write durable, in order: what survives is always a prefix of the
//!   state's writes. A log sync never makes a state write durable.
//!
//! The faults:
//! - [`MemDisk::crash`]: power loss. Pending writes vanish (log, meta and
//!   state alike), and every store opened before the crash fails from then
//!   on (its process is dead); reopening recovers exactly the synced log and
//!   meta writes and the flushed state.
//! - [`MemDisk::corrupt_log_entry`]: a flipped bit in a stored log record.
//!   The next read or open of that record fails its checksum.
//! - [`MemDisk::tear_last_write`]: power loss while the newest log record
//!   was being written (issued, not yet synced, so never acknowledged): it
//!   is left half-written. Open drops it under the torn-tail rule (see
//!   `recovery`). Appends have an in-flight window only with a sync delay
//!   ([`MemDisk::set_sync_delay`]), as on a real disk.
//! - [`MemDisk::set_ack_before_sync`]: a broken store that acknowledges an
//!   append before syncing it, so a crash loses acknowledged entries. Only
//!   for proving that the simulation's checker catches lost messages.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use raftq_core::kv::{MemKv, WriteSet};

/// State writes pending before the disk flushes them on its own (a full
/// memtable): small, so the simulation's crashes land both before and
/// after such flushes.
pub(crate) const STATE_FLUSH_WRITES: usize = 32;

/// One write, as the store issues it.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    PutLog(u64, Vec<u8>),
    /// Deletes log records in `[from, to)`.
    DeleteLog {
        from: u64,
        to: u64,
    },
    PutMeta(&'static str, Vec<u8>),
    /// One apply batch of the queue state.
    WriteState(WriteSet),
    /// A whole state, installed from a snapshot.
    ReplaceState(MemKv),
}

/// Everything stored: framed records, as the RocksDB store keeps them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Image {
    pub(crate) log: BTreeMap<u64, Vec<u8>>,
    pub(crate) meta: BTreeMap<&'static str, Vec<u8>>,
    pub(crate) state: MemKv,
}

impl Op {
    fn is_state(&self) -> bool {
        matches!(self, Op::WriteState(_) | Op::ReplaceState(_))
    }
}

impl Image {
    fn apply(&mut self, op: &Op) {
        match op {
            Op::PutLog(index, record) => {
                self.log.insert(*index, record.clone());
            }
            Op::DeleteLog { from, to } if from >= to => {}
            Op::DeleteLog { from, to } => {
                let doomed: Vec<u64> = self.log.range(*from..*to).map(|(index, _)| *index).collect();
                for index in doomed {
                    self.log.remove(&index);
                }
            }
            Op::PutMeta(key, record) => {
                self.meta.insert(key, record.clone());
            }
            Op::WriteState(writes) => self.state.write(writes.clone()),
            Op::ReplaceState(state) => self.state = state.clone(),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct DiskState {
    /// What reads see: durable plus pending writes.
    pub(crate) live: Image,
    /// What survives a crash.
    durable: Image,
    /// Log and meta writes applied to `live`, not yet to `durable`, in
    /// issue order.
    pending: Vec<Op>,
    /// State writes applied to `live`, not yet flushed to `durable`, in
    /// issue order.
    state_pending: Vec<Op>,
    /// State flushes done (explicit or on their own).
    state_flushes: u64,
    /// Bumped by every crash: stores opened in an older generation fail.
    generation: u64,
    /// Syncs done, for group-commit and fault tests.
    syncs: u64,
    /// The test-only broken mode: acknowledge appends before syncing them.
    ack_before_sync: bool,
    /// How long an append's fsync takes; zero syncs inside the append.
    sync_delay: Duration,
}

impl DiskState {
    /// Issues log and meta `ops`; with `sync`, then makes every pending log
    /// and meta write durable.
    pub(crate) fn write(&mut self, ops: Vec<Op>, sync: bool) {
        debug_assert!(!ops.iter().any(Op::is_state), "state writes go through write_state");
        for op in &ops {
            self.live.apply(op);
        }
        self.pending.extend(ops);
        if sync {
            self.sync();
        }
    }

    /// Issues one state write (not through the write-ahead log): durable
    /// only once the state is flushed, explicitly or on its own after
    /// [`STATE_FLUSH_WRITES`] pending writes.
    pub(crate) fn write_state(&mut self, op: Op) {
        debug_assert!(op.is_state(), "log and meta writes go through write");
        self.live.apply(&op);
        self.state_pending.push(op);
        if self.state_pending.len() >= STATE_FLUSH_WRITES {
            self.flush_state();
        }
    }

    /// Makes every pending state write durable, in order.
    pub(crate) fn flush_state(&mut self) {
        for op in self.state_pending.drain(..) {
            self.durable.apply(&op);
        }
        self.state_flushes += 1;
    }

    pub(crate) fn sync(&mut self) {
        for op in self.pending.drain(..) {
            self.durable.apply(&op);
        }
        self.syncs += 1;
    }

    pub(crate) fn ack_before_sync(&self) -> bool {
        self.ack_before_sync
    }

    pub(crate) fn sync_delay(&self) -> Duration {
        self.sync_delay
    }
}

/// The simulated disk. Clones share it; create it outside the simulated
/// host so it outlives the host's crash.
#[derive(Clone, Debug, Default)]
pub struct MemDisk {
    state: Arc<Mutex<DiskState>>,
}

impl MemDisk {
    pub fn new() -> Self {
        Self::default()
    }

    /// Power loss: pending writes are lost and stores opened before now
    /// fail every call. Reopen with `MemStore::open`.
    pub fn crash(&self) {
        let mut state = self.lock();
        state.live = state.durable.clone();
        state.pending.clear();
        state.state_pending.clear();
        state.generation += 1;
    }

    /// Flips a bit in log record `index`, wherever it is stored. Returns
    /// whether there was such a record.
    pub fn corrupt_log_entry(&self, index: u64) -> bool {
        let mut state = self.lock();
        let state = &mut *state;
        let mut found = false;
        for image in [&mut state.live, &mut state.durable] {
            if let Some(byte) = image.log.get_mut(&index).and_then(|record| record.last_mut()) {
                *byte ^= 0x01;
                found = true;
            }
        }
        found
    }

    /// Power loss while the newest log record was being written: the
    /// newest *pending* (issued, unsynced, so never acknowledged) log
    /// record is left half-written on disk; everything else pending is
    /// lost, as in [`MemDisk::crash`]. Returns the torn record's index, or
    /// `None` (a plain crash) if no log write was in flight past the end of
    /// the durable log.
    pub fn tear_last_write(&self) -> Option<u64> {
        let mut state = self.lock();
        let durable_end = state.durable.log.last_key_value().map(|(index, _)| *index);
        let in_flight = state.pending.iter().rev().find_map(|op| match op {
            Op::PutLog(index, record) => Some((*index, record.clone())),
            _ => None,
        });
        state.live = state.durable.clone();
        state.pending.clear();
        state.state_pending.clear();
        state.generation += 1;
        let (index, record) = in_flight.filter(|(index, _)| durable_end.is_none_or(|end| *index > end))?;
        let half = record[..record.len() / 2].to_vec();
        state.durable.log.insert(index, half.clone());
        state.live.log.insert(index, half);
        Some(index)
    }

    /// Makes every append wait `delay` (simulated time, under turmoil) for
    /// its fsync, group-committed like the RocksDB store: appends issued
    /// meanwhile share one sync. Zero (the default) syncs inside the append.
    pub fn set_sync_delay(&self, delay: Duration) {
        self.lock().sync_delay = delay;
    }

    /// Test-only broken mode: append acknowledges before it syncs, so a
    /// crash loses acknowledged entries.
    pub fn set_ack_before_sync(&self, enabled: bool) {
        self.lock().ack_before_sync = enabled;
    }

    /// Syncs done since the disk was created.
    pub fn sync_count(&self) -> u64 {
        self.lock().syncs
    }

    /// Whether a log record is written but not yet synced (an append in
    /// flight): the moment at which a tear damages something.
    pub fn log_write_in_flight(&self) -> bool {
        self.lock().pending.iter().any(|op| matches!(op, Op::PutLog(..)))
    }

    /// Log and meta writes issued but not yet synced.
    pub fn pending_writes(&self) -> usize {
        self.lock().pending.len()
    }

    /// State writes issued but not yet flushed.
    pub fn pending_state_writes(&self) -> usize {
        self.lock().state_pending.len()
    }

    /// State flushes done since the disk was created.
    pub fn state_flush_count(&self) -> u64 {
        self.lock().state_flushes
    }

    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// The disk state, for a store opened in `generation`; fails once the
    /// disk has crashed since.
    pub(crate) fn access(&self, generation: u64) -> io::Result<MutexGuard<'_, DiskState>> {
        let state = self.lock();
        if state.generation != generation {
            return Err(io::Error::other("the simulated disk crashed under this store: reopen it"));
        }
        Ok(state)
    }

    fn lock(&self) -> MutexGuard<'_, DiskState> {
        // A panic while holding the lock leaves consistent images (each
        // method finishes its change before it can panic).
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
