"""The raftq client: a list of servers, calls that find the leader."""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import grpc

from . import _retry
from ._retry import Action, Safety
from .errors import RaftqError
from .types import Message, NackOutcome, PublishResult, Receipt
from .v1 import cluster_pb2, cluster_pb2_grpc, queue_pb2, queue_pb2_grpc

#: Largest gRPC message sent or received: 64 MiB. A Receive of many 1 MiB
#: messages is larger than gRPC's default 4 MiB.
MAX_GRPC_MESSAGE_BYTES = 64 * 1024 * 1024
#: What `Client.from_env` uses when RAFTQ_SERVERS is unset (as the CLI does).
DEFAULT_SERVERS = "127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103"

_ORDERS = {"fifo": queue_pb2.ORDER_FIFO, "lifo": queue_pb2.ORDER_LIFO}
_STATES = {
    "ready": queue_pb2.MESSAGE_STATE_READY,
    "delayed": queue_pb2.MESSAGE_STATE_DELAYED,
    "leased": queue_pb2.MESSAGE_STATE_LEASED,
    "dead": queue_pb2.MESSAGE_STATE_DEAD,
}
_CONFIG_FIELDS = tuple(f.name for f in queue_pb2.QueueConfig.DESCRIPTOR.fields)
_MESSAGE_KEYS = ("body", "attributes", "delay_ms", "idempotency_key")

