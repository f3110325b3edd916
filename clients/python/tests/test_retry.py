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
def test_outcome_unknown_is_retried_only_for_publish_and_reads(e):
    assert decide(err(e), Safety.WRITE, "a:1", SERVERS).action is Action.FAIL
    assert decide(err(e), Safety.PUBLISH, "a:1", SERVERS).action is Action.NEXT
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
