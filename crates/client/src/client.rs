//! [`Client`]: the channel cache, leader tracking and the retry loop every
//! call goes through. The calls themselves are in `queue_api` and
//! `cluster_api`.

use std::{
    collections::BTreeMap,
    fmt,
    future::Future,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use raftq_proto::v1::{cluster_client::ClusterClient, queue_client::QueueClient};
use tokio::time::Instant;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::{
    config::{ClientConfig, GRPC_MESSAGE_BYTES_MAX},
    connector::{Connector, TcpConnector},
    error::ClientError,
    retry::{Decision, Safety, backoff_delay, decide},
    types::OutgoingMessage,
};

/// Most cached channels. Seeds are always kept; addresses learned from
/// leader hints are dropped when the cache is full (a cluster has a handful
/// of nodes, so this only bounds memory against misbehaving hints).
const CHANNELS_MAX: usize = 64;
/// Leader-hint redirects followed back to back without a backoff; past this
/// two nodes naming each other (stale hints) cannot spin the client.
const REDIRECTS_IN_A_ROW_MAX: u32 = 2;

/// A handle to a raftq cluster. Cheap to clone (clones share channels,
/// leader knowledge and the idempotency-key counter).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    /// Validated at construction.
    config: ClientConfig,
    /// Makes a channel the first time an address is used.
    connector: Box<dyn Connector>,
    /// One lazily connected channel per node address. Ordered, so channels
    /// are closed in the same order on every run (a HashMap's random order
    /// made simulation seeds replay differently).
    channels: Mutex<BTreeMap<String, Channel>>,
    /// The node that last served a leader call, or that a hint named. Tried
    /// first; cleared when it fails without naming another leader.
    leader: Mutex<Option<String>>,
    /// Index (mod `servers.len()`) of the seed to try when no leader is known.
    cursor: AtomicUsize,
    /// Random per client, so keys of different clients never collide.
    client_id: uuid::Uuid,
    /// Counter for idempotency keys `"{client_id}-{n}"`.
    next_key: AtomicU64,
    /// `Bearer <token>`, sent with every call; `None` without a token.
    credentials: Credentials,
    /// A bug planted on purpose, for the simulation's checker to find: see
    /// [`Client::plant_bug_retry_in_doubt`].
    retry_in_doubt: AtomicBool,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("servers", &self.inner.config.servers)
            .field("leader", &self.leader())
            .field("client_id", &self.inner.client_id)
            .finish_non_exhaustive()
    }
}

/// Where a call goes.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// The leader: known leader first, then hints, then the seeds in turn.
    Leader,
    /// This node only (e.g. a snapshot of one node); hints are not followed.
    Node(String),
}

/// Extra time a call needs beyond `request_timeout`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Budget {
    /// `request_timeout` per attempt, `retry.deadline` in all.
    Standard,
    /// Both extended by this much (a long poll's wait).
    Extended(Duration),
    /// No limit on an attempt once started (a rate-limited redrive, the
    /// opening of a stream); `retry.deadline` still bounds new attempts.
    Unbounded,
}

/// How one call is made and retried.
#[derive(Debug, Clone)]
pub(crate) struct CallSpec {
    /// For logs.
    pub(crate) op: &'static str,
    pub(crate) safety: Safety,
    pub(crate) target: Target,
    pub(crate) budget: Budget,
    /// Remember the answering node as leader (false for calls any node
    /// answers, like Cluster.Status).
    pub(crate) learn_leader: bool,
    /// Overrides `retry.max_attempts` (a best-effort follow-up call).
    pub(crate) max_attempts: Option<u32>,
}

impl CallSpec {
    /// A call served by the leader.
    pub(crate) fn leader(op: &'static str, safety: Safety) -> Self {
        Self { op, safety, target: Target::Leader, budget: Budget::Standard, learn_leader: true, max_attempts: None }
    }

    pub(crate) fn budget(self, budget: Budget) -> Self {
        Self { budget, ..self }
    }
}

impl Client {
    /// A client over TCP. No I/O happens here: each node is dialed on first
    /// use. Fails only on an invalid config.
    pub fn connect(config: ClientConfig) -> Result<Self, ClientError> {
        let connector = TcpConnector::new(&config);
        Self::with_connector(config, connector)
    }

