//! The history of client operations: every call a workload process made,
//! when it was invoked and completed (simulated wall time), and its outcome
//! — `ok`, `fail` (definitely did nothing) or `info` (outcome unknown).

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use raftq_client::{ClientError, Code, code_name};
use sha2::{Digest, Sha256};

/// Names one lease of one message.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lease {
    pub queue: String,
    pub id: u64,
    pub attempt: u32,
}

impl From<&raftq_client::Receipt> for Lease {
    fn from(r: &raftq_client::Receipt) -> Self {
        Self { queue: r.queue.clone(), id: r.message_id, attempt: r.delivery_count }
    }
}

/// One delivery a Receive returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    pub lease: Lease,
    /// The body: the unique value the producer published; for a copy of a
    /// topic message, `VALUE@QUEUE` (each copy is its own value to find).
    pub value: String,
    pub lease_deadline_ms: u64,
    pub published_at_ms: u64,
}

/// What a process asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// One batch: every value is a message body and its idempotency key.
    Publish {
        queue: String,
        values: Vec<String>,
        delay_ms: u64,
    },
    /// One batch to a topic: every value is a message body and its
    /// idempotency key, and ends in `.KIND`, the message's `kind`
    /// attribute, which decides the queues it is routed to.
    PublishTopic {
        topic: String,
        values: Vec<String>,
    },
    Receive {
        queue: String,
        max: u32,
        lease_ms: u64,
    },
    Ack {
        lease: Lease,
        value: String,
    },
    Nack {
        lease: Lease,
        value: String,
        dead_letter: bool,
    },
    Extend {
        lease: Lease,
        value: String,
        lease_ms: u64,
    },
}

/// What a successful call answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Published {
        ids: Vec<u64>,
        duplicates: Vec<bool>,
    },
    /// Per message: its topic-level id, its copies (queue, id), duplicate.
    PublishedTopic {
        ids: Vec<u64>,
        copies: Vec<Vec<(String, u64)>>,
        duplicates: Vec<bool>,
    },
    Received(Vec<Delivered>),
    Acked,
    Nacked,
    Extended {
        deadline_ms: u64,
    },
}

/// How a call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok(Reply),
    /// Definitely did nothing (the server refused it).
    Fail {
        code: Code,
        message: String,
    },
    /// May or may not have taken effect (timeout, UNAVAILABLE, lost answer).
    Info {
        code: Code,
        message: String,
    },
}

impl Outcome {
    /// The outcome of a failed call: FAIL for codes that mean the server
    /// refused the request, INFO for everything that leaves it open
    /// (UNAVAILABLE is indefinite: a leader may have lost office after
    /// proposing the entry).
    pub fn of_error(error: &ClientError) -> Self {
        let code = error.code();
        let message = error.to_string();
        match code {
            Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::FailedPrecondition
            | Code::ResourceExhausted
            | Code::OutOfRange
            | Code::PermissionDenied
            | Code::Unauthenticated
            | Code::Unimplemented => Outcome::Fail { code, message },
            _ => Outcome::Info { code, message },
        }
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok(_))
    }

    pub fn is_info(&self) -> bool {
        matches!(self, Outcome::Info { .. })
    }
}

/// One completed operation.
#[derive(Clone, Debug)]
pub struct Op {
    pub process: u32,
    pub invoked_ms: u64,
    pub completed_ms: u64,
    pub call: Call,
    pub outcome: Outcome,
}

impl Op {
    /// A canonical one-line form: no error text (only codes), so traces
    /// compare on what happened, not on how an error was worded.
    fn canonical(&self, out: &mut String) {
        let outcome = match &self.outcome {
            Outcome::Ok(reply) => format!("ok {reply:?}"),
            Outcome::Fail { code, .. } => format!("fail {}", code_name(*code)),
            Outcome::Info { code, .. } => format!("info {}", code_name(*code)),
        };
        let _ =
            writeln!(out, "{} {}..{} {:?} => {outcome}", self.process, self.invoked_ms, self.completed_ms, self.call);
    }
}

/// The shared, append-only history of one run.
#[derive(Clone, Debug, Default)]
pub struct History {
    ops: Arc<Mutex<Vec<Op>>>,
}

impl History {
    pub fn record(&self, op: Op) {
        self.lock().push(op);
    }

    /// Every operation, in completion order.
    pub fn ops(&self) -> Vec<Op> {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Op>> {
        self.ops.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// SHA-256 (hex, first 16 digits) of the canonical history plus `extra`
/// lines (the final replica digests): equal traces, equal hashes.
pub fn trace_hash(ops: &[Op], extra: &[String]) -> String {
    let mut text = String::new();
    for op in ops {
        op.canonical(&mut text);
    }
    for line in extra {
        let _ = writeln!(text, "{line}");
    }
    // To find where two runs of a seed part ways: diff their traces.
    if let Some(path) = std::env::var_os("RAFTQ_SIM_TRACE_FILE") {
        let _ = std::fs::write(path, &text);
    }
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
