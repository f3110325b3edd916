//! Authentication and permissions: bearer tokens mapped to principals.
//!
//! A [`Policy`] is parsed from the auth file (JSON, see `docs/security.md`):
//! each principal has a name, the SHA-256 hashes of its tokens, grants of
//! `publish`, `consume` and `manage` per queue-name pattern, and the
//! cluster-wide flags `admin` (membership, transfer, snapshot) and `peer`
//! (the Raft transport, for the nodes themselves). The server never holds a
//! token in the clear: a presented token is hashed and looked up.
//!
//! [`AuthLayer`] runs before any handler: it resolves the `authorization:
//! Bearer <token>` metadata to a principal (UNAUTHENTICATED if missing or
//! unknown), refuses the Raft transport to non-peers and `Cluster` changes to
//! non-admins (PERMISSION_DENIED), and hands the [`Caller`] to the handlers
//! in the request's extensions. Handlers check queue permissions with
//! [`require`] before they propose anything, so a denied request never
//! reaches the log. With auth off, every request is [`Caller::Anyone`].
//! Health and reflection are always open (probes and tools).
//!
//! The policy is swapped whole ([`Auth::replace`]) when the file is
//! reloaded; requests in progress keep the principal they started with.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use sha2::{Digest, Sha256};
use tonic::Status;
use tonic::codegen::http;

/// Prefix of a token hash in the auth file.
pub const TOKEN_HASH_PREFIX: &str = "sha256:";
/// Most principals in one auth file.
pub const PRINCIPALS_MAX: usize = 10_000;
/// Most queue grants of one principal.
pub const GRANTS_MAX: usize = 1_000;

/// A permission on queues whose name matches a grant's pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Publish.
    Publish,
    /// Receive, subscribe, ack, nack, extend a lease.
    Consume,
    /// Create, update, delete, purge, redrive, peek, inspect.
    Manage,
}

impl Permission {
    pub fn name(self) -> &'static str {
        match self {
            Self::Publish => "publish",
            Self::Consume => "consume",
            Self::Manage => "manage",
        }
    }
}

/// Permissions on the queues whose names match `pattern` (`*` matches any
/// run of characters, everything else itself).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub pattern: String,
    pub allow: Vec<Permission>,
}

/// Who a token belongs to and what it may do.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    pub name: String,
    /// `sha256:<64 hex digits>` of each token (several during a rotation).
    #[serde(default)]
    pub tokens: Vec<String>,
    #[serde(default)]
    pub queues: Vec<Grant>,
    /// Grants on topics, by topic-name pattern: `publish` to publish to a
    /// topic, `manage` to create, delete, bind and unbind (binding also
    /// needs `manage` on the queue); any grant lets it read the topic.
    #[serde(default)]
    pub topics: Vec<Grant>,
    /// Membership changes, leadership transfer, snapshots.
    #[serde(default)]
    pub admin: bool,
    /// The Raft transport: only the nodes' own token should have it.
    #[serde(default)]
    pub peer: bool,
}

impl Principal {
    /// True if a grant matching `queue` allows `permission`.
    pub fn allows(&self, permission: Permission, queue: &str) -> bool {
        self.queues.iter().any(|grant| grant.allow.contains(&permission) && pattern_matches(&grant.pattern, queue))
    }

    /// True if any grant matching `queue` allows anything (it may see it).
    pub fn sees(&self, queue: &str) -> bool {
        self.queues.iter().any(|grant| !grant.allow.is_empty() && pattern_matches(&grant.pattern, queue))
    }

    /// True if a topic grant matching `topic` allows `permission`.
    pub fn allows_topic(&self, permission: Permission, topic: &str) -> bool {
        self.topics.iter().any(|grant| grant.allow.contains(&permission) && pattern_matches(&grant.pattern, topic))
    }

    /// True if any topic grant matching `topic` allows anything.
    pub fn sees_topic(&self, topic: &str) -> bool {
        self.topics.iter().any(|grant| !grant.allow.is_empty() && pattern_matches(&grant.pattern, topic))
    }
}

