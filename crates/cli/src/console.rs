//! The web console, on `raftq server --console` at `/ui/` of the HTTP side
//! port (`--metrics-listen`): one static page (HTML, CSS and JavaScript
//! embedded in the binary: no CDN, no build step) and a small JSON API under
//! `/ui/api/` that the page polls.
//!
//! The API is a gateway to this node's own gRPC client port: every request
//! is made with the raftq client library, carrying the caller's bearer
//! token, so the answers are the same linearizable reads the CLI makes and
//! every permission is decided by the gRPC server, exactly as for the CLI.
//! The console never reads the state itself. The auth policy is consulted
//! only to tell the page which buttons to draw (a principal without
//! `manage` sees no destructive ones); the server refuses the action anyway.
//!
//! Reads are shared: the queues, topics and cluster reads of one caller are
//! kept for [`REFRESH`], so any number of open tabs cost one read per
//! refresh.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use raftq_client::{BearerToken, Client, ClientConfig, ClientError, MessageState, OutgoingMessage, code_name};
use raftq_server::auth::{Auth, Permission, Principal, sha256};
use serde_json::{Value, json};
use tonic::Code;

use crate::client_cmds::cluster::status_json;
use crate::client_cmds::output::{message_json, queue_json, topic_json};
use crate::metrics_http::SharedTls;

/// How long a caller's list reads (queues, topics, cluster) are shared.
pub const REFRESH: Duration = Duration::from_secs(1);
/// Clients kept (one per token), the least recently used dropped first.
const CLIENTS_MAX: usize = 64;
/// Bound on asking one node for its own status.
const NODE_STATUS_TIMEOUT: Duration = Duration::from_millis(1500);
/// Every API request must carry this header. The page sends it; a form or
/// a cross-site script cannot without the browser asking first (a CORS
/// preflight, which this server never grants), so another site cannot make
/// a visitor's browser purge a queue on an auth-less cluster.
pub const CONSOLE_HEADER: &str = "x-raftq-console";
/// Most messages one peek page shows.
const PEEK_LIMIT_MAX: u32 = 1000;
/// Largest body the publish form sends (the queue's own limit applies too).
const PUBLISH_BODY_MAX: usize = 1 << 20;

const INDEX_HTML: &str = include_str!("console/index.html");
const APP_JS: &str = include_str!("console/app.js");
const STYLE_CSS: &str = include_str!("console/style.css");
/// The page loads only its own script and style and cannot be framed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The console of one node.
#[derive(Debug)]
pub struct Console {
    /// This node's gRPC client address, dialable.
    grpc_addr: String,
    /// How to dial it (the node's own client TLS settings, reloaded).
    tls: SharedTls,
    /// The auth policy, when auth is on: which buttons a caller gets.
    auth: Option<Arc<Auth>>,
    /// One client per token, with the TLS settings it was made with and
    /// when it was last used.
    clients: Mutex<HashMap<[u8; 32], CachedClient>>,
    reads: Mutex<HashMap<ReadKey, (Instant, Arc<Value>)>>,
}

#[derive(Debug)]
struct CachedClient {
    client: Client,
    tls: Option<raftq_client::TlsConfig>,
    used: Instant,
}

/// A shared read: whose (token hash) and which (`queues`, `topics`, `cluster`).
type ReadKey = ([u8; 32], &'static str);

impl Console {
    pub fn new(grpc_addr: String, tls: SharedTls, auth: Option<Arc<Auth>>) -> Arc<Self> {
        Arc::new(Self { grpc_addr, tls, auth, clients: Mutex::default(), reads: Mutex::default() })
    }
}

/// The console's routes: `/` and `/ui` lead to `/ui/`.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }))
        .route("/ui/app.js", get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }))
        .route("/ui/style.css", get(|| async { asset(STYLE_CSS, "text/css; charset=utf-8") }))
        .route("/ui/api/session", get(session))
        .route("/ui/api/cluster", get(cluster))
        .route("/ui/api/cluster/{action}", post(cluster_action))
        .route("/ui/api/queues", get(queues))
        // A queue's name travels as `?name=`: `.` and `..` are valid queue
        // names, and a browser would resolve them in a path.
        .route("/ui/api/queue", get(queue))
        .route("/ui/api/queue/messages", get(messages))
        .route("/ui/api/queue/message", get(message))
        .route("/ui/api/queue/purge", post(purge))
        .route("/ui/api/queue/redrive", post(redrive))
        .route("/ui/api/queue/publish", post(publish))
        .route("/ui/api/topics", get(topics))
        .with_state(console)
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// An API answer: JSON, never cached by the browser.
fn answer(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// A failed API request: the HTTP status, and the gRPC code, raftq reason
/// and message the CLI would print.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    reason: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, reason: "", message: message.into() }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        let code = e.code();
        let reason = e.reason();
        Self {
            status: http_status(code),
            code: code_name(code),
            reason: if reason == raftq_client::ErrorReason::Unspecified { "" } else { reason.as_str_name() },
            message: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        answer(self.status, &json!({ "code": self.code, "reason": self.reason, "message": self.message }))
    }
}

