//! The on-disk record frame, shared by the RocksDB store and the in-memory
//! twin so both detect the same damage the same way.
//!
//! A record is `format version (u16 LE) | payload length (u64 LE) |
//! crc32c(payload) (u32 LE) | payload`, where the payload is the postcard
//! encoding of the value (a log entry, the vote, a snapshot, ...). The
//! length makes a torn record visible even before its checksum is checked;
//! the checksum catches flipped bits. A record that fails either is never
//! decoded, let alone served.

use std::io;
use std::ops::{Bound, RangeBounds};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::corrupt;
use crate::types::Entry;

/// Metadata keys, the same in both stores.
pub(crate) const META_VOTE: &str = "vote";
pub(crate) const META_LAST_PURGED: &str = "last_purged";
pub(crate) const META_COMMITTED: &str = "committed";

/// Bumped on any change to the frame layout.
pub(crate) const RECORD_FORMAT_VERSION: u16 = 1;
const HEADER_BYTES: usize = 2 + 8 + 4;

/// Why a stored record cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("is truncated ({len} bytes, shorter than a record header)")]
    Truncated { len: usize },
    #[error("is torn (header says {declared} payload bytes, {actual} present)")]
    Torn { declared: u64, actual: usize },
    #[error("checksum mismatch")]
    Checksum,
    #[error("has unknown record format version {0} (this build reads {RECORD_FORMAT_VERSION})")]
    UnknownVersion(u16),
    #[error("does not decode: {0}")]
    Decode(String),
}

/// Frames `value`'s postcard encoding.
///
/// Sized first and encoded in place: a log entry can carry megabytes, and
/// growing a `Vec` by doubling (then copying into the frame) showed in
/// profiles as page faults and `memmove`.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let size = postcard::experimental::serialized_size(value).expect("postcard sizing cannot fail");
    let mut record = Vec::with_capacity(HEADER_BYTES + size);
    record.resize(HEADER_BYTES, 0);
    let mut record = postcard::to_extend(value, record).expect("postcard encoding into a Vec cannot fail");
    let payload_len = (record.len() - HEADER_BYTES) as u64;
    let crc = crc32c::crc32c(&record[HEADER_BYTES..]);
    record[..2].copy_from_slice(&RECORD_FORMAT_VERSION.to_le_bytes());
    record[2..10].copy_from_slice(&payload_len.to_le_bytes());
    record[10..HEADER_BYTES].copy_from_slice(&crc.to_le_bytes());
    record
}

/// Checks the frame and decodes the value inside it.
pub(crate) fn decode<T: DeserializeOwned>(record: &[u8]) -> Result<T, RecordError> {
    let payload = unframe(record)?;
    postcard::from_bytes(payload).map_err(|e| RecordError::Decode(e.to_string()))
}

fn unframe(record: &[u8]) -> Result<&[u8], RecordError> {
    let Some((header, payload)) = record.split_at_checked(HEADER_BYTES) else {
        return Err(RecordError::Truncated { len: record.len() });
    };
    let (version, rest) = header.split_at(2);
    let (declared, crc) = rest.split_at(8);
    let version = u16::from_le_bytes(version.try_into().expect("2 bytes"));
    let declared = u64::from_le_bytes(declared.try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(crc.try_into().expect("4 bytes"));
    // Length before version: a torn record's garbage must read as torn.
    if declared != payload.len() as u64 {
        return Err(RecordError::Torn { declared, actual: payload.len() });
    }
    if crc32c::crc32c(payload) != crc {
        return Err(RecordError::Checksum);
    }
    if version != RECORD_FORMAT_VERSION {
        return Err(RecordError::UnknownVersion(version));
    }
    Ok(payload)
}

/// Decodes log record `index`, checking its frame and that it holds the
/// entry for that index; damage is an `InvalidData` error naming both.
pub(crate) fn decode_entry(index: u64, record: &[u8], origin: &str) -> io::Result<Entry> {
    let entry: Entry = decode(record).map_err(|e| corrupt(format_args!("log entry {index}"), origin, e))?;
    if entry.log_id.index != index {
        let msg = format!("log entry {index} in {origin} holds the entry for index {}", entry.log_id.index);
        return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
    }
    Ok(entry)
}

/// `[start, end)` of a range of log indexes; `end` is `None` when unbounded.
pub(crate) fn index_range(range: &impl RangeBounds<u64>) -> (u64, Option<u64>) {
    let start = match range.start_bound() {
        Bound::Included(&i) => i,
        Bound::Excluded(&i) => i.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&i) => i.checked_add(1),
        Bound::Excluded(&i) => Some(i),
        Bound::Unbounded => None,
    };
    (start, end)
}

/// A log index as a key that sorts in index order (big-endian).
pub(crate) fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// The index a log key names; `None` for a key that is not 8 bytes.
pub(crate) fn key_index(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let record = encode(&("raftq", 7u64));
        assert_eq!(decode::<(String, u64)>(&record), Ok(("raftq".to_string(), 7)));
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let record = encode(&vec![1u8, 2, 3, 4, 5, 6, 7, 8]);
        for byte in 0..record.len() {
            for bit in 0..8 {
                let mut bad = record.clone();
                bad[byte] ^= 1 << bit;
                assert!(decode::<Vec<u8>>(&bad).is_err(), "flip of byte {byte} bit {bit} undetected");
            }
        }
    }

    #[test]
    fn truncation_is_torn_or_truncated() {
        let record = encode(&"hello, queue".to_string());
        for len in 0..record.len() {
            let err = decode::<String>(&record[..len]).unwrap_err();
            assert!(matches!(err, RecordError::Truncated { .. } | RecordError::Torn { .. }), "{len}: {err}");
        }
    }

    #[test]
    fn keys_sort_by_index() {
        assert!(index_key(255) < index_key(256));
        assert_eq!(key_index(&index_key(u64::MAX)), Some(u64::MAX));
        assert_eq!(key_index(b"short"), None);
    }
}
