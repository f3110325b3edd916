//! The raftq Rust client: connects to any list of nodes, finds the leader,
//! retries what is safe to retry, and never duplicates a publish.
//!
//! ```no_run
//! # async fn demo() -> Result<(), raftq_client::ClientError> {
//! use raftq_client::{Client, ClientConfig, OutgoingMessage, QueueConfig};
//! use std::time::Duration;
//!
//! let client = Client::connect(ClientConfig::new(["127.0.0.1:7001", "127.0.0.1:7002"]))?;
//! client.create_queue("orders", QueueConfig::default().lease(Duration::from_secs(60))).await?;
//! let result = client.publish_one("orders", OutgoingMessage::new("order #1")).await?;
//! for delivery in client.receive("orders", 10, Duration::from_secs(5), None).await? {
//!     println!("{} {:?}", delivery.message_id(), delivery.body());
//!     delivery.ack().await?;
//! }
//! # let _ = result; Ok(()) }
//! ```
//!
//! # Layout
//!
//! - `config`: [`ClientConfig`], [`RetryPolicy`], [`PublisherConfig`] — plain
//!   structs with `validate()`, and the client-side limits.
//! - `error`: [`ClientError`], the one error type, and its mapping from
//!   `tonic::Status` (the only place a status becomes an error).
//! - `retry`: the retry rules as pure functions — which failure is retried
//!   for which call, where the next attempt goes, backoff, leader hints.
//! - `connector`: [`Connector`], the seam where channels are made (TCP by
//!   default; turmoil or anything else via [`Client::with_connector`]).
//! - `client`: [`Client`] — channel cache, leader tracking, the retry loop.
//! - `queue_api`, `cluster_api`: one method per RPC of `Queue` and `Cluster`.
//! - `types`: the client's own vocabulary, everything the methods take and
//!   return: [`OutgoingMessage`], [`Receipt`], [`Delivery`], [`Message`],
//!   [`QueueConfig`], [`QueueInfo`], [`ClusterStatus`], [`Membership`], ...
//!   Names match the proto's (`message_id`, `delivery_count`,
//!   `lease_expires_at_ms`); durations are [`std::time::Duration`]s.
//! - `convert`: every conversion between those and the wire types
//!   (re-exported as [`proto`] for whoever needs them raw), as `From` /
//!   `TryFrom` impls.
//! - `publish_stream`: [`PublishStream`], many publishes in flight on one
//!   `PublishStream` call, falling back to unary retries.
//! - `publisher`: [`Publisher`], batching in a background task (over a
//!   `PublishStream`).
//! - `consumer`: [`Consumer`], a resubscribing stream over Subscribe.
//! - `consume_stream`: [`ConsumeStream`] and its [`Settler`]: deliveries,
//!   acks, nacks and lease extensions on one `Consume` stream.
//!
//! # Leader discovery and retries
//!
//! Each call goes first to the last known leader, else to the seed servers
//! in turn. On UNAVAILABLE carrying `raftq-leader: host:port` it retries at
//! once at that address; without a hint (or on a transport failure) it
//! forgets that node, backs off (`base · 2^(n−1)` capped at `max_backoff`,
//! jittered within its upper half) and tries the next seed. Every call is
//! bounded by `retry.max_attempts` and `retry.deadline`, and each attempt by
//! `request_timeout` (plus the wait of a long poll).
//!
//! What is retried depends on whether repeating the call can do harm:
//!
//! | failure | reads, Publish, Ack, ExtendLease, Subscribe, promote, snapshot | other mutations |
//! | --- | --- | --- |
//! | UNAVAILABLE from a node (nothing happened) | retried | retried |
//! | connection refused (request never sent) | retried | retried |
//! | UNKNOWN from a node (outcome unknown: the entry was appended, then leadership changed) | retried | returned: the call may have committed |
//! | timeout, connection lost mid-call | retried | returned: the call may have committed |
//! | RESOURCE_EXHAUSTED with `raftq-retry-after-ms` (node overloaded) | retried at the same node after at least that wait | retried likewise |
//! | anything else (a full queue's RESOURCE_EXHAUSTED included) | returned | returned |
//!
//! An overloaded node (its proposal queue at its bound) refuses a request
//! before doing anything with it, with RESOURCE_EXHAUSTED and metadata
//! `raftq-retry-after-ms` ([`raftq_proto::RETRY_AFTER_MS_METADATA_KEY`]):
//! a definite "nothing happened", so every call is retried, after the
//! larger of that wait (capped at 10 s) and the usual backoff, at the same
//! node (it is still the leader). A RESOURCE_EXHAUSTED without the key is a
//! replicated refusal (queue full, message too large) and is never retried.
//!
//! A call none of whose attempts can be known not to have taken effect is
//! never reported as "nothing happened": once an attempt ended in doubt, the
//! call's final error (if it fails) is [`ClientError::RetriesExhausted`] with
//! `in_doubt` set, whose code is UNKNOWN and which
//! [`is_ambiguous`](ClientError::is_ambiguous). So an Ack whose first attempt
//! committed but whose answer was lost is retried, the retry fails with
//! FAILED_PRECONDITION (the receipt is no longer known), and the caller gets
//! UNKNOWN: it may have been acked, or the lease may have ended — at-least-once
//! consumers tolerate a redelivery either way.
//!
//! # Invariants
//!
//! - Every message published through this crate carries an idempotency key
//!   (`"{client_uuid}-{n}"` unless the caller set one), assigned once before
//!   the first attempt; every retry — across leader failover — resends the
//!   same keys, so the server stores each message once (PRODUCT.md G5).
//! - No call retries without bound: attempts and time are both capped.
//! - Nothing here dials, binds or reads the environment on its own: channels
//!   come from the [`Connector`], connections are made lazily on first use,
//!   and randomness is only backoff jitter and the client id.

mod client;
mod cluster_api;
mod config;
mod connector;
mod consume_stream;
mod consumer;
mod convert;
mod error;
mod publish_stream;
mod publisher;
mod queue_api;
mod retry;
mod topic_api;
mod types;

pub use client::Client;
pub use cluster_api::{DigestScan, NodeDigest, ReplicaCheck, TRANSFER_ATTEMPTS};
pub use config::{
    BATCH_BYTES_MAX, BATCH_MESSAGES_MAX, BearerToken, ClientConfig, GRPC_MESSAGE_BYTES_MAX, PublisherConfig,
    RECEIVE_WAIT_MAX, RetryPolicy, TlsConfig, validate_address,
};
pub use connector::{Connector, TcpConnector, endpoint};
pub use consume_stream::{ConsumeStream, Settler};
pub use consumer::Consumer;
pub use error::{ClientError, ErrorReason, code_name};
pub use publish_stream::PublishStream;
pub use publisher::{PendingPublish, Publisher};
pub use tonic::Code;
pub use types::{
    Binding, ClusterStatus, Condition, DeadLetterInfo, Delivery, Filter, HistoryEvent, Member, Membership, Message,
    MessageState, Nack, NackOutcome, NodeRole, NodeStatus, Order, OutgoingMessage, PeekPage, PublishResult,
    QueueConfig, QueueInfo, QueueStats, Receipt, ResolvedQueueConfig, StateDigest, TopicConfig, TopicCopy, TopicInfo,
    TopicPublishResult, TopicStats,
};

/// The wire types (`raftq.v1`), for whoever needs them raw; the client's
/// methods take and return its own types, which convert to and from these
/// with `From` / `TryFrom`.
pub use raftq_proto::v1 as proto;
