"""The asyncio client against fake stubs: the same call loop as the sync
client (leader following, retries, what is never retried), awaited. No
server needed."""

import asyncio

import grpc
import pytest

import raftq
import raftq.aio
from raftq import AsyncMessage, ErrorReason, NackOutcome, RaftqError
from raftq.v1 import cluster_pb2, queue_pb2

from conftest import FakeRpcError, fake_async_client, not_leader, rich_error, run

SERVERS = ["a:1", "b:2", "c:3"]


def published(request, first_id=1):
    return queue_pb2.PublishResponse(
        results=[queue_pb2.PublishResult(message_id=first_id + i) for i in range(len(request.messages))]
    )


def delivery(message_id=7, body=b"x", count=1, queue="q"):
    return queue_pb2.Delivery(
        message=queue_pb2.MessageView(message_id=message_id, body=body, delivery_count=count, attributes={"k": "v"}),
        receipt=queue_pb2.Receipt(queue=queue, message_id=message_id, delivery_count=count),
        lease_expires_at_ms=123,
    )


def test_follows_a_leader_hint_at_once():
    def handler(addr, method, request):
        if addr != "c:3":
            raise not_leader("c:3")
        return published(request)

    async def body():
        client, log, clock = fake_async_client(SERVERS, handler)
        assert await client.publish("q", b"hello") == 1
        assert [a for a, *_ in log] == ["a:1", "c:3"]
        assert clock.sleeps == []
        assert client.leader == "c:3"
        await client.publish("q", b"again")
        assert [a for a, *_ in log] == ["a:1", "c:3", "c:3"]

    run(body())


def test_no_leader_retries_with_backoff_until_one_is_elected():
    answers = iter([0, 0, 0, 0, 1])

    def handler(addr, method, request):
        if next(answers) == 0:
            raise rich_error(grpc.StatusCode.UNAVAILABLE, "no leader is known yet", "NO_LEADER", retry_ms=300)
        return queue_pb2.GetQueueResponse(queue=queue_pb2.QueueInfo(name="q"))

    async def body():
        client, log, clock = fake_async_client(SERVERS, handler)
        assert (await client.get_queue("q")).name == "q"
        assert [a for a, *_ in log] == ["a:1", "b:2", "c:3", "a:1", "b:2"]
        assert len(clock.sleeps) == 4 and all(s >= 0.3 for s in clock.sleeps)

    run(body())


def test_the_overall_deadline_ends_the_retries():
    def handler(addr, method, request):
        raise FakeRpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses")

    async def body():
        client, log, clock = fake_async_client(SERVERS, handler, timeout=3.0)
        with pytest.raises(RaftqError) as info:
            await client.create_queue("q")
        assert info.value.code == grpc.StatusCode.UNAVAILABLE and not info.value.in_doubt
        assert clock.now - 1000.0 <= 3.0
        timeouts = [t for *_, t in log]
        assert timeouts[0] == pytest.approx(3.0) and timeouts == sorted(timeouts, reverse=True)

    run(body())


def test_overload_retries_the_same_server_after_its_delay():
    answers = iter(["busy", "ok"])

    def handler(addr, method, request):
        if next(answers) == "busy":
            raise rich_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "overloaded", "OVERLOADED", retry_ms=700)
        return published(request)

    async def body():
        client, log, clock = fake_async_client(SERVERS, handler)
        await client.publish("q", b"x")
        assert [a for a, *_ in log] == ["a:1", "a:1"]
        assert clock.sleeps[0] >= 0.7

    run(body())


def test_publish_retries_an_unknown_outcome_with_the_same_keys():
    def handler(addr, method, request):
        if len(log) == 1:
            raise rich_error(grpc.StatusCode.UNKNOWN, "outcome unknown", "OUTCOME_UNKNOWN", {"leader": "b:2"})
        return published(request, first_id=41)

    async def body():
        nonlocal log
        client, log, _ = fake_async_client(SERVERS, handler)
        results = await client.publish_batch("q", [b"a", {"body": "b", "idempotency_key": "mine"}])
        assert [r.message_id for r in results] == [41, 42]
        (_, _, first, _), (addr2, _, second, _) = log
        assert addr2 == "b:2" and first == second
        assert first.messages[1].idempotency_key == "mine" and len(first.messages[0].idempotency_key) == 32

    log = []
    run(body())


