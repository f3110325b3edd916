//! # raftq-core: the queue state machine
//!
//! All of raftq's queue semantics live here, as a pure function
//! `QueueState::apply(entry_time_ms, &Command) -> Response`. The Raft layer
//! feeds it committed log entries in order; every replica that applies the
//! same entries holds byte-identical state (see `QueueState::digest`).
//!
//! ## Layout
//! - [`limits`]: every bound, units last, checked against each other.
//! - [`config`]: per-queue configuration, defaults, partial updates.
//! - [`command`]: the commands (every mutation, deliveries included) and
//!   their stateless validation.
//! - [`message`]: a stored message, its state and history.
//! - [`response`]: what commands answer and reads return.
//! - [`error`]: `QueueError`, the replicated rejections.
//! - `queue`: one queue's messages and the indexes over them.
//! - `state`: `QueueState`, `apply`, time and timers, queue admin, publish, reads.
//! - `delivery`: receive, ack, nack, extend, retry, dead letters, redrive.
//! - [`retry`]: exponential backoff with deterministic jitter.
//! - `snapshot`: versioned, checksummed snapshots and the state digest.
//!
//! ## Invariants
//! - No I/O, clock, randomness, tokio, RocksDB or tonic: CI checks
//!   `cargo tree -p raftq-core -e normal`. Time is the entry timestamp, and
//!   the state never lets it go backwards.
//! - Every map is ordered (`BTreeMap`/`BTreeSet`), so iteration, timer firing
//!   and encoding are deterministic.
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
pub mod limits;
pub mod message;
mod queue;
pub mod response;
pub mod retry;
mod snapshot;
mod state;

pub use command::{Command, NewMessage, Receipt};
pub use config::{ConfigUpdate, Order, QueueConfig, validate_queue_name};
pub use error::QueueError;
pub use message::{DeadLetterInfo, HistoryEvent, Message, MessageState, StateFilter};
pub use response::{Delivery, NackOutcome, Outcome, PeekPage, PublishResult, QueueInfo, QueueStats, Response};
pub use snapshot::{SNAPSHOT_FORMAT_VERSION, SnapshotError};
pub use state::{DedupCaps, QueueState};

#[cfg(test)]
mod tests;
