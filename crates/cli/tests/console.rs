//! `raftq server --console`: a real one-node server (auth off) and its web
//! console's page and JSON API over plain HTTP. The browser test
//! (tests/console) drives the page itself, with auth on; this checks the API
//! the page calls, without a browser.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use raftq_client::{Client, ClientConfig, OutgoingMessage, QueueConfig};
use serde_json::{Value, json};

mod common;
use common::{Server, free_port};

struct Answer {
    status: u16,
    headers: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request; `console` adds the header the page sends.
fn request(port: u16, method: &str, path: &str, console: bool, body: Option<&Value>) -> Option<Answer> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if console {
        head.push_str("x-raftq-console: 1\r\n");
    }
    if !body.is_empty() {
        head.push_str(&format!("content-type: application/json\r\ncontent-length: {}\r\n", body.len()));
    }
    write!(stream, "{head}\r\n{body}").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let (headers, body) = response.split_once("\r\n\r\n")?;
    Some(Answer { status, headers: headers.to_ascii_lowercase(), body: body.to_owned() })
}

fn api(port: u16, method: &str, path: &str, body: Option<&Value>) -> Answer {
    request(port, method, &format!("/ui/api/{path}"), true, body).expect("the console answers")
}

fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_console_serves_its_page_and_an_api_over_the_grpc_api() {
    let (grpc, peer, http) = (free_port(), free_port(), free_port());
    let data = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{grpc}");
    let peer_addr = format!("127.0.0.1:{peer}");
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_raftq"))
            .args(["server", "--node-id", "1", "--listen", &addr, "--peer-listen", &peer_addr])
            .args(["--peers", &format!("1={addr}/{peer_addr}")])
            .args(["--metrics-listen", &format!("127.0.0.1:{http}"), "--console"])
            .arg("--data-dir")
            .arg(data.path())
            .stdin(Stdio::null())
            .spawn()
            .expect("starting raftq server"),
    );

    // The page: embedded, with a policy that allows only its own script.
    let page = wait_for("the console page", || request(http, "GET", "/ui/", false, None));
    assert_eq!(page.status, 200);
    assert!(page.body.contains(r#"<script src="app.js""#), "{}", page.body);
    assert!(
        page.headers.contains("content-security-policy: default-src 'none'; script-src 'self'"),
        "{}",
        page.headers
    );
    assert!(page.headers.contains("x-frame-options: deny"), "{}", page.headers);
    let script = request(http, "GET", "/ui/app.js", false, None).unwrap();
    assert!(script.status == 200 && script.headers.contains("text/javascript"), "{}", script.headers);
    assert_eq!(request(http, "GET", "/", false, None).unwrap().status, 303, "/ leads to /ui/");

    // The API answers only requests that carry the page's header.
    let refused = request(http, "GET", "/ui/api/queues", false, None).unwrap();
    assert_eq!((refused.status, refused.json()["code"].clone()), (403, json!("PERMISSION_DENIED")));

    // Auth is off: a Host that is a name (a DNS-rebinding page) is refused.
    let rebound = {
        let mut stream = TcpStream::connect(("127.0.0.1", http)).unwrap();
        write!(stream, "GET /ui/api/session HTTP/1.1\r\nHost: rebound.example:{http}\r\nx-raftq-console: 1\r\nConnection: close\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    };
    assert!(rebound.starts_with("HTTP/1.1 403"), "{rebound}");

    let session = api(http, "GET", "session", None).json();
    assert_eq!((session["auth"].clone(), session["admin"].clone()), (json!(false), json!(true)));

    // What the CLI and clients wrote shows through the API.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = Client::connect(ClientConfig::new([addr.clone()])).unwrap();
    runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.create_queue("orders", QueueConfig::default()).await.is_err() {
            assert!(Instant::now() < deadline, "no leader");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for body in ["one", "two"] {
            client.publish_one("orders", OutgoingMessage::new(body)).await.unwrap();
        }
    });
    let queues = api(http, "GET", "queues", None).json();
    let orders = &queues["queues"][0];
    assert_eq!((orders["name"].clone(), orders["stats"]["ready"].clone()), (json!("orders"), json!(2)));
    assert_eq!(orders["can"], json!({ "publish": true, "consume": true, "manage": true }));

    let page = api(http, "GET", "queue/messages?name=orders&state=ready&limit=10", None).json();
    let ids: Vec<u64> =
        page["messages"].as_array().unwrap().iter().map(|m| m["message_id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{page}");
    let message = api(http, "GET", &format!("queue/message?name=orders&id={}", ids[0]), None).json();
    assert_eq!(message["body"], json!("one"));
    assert_eq!(message["history"][0]["event"], json!("published"));

    let published =
        api(http, "POST", "queue/publish?name=orders", Some(&json!({ "body": "three", "attributes": { "k": "v" } })));
    assert_eq!(published.status, 200, "{}", published.body);
    let purged = api(http, "POST", "queue/purge?name=orders", Some(&json!({})));
    assert_eq!(purged.json(), json!({ "purged": 3 }));
    // The list read just before was shared for a second; the purge forgot it.
    let after = api(http, "GET", "queues", None).json();
    assert_eq!(after["queues"][0]["stats"]["ready"], json!(0), "an action's effect shows at once: {after}");
    assert_eq!(api(http, "GET", "queue?name=orders", None).json()["stats"]["ready"], json!(0));

    // Errors carry the gRPC code and name the field.
    let missing = api(http, "GET", "queue?name=nope", None);
    assert_eq!((missing.status, missing.json()["code"].clone()), (404, json!("NOT_FOUND")));
    let bad = api(http, "GET", "queue/messages?name=orders&state=gone", None);
    assert_eq!(bad.status, 400);
    assert!(bad.json()["message"].as_str().unwrap().starts_with("state:"), "{}", bad.body);
    let bad_rate = api(http, "POST", "queue/redrive?name=orders", Some(&json!({ "per_second": 0 })));
    assert_eq!(bad_rate.status, 400, "{}", bad_rate.body);
    let no_address = api(http, "POST", "cluster/add-learner", Some(&json!({ "node_id": 2, "address": "" })));
    assert_eq!(no_address.status, 400, "{}", no_address.body);
    assert!(no_address.json()["message"].as_str().unwrap().contains("address"), "{}", no_address.body);
    let unknown = api(http, "POST", "cluster/explode", Some(&json!({ "node_id": 1 })));
    assert_eq!(unknown.status, 404, "{}", unknown.body);

    // The cluster page's read: the leader's view and each node's own.
    let cluster = api(http, "GET", "cluster", None).json();
    assert_eq!(cluster["leader_view"]["leader"], json!(1), "{cluster}");
    assert_eq!(cluster["nodes"][0]["status"]["answered_by"], json!(1), "{cluster}");
}

#[test]
fn console_with_tls_needs_auth() {
    let dir = tempfile::tempdir().unwrap();
    let made = Command::new(env!("CARGO_BIN_EXE_raftq"))
        .args(["tls", "gen", "--dir"])
        .arg(dir.path().join("tls"))
        .args(["--node", "1=node-1"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let tls = |f: &str| dir.path().join("tls").join(f).into_os_string();
    let out = Command::new(env!("CARGO_BIN_EXE_raftq"))
        .args(["server", "--node-id", "1", "--listen", "127.0.0.1:1", "--peer-listen", "127.0.0.1:2"])
        .args(["--peers", "1=127.0.0.1:1/127.0.0.1:2"])
        .args(["--metrics-listen", "127.0.0.1:3", "--console", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--tls-cert")
        .arg(tls("node-1.pem"))
        .arg("--tls-key")
        .arg(tls("node-1-key.pem"))
        .arg("--tls-ca")
        .arg(tls("ca.pem"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--console with TLS on needs auth on"), "{stderr}");
}

#[test]
fn console_needs_the_http_port() {
    let out = Command::new(env!("CARGO_BIN_EXE_raftq"))
        .args(["server", "--node-id", "1", "--console", "--data-dir", "/nonexistent"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--metrics-listen"), "{stderr}");
}
