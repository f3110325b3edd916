//! Why a store refuses to open, and how read-time damage reaches openraft.

use std::io;

use crate::codec::RecordError;

/// Opening a store failed: the node must not start on this data.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("log entry {index} {source} in {origin}: refusing to start")]
    CorruptLog { index: u64, origin: String, source: RecordError },
    #[error("log entry {index} in {origin} holds the entry for index {found}: refusing to start")]
    MisplacedLog { index: u64, found: u64, origin: String },
    #[error("log in {origin} has a hole: entry {missing} is missing below entry {above}: refusing to start")]
    LogHole { missing: u64, above: u64, origin: String },
    #[error(
        "log in {origin} starts at entry {first}, but the purge mark says entries up to {purged} were purged: refusing to start"
    )]
    LogStart { first: u64, purged: u64, origin: String },
    #[error("log key {key:02x?} in {origin} is not a log index: refusing to start")]
    BadLogKey { key: Vec<u8>, origin: String },
    #[error("stored {what} {source} in {origin}: refusing to start")]
    CorruptMeta { what: &'static str, origin: String, source: RecordError },
    /// The data dir was written in another storage format.
    #[error(
        "data in {origin} is in storage format {found}, this build reads format {} (the queue state in RocksDB); no release wrote an earlier format for users, so there is no migration: move the directory away and let the node rejoin from its peers",
        crate::rocks::STORAGE_FORMAT_VERSION
    )]
    Format { origin: String, found: u8 },
    #[error("RocksDB at {origin}: {source}")]
    Rocks { origin: String, source: rocksdb::Error },
    /// RocksDB found damage while opening, e.g. a record in the middle of
    /// its write-ahead log that fails its checksum. Only a torn last record
    /// (a crash mid-write, never synced, never acknowledged) is tolerated;
    /// anything else would silently drop synced writes after it.
    #[error(
        "RocksDB data in {origin} is corrupt ({source}; write-ahead log files: {wal_files}): refusing to start rather than drop the writes after the damage; restore this node from its peers (wipe the directory and re-add it)"
    )]
    CorruptRocks { origin: String, wal_files: String, source: rocksdb::Error },
    #[error("{0}: refusing to start")]
    Io(#[from] io::Error),
}

/// A stored record that fails its frame check, as the `io::Error` openraft
/// wants. openraft turns it into a fatal storage error: the node stops
/// serving instead of handing out damaged data.
pub(crate) fn corrupt(what: impl std::fmt::Display, origin: &str, err: RecordError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{what} {err} in {origin}"))
}

/// A RocksDB failure as an `io::Error`.
pub(crate) fn rocks_io(err: rocksdb::Error) -> io::Error {
    io::Error::other(format!("RocksDB: {err}"))
}
