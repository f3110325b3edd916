"""Shared test helpers: hand-made gRPC errors, a fake cluster of stubs, and
the live-cluster fixtures of the integration tests."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import grpc
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2

import raftq
import raftq.aio
from raftq.client import _Node

# -- hand-made errors ----------------------------------------------------------


class FakeRpcError(grpc.RpcError):
    """What grpcio raises: an RpcError that is also a Call (code, details,
    trailing metadata)."""

    def __init__(self, code: grpc.StatusCode, details: str = "", trailers: Sequence[Tuple[str, Any]] = ()):
        super().__init__(details)
        self._code = code
        self._details = details
        self._trailers = tuple(trailers)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self):
        return self._trailers


def rich_error(
    code: grpc.StatusCode,
    message: str,
    reason: Optional[str] = None,
    metadata: Optional[Dict[str, str]] = None,
    violations: Sequence[Tuple[str, str]] = (),
    retry_ms: Optional[int] = None,
    trailers: Sequence[Tuple[str, Any]] = (),
    domain: str = "raftq",
) -> FakeRpcError:
    """A failed call as a raftq node makes it: a google.rpc.Status with
    ErrorInfo (and BadRequest / RetryInfo) in grpc-status-details-bin."""
    status = status_pb2.Status(code=code.value[0], message=message)
    if reason is not None:
        status.details.add().Pack(error_details_pb2.ErrorInfo(domain=domain, reason=reason, metadata=metadata or {}))
    if violations:
        bad = error_details_pb2.BadRequest()
        for field, description in violations:
            bad.field_violations.add(field=field, description=description)
        status.details.add().Pack(bad)
    if retry_ms is not None:
        delay = duration_pb2.Duration(seconds=retry_ms // 1000, nanos=(retry_ms % 1000) * 1_000_000)
        status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    all_trailers = list(trailers) + [("grpc-status-details-bin", status.SerializeToString())]
    return FakeRpcError(code, message, all_trailers)


def not_leader(leader: str) -> FakeRpcError:
    return rich_error(
        grpc.StatusCode.UNAVAILABLE,
        f"this node is not the leader; the leader is at {leader}",
        "NOT_LEADER",
        {"leader": leader},
        retry_ms=0,
        trailers=[("raftq-leader", leader)],
    )


# -- a fake cluster ------------------------------------------------------------


class FakeStub:
    """Answers every method through `handler(addr, method, request)`."""

    def __init__(self, addr: str, handler: Callable[[str, str, Any], Any], log: List[Tuple[str, str, Any, Any]]):
        self._addr = addr
        self._handler = handler
        self._log = log

    def __getattr__(self, method: str) -> Callable[..., Any]:
        def call(request: Any, timeout: Any = None, metadata: Any = None) -> Any:
            self._log.append((self._addr, method, request, timeout))
            return self._handler(self._addr, method, request)

        return call


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: List[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def fake_client(
    servers: Sequence[str], handler: Callable[[str, str, Any], Any], timeout: float = 10.0
) -> Tuple[raftq.Client, List[Tuple[str, str, Any, Any]], FakeClock]:
    """A Client whose servers are fake stubs answering through `handler`,
    with a fake clock (sleeps advance it; nothing really waits)."""
    client = raftq.Client(list(servers), timeout=timeout)
    log: List[Tuple[str, str, Any, Any]] = []
    clock = FakeClock()
    nodes = {addr: _Node(None, FakeStub(addr, handler, log), FakeStub(addr, handler, log)) for addr in servers}

    def node(addr: str) -> _Node:
        if addr not in nodes:  # the client must never dial what it was not given
            raise AssertionError(f"dialled unconfigured server {addr}")
        return nodes[addr]

    client._node = node  # type: ignore[method-assign]
    client._clock = clock
    client._sleep = clock.sleep
    client._random = lambda: 0.5
    return client, log, clock


class AsyncFakeStub(FakeStub):
    """FakeStub for the asyncio client: each call is awaitable (a unary
    call) and a stream answer gets the `read()` of a grpc.aio stream."""

    def __getattr__(self, method: str) -> Callable[..., Any]:
        def call(request: Any, timeout: Any = None, metadata: Any = None) -> Any:
            self._log.append((self._addr, method, request, timeout))
            try:
                answer = self._handler(self._addr, method, request)
            except Exception as e:  # raised when awaited, as grpc.aio does
                return _raise(e)
            if hasattr(answer, "read"):
                return answer
            return _value(answer)

        return call


async def _value(answer: Any) -> Any:
    return answer


async def _raise(error: Exception) -> Any:
    raise error


class AsyncFakeClock(FakeClock):
    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


def fake_async_client(
    servers: Sequence[str], handler: Callable[[str, str, Any], Any], timeout: float = 10.0
) -> Tuple[raftq.aio.Client, List[Tuple[str, str, Any, Any]], AsyncFakeClock]:
    """`fake_client` for `raftq.aio.Client`."""
    client = raftq.aio.Client(list(servers), timeout=timeout)
    log: List[Tuple[str, str, Any, Any]] = []
    clock = AsyncFakeClock()
    nodes = {addr: _Node(None, AsyncFakeStub(addr, handler, log), AsyncFakeStub(addr, handler, log)) for addr in servers}

    def node(addr: str) -> _Node:
        if addr not in nodes:
            raise AssertionError(f"dialled unconfigured server {addr}")
        return nodes[addr]

    client._node = node  # type: ignore[method-assign]
    client._clock = clock
    client._sleep = clock.async_sleep
    client._random = lambda: 0.5
    return client, log, clock


def run(coro: Any) -> Any:
    """Runs a coroutine to completion on a fresh event loop (the tests use
    plain pytest: no asyncio plugin)."""
    return asyncio.run(coro)


# -- integration fixtures ------------------------------------------------------


def pytest_collection_modifyitems(config: Any, items: List[Any]) -> None:
    if os.environ.get("RAFTQ_SERVERS"):
        return
    skip = pytest.mark.skip(
        reason="integration test: set RAFTQ_SERVERS to a running raftq cluster (e.g. run clients/python/run-tests.sh --dev)"
    )
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def client():
    with raftq.Client.from_env(timeout=15.0) as c:
        yield c


@pytest.fixture
def queue_name(client: raftq.Client, request: Any):
    """A fresh queue name for the test, deleted afterwards (with any
    companion queues named `<name>-*`)."""
    name = f"pytest-{request.node.name[:40].replace('[', '-').replace(']', '')}-{uuid.uuid4().hex[:8]}"
    name = "".join(c if c.isalnum() or c in "._-" else "-" for c in name)
    yield name
    for info in client.list_queues(prefix=name):
        try:
            client.delete_queue(info.name)
        except raftq.RaftqError:
            pass


@pytest.fixture
def topic_name(client: raftq.Client, queue_name: str):
    """A fresh topic name for the test (its queue name: topics and queues
    have names of their own), deleted afterwards with any companion topics
    named `<name>-*`. The queues stay for `queue_name` to delete."""
    yield queue_name
    for info in client.list_topics(prefix=queue_name):
        try:
            client.delete_topic(info.name)
        except raftq.RaftqError:
            pass


@pytest.fixture(scope="session")
def dev_nodes(tmp_path_factory: Any):
    """Kills and restarts nodes of the local dev cluster (failover tests);
    the nodes it restarted are stopped when the session ends."""
    from failover import Nodes

    nodes = Nodes(str(tmp_path_factory.mktemp("restarted-nodes")))
    yield nodes
    nodes.stop()
