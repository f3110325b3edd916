//! The key layout of the state. One byte names the table; integers are
//! big-endian so key order is numeric order. Values are postcard.
//!
//! | table | key | value |
//! |---|---|---|
//! | `G` | — | [`Globals`](crate::store::Globals): time, id counters, dedup key count |
//! | `Q` | name | [`QueueRecord`](crate::store::QueueRecord): config, counts, counters |
//! | `U` | uid | queue name (live queues, for dedup eviction) |
//! | `S` | space | queue name (live message spaces, for timers) |
//! | `m` | space, id | the message's [`Head`](crate::message::Head): state, counts, history |
//! | `b` | space, id | its [`Content`](crate::message::Content): body and attributes, never rewritten |
//! | `r` | space, id | — ready index (FIFO = first, LIFO = last) |
//! | `t` | due, space, id, kind | — every pending delay end, lease end and TTL |
//! | `k` | uid, key | dedup entry: the id and when the key is forgotten |
//! | `x` | uid, expiry, key | — a queue's dedup keys by expiry |
//! | `X` | expiry, uid, key | — every dedup key by expiry (cluster-wide bound) |
//! | `Z` | space | cleanup cursor: the next message id to delete (8 bytes, big-endian; empty = 0) |
//! | `Y` | uid | cleanup cursor: the dedup key to continue from (empty = the first) |
//! | `T` | name | [`TopicRecord`](crate::topic::TopicRecord): config, counts, counters |
//! | `V` | uid | topic name (live topics, for dedup eviction) |
//! | `B` | topic, 0, queue | a binding's [`Filter`](crate::topic::Filter) |
//! | `P` | queue, 0, topic | — the bindings of a queue (removed with it) |
//! | `#digest` | — | the state digest (see `kv`) |
//!
//! A queue's messages live in its *space*, a number it gets at create and
//! again at every purge: a purge or delete answers at once by moving the
//! queue to a fresh space (or removing it) and marking the old one in `Z`;
//! the old messages are deleted a bounded number per entry afterwards.
//!
//! The indexes consumed from the front (timers, ready ids, dedup expiry)
//! are scanned from *floors* kept in the records (see [`scan_start`]).

pub(crate) const GLOBALS: &[u8] = b"G";
pub(crate) const QUEUE: u8 = b'Q';
pub(crate) const UID: u8 = b'U';
pub(crate) const SPACE: u8 = b'S';
pub(crate) const MESSAGE: u8 = b'm';
pub(crate) const CONTENT: u8 = b'b';
pub(crate) const READY: u8 = b'r';
pub(crate) const TIMER: u8 = b't';
pub(crate) const DEDUP: u8 = b'k';
pub(crate) const DEDUP_BY_QUEUE: u8 = b'x';
pub(crate) const DEDUP_BY_EXPIRY: u8 = b'X';
pub(crate) const DOOMED_SPACE: u8 = b'Z';
pub(crate) const DOOMED_DEDUP: u8 = b'Y';
pub(crate) const TOPIC: u8 = b'T';
pub(crate) const TOPIC_UID: u8 = b'V';
pub(crate) const BINDING: u8 = b'B';
pub(crate) const BINDING_BY_QUEUE: u8 = b'P';

/// The tables that grow with the backlog (messages, contents, the ready,
/// timer and dedup indexes), each written at one end of its own key range
/// (new ids, later due times) and consumed at the other. A store may keep
/// each of them apart from the rest (RocksDB: a column family each), so
/// that what one table appends never shares a file's key range with
/// another table's backlog; every other table is small.
pub const GROWING_TABLES: [u8; 7] = [MESSAGE, CONTENT, READY, TIMER, DEDUP, DEDUP_BY_QUEUE, DEDUP_BY_EXPIRY];

/// Builds a key from a table byte and parts.
pub(crate) struct Key(Vec<u8>);

impl Key {
    pub(crate) fn new(table: u8) -> Self {
        let mut key = Vec::with_capacity(32);
        key.push(table);
        Self(key)
    }

    pub(crate) fn u64(mut self, value: u64) -> Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn u8(mut self, value: u8) -> Self {
        self.0.push(value);
        self
    }

    pub(crate) fn bytes(mut self, value: &[u8]) -> Self {
        self.0.extend_from_slice(value);
        self
    }

    pub(crate) fn build(self) -> Vec<u8> {
        self.0
    }
}

/// The first key after every key that starts with `prefix`.
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}

/// The first key after `key` (every longer key that starts with `key`
/// sorts after it, so this is `key` + one zero byte).
pub(crate) fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}

/// Where a scan of the keys under `prefix` starts, given a *floor*: a key
/// that no live key under `prefix` sorts before (empty: none known).
///
/// Why floors: a queue consumes its indexes from the front, and an LSM
/// store (RocksDB) keeps each deleted key as a tombstone until a compaction
/// drops it. A scan from the prefix would step over every key deleted since
/// then — thousands per call under a steady publish/receive/ack load, and
/// more each call. The state keeps a floor per such index, moved past what
/// it consumes and back below any key it inserts lower, so a scan starts at
/// the first key that can be live.
pub(crate) fn scan_start(prefix: &[u8], floor: &[u8]) -> Vec<u8> {
    if floor > prefix { floor.to_vec() } else { prefix.to_vec() }
}

/// Reads big-endian u64s out of a key, after its table byte.
pub(crate) struct Parts<'a> {
    rest: &'a [u8],
}

