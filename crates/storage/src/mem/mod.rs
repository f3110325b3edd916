//! The in-memory twin of the RocksDB store, for deterministic simulation:
//! the same traits, records, checksums and recovery rule, on a [`MemDisk`]
//! that the simulation keeps across crashes and can damage on purpose. No
//! threads, no real I/O, no clock: every call completes before it returns.

mod disk;
mod log_store;
#[cfg(test)]
mod tests;

use std::io;

pub use self::disk::MemDisk;
use self::disk::Op;
pub use self::log_store::{MemLogReader, MemLogStore};
use crate::codec;
use crate::error::{OpenError, corrupt};
use crate::machine::{SnapshotVault, StateMachine, StoredSnapshot};

/// The state machine persisting its snapshots on a [`MemDisk`].
pub type MemStateMachine = StateMachine<MemSnapshots>;

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
        let machine = StateMachine::open(MemSnapshots { disk, generation }).await?;
        Ok((log_store, machine))
    }
}

/// [`SnapshotVault`] on a [`MemDisk`]: a save is one synced write.
#[derive(Clone, Debug)]
pub struct MemSnapshots {
    disk: MemDisk,
    /// The disk generation the store was opened in.
    generation: u64,
}

impl MemSnapshots {
    fn load_now(&self) -> io::Result<Option<StoredSnapshot>> {
        let state = self.disk.access(self.generation)?;
        let decoded = state.live.snapshot.as_ref().map(|record| codec::decode::<StoredSnapshot>(record)).transpose();
        decoded.map_err(|e| corrupt("stored snapshot", log_store::ORIGIN, e))
    }
}

impl SnapshotVault for MemSnapshots {
    async fn load(&self) -> io::Result<Option<StoredSnapshot>> {
        self.load_now()
    }

    async fn save(&self, snapshot: StoredSnapshot) -> io::Result<()> {
        let newest = self.load_now()?.and_then(|stored| stored.meta.last_log_id);
        if newest > snapshot.meta.last_log_id {
            return Ok(());
        }
        // The check above and this write are not one step, but nothing runs
        // between them: this future does not yield.
        self.disk.access(self.generation)?.write(vec![Op::PutSnapshot(codec::encode(&snapshot))], true);
        Ok(())
    }

    fn origin(&self) -> String {
        log_store::ORIGIN.to_string()
    }
}