/// The HTTP status for a gRPC code.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

type ApiResult = Result<Response, ApiError>;

/// Who is asking: their token (passed on to the gRPC API) and, with auth
/// on, their principal.
struct Caller {
    /// SHA-256 of the token (zeros without one): the key of shared reads.
    key: [u8; 32],
    token: Option<String>,
    /// `None` exactly when auth is off.
    principal: Option<Arc<Principal>>,
}

impl Caller {
    fn may(&self, permission: Permission, queue: &str) -> bool {
        self.principal.as_ref().is_none_or(|p| p.allows(permission, queue))
    }

    fn may_topic(&self, permission: Permission, topic: &str) -> bool {
        self.principal.as_ref().is_none_or(|p| p.allows_topic(permission, topic))
    }

    fn admin(&self) -> bool {
        self.principal.as_ref().is_none_or(|p| p.admin)
    }

    /// What the page may offer on `queue`.
    fn queue_can(&self, queue: &str) -> Value {
        json!({
            "publish": self.may(Permission::Publish, queue),
            "consume": self.may(Permission::Consume, queue),
            "manage": self.may(Permission::Manage, queue),
        })
    }
}

/// True for a Host header (`host[:port]`) naming an IP address or
/// `localhost`.
pub fn host_is_literal(host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    let name = match host.strip_prefix('[') {
        // `[v6]:port`
        Some(rest) => return rest.split(']').next().is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok()),
        None => {
            host.rsplit_once(':').map_or(host, |(name, port)| if port.parse::<u16>().is_ok() { name } else { host })
        }
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Console {
    /// The caller of an API request, refused without the console header
    /// and, with auth on, without a token the policy knows.
    fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        if !headers.contains_key(CONSOLE_HEADER) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
                format!("header {CONSOLE_HEADER}: missing; the console's API answers only its own page"),
            ));
        }
        // With auth off, a page on another site could rebind its own host
        // name to this node's address and become same-origin: without auth
        // the console answers only a Host that is an IP address or
        // `localhost`, names a rebinding attack cannot use.
        if self.auth.is_none() && !host_is_literal(headers.get(header::HOST).and_then(|h| h.to_str().ok())) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
                "header host: with auth off the console answers only an IP address or localhost \
                 (turn auth on to reach it by name)",
            ));
        }
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        let key = token.as_deref().map_or([0; 32], sha256);
        let principal = match &self.auth {
            None => None,
            Some(auth) => match token.as_deref().and_then(|t| auth.policy().principal(t)) {
                Some(principal) => Some(principal),
                None => {
                    let message = if token.is_some() { "the token is not valid" } else { "a token is required" };
                    return Err(ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message));
                }
            },
        };
        Ok(Caller { key, token, principal })
    }

    /// A client of this node for the caller's token (kept for the next
    /// request). Retries are few: a page shows an error rather than wait.
    fn client(&self, caller: &Caller) -> Result<Client, ApiError> {
        // The node's TLS files reload: a client made with older settings is
        // made again.
        let tls = self.tls.read().unwrap_or_else(PoisonError::into_inner).clone();
        let mut clients = lock(&self.clients);
        if let Some(cached) = clients.get_mut(&caller.key)
            && cached.tls == tls
        {
            cached.used = Instant::now();
            return Ok(cached.client.clone());
        }
        clients.remove(&caller.key);
        if clients.len() >= CLIENTS_MAX
            && let Some(oldest) = clients.iter().min_by_key(|(_, c)| c.used).map(|(key, _)| *key)
        {
            clients.remove(&oldest);
        }
        let mut config = ClientConfig::new([self.grpc_addr.clone()]);
        config.token = caller.token.clone().map(BearerToken::new);
        config.tls = tls.clone();
        config.retry.max_attempts = 4;
        config.retry.deadline = Duration::from_secs(5);
        let client = Client::connect(config)?;
        clients.insert(caller.key, CachedClient { client: client.clone(), tls, used: Instant::now() });
        Ok(client)
    }

    /// The caller's last `what` read if it is younger than [`REFRESH`],
    /// else a new one.
    async fn shared<F>(&self, caller: &Caller, what: &'static str, read: F) -> Result<Arc<Value>, ApiError>
    where
        F: Future<Output = Result<Value, ApiError>>,
    {
        if let Some((at, value)) = lock(&self.reads).get(&(caller.key, what))
            && at.elapsed() < REFRESH
        {
            return Ok(value.clone());
        }
        let value = Arc::new(read.await?);
        let mut reads = lock(&self.reads);
        reads.retain(|_, (at, _)| at.elapsed() < REFRESH);
        reads.insert((caller.key, what), (Instant::now(), value.clone()));
        Ok(value)
    }

    /// Forgets the caller's shared reads: after an action the next refresh
    /// shows its effect.
    fn forget(&self, caller: &Caller) {
        lock(&self.reads).retain(|(key, _), _| *key != caller.key);
    }
}

