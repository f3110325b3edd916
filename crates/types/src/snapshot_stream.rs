//! Snapshots as a stream of chunks: how a state moves between nodes without
//! ever being whole in memory.
//!
//! A snapshot is the state's key-value pairs at one applied log id, in key
//! order. The sender's store produces them from a consistent view (RocksDB:
//! a database snapshot read on its own thread) into a bounded channel, a
//! chunk at a time, so the producer waits for the network and memory stays
//! at a few chunks. The receiver's store writes the chunks into a staging
//! area as they arrive and switches to it only after the end frame's count
//! and checksum match; a transfer that breaks off leaves the old state.
//!
//! Frames (postcard, one per chunk): a [`Frame::Header`] with the format
//! version, [`Frame::Pairs`] chunks of about [`CHUNK_BYTES`], and a
//! [`Frame::End`] with the pair count and the SHA-256 over every pair
//! (key length, key, value length, value).

use std::collections::VecDeque;
use std::fmt;
use std::io;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

/// Bumped on any change to the frame layout or the state's key layout
/// (4: a member has a client and a peer address; 5: a message's head and
/// content are separate pairs; 6: the dedup index keys hold the entry).
pub const SNAPSHOT_STREAM_FORMAT_VERSION: u16 = 6;
/// Pair bytes per chunk (a single large pair may exceed it).
pub const CHUNK_BYTES: usize = 1024 * 1024;
/// Chunks a producer runs ahead of its consumer.
const CHUNKS_IN_FLIGHT: usize = 2;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Frame {
    Header { format_version: u16 },
    Pairs(Vec<(Vec<u8>, Vec<u8>)>),
    End { pairs: u64, checksum: [u8; 32] },
}

/// A snapshot's bytes as openraft moves them: a stream of opaque chunks,
/// read once. Both stores use this type, so one network layer serves either.
pub struct SnapshotData {
    source: Source,
}

enum Source {
    Ready(VecDeque<Vec<u8>>),
    Channel(mpsc::Receiver<io::Result<Vec<u8>>>),
}

impl fmt::Debug for SnapshotData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::Ready(chunks) => write!(f, "SnapshotData({} chunks ready)", chunks.len()),
            Source::Channel(_) => f.write_str("SnapshotData(streaming)"),
        }
    }
}

impl SnapshotData {
    /// A snapshot whose chunks are all in hand.
    pub fn from_chunks(chunks: impl IntoIterator<Item = Vec<u8>>) -> Self {
        Self { source: Source::Ready(chunks.into_iter().collect()) }
    }

    /// A snapshot fed through `sender`, a few chunks ahead of its reader. A
    /// sender dropped before the end frame makes the reader fail.
    pub fn channel() -> (ChunkSender, Self) {
        let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
        (ChunkSender { tx }, Self { source: Source::Channel(rx) })
    }

    /// The next chunk; `None` at the end.
    pub async fn next_chunk(&mut self) -> Option<io::Result<Vec<u8>>> {
        match &mut self.source {
            Source::Ready(chunks) => chunks.pop_front().map(Ok),
            Source::Channel(rx) => rx.recv().await,
        }
    }

    /// The next chunk, from a thread outside the async runtime.
    pub fn blocking_next_chunk(&mut self) -> Option<io::Result<Vec<u8>>> {
        match &mut self.source {
            Source::Ready(chunks) => chunks.pop_front().map(Ok),
            Source::Channel(rx) => rx.blocking_recv(),
        }
    }
}

/// Feeds a [`SnapshotData::channel`].
#[derive(Debug)]
pub struct ChunkSender {
    tx: mpsc::Sender<io::Result<Vec<u8>>>,
}

impl ChunkSender {
    /// Sends a chunk; `false` if the reader is gone.
    pub async fn send(&self, chunk: io::Result<Vec<u8>>) -> bool {
        self.tx.send(chunk).await.is_ok()
    }

    /// Sends a chunk from a thread outside the async runtime.
    pub fn blocking_send(&self, chunk: io::Result<Vec<u8>>) -> bool {
        self.tx.blocking_send(chunk).is_ok()
    }
}

/// Cuts a key-ordered stream of pairs into frames.
#[derive(Debug)]
pub struct Encoder {
    pending: Vec<(Vec<u8>, Vec<u8>)>,
    pending_bytes: usize,
    pairs: u64,
    hasher: Sha256,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    pub fn new() -> Self {
        Self { pending: Vec::new(), pending_bytes: 0, pairs: 0, hasher: Sha256::new() }
    }

    pub fn header() -> Vec<u8> {
        encode(&Frame::Header { format_version: SNAPSHOT_STREAM_FORMAT_VERSION })
    }

    /// Adds a pair; returns a full chunk when one is ready.
    pub fn push(&mut self, key: &[u8], value: &[u8]) -> Option<Vec<u8>> {
        hash_pair(&mut self.hasher, key, value);
        self.pairs += 1;
        self.pending_bytes += key.len() + value.len();
        self.pending.push((key.to_vec(), value.to_vec()));
        (self.pending_bytes >= CHUNK_BYTES).then(|| self.take())
    }

