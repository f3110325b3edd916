//! The state machine both stores share: `QueueState` in memory, one
//! persisted snapshot, and openraft's re-apply on restart.
//!
//! `apply` changes only memory. What makes that durable is the log: every
//! applied entry is a committed, fsynced log entry, and the committed log id
//! is saved by the log store. On open the machine restores the persisted
//! snapshot (so `applied_state()` is the snapshot's last log id) and openraft
//! re-applies the committed entries after it (`StorageHelper::
//! get_initial_state`). A snapshot is persisted — data and metadata in one
//! synced record — before openraft is told it exists, and openraft purges
//! the log only up to a snapshot, so the entries a restart must re-apply are
//! always still in the log.
//!
//! Where the snapshot lives is the [`SnapshotVault`]: RocksDB's `sm` column
//! family, or the in-memory twin's disk.

use std::fmt;
use std::future::Future;
use std::io::{self, Cursor};

use futures_util::{Stream, StreamExt};
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use raftq_core::{QueueError, QueueState};
use serde::{Deserialize, Serialize};

use crate::error::OpenError;
use crate::types::{
    ApplyResult, Entry, LOG_PAYLOAD_FORMAT_VERSION, LogId, LogPayload, Snapshot, SnapshotData, SnapshotMeta,
    StoredMembership, TypeConfig,
};

/// A snapshot as persisted: openraft's metadata and the core's snapshot
/// bytes (which carry their own SHA-256), written as one record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSnapshot {
    pub meta: SnapshotMeta,
    pub data: Vec<u8>,
}

/// Durable home of a state machine's one snapshot.
pub trait SnapshotVault: Clone + fmt::Debug + Send + Sync + 'static {
    /// The persisted snapshot, its record checked; `None` if there is none.
    fn load(&self) -> impl Future<Output = io::Result<Option<StoredSnapshot>>> + Send;

    /// Persists `snapshot` durably (synced) before returning, unless a
    /// snapshot with a greater last log id is already stored: the stored
    /// snapshot never moves backwards, whichever of a slow build and an
    /// install finishes last.
    fn save(&self, snapshot: StoredSnapshot) -> impl Future<Output = io::Result<()>> + Send;

    /// Where the snapshot lives, for error messages.
    fn origin(&self) -> String;
}

/// openraft's state machine over `QueueState`.
#[derive(Debug)]
pub struct StateMachine<V: SnapshotVault> {
    /// Where snapshots are persisted.
    vault: V,
    /// The queues: the result of applying every entry up to `applied`.
    state: QueueState,
    /// The last applied log id; only grows, except by installing a snapshot.
    applied: Option<LogId>,
    /// The membership of the last applied membership entry.
    membership: StoredMembership,
}

impl<V: SnapshotVault> StateMachine<V> {
    /// Restores the persisted snapshot, or starts empty if there is none.
    pub(crate) async fn open(vault: V) -> Result<Self, OpenError> {
        let Some(stored) = vault.load().await? else {
            return Ok(Self {
                vault,
                state: QueueState::new(),
                applied: None,
                membership: StoredMembership::default(),
            });
        };
        let state = QueueState::from_snapshot(&stored.data)
            .map_err(|source| OpenError::CorruptSnapshot { origin: vault.origin(), source })?;
        let SnapshotMeta { last_log_id, last_membership } = stored.meta;
        Ok(Self { vault, state, applied: last_log_id, membership: last_membership })
    }

    /// The queues as of the last applied entry, for reads.
    pub fn state(&self) -> &QueueState {
        &self.state
    }

    /// The last applied log id.
    pub fn applied(&self) -> Option<LogId> {
        self.applied
    }

