//! The server side of the Raft transport: decodes each RPC, hands it to the
//! local openraft node, encodes the answer.

use openraft::Raft;
use openraft::storage::RaftStateMachine;
use raftq_proto::v1::raft_transport_server::{RaftTransport, RaftTransportServer};
use raftq_proto::v1::{RaftPayload, SnapshotChunk};
use raftq_types::{Snapshot, SnapshotData, SnapshotMeta, TypeConfig, Vote};
use tonic::{Request, Response, Status, Streaming};

use crate::codec;
use crate::network::TRANSPORT_MESSAGE_BYTES_MAX;

/// Largest snapshot a node accepts over the wire. A stream that passes it is
/// refused before it can fill the disk.
pub const SNAPSHOT_BYTES_MAX: u64 = 16 * 1024 * 1024 * 1024;

/// Serves `RaftTransport` for one local node.
#[derive(Debug)]
pub struct TransportService<SM: RaftStateMachine<TypeConfig, SnapshotData = SnapshotData>> {
    raft: Raft<TypeConfig, SM>,
}

impl<SM> TransportService<SM>
where
    SM: RaftStateMachine<TypeConfig, SnapshotData = SnapshotData>,
{
    /// The tonic service, with message limits raised for large appends.
    pub fn server(raft: Raft<TypeConfig, SM>) -> RaftTransportServer<Self> {
        RaftTransportServer::new(Self { raft })
            .max_decoding_message_size(TRANSPORT_MESSAGE_BYTES_MAX)
            .max_encoding_message_size(TRANSPORT_MESSAGE_BYTES_MAX)
    }
}

fn decode<T: serde::de::DeserializeOwned>(payload: &RaftPayload) -> Result<T, Status> {
    codec::decode(payload).map_err(|e| Status::invalid_argument(e.to_string()))
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
        // The state machine reads the chunks as this task feeds them in: the
        // snapshot is written to staging as it arrives, never held whole. A
        // failed feed drops the sender before the end frame, so the install
        // fails and the old state stays.
        let (sender, data) = SnapshotData::channel();
        let feed = async move {
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
                if !chunk.data.is_empty() && !sender.send(Ok(chunk.data.to_vec())).await {
                    return Ok(());
                }
                if chunk.done {
                    return Ok(());
                }
                chunk = chunks
                    .message()
                    .await?
                    .ok_or_else(|| Status::invalid_argument("snapshot stream ended before its last chunk"))?;
            }
        };
        let snapshot = Snapshot { meta, snapshot: data };
        let install = self.raft.install_full_snapshot(vote, snapshot);
        tokio::pin!(feed);
        tokio::pin!(install);
        let response = tokio::select! {
            installed = &mut install => installed.map_err(stopped)?,
            fed = &mut feed => {
                let installed = install.await;
                fed?;
                installed.map_err(stopped)?
            }
        };
        Ok(Response::new(codec::encode(&response)))
    }
}
