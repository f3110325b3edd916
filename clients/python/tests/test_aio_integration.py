"""The asyncio client against a live cluster (RAFTQ_SERVERS, as
test_integration.py): the sync tests that matter, awaited. Skipped without
RAFTQ_SERVERS."""

import asyncio
import os
import time
import uuid

import grpc
import pytest

import raftq
import raftq.aio
import raftq.v1.cluster_pb2
from raftq import AsyncMessage, ErrorReason, NackOutcome, RaftqError
from raftq._retry import Safety

from conftest import run

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def aclient(**overrides):
    overrides.setdefault("timeout", 15.0)
    return raftq.aio.Client.from_env(**overrides)


def test_round_trip(queue_name):
    async def body():
        async with aclient() as client:
            assert (await client.create_queue(queue_name)).name == queue_name
            assert queue_name in [q.name for q in await client.list_queues(prefix=queue_name)]
            message_id = await client.publish(queue_name, "hello", attributes={"kind": "greeting"})
            [message] = await client.receive(queue_name, max_messages=10, wait_ms=5000)
            assert isinstance(message, AsyncMessage)
            assert (message.message_id, message.text, message.attributes) == (message_id, "hello", {"kind": "greeting"})
            assert len(message.idempotency_key) == 32
            await message.ack()
            assert await client.receive(queue_name) == []
            stats = (await client.get_queue(queue_name)).stats
            assert (stats.published_total, stats.acked_total, stats.ready, stats.leased) == (1, 1, 0, 0)

    run(body())


def test_publish_batch_and_batch_ack(queue_name):
    async def body():
        async with aclient() as client:
            await client.create_queue(queue_name)
            results = await client.publish_batch(queue_name, [b"a", "b", {"body": b"c", "idempotency_key": "k-c"}])
            assert len({r.message_id for r in results}) == 3
            again = await client.publish_batch(queue_name, [{"body": b"c", "idempotency_key": "k-c"}])
            assert again[0].duplicate and again[0].message_id == results[2].message_id
            messages = []
            deadline = time.monotonic() + 10
            while len(messages) < 3 and time.monotonic() < deadline:
                messages += await client.receive(queue_name, max_messages=3, wait_ms=2000)
            assert [m.body for m in messages] == [b"a", b"b", b"c"]
            assert await client.ack(messages) == 3
            assert await client.peek(queue_name) == []

    run(body())


def test_receive_four_one_mib_messages_in_one_call(queue_name):
    async def body():
        async with aclient() as client:
            await client.create_queue(queue_name)
            bodies = [bytes([i]) * MIB for i in range(4)]
            await asyncio.gather(*(client.publish(queue_name, b, idempotency_key=f"mib-{i}") for i, b in enumerate(bodies)))
            messages = await client.receive(queue_name, max_messages=4, wait_ms=5000)
            assert len(messages) == 4, "all four in one response, over gRPC's default 4 MiB"
            assert sorted(m.body for m in messages) == bodies
            await client.ack(messages)

    run(body())


def test_nack_redelivers_and_extend(queue_name):
    async def body():
        async with aclient() as client:
            await client.create_queue(queue_name)
            await client.publish(queue_name, b"retry me")
            [first] = await client.receive(queue_name, wait_ms=5000, lease_ms=1000)
            assert await first.extend(60_000) > 0
            assert await first.nack(delay_ms=0, reason="try again") is NackOutcome.REDELIVER
            [second] = await client.receive(queue_name, wait_ms=5000)
            assert (second.message_id, second.delivery_count) == (first.message_id, 2)
            history = (await client.inspect(queue_name, second.message_id)).history
            assert any(e.WhichOneof("kind") == "nacked" and e.nacked.reason == "try again" for e in history)
            assert await second.nack(dead_letter=True) is NackOutcome.DEAD_LETTERED
            assert [m.message_id for m in await client.peek(queue_name, state="dead")] == [first.message_id]
            assert await client.redrive(queue_name) == 1
            [third] = await client.receive(queue_name, wait_ms=5000)
            await third.ack()

    run(body())


