"""Parsing raftq's error details, no server needed."""

import grpc
import pytest

import raftq
from raftq import ErrorReason, FieldViolation, RaftqError
from raftq.errors import parse_leader_hint
from raftq.v1 import errors_pb2

from conftest import FakeRpcError, not_leader, rich_error


def test_reason_enum_mirrors_errors_proto():
    proto = {v.name: v.number for v in errors_pb2.ErrorReason.DESCRIPTOR.values}
    proto["UNSPECIFIED"] = proto.pop("ERROR_REASON_UNSPECIFIED")
    assert {r.name: r.value for r in ErrorReason} == proto


def test_reason_from_name_is_unknown_safe():
    assert ErrorReason.from_name("QUEUE_FULL") is ErrorReason.QUEUE_FULL
    assert ErrorReason.from_name("") is ErrorReason.UNSPECIFIED
    assert ErrorReason.from_name("ERROR_REASON_UNSPECIFIED") is ErrorReason.UNSPECIFIED
    assert ErrorReason.from_name("A_REASON_FROM_THE_FUTURE") is ErrorReason.UNSPECIFIED
    assert ErrorReason.from_name("UNROUTABLE") is ErrorReason.UNROUTABLE
    assert ErrorReason.from_name("LIMIT_REACHED").value == 27


def test_error_info_and_bad_request():
    e = rich_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        "queue: character ' ' is not allowed",
        "INVALID_ARGUMENT",
        {"field": "queue"},
        violations=[("queue", "character ' ' is not allowed")],
    )
    err = RaftqError.from_rpc_error(e, server="n1:7101")
    assert isinstance(err, Exception)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.reason is ErrorReason.INVALID_ARGUMENT
    assert err.reason_name == "INVALID_ARGUMENT"
    assert err.metadata == {"field": "queue"}
    assert err.field_violations == [FieldViolation("queue", "character ' ' is not allowed")]
    assert err.field == "queue"
    assert err.retry_delay is None
    assert err.leader is None
    assert err.server == "n1:7101"
    assert err.message == "queue: character ' ' is not allowed"
    assert not err.in_doubt
    assert "INVALID_ARGUMENT" in str(err) and "n1:7101" in str(err)


def test_queue_full_metadata():
    e = rich_error(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        'queue: queue "q" is full: 1 of max_length 1 messages',
        "QUEUE_FULL",
        {"queue": "q", "limit": "max_length", "limit_value": "1", "field": "queue"},
    )
    err = RaftqError.from_rpc_error(e)
    assert err.reason is ErrorReason.QUEUE_FULL
    assert err.metadata["limit"] == "max_length"
    assert err.metadata["limit_value"] == "1"
    assert err.retry_delay is None, "a full queue is not a retry-after answer"


def test_retry_info_gives_the_delay():
    e = rich_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "overloaded", "OVERLOADED", retry_ms=1250)
    err = RaftqError.from_rpc_error(e)
    assert err.reason is ErrorReason.OVERLOADED
    assert err.retry_delay == pytest.approx(1.25)


def test_retry_info_wins_over_the_plain_trailer():
    e = rich_error(
        grpc.StatusCode.RESOURCE_EXHAUSTED, "disk", "DISK_LOW", retry_ms=1000, trailers=[("raftq-retry-after-ms", "5")]
    )
    assert RaftqError.from_rpc_error(e).retry_delay == pytest.approx(1.0)


def test_not_leader():
    err = RaftqError.from_rpc_error(not_leader("n2:7101"))
    assert err.reason is ErrorReason.NOT_LEADER
    assert err.leader == "n2:7101"
    assert err.retry_delay == 0.0


def test_leader_from_metadata_alone():
    e = rich_error(grpc.StatusCode.UNKNOWN, "outcome unknown", "OUTCOME_UNKNOWN", {"leader": "n3:1"})
    err = RaftqError.from_rpc_error(e)
    assert err.reason is ErrorReason.OUTCOME_UNKNOWN
    assert err.leader == "n3:1"


