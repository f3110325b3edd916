"""raftq errors: one exception type, with the server's machine-readable reason.

Every error a raftq node returns carries a `google.rpc.Status` in the
`grpc-status-details-bin` trailer (see proto/raftq/v1/errors.proto and
docs/errors.md): an `ErrorInfo` (domain "raftq", the reason's name, metadata),
a `BadRequest` for INVALID_ARGUMENT and a `RetryInfo` when a retry should
wait. `RaftqError` exposes them as plain attributes. Switch on `.reason`,
never on `.message`, whose text may change.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

#: The `ErrorInfo.domain` of raftq's errors.
ERROR_DOMAIN = "raftq"
#: The trailer naming the leader's client address (`host:port`).
LEADER_METADATA_KEY = "raftq-leader"
#: The trailer carrying an overloaded node's retry delay, in ms.
RETRY_AFTER_MS_METADATA_KEY = "raftq-retry-after-ms"
#: The trailer carrying the serialized `google.rpc.Status`.
STATUS_DETAILS_METADATA_KEY = "grpc-status-details-bin"

# Markers of a connection that broke while a call was in flight, as grpc-core
# words them in the status details. Such an UNAVAILABLE does not mean "nothing
# was done": the request may have reached the server.
_BROKEN_MID_CALL = (
    "socket closed",
    "connection reset",
    "broken pipe",
    "stream removed",
    "goaway",
    "rst_stream",
    "connection aborted",
    "keepalive watchdog",
)
# ... unless the call never got a connection at all.
_CONNECT_FAILED = ("failed to connect", "dns resolution failed", "name resolution")


class ErrorReason(enum.Enum):
    """The stable reasons of raftq errors (`raftq.v1.ErrorReason`).

    Mirrors proto/raftq/v1/errors.proto, with the same numbers.
    `UNSPECIFIED` stands for "no reason known": an error made by the transport
    (a refused connection, the caller's own deadline), an error from a server
    that sends no details (older than the rich error model), or a reason this
    client does not know yet (a newer server). Then act on `RaftqError.code`.
    """

    UNSPECIFIED = 0
    INVALID_ARGUMENT = 1
    QUEUE_NOT_FOUND = 2
    MESSAGE_NOT_FOUND = 3
    QUEUE_EXISTS = 4
    LEASE_EXPIRED = 5
    RECEIPT_UNKNOWN = 6
    QUEUE_FULL = 7
    MESSAGE_TOO_LARGE = 8
    REQUEST_TOO_LARGE = 9
    QUEUE_LIMIT_REACHED = 10
    OVERLOADED = 11
    DISK_LOW = 12
    NOT_LEADER = 13
    NO_LEADER = 14
    NODE_STOPPED = 15
    OUTCOME_UNKNOWN = 16
    UNSUPPORTED_FORMAT = 17
    UNAUTHENTICATED = 18
    PERMISSION_DENIED = 19
    MEMBERSHIP_CHANGE_REFUSED = 20
    STORE_FAULT = 21
    NODE_NOT_FOUND = 22
    TOPIC_NOT_FOUND = 23
    TOPIC_EXISTS = 24
    BINDING_NOT_FOUND = 25
    UNROUTABLE = 26
    LIMIT_REACHED = 27
    PUBLISH_WINDOW_EXCEEDED = 28

    @classmethod
    def from_name(cls, name: str) -> "ErrorReason":
        """The reason named `name` (as sent in `ErrorInfo.reason`);
        `UNSPECIFIED` for an empty or unknown name."""
        if not name or name in ("UNSPECIFIED", "ERROR_REASON_UNSPECIFIED"):
            return cls.UNSPECIFIED
        return cls.__members__.get(name, cls.UNSPECIFIED)


@dataclass(frozen=True)
class FieldViolation:
    """One `google.rpc.BadRequest.FieldViolation`: the request field at fault,
    by path (`messages[3].body`), and what is wrong with it."""

    field: str
    description: str


class RaftqError(Exception):
    """A failed raftq call.

    Attributes:
        code: the gRPC status code (`grpc.StatusCode`).
        reason: the `ErrorReason` (`UNSPECIFIED` if none is known).
        reason_name: the reason exactly as the server sent it (a newer server
            may send a name `ErrorReason` does not have yet); "" if none.
        message: the server's (or the transport's) message, for people.
        metadata: `ErrorInfo.metadata` (`queue`, `topic`, `field`,
            `limit`, `limit_value`, `leader`), as a dict of strings.
        field_violations: the `BadRequest` violations (INVALID_ARGUMENT).
        retry_delay: how long to wait before retrying, in seconds, from
            `RetryInfo` or the `raftq-retry-after-ms` trailer; None when the
            server gave no delay (0.0 for NOT_LEADER: retry at once).
        leader: the leader's client address `host:port` when the answering
            node named it (`ErrorInfo.metadata["leader"]` or the
            `raftq-leader` trailer), else None.
        server: the address of the server the failed attempt went to.
        in_doubt: True when the call may have taken effect all the same: the
            outcome of a write is unknown (UNKNOWN, a timeout, a connection
            broken mid-call), or an earlier attempt of this call was. False
            for reads and for errors that say nothing was done.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str = "",
        *,
        reason: ErrorReason = ErrorReason.UNSPECIFIED,
        reason_name: str = "",
        metadata: Optional[Mapping[str, str]] = None,
        field_violations: Sequence[FieldViolation] = (),
        retry_delay: Optional[float] = None,
        leader: Optional[str] = None,
        server: Optional[str] = None,
        in_doubt: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.reason_name = reason_name
        self.metadata: Dict[str, str] = dict(metadata or {})
        self.field_violations: List[FieldViolation] = list(field_violations)
        self.retry_delay = retry_delay
        self.leader = leader
        self.server = server
        self.in_doubt = in_doubt

    def __str__(self) -> str:
        code = self.code.name if isinstance(self.code, grpc.StatusCode) else str(self.code)
        head = code if self.reason is ErrorReason.UNSPECIFIED else f"{code}/{self.reason.name}"
        where = f" (from {self.server})" if self.server else ""
        doubt = " [outcome in doubt]" if self.in_doubt else ""
        return f"{head}: {self.message}{where}{doubt}"

    def __repr__(self) -> str:
        return (
            f"RaftqError(code={self.code!r}, reason={self.reason!r}, message={self.message!r}, "
            f"metadata={self.metadata!r}, field_violations={self.field_violations!r}, "
            f"retry_delay={self.retry_delay!r}, leader={self.leader!r}, in_doubt={self.in_doubt!r})"
        )

    @property
    def field(self) -> Optional[str]:
        """The request field at fault: `metadata["field"]`, or the first
        field violation's; None if the server named none."""
        if self.metadata.get("field"):
            return self.metadata["field"]
        if self.field_violations:
            return self.field_violations[0].field
        return None

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError, server: Optional[str] = None) -> "RaftqError":
        """Builds a `RaftqError` from a failed call (a `grpc.RpcError` that is
        also a `grpc.Call`, as grpcio raises them)."""
        code = _call_attr(error, "code", grpc.StatusCode.UNKNOWN) or grpc.StatusCode.UNKNOWN
        message = _call_attr(error, "details", "") or ""
        trailers = _call_attr(error, "trailing_metadata", None) or ()
        status = _rich_status(error, trailers)
        return cls.from_parts(code, message, trailers, status, server=server)

    @classmethod
    def from_parts(
        cls,
        code: grpc.StatusCode,
        message: str,
        trailers: Sequence[Tuple[str, Any]],
        status: Optional[status_pb2.Status],
        server: Optional[str] = None,
    ) -> "RaftqError":
        """Builds a `RaftqError` from a status code, message, trailing
        metadata and the decoded `google.rpc.Status` (or None)."""
        plain = {}
        for key, value in trailers:
            if isinstance(value, bytes) and not key.endswith("-bin"):
                value = value.decode("utf-8", "replace")
            plain.setdefault(key, value)

        reason_name = ""
        info: Dict[str, str] = {}
        violations: List[FieldViolation] = []
        retry_delay: Optional[float] = None
        if status is not None:
            for detail in status.details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    error_info = error_details_pb2.ErrorInfo()
                    detail.Unpack(error_info)
                    if error_info.domain == ERROR_DOMAIN:
                        reason_name = error_info.reason
                        info = dict(error_info.metadata)
                elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad = error_details_pb2.BadRequest()
                    detail.Unpack(bad)
                    violations.extend(FieldViolation(v.field, v.description) for v in bad.field_violations)
                elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                    retry = error_details_pb2.RetryInfo()
                    detail.Unpack(retry)
                    retry_delay = max(0.0, retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9)

        if retry_delay is None:
            retry_delay = _retry_after(plain.get(RETRY_AFTER_MS_METADATA_KEY))
        leader = parse_leader_hint(info.get("leader")) or parse_leader_hint(plain.get(LEADER_METADATA_KEY))
        reason = ErrorReason.from_name(reason_name)
        if not reason_name:
            reason = _fallback_reason(code, leader, retry_delay)
            if reason is ErrorReason.NOT_LEADER and retry_delay is None:
                retry_delay = 0.0
        return cls(
            code,
            message,
            reason=reason,
            reason_name=reason_name,
            metadata=info,
            field_violations=violations,
            retry_delay=retry_delay,
            leader=leader,
            server=server,
        )

    def is_broken_connection(self) -> bool:
        """Whether this is an UNAVAILABLE made by the transport after the
        request may have been sent (a connection reset mid-call), rather
        than a server's "nothing was done" or a failure to connect."""
        if self.code != grpc.StatusCode.UNAVAILABLE or self.reason_name or self.leader:
            return False
        text = self.message.lower()
        if any(marker in text for marker in _CONNECT_FAILED):
            return False
        return any(marker in text for marker in _BROKEN_MID_CALL)


