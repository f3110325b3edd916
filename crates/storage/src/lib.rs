//! # raftq-storage: openraft storage for raftq
//!
//! openraft's log store and state machine, twice: on RocksDB for real
//! nodes, and as an in-memory, fault-injecting twin for deterministic
//! simulation. Both run openraft's storage conformance suite.
//!
//! ## Layout
//! - [`types`] (re-exported from `raftq-types`): the openraft
//!   [`TypeConfig`], [`LogPayload`] (leader time + commands, group-committed
//!   into one entry), [`ApplyResult`], the snapshot chunk stream.
//! - `codec`: the record frame both stores write (format version, length,
//!   crc32c, postcard payload), and log keys.
//! - `recovery`: the checks run at open, and the torn-tail rule.
//! - [`machine`]: the state machine over the core's key-value state,
//!   generic over where the pairs live ([`StateStore`]).
//! - [`rocks`]: the RocksDB store ([`RocksStore::open`]): log, state
//!   (generations for atomic snapshot installs), the group-commit WAL sync
//!   thread, one memory budget.
//! - [`mem`]: the twin ([`MemStore::open`]) on a [`MemDisk`] that survives
//!   simulated crashes and injects faults.
//! - [`error`]: [`OpenError`], why a store refuses to open.
//!
//! ## What is persisted when
//! - `append`: entries are written at once (readable when `append`
//!   returns) and its callback fires only after a sync covering them.
//!   RocksDB: concurrent appends share one WAL fsync (group commit).
//! - `save_vote`, `truncate_after`, `purge`: return only after a sync.
//! - `save_committed`: written, synced by the next sync.
//! - `apply`: each group of entries is one atomic state batch holding the
//!   applied log id, unsynced: it becomes durable with the next WAL sync
//!   (the log's appends sync it). Open reads only the applied id; openraft
//!   re-applies committed entries after it.
//! - Snapshot build: a WAL sync, so the state up to the snapshot's log id is
//!   durable before openraft purges the log behind it. Install: staged,
//!   then switched in one synced batch.
//!
//! ## Invariants
//! - An append's callback fires only after the write that holds its entries
//!   is synced (the twin's test-only `ack_before_sync` mode breaks this on
//!   purpose).
//! - A record failing its checksum is never served: reads fail with an
//!   `InvalidData` error, which openraft treats as fatal.
//! - Open refuses damaged data with an error naming the record and the
//!   path; the only damage it repairs is a torn newest log record above the
//!   committed index (a crash artefact: it was never acknowledged).
//! - The applied log id is written in the same batch as the state it
//!   produced; the log is never purged past a synced applied id.
//! - Applying is deterministic and total: entries strictly in index order,
//!   commands in entry order at the entry's time. An entry in an unknown
//!   payload format is rejected alike on every replica (each command answers
//!   FAILED_PRECONDITION, the state is unchanged): a committed entry is
//!   re-applied at every restart, so a panic there would stop every replica
//!   for good. Only an out-of-order entry (an openraft bug) panics.
//! - The twin uses no threads, clock or randomness.

pub mod codec;
pub mod error;
pub mod machine;
pub mod mem;
mod recovery;
pub mod rocks;

// The shared types live in `raftq-types` (so the Raft glue needs no storage
// engine); re-exported here under their old paths.
pub use raftq_types as types;
pub use raftq_types::{runtime, snapshot_stream};

#[cfg(test)]
mod tests;

pub use error::OpenError;
pub use machine::{Compactor, MemoryProbe, Recount, SnapshotBuilder, StateMachine, StateStore, StoreMemory, recount};
pub use mem::{MemDisk, MemLogStore, MemState, MemStateMachine, MemStore};
pub use rocks::{RocksLogStore, RocksState, RocksStateMachine, RocksStore, StoreOptions};
pub use types::*;
