//! The state machine both stores share: the queue state lives in the
//! store's key-value pairs, never whole in memory.
//!
//! `apply` runs the core over a transaction on the store's current view and
//! writes the changes of a group of entries as one atomic batch that also
//! holds the last applied log id (and membership): state and applied index
//! never disagree, whatever the crash. The batch is not synced on its own,
//! nor written to a write-ahead log: the Raft log is its redo log. It
//! becomes durable when the store flushes the state (on its own, or when a
//! snapshot is built, before openraft may purge the log behind it). So a
//! power loss that drops unflushed state writes drops the applied id with
//! them, and openraft re-applies those entries from the log on restart. A
//! restart loads nothing: it reads the applied id and serves.
//!
//! A snapshot *is* the state at the applied id: building one only makes it
//! durable; sending one streams the pairs from a consistent view; installing
//! one writes a staging area and switches to it in one step
//! ([`StateStore`]).

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::{Stream, StreamExt};
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use raftq_core::kv::{DigestRecount, HOST_PREFIX, KvRead, Txn, WriteSet};
use raftq_core::read::Reader;
use raftq_core::{Answer, DedupCaps, QueueError};

use crate::codec;
use crate::error::{OpenError, corrupt};
use crate::snapshot_stream::{Decoder, SnapshotData};
use crate::types::{
    ApplyResult, Entry, LOG_PAYLOAD_FORMAT_VERSION, LogId, LogPayload, Snapshot, SnapshotMeta, StoredMembership,
    TypeConfig,
};

/// Host keys (outside the core's keyspace and digest), in the state's
/// store so they are written in the same batch as the state.
pub(crate) const HOST_APPLIED: &[u8] = &[HOST_PREFIX, b'a'];
pub(crate) const HOST_MEMBERSHIP: &[u8] = &[HOST_PREFIX, b'm'];

/// Keys written in one transaction before it is committed mid-batch: bounds
/// the memory one apply call holds.
const TXN_KEYS_MAX: usize = 20_000;

/// Where the state's pairs live: RocksDB, or the simulation's disk. Clones
/// are handles to the same store.
pub trait StateStore: Clone + Send + Sync + fmt::Debug + 'static {
    /// The current state, as the last `write` left it.
    fn kv(&self) -> &dyn KvRead;

    /// Writes `writes` as one atomic batch, readable at once. It may be
    /// lost in a crash until the next `sync` (or a flush the store does on
    /// its own); what survives is always every batch up to some point.
    fn write(&self, writes: WriteSet) -> io::Result<()>;

    /// Makes every write so far durable (a flush of the state, not a sync
    /// of the log's write-ahead log).
    fn sync(&self) -> impl Future<Output = io::Result<()>> + Send;

    /// A stream of the current state (host keys included), consistent as of
    /// now, produced as it is read.
    fn stream(&self) -> io::Result<SnapshotData>;

    /// Replaces the whole state with `data`'s pairs, atomically and synced:
    /// staged first, switched only once the stream proved complete. On
    /// error the old state is intact.
    fn install(&self, data: SnapshotData) -> impl Future<Output = io::Result<()>> + Send;

    /// Where the state lives, for error messages.
    fn origin(&self) -> String;

    /// Something that rewrites the store's files so deleted data stops
    /// taking space, if the store has files (`None`: nothing to do). It
    /// blocks for as long as the rewrite takes: call it on a blocking
    /// thread, when the node is idle.
    fn compactor(&self) -> Option<Compactor> {
        None
    }

    /// What the store holds in memory now, if it keeps its own caches
    /// (`None`: the state is an in-memory map, counted elsewhere).
    fn memory(&self) -> Option<StoreMemory> {
        None
    }
}

/// Reads a store's memory now (see [`StateMachine::memory_probe`]).
pub type MemoryProbe = Arc<dyn Fn() -> StoreMemory + Send + Sync>;