def parse_leader_hint(raw: Optional[str]) -> Optional[str]:
    """A leader hint (`host:port`), tolerating spaces and an `http://`
    prefix; None for anything else."""
    if not raw:
        return None
    addr = raw.strip()
    for prefix in ("http://", "https://"):
        if addr.startswith(prefix):
            addr = addr[len(prefix) :]
    addr = addr.rstrip("/")
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit() or any(c.isspace() for c in addr):
        return None
    return addr


def _retry_after(raw: Optional[str]) -> Optional[float]:
    if raw is None:
        return None
    try:
        ms = int(str(raw).strip())
    except ValueError:
        return None
    return max(0, ms) / 1000.0


def _fallback_reason(code: grpc.StatusCode, leader: Optional[str], retry_delay: Optional[float]) -> ErrorReason:
    """The reason of an error without `ErrorInfo` (an older server), where
    the code and the plain trailers determine it; else UNSPECIFIED."""
    if code == grpc.StatusCode.UNAVAILABLE and leader:
        return ErrorReason.NOT_LEADER
    if code == grpc.StatusCode.UNKNOWN and leader:
        return ErrorReason.OUTCOME_UNKNOWN
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and retry_delay is not None:
        return ErrorReason.OVERLOADED
    return ErrorReason.UNSPECIFIED


def _call_attr(error: Any, name: str, default: Any) -> Any:
    method = getattr(error, name, None)
    if method is None:
        return default
    try:
        return method()
    except Exception:  # a call object in a bad state must not hide the error
        return default


def _rich_status(error: Any, trailers: Sequence[Tuple[str, Any]]) -> Optional[status_pb2.Status]:
    """The `google.rpc.Status` of a failed call, or None if it carries none.

    `grpc_status.rpc_status.from_call` refuses a status whose code or message
    differs from the call's (a proxy rewrote one); the details are still
    the server's, so they are decoded from the trailer directly then.
    """
    try:
        status = rpc_status.from_call(error)
        if status is not None:
            return status
    except Exception:  # ValueError for a mismatch; DecodeError for garbage
        pass
    for key, value in trailers:
        if key == STATUS_DETAILS_METADATA_KEY and isinstance(value, bytes):
            try:
                return status_pb2.Status.FromString(value)
            except Exception:
                return None
    return None