    fn take(&mut self) -> Vec<u8> {
        self.pending_bytes = 0;
        encode(&Frame::Pairs(std::mem::take(&mut self.pending)))
    }

    /// The last chunks: what is pending, then the end frame.
    pub fn finish(mut self) -> Vec<Vec<u8>> {
        let mut chunks = Vec::new();
        if !self.pending.is_empty() {
            chunks.push(self.take());
        }
        let checksum: [u8; 32] = self.hasher.finalize().into();
        chunks.push(encode(&Frame::End { pairs: self.pairs, checksum }));
        chunks
    }
}

/// Checks frames as they arrive and hands out their pairs.
#[derive(Debug)]
pub struct Decoder {
    started: bool,
    ended: bool,
    pairs: u64,
    hasher: Sha256,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub fn new() -> Self {
        Self { started: false, ended: false, pairs: 0, hasher: Sha256::new() }
    }

    /// Decodes one chunk: its pairs (empty for header and end frames).
    pub fn chunk(&mut self, bytes: &[u8]) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let frame: Frame = postcard::from_bytes(bytes).map_err(|e| invalid(format!("snapshot chunk: {e}")))?;
        if self.ended {
            return Err(invalid("snapshot chunk after the end frame".into()));
        }
        match frame {
            Frame::Header { format_version } if !self.started => {
                if format_version != SNAPSHOT_STREAM_FORMAT_VERSION {
                    return Err(invalid(format!(
                        "snapshot format version {format_version} is not supported (this build reads {SNAPSHOT_STREAM_FORMAT_VERSION})"
                    )));
                }
                self.started = true;
                Ok(Vec::new())
            }
            Frame::Header { .. } => Err(invalid("a second snapshot header".into())),
            _ if !self.started => Err(invalid("snapshot stream without a header".into())),
            Frame::Pairs(pairs) => {
                for (key, value) in &pairs {
                    hash_pair(&mut self.hasher, key, value);
                }
                self.pairs += pairs.len() as u64;
                Ok(pairs)
            }
            Frame::End { pairs, checksum } => {
                let actual: [u8; 32] = std::mem::replace(&mut self.hasher, Sha256::new()).finalize().into();
                if pairs != self.pairs || checksum != actual {
                    return Err(invalid(format!(
                        "snapshot end frame says {pairs} pairs, {} arrived, checksum {}",
                        self.pairs,
                        if checksum == actual { "matches" } else { "differs" }
                    )));
                }
                self.ended = true;
                Ok(Vec::new())
            }
        }
    }

    /// Whether the end frame arrived and checked out.
    pub fn is_complete(&self) -> bool {
        self.ended
    }
}

fn hash_pair(hasher: &mut Sha256, key: &[u8], value: &[u8]) {
    hasher.update((key.len() as u64).to_le_bytes());
    hasher.update(key);
    hasher.update((value.len() as u64).to_le_bytes());
    hasher.update(value);
}

fn encode(frame: &Frame) -> Vec<u8> {
    postcard::to_stdvec(frame).expect("encoding to a Vec cannot fail")
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks_of(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<Vec<u8>> {
        let mut encoder = Encoder::new();
        let mut chunks = vec![Encoder::header()];
        for (k, v) in pairs {
            chunks.extend(encoder.push(k, v));
        }
        chunks.extend(encoder.finish());
        chunks
    }

    #[test]
    fn pairs_survive_the_round_trip_in_chunks() {
        let pairs: Vec<_> = (0..3000u32).map(|i| (i.to_be_bytes().to_vec(), vec![7u8; 1000])).collect();
        let chunks = chunks_of(&pairs);
        assert!(chunks.len() > 3, "cut into several chunks");
        let mut decoder = Decoder::new();
        let mut out = Vec::new();
        for chunk in &chunks {
            out.extend(decoder.chunk(chunk).unwrap());
        }
        assert!(decoder.is_complete());
        assert_eq!(out, pairs);
    }

    #[test]
    fn a_missing_chunk_or_end_is_refused() {
        let pairs: Vec<_> = (0..3000u32).map(|i| (i.to_be_bytes().to_vec(), vec![7u8; 1000])).collect();
        let mut chunks = chunks_of(&pairs);
        chunks.remove(1);
        let mut decoder = Decoder::new();
        let failed = chunks.iter().any(|chunk| decoder.chunk(chunk).is_err());
        assert!(failed, "a lost chunk fails the end check");
        let chunks = chunks_of(&pairs);
        let mut decoder = Decoder::new();
        for chunk in &chunks[..chunks.len() - 1] {
            decoder.chunk(chunk).unwrap();
        }
        assert!(!decoder.is_complete(), "no end frame, not complete");
    }
}
