//! [`Cluster`]: `raftq server` processes on loopback, one data dir each,
//! started, killed, stopped and restarted by the tests.
//!
//! Each node's stderr (its tracing log) goes to `node-N.log` in the
//! cluster's temporary directory; when a test panics, the tail of every log
//! is printed and the directory is kept for a post-mortem.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use raftq_client::{BearerToken, Client, ClientConfig, TlsConfig, proto};
use raftq_proto::v1::cluster_client::ClusterClient;
use raftq_server::auth::AuthFile;
use tempfile::TempDir;
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep, timeout};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::{Interceptor, interceptor::InterceptedService};
use tonic::transport::Channel;

/// The longest any single wait of a test may take (a leader, a catch-up, a
/// process exit): generous for a loaded two-core CI machine, short enough
/// that a hang fails the run instead of stalling it.
pub const WAIT: Duration = Duration::from_secs(60);
/// Interval between two looks at a polled status.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Limit on one Cluster.Status call, so a dead or hung node cannot stall a
/// poll.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a node may take to exit after SIGTERM or SIGKILL.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of each node's log printed when a test fails.
const LOG_TAIL_LINES: usize = 60;
/// The nodes' log filter: the server at info, openraft at warn except the
/// lines that say a follower installed a snapshot (the snapshot test looks
/// for them).
const LOG_FILTER: &str =
    "info,openraft=warn,openraft::engine::handler::following_handler=info,openraft::core::sm::worker=info";
/// Ports are taken from this many just below the kernel's ephemeral range.
const PORT_WINDOW: usize = 12_000;

/// How the nodes of a cluster are started (the `raftq server` flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// `--heartbeat-ms`.
    pub heartbeat_ms: u64,
    /// `--election-timeout-ms`.
    pub election_timeout_ms: u64,
    /// `--snapshot-every`; `None` = the server's default.
    pub snapshot_every: Option<u64>,
    /// `--log-keep`; `None` = the server's default.
    pub log_keep: Option<u64>,
    /// Auth on: the nodes get `--auth-file` and `--peer-token-file`, and
    /// the harness's own calls (status polls, `client()`, raw stubs) send
    /// the admin token.
    pub auth: Option<AuthOptions>,
    /// TLS on: the nodes serve `node_cert` and dial each other with it;
    /// the harness's own calls trust `ca` and present `client_cert`.
    pub tls: Option<TlsOptions>,
    /// Further `raftq server` flags, for every node.
    pub extra_args: Vec<String>,
}

/// PEM files of a cluster with TLS on (made by the test, e.g. with rcgen).
#[derive(Debug, Clone)]
pub struct TlsOptions {
    pub ca: String,
    pub node_cert: String,
    pub node_key: String,
    /// `--tls-client-ca`: every client must present a certificate from `ca`.
    pub require_client_cert: bool,
    /// The harness's client certificate and key (signed by `ca`).
    pub client_cert: String,
    pub client_key: String,
}

/// The auth setup of a cluster with auth on.
#[derive(Debug, Clone)]
pub struct AuthOptions {
    /// The auth file the nodes start with.
    pub file: AuthFile,
    /// The token the nodes present to each other (a `peer` principal's).
    pub peer_token: String,
    /// A token with `admin` and every queue permission, for the harness.
    pub admin_token: String,
}

/// Adds a bearer token (if any) to raw stub calls.
#[derive(Debug, Clone, Default)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    pub fn new(token: Option<&str>) -> Self {
        Self(token.map(|t| format!("Bearer {t}").parse().expect("token is a header value")))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A raw stub's channel: the node's, with the harness's token.
pub type Stub = InterceptedService<Channel, Bearer>;

impl Default for Options {
    /// The server's own defaults: 100 ms heartbeats, 500 ms elections.
    fn default() -> Self {
        Self {
            heartbeat_ms: 100,
            election_timeout_ms: 500,
            snapshot_every: None,
            log_keep: None,
            auth: None,
            tls: None,
            extra_args: Vec::new(),
        }
    }
}