    /// A client whose channels come from `connector` (simulation, tests).
    pub fn with_connector(config: ClientConfig, connector: impl Connector) -> Result<Self, ClientError> {
        config.validate()?;
        let credentials = Credentials::new(config.token.as_ref())?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                credentials,
                connector: Box::new(connector),
                channels: Mutex::new(BTreeMap::new()),
                leader: Mutex::new(None),
                cursor: AtomicUsize::new(0),
                client_id: uuid::Uuid::new_v4(),
                next_key: AtomicU64::new(0),
                retry_in_doubt: AtomicBool::new(false),
            }),
        })
    }

    /// **Testing only: makes this client wrong on purpose.** From now on it
    /// retries every call after an answer in doubt (UNKNOWN, a timeout, a
    /// connection lost mid-call) as if nothing had happened — the bug that
    /// applied a Receive or a Purge twice. The simulation plants it to prove
    /// its checker catches that class of bug; nothing else should call this.
    #[doc(hidden)]
    pub fn plant_bug_retry_in_doubt(&self) {
        self.inner.retry_in_doubt.store(true, Ordering::Relaxed);
    }

    /// The config this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The leader address this client currently believes in, if any.
    pub fn leader(&self) -> Option<String> {
        lock(&self.inner.leader).clone()
    }

    /// This client's random id, the prefix of the idempotency keys it makes.
    pub fn client_id(&self) -> String {
        self.inner.client_id.to_string()
    }

    /// Gives `message` a fresh idempotency key `"{client_id}-{n}"` unless it
    /// has a non-empty one. Done once per message, before its first attempt,
    /// so every retry carries the same key.
    pub(crate) fn assign_key(&self, message: &mut OutgoingMessage) {
        if message.idempotency_key.as_deref().is_none_or(str::is_empty) {
            let n = self.inner.next_key.fetch_add(1, Ordering::Relaxed);
            message.idempotency_key = Some(format!("{}-{n}", self.inner.client_id));
        }
    }

    /// `messages` for the wire, each with its key assigned
    /// ([`Client::assign_key`]): what every publish path sends, and resends
    /// unchanged on a retry.
    pub(crate) fn keyed(&self, messages: Vec<OutgoingMessage>) -> Vec<raftq_proto::v1::PublishMessage> {
        messages
            .into_iter()
            .map(|mut message| {
                self.assign_key(&mut message);
                crate::convert::publish_message(message)
            })
            .collect()
    }

    /// Records `addr` as the leader (from a hint or a served call).
    pub(crate) fn set_leader(&self, addr: &str) {
        let mut leader = lock(&self.inner.leader);
        if leader.as_deref() != Some(addr) {
            tracing::debug!(leader = addr, "raftq leader changed");
            *leader = Some(addr.to_owned());
        }
    }

    /// `addr` failed without naming a leader: stop preferring it, and move
    /// the seed cursor past it.
    pub(crate) fn forget(&self, addr: &str) {
        let mut leader = lock(&self.inner.leader);
        if leader.as_deref() == Some(addr) {
            *leader = None;
        }
        drop(leader);
        let servers = &self.inner.config.servers;
        let i = self.inner.cursor.load(Ordering::Relaxed);
        if servers[i % servers.len()] == addr {
            // Lost races are fine: another call already moved on.
            let _ = self.inner.cursor.compare_exchange(i, i.wrapping_add(1), Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// The node to try when nothing more specific is known.
    fn pick(&self) -> String {
        if let Some(leader) = self.leader() {
            return leader;
        }
        let servers = &self.inner.config.servers;
        servers[self.inner.cursor.load(Ordering::Relaxed) % servers.len()].clone()
    }

    /// The cached channel to `addr`, made on first use.
    fn channel(&self, addr: &str) -> Result<Channel, ClientError> {
        let mut channels = lock(&self.inner.channels);
        if let Some(channel) = channels.get(addr) {
            return Ok(channel.clone());
        }
        if channels.len() >= CHANNELS_MAX {
            channels.retain(|known, _| self.inner.config.servers.contains(known));
        }
        let channel = self.inner.connector.connect(addr)?;
        channels.insert(addr.to_owned(), channel.clone());
        Ok(channel)
    }

    /// A `Queue` stub on `channel` that accepts full 4 MiB batches.
    pub(crate) fn queue_stub(channel: Conn) -> QueueClient<Conn> {
        QueueClient::new(channel)
            .max_decoding_message_size(GRPC_MESSAGE_BYTES_MAX)
            .max_encoding_message_size(GRPC_MESSAGE_BYTES_MAX)
    }

    /// A `Cluster` stub on `channel`.
    pub(crate) fn cluster_stub(channel: Conn) -> ClusterClient<Conn> {
        ClusterClient::new(channel)
            .max_decoding_message_size(GRPC_MESSAGE_BYTES_MAX)
            .max_encoding_message_size(GRPC_MESSAGE_BYTES_MAX)
    }

    /// Makes one call with leader discovery and retries (see the crate docs
    /// for the rules). `attempt` builds and sends one attempt on a channel;
    /// it is called once per attempt with the same request, so a Publish
    /// retries with the same idempotency keys. Returns the answer and the
    /// address that gave it.
    pub(crate) async fn call<T, F, Fut>(&self, spec: CallSpec, mut attempt: F) -> Result<(T, String), ClientError>
    where
        F: FnMut(Conn) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let policy = &self.inner.config.retry;
        let max_attempts = spec.max_attempts.unwrap_or(policy.max_attempts);
        let start = Instant::now();
        let request_timeout = self.inner.config.request_timeout;
        let (attempt_timeout, deadline) = match spec.budget {
            Budget::Standard => (Some(request_timeout), start + policy.deadline),
            Budget::Extended(extra) => (Some(request_timeout + extra), start + policy.deadline + extra),
            Budget::Unbounded => (None, start + policy.deadline),
        };
        let mut redirect: Option<String> = None;
        let (mut attempts, mut failures, mut redirects_in_a_row) = (0u32, 0u32, 0u32);
        // An attempt ended in doubt (it may have taken effect): the call's
        // final error must then say so, whatever later attempts answer.
        let mut in_doubt = false;
        // The least wait an overloaded node asked for, for the next backoff.
        let mut at_least = Duration::ZERO;
        loop {
            let addr = match &spec.target {
                Target::Node(addr) => addr.clone(),
                Target::Leader => redirect.take().unwrap_or_else(|| self.pick()),
            };
            attempts += 1;
            let err = match self.attempt(&addr, attempt_timeout, deadline, &mut attempt).await {
                Ok(response) => {
                    if spec.learn_leader && matches!(spec.target, Target::Leader) {
                        self.set_leader(&addr);
                    }
                    return Ok((response.into_inner(), addr));
                }
                Err(err) => err,
            };
            let safety =
                if self.inner.retry_in_doubt.load(Ordering::Relaxed) { Safety::Idempotent } else { spec.safety };
            let mut decision = decide(&err, safety, &addr);
            tracing::debug!(op = spec.op, addr, attempts, error = %err, ?decision, "raftq call failed");
            if let (Target::Node(_), Decision::Redirect(_)) = (&spec.target, &decision) {
                // A call pinned to one node does not follow hints.
                decision = Decision::Backoff;
            }
            in_doubt |= err.is_ambiguous();
            let exhausted = |err| ClientError::RetriesExhausted {
                attempts,
                elapsed: start.elapsed(),
                last: Box::new(err),
                in_doubt,
            };
            if decision != Decision::Fail && attempts >= max_attempts {
                return Err(exhausted(err));
            }
            let backoff = match decision {
                Decision::Fail => {
                    // An unanswered call (timeout, connection lost) is not
                    // retried when it is not idempotent, but the node that
                    // did not answer must not stay the one every later call
                    // goes to: it may be dead, or cut off from the cluster.
                    if matches!(spec.target, Target::Leader) && err.is_ambiguous() {
                        self.forget(&addr);
                    }
                    if in_doubt && !err.is_ambiguous() && attempts > 1 {
                        return Err(exhausted(err));
                    }
                    return Err(err);
                }
                Decision::Redirect(hint) => {
                    self.set_leader(&hint);
                    redirect = Some(hint);
                    redirects_in_a_row += 1;
                    redirects_in_a_row > REDIRECTS_IN_A_ROW_MAX
                }
                Decision::Backoff => {
                    if let Target::Leader = spec.target {
                        self.forget(&addr);
                    }
                    redirects_in_a_row = 0;
                    true
                }
                // The node is overloaded, not gone: stay with it, but wait.
                Decision::Overloaded(wait) => {
                    if let Target::Leader = spec.target {
                        redirect = Some(addr.clone());
                    }
                    redirects_in_a_row = 0;
                    at_least = wait;
                    true
                }
            };
            if backoff {
                failures += 1;
                let delay = backoff_delay(policy, failures, fastrand::f64()).max(std::mem::take(&mut at_least));
                if Instant::now() + delay >= deadline {
                    return Err(exhausted(err));
                }
                tokio::time::sleep(delay).await;
            }
        }
    }

    /// One attempt at `addr`, bounded by `timeout` and the call's deadline.
    async fn attempt<T, F, Fut>(
        &self,
        addr: &str,
        timeout: Option<Duration>,
        deadline: Instant,
        attempt: &mut F,
    ) -> Result<tonic::Response<T>, ClientError>
    where
        F: FnMut(Conn) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let channel = InterceptedService::new(self.channel(addr)?, self.inner.credentials.clone());
        let call = attempt(channel);
        let Some(timeout) = timeout else {
            return call.await.map_err(|status| ClientError::from_status(status, addr));
        };
        let limit = timeout.min(deadline.saturating_duration_since(Instant::now()));
        match tokio::time::timeout(limit, call).await {
            Ok(result) => result.map_err(|status| ClientError::from_status(status, addr)),
            Err(_elapsed) => Err(ClientError::Timeout { addr: addr.to_owned(), timeout: limit }),
        }
    }
}

