"""Every RPC of both clients as data, without I/O: the request a method
sends, how safe it is to repeat, and what it returns from the response.

`raftq.Client` and `raftq.aio.Client` build the same `Op` for a method and
run it with their own call loop (blocking, or awaiting), so the two cannot
drift apart in what they send or return.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Union

from ._retry import Safety
from .types import BaseMessage, Filter, NackOutcome, PublishResult, Receipt, TopicInfo, TopicPublishResult
from .v1 import cluster_pb2, queue_pb2

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
ReceiptLike = Union[BaseMessage, Receipt, queue_pb2.Receipt]
#: A binding's filter: a `Filter`, a mapping of attribute to value (each
#: must be equal), a `queue_pb2.Filter`, or None (every message).
FilterLike = Union[None, Filter, Mapping[str, str], queue_pb2.Filter]


def _same(response: Any) -> Any:
    return response


@dataclass(frozen=True)
class Op:
    """One RPC to run on the leader."""

    #: "queue" or "cluster": which stub.
    service: str
    method: str
    request: Any
    safety: Safety
    #: What the client method returns, from the response.
    answer: Callable[[Any], Any] = _same
    #: Seconds added to the call's deadline (a long poll's wait).
    extra: float = 0.0


# -- queue management ------------------------------------------------------------


def create_queue(name: str, config: Mapping[str, Any]) -> Op:
    request = queue_pb2.CreateQueueRequest(queue=name, config=queue_config(config))
    return Op("queue", "CreateQueue", request, Safety.WRITE, lambda r: r.queue)


def get_queue(name: str) -> Op:
    return Op("queue", "GetQueue", queue_pb2.GetQueueRequest(queue=name), Safety.READ, lambda r: r.queue)


def update_queue(name: str, config: Mapping[str, Any]) -> Op:
    request = queue_pb2.UpdateQueueRequest(queue=name, config=queue_config(config))
    return Op("queue", "UpdateQueue", request, Safety.WRITE, lambda r: r.queue)


def delete_queue(name: str) -> Op:
    request = queue_pb2.DeleteQueueRequest(queue=name)
    return Op("queue", "DeleteQueue", request, Safety.WRITE, lambda r: r.messages_deleted)


def purge_queue(name: str) -> Op:
    request = queue_pb2.PurgeQueueRequest(queue=name)
    return Op("queue", "PurgeQueue", request, Safety.WRITE, lambda r: r.messages_purged)


class ListQueuesPages:
    """ListQueues page by page: `next()` is the next page's Op (None when
    done), `add(response)` takes its answer, `result` the queues so far."""

    def __init__(self, prefix: str, page_size: int) -> None:
        self._prefix = prefix
        self._page_size = page_size
        self._start_after = ""
        self._done = False
        self.result: List[queue_pb2.QueueInfo] = []

    def next(self) -> Optional[Op]:
        if self._done:
            return None
        request = queue_pb2.ListQueuesRequest(prefix=self._prefix, start_after=self._start_after, limit=self._page_size)
        return Op("queue", "ListQueues", request, Safety.READ)

    def add(self, response: queue_pb2.ListQueuesResponse) -> None:
        self.result.extend(response.queues)
        if not response.next_start_after or response.next_start_after <= self._start_after:
            self._done = True
        else:
            self._start_after = response.next_start_after


# -- publishing ------------------------------------------------------------------


def publish(
    queue: str,
    body: Body,
    attributes: Optional[Mapping[str, str]],
    delay_ms: Optional[int],
    idempotency_key: Optional[str],
) -> Op:
    message = publish_message(body, attributes, delay_ms, idempotency_key)
    return _publish(queue, [message], lambda r: r.results[0].message_id)


def publish_batch(queue: str, messages: Iterable[Any]) -> Op:
    built = publish_messages(messages)
    return _publish(queue, built, lambda r: [PublishResult(x.message_id, x.duplicate) for x in r.results])


def _publish(queue: str, messages: List[queue_pb2.PublishMessage], answer: Callable[[Any], Any]) -> Op:
    request = queue_pb2.PublishRequest(queue=queue, messages=messages)
    return Op("queue", "Publish", request, Safety.PUBLISH, answer)


# -- consuming ---------------------------------------------------------------------


def receive(queue: str, max_messages: int, wait_ms: int, lease_ms: Optional[int]) -> Op:
    """Answers the deliveries; each client makes its own message type."""
    request = queue_pb2.ReceiveRequest(queue=queue, max_messages=max_messages, wait_ms=wait_ms)
    if lease_ms is not None:
        request.lease_ms = lease_ms
    return Op("queue", "Receive", request, Safety.WRITE, lambda r: list(r.deliveries), extra=wait_ms / 1000.0)


def subscribe_request(queue: str, prefetch: int, lease_ms: Optional[int]) -> queue_pb2.SubscribeRequest:
    request = queue_pb2.SubscribeRequest(queue=queue, prefetch=prefetch)
    if lease_ms is not None:
        request.lease_ms = lease_ms
    return request


def ack(items: Union[ReceiptLike, Iterable[ReceiptLike]]) -> Optional[Op]:
    """None for no receipts: nothing to send (the clients return 0)."""
    receipts = [receipt(x) for x in as_list(items)]
    if not receipts:
        return None
    return Op("queue", "Ack", queue_pb2.AckRequest(receipts=receipts), Safety.WRITE, lambda r: r.acked)


def nack(item: ReceiptLike, delay_ms: Optional[int], dead_letter: bool, reason: str) -> Op:
    request = queue_pb2.NackRequest(receipt=receipt(item), dead_letter=dead_letter, reason=reason)
    if delay_ms is not None:
        request.delay_ms = delay_ms
    return Op("queue", "Nack", request, Safety.WRITE, lambda r: NackOutcome._from_proto(r.outcome))


def extend_lease(item: ReceiptLike, lease_ms: int) -> Op:
    request = queue_pb2.ExtendLeaseRequest(receipt=receipt(item), lease_ms=lease_ms)
    return Op("queue", "ExtendLease", request, Safety.WRITE, lambda r: r.lease_expires_at_ms)


# -- inspection ------------------------------------------------------------------


class PeekPages:
    """Peek page by page until `limit` messages (see `ListQueuesPages`)."""

    def __init__(self, queue: str, state: Union[None, str, int], limit: int, after_id: int) -> None:
        self._queue = queue
        self._state = message_state(state)
        self._limit = limit
        self._after_id = after_id
        self._done = False
        self._found: List[queue_pb2.MessageView] = []

    def next(self) -> Optional[Op]:
        if self._done or len(self._found) >= self._limit:
            return None
        page = min(1000, self._limit - len(self._found))
        request = queue_pb2.PeekRequest(queue=self._queue, state=self._state, after_id=self._after_id, limit=page)
        return Op("queue", "Peek", request, Safety.READ)

    def add(self, response: queue_pb2.PeekResponse) -> None:
        self._found.extend(response.messages)
        # A page may be short, even empty, when the server's scan limit
        # ends it: follow the cursor while it moves on.
        if not response.next_after_id or response.next_after_id <= self._after_id:
            self._done = True
        else:
            self._after_id = response.next_after_id

    @property
    def result(self) -> List[queue_pb2.MessageView]:
        return self._found[: self._limit]


def inspect(queue: str, message_id: int) -> Op:
    request = queue_pb2.InspectRequest(queue=queue, message_id=message_id)
    return Op("queue", "Inspect", request, Safety.READ, lambda r: r.message)


def redrive(queue: str, max_messages: int, messages_per_second: Optional[int]) -> Op:
    request = queue_pb2.RedriveRequest(queue=queue, max_messages=max_messages)
    if messages_per_second is not None:
        request.messages_per_second = messages_per_second
    return Op("queue", "Redrive", request, Safety.WRITE, lambda r: r.moved)


def status(include_digest: bool) -> Op:
    return Op("cluster", "Status", cluster_pb2.StatusRequest(include_digest=include_digest), Safety.READ)


# -- topics ------------------------------------------------------------------------


def create_topic(name: str, require_route: bool, dedup_window_ms: Optional[int]) -> Op:
    config = queue_pb2.TopicConfig(require_route=require_route)
    if dedup_window_ms is not None:
        config.dedup_window_ms = dedup_window_ms
    request = queue_pb2.CreateTopicRequest(topic=name, config=config)
    return Op("queue", "CreateTopic", request, Safety.WRITE, lambda r: TopicInfo._from_proto(r.topic))


def get_topic(name: str) -> Op:
    request = queue_pb2.GetTopicRequest(topic=name)
    return Op("queue", "GetTopic", request, Safety.READ, lambda r: TopicInfo._from_proto(r.topic))


class ListTopicsPages:
    """ListTopics page by page, as `ListQueuesPages`; `result` holds
    `TopicInfo`s."""

    def __init__(self, prefix: str, page_size: int) -> None:
        self._prefix = prefix
        self._page_size = page_size
        self._start_after = ""
        self._done = False
        self.result: List[TopicInfo] = []

    def next(self) -> Optional[Op]:
        if self._done:
            return None
        request = queue_pb2.ListTopicsRequest(prefix=self._prefix, start_after=self._start_after, limit=self._page_size)
        return Op("queue", "ListTopics", request, Safety.READ)

    def add(self, response: queue_pb2.ListTopicsResponse) -> None:
        self.result.extend(TopicInfo._from_proto(t) for t in response.topics)
        if not response.next_start_after or response.next_start_after <= self._start_after:
            self._done = True
        else:
            self._start_after = response.next_start_after


def delete_topic(name: str) -> Op:
    request = queue_pb2.DeleteTopicRequest(topic=name)
    return Op("queue", "DeleteTopic", request, Safety.WRITE, lambda r: r.bindings_removed)


def bind(topic: str, queue: str, filter: FilterLike) -> Op:
    """Binding a bound queue again sets its filter: a repeat leaves the
    same state, so it is retried as an idempotent write."""
    request = queue_pb2.BindRequest(topic=topic, queue=queue, filter=filter_proto(filter))
    return Op("queue", "Bind", request, Safety.IDEMPOTENT, lambda r: TopicInfo._from_proto(r.topic))


def unbind(topic: str, queue: str) -> Op:
    """Not idempotent: a repeat of an unbind that did commit is
    BINDING_NOT_FOUND."""
    request = queue_pb2.UnbindRequest(topic=topic, queue=queue)
    return Op("queue", "Unbind", request, Safety.WRITE, lambda r: TopicInfo._from_proto(r.topic))


def publish_topic(topic: str, messages: Iterable[Any]) -> Op:
    """Messages as for `publish_batch`, each keyed unless it has a key:
    the topic's dedup window answers a repeat `duplicate` and stores
    nothing, so it is retried as a publish."""
    if isinstance(messages, (str, bytes, bytearray, memoryview, Mapping)):
        raise TypeError("publish_topic takes a list of messages; for one message pass [message]")
    request = queue_pb2.PublishTopicRequest(topic=topic, messages=publish_messages(messages))
    return Op(
        "queue",
        "PublishTopic",
        request,
        Safety.PUBLISH,
        lambda r: [TopicPublishResult._from_proto(x) for x in r.results],
    )


# -- request pieces ----------------------------------------------------------------


def body_bytes(body: Body) -> bytes:
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    raise TypeError(f"a message body is bytes or str, not {type(body).__name__}")


def publish_message(
    body: Body, attributes: Optional[Mapping[str, str]], delay_ms: Optional[int], idempotency_key: Optional[str]
) -> queue_pb2.PublishMessage:
    """One message to publish, keyed (a random UUID) unless a key is given:
    a retried publish then cannot store it twice."""
    message = queue_pb2.PublishMessage(
        body=body_bytes(body),
        attributes=dict(attributes or {}),
        idempotency_key=idempotency_key or uuid.uuid4().hex,
    )
    if delay_ms is not None:
        message.delay_ms = delay_ms
    return message


def publish_messages(messages: Iterable[Any]) -> List[queue_pb2.PublishMessage]:
    """The messages of a batch: each item a body, or a mapping with the
    keys `_MESSAGE_KEYS` (body required)."""
    built = []
    for item in messages:
        if isinstance(item, Mapping):
            unknown = set(item) - set(_MESSAGE_KEYS)
            if unknown or "body" not in item:
                raise TypeError(f"a message mapping takes the keys {_MESSAGE_KEYS} (body required), not {sorted(unknown)}")
            built.append(publish_message(item["body"], item.get("attributes"), item.get("delay_ms"), item.get("idempotency_key")))
        else:
            built.append(publish_message(item, None, None, None))
    return built


def filter_proto(filter: FilterLike) -> queue_pb2.Filter:
    if filter is None:
        return queue_pb2.Filter()
    if isinstance(filter, Filter):
        return filter.to_proto()
    if isinstance(filter, queue_pb2.Filter):
        return filter
    if isinstance(filter, Mapping):
        built = Filter()
        for key, value in filter.items():
            built = built.equals(key, value)
        return built.to_proto()
    raise TypeError(f"a filter is a raftq.Filter, a mapping {{attribute: value}} or None, not {type(filter).__name__}")


def queue_config(config: Mapping[str, Any]) -> queue_pb2.QueueConfig:
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


def message_state(state: Union[None, str, int]) -> int:
    if state is None:
        return queue_pb2.MESSAGE_STATE_UNSPECIFIED
    if isinstance(state, str):
        try:
            return _STATES[state.lower()]
        except KeyError:
            raise ValueError(f"state is one of {sorted(_STATES)}, not {state!r}") from None
    return int(state)


def receipt(item: ReceiptLike) -> queue_pb2.Receipt:
    if isinstance(item, BaseMessage):
        return item.receipt.to_proto()
    if isinstance(item, Receipt):
        return item.to_proto()
    if isinstance(item, queue_pb2.Receipt):
        return item
    raise TypeError(f"expected a Message or a Receipt, not {type(item).__name__}")


def as_list(items: Union[ReceiptLike, Iterable[ReceiptLike]]) -> List[ReceiptLike]:
    if isinstance(items, (BaseMessage, Receipt, queue_pb2.Receipt)):
        return [items]
    return list(items)
