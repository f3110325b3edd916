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
use openraft::{RaftNetworkFactory, RaftNetworkV2};
use raftq_proto::v1::SnapshotChunk;
use raftq_proto::v1::raft_transport_client::RaftTransportClient;
use raftq_types::{NodeAddr, Snapshot, SnapshotData, TypeConfig, Vote};
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

/// The name a node's certificate carries (as a DNS subject alternative
/// name) to prove it is node `id` on the peer port: `node-<id>.peer.raftq`.
/// A node dialling peer `id` over TLS accepts only a certificate naming
/// it, and a node's peer port accepts only a client certificate naming a
/// member. Not a host name anyone resolves: an identity.
pub fn peer_identity_name(id: u64) -> String {
    format!("node-{id}.peer.raftq")
}

/// Dials a gRPC channel to node `target` at `host:port`. Channels are lazy:
/// dialling happens on first use, and a broken connection is re-dialled by
/// the channel.
pub trait Connector: fmt::Debug + Send + Sync + 'static {
    fn channel(&self, target: u64, addr: &str) -> Result<Channel, String>;

    /// Changes whenever channels dialled before would now be dialled
    /// differently (new TLS settings): cached channels are then replaced.
    fn generation(&self) -> u64 {
        0
    }
}

/// Dials peers over TCP, with TLS if set.
#[derive(Debug)]
pub struct TcpConnector {
    connect_timeout: Duration,
    /// The peers' CA and this node's client certificate; `None`: plain.
    /// The server name checked is the target's [`peer_identity_name`], not
    /// its host name: a certificate from the CA that is not node `target`'s
    /// is refused.
    tls: std::sync::RwLock<Option<ClientTlsConfig>>,
    generation: std::sync::atomic::AtomicU64,
}

impl Default for TcpConnector {
    fn default() -> Self {
        Self::new(None)
    }
}