/// A set of `raftq server` processes forming one cluster.
#[derive(Debug)]
pub struct Cluster {
    /// The test's name, in failure output.
    name: String,
    options: Options,
    /// Holds every node's data dir and log; `None` once kept after a failure.
    root: Option<TempDir>,
    nodes: BTreeMap<u64, Node>,
}

/// One node: what it takes to (re)start it, and its process if running.
#[derive(Debug)]
struct Node {
    /// `127.0.0.1:port`, its client listen and advertised address.
    addr: String,
    /// `127.0.0.1:port`, its peer listen and advertised address.
    peer_addr: String,
    /// Its `--peers` argument, kept for restarts.
    peers: String,
    data_dir: PathBuf,
    /// Its stderr; appended to across restarts.
    log_path: PathBuf,
    /// A lazily connecting channel for status polls; reconnects by itself
    /// after a restart.
    channel: Channel,
    /// `None` while the node is down.
    child: Option<Child>,
}

impl Cluster {
    /// Starts `voters` fresh nodes (ids `1..=voters`) that form one cluster,
    /// and waits until one of them leads.
    pub async fn start(name: &str, voters: u64, options: Options) -> Self {
        let root = tempfile::Builder::new().prefix(&format!("raftq-{name}-")).tempdir().expect("temp dir");
        let addrs: BTreeMap<u64, (String, String)> = (1..=voters).map(|id| (id, new_addrs())).collect();
        let peers = peers_arg(&addrs);
        let mut cluster = Self { name: name.to_owned(), options, root: Some(root), nodes: BTreeMap::new() };
        if let Some(tls) = cluster.options.tls.clone() {
            cluster.write_node_certificate(&tls.node_cert, &tls.node_key);
            std::fs::write(cluster.tls_path("ca.pem"), &tls.ca).expect("write ca");
        }
        if let Some(auth) = cluster.options.auth.clone() {
            cluster.write_auth_file(&auth.file);
            std::fs::write(cluster.peer_token_path(), format!("{}\n", auth.peer_token)).expect("write peer token");
        }
        for (id, addrs) in addrs {
            cluster.add_process(id, addrs, peers.clone());
        }
        let leader = cluster.wait_for_leader(None).await;
        eprintln!("[{name}] {voters} nodes up, leader {leader}");
        cluster
    }

    /// Starts a new node `id` that is not yet a member: its `--peers` lists
    /// the current voters `peers` without itself. Returns its client and
    /// peer address; add it with `add_learner`.
    pub fn start_joining_node(&mut self, id: u64, voters: &[u64]) -> (String, String) {
        assert!(!self.nodes.contains_key(&id), "node {id} already exists");
        let addrs: BTreeMap<u64, (String, String)> =
            voters.iter().map(|v| (*v, (self.addr(*v), self.peer_addr(*v)))).collect();
        let own = new_addrs();
        self.add_process(id, own.clone(), peers_arg(&addrs));
        own
    }

    fn add_process(&mut self, id: u64, (addr, peer_addr): (String, String), peers: String) {
        let dir = self.root.as_ref().expect("cluster dir").path();
        let data_dir = dir.join(format!("node-{id}"));
        let log_path = dir.join(format!("node-{id}.log"));
        let settings = ClientConfig {
            connect_timeout: Duration::from_secs(1),
            tls: self.client_tls(),
            ..ClientConfig::new([addr.clone()])
        };
        let channel = raftq_client::endpoint(&addr, &settings).expect("valid address").connect_lazy();
        let mut node = Node { addr, peer_addr, peers, data_dir, log_path, channel, child: None };
        node.child = Some(self.spawn(id, &node));
        self.nodes.insert(id, node);
    }