/// A channel that adds the client's credentials to every call.
pub(crate) type Conn = InterceptedService<Channel, Credentials>;

/// Adds `authorization` to each request when the client has a token.
#[derive(Clone, Default)]
pub(crate) struct Credentials(Option<MetadataValue<Ascii>>);

impl Credentials {
    pub(crate) fn new(token: Option<&crate::config::BearerToken>) -> Result<Self, ClientError> {
        token
            .map(|t| {
                format!("Bearer {}", t.secret())
                    .parse()
                    .map_err(|_| ClientError::InvalidArgument("token: not a valid header value".into()))
            })
            .transpose()
            .map(Self)
    }
}

impl tonic::service::Interceptor for Credentials {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// Locks `mutex`; a panic elsewhere cannot leave these maps inconsistent
/// (every critical section is a single read or write), so poison is ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(servers: &[&str]) -> Client {
        Client::connect(ClientConfig::new(servers.iter().copied())).unwrap()
    }

    #[test]
    fn keys_are_assigned_once_and_unique() {
        let c = client(&["a:1"]);
        let mut m1 = OutgoingMessage::new("x");
        let mut m2 = OutgoingMessage::new("y");
        c.assign_key(&mut m1);
        let first = m1.idempotency_key.clone().unwrap();
        c.assign_key(&mut m1);
        assert_eq!(m1.idempotency_key.as_deref(), Some(first.as_str()), "never re-keyed");
        c.assign_key(&mut m2);
        assert_ne!(m1.idempotency_key, m2.idempotency_key);
        assert!(first.starts_with(&c.client_id()) && first.ends_with("-0"), "{first}");
        let mut mine = OutgoingMessage::new("z").with_idempotency_key("order-17");
        c.assign_key(&mut mine);
        assert_eq!(mine.idempotency_key.as_deref(), Some("order-17"));
        let mut empty = OutgoingMessage::new("z").with_idempotency_key("");
        c.assign_key(&mut empty);
        assert!(empty.idempotency_key.unwrap().starts_with(&c.client_id()));
        assert_ne!(client(&["a:1"]).client_id(), c.client_id());
    }

    #[test]
    fn leader_first_then_seeds_in_turn() {
        let c = client(&["a:1", "b:2", "c:3"]);
        assert_eq!(c.pick(), "a:1");
        c.forget("a:1");
        assert_eq!(c.pick(), "b:2");
        c.forget("a:1");
        assert_eq!(c.pick(), "b:2", "forgetting another node does not move the cursor");
        c.set_leader("z:9");
        assert_eq!(c.pick(), "z:9");
        c.forget("b:2");
        assert_eq!(c.pick(), "z:9", "the leader stays until it fails");
        c.forget("z:9");
        assert_eq!(c.leader(), None);
        assert_eq!(c.pick(), "c:3");
        c.forget("c:3");
        assert_eq!(c.pick(), "a:1", "wraps around");
    }

    /// A node that accepts connections and never answers: a hung or
    /// partitioned leader, as a client sees it.
    async fn silent_node() -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        (addr, task)
    }

    #[tokio::test]
    async fn a_node_that_does_not_answer_a_non_idempotent_call_is_forgotten() {
        let (silent, task) = silent_node().await;
        let mut config = ClientConfig::new([silent.as_str(), "127.0.0.1:9"]);
        config.request_timeout = Duration::from_millis(200);
        let c = Client::connect(config).unwrap();
        c.set_leader(&silent);
        let spec = CallSpec::leader("test-call", Safety::NotIdempotent);
        let result = c
            .call(spec, |channel: Conn| async move {
                let mut queue = raftq_proto::v1::queue_client::QueueClient::new(channel);
                queue.get_queue(raftq_proto::v1::GetQueueRequest { queue: "q".into() }).await
            })
            .await;
        assert!(result.as_ref().is_err_and(ClientError::is_ambiguous), "{result:?}");
        assert_eq!(c.leader(), None, "the silent node is no longer taken for the leader");
        assert_eq!(c.pick(), "127.0.0.1:9", "the next call goes to another node");
        task.abort();
    }

    #[test]
    fn invalid_config_is_refused() {
        assert!(Client::connect(ClientConfig::default()).is_err());
    }
}