async fn session(State(console): State<Arc<Console>>, headers: HeaderMap) -> ApiResult {
    let caller = console.caller(&headers)?;
    Ok(answer(
        StatusCode::OK,
        &json!({
            "auth": console.auth.is_some(),
            "principal": caller.principal.as_ref().map(|p| p.name.clone()),
            "admin": caller.admin(),
            "version": env!("CARGO_PKG_VERSION"),
            "refresh_ms": REFRESH.as_millis() as u64,
        }),
    ))
}

/// Each node's own view (its indexes, role, term) and the leader's (how far
/// it replicated to each node, when each last answered).
async fn cluster(State(console): State<Arc<Console>>, headers: HeaderMap) -> ApiResult {
    let caller = console.caller(&headers)?;
    let client = console.client(&caller)?;
    let admin = caller.admin();
    let view = console
        .shared(&caller, "cluster", async {
            let leader_view = client.cluster_status().await?;
            let asks = leader_view.nodes.iter().map(|n| {
                let client = client.clone();
                let (id, address) = (n.node_id, n.address.clone());
                async move {
                    let own = tokio::time::timeout(NODE_STATUS_TIMEOUT, client.cluster_status_of(&address)).await;
                    match own {
                        Ok(Ok(status)) => json!({ "node_id": id, "address": address, "status": status_json(&status) }),
                        Ok(Err(e)) => json!({ "node_id": id, "address": address, "error": e.to_string() }),
                        Err(_) => json!({ "node_id": id, "address": address,
                                          "error": format!("no answer within {NODE_STATUS_TIMEOUT:?}") }),
                    }
                }
            });
            let nodes = futures_util::future::join_all(asks).await;
            Ok(json!({ "read_at_ms": now_ms(), "leader_view": status_json(&leader_view), "nodes": nodes }))
        })
        .await?;
    let mut view = (*view).clone();
    view["admin"] = json!(admin);
    Ok(answer(StatusCode::OK, &view))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeAction {
    node_id: u64,
    /// For `add-learner`: its client and peer addresses (`host:port`).
    #[serde(default)]
    address: String,
    #[serde(default)]
    peer_address: String,
}

async fn cluster_action(
    State(console): State<Arc<Console>>,
    Path(action): Path<String>,
    headers: HeaderMap,
    Json(body): Json<NodeAction>,
) -> ApiResult {
    let caller = console.caller(&headers)?;
    let client = console.client(&caller)?;
    let result = match action.as_str() {
        "add-learner" => {
            let membership = client.add_learner(body.node_id, &body.address, &body.peer_address).await?;
            json!({ "membership": crate::client_cmds::cluster::membership_json(&membership) })
        }
        "transfer-leader" => {
            client.transfer_leader(body.node_id).await?;
            json!({ "leader": body.node_id })
        }
        "promote" => {
            json!({ "membership": crate::client_cmds::cluster::membership_json(&client.promote(body.node_id).await?) })
        }
        "remove" => {
            json!({ "membership": crate::client_cmds::cluster::membership_json(&client.remove_node(body.node_id).await?) })
        }
        "snapshot" => {
            let status = client.cluster_status().await?;
            let Some(node) = status.nodes.iter().find(|n| n.node_id == body.node_id) else {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    format!("node_id: {} is not a member", body.node_id),
                ));
            };
            json!({ "snapshot_index": client.trigger_snapshot_of(&node.address).await? })
        }
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("action: {other:?} is not one of add-learner, transfer-leader, promote, remove, snapshot"),
            ));
        }
    };
    console.forget(&caller);
    Ok(answer(StatusCode::OK, &result))
}