def test_subscribe_streams_messages(queue_name):
    async def body():
        async with aclient() as client:
            await client.create_queue(queue_name)
            ids = [r.message_id for r in await client.publish_batch(queue_name, [b"s1", b"s2", b"s3"])]
            got = []
            async with client.subscribe(queue_name, prefetch=2) as sub:
                async for message in sub:
                    got.append(message.message_id)
                    await message.ack()
                    if len(got) == 3:
                        break
            assert got == ids

    run(body())


def test_subscribe_close_from_another_task(queue_name):
    async def body():
        async with aclient() as client:
            await client.create_queue(queue_name)
            sub = client.subscribe(queue_name)
            asyncio.get_running_loop().call_later(0.5, sub.close)
            started = time.monotonic()
            assert [m async for m in sub] == []
            assert time.monotonic() - started < 10

    run(body())


def test_closing_the_client_ends_its_subscriptions(queue_name):
    async def body():
        client = aclient()
        await client.create_queue(queue_name)
        sub = client.subscribe(queue_name)

        async def consume():
            return [m async for m in sub]

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.5)
        await client.close()
        assert await asyncio.wait_for(task, 10) == []

    run(body())


def test_leader_following_when_a_follower_is_listed_first(queue_name):
    async def body():
        async with aclient() as client:
            await client.create_queue(queue_name)
            leader = (await client.status()).leader_address
            if leader not in client.servers:
                pytest.skip(f"leader hints name {leader}, not one of {client.servers} (compose)")
            followers = [s for s in client.servers if s != leader]
            async with aclient(servers=followers + [leader]) as other:
                assert other.leader == followers[0]
                assert await other.publish(queue_name, b"via a follower") > 0
                assert other.leader == leader
                assert (await other.status(server=followers[0])).node_id != 0

    run(body())


def test_subscription_and_publish_survive_a_leader_change(queue_name):
    async def body():
        async with aclient() as client:
            await client.create_queue(queue_name)
            first_id = await client.publish(queue_name, b"before")
            async with client.subscribe(queue_name, prefetch=1) as sub:
                first = await asyncio.wait_for(sub.__anext__(), 30)
                assert first.message_id == first_id
                await first.ack()

                status = await client.status()
                target = next(n.node_id for n in status.nodes if n.voter and n.node_id != status.leader_id)
                request = raftq.v1.cluster_pb2.TransferLeaderRequest(node_id=target)
                await client._call("cluster", "TransferLeader", request, Safety.WRITE, 30.0)
                new_leader = next(n.address for n in (await client.status()).nodes if n.node_id == target)

                second_id = await client.publish(queue_name, b"after")
                second = await asyncio.wait_for(sub.__anext__(), 30)
                assert second.message_id == second_id
                await second.ack()
                if new_leader in client.servers:
                    assert client.leader == new_leader

    run(body())


# -- topics ----------------------------------------------------------------------


async def _drain(client, queue, count, wait_s=10.0):
    got = []
    deadline = time.monotonic() + wait_s
    while len(got) < count and time.monotonic() < deadline:
        got += await client.receive(queue, max_messages=10, wait_ms=1000)
    got += await client.receive(queue, max_messages=10, wait_ms=200)
    return got