@pytest.mark.parametrize(
    "error",
    [
        rich_error(grpc.StatusCode.UNKNOWN, "outcome unknown", "OUTCOME_UNKNOWN", {"leader": "b:2"}),
        FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"),
        FakeRpcError(grpc.StatusCode.UNAVAILABLE, "Connection reset by peer"),
    ],
)
@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.ack([raftq.Receipt("q", 1, 1)]),
        lambda c: c.nack(raftq.Receipt("q", 1, 1)),
        lambda c: c.receive("q", wait_ms=100),
        lambda c: c.extend_lease(raftq.Receipt("q", 1, 1), 1000),
        lambda c: c.create_queue("q"),
        lambda c: c.redrive("q"),
        lambda c: c.create_topic("t"),
        lambda c: c.delete_topic("t"),
        lambda c: c.unbind("t", "q"),
    ],
)
def test_ack_nack_receive_and_admin_are_not_retried_in_doubt(error, call):
    def handler(addr, method, request):
        raise error

    async def body():
        client, log, _ = fake_async_client(SERVERS, handler)
        with pytest.raises(RaftqError) as info:
            await call(client)
        assert len(log) == 1
        assert info.value.in_doubt

    run(body())


def test_topics_publish_with_keys_and_bind_are_retried_in_doubt():
    def topic(name):
        return queue_pb2.TopicInfo(name=name, config=queue_pb2.TopicConfig(dedup_window_ms=0))

    def handler(addr, method, request):
        if len(log) % 2 == 1:  # every first attempt: the outcome is unknown
            raise rich_error(grpc.StatusCode.UNKNOWN, "outcome unknown", "OUTCOME_UNKNOWN", {"leader": "b:2"})
        if method == "PublishTopic":
            copies = [queue_pb2.TopicCopy(queue="q", message_id=8)]
            return queue_pb2.PublishTopicResponse(
                results=[queue_pb2.TopicPublishResult(message_id=7, copies=copies) for _ in request.messages]
            )
        if method == "ListTopics":
            return queue_pb2.ListTopicsResponse(topics=[topic("t")])
        return queue_pb2.BindResponse(topic=topic(request.topic))

    async def body():
        nonlocal log
        client, log, _ = fake_async_client(SERVERS, handler)
        [result] = await client.publish_topic("t", [{"body": "hé", "attributes": {"region": "eu"}}])
        assert result == raftq.TopicPublishResult(7, False, (raftq.TopicCopy("q", 8),))
        assert log[0][2] == log[1][2] and len(log[0][2].messages[0].idempotency_key) == 32
        info = await client.bind("t", "q", raftq.Filter().prefix("region", "e"))
        assert isinstance(info, raftq.TopicInfo) and info.dedup_window_ms == 0
        assert log[2][2] == log[3][2] and log[2][2].filter.conditions[0].prefix == "e"
        assert [t.name for t in await client.list_topics(page_size=2)] == ["t"]
        assert len(log) == 6 and log[4][2] == log[5][2], "a read is retried too"
        with pytest.raises(TypeError):
            await client.publish_topic("t", b"one message")

    log = []
    run(body())


def test_receive_builds_async_messages_that_settle_themselves():
    def handler(addr, method, request):
        if method == "Receive":
            return queue_pb2.ReceiveResponse(deliveries=[delivery(7, b"x", 2)])
        if method == "Nack":
            return queue_pb2.NackResponse(outcome=queue_pb2.NACK_OUTCOME_DEAD_LETTERED)
        if method == "ExtendLease":
            return queue_pb2.ExtendLeaseResponse(lease_expires_at_ms=999)
        return queue_pb2.AckResponse(acked=len(request.receipts))

    async def body():
        client, log, _ = fake_async_client(SERVERS, handler, timeout=5.0)
        [m] = await client.receive("q", max_messages=3, wait_ms=20_000, lease_ms=1500)
        assert isinstance(m, AsyncMessage) and isinstance(m, raftq.BaseMessage)
        assert not isinstance(m, raftq.Message), "a sync Message's ack is not a coroutine"
        assert log[0][3] == pytest.approx(25.0), "the deadline covers the long poll"
        assert (m.message_id, m.text, m.delivery_count, m.attributes) == (7, "x", 2, {"k": "v"})
        assert await m.extend(10_000) == 999 and m.lease_expires_at_ms == 999
        assert await m.nack(dead_letter=True, reason="bad") is NackOutcome.DEAD_LETTERED
        await m.ack()
        assert list(log[-1][2].receipts) == [m.receipt.to_proto()]
        assert await client.ack([]) == 0
        assert len(log) == 4

    run(body())


