"""The asyncio raftq client, on `grpc.aio`.

    import raftq.aio

    async with raftq.aio.Client(["127.0.0.1:7101", "127.0.0.1:7102", "127.0.0.1:7103"]) as client:
        await client.publish("jobs", b"hello")
        async with client.subscribe("jobs") as subscription:
            async for message in subscription:
                await message.ack()

The same client as `raftq.Client`, method for method, with coroutines: the
same requests (`raftq._ops`), the same retry rules and leader following
(`raftq._retry`), the same errors (`raftq.RaftqError`). Messages are
`raftq.AsyncMessage`, whose `ack`, `nack` and `extend` are coroutines.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import grpc
import grpc.aio

from . import _ops, _retry
from ._config import PathOrPem, env_kwargs, settings
from ._ops import Body, FilterLike, Op, ReceiptLike
from ._retry import Safety
from .client import _Node
from .errors import RaftqError
from .types import AsyncMessage, NackOutcome, PublishResult, TopicInfo, TopicPublishResult
from .v1 import cluster_pb2, cluster_pb2_grpc, queue_pb2, queue_pb2_grpc

__all__ = ["AsyncSubscription", "Client"]


class Client:
    """An asyncio raftq client for one cluster: `raftq.Client`'s arguments,
    methods and behaviour, with `async def` methods.

        async with raftq.aio.Client.from_env() as client:
            await client.publish("jobs", b"hello")

    Use it from one event loop: its channels belong to the loop that was
    running when it first reached each server. `await client.close()` (or
    leaving `async with`) releases its connections.
    """

    def __init__(
        self,
        servers: Union[str, Sequence[str]],
        token: Optional[str] = None,
        tls_ca: Optional[PathOrPem] = None,
        tls_cert: Optional[PathOrPem] = None,
        tls_key: Optional[PathOrPem] = None,
        timeout: float = 10.0,
        *,
        tls: Optional[bool] = None,
        tls_server_name: Optional[str] = None,
    ) -> None:
        config = settings(servers, token, tls_ca, tls_cert, tls_key, timeout, tls, tls_server_name)
        self.servers: List[str] = config.servers
        self.timeout = config.timeout
        self._metadata = config.metadata
        self._credentials = config.credentials
        self._options = config.options
        self._route = _retry.Route(self.servers)
        self._nodes: Dict[str, _Node] = {}
        self._closed = False
        # Seams for tests.
        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self._clock: Callable[[], float] = time.monotonic
        self._random: Callable[[], float] = random.random

    @classmethod
    def from_env(cls, **overrides: Any) -> "Client":
        """A client configured from the environment, as `raftq.Client.from_env`:
        `RAFTQ_SERVERS`, `RAFTQ_TOKEN` / `RAFTQ_TOKEN_FILE`, `RAFTQ_TLS_CA`,
        `RAFTQ_TLS_CERT`, `RAFTQ_TLS_KEY`; keyword arguments override them."""
        return cls(**env_kwargs(**overrides))

    # -- lifecycle ---------------------------------------------------------

    async def close(self) -> None:
        """Closes every connection (calls in flight are cancelled). The
        client is unusable afterwards."""
        self._closed = True
        nodes, self._nodes = self._nodes, {}
        for node in nodes.values():
            if node.channel is not None:
                await node.channel.close()

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    @property
    def leader(self) -> str:
        """The server the next call goes to: the one believed to lead."""
        return self._route.leader

    # -- queue management --------------------------------------------------

    async def create_queue(self, name: str, *, timeout: Optional[float] = None, **config: Any) -> queue_pb2.QueueInfo:
        """Creates a queue (see `raftq.Client.create_queue` for `config`)."""
        return await self._run(_ops.create_queue(name, config), timeout)

    async def get_queue(self, name: str, *, timeout: Optional[float] = None) -> queue_pb2.QueueInfo:
        """A queue's resolved configuration and statistics."""
        return await self._run(_ops.get_queue(name), timeout)

    async def list_queues(
        self, prefix: str = "", *, page_size: int = 0, timeout: Optional[float] = None
    ) -> List[queue_pb2.QueueInfo]:
        """Every queue whose name starts with `prefix`, in name order (all
        pages; `timeout` applies to each page)."""
        pages = _ops.ListQueuesPages(prefix, page_size)
        op = pages.next()
        while op is not None:
            pages.add(await self._run(op, timeout))
            op = pages.next()
        return pages.result

    async def update_queue(self, name: str, *, timeout: Optional[float] = None, **config: Any) -> queue_pb2.QueueInfo:
        """Changes the given `QueueConfig` fields of a queue."""
        return await self._run(_ops.update_queue(name, config), timeout)

    async def delete_queue(self, name: str, *, timeout: Optional[float] = None) -> int:
        """Deletes a queue and its messages; returns how many messages went."""
        return await self._run(_ops.delete_queue(name), timeout)

    async def purge_queue(self, name: str, *, timeout: Optional[float] = None) -> int:
        """Removes every message of a queue; returns how many were removed."""
        return await self._run(_ops.purge_queue(name), timeout)

    # -- publishing --------------------------------------------------------

    async def publish(
        self,
        queue: str,
        body: Body,
        attributes: Optional[Mapping[str, str]] = None,
        delay_ms: Optional[int] = None,
        idempotency_key: Optional[str] = None,
        *,
        timeout: Optional[float] = None,
    ) -> int:
        """Publishes one message and returns its id (keyed with a UUID
        unless `idempotency_key` is given, so retries cannot store it twice)."""
        return await self._run(_ops.publish(queue, body, attributes, delay_ms, idempotency_key), timeout)

    async def publish_batch(
        self, queue: str, messages: Iterable[Any], *, timeout: Optional[float] = None
    ) -> List[PublishResult]:
        """Publishes 1..1000 messages (at most 4 MiB together), all or none;
        items as for `raftq.Client.publish_batch`."""
        return await self._run(_ops.publish_batch(queue, messages), timeout)

    # -- consuming ---------------------------------------------------------

    async def receive(
        self,
        queue: str,
        max_messages: int = 1,
        wait_ms: int = 0,
        lease_ms: Optional[int] = None,
        *,
        timeout: Optional[float] = None,
    ) -> List[AsyncMessage]:
        """Leases up to `max_messages` visible messages, waiting up to
        `wait_ms` for the first (a long poll)."""
        deliveries = await self._run(_ops.receive(queue, max_messages, wait_ms, lease_ms), timeout)
        return [AsyncMessage._from_delivery(d, self) for d in deliveries]

    def subscribe(self, queue: str, prefetch: int = 10, lease_ms: Optional[int] = None) -> "AsyncSubscription":
        """Streams messages from `queue`: `async for` over the returned
        `AsyncSubscription`, settle each message, close it (or use `async
        with`) when done. It follows the leader as `raftq.Client.subscribe`
        does."""
        return AsyncSubscription(self, queue, prefetch, lease_ms)

    async def ack(self, items: Union[ReceiptLike, Iterable[ReceiptLike]], *, timeout: Optional[float] = None) -> int:
        """Acknowledges messages (or receipts), all or none; returns how many
        were acked."""
        op = _ops.ack(items)
        return 0 if op is None else await self._run(op, timeout)

    async def nack(
        self,
        item: ReceiptLike,
        delay_ms: Optional[int] = None,
        dead_letter: bool = False,
        reason: str = "",
        *,
        timeout: Optional[float] = None,
    ) -> NackOutcome:
        """Gives a delivery back (after `delay_ms`, or the queue's backoff),
        or dead-letters it with `dead_letter=True`."""
        return await self._run(_ops.nack(item, delay_ms, dead_letter, reason), timeout)

    async def extend_lease(self, item: ReceiptLike, lease_ms: int, *, timeout: Optional[float] = None) -> int:
        """Makes a live lease end `lease_ms` from now; returns the new
        deadline (ms since the Unix epoch)."""
        return await self._run(_ops.extend_lease(item, lease_ms), timeout)

    # -- inspection --------------------------------------------------------

    async def peek(
        self,
        queue: str,
        state: Union[None, str, int] = None,
        limit: int = 100,
        after_id: int = 0,
        *,
        timeout: Optional[float] = None,
    ) -> List[queue_pb2.MessageView]:
        """Up to `limit` messages of a queue in id order, without consuming
        them; `state` filters ("ready", "delayed", "leased", "dead")."""
        pages = _ops.PeekPages(queue, state, limit, after_id)
        op = pages.next()
        while op is not None:
            pages.add(await self._run(op, timeout))
            op = pages.next()
        return pages.result

    async def inspect(self, queue: str, message_id: int, *, timeout: Optional[float] = None) -> queue_pb2.MessageView:
        """One message with its state and history."""
        return await self._run(_ops.inspect(queue, message_id), timeout)

    async def redrive(
        self,
        queue: str,
        max_messages: int = 0,
        messages_per_second: Optional[int] = None,
        *,
        timeout: Optional[float] = None,
    ) -> int:
        """Moves dead letters held in `queue` back to their queues; returns
        how many moved."""
        return await self._run(_ops.redrive(queue, max_messages, messages_per_second), timeout)

    async def status(
        self, include_digest: bool = False, *, server: Optional[str] = None, timeout: Optional[float] = None
    ) -> cluster_pb2.StatusResponse:
        """The Raft state as seen by one node (`server`, or by default the
        node believed to lead)."""
        op = _ops.status(include_digest)
        if server is None:
            return await self._run(op, timeout)
        node = self._node(server)
        try:
            return await node.cluster.Status(
                op.request, timeout=self.timeout if timeout is None else timeout, metadata=self._metadata
            )
        except grpc.RpcError as e:
            err = RaftqError.from_rpc_error(e, server=server)
        raise err

    # -- topics ------------------------------------------------------------

    async def create_topic(
        self,
        name: str,
        require_route: bool = False,
        dedup_window_ms: Optional[int] = None,
        *,
        timeout: Optional[float] = None,
    ) -> TopicInfo:
        """Creates a topic (see `raftq.Client.create_topic`)."""
        return await self._run(_ops.create_topic(name, require_route, dedup_window_ms), timeout)

    async def get_topic(self, name: str, *, timeout: Optional[float] = None) -> TopicInfo:
        """A topic's configuration, counters and bindings."""
        return await self._run(_ops.get_topic(name), timeout)

    async def list_topics(
        self, prefix: str = "", *, page_size: int = 0, timeout: Optional[float] = None
    ) -> List[TopicInfo]:
        """Every topic whose name starts with `prefix`, in name order (all
        pages; `timeout` applies to each page)."""
        pages = _ops.ListTopicsPages(prefix, page_size)
        op = pages.next()
        while op is not None:
            pages.add(await self._run(op, timeout))
            op = pages.next()
        return pages.result

    async def delete_topic(self, name: str, *, timeout: Optional[float] = None) -> int:
        """Deletes a topic and its bindings (the queues stay); returns how
        many bindings went."""
        return await self._run(_ops.delete_topic(name), timeout)

    async def bind(
        self, topic: str, queue: str, filter: FilterLike = None, *, timeout: Optional[float] = None
    ) -> TopicInfo:
        """Binds `queue` to `topic` with `filter` (or replaces its filter);
        see `raftq.Client.bind`."""
        return await self._run(_ops.bind(topic, queue, filter), timeout)

    async def unbind(self, topic: str, queue: str, *, timeout: Optional[float] = None) -> TopicInfo:
        """Removes a binding (BINDING_NOT_FOUND if there is none)."""
        return await self._run(_ops.unbind(topic, queue), timeout)

    async def publish_topic(
        self, topic: str, messages: Iterable[Any], *, timeout: Optional[float] = None
    ) -> List[TopicPublishResult]:
        """Publishes 1..1000 messages to a topic, a copy in every bound queue
        that matches, all or none; items and keys as for
        `raftq.Client.publish_topic`."""
        return await self._run(_ops.publish_topic(topic, messages), timeout)

    # -- the call loop -----------------------------------------------------

    def _node(self, addr: str) -> _Node:
        if self._closed:
            raise RuntimeError("the raftq Client is closed")
        node = self._nodes.get(addr)
        if node is None:
            if self._credentials is not None:
                channel = grpc.aio.secure_channel(addr, self._credentials, options=self._options)
            else:
                channel = grpc.aio.insecure_channel(addr, options=self._options)
            node = _Node(channel, queue_pb2_grpc.QueueStub(channel), cluster_pb2_grpc.ClusterStub(channel))
            self._nodes[addr] = node
        return node

    async def _run(self, op: Op, timeout: Optional[float]) -> Any:
        budget = (self.timeout if timeout is None else timeout) + op.extra
        return op.answer(await self._call(op.service, op.method, op.request, op.safety, budget))

    async def _call(self, service: str, method: str, request: Any, safety: Safety, timeout: Optional[float]) -> Any:
        """`raftq.Client._call`, awaiting: the same `_retry.Attempts`."""
        budget = self.timeout if timeout is None else timeout
        attempts = _retry.Attempts(self._route, safety, budget, self._clock, self._random)
        while True:
            remaining = attempts.next()
            if remaining is None:
                raise attempts.error()
            addr = attempts.addr
            stub = getattr(self._node(addr), service)
            try:
                response = await getattr(stub, method)(request, timeout=remaining, metadata=self._metadata)
            except grpc.RpcError as e:
                err = RaftqError.from_rpc_error(e, server=addr)
            else:
                attempts.succeeded()
                return response
            wait = attempts.failed(err)
            if wait is None:
                raise attempts.error()
            if wait > 0:
                await self._sleep(wait)