/// A store's memory by use, in bytes (see [`StateStore::memory`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreMemory {
    /// Blocks in the block cache, with the memtables' charge to it.
    pub block_cache: u64,
    /// The part of `block_cache` pinned (by readers, or as level-0
    /// filters and indexes), which the cache cannot evict.
    pub block_cache_pinned: u64,
    /// Memtables, flushed or not, of every column family.
    pub memtables: u64,
    /// Open files' readers outside the cache.
    pub table_readers: u64,
}

/// See [`StateStore::compactor`]: rewrites a store's files, and counts the
/// keys deleted since the store was opened (what a rewrite could reclaim).
#[derive(Clone)]
pub struct Compactor {
    compact: Arc<dyn Fn() -> io::Result<()> + Send + Sync>,
    deleted: Arc<AtomicU64>,
}

impl fmt::Debug for Compactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compactor").field("deleted", &self.deleted_keys()).finish_non_exhaustive()
    }
}

impl Compactor {
    pub fn new(compact: Arc<dyn Fn() -> io::Result<()> + Send + Sync>, deleted: Arc<AtomicU64>) -> Self {
        Self { compact, deleted }
    }

    /// Rewrites the files (blocking, possibly for long).
    pub fn compact(&self) -> io::Result<()> {
        (self.compact)()
    }

    /// Keys deleted since the store was opened.
    pub fn deleted_keys(&self) -> u64 {
        self.deleted.load(Ordering::Relaxed)
    }
}

/// openraft's state machine over a [`StateStore`].
#[derive(Debug)]
pub struct StateMachine<S: StateStore> {
    store: S,
    /// The last applied log id, as stored with the state.
    applied: Option<LogId>,
    /// The membership of the last applied membership entry.
    membership: StoredMembership,
    /// The dedup bounds (the constants; smaller in tests).
    caps: DedupCaps,
    /// Encoded bytes of the commands applied since this process opened the
    /// store (for the server's snapshot-by-bytes trigger).
    applied_bytes: Arc<AtomicU64>,
}

fn read_host<T: serde::de::DeserializeOwned>(kv: &dyn KvRead, key: &[u8], origin: &str) -> io::Result<Option<T>> {
    let bytes = kv.get(key).map_err(|e| io::Error::other(e.to_string()))?;
    let what = if key == HOST_APPLIED { "applied log id" } else { "membership" };
    bytes.map(|b| codec::decode(&b).map_err(|e| corrupt(format_args!("stored {what}"), origin, e))).transpose()
}

impl<S: StateStore> StateMachine<S> {
    /// Opens the state machine on `store`: reads the applied log id and
    /// membership, nothing else.
    pub(crate) fn open(store: S) -> Result<Self, OpenError> {
        let origin = store.origin();
        let applied = read_host(store.kv(), HOST_APPLIED, &origin)?;
        let membership = read_host(store.kv(), HOST_MEMBERSHIP, &origin)?.unwrap_or_default();
        Ok(Self { store, applied, membership, caps: DedupCaps::default(), applied_bytes: Default::default() })
    }

    /// Reads of the state as of the last applied entry.
    pub fn reader(&self) -> Reader<'_> {
        Reader::new(self.store.kv())
    }

    /// A counter of the encoded bytes of every command applied since the
    /// store was opened; it only grows.
    pub fn applied_bytes(&self) -> Arc<AtomicU64> {
        self.applied_bytes.clone()
    }

    /// See [`StateStore::compactor`].
    pub fn compactor(&self) -> Option<Compactor> {
        self.store.compactor()
    }

    /// A probe of the store's memory, if it has caches of its own.
    pub fn memory_probe(&self) -> Option<MemoryProbe> {
        self.store.memory()?;
        let store = self.store.clone();
        Some(Arc::new(move || store.memory().unwrap_or_default()))
    }

    /// The last applied log id.
    pub fn applied(&self) -> Option<LogId> {
        self.applied
    }

    /// The store, for tests and tools.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// A stream of the state as of the last applied entry, read from a
    /// consistent view after this call returns (for [`recount`]).
    pub fn view(&self) -> io::Result<SnapshotData> {
        self.store.stream()
    }

    fn snapshot_meta(&self) -> SnapshotMeta {
        SnapshotMeta { last_log_id: self.applied, last_membership: self.membership.clone() }
    }

    /// Applies one entry and writes it (tests; openraft uses `apply`).
    #[cfg(test)]
    pub(crate) fn apply_entry(&mut self, entry: Entry) -> ApplyResult {
        check_order(self.applied, entry.log_id);
        let log_id = entry.log_id;
        let mut membership = self.membership.clone();
        let mut txn = Txn::new(self.store.kv());
        let result = apply_entry(&mut txn, self.caps, entry, Answer::Wanted, &mut membership).expect("apply");
        self.commit(txn).expect("commit");
        self.applied = Some(log_id);
        self.membership = membership;
        result
    }

    fn commit(&self, txn: Txn<'_>) -> io::Result<()> {
        let writes = txn.finish().map_err(|e| io::Error::other(e.to_string()))?;
        self.store.write(writes)
    }
}