/// The auth file's content.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    pub principals: Vec<Principal>,
}

/// A validated auth file, indexed by token hash.
#[derive(Debug, Default)]
pub struct Policy {
    principals: Vec<Arc<Principal>>,
    by_hash: HashMap<[u8; 32], usize>,
}

impl Policy {
    /// Parses and checks an auth file; the error names what is wrong.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let file: AuthFile = serde_json::from_str(text).map_err(|e| format!("auth file: {e}"))?;
        Self::new(file)
    }

    pub fn new(file: AuthFile) -> Result<Self, String> {
        if file.principals.len() > PRINCIPALS_MAX {
            return Err(format!("auth file: more than {PRINCIPALS_MAX} principals"));
        }
        let mut names = BTreeMap::new();
        let mut by_hash = HashMap::new();
        for (i, principal) in file.principals.iter().enumerate() {
            let at = format!("principals[{i}]");
            if principal.name.is_empty() || principal.name.len() > 128 || principal.name.chars().any(char::is_control) {
                return Err(format!("{at}.name: 1 to 128 printable characters"));
            }
            if names.insert(principal.name.clone(), i).is_some() {
                return Err(format!("{at}.name: {:?} appears twice", principal.name));
            }
            if principal.queues.len() > GRANTS_MAX {
                return Err(format!("{at}.queues: more than {GRANTS_MAX} grants"));
            }
            for (j, grant) in principal.queues.iter().enumerate() {
                check_pattern(&grant.pattern).map_err(|why| format!("{at}.queues[{j}].pattern: {why}"))?;
            }
            if principal.topics.len() > GRANTS_MAX {
                return Err(format!("{at}.topics: more than {GRANTS_MAX} grants"));
            }
            for (j, grant) in principal.topics.iter().enumerate() {
                check_pattern(&grant.pattern).map_err(|why| format!("{at}.topics[{j}].pattern: {why}"))?;
            }
            for (j, token) in principal.tokens.iter().enumerate() {
                let hash = parse_hash(token).map_err(|why| format!("{at}.tokens[{j}]: {why}"))?;
                if by_hash.insert(hash, i).is_some() {
                    return Err(format!("{at}.tokens[{j}]: the same token is listed twice"));
                }
            }
        }
        Ok(Self { principals: file.principals.into_iter().map(Arc::new).collect(), by_hash })
    }

    /// The principal holding `token`, if any.
    pub fn principal(&self, token: &str) -> Option<Arc<Principal>> {
        self.by_hash(&sha256(token))
    }

    /// The principal holding the token with this hash, if any.
    pub fn by_hash(&self, hash: &[u8; 32]) -> Option<Arc<Principal>> {
        self.by_hash.get(hash).map(|&i| self.principals[i].clone())
    }

    /// The principal named `name`, if any.
    pub fn named(&self, name: &str) -> Option<Arc<Principal>> {
        self.principals.iter().find(|p| p.name == name).cloned()
    }

    pub fn len(&self) -> usize {
        self.principals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.principals.is_empty()
    }
}

/// The policy in force; shared by the layer and whoever reloads it.
#[derive(Debug)]
pub struct Auth {
    policy: RwLock<Arc<Policy>>,
}

impl Auth {
    pub fn new(policy: Policy) -> Arc<Self> {
        Arc::new(Self { policy: RwLock::new(Arc::new(policy)) })
    }

    /// Puts `policy` in force for every request that starts from now on.
    pub fn replace(&self, policy: Policy) {
        *self.policy.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(policy);
    }