async fn queues(State(console): State<Arc<Console>>, headers: HeaderMap) -> ApiResult {
    let caller = console.caller(&headers)?;
    let client = console.client(&caller)?;
    let list = console
        .shared(&caller, "queues", async {
            let queues = client.list_queues("").await?;
            let queues: Vec<Value> = queues
                .iter()
                .map(|q| {
                    let mut j = queue_json(q);
                    j["can"] = caller.queue_can(&q.name);
                    j
                })
                .collect();
            Ok(json!({ "read_at_ms": now_ms(), "queues": queues }))
        })
        .await?;
    Ok(answer(StatusCode::OK, &list))
}

/// `?name=QUEUE`.
#[derive(Debug, serde::Deserialize)]
struct Named {
    name: String,
}

async fn queue(
    State(console): State<Arc<Console>>,
    Query(Named { name }): Query<Named>,
    headers: HeaderMap,
) -> ApiResult {
    let caller = console.caller(&headers)?;
    let info = console.client(&caller)?.get_queue(&name).await?;
    let mut j = queue_json(&info);
    j["can"] = caller.queue_can(&name);
    j["read_at_ms"] = json!(now_ms());
    Ok(answer(StatusCode::OK, &j))
}

#[derive(Debug, serde::Deserialize)]
struct PeekQuery {
    name: String,
    state: Option<String>,
    after: Option<u64>,
    limit: Option<u32>,
}

/// A peek state filter by name (`any` or none: every state).
pub fn parse_state(state: Option<&str>) -> Result<Option<MessageState>, ApiError> {
    Ok(match state.unwrap_or("any") {
        "any" | "" => None,
        "ready" => Some(MessageState::Ready),
        "leased" => Some(MessageState::Leased),
        "delayed" => Some(MessageState::Delayed),
        "dead" => Some(MessageState::Dead),
        other => {
            return Err(ApiError::invalid(format!("state: {other:?} is not one of any, ready, leased, delayed, dead")));
        }
    })
}

async fn messages(
    State(console): State<Arc<Console>>,
    Query(query): Query<PeekQuery>,
    headers: HeaderMap,
) -> ApiResult {
    let caller = console.caller(&headers)?;
    let name = query.name;
    let state = parse_state(query.state.as_deref())?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=PEEK_LIMIT_MAX).contains(&limit) {
        return Err(ApiError::invalid(format!("limit: {limit} is not in 1..={PEEK_LIMIT_MAX}")));
    }
    let page = console.client(&caller)?.peek(&name, state, query.after.filter(|a| *a > 0), limit).await?;
    let messages: Vec<Value> = page.messages.iter().map(message_json).collect();
    Ok(answer(StatusCode::OK, &json!({ "messages": messages, "next_after_id": page.next_after_id })))
}

#[derive(Debug, serde::Deserialize)]
struct MessageQuery {
    name: String,
    id: u64,
}

async fn message(
    State(console): State<Arc<Console>>,
    Query(MessageQuery { name, id }): Query<MessageQuery>,
    headers: HeaderMap,
) -> ApiResult {
    let caller = console.caller(&headers)?;
    let m = console.client(&caller)?.inspect(&name, id).await?;
    Ok(answer(StatusCode::OK, &message_json(&m)))
}

