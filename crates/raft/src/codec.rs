//! Encoding of openraft messages inside the transport's `RaftPayload`.
//!
//! The payload is postcard over openraft's serde types, tagged with a format
//! version so that a rolling upgrade can tell encodings apart. A node that
//! cannot decode a payload answers INVALID_ARGUMENT and changes nothing.

use bytes::Bytes;
use raftq_proto::v1::RaftPayload;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The encoding of every `RaftPayload` this build writes and reads.
pub const RAFT_PAYLOAD_FORMAT_VERSION: u32 = 1;

/// Why a payload could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("raft payload format version {0} is not supported (this build speaks {RAFT_PAYLOAD_FORMAT_VERSION})")]
    Version(u32),
    #[error("raft payload does not decode: {0}")]
    Decode(#[from] postcard::Error),
}

/// Sized first, so a megabyte AppendEntries is written into one allocation
/// instead of a doubling `Vec` (which profiles showed as page faults and
/// `memmove` on the leader, once per follower).
pub fn encode<T: Serialize>(message: &T) -> RaftPayload {
    let size = postcard::experimental::serialized_size(message).expect("openraft messages always encode");
    let data = postcard::to_extend(message, Vec::with_capacity(size)).expect("openraft messages always encode");
    RaftPayload { format_version: RAFT_PAYLOAD_FORMAT_VERSION, data: Bytes::from(data) }
}

pub fn decode<T: DeserializeOwned>(payload: &RaftPayload) -> Result<T, CodecError> {
    if payload.format_version != RAFT_PAYLOAD_FORMAT_VERSION {
        return Err(CodecError::Version(payload.format_version));
    }
    Ok(postcard::from_bytes(&payload.data)?)
}