Body = Union[bytes, bytearray, memoryview, str]
ReceiptLike = Union[Message, Receipt, queue_pb2.Receipt]
PathOrPem = Union[str, bytes, "os.PathLike[str]"]


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
    release its connections.
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
        self.servers: List[str] = _parse_servers(servers)
        if timeout is None or timeout <= 0:
            raise ValueError(f"timeout must be positive seconds, not {timeout!r}")
        self.timeout = float(timeout)
        token = (token or "").strip()
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        use_tls = tls if tls is not None else any(x is not None for x in (tls_ca, tls_cert, tls_key))
        self._credentials = None
        if use_tls:
            self._credentials = grpc.ssl_channel_credentials(
                root_certificates=_read_pem(tls_ca),
                private_key=_read_pem(tls_key),
                certificate_chain=_read_pem(tls_cert),
            )
        elif tls_ca is not None or tls_cert is not None:
            raise ValueError("tls=False contradicts tls_ca / tls_cert")
        self._options = [
            ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_BYTES),
        ]
        if tls_server_name:
            self._options.append(("grpc.ssl_target_name_override", tls_server_name))
        self._nodes: Dict[str, _Node] = {}
        self._lock = threading.Lock()
        self._leader = self.servers[0]
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
        env = os.environ
        token = env.get("RAFTQ_TOKEN") or None
        if not token and env.get("RAFTQ_TOKEN_FILE"):
            with open(env["RAFTQ_TOKEN_FILE"], encoding="utf-8") as f:
                token = (f.readline().strip()) or None
        kwargs: Dict[str, Any] = {
            "servers": env.get("RAFTQ_SERVERS") or DEFAULT_SERVERS,
            "token": token,
            "tls_ca": env.get("RAFTQ_TLS_CA") or None,
            "tls_cert": env.get("RAFTQ_TLS_CERT") or None,
            "tls_key": env.get("RAFTQ_TLS_KEY") or None,
        }
        kwargs.update(overrides)
        return cls(**kwargs)

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
        return self._leader

    # -- queue management --------------------------------------------------

    def create_queue(self, name: str, *, timeout: Optional[float] = None, **config: Any) -> queue_pb2.QueueInfo:
        """Creates a queue; `config` takes the `QueueConfig` fields
        (`order="fifo"|"lifo"`, `lease_ms`, `max_deliveries`,
        `dead_letter_queue`, `message_ttl_ms`, `max_length`, `max_bytes`,
        `default_delay_ms`, `dedup_window_ms`, `backoff_base_ms`,
        `backoff_max_ms`, `max_message_bytes`); unset ones take their
        defaults. Raises RaftqError QUEUE_EXISTS if the name is taken."""
        request = queue_pb2.CreateQueueRequest(queue=name, config=_queue_config(config))
        return self._call("queue", "CreateQueue", request, Safety.WRITE, timeout).queue

    def get_queue(self, name: str, *, timeout: Optional[float] = None) -> queue_pb2.QueueInfo:
        """A queue's resolved configuration and statistics."""
        return self._call("queue", "GetQueue", queue_pb2.GetQueueRequest(queue=name), Safety.READ, timeout).queue

    def list_queues(
        self, prefix: str = "", *, page_size: int = 0, timeout: Optional[float] = None
    ) -> List[queue_pb2.QueueInfo]:
        """Every queue whose name starts with `prefix`, in name order (all
        pages; `timeout` applies to each page)."""
        queues: List[queue_pb2.QueueInfo] = []
        start_after = ""
        while True:
            request = queue_pb2.ListQueuesRequest(prefix=prefix, start_after=start_after, limit=page_size)
            response = self._call("queue", "ListQueues", request, Safety.READ, timeout)
            queues.extend(response.queues)
            if not response.next_start_after or response.next_start_after <= start_after:
                return queues
            start_after = response.next_start_after

    def update_queue(self, name: str, *, timeout: Optional[float] = None, **config: Any) -> queue_pb2.QueueInfo:
        """Changes the given `QueueConfig` fields of a queue (see
        `create_queue`); the others stay as they are."""
        request = queue_pb2.UpdateQueueRequest(queue=name, config=_queue_config(config))
        return self._call("queue", "UpdateQueue", request, Safety.WRITE, timeout).queue

    def delete_queue(self, name: str, *, timeout: Optional[float] = None) -> int:
        """Deletes a queue and its messages; returns how many messages went."""
        request = queue_pb2.DeleteQueueRequest(queue=name)
        return self._call("queue", "DeleteQueue", request, Safety.WRITE, timeout).messages_deleted

    def purge_queue(self, name: str, *, timeout: Optional[float] = None) -> int:
        """Removes every message of a queue (keeps the queue); returns how
        many were removed."""
        request = queue_pb2.PurgeQueueRequest(queue=name)
        return self._call("queue", "PurgeQueue", request, Safety.WRITE, timeout).messages_purged

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
        message = _publish_message(body, attributes, delay_ms, idempotency_key)
        return self._publish(queue, [message], timeout)[0].message_id

    def publish_batch(
        self, queue: str, messages: Iterable[Any], *, timeout: Optional[float] = None
    ) -> List[PublishResult]:
        """Publishes 1..1000 messages (at most 4 MiB together), all or none.

        Each item is a body (`bytes` or `str`) or a mapping with the keys
        `body` and optionally `attributes`, `delay_ms`, `idempotency_key`.
        Returns one `PublishResult` per message, in order.
        """
        built = []
        for item in messages:
            if isinstance(item, Mapping):
                unknown = set(item) - set(_MESSAGE_KEYS)
                if unknown or "body" not in item:
                    raise TypeError(f"a message mapping takes the keys {_MESSAGE_KEYS} (body required), not {sorted(unknown)}")
                built.append(
                    _publish_message(item["body"], item.get("attributes"), item.get("delay_ms"), item.get("idempotency_key"))
                )
            else:
                built.append(_publish_message(item, None, None, None))
        return self._publish(queue, built, timeout)

    def _publish(self, queue: str, messages: List[queue_pb2.PublishMessage], timeout: Optional[float]) -> List[PublishResult]:
        request = queue_pb2.PublishRequest(queue=queue, messages=messages)
        response = self._call("queue", "Publish", request, Safety.PUBLISH, timeout)
        return [PublishResult(r.message_id, r.duplicate) for r in response.results]

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
        request = queue_pb2.ReceiveRequest(queue=queue, max_messages=max_messages, wait_ms=wait_ms)
        if lease_ms is not None:
            request.lease_ms = lease_ms
        budget = (self.timeout if timeout is None else timeout) + wait_ms / 1000.0
        response = self._call("queue", "Receive", request, Safety.WRITE, budget)
        return [Message._from_delivery(d, self) for d in response.deliveries]

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
        receipts = [_receipt(x) for x in _as_list(items)]
        if not receipts:
            return 0
        return self._call("queue", "Ack", queue_pb2.AckRequest(receipts=receipts), Safety.WRITE, timeout).acked

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
        request = queue_pb2.NackRequest(receipt=_receipt(item), dead_letter=dead_letter, reason=reason)
        if delay_ms is not None:
            request.delay_ms = delay_ms
        response = self._call("queue", "Nack", request, Safety.WRITE, timeout)
        return NackOutcome._from_proto(response.outcome)

    def extend_lease(self, item: ReceiptLike, lease_ms: int, *, timeout: Optional[float] = None) -> int:
        """Makes a live lease end `lease_ms` from now; returns the new
        deadline (ms since the Unix epoch)."""
        request = queue_pb2.ExtendLeaseRequest(receipt=_receipt(item), lease_ms=lease_ms)
        return self._call("queue", "ExtendLease", request, Safety.WRITE, timeout).lease_expires_at_ms

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
        found: List[queue_pb2.MessageView] = []
        while len(found) < limit:
            page = min(1000, limit - len(found))
            request = queue_pb2.PeekRequest(queue=queue, state=_state(state), after_id=after_id, limit=page)
            response = self._call("queue", "Peek", request, Safety.READ, timeout)
            found.extend(response.messages)
            # A page may be short, even empty, when the server's scan limit
            # ends it: follow the cursor while it moves on.
            if not response.next_after_id or response.next_after_id <= after_id:
                break
            after_id = response.next_after_id
        return found[:limit]

    def inspect(self, queue: str, message_id: int, *, timeout: Optional[float] = None) -> queue_pb2.MessageView:
        """One message with its state and history (MESSAGE_NOT_FOUND if the
        queue does not hold it)."""
        request = queue_pb2.InspectRequest(queue=queue, message_id=message_id)
        return self._call("queue", "Inspect", request, Safety.READ, timeout).message

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
        request = queue_pb2.RedriveRequest(queue=queue, max_messages=max_messages)
        if messages_per_second is not None:
            request.messages_per_second = messages_per_second
        return self._call("queue", "Redrive", request, Safety.WRITE, timeout).moved

    def status(
        self, include_digest: bool = False, *, server: Optional[str] = None, timeout: Optional[float] = None
    ) -> cluster_pb2.StatusResponse:
        """The Raft state as seen by one node (any node answers, leader or
        not): the leader, the term, the members. `server` asks that node;
        by default the node believed to lead (or the next one up)."""
        request = cluster_pb2.StatusRequest(include_digest=include_digest)
        if server is not None:
            node = self._node(server)
            try:
                return node.cluster.Status(request, timeout=self.timeout if timeout is None else timeout, metadata=self._metadata)
            except grpc.RpcError as e:
                raise RaftqError.from_rpc_error(e, server=server) from None
        return self._call("cluster", "Status", request, Safety.READ, timeout)

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

    def _call(self, service: str, method: str, request: Any, safety: Safety, timeout: Optional[float]) -> Any:
        """Calls `method` on the leader, following leader hints and retrying
        what `safety` allows until the call's deadline."""
        budget = self.timeout if timeout is None else timeout
        deadline = self._clock() + budget
        addr = self._leader
        failures = 0  # backoff exponent
        hops = 0  # redirects since the last backoff
        doubtful = False  # an earlier attempt may have taken effect
        last: Optional[RaftqError] = None
        for _attempt in range(_retry.MAX_ATTEMPTS):
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            stub = getattr(self._node(addr), service)
            try:
                response = getattr(stub, method)(request, timeout=remaining, metadata=self._metadata)
            except grpc.RpcError as e:
                err = RaftqError.from_rpc_error(e, server=addr)
            else:
                self._leader = addr
                return response

            ambiguous = _retry.is_ambiguous(err)
            if safety is not Safety.READ:
                err.in_doubt = doubtful or ambiguous
                doubtful = err.in_doubt
            last = err
            decision = _retry.decide(err, safety, addr, self.servers)
            if decision.action is Action.FAIL:
                raise err
            if decision.action is Action.REDIRECT and hops < 2 * len(self.servers):
                hops += 1
                addr = self._leader = decision.target  # type: ignore[assignment]
                continue
            # Back off (at least the server's delay), then go on.
            failures += 1
            hops = 0
            wait = max(decision.wait, _retry.backoff_delay(failures, self._random()))
            if decision.action is Action.REDIRECT:
                addr = decision.target  # type: ignore[assignment]
            elif decision.action is Action.NEXT:
                addr = _retry.next_server(self.servers, addr)
            self._leader = addr
            if self._clock() + wait >= deadline:
                break
            self._sleep(wait)
        if last is None:
            raise RaftqError(grpc.StatusCode.DEADLINE_EXCEEDED, f"no attempt made within {budget}s")
        raise last


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
        self._request = queue_pb2.SubscribeRequest(queue=queue, prefetch=prefetch)
        if lease_ms is not None:
            self._request.lease_ms = lease_ms
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stream: Any = None
        self._addr = client.leader
        self._closed = False
        self._failures = 0
        self._hops = 0
        self._failing_since: Optional[float] = None

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
                self._failures = self._hops = 0
                self._failing_since = None
                client._leader = self._addr
                return Message._from_delivery(response.delivery, client)
            with self._lock:
                self._stream = None
            self._recover(err)

    def _recover(self, err: RaftqError) -> None:
        """Decides after the stream ended with `err`: raise it, or prepare
        the next subscribe (and wait before it)."""
        client = self._client
        now = client._clock()
        if self._failing_since is None:
            self._failing_since = now
        retryable = err.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN) or (
            err.code == grpc.StatusCode.RESOURCE_EXHAUSTED and err.retry_delay is not None
        )
        if not retryable or now - self._failing_since >= client.timeout:
            raise err
        decision = _retry.decide(err, Safety.READ, self._addr, client.servers)
        if decision.action is Action.REDIRECT and self._hops < 2 * len(client.servers):
            self._hops += 1
            client._leader = decision.target  # type: ignore[assignment]
            return
        self._failures += 1
        self._hops = 0
        if decision.action is Action.REDIRECT:
            client._leader = decision.target  # type: ignore[assignment]
        elif decision.action is Action.NEXT:
            client._leader = _retry.next_server(client.servers, self._addr)
        wait = max(decision.wait, _retry.backoff_delay(self._failures, client._random()))
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


