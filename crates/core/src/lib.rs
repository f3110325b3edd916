//! # raftq-core: the queue state machine
//!
//! All of raftq's queue semantics live here, as a pure function
//! [`apply`]`(txn, caps, entry_time_ms, &Command) -> Response` over an
//! ordered key-value store ([`kv`]). The Raft layer feeds it committed log
//! entries in order and writes each entry's changes as one batch (RocksDB on
//! a real node, memory in the simulation); every replica that applies the
//! same entries holds identical pairs (see [`kv`]'s digest). Reads
//! ([`read::Reader`]) work over any consistent view. [`QueueState`] is the
//! same over an in-memory store, for tests.
//!
//! ## Layout
//! - [`limits`]: every bound, units last, checked against each other.
//! - [`config`]: per-queue configuration, defaults, partial updates.
//! - [`command`]: the commands (every mutation, deliveries included) and
//!   their stateless validation.
//! - [`message`]: a stored message, its state and history.
//! - [`response`]: what commands answer and reads return.
//! - [`error`]: `QueueError`, the replicated rejections.
//! - [`kv`]: the key-value interface, the transaction overlay, the digest.
//! - `keys`: the key layout (one table byte, big-endian integers).
//! - `store`: the records, and the operations that keep indexes exact.
//! - `state`: `apply`, time and timers, queue admin, publish; `QueueState`.
//! - `delivery`: receive, ack, nack, extend, retry, dead letters, redrive.
//! - [`topic`]: topics, bindings with attribute filters, fan-out publish.
//! - [`read`]: the reads, over any consistent view.
//! - `invariants`: the full-scan check of every index and count.
//! - [`retry`]: exponential backoff with deterministic jitter.
//! - [`typed`]: command constructors that carry how to read their answer.
//! - `snapshot`: `QueueState`'s versioned, checksummed snapshots.
//!
//! ## Invariants
//! - No I/O, clock, randomness, tokio, RocksDB or tonic: CI checks
//!   `cargo tree -p raftq-core -e normal`. Time is the entry timestamp, and
//!   the state never lets it go backwards.
//! - All state is ordered key-value pairs, so iteration, timer firing and
//!   encoding are deterministic. Work per applied command is bounded (timers,
//!   cleanup of purged queues, dedup expiry): nothing walks the backlog,
//!   and no scan walks the keys the state deleted before (scan floors, see
//!   `keys::scan_start`).
//! - A rejection is a replicated answer that changes nothing but time.
//! - A message leaves a queue only by ack, TTL, purge, queue delete, or
//!   moving to a dead-letter queue (and back by redrive). Nothing else.
//! - Message ids are unique across all queues and never reused (each
//!   queue's ids still increase in commit order).
//! - A message has at most one live lease, named by (queue, id, attempt);
//!   attempts only grow, so a receipt never names a later lease.
//! - Broken internal invariants `panic!`: a replica must stop rather than
//!   diverge. No input reaches a panic: `apply` validates every command.

pub mod command;
pub mod config;
mod delivery;
pub mod error;
mod invariants;
mod keys;
pub mod kv;
pub mod limits;
pub mod message;
pub mod read;
pub mod response;
pub mod retry;
mod snapshot;
mod state;
mod store;
pub mod topic;
pub mod typed;

pub use command::{Command, NewMessage, Receipt};
pub use config::{ConfigUpdate, Order, QueueConfig, validate_queue_name};
pub use error::{Limit, QueueError, Reason};
pub use keys::GROWING_TABLES;
pub use message::{DeadLetterInfo, HistoryEvent, Message, MessageState, StateFilter};
pub use response::{Delivery, NackOutcome, Outcome, PeekPage, PublishResult, QueueInfo, QueueStats, Response};
pub use snapshot::{SNAPSHOT_FORMAT_VERSION, SnapshotError};
pub use state::{Answer, DedupCaps, QueueState, apply, apply_for};
pub use topic::{
    BindingInfo, Condition, Filter, Test, TopicConfig, TopicCopy, TopicInfo, TopicPublishResult, TopicStats,
};
pub use typed::Typed;

/// Checks every invariant of the state in a store by a full scan.
pub fn check_invariants(kv: &dyn kv::KvRead, caps: DedupCaps) -> Result<(), String> {
    invariants::check(kv, caps)
}

#[cfg(test)]
mod scan_cost_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod topic_tests;
