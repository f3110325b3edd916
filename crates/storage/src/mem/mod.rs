//! The in-memory twin of the RocksDB store, for deterministic simulation:
//! the same traits, records, checksums and recovery rule, on a [`MemDisk`]
//! that the simulation keeps across crashes and can damage on purpose. No
//! threads, no real I/O, no clock: every call completes before it returns.

mod disk;
mod log_store;
#[cfg(test)]
mod tests;

use std::io;

use raftq_core::kv::{Direction, KvRead, MemKv, StoreFault, WriteSet};

pub use self::disk::MemDisk;
use self::disk::Op;
pub use self::log_store::{MemLogReader, MemLogStore};
use crate::error::OpenError;
use crate::machine::{StateMachine, StateStore};
use crate::snapshot_stream::{Decoder, Encoder, SnapshotData};

/// The state machine on a [`MemDisk`].
pub type MemStateMachine = StateMachine<MemState>;

/// Opens the in-memory store on a disk.
#[derive(Debug)]
pub struct MemStore;

impl MemStore {
    /// Opens the store on `disk`, applying the same checks as
    /// [`RocksStore::open`](crate::RocksStore::open). Completes without
    /// waiting on anything (it is `async` only to match the RocksDB store).
    pub async fn open(disk: MemDisk) -> Result<(MemLogStore, MemStateMachine), OpenError> {
        let log_store = MemLogStore::open(disk.clone())?;
        let generation = disk.generation();
        let machine = StateMachine::open(MemState { disk, generation })?;
        Ok((log_store, machine))
    }
}

/// [`StateStore`] on a [`MemDisk`]: state writes skip the write-ahead log,
/// as in the RocksDB store, and are pending until the disk flushes the
/// state (a snapshot build, or on its own as a full memtable would), so a
/// simulated power loss drops unflushed state writes and their applied id,
/// and the node re-applies them from its log.
#[derive(Clone, Debug)]
pub struct MemState {
    disk: MemDisk,
    /// The disk generation the store was opened in.
    generation: u64,
}

impl MemState {
    fn fault(err: io::Error) -> StoreFault {
        StoreFault(err.to_string())
    }
}

impl KvRead for MemState {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreFault> {
        let state = self.disk.access(self.generation).map_err(Self::fault)?;
        state.live.state.get(key)
    }

    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        direction: Direction,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreFault> {
        // `visit` never calls back into the store (the core's scans only
        // collect), so holding the disk's lock across it is safe.
        let state = self.disk.access(self.generation).map_err(Self::fault)?;
        state.live.state.scan(start, end, direction, visit)
    }
}

impl StateStore for MemState {
    fn kv(&self) -> &dyn KvRead {
        self
    }

    fn write(&self, writes: WriteSet) -> io::Result<()> {
        self.disk.access(self.generation)?.write_state(Op::WriteState(writes));
        Ok(())
    }

    async fn sync(&self) -> io::Result<()> {
        self.disk.access(self.generation)?.flush_state();
        Ok(())
    }

    fn stream(&self) -> io::Result<SnapshotData> {
        let state = self.disk.access(self.generation)?;
        let mut chunks = vec![Encoder::header()];
        let mut encoder = Encoder::new();
        for (key, value) in state.live.state.iter() {
            chunks.extend(encoder.push(key, value));
        }
        chunks.extend(encoder.finish());
        Ok(SnapshotData::from_chunks(chunks))
    }

    async fn install(&self, mut data: SnapshotData) -> io::Result<()> {
        let mut decoder = Decoder::new();
        let mut staged = MemKv::new();
        while let Some(chunk) = data.next_chunk().await {
            for (key, value) in decoder.chunk(&chunk?)? {
                staged.insert(key, value);
            }
        }
        if !decoder.is_complete() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "snapshot stream ended before its end frame"));
        }
        let mut disk = self.disk.access(self.generation)?;
        disk.write_state(Op::ReplaceState(staged));
        disk.flush_state();
        Ok(())
    }

    fn origin(&self) -> String {
        log_store::ORIGIN.to_string()
    }
}
