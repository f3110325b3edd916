"""The raftq client: a list of servers, calls that find the leader."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import grpc

from . import _ops, _retry
from ._config import DEFAULT_SERVERS, MAX_GRPC_MESSAGE_BYTES, PathOrPem, env_kwargs, settings
from ._ops import Body, FilterLike, Op, ReceiptLike
from ._retry import Safety
from .errors import RaftqError
from .types import Message, NackOutcome, PublishResult, TopicInfo, TopicPublishResult
from .v1 import cluster_pb2, cluster_pb2_grpc, queue_pb2, queue_pb2_grpc

__all__ = ["Client", "DEFAULT_SERVERS", "MAX_GRPC_MESSAGE_BYTES", "Subscription"]


@dataclass
class _Node:
    """One server: its channel and stubs."""

    channel: Any
    queue: Any
    cluster: Any


class Client:
    """A raftq client for one cluster.

        with raftq.Client(["10.0.0.1:7101", "10.0.0.2:7101", "10.0.0.3:7101"]) as client:
            client.publish("jobs", b"hello")

    Args:
        servers: the nodes' client addresses, `host:port`: a list, or one
            string with commas. List every node: a call goes to the node
            believed to lead; a follower's answer names the leader, which is
            followed if it is in this list (else the next server is tried).
        token: bearer token, for a cluster with auth on.
        tls_ca: the CA certificate (a PEM file's path, or PEM bytes) the
            servers' certificates chain to. Setting it turns TLS on.
        tls_cert, tls_key: this client's certificate chain and key (paths or
            PEM bytes), for servers that ask for client certificates.
        timeout: each call's overall deadline in seconds, retries included
            (a long-polling receive gets its `wait_ms` on top).
        tls: force TLS on (True, e.g. with publicly trusted certificates
            and no `tls_ca`) or off (False). Default: on iff any tls_* is set.
        tls_server_name: the name to check the servers' certificates
            against, when it differs from the host in `servers`.

    A Client is safe to share between threads. Close it (or use `with`) to
    release its connections. `raftq.aio.Client` is the same for asyncio.
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
        self._lock = threading.Lock()
        self._closed = False
        # Seams for tests.
        self._sleep: Callable[[float], None] = time.sleep
        self._clock: Callable[[], float] = time.monotonic
        self._random: Callable[[], float] = random.random

    @classmethod
    def from_env(cls, **overrides: Any) -> "Client":
        """A client configured like the raftq CLI, from the environment:
        `RAFTQ_SERVERS` (comma-separated; default 127.0.0.1:7101..7103),
        `RAFTQ_TOKEN` (or `RAFTQ_TOKEN_FILE`, a file whose first line is the
        token), `RAFTQ_TLS_CA`, `RAFTQ_TLS_CERT`, `RAFTQ_TLS_KEY`. Keyword
        arguments override them."""
        return cls(**env_kwargs(**overrides))

    # -- lifecycle ---------------------------------------------------------

    def close(self) -> None:
        """Closes every connection. The client is unusable afterwards."""
        with self._lock:
            self._closed = True
            nodes, self._nodes = self._nodes, {}
        for node in nodes.values():
            if node.channel is not None:
                node.channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def leader(self) -> str:
        """The server the next call goes to: the one believed to lead."""
        return self._route.leader

    # -- queue management --------------------------------------------------

    def create_queue(self, name: str, *, timeout: Optional[float] = None, **config: Any) -> queue_pb2.QueueInfo:
        """Creates a queue; `config` takes the `QueueConfig` fields
        (`order="fifo"|"lifo"`, `lease_ms`, `max_deliveries`,
        `dead_letter_queue`, `message_ttl_ms`, `max_length`, `max_bytes`,
        `default_delay_ms`, `dedup_window_ms`, `backoff_base_ms`,
        `backoff_max_ms`, `max_message_bytes`); unset ones take their
        defaults. Raises RaftqError QUEUE_EXISTS if the name is taken."""
        return self._run(_ops.create_queue(name, config), timeout)

    def get_queue(self, name: str, *, timeout: Optional[float] = None) -> queue_pb2.QueueInfo:
        """A queue's resolved configuration and statistics."""
        return self._run(_ops.get_queue(name), timeout)

    def list_queues(
        self, prefix: str = "", *, page_size: int = 0, timeout: Optional[float] = None
    ) -> List[queue_pb2.QueueInfo]:
        """Every queue whose name starts with `prefix`, in name order (all
        pages; `timeout` applies to each page)."""
        pages = _ops.ListQueuesPages(prefix, page_size)
        op = pages.next()
        while op is not None:
            pages.add(self._run(op, timeout))
            op = pages.next()
        return pages.result

    def update_queue(self, name: str, *, timeout: Optional[float] = None, **config: Any) -> queue_pb2.QueueInfo:
        """Changes the given `QueueConfig` fields of a queue (see
        `create_queue`); the others stay as they are."""
        return self._run(_ops.update_queue(name, config), timeout)

    def delete_queue(self, name: str, *, timeout: Optional[float] = None) -> int:
        """Deletes a queue and its messages; returns how many messages went."""
        return self._run(_ops.delete_queue(name), timeout)

    def purge_queue(self, name: str, *, timeout: Optional[float] = None) -> int:
        """Removes every message of a queue (keeps the queue); returns how
        many were removed."""
        return self._run(_ops.purge_queue(name), timeout)

    # -- publishing --------------------------------------------------------

    def publish(
        self,
        queue: str,
        body: Body,
        attributes: Optional[Mapping[str, str]] = None,
        delay_ms: Optional[int] = None,
        idempotency_key: Optional[str] = None,
        *,
        timeout: Optional[float] = None,
    ) -> int:
        """Publishes one message and returns its id.

        Without an `idempotency_key` the client makes one (a UUID), so that
        retrying after a lost answer cannot store the message twice; pass
        your own to make your application's retries safe too.
        """
        return self._run(_ops.publish(queue, body, attributes, delay_ms, idempotency_key), timeout)

    def publish_batch(
        self, queue: str, messages: Iterable[Any], *, timeout: Optional[float] = None
    ) -> List[PublishResult]:
        """Publishes 1..1000 messages (at most 4 MiB together), all or none.

        Each item is a body (`bytes` or `str`) or a mapping with the keys
        `body` and optionally `attributes`, `delay_ms`, `idempotency_key`.
        Returns one `PublishResult` per message, in order.
        """
        return self._run(_ops.publish_batch(queue, messages), timeout)

    # -- consuming ---------------------------------------------------------

    def receive(
        self,
        queue: str,
        max_messages: int = 1,
        wait_ms: int = 0,
        lease_ms: Optional[int] = None,
        *,
        timeout: Optional[float] = None,
    ) -> List[Message]:
        """Leases up to `max_messages` (1..1000) visible messages.

        With `wait_ms` > 0 (at most 20000) it is a long poll: it returns as
        soon as a message is visible, or an empty list after `wait_ms`.
        `lease_ms` (None = the queue's) is how long the messages stay
        invisible to other consumers; settle each with `ack()` or `nack()`.
        """
        deliveries = self._run(_ops.receive(queue, max_messages, wait_ms, lease_ms), timeout)
        return [Message._from_delivery(d, self) for d in deliveries]

    def subscribe(self, queue: str, prefetch: int = 10, lease_ms: Optional[int] = None) -> "Subscription":
        """Streams messages from `queue` as they become visible: iterate over
        the returned `Subscription`, settle each message, and close it (or use
        `with`) when done. At most `prefetch` (1..1000) messages are leased
        and unsettled at a time. The subscription moves to the new leader by
        itself when leadership changes (the old stream's unsettled leases are
        given back by the server and redelivered)."""
        return Subscription(self, queue, prefetch, lease_ms)

    def ack(self, items: Union[ReceiptLike, Iterable[ReceiptLike]], *, timeout: Optional[float] = None) -> int:
        """Acknowledges messages (or receipts), all or none: they are removed
        for good. Returns how many were acked. Raises RaftqError
        LEASE_EXPIRED / RECEIPT_UNKNOWN (and acks nothing) if one lease is
        over."""
        op = _ops.ack(items)
        return 0 if op is None else self._run(op, timeout)

    def nack(
        self,
        item: ReceiptLike,
        delay_ms: Optional[int] = None,
        dead_letter: bool = False,
        reason: str = "",
        *,
        timeout: Optional[float] = None,
    ) -> NackOutcome:
        """Gives a delivery back: visible again after `delay_ms` (None = the
        queue's backoff), or dead-lettered now with `dead_letter=True`."""
        return self._run(_ops.nack(item, delay_ms, dead_letter, reason), timeout)

    def extend_lease(self, item: ReceiptLike, lease_ms: int, *, timeout: Optional[float] = None) -> int:
        """Makes a live lease end `lease_ms` from now; returns the new
        deadline (ms since the Unix epoch)."""
        return self._run(_ops.extend_lease(item, lease_ms), timeout)

    # -- inspection --------------------------------------------------------

    def peek(
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
            pages.add(self._run(op, timeout))
            op = pages.next()
        return pages.result

    def inspect(self, queue: str, message_id: int, *, timeout: Optional[float] = None) -> queue_pb2.MessageView:
        """One message with its state and history (MESSAGE_NOT_FOUND if the
        queue does not hold it)."""
        return self._run(_ops.inspect(queue, message_id), timeout)

    def redrive(
        self,
        queue: str,
        max_messages: int = 0,
        messages_per_second: Optional[int] = None,
        *,
        timeout: Optional[float] = None,
    ) -> int:
        """Moves dead letters held in `queue` back to the queues they died in
        (0 = all of them); returns how many moved."""
        return self._run(_ops.redrive(queue, max_messages, messages_per_second), timeout)

    def status(
        self, include_digest: bool = False, *, server: Optional[str] = None, timeout: Optional[float] = None
    ) -> cluster_pb2.StatusResponse:
        """The Raft state as seen by one node (any node answers, leader or
        not): the leader, the term, the members. `server` asks that node;
        by default the node believed to lead (or the next one up)."""
        op = _ops.status(include_digest)
        if server is None:
            return self._run(op, timeout)
        node = self._node(server)
        try:
            return node.cluster.Status(op.request, timeout=self.timeout if timeout is None else timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            err = RaftqError.from_rpc_error(e, server=server)
        raise err

    # -- topics ------------------------------------------------------------

    def create_topic(
        self,
        name: str,
        require_route: bool = False,
        dedup_window_ms: Optional[int] = None,
        *,
        timeout: Optional[float] = None,
    ) -> TopicInfo:
        """Creates a topic (its configuration is fixed from then on).
        `require_route=True` refuses a message that matches no binding
        (UNROUTABLE) instead of counting it as unrouted; `dedup_window_ms`
        is how long the topic remembers an idempotency key (None = the
        server's default, 5 min; 0 = no dedup). Raises RaftqError
        TOPIC_EXISTS if the name is taken."""
        return self._run(_ops.create_topic(name, require_route, dedup_window_ms), timeout)

    def get_topic(self, name: str, *, timeout: Optional[float] = None) -> TopicInfo:
        """A topic's configuration, counters and bindings."""
        return self._run(_ops.get_topic(name), timeout)

    def list_topics(self, prefix: str = "", *, page_size: int = 0, timeout: Optional[float] = None) -> List[TopicInfo]:
        """Every topic whose name starts with `prefix`, in name order (all
        pages; `timeout` applies to each page)."""
        pages = _ops.ListTopicsPages(prefix, page_size)
        op = pages.next()
        while op is not None:
            pages.add(self._run(op, timeout))
            op = pages.next()
        return pages.result

    def delete_topic(self, name: str, *, timeout: Optional[float] = None) -> int:
        """Deletes a topic and its bindings (the queues and their messages
        stay); returns how many bindings went."""
        return self._run(_ops.delete_topic(name), timeout)

    def bind(
        self, topic: str, queue: str, filter: FilterLike = None, *, timeout: Optional[float] = None
    ) -> TopicInfo:
        """Binds `queue` to `topic`: a message published to the topic is
        copied to the queue if it matches `filter` (a `raftq.Filter`, or a
        mapping of attribute to value that must all be equal; None = every
        message). Binding a bound queue replaces its filter, so a retry is
        harmless. Returns the topic with its bindings."""
        return self._run(_ops.bind(topic, queue, filter), timeout)

    def unbind(self, topic: str, queue: str, *, timeout: Optional[float] = None) -> TopicInfo:
        """Removes a binding; returns the topic with its bindings. Raises
        RaftqError BINDING_NOT_FOUND if the queue is not bound."""
        return self._run(_ops.unbind(topic, queue), timeout)

    def publish_topic(
        self, topic: str, messages: Iterable[Any], *, timeout: Optional[float] = None
    ) -> List[TopicPublishResult]:
        """Publishes 1..1000 messages to a topic: each is stored once in every
        bound queue whose filter it matches, all or none.

        Items as for `publish_batch`. A message without an `idempotency_key`
        gets one (a UUID), so retrying after a lost answer stores nothing
        twice (within the topic's dedup window). Returns one
        `TopicPublishResult` per message, in order, with its copies.
        """
        return self._run(_ops.publish_topic(topic, messages), timeout)

    # -- the call loop -----------------------------------------------------

    def _node(self, addr: str) -> _Node:
        with self._lock:
            if self._closed:
                raise RuntimeError("the raftq Client is closed")
            node = self._nodes.get(addr)
            if node is None:
                if self._credentials is not None:
                    channel = grpc.secure_channel(addr, self._credentials, options=self._options)
                else:
                    channel = grpc.insecure_channel(addr, options=self._options)
                node = _Node(channel, queue_pb2_grpc.QueueStub(channel), cluster_pb2_grpc.ClusterStub(channel))
                self._nodes[addr] = node
            return node

    def _run(self, op: Op, timeout: Optional[float]) -> Any:
        budget = (self.timeout if timeout is None else timeout) + op.extra
        return op.answer(self._call(op.service, op.method, op.request, op.safety, budget))

    def _call(self, service: str, method: str, request: Any, safety: Safety, timeout: Optional[float]) -> Any:
        """Calls `method` on the leader, following leader hints and retrying
        what `safety` allows until the call's deadline (`_retry.Attempts`)."""
        budget = self.timeout if timeout is None else timeout
        attempts = _retry.Attempts(self._route, safety, budget, self._clock, self._random)
        while True:
            remaining = attempts.next()
            if remaining is None:
                raise attempts.error()
            addr = attempts.addr
            stub = getattr(self._node(addr), service)
            try:
                response = getattr(stub, method)(request, timeout=remaining, metadata=self._metadata)
            except grpc.RpcError as e:
                err = RaftqError.from_rpc_error(e, server=addr)
            else:
                attempts.succeeded()
                return response
            wait = attempts.failed(err)
            if wait is None:
                raise attempts.error()
            if wait > 0:
                self._sleep(wait)


class Subscription:
    """An open `Client.subscribe` stream: an iterator of `Message`.

    Reconnects by itself when the stream ends with UNAVAILABLE or UNKNOWN
    (the leader changed or stopped, a connection broke), following the leader
    hint as calls do; gives up with the last error if it cannot subscribe
    again within the client's timeout. Any other end (NOT_FOUND when the
    queue is deleted, PERMISSION_DENIED, ...) raises `RaftqError`.
    `close()` (from any thread) ends the iteration.
    """

    def __init__(self, client: Client, queue: str, prefetch: int, lease_ms: Optional[int]) -> None:
        self._client = client
        self.queue = queue
        self._request = _ops.subscribe_request(queue, prefetch, lease_ms)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stream: Any = None
        self._addr = client.leader
        self._closed = False
        self._policy = _retry.Resubscribe(client._route, client.timeout, client._clock, client._random)

    def __iter__(self) -> "Subscription":
        return self

    def __next__(self) -> Message:
        client = self._client
        while True:
            with self._lock:
                if self._closed:
                    raise StopIteration
                if self._stream is None:
                    self._addr = client.leader
                    node = client._node(self._addr)
                    self._stream = node.queue.Subscribe(self._request, metadata=client._metadata)
                stream = self._stream
            try:
                response = next(stream)
            except StopIteration:
                err = RaftqError(grpc.StatusCode.UNAVAILABLE, "the server ended the stream", server=self._addr)
            except grpc.RpcError as e:
                if self._closed:
                    raise StopIteration from None
                err = RaftqError.from_rpc_error(e, server=self._addr)
            else:
                self._policy.delivered(self._addr)
                return Message._from_delivery(response.delivery, client)
            with self._lock:
                self._stream = None
            wait = self._policy.ended(err, self._addr)
            if wait is None:
                raise err
            if wait > 0:
                self._wake.wait(wait)

    def close(self) -> None:
        """Ends the subscription; the server gives its unsettled leases back."""
        with self._lock:
            self._closed = True
            stream, self._stream = self._stream, None
        self._wake.set()
        if stream is not None:
            stream.cancel()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