    pub fn policy(&self) -> Arc<Policy> {
        self.policy.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The principal the request's `authorization` metadata names, and the
    /// hash of the token it presented.
    fn authenticate(&self, headers: &http::HeaderMap) -> Result<(Arc<Principal>, TokenHash), Status> {
        let Some(value) = headers.get(http::header::AUTHORIZATION) else {
            return Err(crate::error::unauthenticated("authorization: missing; send `authorization: Bearer <token>`"));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| crate::error::unauthenticated("authorization: expected `Bearer <token>`"))?;
        let hash = sha256(token);
        let principal = self
            .policy()
            .by_hash(&hash)
            .ok_or_else(|| crate::error::unauthenticated("authorization: unknown token"))?;
        Ok((principal, TokenHash(hash)))
    }

    /// Whether the token with `hash` still allows `permission` on `queue`
    /// under the policy in force now (a long stream asks again as it goes:
    /// a token revoked meanwhile ends it).
    pub(crate) fn still_allows(&self, hash: &TokenHash, permission: Permission, queue: &str) -> Result<(), Status> {
        match self.policy().by_hash(&hash.0) {
            None => Err(crate::error::unauthenticated("authorization: the token was revoked")),
            Some(p) if p.allows(permission, queue) => Ok(()),
            Some(p) => Err(crate::error::permission_denied(format!(
                "principal {:?} no longer has `{}` on queue {queue:?}",
                p.name,
                permission.name()
            ))),
        }
    }
}

/// The hash of the token a request presented (a request extension, with
/// auth on), so a long stream can check it again later.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TokenHash([u8; 32]);

/// The SHA-256 of a token: what the auth file stores.
pub fn sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// `sha256:<hex>` of a token, as written in the auth file.
pub fn token_hash(token: &str) -> String {
    let mut out = String::from(TOKEN_HASH_PREFIX);
    for byte in sha256(token) {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

fn parse_hash(text: &str) -> Result<[u8; 32], String> {
    let hex = text.strip_prefix(TOKEN_HASH_PREFIX).ok_or("expected `sha256:<64 hex digits>`")?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("expected `sha256:<64 hex digits>`".into());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() || pattern.len() > 256 {
        return Err("1 to 256 characters".into());
    }
    if let Some(c) = pattern.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '*'))) {
        return Err(format!("{c:?} cannot appear in a queue name; use [A-Za-z0-9._-] and `*`"));
    }
    Ok(())
}

/// Glob match: `*` matches any run of characters (none included).
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was, and how much of the name it had taken.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Who made a request, as the handlers see it.
#[derive(Clone, Debug)]
pub enum Caller {
    /// Auth is off: everything is allowed.
    Anyone,
    Principal(Arc<Principal>),
}

impl Caller {
    /// For the audit log.
    pub fn name(&self) -> &str {
        match self {
            Self::Anyone => "-",
            Self::Principal(p) => &p.name,
        }
    }
}

/// Checks that the caller may do `permission` on `queue`. Fails closed: a
/// request that did not pass the [`AuthLayer`] has no caller and is denied.
pub(crate) fn require<T>(request: &tonic::Request<T>, permission: Permission, queue: &str) -> Result<(), Status> {
    caller_may(request.extensions().get::<Caller>(), permission, queue)
}

/// [`require`] for a caller taken from a request earlier (a stream checks
/// each of its messages).
pub(crate) fn caller_may(caller: Option<&Caller>, permission: Permission, queue: &str) -> Result<(), Status> {
    match caller {
        Some(Caller::Anyone) => Ok(()),
        Some(Caller::Principal(p)) if p.allows(permission, queue) => Ok(()),
        Some(Caller::Principal(p)) => Err(crate::error::permission_denied(format!(
            "principal {:?} lacks `{}` on queue {queue:?}",
            p.name,
            permission.name()
        ))),
        None => Err(crate::error::permission_denied("request was not authenticated")),
    }
}

/// Checks that the caller may do `permission` on `topic` (see
/// [`Principal::topics`]). Fails closed, as [`require`].
pub(crate) fn require_topic<T>(request: &tonic::Request<T>, permission: Permission, topic: &str) -> Result<(), Status> {
    match request.extensions().get::<Caller>() {
        Some(Caller::Anyone) => Ok(()),
        Some(Caller::Principal(p)) if p.allows_topic(permission, topic) => Ok(()),
        Some(Caller::Principal(p)) => Err(crate::error::permission_denied(format!(
            "principal {:?} lacks `{}` on topic {topic:?}",
            p.name,
            permission.name()
        ))),
        None => Err(crate::error::permission_denied("request was not authenticated")),
    }
}