impl<'a> Parts<'a> {
    pub(crate) fn of(key: &'a [u8]) -> Self {
        Self { rest: &key[1..] }
    }

    pub(crate) fn u64(&mut self) -> u64 {
        let (head, rest) = self.rest.split_at(8);
        self.rest = rest;
        u64::from_be_bytes(head.try_into().expect("8 bytes"))
    }

    pub(crate) fn u8(&mut self) -> u8 {
        let (head, rest) = self.rest.split_at(1);
        self.rest = rest;
        head[0]
    }

    pub(crate) fn rest(self) -> &'a [u8] {
        self.rest
    }
}

pub(crate) fn queue(name: &str) -> Vec<u8> {
    Key::new(QUEUE).bytes(name.as_bytes()).build()
}

pub(crate) fn uid(uid: u64) -> Vec<u8> {
    Key::new(UID).u64(uid).build()
}

pub(crate) fn space(space: u64) -> Vec<u8> {
    Key::new(SPACE).u64(space).build()
}

pub(crate) fn message(space: u64, id: u64) -> Vec<u8> {
    Key::new(MESSAGE).u64(space).u64(id).build()
}

pub(crate) fn content(space: u64, id: u64) -> Vec<u8> {
    Key::new(CONTENT).u64(space).u64(id).build()
}

pub(crate) fn messages_of(space: u64) -> Vec<u8> {
    Key::new(MESSAGE).u64(space).build()
}

pub(crate) fn ready(space: u64, id: u64) -> Vec<u8> {
    Key::new(READY).u64(space).u64(id).build()
}

pub(crate) fn ready_of(space: u64) -> Vec<u8> {
    Key::new(READY).u64(space).build()
}

pub(crate) fn timer(due_ms: u64, space: u64, id: u64, kind: u8) -> Vec<u8> {
    Key::new(TIMER).u64(due_ms).u64(space).u64(id).u8(kind).build()
}

pub(crate) fn dedup(uid: u64, key: &str) -> Vec<u8> {
    Key::new(DEDUP).u64(uid).bytes(key.as_bytes()).build()
}

pub(crate) fn dedup_of(uid: u64) -> Vec<u8> {
    Key::new(DEDUP).u64(uid).build()
}

pub(crate) fn dedup_by_queue(uid: u64, expires_at_ms: u64, key: &str) -> Vec<u8> {
    Key::new(DEDUP_BY_QUEUE).u64(uid).u64(expires_at_ms).bytes(key.as_bytes()).build()
}

pub(crate) fn dedup_by_queue_of(uid: u64) -> Vec<u8> {
    Key::new(DEDUP_BY_QUEUE).u64(uid).build()
}

pub(crate) fn dedup_by_expiry(expires_at_ms: u64, uid: u64, key: &str) -> Vec<u8> {
    Key::new(DEDUP_BY_EXPIRY).u64(expires_at_ms).u64(uid).bytes(key.as_bytes()).build()
}

pub(crate) fn doomed_space(space: u64) -> Vec<u8> {
    Key::new(DOOMED_SPACE).u64(space).build()
}

pub(crate) fn doomed_dedup(uid: u64) -> Vec<u8> {
    Key::new(DOOMED_DEDUP).u64(uid).build()
}

pub(crate) fn topic(name: &str) -> Vec<u8> {
    Key::new(TOPIC).bytes(name.as_bytes()).build()
}

pub(crate) fn topic_uid(uid: u64) -> Vec<u8> {
    Key::new(TOPIC_UID).u64(uid).build()
}

/// Names hold no zero byte (`[A-Za-z0-9._-]`), so the zero after the first
/// name ends it: the keys of one first name form one contiguous range.
pub(crate) fn binding(topic: &str, queue: &str) -> Vec<u8> {
    Key::new(BINDING).bytes(topic.as_bytes()).u8(0).bytes(queue.as_bytes()).build()
}

pub(crate) fn bindings_of(topic: &str) -> Vec<u8> {
    Key::new(BINDING).bytes(topic.as_bytes()).u8(0).build()
}

pub(crate) fn binding_by_queue(queue: &str, topic: &str) -> Vec<u8> {
    Key::new(BINDING_BY_QUEUE).bytes(queue.as_bytes()).u8(0).bytes(topic.as_bytes()).build()
}

pub(crate) fn bindings_by_queue_of(queue: &str) -> Vec<u8> {
    Key::new(BINDING_BY_QUEUE).bytes(queue.as_bytes()).u8(0).build()
}

/// The name after the zero byte of a binding key (`B` or `P`).
pub(crate) fn second_name(key: &[u8]) -> Option<&str> {
    let zero = key.iter().position(|b| *b == 0)?;
    std::str::from_utf8(&key[zero + 1..]).ok()
}

/// Just the table byte: the prefix of a whole table.
pub(crate) fn table(table: u8) -> Vec<u8> {
    vec![table]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_parts_sort_numerically_and_parse_back() {
        assert!(message(1, 255) < message(1, 256));
        assert!(message(1, u64::MAX) < message(2, 0));
        assert!(timer(5, 9, 9, 1) < timer(6, 0, 0, 0));
        let key = timer(7, 8, 9, 1);
        let mut parts = Parts::of(&key);
        assert_eq!((parts.u64(), parts.u64(), parts.u64(), parts.u8()), (7, 8, 9, 1));
        assert_eq!(prefix_end(b"m\x00\xff"), b"m\x01".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0xff; 3]);
        assert!(messages_of(3) < message(3, 0) && message(3, u64::MAX) < prefix_end(&messages_of(3)));
    }
}