def test_topic_copies_each_message_to_the_queues_that_match(queue_name, topic_name):
    everything, eu = f"{queue_name}-all", f"{queue_name}-eu"

    async def body():
        async with aclient() as client:
            await client.create_queue(everything)
            await client.create_queue(eu)
            await client.create_topic(topic_name)
            await client.bind(topic_name, everything)
            eu_only = raftq.Filter().equals("region", "eu")
            info = await client.bind(topic_name, eu, eu_only)
            assert info.bindings == (raftq.Binding(everything), raftq.Binding(eu, eu_only))
            assert [t.name for t in await client.list_topics(prefix=topic_name)] == [topic_name]

            key = f"order-{uuid.uuid4()}"
            results = await client.publish_topic(
                topic_name,
                [{"body": b"eu-1", "attributes": {"region": "eu"}, "idempotency_key": key}, b"none-1"],
            )
            assert [[c.queue for c in r.copies] for r in results] == [[everything, eu], [everything]]
            got_all = await _drain(client, everything, 2)
            got_eu = await _drain(client, eu, 1)
            assert [m.body for m in got_all] == [b"eu-1", b"none-1"]
            assert [(m.body, m.idempotency_key) for m in got_eu] == [(b"eu-1", key)]
            assert await client.ack(got_all + got_eu) == 3

            [again] = await client.publish_topic(topic_name, [{"body": b"eu-1", "idempotency_key": key}])
            assert (again.message_id, again.duplicate, again.copies) == (results[0].message_id, True, ())
            assert await client.receive(everything, wait_ms=300) == []
            assert (await client.get_topic(topic_name)).stats.duplicates_total == 1

            assert (await client.unbind(topic_name, eu)).bindings == (raftq.Binding(everything),)
            with pytest.raises(RaftqError) as info:
                await client.unbind(topic_name, eu)
            assert info.value.reason is ErrorReason.BINDING_NOT_FOUND

            assert await client.delete_topic(topic_name) == 1
            with pytest.raises(RaftqError) as info:
                await client.get_topic(topic_name)
            assert info.value.reason is ErrorReason.TOPIC_NOT_FOUND
            assert (await client.get_queue(everything)).stats.published_total == 2, "the queues stay"

    run(body())


# -- typed errors ----------------------------------------------------------------


def test_typed_errors(queue_name):
    async def body():
        async with aclient() as client:
            with pytest.raises(RaftqError) as info:
                await client.get_queue(queue_name)
            assert (info.value.code, info.value.reason) == (grpc.StatusCode.NOT_FOUND, ErrorReason.QUEUE_NOT_FOUND)
            assert info.value.metadata.get("queue") == queue_name

            await client.create_queue(queue_name, max_length=1, max_message_bytes=1024)
            with pytest.raises(RaftqError) as info:
                await client.create_queue(queue_name)
            assert info.value.reason is ErrorReason.QUEUE_EXISTS

            with pytest.raises(RaftqError) as info:
                await client.create_queue("not a valid name")
            assert info.value.reason is ErrorReason.INVALID_ARGUMENT and info.value.field == "queue"

            with pytest.raises(RaftqError) as info:
                await client.publish(queue_name, b"x" * 2048)
            assert info.value.reason is ErrorReason.MESSAGE_TOO_LARGE

            await client.publish(queue_name, b"one")
            with pytest.raises(RaftqError) as info:
                await client.publish(queue_name, b"two")
            err = info.value
            assert (err.reason, err.metadata.get("limit"), err.retry_delay) == (ErrorReason.QUEUE_FULL, "max_length", None)

            with pytest.raises(RaftqError) as info:
                await client.inspect(queue_name, 999_999_999)
            assert info.value.reason is ErrorReason.MESSAGE_NOT_FOUND

            [message] = await client.receive(queue_name, wait_ms=5000, lease_ms=100)
            await asyncio.sleep(0.6)
            with pytest.raises(RaftqError) as info:
                await message.ack()
            assert info.value.reason is ErrorReason.LEASE_EXPIRED and not info.value.in_doubt

    run(body())


def test_unauthenticated_without_a_token():
    if not (os.environ.get("RAFTQ_TOKEN") or os.environ.get("RAFTQ_TOKEN_FILE")):
        pytest.skip("the cluster runs without auth (no RAFTQ_TOKEN / RAFTQ_TOKEN_FILE)")

    async def body():
        async with aclient(token=None) as anonymous:
            with pytest.raises(RaftqError) as info:
                await anonymous.list_queues()
        assert info.value.reason is ErrorReason.UNAUTHENTICATED

    run(body())


def test_a_sync_and_an_async_client_share_a_queue(client, queue_name):
    """Receipts cross over: a message received by one client can be acked by
    the other."""
    client.create_queue(queue_name)
    key = f"cross-{uuid.uuid4()}"
    message_id = client.publish(queue_name, b"x", idempotency_key=key)

    async def body():
        async with aclient() as aio_client:
            assert await aio_client.publish(queue_name, b"x", idempotency_key=key) == message_id
            [m] = await aio_client.receive(queue_name, wait_ms=5000)
            return m

    message = run(body())
    assert client.ack(message) == 1
