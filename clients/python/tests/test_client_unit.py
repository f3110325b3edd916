"""The client's call loop against fake stubs: leader following, retries,
idempotency keys, what is never retried. No server needed."""

import grpc
import pytest

import raftq
from raftq import Binding, Condition, ErrorReason, Filter, NackOutcome, RaftqError, TopicCopy, TopicPublishResult
from raftq.client import MAX_GRPC_MESSAGE_BYTES
from raftq.v1 import cluster_pb2, queue_pb2

from conftest import FakeRpcError, fake_client, not_leader, rich_error

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


# -- leader following ----------------------------------------------------------


def test_follows_a_leader_hint_at_once():
    def handler(addr, method, request):
        if addr != "c:3":
            raise not_leader("c:3")
        return published(request)

    client, log, clock = fake_client(SERVERS, handler)
    assert client.publish("q", b"hello") == 1
    assert [a for a, *_ in log] == ["a:1", "c:3"]
    assert clock.sleeps == [], "a redirect to a named leader does not back off"
    assert client.leader == "c:3"
    client.publish("q", b"again")
    assert [a for a, *_ in log][-1] == "c:3", "later calls go straight to the leader"
    assert len(log) == 3


def test_hint_outside_the_list_tries_the_next_server():
    """A compose cluster reached through published ports names container
    hosts the client cannot dial: it tries the next configured server."""

    def handler(addr, method, request):
        if addr != "b:2":
            raise not_leader("raftq-2:7101")
        return queue_pb2.GetQueueResponse(queue=queue_pb2.QueueInfo(name=request.queue))

    client, log, clock = fake_client(SERVERS, handler)
    assert client.get_queue("q").name == "q"
    assert [a for a, *_ in log] == ["a:1", "b:2"]
    assert len(clock.sleeps) == 1


def test_legacy_trailer_hint_is_followed():
    def handler(addr, method, request):
        if addr != "b:2":
            raise FakeRpcError(grpc.StatusCode.UNAVAILABLE, "not the leader", [("raftq-leader", "b:2")])
        return queue_pb2.AckResponse(acked=1)

    client, log, _ = fake_client(SERVERS, handler)
    assert client.ack(raftq.Receipt("q", 1, 1)) == 1
    assert [a for a, *_ in log] == ["a:1", "b:2"]


def test_ping_pong_hints_back_off():
    """Two nodes naming each other (stale views) cannot spin the client."""

    def handler(addr, method, request):
        raise not_leader("b:2" if addr == "a:1" else "a:1")

    client, log, clock = fake_client(SERVERS, handler, timeout=2.0)
    with pytest.raises(RaftqError) as info:
        client.get_queue("q")
    assert info.value.reason is ErrorReason.NOT_LEADER
    assert clock.sleeps, "backs off after a run of redirects"
    assert clock.now - 1000.0 <= 2.0
    assert len(log) < 100


def test_no_leader_retries_with_backoff_until_one_is_elected():
    answers = iter([0, 0, 0, 0, 1])

    def handler(addr, method, request):
        if next(answers) == 0:
            raise rich_error(grpc.StatusCode.UNAVAILABLE, "no leader is known yet", "NO_LEADER", retry_ms=300)
        return queue_pb2.GetQueueResponse(queue=queue_pb2.QueueInfo(name="q"))

    client, log, clock = fake_client(SERVERS, handler)
    client.get_queue("q")
    assert [a for a, *_ in log] == ["a:1", "b:2", "c:3", "a:1", "b:2"]
    assert len(clock.sleeps) == 4
    assert all(s >= 0.3 for s in clock.sleeps), "the server's delay is honoured"


def test_the_overall_deadline_ends_the_retries():
    def handler(addr, method, request):
        raise FakeRpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses")

    client, log, clock = fake_client(SERVERS, handler, timeout=3.0)
    with pytest.raises(RaftqError) as info:
        client.create_queue("q")
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert not info.value.in_doubt, "nothing was sent anywhere"
    assert clock.now - 1000.0 <= 3.0
    assert len(log) > 3
    # Each attempt gets what is left of the call's deadline.
    timeouts = [t for *_, t in log]
    assert timeouts[0] == pytest.approx(3.0)
    assert timeouts == sorted(timeouts, reverse=True)


