"""raftq: the Python client of raftq, a Raft-replicated message queue.

    import raftq

    with raftq.Client(["127.0.0.1:7101", "127.0.0.1:7102", "127.0.0.1:7103"]) as client:
        client.create_queue("jobs")
        client.publish("jobs", b"hello")
        for message in client.receive("jobs", max_messages=10, wait_ms=5000):
            print(message.body)
            message.ack()

Topics fan a message out to bound queues: `client.create_topic("orders")`,
`client.bind("orders", "billing", raftq.Filter().equals("region", "eu"))`,
`client.publish_topic("orders", [b"order 1"])`.

`raftq.aio.Client` is the same client for asyncio (`await client.publish(...)`).
See docs/clients-python.md in the raftq repository.
"""

from . import aio
from .aio import AsyncSubscription
from .client import DEFAULT_SERVERS, MAX_GRPC_MESSAGE_BYTES, Client, Subscription
from .errors import ErrorReason, FieldViolation, RaftqError
from .types import (
    AsyncMessage,
    BaseMessage,
    Binding,
    Condition,
    Filter,
    Message,
    NackOutcome,
    PublishResult,
    Receipt,
    TopicCopy,
    TopicInfo,
    TopicPublishResult,
    TopicStats,
)

__version__ = "0.1.0"

__all__ = [
    "AsyncMessage",
    "AsyncSubscription",
    "BaseMessage",
    "Binding",
    "Client",
    "Condition",
    "DEFAULT_SERVERS",
    "ErrorReason",
    "FieldViolation",
    "Filter",
    "MAX_GRPC_MESSAGE_BYTES",
    "Message",
    "NackOutcome",
    "PublishResult",
    "RaftqError",
    "Receipt",
    "Subscription",
    "TopicCopy",
    "TopicInfo",
    "TopicPublishResult",
    "TopicStats",
    "__version__",
    "aio",
]
