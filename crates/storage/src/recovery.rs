//! The log check both stores run when they open.
//!
//! ## The torn-tail rule
//!
//! Records are checked newest first. The newest record may fail its frame
//! (torn, truncated or checksum mismatch) because the process died while
//! writing it: that write was never synced, so its append was never
//! acknowledged, and the record is treated as never written (it is dropped
//! and the node starts without it). Any other failure is corruption and the
//! store refuses to open:
//! - a failing record that is not the newest (a synced write was damaged);
//! - a failing newest record at or below the persisted committed index (it
//!   was synced before `committed` was saved, so it is damage, not a tear);
//! - a record whose frame is intact but whose version or encoding is not
//!   understood (a tear cannot produce a valid checksum);
//! - a hole in the indexes or a record stored under the wrong index.

use serde::de::DeserializeOwned;

use crate::codec::{self, META_COMMITTED, META_LAST_PURGED, META_VOTE, RecordError};
use crate::error::OpenError;
use crate::types::{Entry, LogId, Vote};

/// How many of the newest log records `open` checks. The log is purged
/// behind every snapshot, so in practice this covers all of it; records
/// older than this are still checked on every read.
pub(crate) const VERIFY_ON_OPEN_RECORDS_MAX: u64 = 100_000;

/// The log store's metadata, checked at open.
#[derive(Debug, Default)]
pub(crate) struct Meta {
    pub(crate) last_purged: Option<LogId>,
    pub(crate) committed: Option<LogId>,
}

/// Reads and checks every metadata record through `get` (key → record).
pub(crate) fn check_meta(
    origin: &str,
    mut get: impl FnMut(&'static str) -> Result<Option<Vec<u8>>, OpenError>,
) -> Result<Meta, OpenError> {
    fn decode<T: DeserializeOwned>(
        record: Option<Vec<u8>>,
        what: &'static str,
        origin: &str,
    ) -> Result<Option<T>, OpenError> {
        let decoded = record.map(|bytes| codec::decode::<T>(&bytes)).transpose();
        decoded.map_err(|source| OpenError::CorruptMeta { what, origin: origin.to_string(), source })
    }
    decode::<Vote>(get(META_VOTE)?, "vote", origin)?;
    let last_purged = decode::<LogId>(get(META_LAST_PURGED)?, "last purged log id", origin)?;
    let committed = decode::<Option<LogId>>(get(META_COMMITTED)?, "committed log id", origin)?.flatten();
    Ok(Meta { last_purged, committed })
}

/// Checks log records given newest first; returns the index of a torn last
/// record the store must drop.
pub(crate) fn check_log<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    origin: &str,
    meta: &Meta,
    newest_first: impl Iterator<Item = Result<(K, V), OpenError>>,
) -> Result<Option<u64>, OpenError> {
    let mut check = TailCheck::new(origin, meta.committed.map(|c| c.index));
    let mut complete = true;
    for item in newest_first {
        let (key, value) = item?;
        if !check.visit(key.as_ref(), value.as_ref())? {
            complete = false;
            break;
        }
    }
    if complete {
        check.check_start(meta.last_purged.map(|p| p.index))?;
    }
    Ok(check.torn_tail())
}

/// Walks log records newest first and applies the torn-tail rule.
#[derive(Debug)]
struct TailCheck<'a> {
    origin: &'a str,
    /// Index of the persisted committed log id, if any.
    committed_index: Option<u64>,
    /// The index the next (older) record must have: the log has no holes.
    expected: Option<u64>,
    /// Records visited so far.
    seen: u64,
    /// The newest record, if it is torn and must be dropped.
    torn_tail: Option<u64>,
}

impl<'a> TailCheck<'a> {
    fn new(origin: &'a str, committed_index: Option<u64>) -> Self {
        Self { origin, committed_index, expected: None, seen: 0, torn_tail: None }
    }

    /// Checks one record, newest first. Returns whether to keep going.
    fn visit(&mut self, key: &[u8], record: &[u8]) -> Result<bool, OpenError> {
        let origin = || self.origin.to_string();
        let index =
            codec::key_index(key).ok_or_else(|| OpenError::BadLogKey { key: key.to_vec(), origin: origin() })?;
        if let Some(expected) = self.expected
            && index != expected
        {
            return Err(OpenError::LogHole { missing: expected, above: expected + 1, origin: origin() });
        }
        match codec::decode::<Entry>(record) {
            Ok(entry) if entry.log_id.index == index => {}
            Ok(entry) => return Err(OpenError::MisplacedLog { index, found: entry.log_id.index, origin: origin() }),
            Err(err) if self.is_torn_tail(index, &err) => {
                tracing::warn!(
                    index,
                    origin = self.origin,
                    "dropping torn last log record ({err}): it was never synced"
                );
                self.torn_tail = Some(index);
            }
            Err(source) => return Err(OpenError::CorruptLog { index, origin: origin(), source }),
        }
        self.seen += 1;
        self.expected = index.checked_sub(1);
        Ok(self.seen < VERIFY_ON_OPEN_RECORDS_MAX)
    }

