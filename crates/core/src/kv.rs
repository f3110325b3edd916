//! The ordered key-value interface the state lives in, and a transaction
//! over it.
//!
//! The core keeps every fact of the queue state as a key-value pair (the key
//! layout is in `keys`). It reads through [`KvRead`] and writes through a
//! [`Txn`]: an overlay of puts and deletes over a read view that sees its own
//! writes. [`Txn::finish`] turns the overlay into a [`WriteSet`] the host
//! writes as one atomic batch (RocksDB `WriteBatch`, or the simulation's
//! in-memory disk), together with whatever the host keeps beside the state
//! (the applied log id): state and applied index cannot disagree.
//!
//! ## The digest
//! Every write set also updates the state digest: the wrapping sum, over
//! every stored pair, of the first 16 bytes of SHA-256(key length ‖ key ‖
//! value). A sum is order-free, so it is kept exact by adding the new pairs
//! and subtracting the old ones a write replaces: comparing replicas never
//! scans the backlog. [`full_digest`] recomputes it by a scan, for verify.
//!
//! Keys starting with [`HOST_PREFIX`] belong to the host (applied log id,
//! membership): never read by the core, never part of the digest.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::ops::Bound;
use std::sync::Mutex;

use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};

/// Keys that start with this byte are the host's, not the state's.
pub const HOST_PREFIX: u8 = 0xff;

/// The key under which the digest of the state is stored.
pub(crate) const DIGEST_KEY: &[u8] = b"#digest";

/// A read or write of the underlying store failed (I/O error, checksum
/// mismatch). Never a replicated answer: the host must stop applying.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("state store failed: {0}")]
pub struct StoreFault(pub String);

/// Which way a scan walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Reverse,
}

/// Read access to an ordered key-value store: a consistent view.
pub trait KvRead: Send + Sync {
    /// The value stored under `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreFault>;

    /// Visits the pairs with `start <= key < end` in key order (or reverse),
    /// until `visit` returns false.
    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        direction: Direction,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreFault>;
}

/// Puts (`Some`) and deletes (`None`), in key order.
pub type Overlay = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// The keys `start <= key < end`, as `(start, end)`.
pub type KeyRange = (Vec<u8>, Vec<u8>);

/// What a transaction writes, as one atomic batch: puts and deletes, in
/// key order, and the *cleared* ranges among them.
///
/// A cleared range `[start, end)` is one of which this write set writes
/// every key the store holds before it (most of them deleted: the heads,
/// contents and lease timers of a run of consecutive message ids an ack
/// removes, the ready keys a receive takes). Its pairs stay in the write
/// set, so a store may ignore the ranges; RocksDB deletes each range whole
/// first (one range deletion) and skips the deletes inside it, where a
/// tombstone per key cost a memtable insert on every node (deletes were
/// seven tenths of the state's writes in a drain). The puts are written
/// after the ranges, so a key put inside one survives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteSet {
    pairs: Overlay,
    cleared: Vec<KeyRange>,
}

impl WriteSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put (`Some`) or a delete (`None`) of `key`.
    pub fn insert(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.pairs.insert(key, value);
    }

    /// Claims `[start, end)` as a cleared range: this write set writes
    /// every key the store holds in it (see [`Txn::clear_range`]).
    pub fn clear(&mut self, start: Vec<u8>, end: Vec<u8>) {
        if start < end {
            self.cleared.push((start, end));
        }
    }

    /// The puts and deletes, in key order.
    pub fn pairs(&self) -> &Overlay {
        &self.pairs
    }

    /// The cleared ranges, in no particular order (they may overlap).
    pub fn cleared(&self) -> &[KeyRange] {
        &self.cleared
    }

    /// The pairs and the cleared ranges.
    pub fn into_parts(self) -> (Overlay, Vec<KeyRange>) {
        (self.pairs, self.cleared)
    }
}

