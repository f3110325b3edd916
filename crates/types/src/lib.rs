//! # raftq-types: what storage and the Raft glue share
//!
//! The openraft type configuration ([`TypeConfig`]), what a log entry
//! carries ([`LogPayload`]) and answers ([`ApplyResult`]), the snapshot as a
//! checked stream of chunks ([`SnapshotData`]), and the runtime openraft
//! runs on ([`runtime::RaftqRuntime`], seedable for the simulation).
//!
//! Dependencies point one way: `raftq-core` (the queue semantics) below;
//! `raftq-storage` (RocksDB and the in-memory twin) and `raftq-raft` (the
//! transport) above, neither depending on the other.

mod entry;
pub mod runtime;
pub mod snapshot_stream;

pub use entry::*;
