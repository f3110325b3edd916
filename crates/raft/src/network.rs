//! The client side of the Raft transport: openraft's `RaftNetworkV2` over
//! tonic, one cached channel per peer address.
//!
//! How a channel is dialled is a parameter ([`Connector`]): production dials
//! TCP, the simulation dials turmoil sockets, and this code is the same.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse};
use openraft::raft::{TransferLeaderRequest, TransferLeaderResponse};
use openraft::{BasicNode, RaftNetworkFactory, RaftNetworkV2};
use raftq_proto::v1::SnapshotChunk;
use raftq_proto::v1::raft_transport_client::RaftTransportClient;
use raftq_types::{Snapshot, SnapshotData, TypeConfig, Vote};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::codec;

/// Largest gRPC message the transport sends or accepts: an append of many
/// entries or a snapshot chunk, with room to spare.
pub const TRANSPORT_MESSAGE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Snapshot bytes per streamed chunk (the store cuts them; one chunk may
/// exceed this by one large message).
pub const SNAPSHOT_CHUNK_BYTES: usize = raftq_types::snapshot_stream::CHUNK_BYTES;
/// Deadline on a whole snapshot transfer: only a backstop, since a stall
/// of one chunk fails it much earlier.
const SNAPSHOT_TRANSFER_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
/// Default limit on dialling a peer.
pub const PEER_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// HTTP/2 keep-alive ping interval on peer channels, so a dead peer's
/// connection is noticed without traffic.
const PEER_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// How long a keep-alive ping may go unanswered before the connection is dropped.
const PEER_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(5);

// A snapshot chunk (a chunk's worth of pairs plus one largest message and
// its envelope), with its metadata, fits in one transport message.
const _: () =
    assert!(2 * (SNAPSHOT_CHUNK_BYTES + raftq_core::limits::MESSAGE_BYTES_CAP as usize) <= TRANSPORT_MESSAGE_BYTES_MAX);
// One log entry carries at most one client message's worth of commands
// (see the server's ENTRY_BYTES_MAX), and an append must carry it.
const _: () = assert!(2 * raftq_core::limits::CLIENT_MESSAGE_BYTES_MAX <= TRANSPORT_MESSAGE_BYTES_MAX);

/// The largest log entry the server writes: one full publish batch (the
/// largest command), each message with its envelope. The server's group
/// commit keeps a group's estimated bytes under `PUBLISH_BYTES_MAX`, and
/// estimates every command at no less than its encoded size.
pub const ENTRY_BYTES_BOUND: usize = raftq_core::limits::PUBLISH_BYTES_MAX
    + raftq_core::limits::PUBLISH_MESSAGES_MAX * raftq_core::limits::MESSAGE_ENVELOPE_BYTES_MAX;

/// Most entries openraft puts in one AppendEntries: as many of the largest
/// entries as fit in one transport message (10).
/// openraft's default (300) could put 300 entries of 6 MiB in one request
/// against a 64 MiB limit: the request would fail every time and the
/// follower would never catch up.
pub const APPEND_ENTRIES_MAX: u64 = (TRANSPORT_MESSAGE_BYTES_MAX / ENTRY_BYTES_BOUND) as u64;
const _: () = assert!(APPEND_ENTRIES_MAX >= 8);

/// Dials a gRPC channel to `host:port`. Channels are lazy: dialling happens
/// on first use, and a broken connection is re-dialled by the channel.
pub trait Connector: fmt::Debug + Send + Sync + 'static {
    fn channel(&self, addr: &str) -> Result<Channel, String>;
}

/// Dials peers over TCP, with TLS if `tls` is set.
#[derive(Clone, Debug)]
pub struct TcpConnector {
    pub connect_timeout: Duration,
    /// The peers' CA and this node's client certificate; `None`: plain.
    pub tls: Option<ClientTlsConfig>,
}

