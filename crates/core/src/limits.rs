//! Every bound the queue enforces, in one place, units last.
//!
//! A request is checked against these before it reaches the log (and again
//! inside `apply`, which must never trust its input). Where two limits relate,
//! a `const` assertion below keeps them consistent.

/// Longest queue name, in bytes. Names match `[A-Za-z0-9._-]{1,128}`.
pub const QUEUE_NAME_BYTES_MAX: usize = 128;
/// Most queues one cluster holds.
pub const QUEUES_MAX: usize = 10_000;

/// Most topics one cluster holds. Topic names follow the queue name rules.
pub const TOPICS_MAX: usize = 10_000;
/// Most bindings (bound queues) one topic has.
pub const BINDINGS_PER_TOPIC_MAX: usize = 1_000;
/// Most topics one queue is bound to.
pub const BINDINGS_PER_QUEUE_MAX: usize = 100;
/// Most conditions in one binding's filter (all must hold).
pub const FILTER_CONDITIONS_MAX: usize = 16;
/// Most values in one `one_of` condition.
pub const FILTER_VALUES_MAX: usize = 64;
/// Most bytes of attribute keys and values one filter names in all.
pub const FILTER_BYTES_MAX: usize = 4096;
/// Most copies one topic publish stores in all (matching bound queues ×
/// messages): one request never turns into an unbounded state write.
pub const TOPIC_COPIES_MAX: usize = 10_000;
/// Most bytes (bodies plus attributes) one topic publish stores over all
/// its copies.
pub const TOPIC_COPY_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Most topics one list returns.
pub const LIST_TOPICS_MAX: u32 = 1_000;

/// Default largest message body plus attributes, in bytes (per queue, configurable).
pub const MESSAGE_BYTES_DEFAULT: u32 = 1024 * 1024;
/// Hard cap on `max_message_bytes`: no queue may allow more.
pub const MESSAGE_BYTES_CAP: u32 = 4 * 1024 * 1024;
/// Most messages in one publish request.
pub const PUBLISH_MESSAGES_MAX: usize = 1_000;
/// Most bytes (bodies plus attributes) in one publish request.
pub const PUBLISH_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Most attributes on one message.
pub const ATTRIBUTES_MAX: usize = 64;
/// Longest attribute key, in bytes.
pub const ATTRIBUTE_KEY_BYTES_MAX: usize = 256;
/// Longest attribute value, in bytes.
pub const ATTRIBUTE_VALUE_BYTES_MAX: usize = 4096;
/// Longest idempotency key, in bytes.
pub const IDEMPOTENCY_KEY_BYTES_MAX: usize = 256;
/// Longest nack / dead-letter reason, in bytes (longer reasons are rejected).
pub const REASON_BYTES_MAX: usize = 1024;

/// Bytes a message may carry on the wire besides its body and attributes
/// (counted by the byte limits): ids, timestamps, counters, its idempotency
/// key, queue names, dead-letter info with its reason, and protobuf framing.
/// Only used to size transport limits; the assertion below keeps it honest.
pub const MESSAGE_ENVELOPE_BYTES_MAX: usize = 2 * 1024;
/// Largest gRPC message between a client and a node, either way: a full
/// publish batch, or a full receive, each with every message's envelope
/// (both servers and clients use this; the assertions below tie it to them).
pub const CLIENT_MESSAGE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Longest long poll one receive may ask for, in milliseconds (20 s).
pub const RECEIVE_WAIT_MS_MAX: u64 = 20_000;

/// Most messages one receive hands out.
pub const RECEIVE_MESSAGES_MAX: u32 = 1_000;
/// A receive stops adding messages once their bodies and attributes pass this
/// many bytes (it always returns at least one message if one is visible).
pub const RECEIVE_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Most receipts in one ack.
pub const ACK_RECEIPTS_MAX: usize = 1_000;
/// Most messages one redrive command moves (the server loops for more).
pub const REDRIVE_MESSAGES_MAX: u32 = 1_000;
/// Most messages one peek returns.
pub const PEEK_MESSAGES_MAX: u32 = 1_000;
/// Most messages one peek looks at before it returns a continuation point.
pub const PEEK_SCAN_MAX: usize = 100_000;
/// Most queues one list returns.
pub const LIST_QUEUES_MAX: u32 = 1_000;

