"""The sync and the asyncio client send the same requests, to the same
servers, and return the same answers: both build their calls with
`raftq._ops` and retry with `raftq._retry`. Each scenario runs on both
against one recording fake cluster."""

import grpc
import pytest

import raftq
from raftq.v1 import cluster_pb2, queue_pb2

from conftest import fake_async_client, fake_client, not_leader, rich_error, run

SERVERS = ["a:1", "b:2", "c:3"]
RECEIPT = raftq.Receipt("q", 5, 2)
TOPIC = queue_pb2.TopicInfo(
    name="t",
    config=queue_pb2.TopicConfig(require_route=True, dedup_window_ms=60_000),
    stats=queue_pb2.TopicStats(published_total=3, routed_copies_total=5),
    bindings=[
        queue_pb2.Binding(queue="q"),
        queue_pb2.Binding(
            queue="q-eu",
            filter=queue_pb2.Filter(conditions=[queue_pb2.FilterCondition(key="region", equals="eu")]),
        ),
    ],
)


def answer(method, request):
    if method == "Publish":
        return queue_pb2.PublishResponse(
            results=[queue_pb2.PublishResult(message_id=10 + i, duplicate=i == 1) for i in range(len(request.messages))]
        )
    if method == "Receive":
        d = queue_pb2.Delivery(
            message=queue_pb2.MessageView(message_id=5, body=b"b", delivery_count=2, idempotency_key="k"),
            receipt=RECEIPT.to_proto(),
            lease_expires_at_ms=77,
        )
        return queue_pb2.ReceiveResponse(deliveries=[d])
    if method == "PublishTopic":
        return queue_pb2.PublishTopicResponse(
            results=[
                queue_pb2.TopicPublishResult(
                    message_id=20 + i,
                    duplicate=i == 1,
                    copies=[] if i == 1 else [queue_pb2.TopicCopy(queue="q", message_id=30 + i)],
                )
                for i in range(len(request.messages))
            ]
        )
    return {
        "CreateQueue": queue_pb2.CreateQueueResponse(queue=queue_pb2.QueueInfo(name="q")),
        "GetQueue": queue_pb2.GetQueueResponse(queue=queue_pb2.QueueInfo(name="q")),
        "UpdateQueue": queue_pb2.UpdateQueueResponse(queue=queue_pb2.QueueInfo(name="q")),
        "DeleteQueue": queue_pb2.DeleteQueueResponse(messages_deleted=3),
        "PurgeQueue": queue_pb2.PurgeQueueResponse(messages_purged=4),
        "ListQueues": queue_pb2.ListQueuesResponse(queues=[queue_pb2.QueueInfo(name="q")]),
        "Ack": queue_pb2.AckResponse(acked=len(getattr(request, "receipts", []))),
        "Nack": queue_pb2.NackResponse(outcome=queue_pb2.NACK_OUTCOME_REDELIVER),
        "ExtendLease": queue_pb2.ExtendLeaseResponse(lease_expires_at_ms=99),
        "Peek": queue_pb2.PeekResponse(messages=[queue_pb2.MessageView(message_id=1)]),
        "Inspect": queue_pb2.InspectResponse(message=queue_pb2.MessageView(message_id=1)),
        "Redrive": queue_pb2.RedriveResponse(moved=2),
        "Status": cluster_pb2.StatusResponse(leader_address="b:2"),
        "CreateTopic": queue_pb2.CreateTopicResponse(topic=TOPIC),
        "GetTopic": queue_pb2.GetTopicResponse(topic=TOPIC),
        "ListTopics": queue_pb2.ListTopicsResponse(topics=[TOPIC]),
        "DeleteTopic": queue_pb2.DeleteTopicResponse(bindings_removed=2),
        "Bind": queue_pb2.BindResponse(topic=TOPIC),
        "Unbind": queue_pb2.UnbindResponse(topic=TOPIC),
    }[method]


def cluster():
    """A fresh fake cluster: a follower first, then (for some methods) an
    election in progress, then the leader: both clients must take the same
    path through it."""
    elections = {"GetQueue": 1, "Ack": 2, "Bind": 1, "PublishTopic": 2}

    def handler(addr, method, request):
        if addr == "a:1":
            raise not_leader("c:3")
        if elections.get(method, 0) > 0:
            elections[method] -= 1
            raise rich_error(grpc.StatusCode.UNAVAILABLE, "no leader", "NO_LEADER", retry_ms=20)
        return answer(method, request)

    return handler


