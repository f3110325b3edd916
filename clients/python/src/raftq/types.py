"""The values the client hands out: messages, receipts, publish results,
and topics (filters, bindings, topic publish results)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Iterable, Optional, Tuple, Type, TypeVar, Union

from .v1 import queue_pb2

if TYPE_CHECKING:  # pragma: no cover
    from .aio import Client as AsyncClient
    from .client import Client

_M = TypeVar("_M", bound="BaseMessage")


@dataclass(frozen=True)
class Receipt:
    """Names one lease of one message, for ack, nack and extend. Stale once
    the lease ends or the message is delivered again."""

    queue: str
    message_id: int
    delivery_count: int

    def to_proto(self) -> queue_pb2.Receipt:
        return queue_pb2.Receipt(queue=self.queue, message_id=self.message_id, delivery_count=self.delivery_count)

    @classmethod
    def from_proto(cls, receipt: queue_pb2.Receipt) -> "Receipt":
        return cls(receipt.queue, receipt.message_id, receipt.delivery_count)


@dataclass(frozen=True)
class PublishResult:
    """The outcome of publishing one message: its id, and whether its
    idempotency key had been seen already (then nothing new was stored and
    `message_id` is the original message's)."""

    message_id: int
    duplicate: bool = False


class NackOutcome(enum.Enum):
    """What a nack did (`raftq.v1.NackOutcome`)."""

    UNSPECIFIED = 0
    #: The message will be visible again (after the nack's delay or the
    #: queue's backoff).
    REDELIVER = 1
    #: The message was dead-lettered (moved to the dead-letter queue, or
    #: parked in its queue in state DEAD).
    DEAD_LETTERED = 2

    @classmethod
    def _from_proto(cls, value: int) -> "NackOutcome":
        try:
            return cls(value)
        except ValueError:
            return cls.UNSPECIFIED


@dataclass(eq=False)
class BaseMessage:
    """A leased message's data, common to `Message` (from `raftq.Client`)
    and `AsyncMessage` (from `raftq.aio.Client`), which add the methods that
    settle it. Either can be passed wherever a receipt is taken (`ack`,
    `nack`, `extend_lease` of either client)."""

    queue: str
    message_id: int
    body: bytes
    attributes: Dict[str, str]
    #: How many times it has been delivered, this delivery included (1 the
    #: first time).
    delivery_count: int
    receipt: Receipt
    #: When the lease ends unless extended (ms since the Unix epoch).
    lease_expires_at_ms: int
    #: When it was published (ms since the Unix epoch).
    published_at_ms: int = 0
    #: The idempotency key it was published with ("" if none).
    idempotency_key: str = ""
    _client: Any = field(default=None, repr=False)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8")

    def _bound(self) -> Any:
        if self._client is None:
            raise RuntimeError(f"this {type(self).__name__} is not bound to a client; use client.ack(message.receipt)")
        return self._client

    @classmethod
    def _from_delivery(cls: Type[_M], delivery: queue_pb2.Delivery, client: Any) -> _M:
        view = delivery.message
        receipt = Receipt.from_proto(delivery.receipt)
        return cls(
            queue=receipt.queue,
            message_id=view.message_id or receipt.message_id,
            body=bytes(view.body),
            attributes=dict(view.attributes),
            delivery_count=receipt.delivery_count or view.delivery_count,
            receipt=receipt,
            lease_expires_at_ms=delivery.lease_expires_at_ms,
            published_at_ms=view.published_at_ms,
            idempotency_key=view.idempotency_key,
            _client=client,
        )


class Message(BaseMessage):
    """A message leased to this consumer by `Client.receive` or
    `Client.subscribe`.

    Settle it with `ack()` (done: removed for good) or `nack()` (give it
    back); without either it comes back when its lease ends (at-least-once
    delivery). `extend()` lengthens the lease of slow work.
    """

    _client: Optional["Client"]

    def ack(self, timeout: Optional[float] = None) -> None:
        """Acknowledges the message: it is removed for good. Raises
        `RaftqError` (LEASE_EXPIRED, RECEIPT_UNKNOWN) if the lease is over."""
        self._bound().ack(self, timeout=timeout)

    def nack(
        self,
        delay_ms: Optional[int] = None,
        dead_letter: bool = False,
        reason: str = "",
        timeout: Optional[float] = None,
    ) -> NackOutcome:
        """Gives the message back: visible again after `delay_ms` (None = the
        queue's backoff), or dead-lettered now with `dead_letter=True`."""
        return self._bound().nack(self, delay_ms=delay_ms, dead_letter=dead_letter, reason=reason, timeout=timeout)

    def extend(self, lease_ms: int, timeout: Optional[float] = None) -> int:
        """Sets the lease to end `lease_ms` from now; returns (and records in
        `lease_expires_at_ms`) the new deadline."""
        self.lease_expires_at_ms = self._bound().extend_lease(self, lease_ms, timeout=timeout)
        return self.lease_expires_at_ms


class AsyncMessage(BaseMessage):
    """A message leased to this consumer by `raftq.aio.Client.receive` or
    `subscribe`: a `Message` whose `ack`, `nack` and `extend` are
    coroutines (`await message.ack()`)."""

    _client: Optional["AsyncClient"]

    async def ack(self, timeout: Optional[float] = None) -> None:
        """Acknowledges the message: it is removed for good. Raises
        `RaftqError` (LEASE_EXPIRED, RECEIPT_UNKNOWN) if the lease is over."""
        await self._bound().ack(self, timeout=timeout)

    async def nack(
        self,
        delay_ms: Optional[int] = None,
        dead_letter: bool = False,
        reason: str = "",
        timeout: Optional[float] = None,
    ) -> NackOutcome:
        """Gives the message back: visible again after `delay_ms` (None = the
        queue's backoff), or dead-lettered now with `dead_letter=True`."""
        return await self._bound().nack(self, delay_ms=delay_ms, dead_letter=dead_letter, reason=reason, timeout=timeout)

    async def extend(self, lease_ms: int, timeout: Optional[float] = None) -> int:
        """Sets the lease to end `lease_ms` from now; returns (and records in
        `lease_expires_at_ms`) the new deadline."""
        self.lease_expires_at_ms = await self._bound().extend_lease(self, lease_ms, timeout=timeout)
        return self.lease_expires_at_ms


# -- topics ------------------------------------------------------------------------

#: The tests a filter condition can make (the `test` oneof of
#: `raftq.v1.FilterCondition`).
CONDITION_TESTS = ("equals", "one_of", "prefix", "exists", "not_exists")


@dataclass(frozen=True)
class Condition:
    """One condition of a `Filter`, on one attribute.

    `test` is "equals" or "prefix" (`value` is a str), "one_of" (`value` is
    a tuple of str), "exists" or "not_exists" (`value` is None). A filter
    read from a newer server may hold a test this client does not know:
    "unknown" (it cannot be sent back).
    """

    key: str
    test: str
    value: Union[None, str, Tuple[str, ...]] = None

    def __post_init__(self) -> None:
        if not isinstance(self.key, str):
            raise TypeError(f"a condition's key is a str, not {type(self.key).__name__}")
        if self.test in ("equals", "prefix"):
            if not isinstance(self.value, str):
                raise TypeError(f"{self.test} takes a str value, not {type(self.value).__name__}")
        elif self.test == "one_of":
            if isinstance(self.value, (str, bytes)) or self.value is None:
                raise TypeError("one_of takes a list of str values, not one value")
            values = tuple(self.value)
            if not values or not all(isinstance(v, str) for v in values):
                raise TypeError("one_of takes one or more str values")
            object.__setattr__(self, "value", values)
        elif self.test in ("exists", "not_exists", "unknown"):
            if self.value is not None:
                raise TypeError(f"{self.test} takes no value")
        else:
            raise ValueError(f"a condition's test is one of {CONDITION_TESTS}, not {self.test!r}")

    def to_proto(self) -> queue_pb2.FilterCondition:
        if self.test == "unknown":
            raise ValueError(f"the condition on {self.key!r} has a test this client does not know: it cannot be sent")
        if self.test == "one_of":
            return queue_pb2.FilterCondition(key=self.key, one_of=queue_pb2.FilterValues(values=self.value))
        if self.test in ("exists", "not_exists"):
            return queue_pb2.FilterCondition(key=self.key, **{self.test: True})
        return queue_pb2.FilterCondition(key=self.key, **{self.test: self.value})

    @classmethod
    def from_proto(cls, condition: queue_pb2.FilterCondition) -> "Condition":
        test = condition.WhichOneof("test")
        if test == "one_of":
            return cls(condition.key, test, tuple(condition.one_of.values))
        if test in ("equals", "prefix"):
            return cls(condition.key, test, getattr(condition, test))
        if test in ("exists", "not_exists"):
            return cls(condition.key, test)
        return cls(condition.key, "unknown")


@dataclass(frozen=True)
class Filter:
    """A binding's filter on message attributes: every condition must hold;
    no conditions (`Filter()`, or `Filter.all()`) matches every message.
    Build it by chaining; each step returns a new Filter:

        raftq.Filter().equals("region", "eu").one_of("kind", ["created", "updated"]).not_exists("test")

    Keys and values compare as exact strings (case-sensitive).
    """

    conditions: Tuple[Condition, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "conditions", tuple(self.conditions))

    @classmethod
    def all(cls) -> "Filter":
        """The filter without conditions: every message matches."""
        return cls()

    def _and(self, condition: Condition) -> "Filter":
        return Filter(self.conditions + (condition,))

    def equals(self, key: str, value: str) -> "Filter":
        """... and the attribute `key` is present and equals `value`."""
        return self._and(Condition(key, "equals", value))

    def one_of(self, key: str, values: Iterable[str]) -> "Filter":
        """... and the attribute `key` is present and equals one of `values`
        (1..64 of them)."""
        return self._and(Condition(key, "one_of", values))  # type: ignore[arg-type]

    def prefix(self, key: str, prefix: str) -> "Filter":
        """... and the attribute `key` is present and starts with `prefix`."""
        return self._and(Condition(key, "prefix", prefix))

    def exists(self, key: str) -> "Filter":
        """... and the attribute `key` is present, whatever its value."""
        return self._and(Condition(key, "exists"))

    def not_exists(self, key: str) -> "Filter":
        """... and the attribute `key` is absent."""
        return self._and(Condition(key, "not_exists"))

    def to_proto(self) -> queue_pb2.Filter:
        return queue_pb2.Filter(conditions=[c.to_proto() for c in self.conditions])

    @classmethod
    def from_proto(cls, proto: queue_pb2.Filter) -> "Filter":
        return cls(tuple(Condition.from_proto(c) for c in proto.conditions))


@dataclass(frozen=True)
class Binding:
    """One queue bound to a topic, with its filter."""

    queue: str
    filter: Filter = Filter()

    @classmethod
    def _from_proto(cls, binding: queue_pb2.Binding) -> "Binding":
        return cls(binding.queue, Filter.from_proto(binding.filter))


@dataclass(frozen=True)
class TopicStats:
    """A topic's lifetime counters (replicated, never reset)."""

    #: Messages accepted (duplicates not counted).
    published_total: int = 0
    #: Copies stored in bound queues.
    routed_copies_total: int = 0
    #: Accepted messages that matched no binding.
    unrouted_total: int = 0
    #: Publishes answered from the topic's dedup window.
    duplicates_total: int = 0
    #: Idempotency keys forgotten before their window ended.
    dedup_evicted_total: int = 0

    @classmethod
    def _from_proto(cls, stats: queue_pb2.TopicStats) -> "TopicStats":
        return cls(
            stats.published_total,
            stats.routed_copies_total,
            stats.unrouted_total,
            stats.duplicates_total,
            stats.dedup_evicted_total,
        )


@dataclass(frozen=True)
class TopicInfo:
    """A topic: its configuration (fixed at creation), counters and
    bindings, in queue name order."""

    name: str
    #: Whether a message that matches no binding is refused (UNROUTABLE)
    #: rather than counted as unrouted.
    require_route: bool = False
    #: How long the topic remembers an idempotency key, in ms (0 = no
    #: dedup); None if the server did not say.
    dedup_window_ms: Optional[int] = None
    stats: TopicStats = TopicStats()
    bindings: Tuple[Binding, ...] = ()
    #: When it was created (ms since the Unix epoch).
    created_at_ms: int = 0

    @classmethod
    def _from_proto(cls, info: queue_pb2.TopicInfo) -> "TopicInfo":
        config = info.config
        return cls(
            name=info.name,
            require_route=config.require_route,
            dedup_window_ms=config.dedup_window_ms if config.HasField("dedup_window_ms") else None,
            stats=TopicStats._from_proto(info.stats),
            bindings=tuple(Binding._from_proto(b) for b in info.bindings),
            created_at_ms=info.created_at_ms,
        )


@dataclass(frozen=True)
class TopicCopy:
    """One queue's copy of a message published to a topic."""

    queue: str
    #: The copy's id in `queue`.
    message_id: int
    #: The queue's own dedup window held the idempotency key: `message_id`
    #: is the message it stored before, and nothing new was stored there.
    duplicate: bool = False


@dataclass(frozen=True)
class TopicPublishResult:
    """The outcome of publishing one message to a topic: its topic-level
    id, whether the topic's dedup window held its idempotency key (then
    nothing was stored anywhere, `message_id` is the original's and
    `copies` is empty), and one copy per matching bound queue, in queue
    name order."""

    message_id: int
    duplicate: bool = False
    copies: Tuple[TopicCopy, ...] = ()

    @classmethod
    def _from_proto(cls, result: queue_pb2.TopicPublishResult) -> "TopicPublishResult":
        copies = tuple(TopicCopy(c.queue, c.message_id, c.duplicate) for c in result.copies)
        return cls(result.message_id, result.duplicate, copies)
