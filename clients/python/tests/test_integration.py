"""Against a live cluster: RAFTQ_SERVERS (and RAFTQ_TOKEN / RAFTQ_TLS_* if
it has auth and TLS on). Skipped without RAFTQ_SERVERS.

    clients/python/run-tests.sh --dev      # starts raftq dev and runs these
"""

import os
import threading
import time
import uuid

import grpc
import pytest

import raftq
import raftq._retry
import raftq.v1.cluster_pb2
from raftq import ErrorReason, NackOutcome, RaftqError

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def test_publish_receive_ack_round_trip(client, queue_name):
    info = client.create_queue(queue_name)
    assert info.name == queue_name
    assert client.get_queue(queue_name).config.lease_ms > 0
    assert queue_name in [q.name for q in client.list_queues(prefix=queue_name)]

    message_id = client.publish(queue_name, "hello", attributes={"kind": "greeting"})
    assert message_id > 0
    [message] = client.receive(queue_name, max_messages=10, wait_ms=5000)
    assert (message.message_id, message.body, message.text) == (message_id, b"hello", "hello")
    assert message.attributes == {"kind": "greeting"}
    assert message.delivery_count == 1
    assert message.receipt.queue == queue_name
    assert len(message.idempotency_key) == 32, "the client keys every publish"
    message.ack()
    assert client.receive(queue_name, wait_ms=0) == []
    stats = client.get_queue(queue_name).stats
    assert (stats.published_total, stats.acked_total, stats.ready, stats.leased) == (1, 1, 0, 0)


def test_publish_batch_and_batch_ack(client, queue_name):
    client.create_queue(queue_name)
    results = client.publish_batch(queue_name, [b"a", "b", {"body": b"c", "attributes": {"n": "3"}}])
    ids = [r.message_id for r in results]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert not any(r.duplicate for r in results)
    messages = []
    deadline = time.monotonic() + 10
    while len(messages) < 3 and time.monotonic() < deadline:
        messages += client.receive(queue_name, max_messages=3, wait_ms=2000)
    assert [m.body for m in messages] == [b"a", b"b", b"c"]
    assert client.ack(messages) == 3
    assert [m.message_id for m in client.peek(queue_name)] == []


def test_receive_four_one_mib_messages_in_one_call(client, queue_name):
    """A ReceiveResponse over gRPC's default 4 MiB limit: the client raises
    its channels' limits to 64 MiB."""
    client.create_queue(queue_name)
    bodies = [bytes([i]) * MIB for i in range(4)]
    for body in bodies:
        client.publish(queue_name, body)
    messages = client.receive(queue_name, max_messages=4, wait_ms=5000)
    assert len(messages) == 4, "all four in one response"
    assert [m.body for m in messages] == bodies
    client.ack(messages)


def test_nack_redelivers_with_delivery_count_two(client, queue_name):
    client.create_queue(queue_name)
    client.publish(queue_name, b"retry me")
    [first] = client.receive(queue_name, wait_ms=5000)
    assert first.delivery_count == 1
    assert first.nack(delay_ms=0, reason="try again") is NackOutcome.REDELIVER
    [second] = client.receive(queue_name, wait_ms=5000)
    assert second.message_id == first.message_id
    assert second.delivery_count == 2
    assert second.receipt.delivery_count == 2
    history = client.inspect(queue_name, second.message_id).history
    assert any(e.WhichOneof("kind") == "nacked" and e.nacked.reason == "try again" for e in history)
    second.ack()


def test_extend_lease(client, queue_name):
    client.create_queue(queue_name)
    client.publish(queue_name, b"slow work")
    [message] = client.receive(queue_name, wait_ms=5000, lease_ms=1000)
    before = message.lease_expires_at_ms
    assert message.extend(60_000) > before
    message.ack()


def test_dead_letter_and_redrive(client, queue_name):
    dlq = f"{queue_name}-dlq"
    client.create_queue(dlq)
    client.create_queue(queue_name, dead_letter_queue=dlq, max_deliveries=5)
    message_id = client.publish(queue_name, b"poison")
    [message] = client.receive(queue_name, wait_ms=5000)
    assert message.nack(dead_letter=True, reason="cannot parse") is NackOutcome.DEAD_LETTERED

    [dead] = client.peek(dlq)
    assert dead.body == b"poison"
    assert dead.dead_letter.source_queue == queue_name
    assert dead.dead_letter.source_message_id == message_id
    assert "cannot parse" in dead.dead_letter.reason
    assert client.get_queue(queue_name).stats.dead_lettered_total == 1

    assert client.redrive(dlq) == 1
    assert client.peek(dlq) == []
    [back] = client.receive(queue_name, wait_ms=5000)
    assert back.body == b"poison"
    back.ack()