impl<const N: usize> From<[(Vec<u8>, Option<Vec<u8>>); N]> for WriteSet {
    fn from(pairs: [(Vec<u8>, Option<Vec<u8>>); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl FromIterator<(Vec<u8>, Option<Vec<u8>>)> for WriteSet {
    fn from_iter<I: IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>>(iter: I) -> Self {
        Self { pairs: iter.into_iter().collect(), cleared: Vec::new() }
    }
}

/// Whether `key` lies in one of `ranges`, which are sorted by start and
/// disjoint, for keys asked in ascending order: `next` is where the last
/// call stopped.
pub fn in_ranges(ranges: &[KeyRange], next: &mut usize, key: &[u8]) -> bool {
    while ranges.get(*next).is_some_and(|(_, end)| end.as_slice() <= key) {
        *next += 1;
    }
    ranges.get(*next).is_some_and(|(start, _)| start.as_slice() <= key)
}

/// `ranges` sorted by start, overlapping and touching ones merged.
pub fn merged_ranges(mut ranges: Vec<KeyRange>) -> Vec<KeyRange> {
    ranges.retain(|(start, end)| start < end);
    ranges.sort();
    let mut merged: Vec<KeyRange> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match merged.last_mut() {
            Some((_, last_end)) if start <= *last_end => {
                if end > *last_end {
                    *last_end = end;
                }
            }
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// Key-value pairs, in key order.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// An in-memory store: the whole state in a `BTreeMap`. Used by tests, by
/// [`crate::QueueState`], and by the simulation's storage twin.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemKv {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl MemKv {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes a write set. Its cleared ranges are checked, not trusted: a
    /// key this store holds inside one that the write set does not write
    /// panics (a store that deletes the range whole would lose it). Only
    /// tests, tools and the simulation keep their state here, so a wrong
    /// claim of the core fails them rather than a node.
    pub fn write(&mut self, writes: WriteSet) {
        let (pairs, cleared) = writes.into_parts();
        for (start, end) in &cleared {
            if start >= end {
                continue;
            }
            for key in self.map.range::<[u8], _>(bounds(start, end)).map(|(key, _)| key) {
                assert!(
                    pairs.contains_key(key),
                    "cleared range {start:?}..{end:?} holds {key:?}, which the write set does not write"
                );
            }
        }
        for (key, value) in pairs {
            match value {
                Some(value) => self.map.insert(key, value),
                None => self.map.remove(&key),
            };
        }
    }

    /// Every pair, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &Vec<u8>)> {
        self.map.iter()
    }

    /// Number of stored pairs.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Stores `value` under `key` directly (restores, tests).
    pub fn insert(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.map.insert(key, value);
    }

    /// Removes every pair whose key starts with `prefix`.
    pub fn remove_prefix(&mut self, prefix: &[u8]) {
        let doomed: Vec<Vec<u8>> = self
            .map
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for key in doomed {
            self.map.remove(&key);
        }
    }
}

fn bounds<'a>(start: &'a [u8], end: &'a [u8]) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
    (Bound::Included(start), Bound::Excluded(end))
}

impl KvRead for MemKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreFault> {
        Ok(self.map.get(key).cloned())
    }

    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        direction: Direction,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreFault> {
        if start >= end {
            return Ok(());
        }
        let range = self.map.range::<[u8], _>(bounds(start, end));
        match direction {
            Direction::Forward => {
                for (k, v) in range {
                    if !visit(k, v) {
                        break;
                    }
                }
            }
            Direction::Reverse => {
                for (k, v) in range.rev() {
                    if !visit(k, v) {
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Writes over a read view: reads see the writes made so far.
///
/// [`Txn::finish`] needs the old value of every key written, to keep the
/// digest exact. Two things keep that from costing a store lookup per key:
/// keys written with [`Txn::put_new`] are known to be absent from the base
/// (a fresh message id is in them), and values already read from the base
/// in this transaction are remembered. Without them a publish looked up
/// two keys it had just invented, and each miss walked every level of the
/// store's tree.
pub struct Txn<'a> {
    base: &'a dyn KvRead,
    writes: Overlay,
    /// Ranges every base key of which this transaction writes (see
    /// [`WriteSet`]).
    cleared: Vec<KeyRange>,
    /// Keys put with [`Txn::put_new`], with the digest share of the value
    /// put when the caller computed it ([`Txn::put_new_hashed`]).
    fresh: FxHashMap<Vec<u8>, Option<u128>>,
    seen: Mutex<FxHashMap<Vec<u8>, Option<Vec<u8>>>>,
    /// Keys whose base value is known only by its digest share.
    hashed: FxHashMap<Vec<u8>, u128>,
}

impl std::fmt::Debug for Txn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Txn").field("writes", &self.writes.len()).finish()
    }
}

impl<'a> Txn<'a> {
    pub fn new(base: &'a dyn KvRead) -> Self {
        Self {
            base,
            writes: Overlay::new(),
            cleared: Vec::new(),
            fresh: FxHashMap::default(),
            seen: Mutex::new(FxHashMap::default()),
            hashed: FxHashMap::default(),
        }
    }

    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        if let Some(known) = self.fresh.get_mut(&key) {
            // A new value: the hash given with the first is stale.
            *known = None;
        }
        self.writes.insert(key, Some(value));
    }

    /// Puts a key the state does not hold now: one that names a message id
    /// taken in this transaction, or an index key its record says is absent.
    /// `finish` then skips looking up its old value (unless the key was
    /// deleted earlier in this transaction: then the base may hold it). A
    /// key the state does hold would leave the digest wrong, which the
    /// full-scan check of the property tests finds.
    pub fn put_new(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.put_fresh(key, value, None);
    }

    /// [`Txn::put_new`] of a value whose digest share ([`pair_hash`]) the
    /// caller has computed already (a message's content, whose share its
    /// head keeps): `finish` does not hash it again. A wrong hash leaves
    /// the digest wrong, which the full-scan check finds.
    pub(crate) fn put_new_hashed(&mut self, key: Vec<u8>, value: Vec<u8>, hash: u128) {
        self.put_fresh(key, value, Some(hash));
    }

    fn put_fresh(&mut self, key: Vec<u8>, value: Vec<u8>, hash: Option<u128>) {
        match self.writes.entry(key) {
            Entry::Vacant(entry) => {
                self.fresh.insert(entry.key().clone(), hash);
                entry.insert(Some(value));
            }
            Entry::Occupied(mut entry) => {
                if let Some(known) = self.fresh.get_mut(entry.key()) {
                    // Written twice in this transaction: the first hash is stale.
                    *known = None;
                }
                entry.insert(Some(value));
            }
        }
    }

    /// Tells the transaction that the state holds `value` under `key` now,
    /// as the caller knows without reading it: an index key (empty value)
    /// that its record says exists, or a pair it got from a scan. `finish`
    /// then skips looking up the old value. Like [`Txn::put_new`], a wrong
    /// claim leaves the digest wrong, which the full-scan check of the
    /// property tests finds.
    pub fn known(&mut self, key: &[u8], value: Vec<u8>) {
        if self.writes.contains_key(key) {
            // Written in this transaction: `value` is not the base's.
            return;
        }
        let seen = self.seen.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
        seen.entry(key.to_vec()).or_insert(Some(value));
    }

    /// Deletes a key the state holds with `old` (see [`Txn::known`]).
    pub fn delete_known(&mut self, key: Vec<u8>, old: Vec<u8>) {
        // One search of the overlay for both: whether this transaction
        // wrote the key (then `old` is not the base's), and the delete.
        match self.writes.entry(key) {
            Entry::Vacant(entry) => {
                let seen = self.seen.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
                seen.entry(entry.key().clone()).or_insert(Some(old));
                entry.insert(None);
            }
            Entry::Occupied(mut entry) => {
                entry.insert(None);
            }
        }
    }

    /// Deletes a key the state holds with a value whose digest share
    /// ([`pair_hash`]) is `hash`, without reading the value: a message's
    /// content, whose share its head keeps. A wrong hash leaves the digest
    /// wrong, which the full-scan check finds.
    pub(crate) fn delete_hashed(&mut self, key: Vec<u8>, hash: u128) {
        match self.writes.entry(key) {
            Entry::Vacant(entry) => {
                self.hashed.insert(entry.key().clone(), hash);
                entry.insert(None);
            }
            Entry::Occupied(mut entry) => {
                entry.insert(None);
            }
        }
    }

    /// The base's value under `key`, remembered for `finish`.
    fn base_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreFault> {
        let mut seen = self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(value) = seen.get(key) {
            return Ok(value.clone());
        }
        let value = self.base.get(key)?;
        seen.insert(key.to_vec(), value.clone());
        Ok(value)
    }

    /// Reads the base's pairs in `[start, end)` in one scan, so that the
    /// [`KvRead::get`]s that follow find them without a point read each;
    /// it stops after `limit` pairs or once their values reach `bytes_max`
    /// (the rest are read one by one when asked for). Changes nothing a
    /// read returns: only how the base is read. A scan of keys that sit
    /// next to each other (the heads of neighbouring message ids) reads
    /// each block of the store once, where point reads searched the
    /// store's levels for every key.
    pub fn prefetch(&self, start: &[u8], end: &[u8], limit: usize, bytes_max: usize) -> Result<(), StoreFault> {
        if limit == 0 {
            return Ok(());
        }
        let mut seen = self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (mut left, mut bytes) = (limit, 0usize);
        self.base.scan(start, end, Direction::Forward, &mut |key, value| {
            seen.entry(key.to_vec()).or_insert_with(|| Some(value.to_vec()));
            left -= 1;
            bytes += value.len();
            left > 0 && bytes < bytes_max
        })
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// Tells the transaction that, by the time it finishes, it writes (puts
    /// or deletes) every key the base holds in `[start, end)`: a store may
    /// then delete the range whole (see [`WriteSet`]). The deletes stay
    /// pairs of their own, for reads in this transaction and the digest. A
    /// wrong claim would lose a pair in a store that deletes ranges;
    /// [`MemKv::write`] checks every claim, so the tests that run the core
    /// over it (and the simulation) find one.
    pub(crate) fn clear_range(&mut self, start: Vec<u8>, end: Vec<u8>) {
        if start < end {
            self.cleared.push((start, end));
        }
    }

    /// Keys written so far (a host may commit early when this grows).
    pub fn pending(&self) -> usize {
        self.writes.len()
    }

    /// The writes, with the digest updated for them. The caller writes the
    /// result as one batch; host keys ([`HOST_PREFIX`]) it adds are outside
    /// the digest.
    pub fn finish(self) -> Result<WriteSet, StoreFault> {
        let Self { base, mut writes, cleared, fresh, seen, hashed } = self;
        let mut seen = seen.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
        writes.remove(DIGEST_KEY);
        let mut digest = read_digest(base)?;
        for (key, value) in &writes {
            if key.first() == Some(&HOST_PREFIX) {
                continue;
            }
            let fresh = fresh.get(key);
            let old = if fresh.is_some() {
                None
            } else if let Some(hash) = hashed.get(key) {
                Some(*hash)
            } else {
                let old = match seen.remove(key) {
                    Some(old) => old,
                    None => base.get(key)?,
                };
                old.map(|old| pair_hash(key, &old))
            };
            if let Some(old) = old {
                digest = digest.wrapping_sub(old);
            }
            if let Some(new) = value {
                let hash = match fresh {
                    Some(Some(hash)) => *hash,
                    _ => pair_hash(key, new),
                };
                digest = digest.wrapping_add(hash);
            }
        }
        writes.insert(DIGEST_KEY.to_vec(), Some(digest.to_be_bytes().to_vec()));
        Ok(WriteSet { pairs: writes, cleared })
    }
}

impl KvRead for Txn<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreFault> {
        match self.writes.get(key) {
            Some(value) => Ok(value.clone()),
            None => self.base_get(key),
        }
    }

    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        direction: Direction,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreFault> {
        if start >= end {
            return Ok(());
        }
        // Merge the base's pairs with the overlay's, the overlay winning on
        // equal keys and hiding deleted ones.
        let overlay: Vec<(&Vec<u8>, &Option<Vec<u8>>)> = match direction {
            Direction::Forward => self.writes.range::<[u8], _>(bounds(start, end)).collect(),
            Direction::Reverse => self.writes.range::<[u8], _>(bounds(start, end)).rev().collect(),
        };
        let before = |a: &[u8], b: &[u8]| match direction {
            Direction::Forward => a < b,
            Direction::Reverse => a > b,
        };
        let mut next = 0;
        let mut stopped = false;
        self.base.scan(start, end, direction, &mut |key, value| {
            while let Some((okey, ovalue)) = overlay.get(next) {
                if !before(okey, key) {
                    break;
                }
                next += 1;
                if let Some(ovalue) = ovalue
                    && !visit(okey, ovalue)
                {
                    stopped = true;
                    return false;
                }
            }
            if let Some((okey, ovalue)) = overlay.get(next)
                && okey.as_slice() == key
            {
                next += 1;
                return match ovalue {
                    Some(ovalue) => {
                        let more = visit(key, ovalue);
                        stopped = !more;
                        more
                    }
                    None => true,
                };
            }
            let more = visit(key, value);
            stopped = !more;
            more
        })?;
        if stopped {
            return Ok(());
        }
        for (okey, ovalue) in &overlay[next..] {
            if let Some(ovalue) = ovalue
                && !visit(okey, ovalue)
            {
                break;
            }
        }
        Ok(())
    }
}

/// One pair's share of the digest.
pub(crate) fn pair_hash(key: &[u8], value: &[u8]) -> u128 {
    let mut hasher = Sha256::new();
    hasher.update((key.len() as u32).to_be_bytes());
    hasher.update(key);
    hasher.update(value);
    let hash = hasher.finalize();
    u128::from_be_bytes(hash[..16].try_into().expect("16 bytes"))
}

fn read_digest(kv: &dyn KvRead) -> Result<u128, StoreFault> {
    match kv.get(DIGEST_KEY)? {
        None => Ok(0),
        Some(bytes) => {
            let bytes: [u8; 16] =
                bytes.as_slice().try_into().map_err(|_| StoreFault(format!("digest is {} bytes", bytes.len())))?;
            Ok(u128::from_be_bytes(bytes))
        }
    }
}

/// The stored digest of the state in `kv` (kept up to date by every write).
pub fn stored_digest(kv: &dyn KvRead) -> Result<u128, StoreFault> {
    read_digest(kv)
}

/// The digest recomputed by scanning every pair (slow: for verify and tests).
pub fn full_digest(kv: &dyn KvRead) -> Result<u128, StoreFault> {
    let mut recount = DigestRecount::default();
    kv.scan(&[], &[HOST_PREFIX], Direction::Forward, &mut |key, value| {
        recount.add(key, value);
        true
    })?;
    Ok(recount.full)
}

/// Recomputes the digest from pairs seen one by one, in any order (for a
/// verify that reads a stream of the state rather than a [`KvRead`]): host
/// pairs are skipped, the stored digest is noted as it passes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DigestRecount {
    /// The digest of the pairs added so far.
    pub full: u128,
    /// The stored digest, once its pair was added (0 for a state that
    /// never held a pair).
    pub stored: u128,
}

impl DigestRecount {
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        if key.first() == Some(&HOST_PREFIX) {
            return;
        }
        if key == DIGEST_KEY {
            self.stored = value.try_into().map(u128::from_be_bytes).unwrap_or(u128::MAX);
            return;
        }
        self.full = self.full.wrapping_add(pair_hash(key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(kv: &dyn KvRead, start: &[u8], end: &[u8], direction: Direction) -> Pairs {
        let mut out = Vec::new();
        kv.scan(start, end, direction, &mut |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            true
        })
        .unwrap();
        out
    }

    /// A store that counts the point reads made of it.
    struct Counting {
        kv: MemKv,
        gets: std::sync::atomic::AtomicUsize,
    }

    impl KvRead for Counting {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreFault> {
            self.gets.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.kv.get(key)
        }

        fn scan(
            &self,
            start: &[u8],
            end: &[u8],
            direction: Direction,
            visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
        ) -> Result<(), StoreFault> {
            self.kv.scan(start, end, direction, visit)
        }
    }

    #[test]
    fn finish_looks_up_neither_new_keys_nor_keys_already_read() {
        let mut kv = MemKv::new();
        let mut setup = Txn::new(&kv);
        setup.put(b"old".to_vec(), b"1".to_vec());
        let writes = setup.finish().unwrap();
        kv.write(writes);
        let base = Counting { kv, gets: Default::default() };
        let mut txn = Txn::new(&base);
        assert_eq!(txn.get(b"old").unwrap(), Some(b"1".to_vec()));
        txn.delete(b"old".to_vec());
        txn.put_new(b"new-1".to_vec(), b"a".to_vec());
        txn.put_new(b"new-2".to_vec(), b"b".to_vec());
        txn.put(b"new-2".to_vec(), b"c".to_vec());
        let reads_before_finish = base.gets.load(std::sync::atomic::Ordering::Relaxed);
        let writes = txn.finish().unwrap();
        // Only the digest itself is read: the old value of `old` was seen
        // already, and the `new-*` keys cannot be in the base.
        assert_eq!(base.gets.load(std::sync::atomic::Ordering::Relaxed), reads_before_finish + 1);
        let mut after = base.kv.clone();
        after.write(writes);
        assert_eq!(stored_digest(&after).unwrap(), full_digest(&after).unwrap());
    }

    #[test]
    fn finish_looks_up_no_key_the_caller_said_it_knows() {
        let mut kv = MemKv::new();
        let mut setup = Txn::new(&kv);
        for key in [&b"index"[..], b"scanned", b"again"] {
            setup.put(key.to_vec(), Vec::new());
        }
        let writes = setup.finish().unwrap();
        kv.write(writes);
        let base = Counting { kv, gets: Default::default() };
        let mut txn = Txn::new(&base);
        txn.delete_known(b"index".to_vec(), Vec::new());
        txn.known(b"scanned", Vec::new());
        txn.delete(b"scanned".to_vec());
        // Deleted as known, then put again as absent: the old value is the
        // one the caller named, not "none".
        txn.delete_known(b"again".to_vec(), Vec::new());
        txn.put_new(b"again".to_vec(), b"back".to_vec());
        let reads_before_finish = base.gets.load(std::sync::atomic::Ordering::Relaxed);
        let writes = txn.finish().unwrap();
        assert_eq!(base.gets.load(std::sync::atomic::Ordering::Relaxed), reads_before_finish + 1, "only the digest");
        let mut after = base.kv.clone();
        after.write(writes);
        assert_eq!(stored_digest(&after).unwrap(), full_digest(&after).unwrap());
    }

    #[test]
    fn a_transaction_reads_its_own_writes_in_order() {
        let mut base = MemKv::new();
        for k in [b"a", b"c", b"e", b"g"] {
            base.insert(k.to_vec(), k.to_vec());
        }
        let mut txn = Txn::new(&base);
        txn.put(b"b".to_vec(), b"B".to_vec());
        txn.delete(b"c".to_vec());
        txn.put(b"e".to_vec(), b"E".to_vec());
        txn.put(b"h".to_vec(), b"H".to_vec());
        let keys = |d| collect(&txn, b"a", b"z", d).into_iter().map(|(k, v)| (k[0], v[0])).collect::<Vec<_>>();
        assert_eq!(
            keys(Direction::Forward),
            vec![(b'a', b'a'), (b'b', b'B'), (b'e', b'E'), (b'g', b'g'), (b'h', b'H')]
        );
        assert_eq!(
            keys(Direction::Reverse),
            vec![(b'h', b'H'), (b'g', b'g'), (b'e', b'E'), (b'b', b'B'), (b'a', b'a')]
        );
        assert_eq!(collect(&txn, b"b", b"f", Direction::Forward).len(), 2);
        assert_eq!(txn.get(b"c").unwrap(), None);
        assert_eq!(txn.get(b"g").unwrap(), Some(b"g".to_vec()));
    }

    #[test]
    fn a_scan_stops_when_asked_even_inside_the_overlay() {
        let mut base = MemKv::new();
        base.insert(b"c".to_vec(), b"c".to_vec());
        let mut txn = Txn::new(&base);
        txn.put(b"a".to_vec(), b"a".to_vec());
        txn.put(b"b".to_vec(), b"b".to_vec());
        let mut seen = Vec::new();
        txn.scan(b"a", b"z", Direction::Forward, &mut |k, _| {
            seen.push(k.to_vec());
            seen.len() < 2
        })
        .unwrap();
        assert_eq!(seen, vec![b"a".to_vec(), b"b".to_vec()]);
    }

    #[test]
    fn the_digest_follows_every_write_and_matches_a_scan() {
        let mut kv = MemKv::new();
        let mut txn = Txn::new(&kv);
        txn.put(b"x".to_vec(), b"1".to_vec());
        txn.put(b"y".to_vec(), b"2".to_vec());
        txn.put(vec![HOST_PREFIX, 1], b"host".to_vec());
        let writes = txn.finish().unwrap();
        kv.write(writes);
        assert_eq!(stored_digest(&kv).unwrap(), full_digest(&kv).unwrap());
        let mut txn = Txn::new(&kv);
        txn.delete(b"x".to_vec());
        txn.put(b"y".to_vec(), b"3".to_vec());
        let writes = txn.finish().unwrap();
        kv.write(writes);
        assert_eq!(stored_digest(&kv).unwrap(), full_digest(&kv).unwrap());
        let mut other = MemKv::new();
        let mut txn = Txn::new(&other);
        txn.put(b"y".to_vec(), b"3".to_vec());
        let writes = txn.finish().unwrap();
        other.write(writes);
        assert_eq!(stored_digest(&kv).unwrap(), stored_digest(&other).unwrap(), "same pairs, same digest");
    }

    #[test]
    fn a_hash_given_with_a_new_pair_is_used_only_while_the_pair_is_unchanged() {
        let mut kv = MemKv::new();
        let mut txn = Txn::new(&kv);
        txn.put_new_hashed(b"a".to_vec(), b"1".to_vec(), pair_hash(b"a", b"1"));
        // Rewritten after: the given hash is stale and must not be used.
        txn.put_new_hashed(b"b".to_vec(), b"1".to_vec(), pair_hash(b"b", b"1"));
        txn.put(b"b".to_vec(), b"2".to_vec());
        txn.put_new_hashed(b"c".to_vec(), b"1".to_vec(), pair_hash(b"c", b"1"));
        txn.put_new(b"c".to_vec(), b"3".to_vec());
        kv.write(txn.finish().unwrap());
        assert_eq!(stored_digest(&kv).unwrap(), full_digest(&kv).unwrap());
        assert_eq!(kv.iter().filter(|(k, _)| k.as_slice() != DIGEST_KEY).count(), 3);
    }

    #[test]
    fn a_prefetch_stops_at_its_pair_and_byte_bounds() {
        let mut kv = MemKv::new();
        for key in [b"a", b"b", b"c", b"d"] {
            kv.insert(key.to_vec(), vec![0; 1_000]);
        }
        let held = |txn: &Txn<'_>| txn.seen.lock().unwrap().len();
        let txn = Txn::new(&kv);
        txn.prefetch(b"a", b"z", 10, 2_500).unwrap();
        assert_eq!(held(&txn), 3, "stops once the values read reach the byte bound");
        let txn = Txn::new(&kv);
        txn.prefetch(b"a", b"z", 2, usize::MAX).unwrap();
        assert_eq!(held(&txn), 2, "stops at the pair bound");
        assert_eq!(txn.get(b"d").unwrap(), Some(vec![0; 1_000]), "the rest are read when asked for");
    }

    #[test]
    fn a_recount_from_loose_pairs_finds_a_changed_value() {
        let mut kv = MemKv::new();
        let mut txn = Txn::new(&kv);
        txn.put(b"x".to_vec(), b"1".to_vec());
        txn.put(b"y".to_vec(), b"2".to_vec());
        txn.put(vec![HOST_PREFIX, 1], b"host".to_vec());
        let writes = txn.finish().unwrap();
        kv.write(writes);
        let recount = |kv: &MemKv| {
            let mut recount = DigestRecount::default();
            for (k, v) in kv.iter() {
                recount.add(k, v);
            }
            recount
        };
        let clean = recount(&kv);
        assert_eq!(clean.full, clean.stored);
        assert_eq!(clean.full, full_digest(&kv).unwrap());
        // Damage behind the digest's back: the stored digest no longer
        // matches a recount.
        kv.insert(b"y".to_vec(), b"3".to_vec());
        let damaged = recount(&kv);
        assert_eq!(damaged.stored, clean.stored);
        assert_ne!(damaged.full, damaged.stored);
    }

    fn kv_of(keys: &[&[u8]]) -> MemKv {
        let mut kv = MemKv::new();
        for key in keys {
            kv.insert(key.to_vec(), b"v".to_vec());
        }
        kv
    }

    #[test]
    #[should_panic(expected = "which the write set does not write")]
    fn the_memory_store_refuses_a_cleared_range_holding_a_key_not_written() {
        let mut kv = kv_of(&[b"a1", b"a2", b"a3"]);
        let mut writes: WriteSet = [(b"a1".to_vec(), None), (b"a3".to_vec(), None)].into();
        writes.clear(b"a1".to_vec(), b"a4".to_vec());
        kv.write(writes);
    }

    #[test]
    fn a_cleared_range_keeps_the_puts_inside_it() {
        let mut kv = kv_of(&[b"a1", b"a2", b"b1"]);
        let mut writes: WriteSet = [(b"a1".to_vec(), None), (b"a2".to_vec(), Some(b"new".to_vec()))].into();
        writes.clear(b"a".to_vec(), b"b".to_vec());
        kv.write(writes);
        assert_eq!(
            collect(&kv, b"a", b"c", Direction::Forward),
            [(b"a2".to_vec(), b"new".to_vec()), (b"b1".to_vec(), b"v".to_vec())]
        );
    }

    #[test]
    fn ranges_merge_and_answer_keys_in_order() {
        let r = |a: &str, b: &str| (a.as_bytes().to_vec(), b.as_bytes().to_vec());
        let merged = merged_ranges(vec![r("m", "p"), r("a", "c"), r("b", "d"), r("x", "x"), r("d", "f")]);
        assert_eq!(merged, [r("a", "f"), r("m", "p")]);
        let mut next = 0;
        let inside: Vec<bool> = ["0", "a", "e", "f", "l", "m", "o", "p", "z"]
            .iter()
            .map(|k| in_ranges(&merged, &mut next, k.as_bytes()))
            .collect();
        assert_eq!(inside, [false, true, true, false, false, true, true, false, false]);
    }
}