async fn purge(
    State(console): State<Arc<Console>>,
    Query(Named { name }): Query<Named>,
    headers: HeaderMap,
) -> ApiResult {
    let caller = console.caller(&headers)?;
    let purged = console.client(&caller)?.purge_queue(&name).await?;
    console.forget(&caller);
    Ok(answer(StatusCode::OK, &json!({ "purged": purged })))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RedriveBody {
    /// 0 or absent: every dead letter.
    #[serde(default)]
    max_messages: u32,
    /// Absent: as fast as the server moves them.
    per_second: Option<u32>,
}

async fn redrive(
    State(console): State<Arc<Console>>,
    Query(Named { name }): Query<Named>,
    headers: HeaderMap,
    Json(body): Json<RedriveBody>,
) -> ApiResult {
    let caller = console.caller(&headers)?;
    if body.per_second == Some(0) {
        return Err(ApiError::invalid("per_second: must be at least 1 (leave it out for no limit)"));
    }
    let moved = console.client(&caller)?.redrive(&name, body.max_messages, body.per_second).await?;
    console.forget(&caller);
    Ok(answer(StatusCode::OK, &json!({ "moved": moved })))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody {
    body: String,
    #[serde(default)]
    attributes: HashMap<String, String>,
    #[serde(default)]
    delay_ms: Option<u64>,
}

async fn publish(
    State(console): State<Arc<Console>>,
    Query(Named { name }): Query<Named>,
    headers: HeaderMap,
    Json(body): Json<PublishBody>,
) -> ApiResult {
    let caller = console.caller(&headers)?;
    if body.body.len() > PUBLISH_BODY_MAX {
        return Err(ApiError::invalid(format!(
            "body: {} bytes, the console sends at most {PUBLISH_BODY_MAX}",
            body.body.len()
        )));
    }
    let mut message = OutgoingMessage::new(body.body.into_bytes());
    message.attributes = body.attributes;
    message.delay = body.delay_ms.map(Duration::from_millis);
    let result = console.client(&caller)?.publish_one(&name, message).await?;
    console.forget(&caller);
    Ok(answer(StatusCode::OK, &json!({ "message_id": result.message_id, "duplicate": result.duplicate })))
}

async fn topics(State(console): State<Arc<Console>>, headers: HeaderMap) -> ApiResult {
    let caller = console.caller(&headers)?;
    let client = console.client(&caller)?;
    let list = console
        .shared(&caller, "topics", async {
            let topics = client.list_topics("").await?;
            let topics: Vec<Value> = topics
                .iter()
                .map(|t| {
                    let mut j = topic_json(t);
                    j["can"] = json!({
                        "publish": caller.may_topic(Permission::Publish, &t.name),
                        "manage": caller.may_topic(Permission::Manage, &t.name),
                    });
                    j
                })
                .collect();
            Ok(json!({ "read_at_ms": now_ms(), "topics": topics }))
        })
        .await?;
    Ok(answer(StatusCode::OK, &list))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn console(auth: Option<&str>) -> Arc<Console> {
        let auth = auth.map(|text| Auth::new(raftq_server::auth::Policy::from_json(text).unwrap()));
        Console::new("127.0.0.1:1".into(), Arc::default(), auth)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    const POLICY: &str = r#"{"principals": [
        {"name": "ops", "tokens": ["sha256:TOKEN_OPS"], "admin": true,
         "queues": [{"pattern": "*", "allow": ["publish", "consume", "manage"]}]},
        {"name": "viewer", "tokens": ["sha256:TOKEN_VIEWER"],
         "queues": [{"pattern": "orders*", "allow": ["consume"]}]}
    ]}"#;

    fn policy() -> String {
        POLICY
            .replace("TOKEN_OPS", &raftq_server::auth::token_hash("ops-token")[7..])
            .replace("TOKEN_VIEWER", &raftq_server::auth::token_hash("viewer-token")[7..])
    }

    #[test]
    fn without_auth_only_an_address_or_localhost_is_answered() {
        for ok in ["127.0.0.1:7181", "127.0.0.1", "localhost:9100", "[::1]:7181", "10.0.0.5:9100", "LOCALHOST"] {
            assert!(host_is_literal(Some(ok)), "{ok}");
        }
        for refused in ["evil.example:7181", "evil.example", "127.0.0.1.evil.example", "[evil]:1", ""] {
            assert!(!host_is_literal(Some(refused)), "{refused}");
        }
        assert!(!host_is_literal(None));
        let c = console(None);
        let e = c.caller(&headers(&[(CONSOLE_HEADER, "1"), ("host", "rebound.example:7181")])).err().unwrap();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert!(e.message.starts_with("header host:"), "{}", e.message);
        // With auth on a name is fine: a rebinding page holds no token.
        let c = console(Some(&policy()));
        let headers =
            headers(&[(CONSOLE_HEADER, "1"), ("host", "raftq.internal:9100"), ("authorization", "Bearer ops-token")]);
        assert!(c.caller(&headers).is_ok());
    }

    #[test]
    fn api_requests_need_the_console_header() {
        let c = console(None);
        let e = c.caller(&headers(&[("host", "127.0.0.1:7181")])).err().unwrap();
        assert_eq!((e.status, e.code), (StatusCode::FORBIDDEN, "PERMISSION_DENIED"));
        assert!(e.message.contains(CONSOLE_HEADER), "{}", e.message);
        let caller = c.caller(&headers(&[(CONSOLE_HEADER, "1"), ("host", "127.0.0.1:7181")])).unwrap();
        assert!(caller.admin() && caller.may(Permission::Manage, "any"), "auth off: everything, as the gRPC API");
    }

    #[test]
    fn with_auth_on_a_token_is_needed_and_decides_the_buttons() {
        let c = console(Some(&policy()));
        let none = c.caller(&headers(&[(CONSOLE_HEADER, "1")])).err().unwrap();
        assert_eq!((none.status, none.message.as_str()), (StatusCode::UNAUTHORIZED, "a token is required"));
        let bad = c.caller(&headers(&[(CONSOLE_HEADER, "1"), ("authorization", "Bearer nope")])).err().unwrap();
        assert_eq!((bad.status, bad.message.as_str()), (StatusCode::UNAUTHORIZED, "the token is not valid"));

        let viewer = c.caller(&headers(&[(CONSOLE_HEADER, "1"), ("authorization", "Bearer viewer-token")])).unwrap();
        assert!(!viewer.admin());
        assert_eq!(viewer.queue_can("orders.dlq"), json!({ "publish": false, "consume": true, "manage": false }));
        let ops = c.caller(&headers(&[(CONSOLE_HEADER, "1"), ("authorization", "Bearer ops-token")])).unwrap();
        assert!(ops.admin());
        assert_eq!(ops.queue_can("orders.dlq"), json!({ "publish": true, "consume": true, "manage": true }));
        assert_ne!(ops.key, viewer.key, "shared reads are kept per token");
    }

    #[test]
    fn errors_keep_the_grpc_code_and_reason() {
        let denied = ClientError::Status {
            code: Code::PermissionDenied,
            message: "needs manage on queue q".into(),
            leader: None,
            retry_after: None,
            reason: raftq_client::ErrorReason::Unspecified,
            info: Default::default(),
        };
        let e = ApiError::from(denied);
        assert_eq!((e.status, e.code, e.reason), (StatusCode::FORBIDDEN, "PERMISSION_DENIED", ""));
        assert_eq!(http_status(Code::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(http_status(Code::Unavailable), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(http_status(Code::ResourceExhausted), StatusCode::TOO_MANY_REQUESTS);
    }

    #[test]
    fn peek_states_parse_or_name_the_field() {
        assert_eq!(parse_state(None).unwrap(), None);
        assert_eq!(parse_state(Some("dead")).unwrap(), Some(MessageState::Dead));
        let e = parse_state(Some("gone")).err().unwrap();
        assert!(e.message.starts_with("state:"), "{}", e.message);
    }

    #[tokio::test]
    async fn shared_reads_are_reused_within_the_refresh() {
        let c = console(None);
        let caller = c.caller(&headers(&[(CONSOLE_HEADER, "1"), ("host", "localhost")])).unwrap();
        let reads = std::sync::atomic::AtomicU32::new(0);
        let read = || async {
            reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(json!({}))
        };
        c.shared(&caller, "queues", read()).await.unwrap();
        c.shared(&caller, "queues", read()).await.unwrap();
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 1, "one read for two refreshes within a second");
        c.forget(&caller);
        c.shared(&caller, "queues", read()).await.unwrap();
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 2, "an action's effect is read anew");
    }
}