    /// Runs `raftq server` for `node` with the cluster's options.
    fn spawn(&self, id: u64, node: &Node) -> Child {
        let log = OpenOptions::new().create(true).append(true).open(&node.log_path).expect("open node log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_raftq"));
        command
            .arg("server")
            .args(["--node-id", &id.to_string(), "--listen", &node.addr, "--peer-listen", &node.peer_addr])
            .args(["--peers", &node.peers])
            .arg("--data-dir")
            .arg(&node.data_dir)
            .args(["--heartbeat-ms", &self.options.heartbeat_ms.to_string()])
            .args(["--election-timeout-ms", &self.options.election_timeout_ms.to_string()]);
        if let Some(every) = self.options.snapshot_every {
            command.args(["--snapshot-every", &every.to_string()]);
        }
        if let Some(keep) = self.options.log_keep {
            command.args(["--log-keep", &keep.to_string()]);
        }
        if let Some(tls) = &self.options.tls {
            command.arg("--tls-cert").arg(self.tls_path("node.pem"));
            command.arg("--tls-key").arg(self.tls_path("node-key.pem"));
            command.arg("--tls-ca").arg(self.tls_path("ca.pem"));
            if tls.require_client_cert {
                command.arg("--tls-client-ca").arg(self.tls_path("ca.pem"));
            }
        }
        command.args(&self.options.extra_args);
        if self.options.auth.is_some() {
            command.arg("--auth-file").arg(self.auth_file_path());
            command.arg("--peer-token-file").arg(self.peer_token_path());
        }
        // Only the flags above configure the node, whatever the CI sets.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("RAFTQ_") {
                command.env_remove(key);
            }
        }
        command
            .env("RAFTQ_LOG", LOG_FILTER)
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        command.spawn().unwrap_or_else(|e| panic!("[{}] spawning node {id}: {e}", self.name))
    }

    /// Node `id`'s client address.
    pub fn addr(&self, id: u64) -> String {
        self.node(id).addr.clone()
    }

    /// Node `id`'s peer address (the Raft transport).
    pub fn peer_addr(&self, id: u64) -> String {
        self.node(id).peer_addr.clone()
    }

    fn node(&self, id: u64) -> &Node {
        self.nodes.get(&id).unwrap_or_else(|| panic!("[{}] no node {id}", self.name))
    }

    fn node_mut(&mut self, id: u64) -> &mut Node {
        let name = self.name.clone();
        self.nodes.get_mut(&id).unwrap_or_else(|| panic!("[{name}] no node {id}"))
    }

    /// Ids of the nodes whose process is running.
    /// The process id of node `id`, if it is running.
    pub fn pid(&self, id: u64) -> Option<u32> {
        self.nodes[&id].child.as_ref().and_then(|child| child.id())
    }

    pub fn running_ids(&self) -> Vec<u64> {
        self.nodes.iter().filter(|(_, node)| node.child.is_some()).map(|(id, _)| *id).collect()
    }

    /// A client seeded with every running node.
    pub fn client(&self) -> Client {
        let addrs: Vec<String> = self.running_ids().into_iter().map(|id| self.addr(id)).collect();
        let config = ClientConfig { token: self.admin_token(), tls: self.client_tls(), ..ClientConfig::new(addrs) };
        Client::connect(config).expect("client config")
    }

    /// A client seeded with every running node that sends `token` (or none).
    pub fn client_with_token(&self, token: Option<&str>) -> Client {
        let addrs: Vec<String> = self.running_ids().into_iter().map(|id| self.addr(id)).collect();
        let token = token.map(BearerToken::new);
        Client::connect(ClientConfig { token, tls: self.client_tls(), ..ClientConfig::new(addrs) })
            .expect("client config")
    }

    /// The harness's client TLS settings (`None` without TLS).
    pub fn client_tls(&self) -> Option<TlsConfig> {
        self.options.tls.as_ref().map(|tls| TlsConfig {
            ca_pem: tls.ca.clone().into_bytes(),
            identity: Some((tls.client_cert.clone().into_bytes(), tls.client_key.clone().into_bytes())),
            domain: None,
        })
    }

    /// A client of every running node with these TLS settings.
    pub fn client_with_tls(&self, tls: Option<TlsConfig>) -> Client {
        let addrs: Vec<String> = self.running_ids().into_iter().map(|id| self.addr(id)).collect();
        let config = ClientConfig {
            tls,
            token: self.admin_token(),
            retry: raftq_client::RetryPolicy { max_attempts: 2, ..Default::default() },
            ..ClientConfig::new(addrs)
        };
        Client::connect(config).expect("client config")
    }

    /// A file in the cluster's directory.
    pub fn tls_path(&self, name: &str) -> PathBuf {
        self.root.as_ref().expect("cluster dir").path().join(name)
    }

    /// Replaces the certificate and key every node serves (key first, each
    /// by a rename, as cert-manager or an operator would).
    pub fn write_node_certificate(&self, cert: &str, key: &str) {
        for (name, pem) in [("node-key.pem", key), ("node.pem", cert)] {
            let path = self.tls_path(name);
            let staging = path.with_extension("new");
            std::fs::write(&staging, pem).expect("write pem");
            std::fs::rename(&staging, &path).expect("rename pem");
        }
    }

    fn admin_token(&self) -> Option<BearerToken> {
        self.options.auth.as_ref().map(|auth| BearerToken::new(auth.admin_token.clone()))
    }

    fn auth_file_path(&self) -> PathBuf {
        self.root.as_ref().expect("cluster dir").path().join("auth.json")
    }

    fn peer_token_path(&self) -> PathBuf {
        self.root.as_ref().expect("cluster dir").path().join("peer-token")
    }

    /// Replaces the auth file the nodes read (whole, by a rename, as an
    /// operator's tooling or a mounted secret would).
    pub fn write_auth_file(&self, file: &AuthFile) {
        self.write_auth_file_bytes(&serde_json::to_vec_pretty(file).expect("auth file json"));
    }

    /// Replaces the auth file with any bytes (a broken file, say).
    pub fn write_auth_file_bytes(&self, bytes: &[u8]) {
        let path = self.auth_file_path();
        let staging = path.with_extension("json.new");
        std::fs::write(&staging, bytes).expect("write auth file");
        std::fs::rename(&staging, &path).expect("rename auth file");
    }

    /// Waits until every running node's log, after byte `offsets[id]`, has
    /// a line containing `text`.
    pub async fn wait_for_log_line(&self, offsets: &BTreeMap<u64, u64>, text: &str) {
        for id in self.running_ids() {
            let from = offsets.get(&id).copied().unwrap_or(0);
            wait_for(&format!("node {id} to log {text:?}"), WAIT, async || {
                self.log_since(id, from).contains(text).then_some(())
            })
            .await;
        }
    }

    /// Every running node's log length, for [`Self::wait_for_log_line`].
    pub fn log_offsets(&self) -> BTreeMap<u64, u64> {
        self.running_ids().into_iter().map(|id| (id, self.log_len(id))).collect()
    }

    /// A raw stub channel to node `id` sending `token` (or none).
    pub fn stub_channel(&self, id: u64, token: Option<&str>) -> Stub {
        InterceptedService::new(self.node(id).channel.clone(), Bearer::new(token))
    }

    /// A raw stub to node `id`'s peer port, sending `token`: plain TCP, or
    /// TLS with `identity` as its client certificate (PEM cert and key;
    /// the peer port requires one when TLS is on).
    pub fn peer_stub(&self, id: u64, token: Option<&str>, identity: Option<(String, String)>) -> Stub {
        let addr = self.peer_addr(id);
        let endpoint = match &self.options.tls {
            None => tonic::transport::Endpoint::from_shared(format!("http://{addr}")).expect("valid address"),
            Some(tls) => {
                let mut settings = tonic::transport::ClientTlsConfig::new()
                    .ca_certificate(tonic::transport::Certificate::from_pem(&tls.ca))
                    .domain_name(format!("node-{id}.peer.raftq"));
                if let Some((cert, key)) = identity {
                    settings = settings.identity(tonic::transport::Identity::from_pem(cert, key));
                }
                tonic::transport::Endpoint::from_shared(format!("https://{addr}"))
                    .expect("valid address")
                    .tls_config(settings)
                    .expect("TLS settings")
            }
        };
        InterceptedService::new(endpoint.connect_timeout(Duration::from_secs(2)).connect_lazy(), Bearer::new(token))
    }

    fn harness_channel(&self, id: u64) -> Stub {
        let token = self.options.auth.as_ref().map(|auth| auth.admin_token.as_str());
        self.stub_channel(id, token)
    }

    /// A client seeded with node `id` alone (it still follows leader hints).
    pub fn client_of(&self, id: u64) -> Client {
        let config =
            ClientConfig { token: self.admin_token(), tls: self.client_tls(), ..ClientConfig::new([self.addr(id)]) };
        Client::connect(config).expect("client config")
    }

    /// A raw `Queue` stub on node `id`, accepting large messages.
    pub fn queue_stub(&self, id: u64) -> raftq_proto::v1::queue_client::QueueClient<Stub> {
        raftq_proto::v1::queue_client::QueueClient::new(self.harness_channel(id))
            .max_encoding_message_size(raftq_client::GRPC_MESSAGE_BYTES_MAX)
            .max_decoding_message_size(raftq_client::GRPC_MESSAGE_BYTES_MAX)
    }

    /// A raw `Cluster` stub on node `id` (no retries, no leader hints followed).
    pub fn cluster_stub(&self, id: u64) -> ClusterClient<Stub> {
        ClusterClient::new(self.harness_channel(id))
    }

    /// Node `id`'s own view of the cluster, or `None` if it does not answer
    /// within a short timeout (down, starting, hung).
    pub async fn status_of(&self, id: u64) -> Option<proto::StatusResponse> {
        let mut stub = ClusterClient::new(self.harness_channel(id));
        match timeout(STATUS_TIMEOUT, stub.status(proto::StatusRequest::default())).await {
            Ok(Ok(response)) => Some(response.into_inner()),
            _ => None,
        }
    }

    /// Node `id`'s entry about itself in its own status.
    pub async fn self_status(&self, id: u64) -> Option<proto::NodeStatus> {
        let status = self.status_of(id).await?;
        status.nodes.into_iter().find(|node| node.node_id == id)
    }

    /// The leader every running node (but `not`) names, if they all name
    /// the same running node other than `not`. Agreement, not one node's
    /// claim: right after a cluster starts, or after a kill, an election
    /// may still be settling.
    async fn find_leader(&self, not: Option<u64>) -> Option<u64> {
        let running = self.running_ids();
        let mut agreed = None;
        for id in running.iter().copied().filter(|id| Some(*id) != not) {
            let named = self.status_of(id).await?.leader_id?;
            if *agreed.get_or_insert(named) != named {
                return None;
            }
        }
        agreed.filter(|leader| Some(*leader) != not && running.contains(leader))
    }

    /// The current leader, waiting for one if there is none.
    pub async fn leader_id(&mut self) -> u64 {
        self.wait_for_leader(None).await
    }

    /// Waits until the running nodes (but `not`) agree on a leader other
    /// than `not`, checking all the while that no node died.
    pub async fn wait_for_leader(&mut self, not: Option<u64>) -> u64 {
        let deadline = Instant::now() + WAIT;
        loop {
            self.assert_running();
            if let Some(leader) = self.find_leader(not).await {
                return leader;
            }
            assert!(
                Instant::now() < deadline,
                "[{}] no leader (other than {not:?}) among running nodes {:?} within {WAIT:?}",
                self.name,
                self.running_ids()
            );
            sleep(POLL_INTERVAL).await;
        }
    }

    /// Panics if a node that should be running has exited.
    pub fn assert_running(&mut self) {
        let name = self.name.clone();
        for (id, node) in &mut self.nodes {
            if let Some(child) = &mut node.child
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("[{name}] node {id} exited unexpectedly: {status}");
            }
        }
    }

    /// SIGKILLs node `id` and waits until it is gone.
    pub async fn kill(&mut self, id: u64) {
        let name = self.name.clone();
        let mut child = self.node_mut(id).child.take().unwrap_or_else(|| panic!("[{name}] node {id} is not running"));
        child.start_kill().expect("SIGKILL");
        timeout(EXIT_TIMEOUT, child.wait())
            .await
            .unwrap_or_else(|_| panic!("[{name}] node {id} still running {EXIT_TIMEOUT:?} after SIGKILL"))
            .expect("wait for node");
        eprintln!("[{name}] killed node {id}");
    }

    /// SIGTERMs node `id` and waits until it has exited; a graceful stop must
    /// exit with success.
    pub async fn stop(&mut self, id: u64) {
        let name = self.name.clone();
        let mut child = self.node_mut(id).child.take().unwrap_or_else(|| panic!("[{name}] node {id} is not running"));
        let pid = child.id().expect("running child has a pid");
        kill(Pid::from_raw(i32::try_from(pid).expect("pid fits i32")), Signal::SIGTERM).expect("SIGTERM");
        let status: ExitStatus = timeout(EXIT_TIMEOUT, child.wait())
            .await
            .unwrap_or_else(|_| panic!("[{name}] node {id} still running {EXIT_TIMEOUT:?} after SIGTERM"))
            .expect("wait for node");
        assert!(status.success(), "[{name}] node {id} exited with {status} after SIGTERM");
        eprintln!("[{name}] stopped node {id}");
    }

    /// Starts node `id` again with the same arguments and data dir.
    pub fn restart(&mut self, id: u64) {
        let node = self.node(id);
        assert!(node.child.is_none(), "[{}] node {id} is still running", self.name);
        let child = self.spawn(id, node);
        self.node_mut(id).child = Some(child);
        eprintln!("[{}] restarted node {id}", self.name);
    }

    /// Bytes in node `id`'s log so far (to read only what comes after).
    pub fn log_len(&self, id: u64) -> u64 {
        std::fs::metadata(&self.node(id).log_path).map_or(0, |m| m.len())
    }

    /// Node `id`'s log from byte `offset` on.
    pub fn log_since(&self, id: u64, offset: u64) -> String {
        let bytes = std::fs::read(&self.node(id).log_path).unwrap_or_default();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(bytes.len());
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }

    /// Prints the last lines of every node's log to stderr.
    pub fn dump_logs(&self) {
        for (id, node) in &self.nodes {
            let text = self.log_since(*id, 0);
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            eprintln!("----- [{}] node {id} ({}), last {} lines of its log -----", self.name, node.addr, tail.len());
            for line in tail {
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for Cluster {
    /// On a failing test: print the logs and keep the directory. Running
    /// processes are killed either way (`kill_on_drop`).
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
            if let Some(root) = self.root.take() {
                eprintln!("[{}] kept data dirs and logs in {}", self.name, root.keep().display());
            }
        }
    }
}

/// Polls `check` until it gives a value, at most `limit`; panics naming
/// `what` if it never does.
pub async fn wait_for<T>(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        sleep(POLL_INTERVAL).await;
    }
}

