//! Retry rules, pure: which failures are retried for which call, where the
//! next attempt goes, how long to back off, and leader-hint parsing.

use std::time::Duration;

use tonic::{Code, metadata::MetadataMap};

use crate::{config::RetryPolicy, error::ClientError};

/// Whether sending a call twice can do harm. Decides what is retried after
/// an *ambiguous* failure (timeout, connection lost mid-call), where the
/// first attempt may have committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Safety {
    /// Reads; Publish (every message carries an idempotency key); Ack (a
    /// repeat of a committed ack fails with FAILED_PRECONDITION, which is
    /// reported, not hidden); ExtendLease (sets the same deadline again);
    /// Subscribe; promote; snapshot.
    Idempotent,
    /// Everything else: create/update/delete/purge queue, Receive (a lost
    /// lease only delays the message, but costs a delivery attempt), Nack,
    /// Redrive, membership changes. Retried only when the server said it did
    /// nothing (UNAVAILABLE) or the request never left (connect failure);
    /// never after UNKNOWN ("outcome unknown": the server appended the entry
    /// and lost track of it), a timeout or a broken connection.
    NotIdempotent,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Retry at once at this address (a leader hint naming another node).
    Redirect(String),
    /// Forget the node as leader, back off, and retry on the next node.
    Backoff,
    /// The node was overloaded and did nothing (RESOURCE_EXHAUSTED with
    /// `raftq-retry-after-ms`): keep it as leader, wait at least this long
    /// (and at least the usual backoff), retry there. Safe for every call.
    Overloaded(Duration),
    /// Give the error to the caller.
    Fail,
}

/// Decides the next step after `err` from an attempt sent to `tried`.
pub(crate) fn decide(err: &ClientError, safety: Safety, tried: &str) -> Decision {
    let ambiguous_ok = safety == Safety::Idempotent;
    match err {
        ClientError::Status { code: Code::Unavailable, leader: Some(hint), .. } if hint != tried => {
            Decision::Redirect(hint.clone())
        }
        ClientError::Status { code: Code::Unavailable, .. } => Decision::Backoff,
        ClientError::Status { code: Code::ResourceExhausted, retry_after: Some(wait), .. } => {
            Decision::Overloaded((*wait).min(RETRY_AFTER_MAX))
        }
        // The server appended the entry, then lost track of it: it may have
        // been applied. Only a request that is safe to apply twice goes again.
        ClientError::Status { code: Code::Unknown, leader: Some(hint), .. } if ambiguous_ok && hint != tried => {
            Decision::Redirect(hint.clone())
        }
        ClientError::Status { code: Code::Unknown, .. } if ambiguous_ok => Decision::Backoff,
        ClientError::Status { code: Code::DeadlineExceeded | Code::Cancelled, .. } if ambiguous_ok => Decision::Backoff,
        ClientError::Transport { connect: true, .. } => Decision::Backoff,
        ClientError::Transport { .. } | ClientError::Timeout { .. } if ambiguous_ok => Decision::Backoff,
        _ => Decision::Fail,
    }
}

/// The longest `raftq-retry-after-ms` the client honours: a bigger value
/// (a bug, or a hostile node) cannot park a call past its own backoff cap.
pub(crate) const RETRY_AFTER_MAX: Duration = Duration::from_secs(10);

/// Parses the `raftq-retry-after-ms` metadata (decimal milliseconds).
pub(crate) fn retry_after(metadata: &MetadataMap) -> Option<Duration> {
    let raw = metadata.get(raftq_proto::RETRY_AFTER_MS_METADATA_KEY)?.to_str().ok()?;
    raw.trim().parse::<u64>().ok().map(Duration::from_millis)
}

/// Backoff before the attempt after the `failures`-th failure (1-based):
/// `min(max_backoff, base_backoff * 2^(failures-1))`, of which the upper
/// half is jittered by `unit` in `[0, 1)` ("equal jitter"), so concurrent
/// clients spread out but never retry sooner than half the nominal delay.
pub(crate) fn backoff_delay(policy: &RetryPolicy, failures: u32, unit: f64) -> Duration {
    let exponent = failures.saturating_sub(1).min(31);
    let nominal = policy.base_backoff.saturating_mul(1u32 << exponent).min(policy.max_backoff);
    let unit = if unit.is_finite() { unit.clamp(0.0, 1.0) } else { 0.0 };
    let half = nominal / 2;
    half + (nominal - half).mul_f64(unit)
}

/// Parses the `raftq-leader` metadata: a `host:port`, tolerating
/// surrounding spaces and an `http://` prefix. Anything else is ignored.
pub(crate) fn leader_hint(metadata: &MetadataMap) -> Option<String> {
    let raw = metadata.get(raftq_proto::LEADER_METADATA_KEY)?.to_str().ok()?;
    parse_leader_hint(raw)
}