def test_dead_messages_parked_in_place_and_redriven(client, queue_name):
    client.create_queue(queue_name, max_deliveries=1)
    client.publish(queue_name, b"once")
    [message] = client.receive(queue_name, wait_ms=5000)
    assert message.nack(delay_ms=0) is NackOutcome.DEAD_LETTERED, "its max_deliveries-th delivery"
    [dead] = client.peek(queue_name, state="dead")
    assert dead.message_id == message.message_id
    assert client.redrive(queue_name) == 1
    [again] = client.receive(queue_name, wait_ms=5000)
    assert again.message_id == message.message_id
    again.ack()


def test_leader_following_when_a_follower_is_listed_first(client, queue_name):
    client.create_queue(queue_name)
    status = client.status()
    leader = status.leader_address
    assert leader, "the cluster has a leader"
    servers = list(client.servers)
    followers = [s for s in servers if s != leader]
    if leader not in servers:
        pytest.skip(f"leader hints name {leader}, not one of {servers} (compose): covered by the unit tests")
    ordered = followers + [leader]
    with raftq.Client(
        ordered,
        token=_token(),
        tls_ca=os.environ.get("RAFTQ_TLS_CA") or None,
        tls_cert=os.environ.get("RAFTQ_TLS_CERT") or None,
        tls_key=os.environ.get("RAFTQ_TLS_KEY") or None,
    ) as other:
        assert other.leader == followers[0]
        assert other.publish(queue_name, b"via a follower") > 0
        assert other.leader == leader, "the follower's hint was followed"
        # A follower still answers Status itself.
        assert other.status(server=followers[0]).node_id != 0


def test_idempotent_publish_returns_the_same_id(client, queue_name):
    client.create_queue(queue_name)
    key = f"order-{uuid.uuid4()}"
    first = client.publish(queue_name, b"charge 10", idempotency_key=key)
    again = client.publish(queue_name, b"charge 10", idempotency_key=key)
    assert again == first
    [result] = client.publish_batch(queue_name, [{"body": b"charge 10", "idempotency_key": key}])
    assert result.message_id == first and result.duplicate
    assert client.get_queue(queue_name).stats.published_total == 1


def test_subscribe_streams_messages(client, queue_name):
    client.create_queue(queue_name)
    ids = [r.message_id for r in client.publish_batch(queue_name, [b"s1", b"s2", b"s3"])]
    got = []
    with client.subscribe(queue_name, prefetch=2) as sub:
        for message in sub:
            got.append(message.message_id)
            message.ack()
            if len(got) == 3:
                break
    assert got == ids


def test_subscribe_close_from_another_thread(client, queue_name):
    client.create_queue(queue_name)
    sub = client.subscribe(queue_name)
    timer = threading.Timer(0.5, sub.close)
    timer.start()
    started = time.monotonic()
    assert list(sub) == []
    assert time.monotonic() - started < 10
    timer.join()


def test_subscription_and_publish_survive_a_leader_change(client, queue_name):
    """Leadership moves (Cluster.TransferLeader): the stream ends with
    UNAVAILABLE, and the subscription subscribes again at the new leader."""
    client.create_queue(queue_name)
    first_id = client.publish(queue_name, b"before")
    sub = client.subscribe(queue_name, prefetch=1)
    watchdog = threading.Timer(60, sub.close)  # a hang fails, not blocks
    watchdog.start()
    try:
        first = next(sub)
        assert first.message_id == first_id
        first.ack()

        status = client.status()
        voters = [n.node_id for n in status.nodes if n.voter]
        target = next(v for v in voters if v != status.leader_id)
        request = raftq.v1.cluster_pb2.TransferLeaderRequest(node_id=target)
        client._call("cluster", "TransferLeader", request, raftq._retry.Safety.WRITE, 30.0)
        new_leader = next(n.address for n in client.status().nodes if n.node_id == target)

        second_id = client.publish(queue_name, b"after")
        second = next(sub)
        assert second.message_id == second_id
        second.ack()
        if new_leader in client.servers:
            assert client.leader == new_leader
    finally:
        watchdog.cancel()
        sub.close()


# -- topics --------------------------------------------------------------------