class AsyncSubscription:
    """An open `raftq.aio.Client.subscribe` stream: an async iterator of
    `AsyncMessage`, with `raftq.Subscription`'s behaviour: it subscribes
    again after UNAVAILABLE or UNKNOWN (following the leader, backing off),
    gives up with the last error after the client's timeout of failures,
    and raises any other end as `RaftqError`. `close()` (from any task of
    the loop) ends the iteration.
    """

    def __init__(self, client: Client, queue: str, prefetch: int, lease_ms: Optional[int]) -> None:
        self._client = client
        self.queue = queue
        self._request = _ops.subscribe_request(queue, prefetch, lease_ms)
        self._call: Any = None
        self._addr = client.leader
        self._closed = False
        self._wake: Optional[asyncio.Event] = None
        self._policy = _retry.Resubscribe(client._route, client.timeout, client._clock, client._random)

    def __aiter__(self) -> "AsyncSubscription":
        return self

    async def __anext__(self) -> AsyncMessage:
        client = self._client
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._call is None:
                self._addr = client.leader
                self._call = client._node(self._addr).queue.Subscribe(self._request, metadata=client._metadata)
            call = self._call
            try:
                response = await call.read()
            except asyncio.CancelledError:
                # close() (of this subscription, or of its client's channels)
                # cancels the call, and a read in flight raises this; a
                # cancellation of the task itself goes on.
                if (self._closed or client._closed) and not _cancelling():
                    raise StopAsyncIteration from None
                raise
            except grpc.RpcError as e:
                if self._closed or client._closed:
                    raise StopAsyncIteration from None
                err = RaftqError.from_rpc_error(e, server=self._addr)
            else:
                if response is not grpc.aio.EOF:
                    self._policy.delivered(self._addr)
                    return AsyncMessage._from_delivery(response.delivery, client)
                err = RaftqError(grpc.StatusCode.UNAVAILABLE, "the server ended the stream", server=self._addr)
            if self._call is call:
                self._call = None
            wait = self._policy.ended(err, self._addr)
            if wait is None:
                raise err
            if wait > 0:
                await self._pause(wait)

    async def _pause(self, seconds: float) -> None:
        """Waits `seconds`, or until close()."""
        if self._closed:
            return
        if self._wake is None:
            self._wake = asyncio.Event()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    def close(self) -> None:
        """Ends the subscription (the server gives its unsettled leases
        back). Not a coroutine: it only cancels the stream."""
        self._closed = True
        call, self._call = self._call, None
        if self._wake is not None:
            self._wake.set()
        if call is not None:
            call.cancel()

    async def aclose(self) -> None:
        """`close()`, as a coroutine."""
        self.close()

    async def __aenter__(self) -> "AsyncSubscription":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def _cancelling() -> bool:
    """Whether the current task is being cancelled (Python 3.11+; before,
    not knowable: False)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return bool(cancelling and cancelling())