# -- helpers -----------------------------------------------------------------


def _parse_servers(servers: Union[str, Sequence[str]]) -> List[str]:
    items = servers.split(",") if isinstance(servers, str) else list(servers)
    parsed = [s.strip() for s in items if s and s.strip()]
    if not parsed:
        raise ValueError("no servers given: pass host:port addresses")
    for s in parsed:
        host, sep, port = s.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"server {s!r} is not host:port")
    return list(dict.fromkeys(parsed))


def _read_pem(value: Optional[PathOrPem]) -> Optional[bytes]:
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    with open(value, "rb") as f:
        return f.read()


def _body(body: Body) -> bytes:
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    raise TypeError(f"a message body is bytes or str, not {type(body).__name__}")


def _publish_message(
    body: Body, attributes: Optional[Mapping[str, str]], delay_ms: Optional[int], idempotency_key: Optional[str]
) -> queue_pb2.PublishMessage:
    message = queue_pb2.PublishMessage(
        body=_body(body),
        attributes=dict(attributes or {}),
        idempotency_key=idempotency_key or uuid.uuid4().hex,
    )
    if delay_ms is not None:
        message.delay_ms = delay_ms
    return message


def _queue_config(config: Mapping[str, Any]) -> queue_pb2.QueueConfig:
    fields: Dict[str, Any] = {}
    for key, value in config.items():
        if key not in _CONFIG_FIELDS:
            raise TypeError(f"unknown queue setting {key!r}; the settings are {', '.join(_CONFIG_FIELDS)}")
        if value is None:
            continue
        if key == "order" and isinstance(value, str):
            try:
                value = _ORDERS[value.lower()]
            except KeyError:
                raise ValueError(f"order is 'fifo' or 'lifo', not {value!r}") from None
        fields[key] = value
    return queue_pb2.QueueConfig(**fields)


def _state(state: Union[None, str, int]) -> int:
    if state is None:
        return queue_pb2.MESSAGE_STATE_UNSPECIFIED
    if isinstance(state, str):
        try:
            return _STATES[state.lower()]
        except KeyError:
            raise ValueError(f"state is one of {sorted(_STATES)}, not {state!r}") from None
    return int(state)


def _receipt(item: ReceiptLike) -> queue_pb2.Receipt:
    if isinstance(item, Message):
        return item.receipt.to_proto()
    if isinstance(item, Receipt):
        return item.to_proto()
    if isinstance(item, queue_pb2.Receipt):
        return item
    raise TypeError(f"expected a Message or a Receipt, not {type(item).__name__}")


def _as_list(items: Union[ReceiptLike, Iterable[ReceiptLike]]) -> List[ReceiptLike]:
    if isinstance(items, (Message, Receipt, queue_pb2.Receipt)):
        return [items]
    return list(items)
