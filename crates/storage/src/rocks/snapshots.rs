//! The state machine's snapshot in RocksDB's `sm` column family: one key,
//! one framed record holding metadata and data, so the applied log id can
//! never be stored apart from the state it produced.

use std::io;
use std::sync::{Arc, Mutex};

use rocksdb::{DB, WriteBatch, WriteOptions};

use super::{CF_SM, cf};
use crate::codec;
use crate::error::{corrupt, rocks_io};
use crate::machine::{SnapshotVault, StoredSnapshot};
use crate::types::LogId;

const KEY_SNAPSHOT: &str = "snapshot";

/// [`SnapshotVault`] on RocksDB. Reads and the synced write run on the
/// blocking pool.
#[derive(Clone, Debug)]
pub struct RocksSnapshots {
    db: Arc<DB>,
    origin: Arc<str>,
    /// Last log id of the stored snapshot, once known (`None` = not read
    /// yet). The lock also serializes saves, so the check against it and
    /// the write are one step.
    stored: Arc<Mutex<Option<Option<LogId>>>>,
}

impl RocksSnapshots {
    pub(crate) fn new(db: Arc<DB>, origin: Arc<str>) -> Self {
        Self { db, origin, stored: Arc::new(Mutex::new(None)) }
    }

    fn load_blocking(&self) -> io::Result<Option<StoredSnapshot>> {
        let Some(bytes) = self.db.get_pinned_cf(cf(&self.db, CF_SM), KEY_SNAPSHOT).map_err(rocks_io)? else {
            return Ok(None);
        };
        let snapshot: StoredSnapshot =
            codec::decode(&bytes).map_err(|e| corrupt("stored snapshot", &self.origin, e))?;
        Ok(Some(snapshot))
    }

    fn save_blocking(&self, snapshot: StoredSnapshot) -> io::Result<()> {
        let mut stored = self.stored.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let newest = match *stored {
            Some(newest) => newest,
            None => self.load_blocking()?.and_then(|s| s.meta.last_log_id),
        };
        if newest > snapshot.meta.last_log_id {
            tracing::info!(
                "not storing snapshot at {:?}: a newer one at {newest:?} is stored",
                snapshot.meta.last_log_id
            );
            *stored = Some(newest);
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        batch.put_cf(cf(&self.db, CF_SM), KEY_SNAPSHOT, codec::encode(&snapshot));
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db.write_opt(batch, &opts).map_err(rocks_io)?;
        *stored = Some(snapshot.meta.last_log_id);
        Ok(())
    }
}

impl SnapshotVault for RocksSnapshots {
    async fn load(&self) -> io::Result<Option<StoredSnapshot>> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.load_blocking()).await.map_err(join_err)?
    }

    async fn save(&self, snapshot: StoredSnapshot) -> io::Result<()> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.save_blocking(snapshot)).await.map_err(join_err)?
    }

    fn origin(&self) -> String {
        self.origin.to_string()
    }
}

fn join_err(err: tokio::task::JoinError) -> io::Error {
    io::Error::other(format!("snapshot I/O task failed: {err}"))
}