/// `1=addr/peer_addr,2=addr/peer_addr,...`.
fn peers_arg(addrs: &BTreeMap<u64, (String, String)>) -> String {
    addrs.iter().map(|(id, (addr, peer))| format!("{id}={addr}/{peer}")).collect::<Vec<_>>().join(",")
}

/// A fresh client and peer address on loopback.
fn new_addrs() -> (String, String) {
    (format!("127.0.0.1:{}", pick_port()), format!("127.0.0.1:{}", pick_port()))
}

/// A port no other node of this test binary uses and nothing listens on.
///
/// Ports come from just below the kernel's ephemeral range, not from
/// binding port 0: a node restarted on its port must find it free, and an
/// ephemeral port may meanwhile have become the local end of some outgoing
/// connection. One counter per test binary hands each port out once; the
/// bind probe skips ports other processes hold.
fn pick_port() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<usize>().ok())
        .unwrap_or(32_768);
    let low = ephemeral_low.saturating_sub(PORT_WINDOW).max(1_024);
    if ephemeral_low <= low + 1_000 {
        // No room below the ephemeral range: let the kernel choose.
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        return probe.local_addr().expect("local addr").port();
    }
    let span = ephemeral_low - low;
    // Different test processes start at different places in the window.
    let offset = (std::process::id() as usize).wrapping_mul(7_919) % span;
    for _ in 0..span {
        let port = low + (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        let port = u16::try_from(port).expect("port below 65536");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {low}..{ephemeral_low}");
}
