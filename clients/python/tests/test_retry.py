"""The pure retry rules: backoff and decisions, no server needed."""

import math

import grpc
import pytest

from raftq import RaftqError
from raftq._retry import Action, Safety, backoff_delay, decide, next_server

from conftest import FakeRpcError, not_leader, rich_error

SERVERS = ["a:1", "b:2", "c:3"]


def test_backoff_doubles_and_is_capped():
    nominal = [backoff_delay(n, 1.0) for n in range(1, 7)]
    assert nominal == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8, 1.0])
    assert backoff_delay(1, 0.0) == pytest.approx(0.025), "jitter never goes below half"
    assert backoff_delay(10_000, 0.0) == pytest.approx(0.5), "huge failure counts stay capped"
    assert backoff_delay(1, math.nan) == pytest.approx(0.025)
    assert backoff_delay(0, 1.0) == pytest.approx(0.05)
    for failures in range(1, 50):
        for unit in (0.0, 0.3, 0.999):
            d = backoff_delay(failures, unit)
            assert 0.025 <= d <= 1.0


def test_backoff_jitter_spreads():
    assert backoff_delay(3, 0.0) < backoff_delay(3, 0.5) < backoff_delay(3, 0.99)


def err(e):
    return RaftqError.from_rpc_error(e)


def plain(code, message="", trailers=()):
    return err(FakeRpcError(code, message, trailers))


@pytest.mark.parametrize("safety", list(Safety))
def test_not_leader_redirects_to_a_configured_leader(safety):
    assert decide(err(not_leader("b:2")), safety, "a:1", SERVERS).action is Action.REDIRECT
    assert decide(err(not_leader("b:2")), safety, "a:1", SERVERS).target == "b:2"


@pytest.mark.parametrize("safety", list(Safety))
def test_hint_outside_the_list_goes_to_the_next_server(safety):
    d = decide(err(not_leader("raftq-2:7101")), safety, "a:1", SERVERS)
    assert d.action is Action.NEXT
    # A hint naming the node tried is no redirect either.
    assert decide(err(not_leader("a:1")), safety, "a:1", SERVERS).action is Action.NEXT


def test_plain_trailer_hint_is_followed():
    e = plain(grpc.StatusCode.UNAVAILABLE, "not the leader", [("raftq-leader", "c:3")])
    d = decide(e, Safety.WRITE, "a:1", SERVERS)
    assert (d.action, d.target) == (Action.REDIRECT, "c:3")


def test_no_leader_waits_the_retry_delay():
    e = err(rich_error(grpc.StatusCode.UNAVAILABLE, "no leader", "NO_LEADER", retry_ms=300))
    d = decide(e, Safety.WRITE, "a:1", SERVERS)
    assert d.action is Action.NEXT and d.wait == pytest.approx(0.3)


def test_overload_retries_the_same_server_after_the_delay():
    e = err(rich_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "overloaded", "OVERLOADED", retry_ms=100))
    d = decide(e, Safety.WRITE, "a:1", SERVERS)
    assert d.action is Action.SAME and d.wait == pytest.approx(0.1)
    legacy = plain(grpc.StatusCode.RESOURCE_EXHAUSTED, "", [("raftq-retry-after-ms", "250")])
    assert decide(legacy, Safety.WRITE, "a:1", SERVERS).wait == pytest.approx(0.25)
    huge = plain(grpc.StatusCode.RESOURCE_EXHAUSTED, "", [("raftq-retry-after-ms", "99999999")])
    assert decide(huge, Safety.READ, "a:1", SERVERS).wait == pytest.approx(10.0), "capped"


def test_replicated_refusals_are_not_retried():
    full = err(rich_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "full", "QUEUE_FULL", {"limit": "max_length"}))
    assert decide(full, Safety.PUBLISH, "a:1", SERVERS).action is Action.FAIL
    for code in (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.CANCELLED,
    ):
        for safety in Safety:
            assert decide(plain(code), safety, "a:1", SERVERS).action is Action.FAIL, (code, safety)


@pytest.mark.parametrize(
    "e",
    [
        rich_error(grpc.StatusCode.UNKNOWN, "outcome unknown", "OUTCOME_UNKNOWN"),
        FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"),
        FakeRpcError(grpc.StatusCode.UNAVAILABLE, "Socket closed"),
    ],
)
def test_outcome_unknown_is_retried_only_for_publish_idempotent_writes_and_reads(e):
    assert decide(err(e), Safety.WRITE, "a:1", SERVERS).action is Action.FAIL
    assert decide(err(e), Safety.PUBLISH, "a:1", SERVERS).action is Action.NEXT
    assert decide(err(e), Safety.IDEMPOTENT, "a:1", SERVERS).action is Action.NEXT
    assert decide(err(e), Safety.READ, "a:1", SERVERS).action is Action.NEXT


def test_outcome_unknown_with_a_hint_redirects_a_publish():
    e = err(rich_error(grpc.StatusCode.UNKNOWN, "outcome unknown", "OUTCOME_UNKNOWN", {"leader": "c:3"}))
    d = decide(e, Safety.PUBLISH, "a:1", SERVERS)
    assert (d.action, d.target) == (Action.REDIRECT, "c:3")
    assert decide(e, Safety.WRITE, "a:1", SERVERS).action is Action.FAIL