def test_overload_retries_the_same_server_after_its_delay():
    answers = iter(["busy", "ok"])

    def handler(addr, method, request):
        if next(answers) == "busy":
            raise rich_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "overloaded", "OVERLOADED", retry_ms=700)
        return published(request)

    client, log, clock = fake_client(SERVERS, handler)
    client.publish("q", b"x")
    assert [a for a, *_ in log] == ["a:1", "a:1"]
    assert clock.sleeps[0] >= 0.7


def test_queue_full_is_not_retried():
    def handler(addr, method, request):
        raise rich_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "full", "QUEUE_FULL", {"limit": "max_length"})

    client, log, _ = fake_client(SERVERS, handler)
    with pytest.raises(RaftqError) as info:
        client.publish("q", b"x")
    assert info.value.reason is ErrorReason.QUEUE_FULL
    assert len(log) == 1


# -- idempotent publish --------------------------------------------------------


def test_publish_retries_an_unknown_outcome_with_the_same_keys():
    def handler(addr, method, request):
        if len(log) == 1:
            raise rich_error(grpc.StatusCode.UNKNOWN, "outcome unknown", "OUTCOME_UNKNOWN", {"leader": "b:2"})
        return published(request, first_id=41)

    client, log, _ = fake_client(SERVERS, handler)
    assert client.publish("q", "hé") == 41
    (_, _, first, _), (addr2, _, second, _) = log
    assert addr2 == "b:2"
    assert first == second, "the retry is the same request"
    key = first.messages[0].idempotency_key
    assert len(key) == 32 and key != ""
    assert first.messages[0].body == "hé".encode()


def test_publish_retries_a_timeout_and_a_broken_connection():
    errors = iter(
        [
            FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"),
            FakeRpcError(grpc.StatusCode.UNAVAILABLE, "Socket closed"),
        ]
    )

    def handler(addr, method, request):
        e = next(errors, None)
        if e is not None:
            raise e
        return published(request)

    client, log, _ = fake_client(SERVERS, handler)
    client.publish_batch("q", [b"a", "b", {"body": b"c", "idempotency_key": "mine", "delay_ms": 5}])
    assert len(log) == 3
    keys = [m.idempotency_key for m in log[0][2].messages]
    assert keys[2] == "mine" and len(set(keys)) == 3
    assert all(entry[2] == log[0][2] for entry in log)
    assert log[0][2].messages[2].delay_ms == 5


def test_in_doubt_survives_a_later_refusal():
    """After an attempt in doubt, a refusal may be caused by that attempt
    itself (the queue is full with our own message): the error says so."""
    answers = iter(["unknown", "full"])

    def handler(addr, method, request):
        if next(answers) == "unknown":
            raise rich_error(grpc.StatusCode.UNKNOWN, "outcome unknown", "OUTCOME_UNKNOWN")
        raise rich_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "full", "QUEUE_FULL")

    client, log, _ = fake_client(SERVERS, handler)
    with pytest.raises(RaftqError) as info:
        client.publish("q", b"x")
    assert info.value.reason is ErrorReason.QUEUE_FULL
    assert info.value.in_doubt


# -- never retried in doubt ----------------------------------------------------


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

    client, log, _ = fake_client(SERVERS, handler)
    with pytest.raises(RaftqError) as info:
        call(client)
    assert len(log) == 1
    assert info.value.in_doubt


def test_reads_are_retried_after_a_broken_connection_but_never_in_doubt():
    answers = iter(["broken", "ok"])

    def handler(addr, method, request):
        if next(answers) == "broken":
            raise FakeRpcError(grpc.StatusCode.UNAVAILABLE, "Socket closed")
        return queue_pb2.PeekResponse(messages=[queue_pb2.MessageView(message_id=3)])

    client, log, _ = fake_client(SERVERS, handler)
    assert [m.message_id for m in client.peek("q", state="ready")] == [3]
    assert log[-1][2].state == queue_pb2.MESSAGE_STATE_READY


# -- request building ----------------------------------------------------------