    fn is_torn_tail(&self, index: u64, err: &RecordError) -> bool {
        let tear = matches!(err, RecordError::Truncated { .. } | RecordError::Torn { .. } | RecordError::Checksum);
        let newest = self.seen == 0;
        let uncommitted = self.committed_index.is_none_or(|committed| index > committed);
        tear && newest && uncommitted
    }

    /// After every record was visited: the oldest must directly follow the
    /// purge mark, since purging deletes exactly the entries up to it.
    fn check_start(&self, last_purged_index: Option<u64>) -> Result<(), OpenError> {
        let Some(purged) = last_purged_index else { return Ok(()) };
        if self.seen == 0 {
            return Ok(());
        }
        let first = self.expected.map_or(0, |below| below + 1);
        if first != purged.saturating_add(1) {
            return Err(OpenError::LogStart { first, purged, origin: self.origin.to_string() });
        }
        Ok(())
    }

    /// The index of a torn newest record the store must drop, if any.
    fn torn_tail(&self) -> Option<u64> {
        self.torn_tail
    }
}

#[cfg(test)]
mod tests {
    use openraft::testing::blank_ent;

    use super::*;
    use crate::types::TypeConfig;

    fn record(index: u64) -> (Vec<u8>, Vec<u8>) {
        let entry: Entry = blank_ent::<TypeConfig>(1, 1, index);
        (codec::index_key(index).to_vec(), codec::encode(&entry))
    }

    /// Runs the check over records 1..=n (newest first) after `damage`.
    fn check(n: u64, committed: Option<u64>, damage: impl Fn(u64, &mut Vec<u8>)) -> Result<Option<u64>, OpenError> {
        let mut tail = TailCheck::new("test", committed);
        for index in (1..=n).rev() {
            let (key, mut value) = record(index);
            damage(index, &mut value);
            tail.visit(&key, &value)?;
        }
        Ok(tail.torn_tail())
    }

    #[test]
    fn clean_log_passes() {
        assert_eq!(check(5, Some(5), |_, _| {}).unwrap(), None);
    }

    #[test]
    fn torn_newest_record_is_dropped() {
        let torn = check(5, Some(3), |i, v| {
            if i == 5 {
                v.truncate(v.len() / 2)
            }
        });
        assert_eq!(torn.unwrap(), Some(5));
    }

    #[test]
    fn torn_committed_record_is_corruption() {
        let err = check(5, Some(5), |i, v| {
            if i == 5 {
                v.truncate(v.len() - 1)
            }
        })
        .unwrap_err();
        assert!(matches!(err, OpenError::CorruptLog { index: 5, .. }), "{err}");
    }

    #[test]
    fn damaged_middle_record_is_corruption() {
        let err = check(5, None, |i, v| {
            if i == 3 {
                let last = v.len() - 1;
                v[last] ^= 0x10;
            }
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "log entry 3 checksum mismatch in test: refusing to start");
    }

    #[test]
    fn hole_is_corruption() {
        let mut tail = TailCheck::new("test", None);
        let (k5, v5) = record(5);
        let (k3, v3) = record(3);
        tail.visit(&k5, &v5).unwrap();
        let err = tail.visit(&k3, &v3).unwrap_err();
        assert!(matches!(err, OpenError::LogHole { missing: 4, .. }), "{err}");
    }

    #[test]
    fn log_must_start_after_the_purge_mark() {
        let mut tail = TailCheck::new("test", None);
        for index in (4..=5).rev() {
            let (key, value) = record(index);
            tail.visit(&key, &value).unwrap();
        }
        tail.check_start(Some(3)).unwrap();
        let err = tail.check_start(Some(1)).unwrap_err();
        assert!(matches!(err, OpenError::LogStart { first: 4, purged: 1, .. }), "{err}");
    }

    #[test]
    fn misplaced_record_is_corruption() {
        let mut tail = TailCheck::new("test", None);
        let (_, v5) = record(5);
        let err = tail.visit(&codec::index_key(6), &v5).unwrap_err();
        assert!(matches!(err, OpenError::MisplacedLog { index: 6, found: 5, .. }), "{err}");
    }
}