def test_connect_failure_is_retried_for_every_call():
    e = plain(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; last error: Connection refused")
    assert decide(e, Safety.WRITE, "a:1", SERVERS).action is Action.NEXT


def test_next_server_round_robin():
    assert [next_server(SERVERS, s) for s in SERVERS] == ["b:2", "c:3", "a:1"]
    assert next_server(SERVERS, "elsewhere:9") == "a:1"


# -- Attempts and Resubscribe: the loops both clients drive -------------------


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_attempts_mark_writes_in_doubt_and_stop():
    from raftq._retry import Attempts, Route

    route = Route(SERVERS)
    attempts = Attempts(route, Safety.WRITE, 5.0, Clock(), lambda: 0.5)
    assert attempts.next() == pytest.approx(5.0) and attempts.addr == "a:1"
    e = err(rich_error(grpc.StatusCode.UNKNOWN, "outcome unknown", "OUTCOME_UNKNOWN", {"leader": "b:2"}))
    assert attempts.failed(e) is None
    assert attempts.error() is e and e.in_doubt


@pytest.mark.parametrize("safety", [Safety.PUBLISH, Safety.IDEMPOTENT])
def test_attempts_retry_a_repeatable_write_in_doubt_and_keep_the_doubt(safety):
    from raftq._retry import Attempts, Route

    attempts = Attempts(Route(SERVERS), safety, 5.0, Clock(), lambda: 0.5)
    attempts.next()
    e = err(rich_error(grpc.StatusCode.UNKNOWN, "outcome unknown", "OUTCOME_UNKNOWN", {"leader": "b:2"}))
    assert attempts.failed(e) == 0.0 and attempts.addr == "b:2"
    assert e.in_doubt
    attempts.next()
    refused = err(rich_error(grpc.StatusCode.NOT_FOUND, "gone", "TOPIC_NOT_FOUND"))
    assert attempts.failed(refused) is None
    assert attempts.error() is refused and refused.in_doubt


def test_topic_methods_declare_their_safety():
    from raftq import _ops

    assert _ops.get_topic("t").safety is Safety.READ
    assert _ops.ListTopicsPages("", 0).next().safety is Safety.READ
    assert _ops.publish_topic("t", [b"x"]).safety is Safety.PUBLISH
    assert _ops.bind("t", "q", None).safety is Safety.IDEMPOTENT
    for op in (_ops.create_topic("t", False, None), _ops.delete_topic("t"), _ops.unbind("t", "q")):
        assert op.safety is Safety.WRITE, op.method


def test_attempts_of_a_read_redirect_then_back_off_and_never_doubt():
    from raftq._retry import Attempts, Route

    route = Route(SERVERS)
    clock = Clock()
    attempts = Attempts(route, Safety.READ, 5.0, clock, lambda: 0.5)
    attempts.next()
    assert attempts.failed(err(not_leader("c:3"))) == 0.0
    assert attempts.addr == route.leader == "c:3"
    attempts.next()
    broken = err(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "Socket closed"))
    wait = attempts.failed(broken)
    assert wait == pytest.approx(backoff_delay(1, 0.5)) and not broken.in_doubt
    assert attempts.addr == "a:1", "the next server after c:3"
    attempts.succeeded()
    assert route.leader == "a:1"


def test_attempts_give_up_when_the_wait_would_pass_the_deadline():
    from raftq._retry import Attempts, Route

    clock = Clock()
    attempts = Attempts(Route(SERVERS), Safety.PUBLISH, 1.0, clock, lambda: 0.5)
    attempts.next()
    clock.now = 0.99
    assert attempts.failed(err(rich_error(grpc.StatusCode.UNAVAILABLE, "no", "NO_LEADER", retry_ms=500))) is None
    clock.now = 1.0
    assert attempts.next() is None
    assert attempts.error().reason.name == "NO_LEADER"


def test_attempts_without_any_time_raise_deadline_exceeded():
    from raftq._retry import Attempts, Route

    attempts = Attempts(Route(SERVERS), Safety.READ, 0.0, Clock(), lambda: 0.5)
    assert attempts.next() is None
    assert attempts.error().code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_resubscribe_gives_up_after_its_timeout_of_failures_and_a_delivery_resets_it():
    from raftq._retry import Resubscribe, Route

    route = Route(SERVERS)
    clock = Clock()
    policy = Resubscribe(route, 2.0, clock, lambda: 0.5)
    down = err(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses"))
    assert policy.ended(down, "a:1") > 0 and route.leader == "b:2"
    clock.now = 1.9
    assert policy.ended(down, "b:2") is not None
    clock.now = 2.0
    assert policy.ended(down, "c:3") is None
    policy.delivered("c:3")
    assert route.leader == "c:3"
    assert policy.ended(down, "c:3") is not None, "a delivery starts the window over"
    gone = err(rich_error(grpc.StatusCode.NOT_FOUND, "gone", "QUEUE_NOT_FOUND"))
    assert policy.ended(gone, "a:1") is None