impl Default for TcpConnector {
    fn default() -> Self {
        Self { connect_timeout: PEER_CONNECT_TIMEOUT, tls: None }
    }
}

impl Connector for TcpConnector {
    fn channel(&self, addr: &str) -> Result<Channel, String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoint =
            Endpoint::from_shared(format!("{scheme}://{addr}")).map_err(|e| format!("bad address {addr:?}: {e}"))?;
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.clone()).map_err(|e| format!("TLS to {addr}: {e}"))?;
        }
        Ok(endpoint
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(PEER_KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(PEER_KEEP_ALIVE_TIMEOUT)
            .connect_lazy())
    }
}

/// openraft's network factory: hands out one client per target, sharing one
/// cached channel per address.
#[derive(Clone, Debug)]
pub struct Network {
    connector: Arc<dyn Connector>,
    /// Address → channel. A channel multiplexes every RPC to that peer.
    /// Ordered, so channels close in the same order on every run (seeds
    /// replay identically in the simulation).
    channels: Arc<Mutex<BTreeMap<String, Channel>>>,
    /// `Bearer <token>` sent with every RPC, for peers with auth on.
    authorization: Option<MetadataValue<Ascii>>,
}

impl Network {
    pub fn new(connector: Arc<dyn Connector>) -> Self {
        Self { connector, channels: Arc::default(), authorization: None }
    }

    /// Sends `token` as a bearer token with every RPC (`None`: none). A
    /// token that cannot be a header value is not sent (the server's config
    /// check refuses one).
    pub fn with_token(self, token: Option<&str>) -> Self {
        let authorization = token.and_then(|t| format!("Bearer {t}").parse().ok());
        Self { authorization, ..self }
    }

    fn channel(&self, addr: &str) -> Result<Channel, String> {
        let mut channels = self.channels.lock().expect("channel cache lock poisoned");
        if let Some(channel) = channels.get(addr) {
            return Ok(channel.clone());
        }
        let channel = self.connector.channel(addr)?;
        channels.insert(addr.to_string(), channel.clone());
        Ok(channel)
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Peer {
        let client = self.channel(&node.addr).map(|channel| {
            RaftTransportClient::new(channel)
                .max_decoding_message_size(TRANSPORT_MESSAGE_BYTES_MAX)
                .max_encoding_message_size(TRANSPORT_MESSAGE_BYTES_MAX)
        });
        Peer { target, addr: node.addr.clone(), client, authorization: self.authorization.clone() }
    }
}

/// The transport to one peer.
#[derive(Debug)]
pub struct Peer {
    target: u64,
    addr: String,
    /// `Err` if the address could not even be parsed: every RPC fails.
    client: Result<RaftTransportClient<Channel>, String>,
    authorization: Option<MetadataValue<Ascii>>,
}

fn status_error(status: &tonic::Status) -> RPCError<TypeConfig> {
    match status.code() {
        tonic::Code::Unavailable => RPCError::Unreachable(Unreachable::from_string(status.message())),
        _ => RPCError::Network(NetworkError::from_string(format!("{}: {}", status.code(), status.message()))),
    }
}

impl Peer {
    fn client(&self) -> Result<RaftTransportClient<Channel>, RPCError<TypeConfig>> {
        self.client.clone().map_err(|e| RPCError::Unreachable(Unreachable::from_string(e)))
    }