def _drain(client, queue, count, wait_s=10.0):
    """Receives until `count` messages came (or `wait_s` passed), then
    checks that nothing more is there; returns them unacked."""
    got = []
    deadline = time.monotonic() + wait_s
    while len(got) < count and time.monotonic() < deadline:
        got += client.receive(queue, max_messages=10, wait_ms=1000)
    got += client.receive(queue, max_messages=10, wait_ms=200)
    return got


def test_topic_copies_each_message_to_the_queues_that_match(client, queue_name, topic_name):
    everything, eu = f"{queue_name}-all", f"{queue_name}-eu"
    client.create_queue(everything)
    client.create_queue(eu)
    info = client.create_topic(topic_name)
    assert (info.name, info.require_route, info.bindings) == (topic_name, False, ())
    assert info.dedup_window_ms, "the server's default window"

    client.bind(topic_name, everything)
    eu_only = raftq.Filter().equals("region", "eu")
    info = client.bind(topic_name, eu, eu_only)
    assert info.bindings == (raftq.Binding(everything), raftq.Binding(eu, eu_only))
    assert client.bind(topic_name, eu, eu_only).bindings == info.bindings, "binding again changes nothing"
    assert [t.name for t in client.list_topics(prefix=topic_name)] == [topic_name]
    assert client.get_topic(topic_name) == info

    key = f"order-{uuid.uuid4()}"
    results = client.publish_topic(
        topic_name,
        [
            {"body": b"eu-1", "attributes": {"region": "eu"}, "idempotency_key": key},
            {"body": b"us-1", "attributes": {"region": "us"}},
            b"none-1",
        ],
    )
    assert not any(r.duplicate for r in results)
    assert [[c.queue for c in r.copies] for r in results] == [[everything, eu], [everything], [everything]]
    assert len({r.message_id for r in results}) == 3

    got_all = _drain(client, everything, 3)
    got_eu = _drain(client, eu, 1)
    assert [m.body for m in got_all] == [b"eu-1", b"us-1", b"none-1"]
    assert [m.body for m in got_eu] == [b"eu-1"]
    assert got_eu[0].attributes == {"region": "eu"}
    assert got_eu[0].idempotency_key == key
    assert len(got_all[1].idempotency_key) == 32, "the client keyed the keyless messages"
    assert {(m.queue, m.message_id) for m in got_all + got_eu} == {
        (c.queue, c.message_id) for r in results for c in r.copies
    }
    assert client.ack(got_all + got_eu) == 4

    # The same key again: the topic answers `duplicate` and stores nothing.
    [again] = client.publish_topic(topic_name, [{"body": b"eu-1", "attributes": {"region": "eu"}, "idempotency_key": key}])
    assert (again.message_id, again.duplicate, again.copies) == (results[0].message_id, True, ())
    assert client.receive(everything, wait_ms=300) == []
    assert client.receive(eu, wait_ms=300) == []
    stats = client.get_topic(topic_name).stats
    assert (stats.published_total, stats.routed_copies_total, stats.unrouted_total, stats.duplicates_total) == (3, 4, 0, 1)

    # Unbound, the queue gets nothing more; unbinding again is NOT_FOUND.
    info = client.unbind(topic_name, eu)
    assert info.bindings == (raftq.Binding(everything),)
    with pytest.raises(RaftqError) as err:
        client.unbind(topic_name, eu)
    assert err.value.code == grpc.StatusCode.NOT_FOUND
    assert err.value.reason is ErrorReason.BINDING_NOT_FOUND
    [late] = client.publish_topic(topic_name, [{"body": b"eu-2", "attributes": {"region": "eu"}}])
    assert [c.queue for c in late.copies] == [everything]
    assert client.receive(eu, wait_ms=300) == []

    # Deleting the topic leaves the queues and their messages.
    assert client.delete_topic(topic_name) == 1
    with pytest.raises(RaftqError) as err:
        client.get_topic(topic_name)
    assert err.value.reason is ErrorReason.TOPIC_NOT_FOUND
    assert [m.body for m in client.peek(everything)] == [b"eu-2"]
    assert client.get_queue(everything).stats.published_total == 4
    assert client.get_queue(eu).stats.published_total == 1