/// Applying out of order would make this replica diverge: stop.
fn check_order(applied: Option<LogId>, next: LogId) {
    assert!(
        applied.is_none_or(|a| a.index < next.index),
        "state machine asked to apply {next} after {}",
        applied.map(|a| a.to_string()).unwrap_or_default()
    );
}

/// Applies one entry into `txn`; the caller has checked its order.
/// `answer`: whether a client waits for the result (see [`Answer`]).
fn apply_entry(
    txn: &mut Txn<'_>,
    caps: DedupCaps,
    entry: Entry,
    answer: Answer,
    membership: &mut StoredMembership,
) -> io::Result<ApplyResult> {
    let log_id = entry.log_id;
    let result = match entry.payload {
        EntryPayload::Blank => ApplyResult::default(),
        EntryPayload::Normal(payload) => apply_payload(txn, caps, &payload, answer)?,
        EntryPayload::Membership(m) => {
            *membership = StoredMembership::new(Some(log_id), m);
            txn.put(HOST_MEMBERSHIP.to_vec(), codec::encode(&*membership));
            ApplyResult::default()
        }
    };
    txn.put(HOST_APPLIED.to_vec(), codec::encode(&log_id));
    Ok(result)
}

fn apply_payload(txn: &mut Txn<'_>, caps: DedupCaps, payload: &LogPayload, answer: Answer) -> io::Result<ApplyResult> {
    // A payload written in a format this build does not know cannot be
    // applied the way its writer meant. Panicking here would crash every
    // replica on every restart (the entry is committed and re-applied
    // forever), so every replica rejects each of its commands alike and
    // changes nothing; the writer hears the rejection.
    if payload.format_version != LOG_PAYLOAD_FORMAT_VERSION {
        let rejection = QueueError::unsupported_format(
            "format_version",
            format!(
                "log payload format version {} is not supported by this build (it applies version {}); \
                 the entry was rejected on every replica",
                payload.format_version, LOG_PAYLOAD_FORMAT_VERSION
            ),
        );
        tracing::error!(version = payload.format_version, "rejected a log entry in an unknown payload format");
        return Ok(ApplyResult { responses: payload.commands.iter().map(|_| Err(rejection.clone())).collect() });
    }
    let mut responses = Vec::with_capacity(payload.commands.len());
    for command in &payload.commands {
        let response = raftq_core::apply_for(txn, caps, payload.time_ms, command, answer)
            .map_err(|fault| io::Error::other(format!("applying a command: {fault}")))?;
        responses.push(response);
    }
    Ok(ApplyResult { responses })
}

impl<S: StateStore> RaftStateMachine<TypeConfig> for StateMachine<S> {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = SnapshotBuilder<S>;