def test_receive_deadline_covers_the_long_poll_and_builds_messages():
    def handler(addr, method, request):
        if method == "Receive":
            return queue_pb2.ReceiveResponse(deliveries=[delivery(7, b"x", 2)])
        if method == "Nack":
            return queue_pb2.NackResponse(outcome=queue_pb2.NACK_OUTCOME_DEAD_LETTERED)
        if method == "ExtendLease":
            return queue_pb2.ExtendLeaseResponse(lease_expires_at_ms=999)
        return queue_pb2.AckResponse(acked=len(request.receipts))

    client, log, _ = fake_client(SERVERS, handler, timeout=5.0)
    [m] = client.receive("q", max_messages=3, wait_ms=20_000, lease_ms=1500)
    _, _, request, timeout = log[0]
    assert timeout == pytest.approx(25.0)
    assert (request.max_messages, request.wait_ms, request.lease_ms) == (3, 20_000, 1500)
    assert (m.message_id, m.body, m.text, m.delivery_count, m.attributes) == (7, b"x", "x", 2, {"k": "v"})
    assert m.receipt == raftq.Receipt("q", 7, 2)
    assert m.extend(10_000) == 999 and m.lease_expires_at_ms == 999
    assert m.nack(dead_letter=True, reason="bad") is NackOutcome.DEAD_LETTERED
    nack = log[-1][2]
    assert nack.dead_letter and nack.reason == "bad" and not nack.HasField("delay_ms")
    m.ack()
    assert list(log[-1][2].receipts) == [m.receipt.to_proto()]
    assert client.ack([]) == 0


def test_queue_config_keywords():
    def handler(addr, method, request):
        return queue_pb2.CreateQueueResponse(queue=queue_pb2.QueueInfo(name=request.queue, config=request.config))

    client, log, _ = fake_client(SERVERS, handler)
    info = client.create_queue("q", order="lifo", max_deliveries=0, dead_letter_queue="dlq", lease_ms=None)
    config = log[0][2].config
    assert config.order == queue_pb2.ORDER_LIFO
    assert config.HasField("max_deliveries") and config.max_deliveries == 0, "an explicit 0 is sent"
    assert not config.HasField("lease_ms"), "None means unset"
    assert info.config.dead_letter_queue == "dlq"
    with pytest.raises(TypeError, match="max_deliveries"):
        client.create_queue("q", max_delivery=3)
    with pytest.raises(ValueError):
        client.create_queue("q", order="random")


def test_list_queues_pages():
    pages = {
        "": queue_pb2.ListQueuesResponse(queues=[queue_pb2.QueueInfo(name="a")], next_start_after="a"),
        "a": queue_pb2.ListQueuesResponse(queues=[queue_pb2.QueueInfo(name="b")]),
    }

    def handler(addr, method, request):
        return pages[request.start_after]

    client, log, _ = fake_client(SERVERS, handler)
    assert [q.name for q in client.list_queues("x")] == ["a", "b"]
    assert all(entry[2].prefix == "x" for entry in log)


def test_peek_follows_the_cursor_past_empty_pages():
    pages = {
        0: queue_pb2.PeekResponse(messages=[queue_pb2.MessageView(message_id=1)], next_after_id=1),
        1: queue_pb2.PeekResponse(messages=[], next_after_id=100_000),  # the scan limit ended it
        100_000: queue_pb2.PeekResponse(messages=[queue_pb2.MessageView(message_id=100_005)]),
    }

    def handler(addr, method, request):
        return pages[request.after_id]

    client, log, _ = fake_client(SERVERS, handler)
    assert [m.message_id for m in client.peek("q", state="dead", limit=10)] == [1, 100_005]
    assert [entry[2].limit for entry in log] == [10, 9, 9]


def test_status_asks_any_node():
    def handler(addr, method, request):
        return cluster_pb2.StatusResponse(leader_address="b:2", node_id=1)

    client, log, _ = fake_client(SERVERS, handler)
    assert client.status().leader_address == "b:2"
    assert log[0][1] == "Status"


def test_bad_arguments():
    with pytest.raises(ValueError):
        raftq.Client([])
    with pytest.raises(ValueError):
        raftq.Client("a:1,nonsense")
    with pytest.raises(ValueError):
        raftq.Client("a:1", tls_cert=b"pem")
    with pytest.raises(ValueError):
        raftq.Client("a:1", timeout=0)
    client = raftq.Client(" a:1 , b:2,a:1 ")
    assert client.servers == ["a:1", "b:2"]
    with pytest.raises(TypeError):
        client.publish("q", 42)
    with pytest.raises(TypeError):
        client.publish_batch("q", [{"bdy": b"x"}])
    client.close()