def test_topic_errors(client, queue_name, topic_name):
    client.create_topic(topic_name, require_route=True, dedup_window_ms=0)
    with pytest.raises(RaftqError) as err:
        client.create_topic(topic_name)
    assert err.value.code == grpc.StatusCode.ALREADY_EXISTS
    assert err.value.reason is ErrorReason.TOPIC_EXISTS
    info = client.get_topic(topic_name)
    assert (info.require_route, info.dedup_window_ms) == (True, 0)

    with pytest.raises(RaftqError) as err:
        client.publish_topic(topic_name, [b"nowhere to go"])
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert err.value.reason is ErrorReason.UNROUTABLE
    assert client.get_topic(topic_name).stats.published_total == 0, "refused: nothing accepted"

    with pytest.raises(RaftqError) as err:
        client.bind(topic_name, f"{queue_name}-missing")
    assert err.value.reason is ErrorReason.QUEUE_NOT_FOUND
    with pytest.raises(RaftqError) as err:
        client.publish_topic(f"{topic_name}-missing", [b"x"])
    assert err.value.reason is ErrorReason.TOPIC_NOT_FOUND


# -- typed errors (the contract of proto/raftq/v1/errors.proto) ---------------


def test_queue_not_found(client, queue_name):
    with pytest.raises(RaftqError) as info:
        client.get_queue(queue_name)
    err = info.value
    assert err.code == grpc.StatusCode.NOT_FOUND
    assert err.reason is ErrorReason.QUEUE_NOT_FOUND
    assert err.metadata.get("queue") == queue_name


def test_queue_exists(client, queue_name):
    client.create_queue(queue_name)
    with pytest.raises(RaftqError) as info:
        client.create_queue(queue_name)
    assert info.value.code == grpc.StatusCode.ALREADY_EXISTS
    assert info.value.reason is ErrorReason.QUEUE_EXISTS
    assert info.value.metadata.get("queue") == queue_name


def test_invalid_argument_names_the_field(client):
    with pytest.raises(RaftqError) as info:
        client.create_queue("not a valid name")
    err = info.value
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.reason is ErrorReason.INVALID_ARGUMENT
    assert [v.field for v in err.field_violations] == ["queue"]
    assert err.field_violations[0].description
    assert err.field == "queue"


def test_lease_expired(client, queue_name):
    client.create_queue(queue_name)
    client.publish(queue_name, b"too slow")
    [message] = client.receive(queue_name, wait_ms=5000, lease_ms=100)
    time.sleep(0.6)
    with pytest.raises(RaftqError) as info:
        message.ack()
    err = info.value
    assert err.code == grpc.StatusCode.FAILED_PRECONDITION
    assert err.reason is ErrorReason.LEASE_EXPIRED
    assert not err.in_doubt


def test_message_not_found(client, queue_name):
    client.create_queue(queue_name)
    with pytest.raises(RaftqError) as info:
        client.inspect(queue_name, 999_999_999)
    assert info.value.code == grpc.StatusCode.NOT_FOUND
    assert info.value.reason is ErrorReason.MESSAGE_NOT_FOUND


def test_queue_full(client, queue_name):
    client.create_queue(queue_name, max_length=1)
    client.publish(queue_name, b"one")
    with pytest.raises(RaftqError) as info:
        client.publish(queue_name, b"two")
    err = info.value
    assert err.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert err.reason is ErrorReason.QUEUE_FULL
    assert err.metadata.get("limit") == "max_length"
    assert err.metadata.get("limit_value") == "1"
    assert err.metadata.get("queue") == queue_name
    assert err.retry_delay is None, "not an overload: the client must not retry it"


def test_message_too_large(client, queue_name):
    client.create_queue(queue_name, max_message_bytes=1024)
    with pytest.raises(RaftqError) as info:
        client.publish(queue_name, b"x" * 2048)
    assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert info.value.reason is ErrorReason.MESSAGE_TOO_LARGE
    assert info.value.metadata.get("limit") == "max_message_bytes"


def test_unauthenticated_without_a_token():
    if not _token():
        pytest.skip("the cluster runs without auth (no RAFTQ_TOKEN / RAFTQ_TOKEN_FILE)")
    with raftq.Client.from_env(token=None) as anonymous:
        with pytest.raises(RaftqError) as info:
            anonymous.list_queues()
    assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert info.value.reason is ErrorReason.UNAUTHENTICATED


def _token():
    token = os.environ.get("RAFTQ_TOKEN")
    if not token and os.environ.get("RAFTQ_TOKEN_FILE"):
        with open(os.environ["RAFTQ_TOKEN_FILE"]) as f:
            token = f.readline().strip()
    return token or None
