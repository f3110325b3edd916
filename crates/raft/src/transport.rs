//! The server side of the Raft transport: decodes each RPC, hands it to the
//! local openraft node, encodes the answer.

use openraft::Raft;
use openraft::storage::RaftStateMachine;
use raftq_proto::v1::raft_transport_server::{RaftTransport, RaftTransportServer};
use raftq_proto::v1::{RaftPayload, SnapshotChunk};
use raftq_types::{Snapshot, SnapshotData, SnapshotMeta, TypeConfig, Vote};
use std::path::PathBuf;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::{Request, Response, Status, Streaming};

use crate::codec;
use crate::network::TRANSPORT_MESSAGE_BYTES_MAX;

/// Largest snapshot a node accepts over the wire. A stream that passes it is
/// refused before it can fill the disk.
pub const SNAPSHOT_BYTES_MAX: u64 = 16 * 1024 * 1024 * 1024;

/// Where an incoming snapshot waits until its last chunk has arrived.
///
/// A snapshot is handed to openraft only whole: a state machine install
/// that fails is fatal to openraft (the node stops), and a transfer that
/// breaks off midway (a partition, the leader stepping down) is no reason
/// for the receiver to stop. So the chunks are spooled first, and a broken
/// transfer only fails the RPC; the leader sends again.
#[derive(Clone, Debug)]
pub enum SnapshotSpool {
    /// In memory: for the simulation and tests, whose states are small.
    Memory,
    /// Files in this directory (created if missing), one per transfer,
    /// deleted once installed or abandoned: a node's state may be far
    /// larger than its memory.
    Dir(PathBuf),
}

impl SnapshotSpool {
    /// Removes transfers a crash left behind (call before serving).
    pub fn clean(&self) -> std::io::Result<()> {
        let SnapshotSpool::Dir(dir) = self else { return Ok(()) };
        if !dir.exists() {
            return Ok(());
        }
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(SPOOL_FILE_PREFIX)) {
                std::fs::remove_file(&path)?;
            }
        }
        Ok(())
    }
}

const SPOOL_FILE_PREFIX: &str = "incoming-snapshot-";

/// One transfer being spooled.
enum Spooled {
    Memory(Vec<Vec<u8>>),
    /// Each chunk as its length (u32, big-endian) and bytes; the file is
    /// deleted when this is dropped.
    File {
        file: tokio::io::BufWriter<tokio::fs::File>,
        path: tempfile::TempPath,
    },
}

impl Spooled {
    async fn start(spool: &SnapshotSpool) -> std::io::Result<Self> {
        match spool {
            SnapshotSpool::Memory => Ok(Spooled::Memory(Vec::new())),
            SnapshotSpool::Dir(dir) => {
                tokio::fs::create_dir_all(dir).await?;
                let named = tempfile::Builder::new().prefix(SPOOL_FILE_PREFIX).tempfile_in(dir)?;
                let (file, path) = named.into_parts();
                Ok(Spooled::File { file: tokio::io::BufWriter::new(tokio::fs::File::from_std(file)), path })
            }
        }
    }

    async fn push(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        match self {
            Spooled::Memory(chunks) => chunks.push(chunk.to_vec()),
            Spooled::File { file, .. } => {
                let len = u32::try_from(chunk.len()).map_err(|_| std::io::Error::other("snapshot chunk over 4 GiB"))?;
                file.write_all(&len.to_be_bytes()).await?;
                file.write_all(chunk).await?;
            }
        }
        Ok(())
    }

    /// The spooled chunks as a snapshot to install, read back a few at a
    /// time (the file is deleted once read, or when the reader is dropped).
    async fn into_data(self) -> std::io::Result<SnapshotData> {
        match self {
            Spooled::Memory(chunks) => Ok(SnapshotData::from_chunks(chunks)),
            Spooled::File { mut file, path } => {
                file.flush().await?;
                file.get_ref().sync_all().await?;
                drop(file);
                let mut reader = tokio::io::BufReader::new(tokio::fs::File::open(&path).await?);
                let (sender, data) = SnapshotData::channel();
                tokio::spawn(async move {
                    let _path = path;
                    loop {
                        let mut len = [0u8; 4];
                        match reader.read_exact(&mut len).await {
                            Ok(_) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return,
                            Err(e) => {
                                sender.send(Err(e)).await;
                                return;
                            }
                        }
                        let mut chunk = vec![0u8; u32::from_be_bytes(len) as usize];
                        let read = reader.read_exact(&mut chunk).await.map(|_| chunk);
                        let failed = read.is_err();
                        if !sender.send(read).await || failed {
                            return;
                        }
                    }
                });
                Ok(data)
            }
        }
    }
}