def test_channels_allow_large_messages():
    client = raftq.Client("127.0.0.1:1")
    assert ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_BYTES) in client._options
    assert ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_BYTES) in client._options
    assert MAX_GRPC_MESSAGE_BYTES == 64 * 1024 * 1024
    client.close()
    with pytest.raises(RuntimeError):
        client.get_queue("q")


def test_from_env(monkeypatch, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\nignored\n")
    monkeypatch.setenv("RAFTQ_SERVERS", "h1:1,h2:2")
    monkeypatch.delenv("RAFTQ_TOKEN", raising=False)
    monkeypatch.setenv("RAFTQ_TOKEN_FILE", str(token_file))
    for name in ("RAFTQ_TLS_CA", "RAFTQ_TLS_CERT", "RAFTQ_TLS_KEY"):
        monkeypatch.delenv(name, raising=False)
    with raftq.Client.from_env(timeout=3) as client:
        assert client.servers == ["h1:1", "h2:2"]
        assert client._metadata == (("authorization", "Bearer s3cret"),)
        assert client._credentials is None
        assert client.timeout == 3.0
    monkeypatch.setenv("RAFTQ_TOKEN", "direct")
    with raftq.Client.from_env() as client:
        assert client._metadata == (("authorization", "Bearer direct"),)
    monkeypatch.delenv("RAFTQ_SERVERS")
    with raftq.Client.from_env() as client:
        assert client.servers == raftq.DEFAULT_SERVERS.split(",")


def test_tls_from_files(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    with raftq.Client("a:1", tls_ca=str(ca)) as client:
        assert client._credentials is not None
    with raftq.Client("a:1", tls=True, tls_server_name="raftq-1") as client:
        assert client._credentials is not None
        assert ("grpc.ssl_target_name_override", "raftq-1") in client._options


# -- subscribe -----------------------------------------------------------------


class FakeStream:
    """A server stream: yields the items, raising those that are errors."""

    def __init__(self, items):
        self._items = list(items)
        self.cancelled = False

    def __iter__(self):
        return self

    def __next__(self):
        if self.cancelled:
            raise FakeRpcError(grpc.StatusCode.CANCELLED, "Locally cancelled by application!")
        if not self._items:
            raise StopIteration
        item = self._items.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    def cancel(self):
        self.cancelled = True


def test_subscribe_follows_the_leader_across_stream_ends():
    streams = {
        "a:1": [FakeStream([not_leader("c:3")]), FakeStream([not_leader("b:2")])],
        "c:3": [
            FakeStream(
                [
                    queue_pb2.SubscribeResponse(delivery=delivery(1)),
                    rich_error(grpc.StatusCode.UNAVAILABLE, "leadership lost", "NO_LEADER", retry_ms=10),
                ]
            ),
        ],
        "b:2": [FakeStream([queue_pb2.SubscribeResponse(delivery=delivery(2))])],
    }

    def handler(addr, method, request):
        assert method == "Subscribe" and request.prefetch == 5 and request.queue == "q"
        return streams[addr].pop(0)

    client, log, clock = fake_client(SERVERS, handler)
    with client.subscribe("q", prefetch=5) as sub:
        sub._wake.wait = lambda seconds: clock.sleep(seconds) or False  # type: ignore[method-assign]
        first = next(sub)
        second = next(sub)
    assert (first.message_id, second.message_id) == (1, 2)
    # a names c (at once); c's stream ends without a hint: back off, next
    # server (a), which names b.
    assert [a for a, *_ in log] == ["a:1", "c:3", "a:1", "b:2"]
    assert len(clock.sleeps) == 1 and clock.sleeps[0] >= 0.01
    assert client.leader == "b:2"
    assert first.receipt == raftq.Receipt("q", 1, 1)
    assert list(sub) == [], "a closed subscription iterates no more"


def test_subscribe_raises_what_is_not_transient():
    def handler(addr, method, request):
        return FakeStream([rich_error(grpc.StatusCode.NOT_FOUND, "queue gone", "QUEUE_NOT_FOUND", {"queue": "q"})])

    client, log, _ = fake_client(SERVERS, handler)
    sub = client.subscribe("q")
    with pytest.raises(RaftqError) as info:
        next(sub)
    assert info.value.reason is ErrorReason.QUEUE_NOT_FOUND
    sub.close()


def test_subscribe_gives_up_after_the_client_timeout():
    def handler(addr, method, request):
        return FakeStream([FakeRpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses")])

    client, log, clock = fake_client(SERVERS, handler, timeout=2.0)
    # The subscription waits on an Event, not the client's sleep: let its
    # waits advance the fake clock instead of blocking.
    sub = client.subscribe("q")
    sub._wake.wait = lambda seconds: clock.sleep(seconds) or False  # type: ignore[method-assign]
    with pytest.raises(RaftqError) as info:
        next(sub)
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert 2.0 <= clock.now - 1000.0 <= 4.0


# -- topics --------------------------------------------------------------------


def topic_info(name="t", bindings=()):
    return queue_pb2.TopicInfo(
        name=name,
        config=queue_pb2.TopicConfig(require_route=True, dedup_window_ms=60_000),
        stats=queue_pb2.TopicStats(
            published_total=1, routed_copies_total=2, unrouted_total=3, duplicates_total=4, dedup_evicted_total=5
        ),
        bindings=list(bindings),
        created_at_ms=77,
    )


def test_create_topic_sends_its_config_and_reads_the_topic():
    def handler(addr, method, request):
        assert method == "CreateTopic"
        return queue_pb2.CreateTopicResponse(topic=topic_info(request.topic))

    client, log, _ = fake_client(SERVERS, handler)
    info = client.create_topic("orders")
    request = log[0][2]
    assert request.topic == "orders"
    assert not request.config.require_route
    assert not request.config.HasField("dedup_window_ms"), "None: the server's default"
    client.create_topic("orders", require_route=True, dedup_window_ms=0)
    config = log[1][2].config
    assert config.require_route
    assert config.HasField("dedup_window_ms") and config.dedup_window_ms == 0, "an explicit 0 (no dedup) is sent"

    assert isinstance(info, raftq.TopicInfo)
    assert (info.name, info.require_route, info.dedup_window_ms, info.created_at_ms) == ("orders", True, 60_000, 77)
    assert info.stats == raftq.TopicStats(1, 2, 3, 4, 5)
    assert info.bindings == ()


def test_topic_info_reads_bindings_and_filters():
    conditions = [
        queue_pb2.FilterCondition(key="region", equals="eu"),
        queue_pb2.FilterCondition(key="kind", one_of=queue_pb2.FilterValues(values=["created", "updated"])),
        queue_pb2.FilterCondition(key="sku", prefix="A-"),
        queue_pb2.FilterCondition(key="vip", exists=True),
        queue_pb2.FilterCondition(key="test", not_exists=True),
    ]
    bindings = [
        queue_pb2.Binding(queue="billing", filter=queue_pb2.Filter()),
        queue_pb2.Binding(queue="eu-audit", filter=queue_pb2.Filter(conditions=conditions)),
    ]

    def handler(addr, method, request):
        return queue_pb2.GetTopicResponse(topic=topic_info(request.topic, bindings))

    client, log, _ = fake_client(SERVERS, handler)
    info = client.get_topic("orders")
    assert log[0][1] == "GetTopic" and log[0][2].topic == "orders"
    expected = Filter().equals("region", "eu").one_of("kind", ["created", "updated"]).prefix("sku", "A-")
    expected = expected.exists("vip").not_exists("test")
    assert info.bindings == (Binding("billing", Filter()), Binding("eu-audit", expected))
    assert info.bindings[1].filter.conditions[1] == Condition("kind", "one_of", ("created", "updated"))
    assert expected.to_proto() == bindings[1].filter, "a Filter round-trips through its proto"


def test_filter_builder_and_its_checks():
    base = Filter()
    eu = base.equals("region", "eu")
    assert base == Filter.all() and base.conditions == (), "each step returns a new Filter"
    assert eu.conditions == (Condition("region", "equals", "eu"),)
    assert hash(eu) == hash(Filter().equals("region", "eu"))
    with pytest.raises(TypeError):
        Filter().one_of("kind", "created")  # a str is one value, not a list of them
    with pytest.raises(TypeError):
        Filter().one_of("kind", [])
    with pytest.raises(TypeError):
        Filter().equals("region", 3)
    with pytest.raises(TypeError):
        Condition("vip", "exists", "yes")
    with pytest.raises(ValueError):
        Condition("region", "matches", "e.*")
    # A test from a newer server is read, but cannot be sent back.
    unknown = Filter.from_proto(queue_pb2.Filter(conditions=[queue_pb2.FilterCondition(key="x")]))
    assert unknown.conditions == (Condition("x", "unknown"),)
    with pytest.raises(ValueError):
        unknown.to_proto()


def test_bind_takes_a_filter_a_mapping_or_nothing():
    def handler(addr, method, request):
        assert method == "Bind"
        return queue_pb2.BindResponse(topic=topic_info(request.topic, [queue_pb2.Binding(queue=request.queue)]))

    client, log, _ = fake_client(SERVERS, handler)
    info = client.bind("orders", "billing")
    assert (log[0][2].topic, log[0][2].queue) == ("orders", "billing")
    assert list(log[0][2].filter.conditions) == [], "None: every message"
    assert info.bindings == (Binding("billing"),)

    client.bind("orders", "eu", Filter().equals("region", "eu").exists("vip"))
    [equals, exists] = log[1][2].filter.conditions
    assert (equals.key, equals.WhichOneof("test"), equals.equals) == ("region", "equals", "eu")
    assert (exists.key, exists.WhichOneof("test"), exists.exists) == ("vip", "exists", True)

    client.bind("orders", "eu", {"region": "eu", "tier": "gold"})
    assert log[2][2].filter == Filter().equals("region", "eu").equals("tier", "gold").to_proto()

    proto = queue_pb2.Filter(conditions=[queue_pb2.FilterCondition(key="k", not_exists=True)])
    client.bind("orders", "eu", filter=proto)
    assert log[3][2].filter == proto
    with pytest.raises(TypeError):
        client.bind("orders", "eu", "region=eu")
    assert len(log) == 4


def test_unbind_and_delete_topic():
    def handler(addr, method, request):
        if method == "Unbind":
            return queue_pb2.UnbindResponse(topic=topic_info(request.topic))
        return queue_pb2.DeleteTopicResponse(bindings_removed=2)

    client, log, _ = fake_client(SERVERS, handler)
    assert client.unbind("orders", "billing").bindings == ()
    assert (log[0][1], log[0][2].topic, log[0][2].queue) == ("Unbind", "orders", "billing")
    assert client.delete_topic("orders") == 2
    assert (log[1][1], log[1][2].topic) == ("DeleteTopic", "orders")


def test_list_topics_pages():
    pages = {
        "": queue_pb2.ListTopicsResponse(topics=[topic_info("a")], next_start_after="a"),
        "a": queue_pb2.ListTopicsResponse(topics=[topic_info("b")], next_start_after="a"),  # a stuck cursor ends it
    }

    def handler(addr, method, request):
        return pages[request.start_after]

    client, log, _ = fake_client(SERVERS, handler)
    topics = client.list_topics("x", page_size=7)
    assert [t.name for t in topics] == ["a", "b"]
    assert all(isinstance(t, raftq.TopicInfo) for t in topics)
    assert [(e[1], e[2].prefix, e[2].limit) for e in log] == [("ListTopics", "x", 7)] * 2


def test_publish_topic_keys_every_message_and_reads_the_copies():
    def handler(addr, method, request):
        assert method == "PublishTopic"
        return queue_pb2.PublishTopicResponse(
            results=[
                queue_pb2.TopicPublishResult(
                    message_id=5,
                    copies=[
                        queue_pb2.TopicCopy(queue="billing", message_id=6),
                        queue_pb2.TopicCopy(queue="search", message_id=7, duplicate=True),
                    ],
                ),
                queue_pb2.TopicPublishResult(message_id=2, duplicate=True),
            ]
        )

    client, log, _ = fake_client(SERVERS, handler)
    results = client.publish_topic(
        "orders", ["hé", {"body": b"b", "attributes": {"region": "eu"}, "delay_ms": 0, "idempotency_key": "mine"}]
    )
    request = log[0][2]
    assert request.topic == "orders"
    first, second = request.messages
    assert first.body == "hé".encode() and len(first.idempotency_key) == 32, "a keyless message gets a key"
    assert not first.HasField("delay_ms")
    assert second.idempotency_key == "mine" and dict(second.attributes) == {"region": "eu"}
    assert second.HasField("delay_ms") and second.delay_ms == 0
    assert results == [
        TopicPublishResult(5, False, (TopicCopy("billing", 6), TopicCopy("search", 7, True))),
        TopicPublishResult(2, True, ()),
    ]
    with pytest.raises(TypeError):
        client.publish_topic("orders", "one message")  # not a list: would publish its characters
    with pytest.raises(TypeError):
        client.publish_topic("orders", [{"bdy": b"x"}])
    assert len(log) == 1


@pytest.mark.parametrize(
    "error",
    [
        rich_error(grpc.StatusCode.UNKNOWN, "outcome unknown", "OUTCOME_UNKNOWN", {"leader": "b:2"}),
        FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"),
        FakeRpcError(grpc.StatusCode.UNAVAILABLE, "Socket closed"),
    ],
)
def test_publish_topic_retries_an_unknown_outcome_with_the_same_keys(error):
    def handler(addr, method, request):
        if len(log) == 1:
            raise error
        return queue_pb2.PublishTopicResponse(
            results=[queue_pb2.TopicPublishResult(message_id=9, duplicate=True) for _ in request.messages]
        )

    client, log, _ = fake_client(SERVERS, handler)
    [result] = client.publish_topic("orders", [b"x"])
    assert result == TopicPublishResult(9, True), "the first attempt had committed: the topic says duplicate"
    assert len(log) == 2
    assert log[0][2] == log[1][2], "the retry is the same request, with the same key"


def test_bind_is_retried_in_doubt_but_marks_a_later_refusal():
    answers = iter(["unknown", "ok", "unknown", "gone"])

    def handler(addr, method, request):
        answer = next(answers)
        if answer == "unknown":
            raise FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
        if answer == "gone":
            raise rich_error(grpc.StatusCode.NOT_FOUND, "no such topic", "TOPIC_NOT_FOUND", {"topic": "t"})
        return queue_pb2.BindResponse(topic=topic_info(request.topic))

    client, log, _ = fake_client(SERVERS, handler)
    assert client.bind("t", "q", {"region": "eu"}).name == "t"
    assert len(log) == 2 and log[0][2] == log[1][2]
    with pytest.raises(RaftqError) as info:
        client.bind("t", "q")
    assert info.value.reason is ErrorReason.TOPIC_NOT_FOUND and info.value.metadata == {"topic": "t"}
    assert info.value.in_doubt, "the first attempt may have bound"


def test_topic_reads_are_retried_after_a_broken_connection_and_never_in_doubt():
    answers = iter(["broken", "ok", "broken", "ok"])

    def handler(addr, method, request):
        if next(answers) == "broken":
            raise FakeRpcError(grpc.StatusCode.UNAVAILABLE, "Socket closed")
        if method == "GetTopic":
            return queue_pb2.GetTopicResponse(topic=topic_info(request.topic))
        return queue_pb2.ListTopicsResponse(topics=[topic_info("a")])

    client, log, _ = fake_client(SERVERS, handler)
    assert client.get_topic("t").name == "t"
    assert [t.name for t in client.list_topics()] == ["a"]
    assert len(log) == 4


def test_topic_error_reasons():
    def handler(addr, method, request):
        if method == "Unbind":
            raise rich_error(grpc.StatusCode.NOT_FOUND, "not bound", "BINDING_NOT_FOUND", {"topic": "t", "queue": "q"})
        raise rich_error(grpc.StatusCode.FAILED_PRECONDITION, "no route", "UNROUTABLE", {"field": "messages[0]"})

    client, log, _ = fake_client(SERVERS, handler)
    with pytest.raises(RaftqError) as info:
        client.unbind("t", "q")
    assert info.value.reason is ErrorReason.BINDING_NOT_FOUND and not info.value.in_doubt
    with pytest.raises(RaftqError) as info:
        client.publish_topic("t", [b"x"])
    assert info.value.reason is ErrorReason.UNROUTABLE and info.value.field == "messages[0]"
    assert len(log) == 2, "refusals are not retried"