def test_an_unbound_message_says_how_to_ack():
    m = AsyncMessage("q", 1, b"", {}, 1, raftq.Receipt("q", 1, 1), 0)
    with pytest.raises(RuntimeError, match="client.ack"):
        run(m.ack())


def test_paging_and_status():
    pages = {
        "": queue_pb2.ListQueuesResponse(queues=[queue_pb2.QueueInfo(name="a")], next_start_after="a"),
        "a": queue_pb2.ListQueuesResponse(queues=[queue_pb2.QueueInfo(name="b")]),
    }
    peeks = {
        0: queue_pb2.PeekResponse(messages=[queue_pb2.MessageView(message_id=1)], next_after_id=1),
        1: queue_pb2.PeekResponse(messages=[], next_after_id=500),
        500: queue_pb2.PeekResponse(messages=[queue_pb2.MessageView(message_id=501)]),
    }

    def handler(addr, method, request):
        if method == "ListQueues":
            return pages[request.start_after]
        if method == "Peek":
            return peeks[request.after_id]
        return cluster_pb2.StatusResponse(leader_address="b:2", node_id=int(addr[-1]))

    async def body():
        client, log, _ = fake_async_client(SERVERS, handler)
        assert [q.name for q in await client.list_queues("x")] == ["a", "b"]
        assert [m.message_id for m in await client.peek("q", state="dead", limit=10)] == [1, 501]
        assert (await client.status()).leader_address == "b:2"
        assert (await client.status(server="c:3")).node_id == 3

    run(body())


def test_from_env_and_close(monkeypatch):
    monkeypatch.setenv("RAFTQ_SERVERS", "h1:1,h2:2")
    monkeypatch.setenv("RAFTQ_TOKEN", "s3cret")

    async def body():
        async with raftq.aio.Client.from_env(timeout=3) as client:
            assert client.servers == ["h1:1", "h2:2"]
            assert client._metadata == (("authorization", "Bearer s3cret"),)
            assert client.timeout == 3.0
        with pytest.raises(RuntimeError):
            await client.get_queue("q")

    run(body())
    with pytest.raises(ValueError):
        raftq.aio.Client("nonsense")


# -- subscribe -----------------------------------------------------------------


class AsyncFakeStream:
    """A grpc.aio server stream: read() gives the items (raising those that
    are errors), then grpc.aio.EOF; reading a cancelled one raises
    CancelledError, as grpc.aio does."""

    def __init__(self, items, block=False):
        self._items = list(items)
        self._block = block  # after the items: wait (an open, idle stream)
        self.cancelled = False
        self._cancel = None  # made in the loop (Python 3.9 binds an Event to one)

    async def read(self):
        if self.cancelled:
            raise asyncio.CancelledError()
        if not self._items:
            if self._block:
                self._cancel = asyncio.Event()
                await self._cancel.wait()
                raise asyncio.CancelledError()
            return grpc.aio.EOF
        item = self._items.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    def cancel(self):
        self.cancelled = True
        if self._cancel is not None:
            self._cancel.set()
        return True


