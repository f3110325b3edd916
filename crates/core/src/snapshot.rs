//! [`QueueState`] snapshots: every stored pair, self-checking.
//!
//! Format (version 3): `b"RQSS"`, a little-endian `u16` format version, the
//! postcard encoding of every pair in key order, then the SHA-256 of
//! everything before it. Restore checks the checksum and every invariant
//! (the digest included) before returning the state. Hosts with their own
//! store move their pairs the same way, in chunks (see `raftq-storage`).

use sha2::{Digest, Sha256};

use crate::kv::MemKv;
use crate::state::QueueState;

const MAGIC: &[u8; 4] = b"RQSS";
/// Bumped on any change to the encoded layout, the key layout or a record's
/// encoding (3: scan floors in the records); restore
/// refuses other versions.
pub const SNAPSHOT_FORMAT_VERSION: u16 = 3;
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

impl QueueState {
    /// The whole state as self-checking snapshot bytes.
    pub fn to_snapshot(&self) -> Vec<u8> {
        let pairs: Vec<(&Vec<u8>, &Vec<u8>)> = self.kv.iter().collect();
        let payload = postcard::to_stdvec(&pairs).expect("encoding to a Vec cannot fail");
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
        let pairs: Vec<(Vec<u8>, Vec<u8>)> =
            postcard::from_bytes(&body[HEADER_BYTES..]).map_err(|e| SnapshotError::Decode(e.to_string()))?;
        let mut kv = MemKv::new();
        for (key, value) in pairs {
            kv.insert(key, value);
        }
        let state = QueueState { kv, ..QueueState::default() };
        state.check_invariants().map_err(SnapshotError::Invariant)?;
        Ok(state)
    }
}
