//! Snapshots and the state digest.
//!
//! Format (version 1): `b"RQSS"`, a little-endian `u16` format version, the
//! postcard encoding of the primary state, then the SHA-256 of everything
//! before it. Only primary state is encoded (indexes are rebuilt on
//! restore), and every map is ordered, so equal states encode to equal bytes
//! and the digest — the SHA-256 of that encoding — is equal exactly when the
//! states are.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::message::MessageState;
use crate::queue::Queue;
use crate::state::QueueState;

const MAGIC: &[u8; 4] = b"RQSS";
/// Bumped on any change to the encoded layout; restore refuses other versions.
pub const SNAPSHOT_FORMAT_VERSION: u16 = 1;
const HEADER_BYTES: usize = 6;
const CHECKSUM_BYTES: usize = 32;

/// Why a snapshot could not be restored. The node must not serve from it.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot is too short ({0} bytes)")]
    Truncated(usize),
    #[error("snapshot has no RQSS header")]
    BadMagic,
    #[error("snapshot format version {0} is not supported (this build reads {SNAPSHOT_FORMAT_VERSION})")]
    UnsupportedVersion(u16),
    #[error("snapshot checksum mismatch: the data is corrupt")]
    Checksum,
    #[error("snapshot payload does not decode: {0}")]
    Decode(String),
    #[error("snapshot violates an invariant: {0}")]
    Invariant(String),
}

#[derive(Serialize)]
struct EncodeState<'a> {
    now_ms: u64,
    next_queue_uid: u64,
    next_message_id: u64,
    queues: &'a BTreeMap<String, Queue>,
}

#[derive(Deserialize)]
struct DecodeState {
    now_ms: u64,
    next_queue_uid: u64,
    next_message_id: u64,
    queues: BTreeMap<String, Queue>,
}

impl QueueState {
    fn encode_payload(&self) -> Vec<u8> {
        let state = EncodeState {
            now_ms: self.now_ms,
            next_queue_uid: self.next_queue_uid,
            next_message_id: self.next_message_id,
            queues: &self.queues,
        };
        postcard::to_stdvec(&state).expect("encoding to a Vec cannot fail")
    }

    /// SHA-256 of the canonical encoding: equal iff the states are equal.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.encode_payload()).into()
    }

    /// The digest as lowercase hex, for logs and status output.
    pub fn digest_hex(&self) -> String {
        self.digest().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The whole state as self-checking snapshot bytes.
    pub fn to_snapshot(&self) -> Vec<u8> {
        let payload = self.encode_payload();
        let mut bytes = Vec::with_capacity(HEADER_BYTES + payload.len() + CHECKSUM_BYTES);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&SNAPSHOT_FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&payload);
        let checksum = Sha256::digest(&bytes);
        bytes.extend_from_slice(&checksum);
        bytes
    }

    /// Restores a state from `to_snapshot` bytes, verifying the checksum and
    /// every invariant before returning it.
    pub fn from_snapshot(bytes: &[u8]) -> Result<Self, SnapshotError> {
        if bytes.len() < HEADER_BYTES + CHECKSUM_BYTES {
            return Err(SnapshotError::Truncated(bytes.len()));
        }
        let (body, checksum) = bytes.split_at(bytes.len() - CHECKSUM_BYTES);
        if &body[..4] != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let version = u16::from_le_bytes([body[4], body[5]]);
        if version != SNAPSHOT_FORMAT_VERSION {
            return Err(SnapshotError::UnsupportedVersion(version));
        }
        if Sha256::digest(body).as_slice() != checksum {
            return Err(SnapshotError::Checksum);
        }
        let decoded: DecodeState =
            postcard::from_bytes(&body[HEADER_BYTES..]).map_err(|e| SnapshotError::Decode(e.to_string()))?;
        let mut state = QueueState {
            now_ms: decoded.now_ms,
            next_queue_uid: decoded.next_queue_uid,
            next_message_id: decoded.next_message_id,
            queues: decoded.queues,
            ..QueueState::default()
        };
        state.check_primary().map_err(SnapshotError::Invariant)?;
        state.rebuild_indexes();
        Ok(state)
    }

    fn rebuild_indexes(&mut self) {
        self.names_by_uid.clear();
        self.timers.clear();
        self.dedup_heads.clear();
        self.dedup_keys = 0;
        for (name, queue) in &mut self.queues {
            queue.reindex();
            self.names_by_uid.insert(queue.uid, name.clone());
            self.timers.extend(queue.timers());
            self.dedup_keys += queue.dedup.len();
            if let Some(first) = queue.dedup_first_expiry() {
                self.dedup_heads.insert((first, queue.uid));
            }
        }
    }

    /// Checks the primary state for facts that, if broken, would make this
    /// replica diverge or crash later. Used on restore and in tests.
    fn check_primary(&self) -> Result<(), String> {
        let mut uids = std::collections::BTreeSet::new();
        for (name, queue) in &self.queues {
            if &queue.name != name {
                return Err(format!("queue {name:?} stored as {:?}", queue.name));
            }
            if queue.uid == 0 || queue.uid >= self.next_queue_uid || !uids.insert(queue.uid) {
                return Err(format!("queue {name:?} has a bad uid {}", queue.uid));
            }
            queue.config.validate().map_err(|e| format!("queue {name:?} config: {e}"))?;
            for (id, message) in &queue.messages {
                if *id != message.id || *id == 0 || *id >= self.next_message_id {
                    return Err(format!("queue {name:?}: message {id} has a bad id"));
                }
                if message.redrive_base > message.delivery_count {
                    return Err(format!("queue {name:?}: message {id} redrive base above delivery count"));
                }
                if let MessageState::Leased { attempt, .. } = message.state
                    && attempt != message.delivery_count
                {
                    return Err(format!("queue {name:?}: message {id} leased under a stale attempt"));
                }
            }
        }
        Ok(())
    }

    /// Checks every invariant, derived indexes included: they must equal a
    /// rebuild from primary state. For tests and debug checks.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_primary()?;
        let mut rebuilt = self.clone();
        rebuilt.rebuild_indexes();
        if rebuilt.timers != self.timers {
            return Err("timer index differs from a rebuild".into());
        }
        if rebuilt.names_by_uid != self.names_by_uid {
            return Err("uid index differs from a rebuild".into());
        }
        if rebuilt.dedup_keys != self.dedup_keys || rebuilt.dedup_heads != self.dedup_heads {
            return Err("cluster-wide dedup index differs from a rebuild".into());
        }
        if self.dedup_keys > self.dedup_caps.total
            || self.queues.values().any(|queue| queue.dedup.len() > self.dedup_caps.per_queue)
        {
            return Err("more idempotency keys remembered than the dedup bounds allow".into());
        }
        for (name, queue) in &self.queues {
            let fresh = &rebuilt.queues[name];
            let same = fresh.ready == queue.ready
                && fresh.dead == queue.dead
                && fresh.leased == queue.leased
                && fresh.delayed == queue.delayed
                && fresh.total_bytes == queue.total_bytes
                && fresh.dedup_expiry == queue.dedup_expiry;
            if !same {
                return Err(format!("queue {name:?}: an index differs from a rebuild"));
            }
        }
        Ok(())
    }
}