def test_subscribe_follows_the_leader_across_stream_ends():
    streams = {
        "a:1": [AsyncFakeStream([not_leader("c:3")]), AsyncFakeStream([not_leader("b:2")])],
        "c:3": [
            AsyncFakeStream(
                [
                    queue_pb2.SubscribeResponse(delivery=delivery(1)),
                    rich_error(grpc.StatusCode.UNAVAILABLE, "leadership lost", "NO_LEADER", retry_ms=10),
                ]
            ),
        ],
        "b:2": [AsyncFakeStream([queue_pb2.SubscribeResponse(delivery=delivery(2))], block=True)],
    }

    def handler(addr, method, request):
        assert method == "Subscribe" and request.prefetch == 5 and request.queue == "q"
        return streams[addr].pop(0)

    async def body():
        client, log, clock = fake_async_client(SERVERS, handler)
        async with client.subscribe("q", prefetch=5) as sub:
            sub._pause = clock.async_sleep
            first = await sub.__anext__()
            second = await sub.__anext__()
        assert (first.message_id, second.message_id) == (1, 2)
        assert isinstance(first, AsyncMessage)
        assert [a for a, *_ in log] == ["a:1", "c:3", "a:1", "b:2"]
        assert len(clock.sleeps) == 1 and clock.sleeps[0] >= 0.01
        assert client.leader == "b:2"
        assert [m async for m in sub] == [], "a closed subscription iterates no more"

    run(body())


def test_subscribe_ends_at_eof_then_resubscribes():
    streams = [
        AsyncFakeStream([queue_pb2.SubscribeResponse(delivery=delivery(1))]),
        AsyncFakeStream([queue_pb2.SubscribeResponse(delivery=delivery(2))]),
    ]

    async def body():
        client, log, clock = fake_async_client(SERVERS, lambda addr, method, request: streams.pop(0))
        sub = client.subscribe("q")
        sub._pause = clock.async_sleep
        ids = [(await sub.__anext__()).message_id, (await sub.__anext__()).message_id]
        assert ids == [1, 2]
        assert [a for a, *_ in log] == ["a:1", "b:2"], "a stream that just ends: next server"
        sub.close()

    run(body())


def test_subscribe_raises_what_is_not_transient():
    def handler(addr, method, request):
        return AsyncFakeStream([rich_error(grpc.StatusCode.NOT_FOUND, "queue gone", "QUEUE_NOT_FOUND", {"queue": "q"})])

    async def body():
        client, log, _ = fake_async_client(SERVERS, handler)
        sub = client.subscribe("q")
        with pytest.raises(RaftqError) as info:
            await sub.__anext__()
        assert info.value.reason is ErrorReason.QUEUE_NOT_FOUND
        sub.close()

    run(body())


def test_subscribe_gives_up_after_the_client_timeout():
    def handler(addr, method, request):
        return AsyncFakeStream([FakeRpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses")])

    async def body():
        client, log, clock = fake_async_client(SERVERS, handler, timeout=2.0)
        sub = client.subscribe("q")
        sub._pause = clock.async_sleep
        with pytest.raises(RaftqError) as info:
            await sub.__anext__()
        assert info.value.code == grpc.StatusCode.UNAVAILABLE
        assert 2.0 <= clock.now - 1000.0 <= 4.0

    run(body())


def test_close_from_another_task_ends_a_waiting_iteration():
    idle = AsyncFakeStream([], block=True)

    async def body():
        client, log, _ = fake_async_client(SERVERS, lambda addr, method, request: idle)
        sub = client.subscribe("q")
        asyncio.get_running_loop().call_later(0.05, sub.close)
        assert [m async for m in sub] == []
        assert idle.cancelled

    run(body())


def test_close_wakes_a_backoff_wait():
    def handler(addr, method, request):
        return AsyncFakeStream([rich_error(grpc.StatusCode.UNAVAILABLE, "no leader", "NO_LEADER", retry_ms=5000)])

    async def body():
        client, log, _ = fake_async_client(SERVERS, handler, timeout=30.0)
        client._clock = asyncio.get_running_loop().time  # real time: the wait is real
        sub = client.subscribe("q")
        sub._policy._clock = client._clock
        loop = asyncio.get_running_loop()
        loop.call_later(0.1, sub.close)
        started = loop.time()
        assert [m async for m in sub] == []
        assert loop.time() - started < 2.0, "close() cut the 5 s backoff short"

    run(body())


def test_cancelling_the_consumer_task_is_not_swallowed():
    idle = AsyncFakeStream([], block=True)

    async def body():
        client, log, _ = fake_async_client(SERVERS, lambda addr, method, request: idle)
        sub = client.subscribe("q")

        async def consume():
            async for _ in sub:
                pass

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        sub.close()

    run(body())
