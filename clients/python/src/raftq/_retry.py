"""Retry rules, pure: which failures are retried for which call, where the
next attempt goes and how long to wait before it.

Both clients (`raftq.Client` and `raftq.aio.Client`) drive their calls with
the same `Attempts` and their subscriptions with the same `Resubscribe`;
they differ only in how they send an attempt and how they wait (blocking,
or awaiting).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

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

    #: Changes nothing (GetQueue, ListQueues, GetTopic, ListTopics, Peek,
    #: Inspect, Status): every transient failure is retried.
    READ = "read"
    #: Publish and PublishTopic: every message carries an idempotency key,
    #: so a repeat of a publish that did commit returns the original ids
    #: (`duplicate`) and stores nothing. Retried after UNKNOWN,
    #: DEADLINE_EXCEEDED and broken connections too.
    PUBLISH = "publish"
    #: A write whose repeat leaves the same state (Bind: binding a queue
    #: that is bound already sets the same filter again). Retried as
    #: PUBLISH is.
    IDEMPOTENT = "idempotent"
    #: Everything else (Ack, Nack, Receive, ExtendLease, queue and topic
    #: admin but Bind, Redrive): retried only when the server said nothing
    #: was done (UNAVAILABLE; RESOURCE_EXHAUSTED with a retry delay), never
    #: when the outcome is unknown.
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


class Route:
    """A client's configured servers and the one believed to lead, where the
    next call (or subscribe) starts. Shared by a client's calls and
    subscriptions; every successful attempt and every redirect moves it."""

    def __init__(self, servers: Sequence[str]) -> None:
        if not servers:
            raise ValueError("no servers")
        self.servers: List[str] = list(servers)
        self.leader: str = self.servers[0]


class Attempts:
    """The retries of one call, without I/O: a client's call loop asks where
    and with how much time to send each attempt, and reports how it went.

        attempts = Attempts(route, safety, budget, clock, random)
        while True:
            remaining = attempts.next()          # None: out of time or attempts
            if remaining is None:
                raise attempts.error()
            try:
                response = send(attempts.addr, timeout=remaining)
            except grpc.RpcError as e:
                wait = attempts.failed(RaftqError.from_rpc_error(e, server=attempts.addr))
                if wait is None:
                    raise attempts.error()
                sleep(wait)                      # 0.0: retry at once
            else:
                attempts.succeeded()
                return response
    """

    def __init__(
        self,
        route: Route,
        safety: Safety,
        budget: float,
        clock: Callable[[], float],
        random: Callable[[], float],
    ) -> None:
        self.route = route
        self.safety = safety
        self.budget = budget
        self._clock = clock
        self._random = random
        self.deadline = clock() + budget
        #: Where the next attempt goes.
        self.addr = route.leader
        self._sent = 0
        self._failures = 0  # backoff exponent
        self._hops = 0  # redirects since the last backoff
        self._doubtful = False  # an earlier attempt may have taken effect
        self._last: Optional[RaftqError] = None

    def next(self) -> Optional[float]:
        """The time left for the next attempt (to `addr`), in seconds; None
        when the call's deadline has passed or its attempts are used up."""
        remaining = self.deadline - self._clock()
        if remaining <= 0 or self._sent >= MAX_ATTEMPTS:
            return None
        self._sent += 1
        return remaining

    def succeeded(self) -> None:
        """The attempt at `addr` was answered: the next call starts there."""
        self.route.leader = self.addr

    def failed(self, err: RaftqError) -> Optional[float]:
        """Records that the attempt at `addr` failed with `err` (setting its
        `in_doubt`) and moves `addr` to where the next attempt goes. Returns
        how long to wait before it (0.0 = at once), or None to give up: then
        raise `error()`."""
        if self.safety is not Safety.READ:
            err.in_doubt = self._doubtful or is_ambiguous(err)
            self._doubtful = err.in_doubt
        self._last = err
        decision = decide(err, self.safety, self.addr, self.route.servers)
        if decision.action is Action.FAIL:
            return None
        if decision.action is Action.REDIRECT and self._hops < 2 * len(self.route.servers):
            self._hops += 1
            self.addr = self.route.leader = decision.target  # type: ignore[assignment]
            return 0.0
        # Back off (at least the server's delay), then go on.
        self._failures += 1
        self._hops = 0
        wait = max(decision.wait, backoff_delay(self._failures, self._random()))
        if decision.action is Action.REDIRECT:
            self.addr = decision.target  # type: ignore[assignment]
        elif decision.action is Action.NEXT:
            self.addr = next_server(self.route.servers, self.addr)
        self.route.leader = self.addr
        if self._clock() + wait >= self.deadline:
            return None
        return wait

    def error(self) -> RaftqError:
        """What the call raises when it gives up: the last attempt's error,
        or DEADLINE_EXCEEDED if no attempt was made."""
        if self._last is None:
            return RaftqError(grpc.StatusCode.DEADLINE_EXCEEDED, f"no attempt made within {self.budget}s")
        return self._last


def resubscribable(err: RaftqError) -> bool:
    """Whether a subscription whose stream ended with `err` subscribes again:
    after UNAVAILABLE or UNKNOWN (the leader changed or stopped, a connection
    broke) and after an overload with a retry delay."""
    return err.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN) or (
        err.code == grpc.StatusCode.RESOURCE_EXHAUSTED and err.retry_delay is not None
    )


class Resubscribe:
    """When and where a subscription subscribes again after its stream
    ended, without I/O: it follows leader hints as calls do, backs off
    between failures, and gives up once it has failed for `timeout`
    seconds in a row (a delivery resets that)."""

    def __init__(self, route: Route, timeout: float, clock: Callable[[], float], random: Callable[[], float]) -> None:
        self.route = route
        self.timeout = timeout
        self._clock = clock
        self._random = random
        self._failures = 0
        self._hops = 0
        self._failing_since: Optional[float] = None

    def delivered(self, addr: str) -> None:
        """The stream at `addr` delivered a message: it works, and `addr`
        leads."""
        self._failures = self._hops = 0
        self._failing_since = None
        self.route.leader = addr

    def ended(self, err: RaftqError, addr: str) -> Optional[float]:
        """The stream at `addr` ended with `err`. Returns how long to wait
        before subscribing again at `route.leader` (0.0 = at once), or None
        to give up and raise `err`."""
        now = self._clock()
        if self._failing_since is None:
            self._failing_since = now
        if not resubscribable(err) or now - self._failing_since >= self.timeout:
            return None
        decision = decide(err, Safety.READ, addr, self.route.servers)
        if decision.action is Action.REDIRECT and self._hops < 2 * len(self.route.servers):
            self._hops += 1
            self.route.leader = decision.target  # type: ignore[assignment]
            return 0.0
        self._failures += 1
        self._hops = 0
        if decision.action is Action.REDIRECT:
            self.route.leader = decision.target  # type: ignore[assignment]
        elif decision.action is Action.NEXT:
            self.route.leader = next_server(self.route.servers, addr)
        return max(decision.wait, backoff_delay(self._failures, self._random()))