impl TcpConnector {
    /// Dials plain TCP (`tls: None`) or TLS with these settings.
    pub fn new(tls: Option<ClientTlsConfig>) -> Self {
        Self {
            connect_timeout: PEER_CONNECT_TIMEOUT,
            tls: std::sync::RwLock::new(tls),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Puts new TLS settings in force (a rotated certificate or CA):
    /// channels dialled from now on use them, and the transport replaces
    /// its cached channels at their next use. Requests already in flight
    /// finish on the old connection.
    pub fn set_tls(&self, tls: ClientTlsConfig) {
        *self.tls.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(tls);
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Connector for TcpConnector {
    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn channel(&self, target: u64, addr: &str) -> Result<Channel, String> {
        let tls = self.tls.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut endpoint =
            Endpoint::from_shared(format!("{scheme}://{addr}")).map_err(|e| format!("bad address {addr:?}: {e}"))?;
        if let Some(tls) = tls {
            let tls = tls.domain_name(peer_identity_name(target));
            endpoint = endpoint.tls_config(tls).map_err(|e| format!("TLS to {addr}: {e}"))?;
        }
        Ok(endpoint
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(PEER_KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(PEER_KEEP_ALIVE_TIMEOUT)
            .connect_lazy())
    }
}

/// The connector generation the channels were dialled in, and the channels
/// by (node, peer address).
type ChannelCache = (u64, BTreeMap<(u64, String), Channel>);

/// openraft's network factory: hands out one client per target, sharing one
/// cached channel per address.
#[derive(Clone, Debug)]
pub struct Network {
    connector: Arc<dyn Connector>,
    /// (node, peer address) → channel, dialled in connector generation
    /// `.0`. A channel multiplexes every RPC to that peer. Ordered, so
    /// channels close in the same order on every run (seeds replay
    /// identically in the simulation).
    channels: Arc<Mutex<ChannelCache>>,
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

    fn channel(&self, target: u64, addr: &str) -> Result<Channel, String> {
        let generation = self.connector.generation();
        let mut cache = self.channels.lock().expect("channel cache lock poisoned");
        let (dialled_in, channels) = &mut *cache;
        if *dialled_in != generation {
            channels.clear();
            *dialled_in = generation;
        }
        let key = (target, addr.to_owned());
        if let Some(channel) = channels.get(&key) {
            return Ok(channel.clone());
        }
        let channel = self.connector.channel(target, addr)?;
        channels.insert(key, channel.clone());
        Ok(channel)
    }

    fn client(&self, target: u64, addr: &str) -> Result<RaftTransportClient<Channel>, String> {
        self.channel(target, addr).map(|channel| {
            RaftTransportClient::new(channel)
                .max_decoding_message_size(TRANSPORT_MESSAGE_BYTES_MAX)
                .max_encoding_message_size(TRANSPORT_MESSAGE_BYTES_MAX)
        })
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: u64, node: &NodeAddr) -> Peer {
        let generation = self.connector.generation();
        let client = self.client(target, &node.peer_addr);
        Peer {
            target,
            addr: node.peer_addr.clone(),
            client,
            generation,
            authorization: self.authorization.clone(),
            network: self.clone(),
        }
    }
}

/// The transport to one peer.
#[derive(Debug)]
pub struct Peer {
    target: u64,
    addr: String,
    /// `Err` if the address could not even be parsed: every RPC fails.
    client: Result<RaftTransportClient<Channel>, String>,
    /// The connector generation `client` was made in.
    generation: u64,
    authorization: Option<MetadataValue<Ascii>>,
    /// For a new client once the connector's settings change.
    network: Network,
}

fn status_error(status: &tonic::Status) -> RPCError<TypeConfig> {
    match status.code() {
        tonic::Code::Unavailable => RPCError::Unreachable(Unreachable::from_string(status.message())),
        _ => RPCError::Network(NetworkError::from_string(format!("{}: {}", status.code(), status.message()))),
    }
}

impl Peer {
    /// The transport client, made again if the connector's settings
    /// changed since (a rotated certificate).
    fn client(&mut self) -> Result<RaftTransportClient<Channel>, RPCError<TypeConfig>> {
        let generation = self.network.connector.generation();
        if generation != self.generation {
            self.client = self.network.client(self.target, &self.addr);
            self.generation = generation;
        }
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
    /// produces them: the sender holds no more than a few chunks (the
    /// receiver spools them, see `transport`). There is no deadline on the
    /// whole transfer (a large state takes as long as it takes); instead it
    /// fails if no chunk moves for `stall_timeout` while chunks are being
    /// sent. Once the last one is out, the receiver installs what it
    /// spooled, which takes as long as writing the state does; the peer
    /// connection's keep-alive notices a receiver that died meanwhile.
    async fn send_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        stall_timeout: Duration,
    ) -> Result<SnapshotResponse<TypeConfig>, tonic::Status> {
        let mut client = self.client().map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let meta = codec::encode(&(vote, snapshot.meta));
        let progress = Arc::new(std::sync::atomic::AtomicU64::new(0));
        // Set once the last chunk is handed to the stream: the stall check
        // ends there.
        let sent_all = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let failure: Arc<Mutex<Option<String>>> = Arc::default();
        struct Feed {
            data: SnapshotData,
            meta: Option<raftq_proto::v1::RaftPayload>,
            offset: u64,
            finished: bool,
        }
        let feed = Feed { data: snapshot.snapshot, meta: Some(meta), offset: 0, finished: false };
        let (stream_progress, stream_failure, stream_sent_all) = (progress.clone(), failure.clone(), sent_all.clone());
        let chunks = futures_util::stream::unfold(feed, move |mut feed| {
            let (progress, failure, sent_all) =
                (stream_progress.clone(), stream_failure.clone(), stream_sent_all.clone());
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
                if done {
                    sent_all.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                Some((chunk, feed))
            }
        });
        let request = self.request(chunks, SNAPSHOT_TRANSFER_TIMEOUT);
        let watchdog = async {
            let mut seen = u64::MAX;
            loop {
                tokio::time::sleep(stall_timeout).await;
                if sent_all.load(std::sync::atomic::Ordering::Relaxed) {
                    return std::future::pending().await;
                }
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// Counts the channels it dials; its generation is set by the test.
    #[derive(Debug, Default)]
    struct Counting {
        dialled: AtomicU64,
        generation: AtomicU64,
    }

    impl Connector for Counting {
        fn channel(&self, _target: u64, _addr: &str) -> Result<Channel, String> {
            self.dialled.fetch_add(1, Ordering::SeqCst);
            Ok(Endpoint::from_static("http://127.0.0.1:1").connect_lazy())
        }

        fn generation(&self) -> u64 {
            self.generation.load(Ordering::SeqCst)
        }
    }

    /// A rotated certificate (a new connector generation) reaches a peer
    /// client openraft already holds: its next RPC dials a new channel,
    /// while an unchanged generation keeps reusing the cached one.
    #[tokio::test]
    async fn new_tls_settings_replace_cached_channels() {
        let connector = Arc::new(Counting::default());
        let mut network = Network::new(connector.clone());
        let node = NodeAddr::new("a:1", "a:2");
        let mut peer = network.new_client(2, &node).await;
        let _ = network.new_client(2, &node).await;
        peer.client().expect("client");
        assert_eq!(connector.dialled.load(Ordering::SeqCst), 1, "one cached channel per peer");
        connector.generation.store(1, Ordering::SeqCst);
        peer.client().expect("client");
        assert_eq!(connector.dialled.load(Ordering::SeqCst), 2, "dialled again with the new settings");
        peer.client().expect("client");
        let _ = network.new_client(2, &node).await;
        assert_eq!(connector.dialled.load(Ordering::SeqCst), 2, "and cached again");
    }

    #[test]
    fn a_tcp_connector_moves_to_a_new_generation_on_new_tls() {
        let connector = TcpConnector::default();
        assert_eq!(connector.generation(), 0);
        connector.set_tls(ClientTlsConfig::new());
        assert_eq!(connector.generation(), 1);
    }
}