/// Shortest lease, in milliseconds.
pub const LEASE_MS_MIN: u64 = 100;
/// Longest lease, in milliseconds (12 h, as SQS's visibility timeout).
pub const LEASE_MS_MAX: u64 = 12 * 60 * 60 * 1000;
/// Default lease, in milliseconds.
pub const LEASE_MS_DEFAULT: u64 = 30_000;
/// Longest publish or nack delay, in milliseconds (7 days).
pub const DELAY_MS_MAX: u64 = 7 * 24 * 60 * 60 * 1000;
/// Longest message TTL, in milliseconds (365 days).
pub const MESSAGE_TTL_MS_MAX: u64 = 365 * 24 * 60 * 60 * 1000;
/// Default idempotency-key dedup window, in milliseconds (5 min).
pub const DEDUP_WINDOW_MS_DEFAULT: u64 = 5 * 60 * 1000;
/// Longest dedup window, in milliseconds (24 h).
pub const DEDUP_WINDOW_MS_MAX: u64 = 24 * 60 * 60 * 1000;
/// Most idempotency keys one queue remembers. When full, the queue's key
/// closest to the end of its window is forgotten early and the queue's
/// `dedup_evicted_total` counts it: memory stays bounded however fast
/// producers publish. So a queue's window holds for at least
/// `DEDUP_KEYS_MAX / r` seconds at r keyed publishes per second (≈ 77 s at
/// 13k/s), the full window below `DEDUP_KEYS_MAX / window` per second
/// (≈ 3.3k/s for 5 min).
pub const DEDUP_KEYS_MAX: usize = 1_000_000;
/// Most idempotency keys all queues together remember (on disk: three
/// records of the key, ~150 bytes for a key of ~30 bytes, so ~0.3 GB at
/// this bound, before compaction overhead). When full, the key closest to the end of its
/// window in *any* queue is forgotten early and counted in that queue's
/// `dedup_evicted_total`. With one window length throughout, a key is kept
/// for at least `DEDUP_KEYS_TOTAL_MAX / R` at R keyed publishes per second
/// across the cluster.
pub const DEDUP_KEYS_TOTAL_MAX: usize = 2_000_000;
/// Dedup index keys one eviction reads ahead at most: a publish of n keyed
/// messages into a full dedup table forgets n keys, found in one scan of
/// the index rather than n.
pub const DEDUP_EVICT_AHEAD_MAX: usize = 1_000;
/// Longest retry backoff, in milliseconds.
pub const BACKOFF_MS_MAX: u64 = 12 * 60 * 60 * 1000;
/// Default ceiling of the retry backoff, in milliseconds.
pub const BACKOFF_MAX_MS_DEFAULT: u64 = 5 * 60 * 1000;
/// Largest `max_deliveries` a queue may set (0 means unlimited).
pub const MAX_DELIVERIES_MAX: u32 = 10_000;

/// History events kept per message (the most recent ones; older are counted).
pub const HISTORY_EVENTS_MAX: usize = 32;
/// Timers (lease ends, delays, TTLs) one applied entry processes at most; the
/// rest are processed by the next entries, so one entry never stalls apply.
pub const TIMERS_PER_APPLY_MAX: usize = 1_000;
/// Left-behind messages and idempotency keys (of purged and deleted queues)
/// one applied entry deletes at most; the server proposes ticks until none
/// are left, so a purge of millions costs a bounded amount per entry.
pub const CLEANUP_PER_APPLY_MAX: usize = 1_000;
/// Expired idempotency keys one publish forgets at most; lookups ignore
/// expired keys, so the rest wait for the next publishes harmlessly.
pub const DEDUP_EXPIRE_PER_APPLY_MAX: usize = 1_000;

const _: () = assert!(MESSAGE_BYTES_DEFAULT <= MESSAGE_BYTES_CAP);
const _: () = assert!(MESSAGE_BYTES_CAP as usize <= PUBLISH_BYTES_MAX);
const _: () = assert!(MESSAGE_BYTES_CAP as usize <= RECEIVE_BYTES_MAX);
const _: () = assert!(LEASE_MS_MIN <= LEASE_MS_DEFAULT && LEASE_MS_DEFAULT <= LEASE_MS_MAX);
const _: () = assert!(DEDUP_WINDOW_MS_DEFAULT <= DEDUP_WINDOW_MS_MAX);
// One queue can always fill its own table: the cluster-wide bound never
// bites before a lone queue's.
const _: () = assert!(DEDUP_KEYS_MAX <= DEDUP_KEYS_TOTAL_MAX);
const _: () = assert!(BACKOFF_MAX_MS_DEFAULT <= BACKOFF_MS_MAX);
const _: () = assert!(PEEK_MESSAGES_MAX as usize <= PEEK_SCAN_MAX);
// A full batch always fits one copy of each message, and one message fits
// every binding of a topic.
const _: () = assert!(PUBLISH_MESSAGES_MAX <= TOPIC_COPIES_MAX && BINDINGS_PER_TOPIC_MAX <= TOPIC_COPIES_MAX);
const _: () = assert!(PUBLISH_BYTES_MAX <= TOPIC_COPY_BYTES_MAX);
// The envelope covers the variable-length fields a message carries besides
// its body and attributes (key, its queue's and a dead-letter source
// queue's names, a dead-letter reason), plus 256 bytes of fixed fields.
const _: () = assert!(
    IDEMPOTENCY_KEY_BYTES_MAX + 2 * QUEUE_NAME_BYTES_MAX + REASON_BYTES_MAX + 256 <= MESSAGE_ENVELOPE_BYTES_MAX
);
// A full publish request fits in one client message.
const _: () = assert!(
    PUBLISH_BYTES_MAX + PUBLISH_MESSAGES_MAX * MESSAGE_ENVELOPE_BYTES_MAX + QUEUE_NAME_BYTES_MAX
        < CLIENT_MESSAGE_BYTES_MAX
);
// A full receive fits in one client message: bodies up to RECEIVE_BYTES_MAX,
// plus the one message that may cross it, plus every message's envelope.
const _: () = assert!(
    RECEIVE_BYTES_MAX + MESSAGE_BYTES_CAP as usize + RECEIVE_MESSAGES_MAX as usize * MESSAGE_ENVELOPE_BYTES_MAX
        < CLIENT_MESSAGE_BYTES_MAX
);