    pub(crate) fn apply_entry(&mut self, entry: Entry) -> ApplyResult {
        let log_id = entry.log_id;
        // Applying out of order would make this replica diverge: stop.
        assert!(
            self.applied.is_none_or(|applied| applied.index < log_id.index),
            "state machine asked to apply {log_id} after {}",
            self.applied.map(|a| a.to_string()).unwrap_or_default()
        );
        self.applied = Some(log_id);
        match entry.payload {
            EntryPayload::Blank => ApplyResult::default(),
            EntryPayload::Normal(payload) => self.apply_payload(&payload),
            EntryPayload::Membership(membership) => {
                self.membership = StoredMembership::new(Some(log_id), membership);
                ApplyResult::default()
            }
        }
    }

    fn apply_payload(&mut self, payload: &LogPayload) -> ApplyResult {
        // A payload written in a format this build does not know cannot be
        // applied the way its writer meant. Panicking here would crash every
        // replica on every restart (the entry is committed and re-applied
        // forever), so every replica rejects each of its commands alike and
        // changes nothing; the writer hears the rejection.
        if payload.format_version != LOG_PAYLOAD_FORMAT_VERSION {
            let rejection = QueueError::FailedPrecondition {
                field: "format_version".into(),
                reason: format!(
                    "log payload format version {} is not supported by this build (it applies version {}); \
                     the entry was rejected on every replica",
                    payload.format_version, LOG_PAYLOAD_FORMAT_VERSION
                ),
            };
            tracing::error!(version = payload.format_version, "rejected a log entry in an unknown payload format");
            return ApplyResult { responses: payload.commands.iter().map(|_| Err(rejection.clone())).collect() };
        }
        let responses = payload.commands.iter().map(|command| self.state.apply(payload.time_ms, command)).collect();
        ApplyResult { responses }
    }

    fn snapshot_meta(&self) -> SnapshotMeta {
        SnapshotMeta { last_log_id: self.applied, last_membership: self.membership.clone() }
    }
}

impl<V: SnapshotVault> RaftStateMachine<TypeConfig> for StateMachine<V> {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = SnapshotBuilder<V>;

    async fn applied_state(&mut self) -> io::Result<(Option<LogId>, StoredMembership)> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> io::Result<()>
    where
        Strm: Stream<Item = io::Result<EntryResponder<TypeConfig>>> + Unpin + OptionalSend,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let result = self.apply_entry(entry);
            if let Some(responder) = responder {
                responder.send(result);
            }
        }
        Ok(())
    }

    async fn try_create_snapshot_builder(&mut self, _force: bool) -> Option<Self::SnapshotBuilder> {
        Some(self.get_snapshot_builder().await)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // Encoding here, on the apply task, freezes the state at `applied`;
        // the builder then persists it off this task.
        SnapshotBuilder { vault: self.vault.clone(), meta: self.snapshot_meta(), data: self.state.to_snapshot() }
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: SnapshotData) -> io::Result<()> {
        let data = snapshot.into_inner();
        let state = QueueState::from_snapshot(&data).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("snapshot {} to install is unusable: {e}", meta))
        })?;
        // Persist first: if that fails, memory still matches the disk.
        self.vault.save(StoredSnapshot { meta: meta.clone(), data }).await?;
        self.state = state;
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> io::Result<Option<Snapshot>> {
        let stored = self.vault.load().await?;
        Ok(stored.map(|s| Snapshot { meta: s.meta, snapshot: Cursor::new(s.data) }))
    }
}

/// A frozen copy of the state, persisted when openraft asks for it.
pub struct SnapshotBuilder<V: SnapshotVault> {
    vault: V,
    meta: SnapshotMeta,
    /// `QueueState::to_snapshot()` at `meta.last_log_id`.
    data: Vec<u8>,
}

impl<V: SnapshotVault> fmt::Debug for SnapshotBuilder<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotBuilder").field("meta", &self.meta).field("bytes", &self.data.len()).finish()
    }
}

impl<V: SnapshotVault> RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder<V> {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> io::Result<Snapshot> {
        let data = std::mem::take(&mut self.data);
        self.vault.save(StoredSnapshot { meta: self.meta.clone(), data: data.clone() }).await?;
        Ok(Snapshot { meta: self.meta.clone(), snapshot: Cursor::new(data) })
    }
}