def test_unknown_reason_keeps_its_name():
    e = rich_error(grpc.StatusCode.FAILED_PRECONDITION, "new", "SOMETHING_NEW", {"queue": "q"})
    err = RaftqError.from_rpc_error(e)
    assert err.reason is ErrorReason.UNSPECIFIED
    assert err.reason_name == "SOMETHING_NEW"
    assert err.metadata == {"queue": "q"}


def test_foreign_domain_is_not_a_raftq_reason():
    e = rich_error(grpc.StatusCode.NOT_FOUND, "x", "QUEUE_NOT_FOUND", {"queue": "q"}, domain="example.com")
    err = RaftqError.from_rpc_error(e)
    assert err.reason is ErrorReason.UNSPECIFIED
    assert err.metadata == {}


@pytest.mark.parametrize(
    "code,trailers,reason,delay",
    [
        (grpc.StatusCode.UNAVAILABLE, [("raftq-leader", "n2:7101")], ErrorReason.NOT_LEADER, 0.0),
        (grpc.StatusCode.UNAVAILABLE, [], ErrorReason.UNSPECIFIED, None),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, [("raftq-retry-after-ms", "100")], ErrorReason.OVERLOADED, 0.1),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, [], ErrorReason.UNSPECIFIED, None),
        (grpc.StatusCode.UNKNOWN, [("raftq-leader", "n2:7101")], ErrorReason.OUTCOME_UNKNOWN, None),
        (grpc.StatusCode.NOT_FOUND, [], ErrorReason.UNSPECIFIED, None),
    ],
)
def test_fallback_without_details(code, trailers, reason, delay):
    """An older server sends no google.rpc.Status: the reason comes from the
    code and the plain trailers where they determine it."""
    err = RaftqError.from_rpc_error(FakeRpcError(code, "msg", trailers))
    assert err.reason is reason
    assert err.retry_delay == (pytest.approx(delay) if delay is not None else None)
    assert err.reason_name == ""


def test_mismatched_status_still_parsed():
    """grpc_status refuses a Status whose message differs from the call's;
    the details are read all the same."""
    e = rich_error(grpc.StatusCode.NOT_FOUND, 'queue "q" not found', "QUEUE_NOT_FOUND", {"queue": "q"})
    e._details = "rewritten by a proxy"
    err = RaftqError.from_rpc_error(e)
    assert err.reason is ErrorReason.QUEUE_NOT_FOUND
    assert err.message == "rewritten by a proxy"


def test_garbage_details_are_ignored():
    e = FakeRpcError(grpc.StatusCode.INTERNAL, "boom", [("grpc-status-details-bin", b"\xff\xff\xff")])
    err = RaftqError.from_rpc_error(e)
    assert err.code == grpc.StatusCode.INTERNAL
    assert err.reason is ErrorReason.UNSPECIFIED


def test_broken_connection_detection():
    def err(message, trailers=()):
        return RaftqError.from_rpc_error(FakeRpcError(grpc.StatusCode.UNAVAILABLE, message, trailers))

    assert err("Socket closed").is_broken_connection()
    assert err("recvmsg:Connection reset by peer").is_broken_connection()
    assert not err("failed to connect to all addresses; last error: Connection reset by peer").is_broken_connection()
    assert not err("this node is not the leader", [("raftq-leader", "a:1")]).is_broken_connection()
    assert not RaftqError.from_rpc_error(not_leader("a:1")).is_broken_connection()


@pytest.mark.parametrize(
    "raw,want",
    [
        ("10.0.0.2:7001", "10.0.0.2:7001"),
        (" node-2:7001 ", "node-2:7001"),
        ("http://node-2:7001/", "node-2:7001"),
        ("", None),
        (None, None),
        ("node-2", None),
        ("node-2:", None),
        ("a b:1", None),
    ],
)
def test_leader_hint_parsing(raw, want):
    assert parse_leader_hint(raw) == want


def test_public_names():
    for name in ("Client", "RaftqError", "ErrorReason", "Message", "Receipt", "PublishResult", "NackOutcome"):
        assert hasattr(raftq, name)