/// Serves `RaftTransport` for one local node.
#[derive(Debug)]
pub struct TransportService<SM: RaftStateMachine<TypeConfig, SnapshotData = SnapshotData>> {
    raft: Raft<TypeConfig, SM>,
    spool: SnapshotSpool,
}

impl<SM> TransportService<SM>
where
    SM: RaftStateMachine<TypeConfig, SnapshotData = SnapshotData>,
{
    /// The tonic service, with message limits raised for large appends;
    /// incoming snapshots wait in `spool` until whole.
    pub fn server(raft: Raft<TypeConfig, SM>, spool: SnapshotSpool) -> RaftTransportServer<Self> {
        RaftTransportServer::new(Self { raft, spool })
            .max_decoding_message_size(TRANSPORT_MESSAGE_BYTES_MAX)
            .max_encoding_message_size(TRANSPORT_MESSAGE_BYTES_MAX)
    }
}

fn decode<T: serde::de::DeserializeOwned>(payload: &RaftPayload) -> Result<T, Status> {
    codec::decode(payload).map_err(|e| Status::invalid_argument(e.to_string()))
}

fn spool_error(error: std::io::Error) -> Status {
    Status::resource_exhausted(format!("spooling the incoming snapshot: {error}"))
}

fn stopped(error: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("raft is not running: {error}"))
}

#[tonic::async_trait]
impl<SM> RaftTransport for TransportService<SM>
where
    SM: RaftStateMachine<TypeConfig, SnapshotData = SnapshotData>,
{
    async fn append_entries(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let rpc = decode(request.get_ref())?;
        let response = self.raft.append_entries(rpc).await.map_err(stopped)?;
        Ok(Response::new(codec::encode(&response)))
    }

    async fn vote(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let rpc = decode(request.get_ref())?;
        let response = self.raft.vote(rpc).await.map_err(stopped)?;
        Ok(Response::new(codec::encode(&response)))
    }

    async fn pre_vote(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let rpc = decode(request.get_ref())?;
        let response = self.raft.pre_vote(rpc).await.map_err(stopped)?;
        Ok(Response::new(codec::encode(&response)))
    }

    async fn transfer_leader(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let rpc = decode(request.get_ref())?;
        let response = self.raft.handle_transfer_leader(rpc).await.map_err(stopped)?;
        Ok(Response::new(codec::encode(&response)))
    }

    async fn install_snapshot(
        &self,
        request: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<RaftPayload>, Status> {
        let mut chunks = request.into_inner();
        let first = chunks.message().await?.ok_or_else(|| Status::invalid_argument("empty snapshot stream"))?;
        let meta = first.meta.as_ref().ok_or_else(|| Status::invalid_argument("first snapshot chunk has no meta"))?;
        let (vote, meta): (Vote, SnapshotMeta) = decode(meta)?;
        // The whole transfer is spooled before openraft sees it (see
        // `SnapshotSpool`): a stream that breaks off fails this RPC only.
        let mut spooled = Spooled::start(&self.spool).await.map_err(spool_error)?;
        let mut received = 0u64;
        let mut chunk = first;
        loop {
            if chunk.offset != received {
                return Err(Status::invalid_argument(format!(
                    "snapshot chunk at offset {} after {received} bytes",
                    chunk.offset
                )));
            }
            received += chunk.data.len() as u64;
            if received > SNAPSHOT_BYTES_MAX {
                return Err(Status::invalid_argument(format!("snapshot larger than {SNAPSHOT_BYTES_MAX} bytes")));
            }
            if !chunk.data.is_empty() {
                spooled.push(&chunk.data).await.map_err(spool_error)?;
            }
            if chunk.done {
                break;
            }
            chunk = chunks
                .message()
                .await?
                .ok_or_else(|| Status::invalid_argument("snapshot stream ended before its last chunk"))?;
        }
        let data = spooled.into_data().await.map_err(spool_error)?;
        let snapshot = Snapshot { meta, snapshot: data };
        let response = self.raft.install_full_snapshot(vote, snapshot).await.map_err(stopped)?;
        Ok(Response::new(codec::encode(&response)))
    }
}
