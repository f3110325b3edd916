"""The values the client hands out: messages, receipts, publish results."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Optional, Type, TypeVar

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