CALLS = {
    "create_queue": (("q",), {"order": "lifo", "max_deliveries": 0}),
    "get_queue": (("q",), {}),
    "list_queues": (("p",), {"page_size": 5}),
    "update_queue": (("q",), {"lease_ms": 1000}),
    "delete_queue": (("q",), {}),
    "purge_queue": (("q",), {}),
    "publish": (("q", "hé"), {"attributes": {"a": "1"}, "delay_ms": 5, "idempotency_key": "k1"}),
    "publish_batch": (("q", [{"body": b"x", "idempotency_key": "k2"}, {"body": "y", "idempotency_key": "k3"}]), {}),
    "receive": (("q",), {"max_messages": 3, "wait_ms": 100, "lease_ms": 500}),
    "ack": (([RECEIPT, RECEIPT.to_proto()],), {}),
    "nack": ((RECEIPT,), {"delay_ms": 0, "reason": "r"}),
    "extend_lease": ((RECEIPT, 2000), {}),
    "peek": (("q",), {"state": "ready", "limit": 3, "after_id": 2}),
    "inspect": (("q", 1), {}),
    "redrive": (("q",), {"max_messages": 5, "messages_per_second": 10}),
    "status": ((), {"include_digest": True}),
    "create_topic": (("t",), {"require_route": True, "dedup_window_ms": 0}),
    "get_topic": (("t",), {}),
    "list_topics": (("p",), {"page_size": 5}),
    "delete_topic": (("t",), {}),
    "bind": (("t", "q-eu"), {"filter": raftq.Filter().equals("region", "eu").one_of("kind", ["a", "b"])}),
    "unbind": (("t", "q"), {}),
    "publish_topic": (
        ("t", [{"body": b"x", "attributes": {"region": "eu"}, "idempotency_key": "k4"}, {"body": "y", "idempotency_key": "k5"}]),
        {},
    ),
}


def comparable(result):
    if isinstance(result, list):
        return [comparable(r) for r in result]
    if isinstance(result, raftq.BaseMessage):
        return (result.message_id, result.body, result.receipt, result.lease_expires_at_ms, result.idempotency_key)
    return result


@pytest.mark.parametrize("name", sorted(CALLS))
def test_both_clients_send_and_return_the_same(name):
    args, kwargs = CALLS[name]
    sync_client, sync_log, sync_clock = fake_client(SERVERS, cluster())
    sync_result = getattr(sync_client, name)(*args, timeout=5.0, **kwargs)

    async def call():
        client, log, clock = fake_async_client(SERVERS, cluster())
        return await getattr(client, name)(*args, timeout=5.0, **kwargs), log, clock, client

    async_result, async_log, async_clock, async_client = run(call())
    assert async_log == sync_log, "the same requests, to the same servers, with the same deadlines"
    assert async_clock.sleeps == sync_clock.sleeps
    assert async_client.leader == sync_client.leader
    assert comparable(async_result) == comparable(sync_result)


def test_every_public_method_has_its_async_twin():
    import inspect

    import raftq.aio

    sync_methods = {n for n, f in vars(raftq.Client).items() if callable(f) and not n.startswith("_")}
    async_methods = {n for n, f in vars(raftq.aio.Client).items() if callable(f) and not n.startswith("_")}
    assert sync_methods == async_methods
    for name in sync_methods - {"subscribe", "from_env"}:
        assert inspect.iscoroutinefunction(getattr(raftq.aio.Client, name)), name
        assert inspect.signature(getattr(raftq.aio.Client, name)) == inspect.signature(getattr(raftq.Client, name)) or (
            _params(raftq.aio.Client, name) == _params(raftq.Client, name)
        ), name
    assert set(CALLS) == sync_methods - {"subscribe", "from_env", "close"}


def _params(cls, name):
    import inspect

    return [(p.name, p.kind, p.default) for p in inspect.signature(getattr(cls, name)).parameters.values()]