    async fn applied_state(&mut self) -> io::Result<(Option<LogId>, StoredMembership)> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> io::Result<()>
    where
        Strm: Stream<Item = io::Result<EntryResponder<TypeConfig>>> + Unpin + OptionalSend,
    {
        let mut applied = self.applied;
        let mut membership = self.membership.clone();
        let mut answered = Vec::new();
        let mut txn = Txn::new(self.store.kv());
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            check_order(applied, entry.log_id);
            if let EntryPayload::Normal(payload) = &entry.payload {
                // A sizing pass (no copy); it cannot fail for our types.
                let bytes = postcard::experimental::serialized_size(payload).unwrap_or(0);
                self.applied_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
            }
            applied = Some(entry.log_id);
            // Only the node that proposed the entry answers for it.
            let answer = if responder.is_some() { Answer::Wanted } else { Answer::Unread };
            let result = apply_entry(&mut txn, self.caps, entry, answer, &mut membership)?;
            answered.push((responder, result));
            if txn.pending() >= TXN_KEYS_MAX {
                self.commit(txn)?;
                txn = Txn::new(self.store.kv());
                for (responder, result) in answered.drain(..) {
                    if let Some(responder) = responder {
                        responder.send(result);
                    }
                }
            }
        }
        self.commit(txn)?;
        self.applied = applied;
        self.membership = membership;
        // Answer only once the batch is written: a read after the answer
        // sees the write.
        for (responder, result) in answered {
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
        SnapshotBuilder { meta: self.snapshot_meta(), store: self.store.clone() }
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: SnapshotData) -> io::Result<()> {
        self.store.install(snapshot).await?;
        let origin = self.store.origin();
        let applied: Option<LogId> = read_host(self.store.kv(), HOST_APPLIED, &origin)?;
        if applied != meta.last_log_id {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "installed snapshot holds applied log id {applied:?}, its metadata says {:?}",
                    meta.last_log_id
                ),
            ));
        }
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> io::Result<Option<Snapshot>> {
        if self.applied.is_none() {
            return Ok(None);
        }
        // openraft takes this meta as a snapshot already made durable and
        // may purge the log behind it (at startup it asks right after
        // re-applying the log, whose state writes are not flushed yet):
        // make the state at the meta durable first, as a build does.
        self.store.sync().await?;
        Ok(Some(Snapshot { meta: self.snapshot_meta(), snapshot: self.store.stream()? }))
    }
}

/// What [`recount`] found in a stream of the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recount {
    /// The applied log id stored with the state.
    pub applied: Option<LogId>,
    /// The digest recomputed from every pair, and the stored one.
    pub digest: DigestRecount,
}

/// Reads a whole stream of the state (from [`StateMachine::view`]) and
/// recomputes its digest pair by pair: the full-scan check behind
/// `raftq cluster verify --full`. Its time grows with the state; memory
/// holds one chunk at a time. Fails if the stream is damaged or ends early.
pub async fn recount(mut data: SnapshotData) -> io::Result<Recount> {
    let mut decoder = Decoder::new();
    let mut digest = DigestRecount::default();
    let mut applied = None;
    while let Some(chunk) = data.next_chunk().await {
        for (key, value) in decoder.chunk(&chunk?)? {
            if key == HOST_APPLIED {
                applied = Some(codec::decode(&value).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?);
            }
            digest.add(&key, &value);
        }
    }
    if !decoder.is_complete() {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the state stream ended early"));
    }
    Ok(Recount { applied, digest })
}

/// Makes the state at `meta` durable when openraft asks for a snapshot.
pub struct SnapshotBuilder<S: StateStore> {
    meta: SnapshotMeta,
    store: S,
}

impl<S: StateStore> fmt::Debug for SnapshotBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotBuilder").field("meta", &self.meta).finish()
    }
}

impl<S: StateStore> RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder<S> {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> io::Result<Snapshot> {
        // Everything applied up to `meta` was written before this builder
        // was made; syncing now makes it durable, so openraft may purge the
        // log up to it. The data is never read (openraft keeps the meta);
        // a follower that needs the state gets a fresh stream.
        self.store.sync().await?;
        Ok(Snapshot { meta: self.meta.clone(), snapshot: SnapshotData::from_chunks([]) })
    }
}