    fn request<T>(&self, message: T, timeout: Duration) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(timeout);
        if let Some(authorization) = &self.authorization {
            request.metadata_mut().insert("authorization", authorization.clone());
        }
        request
    }

    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        reply: &raftq_proto::v1::RaftPayload,
    ) -> Result<T, RPCError<TypeConfig>> {
        codec::decode(reply).map_err(|e| {
            RPCError::Network(NetworkError::from_string(format!(
                "bad reply from node {} ({}): {e}",
                self.target, self.addr
            )))
        })
    }

    /// Streams `snapshot` to the peer, chunk by chunk as the store
    /// produces them: neither end holds more than a few chunks. There is no
    /// deadline on the whole transfer (a large state takes as long as it
    /// takes); instead it fails if no chunk moves for `stall_timeout`.
    async fn send_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        stall_timeout: Duration,
    ) -> Result<SnapshotResponse<TypeConfig>, tonic::Status> {
        let mut client = self.client().map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let meta = codec::encode(&(vote, snapshot.meta));
        let progress = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let failure: Arc<Mutex<Option<String>>> = Arc::default();
        struct Feed {
            data: SnapshotData,
            meta: Option<raftq_proto::v1::RaftPayload>,
            offset: u64,
            finished: bool,
        }
        let feed = Feed { data: snapshot.snapshot, meta: Some(meta), offset: 0, finished: false };
        let (stream_progress, stream_failure) = (progress.clone(), failure.clone());
        let chunks = futures_util::stream::unfold(feed, move |mut feed| {
            let (progress, failure) = (stream_progress.clone(), stream_failure.clone());
            async move {
                if feed.finished {
                    return None;
                }
                let (data, done) = match feed.data.next_chunk().await {
                    Some(Ok(chunk)) => (Bytes::from(chunk), false),
                    Some(Err(err)) => {
                        // End the stream without its last chunk: the
                        // receiver refuses the incomplete snapshot.
                        *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(err.to_string());
                        return None;
                    }
                    None => (Bytes::new(), true),
                };
                let chunk = SnapshotChunk { meta: feed.meta.take(), offset: feed.offset, data, done };
                feed.offset += chunk.data.len() as u64;
                feed.finished = done;
                progress.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Some((chunk, feed))
            }
        });
        let request = self.request(chunks, SNAPSHOT_TRANSFER_TIMEOUT);
        let watchdog = async {
            let mut seen = u64::MAX;
            loop {
                tokio::time::sleep(stall_timeout).await;
                let now = progress.load(std::sync::atomic::Ordering::Relaxed);
                if now == seen {
                    return tonic::Status::deadline_exceeded(format!(
                        "snapshot transfer made no progress for {stall_timeout:?}"
                    ));
                }
                seen = now;
            }
        };
        let reply = tokio::select! {
            reply = client.install_snapshot(request) => reply,
            stalled = watchdog => return Err(stalled),
        };
        if let Some(err) = failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(tonic::Status::internal(format!("reading the snapshot to send: {err}")));
        }
        let reply = reply?;
        codec::decode(reply.get_ref()).map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

impl RaftNetworkV2<TypeConfig> for Peer {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let request = self.request(codec::encode(&rpc), option.soft_ttl());
        let reply = self.client()?.append_entries(request).await.map_err(|s| status_error(&s))?;
        self.decode(reply.get_ref())
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let request = self.request(codec::encode(&rpc), option.soft_ttl());
        let reply = self.client()?.vote(request).await.map_err(|s| status_error(&s))?;
        self.decode(reply.get_ref())
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let request = self.request(codec::encode(&rpc), option.soft_ttl());
        let reply = self.client()?.pre_vote(request).await.map_err(|s| status_error(&s))?;
        self.decode(reply.get_ref())
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let stall_timeout = option.hard_ttl();
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            sent = self.send_snapshot(vote, snapshot, stall_timeout) => match sent {
                Ok(response) => Ok(response),
                Err(status) if status.code() == tonic::Code::Unavailable => {
                    Err(StreamingError::Unreachable(Unreachable::from_string(status.message())))
                }
                Err(status) => Err(StreamingError::Network(NetworkError::from_string(format!("{}: {}", status.code(), status.message())))),
            },
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        let request = self.request(codec::encode(&req), option.soft_ttl());
        let reply = self.client()?.transfer_leader(request).await.map_err(|s| status_error(&s))?;
        self.decode(reply.get_ref())
    }
}