/// The caller of a request, if it passed the [`AuthLayer`].
pub(crate) fn caller<T>(request: &tonic::Request<T>) -> Option<&Caller> {
    request.extensions().get::<Caller>()
}

/// What a path needs before its handler runs.
enum Gate {
    /// Health, reflection: no token.
    Open,
    /// Any known principal; the handler checks queue permissions.
    Authenticated,
    Admin,
    Peer,
}

fn gate(path: &str) -> Gate {
    if path.starts_with("/grpc.health.v1.") || path.starts_with("/grpc.reflection.") {
        return Gate::Open;
    }
    if path.starts_with("/raftq.v1.RaftTransport/") {
        return Gate::Peer;
    }
    if let Some(method) = path.strip_prefix("/raftq.v1.Cluster/") {
        return if method == "Status" { Gate::Authenticated } else { Gate::Admin };
    }
    Gate::Authenticated
}

/// The tower layer that authenticates every request (see the module docs).
/// `None` = auth off.
#[derive(Clone, Debug)]
pub(crate) struct AuthLayer {
    auth: Option<Arc<Auth>>,
}

impl AuthLayer {
    pub(crate) fn new(auth: Option<Arc<Auth>>) -> Self {
        Self { auth }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService { inner, auth: self.auth.clone() }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct AuthService<S> {
    inner: S,
    auth: Option<Arc<Auth>>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> tower::Service<http::Request<B>> for AuthService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let Some(auth) = &self.auth else {
            request.extensions_mut().insert(Caller::Anyone);
            return Box::pin(self.inner.call(request));
        };
        let path = request.uri().path();
        let gate = gate(path);
        if matches!(gate, Gate::Open) {
            return Box::pin(self.inner.call(request));
        }
        let decided = auth.authenticate(request.headers()).and_then(|(principal, hash)| {
            let denied = |what: &str| {
                Err(crate::error::permission_denied(format!("principal {:?} lacks `{what}` ({path})", principal.name)))
            };
            match gate {
                Gate::Admin if !principal.admin => denied("admin"),
                Gate::Peer if !principal.peer => denied("peer"),
                _ => Ok((principal, hash)),
            }
        });
        match decided {
            Ok((principal, hash)) => {
                request.extensions_mut().insert(Caller::Principal(principal));
                request.extensions_mut().insert(hash);
                Box::pin(self.inner.call(request))
            }
            Err(status) => {
                metrics::counter!("raftq_requests_refused_auth_total", "code" => code_label(status.code()))
                    .increment(1);
                tracing::info!(target: "raftq::audit", path, outcome = ?status.code(), message = status.message(), "refused");
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

fn code_label(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Unauthenticated => "unauthenticated",
        _ => "permission_denied",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, Service, ServiceExt};

    fn hash(token: &str) -> String {
        token_hash(token)
    }

    fn policy() -> Policy {
        Policy::new(AuthFile {
            principals: vec![
                Principal {
                    name: "app".into(),
                    tokens: vec![hash("app-token")],
                    queues: vec![Grant { pattern: "orders*".into(), allow: vec![Permission::Publish] }],
                    topics: vec![Grant { pattern: "events.*".into(), allow: vec![Permission::Publish] }],
                    admin: false,
                    peer: false,
                },
                Principal {
                    name: "ops".into(),
                    tokens: vec![hash("ops-token"), hash("ops-token-2")],
                    queues: vec![Grant {
                        pattern: "*".into(),
                        allow: vec![Permission::Publish, Permission::Consume, Permission::Manage],
                    }],
                    topics: vec![],
                    admin: true,
                    peer: false,
                },
                Principal {
                    name: "nodes".into(),
                    tokens: vec![hash("peer-token")],
                    queues: vec![],
                    topics: vec![],
                    admin: false,
                    peer: true,
                },
            ],
        })
        .unwrap()
    }

    #[test]
    fn patterns_match_like_globs() {
        for (pattern, name, expected) in [
            ("orders", "orders", true),
            ("orders", "orders2", false),
            ("orders*", "orders", true),
            ("orders*", "orders.eu", true),
            ("*", "", true),
            ("*", "x", true),
            ("*.dlq", "orders.dlq", true),
            ("*.dlq", "orders.dlq.x", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            ("a*a", "aaa", true),
            ("a*a", "ab", false),
            ("*x*", "abc", false),
            ("**", "abc", true),
        ] {
            assert_eq!(pattern_matches(pattern, name), expected, "{pattern} vs {name}");
        }
    }

    #[test]
    fn tokens_resolve_by_hash_only() {
        let p = policy();
        assert_eq!(p.principal("app-token").unwrap().name, "app");
        assert_eq!(p.principal("ops-token-2").unwrap().name, "ops");
        assert!(p.principal("nope").is_none());
        assert!(p.principal(&hash("app-token")).is_none(), "the hash itself is not a token");
        let app = p.principal("app-token").unwrap();
        assert!(app.allows(Permission::Publish, "orders-eu"));
        assert!(!app.allows(Permission::Consume, "orders-eu"));
        assert!(!app.allows(Permission::Publish, "payments"));
        assert!(app.sees("orders") && !app.sees("payments"));
    }

    #[test]
    fn bad_files_are_refused_with_the_field() {
        let err = |json: &str| Policy::from_json(json).unwrap_err();
        assert!(err(r#"{"principals":[{"name":"a","tokens":["abc"]}]}"#).contains("principals[0].tokens[0]"));
        assert!(
            err(r#"{"principals":[{"name":"a","queues":[{"pattern":"a/b","allow":[]}]}]}"#)
                .contains("principals[0].queues[0].pattern")
        );
        assert!(err(r#"{"principals":[{"name":"a"},{"name":"a"}]}"#).contains("principals[1].name"));
        assert!(err(r#"{"principals":[{"name":"a","admn":true}]}"#).contains("unknown field"));
        assert!(err(r#"{"principals":[{"name":"a","queues":[{"pattern":"*","allow":["read"]}]}]}"#).contains("read"));
        let twice =
            format!(r#"{{"principals":[{{"name":"a","tokens":["{0}"]}},{{"name":"b","tokens":["{0}"]}}]}}"#, hash("t"));
        assert!(err(&twice).contains("principals[1].tokens[0]"));
        let ok = format!(r#"{{"principals":[{{"name":"a","tokens":["{}"],"admin":true}}]}}"#, hash("t"));
        assert!(Policy::from_json(&ok).unwrap().principal("t").unwrap().admin);
    }

    fn request(path: &str, token: Option<&str>) -> http::Request<()> {
        let mut builder = http::Request::builder().uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        builder.body(()).unwrap()
    }

    /// What the layer answers for `path` with `token`: the gRPC status code
    /// if refused, or the caller's name the handler saw.
    async fn call(auth: Option<Arc<Auth>>, path: &str, token: Option<&str>) -> Result<String, String> {
        let inner = tower::service_fn(|req: http::Request<()>| async move {
            let who = req.extensions().get::<Caller>().map_or("<none>".to_owned(), |c| c.name().to_owned());
            Ok::<_, std::convert::Infallible>(http::Response::new(who))
        });
        let mut service = AuthLayer::new(auth).layer(inner);
        let response = service.ready().await.unwrap().call(request(path, token)).await.unwrap();
        match response.headers().get("grpc-status") {
            Some(code) => Err(code.to_str().unwrap().to_owned()),
            None => Ok(response.into_body()),
        }
    }

    #[tokio::test]
    async fn the_layer_authenticates_and_gates_by_service() {
        let auth = Some(Auth::new(policy()));
        const UNAUTHENTICATED: &str = "16";
        const DENIED: &str = "7";
        let publish = "/raftq.v1.Queue/Publish";
        assert_eq!(call(auth.clone(), publish, None).await, Err(UNAUTHENTICATED.into()));
        assert_eq!(call(auth.clone(), publish, Some("wrong")).await, Err(UNAUTHENTICATED.into()));
        assert_eq!(call(auth.clone(), publish, Some("app-token")).await, Ok("app".into()));
        assert_eq!(call(auth.clone(), "/raftq.v1.Cluster/Status", Some("app-token")).await, Ok("app".into()));
        assert_eq!(call(auth.clone(), "/raftq.v1.Cluster/RemoveNode", Some("app-token")).await, Err(DENIED.into()));
        assert_eq!(call(auth.clone(), "/raftq.v1.Cluster/RemoveNode", Some("ops-token")).await, Ok("ops".into()));
        assert_eq!(
            call(auth.clone(), "/raftq.v1.RaftTransport/AppendEntries", Some("ops-token")).await,
            Err(DENIED.into())
        );
        assert_eq!(
            call(auth.clone(), "/raftq.v1.RaftTransport/AppendEntries", None).await,
            Err(UNAUTHENTICATED.into())
        );
        assert_eq!(call(auth.clone(), "/raftq.v1.RaftTransport/Vote", Some("peer-token")).await, Ok("nodes".into()));
        assert_eq!(call(auth.clone(), "/grpc.health.v1.Health/Check", None).await, Ok("<none>".into()));
        // Off: everyone, marked so.
        assert_eq!(call(None, "/raftq.v1.RaftTransport/Vote", None).await, Ok("-".into()));
    }

    #[test]
    fn topic_grants_are_separate_from_queue_grants() {
        let policy = policy();
        let app = policy.principal("app-token").unwrap();
        assert!(app.allows_topic(Permission::Publish, "events.orders"));
        assert!(!app.allows_topic(Permission::Manage, "events.orders"));
        assert!(!app.allows_topic(Permission::Publish, "orders"), "a queue grant is not a topic grant");
        assert!(!app.allows(Permission::Publish, "events.orders"), "a topic grant is not a queue grant");
        assert!(app.sees_topic("events.x") && !app.sees_topic("other"));
        let bad = r#"{"principals":[{"name":"p","topics":[{"pattern":"a b","allow":["publish"]}]}]}"#;
        assert!(Policy::from_json(bad).unwrap_err().contains("principals[0].topics[0].pattern"));
    }

    #[tokio::test]
    async fn a_replaced_policy_applies_to_the_next_request() {
        let auth = Auth::new(policy());
        assert!(call(Some(auth.clone()), "/raftq.v1.Queue/Publish", Some("app-token")).await.is_ok());
        let mut file = AuthFile { principals: vec![] };
        file.principals.push(Principal {
            name: "app".into(),
            tokens: vec![hash("new-token")],
            queues: vec![],
            topics: vec![],
            admin: false,
            peer: false,
        });
        auth.replace(Policy::new(file).unwrap());
        assert!(call(Some(auth.clone()), "/raftq.v1.Queue/Publish", Some("app-token")).await.is_err(), "revoked");
        assert!(call(Some(auth), "/raftq.v1.Queue/Publish", Some("new-token")).await.is_ok());
    }

    #[test]
    fn a_stream_s_token_is_checked_against_the_policy_in_force() {
        let auth = Auth::new(policy());
        let hash = TokenHash(sha256("app-token"));
        assert!(auth.still_allows(&hash, Permission::Publish, "orders").is_ok());
        let denied = auth.still_allows(&hash, Permission::Consume, "orders").unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        auth.replace(Policy::default());
        let revoked = auth.still_allows(&hash, Permission::Publish, "orders").unwrap_err();
        assert_eq!(revoked.code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn require_fails_closed_and_names_permission_and_queue() {
        let p = policy();
        let mut request = tonic::Request::new(());
        assert_eq!(require(&request, Permission::Publish, "q").unwrap_err().code(), tonic::Code::PermissionDenied);
        request.extensions_mut().insert(Caller::Principal(p.principal("app-token").unwrap()));
        assert!(require(&request, Permission::Publish, "orders").is_ok());
        let denied = require(&request, Permission::Consume, "orders").unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert!(denied.message().contains("consume") && denied.message().contains("orders"), "{denied:?}");
        request.extensions_mut().insert(Caller::Anyone);
        assert!(require(&request, Permission::Manage, "anything").is_ok());
    }
}