/// See [`leader_hint`].
pub(crate) fn parse_leader_hint(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    let addr = trimmed.strip_prefix("http://").unwrap_or(trimmed).trim_end_matches('/');
    crate::config::validate_address(addr).ok()?;
    Some(addr.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            deadline: Duration::from_secs(10),
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = policy();
        let ms = |failures, unit| backoff_delay(&p, failures, unit).as_millis();
        assert_eq!([ms(1, 1.0), ms(2, 1.0), ms(3, 1.0), ms(4, 1.0), ms(5, 1.0)], [100, 200, 400, 800, 1000]);
        assert_eq!(ms(1, 0.0), 50, "jitter never goes below half");
        assert_eq!(ms(60, 0.0), 500, "huge failure counts stay capped");
        assert_eq!(ms(u32::MAX, 0.99), 995);
        assert_eq!(ms(1, f64::NAN), 50);
        for failures in 1..40 {
            for unit in [0.0, 0.3, 0.999] {
                let d = backoff_delay(&p, failures, unit);
                assert!(d >= p.base_backoff / 2 && d <= p.max_backoff, "{failures} {unit} {d:?}");
            }
        }
    }

    #[test]
    fn retry_after_parses_milliseconds() {
        let mut md = MetadataMap::new();
        assert_eq!(retry_after(&md), None);
        md.insert(raftq_proto::RETRY_AFTER_MS_METADATA_KEY, "250".parse().unwrap());
        assert_eq!(retry_after(&md), Some(Duration::from_millis(250)));
        md.insert(raftq_proto::RETRY_AFTER_MS_METADATA_KEY, "soon".parse().unwrap());
        assert_eq!(retry_after(&md), None);
    }

    #[test]
    fn hints() {
        assert_eq!(parse_leader_hint("10.0.0.2:7001"), Some("10.0.0.2:7001".into()));
        assert_eq!(parse_leader_hint(" node-2:7001 "), Some("node-2:7001".into()));
        assert_eq!(parse_leader_hint("http://node-2:7001/"), Some("node-2:7001".into()));
        for bad in ["", "node-2", "node-2:", "2", "https://x:1", "a b:1"] {
            assert_eq!(parse_leader_hint(bad), None, "{bad:?}");
        }
        let mut md = MetadataMap::new();
        assert_eq!(leader_hint(&md), None);
        md.insert(raftq_proto::LEADER_METADATA_KEY, "n3:7003".parse().unwrap());
        assert_eq!(leader_hint(&md), Some("n3:7003".into()));
    }

    fn status(code: Code, leader: Option<&str>) -> ClientError {
        ClientError::Status {
            code,
            message: String::new(),
            leader: leader.map(str::to_owned),
            retry_after: None,
            reason: crate::ErrorReason::Unspecified,
            info: Default::default(),
        }
    }

    fn overloaded(ms: u64) -> ClientError {
        ClientError::Status {
            code: Code::ResourceExhausted,
            message: "the node's proposal queue is full".into(),
            leader: None,
            retry_after: Some(Duration::from_millis(ms)),
            reason: crate::ErrorReason::Overloaded,
            info: Default::default(),
        }
    }

    #[test]
    fn decisions() {
        use Decision::*;
        use Safety::*;
        let transport = |connect| ClientError::Transport { addr: "a:1".into(), message: String::new(), connect };
        let timeout = ClientError::Timeout { addr: "a:1".into(), timeout: Duration::from_secs(1) };
        let cases: Vec<(ClientError, Safety, Decision)> = vec![
            (status(Code::Unavailable, Some("b:2")), NotIdempotent, Redirect("b:2".into())),
            (status(Code::Unavailable, Some("a:1")), Idempotent, Backoff),
            (status(Code::Unavailable, None), NotIdempotent, Backoff),
            // Outcome unknown: never blindly retried unless idempotent.
            (status(Code::Unknown, Some("b:2")), NotIdempotent, Fail),
            (status(Code::Unknown, None), NotIdempotent, Fail),
            (status(Code::Unknown, Some("b:2")), Idempotent, Redirect("b:2".into())),
            (status(Code::Unknown, Some("a:1")), Idempotent, Backoff),
            (status(Code::Unknown, None), Idempotent, Backoff),
            (transport(true), NotIdempotent, Backoff),
            (transport(false), Idempotent, Backoff),
            (transport(false), NotIdempotent, Fail),
            (timeout.clone(), Idempotent, Backoff),
            (timeout, NotIdempotent, Fail),
            (status(Code::DeadlineExceeded, None), Idempotent, Backoff),
            (status(Code::DeadlineExceeded, None), NotIdempotent, Fail),
            (status(Code::FailedPrecondition, None), Idempotent, Fail),
            (status(Code::ResourceExhausted, None), Idempotent, Fail),
            (status(Code::ResourceExhausted, None), NotIdempotent, Fail),
            (overloaded(100), Idempotent, Overloaded(Duration::from_millis(100))),
            (overloaded(100), NotIdempotent, Overloaded(Duration::from_millis(100))),
            (overloaded(u64::MAX), NotIdempotent, Overloaded(RETRY_AFTER_MAX)),
            (status(Code::NotFound, Some("b:2")), Idempotent, Fail),
            (status(Code::InvalidArgument, None), Idempotent, Fail),
        ];
        for (err, safety, want) in cases {
            assert_eq!(decide(&err, safety, "a:1"), want, "{err:?} {safety:?}");
        }
    }
}
