"""Retry rules, pure: which failures are retried for which call, where the
next attempt goes and how long to wait before it."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional, Sequence

import grpc

from .errors import RaftqError

#: Backoff after the first failure, in seconds; it doubles per failure...
BASE_BACKOFF = 0.05
#: ... up to this.
MAX_BACKOFF = 1.0
#: The longest server-given retry delay honoured, in seconds: a larger one
#: (a bug, a hostile node) cannot park a call past any sane backoff.
RETRY_AFTER_MAX = 10.0
#: Attempts per call at most (the call's deadline usually ends it first).
MAX_ATTEMPTS = 60


class Safety(enum.Enum):
    """What sending a call twice can do, which decides whether a failure
    that leaves its outcome unknown is retried."""

    #: Changes nothing (GetQueue, ListQueues, Peek, Inspect, Status): every
    #: transient failure is retried.
    READ = "read"
    #: Publish: every message carries an idempotency key, so a repeat of a
    #: publish that did commit returns the original ids (`duplicate`).
    #: Retried after UNKNOWN, DEADLINE_EXCEEDED and broken connections too.
    PUBLISH = "publish"
    #: Everything else (Ack, Nack, Receive, ExtendLease, queue admin,
    #: Redrive): retried only when the server said nothing was done
    #: (UNAVAILABLE; RESOURCE_EXHAUSTED with a retry delay), never when the
    #: outcome is unknown.
    WRITE = "write"


class Action(enum.Enum):
    #: Retry at once at the leader the error named.
    REDIRECT = "redirect"
    #: Back off, then retry on the next configured server.
    NEXT = "next"
    #: Back off (at least the server's delay), then retry at the same server.
    SAME = "same"
    #: Give the error to the caller.
    FAIL = "fail"


@dataclass(frozen=True)
class Decision:
    action: Action
    #: For REDIRECT: the leader's address (one of the configured servers).
    target: Optional[str] = None
    #: The least wait the server asked for, in seconds (before backoff).
    wait: float = 0.0


def is_ambiguous(err: RaftqError) -> bool:
    """Whether the attempt that failed with `err` may have taken effect."""
    if err.code in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
        return True
    return err.is_broken_connection()


def decide(err: RaftqError, safety: Safety, tried: str, servers: Sequence[str]) -> Decision:
    """The next step after an attempt sent to `tried` failed with `err`."""
    code = err.code
    hint = err.leader if err.leader and err.leader != tried and err.leader in servers else None
    server_wait = min(err.retry_delay or 0.0, RETRY_AFTER_MAX)

    if code == grpc.StatusCode.UNAVAILABLE and not err.is_broken_connection():
        # The server did nothing (or no connection was made): safe for any call.
        if hint:
            return Decision(Action.REDIRECT, target=hint)
        return Decision(Action.NEXT, wait=server_wait)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and err.retry_delay is not None:
        # Overloaded or short of disk; it did nothing. Without a delay it is a
        # refusal that repeats (queue full, message too large): not retried.
        return Decision(Action.SAME, wait=server_wait)
    if code == grpc.StatusCode.CANCELLED:
        return Decision(Action.FAIL)
    if is_ambiguous(err):
        if safety is Safety.WRITE:
            return Decision(Action.FAIL)
        if hint:
            return Decision(Action.REDIRECT, target=hint)
        return Decision(Action.NEXT, wait=server_wait)
    return Decision(Action.FAIL)


def backoff_delay(failures: int, unit: float, base: float = BASE_BACKOFF, cap: float = MAX_BACKOFF) -> float:
    """Backoff before the attempt after the `failures`-th failure (1-based):
    `min(cap, base * 2**(failures-1))`, whose upper half is jittered by `unit`
    in [0, 1) ("equal jitter"): clients spread out, yet none retries sooner
    than half the nominal delay."""
    exponent = min(max(failures, 1) - 1, 30)
    nominal = min(cap, base * (2**exponent))
    if not (0.0 <= unit <= 1.0):  # NaN included
        unit = 0.0
    half = nominal / 2
    return half + (nominal - half) * unit


def next_server(servers: Sequence[str], current: str) -> str:
    """The server after `current` in the configured order (round robin)."""
    try:
        return servers[(list(servers).index(current) + 1) % len(servers)]
    except ValueError:
        return servers[0]
