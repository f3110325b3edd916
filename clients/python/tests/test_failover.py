"""Failover with a total-queue check: one producer publishes N keyed
messages, one consumer subscribes and acks, and the leader is killed
(SIGKILL) part-way. Afterwards every acknowledged publish has been consumed,
nothing was consumed that was not published, every key was stored once,
the queue is empty, and the duplicates (at-least-once) are reported: a
message may come again only after an ack that did not surely succeed.

Runs only where the tests may kill nodes: `run-tests.sh --dev` sets
RAFTQ_TEST_CAN_KILL=dev. `raftq dev` does not restart a node that dies, so
the test restarts the killed node itself (same command line and data dir)
and stops it at the end of the session.

RAFTQ_FAILOVER_MESSAGES sets N (default 2000).
"""

import asyncio
import os
import threading
import time
import uuid
from typing import Any, Callable, List, Optional, Tuple

import pytest

import raftq
import raftq.aio
from raftq import RaftqError

from conftest import run
from failover import ACKED, CAN_KILL_ENV, IN_DOUBT, Delivery, Ledger

N = int(os.environ.get("RAFTQ_FAILOVER_MESSAGES", "2000"))
#: Short leases: what the dead leader's streams held comes back quickly.
LEASE_MS = 3000
#: How often the application publishes one key before it gives up on it.
APP_TRIES = 3
#: The whole test's bound, seconds.
BUDGET = 55.0


#: Skips a test unless it may kill nodes (decided before any fixture runs).
kills_nodes = pytest.mark.skipif(
    os.environ.get(CAN_KILL_ENV) != "dev",
    reason=f"kills a node with SIGKILL: only where {CAN_KILL_ENV}=dev (set by clients/python/run-tests.sh --dev); "
    "the compose cluster's nodes are not killed",
)


def ack_outcome(err: RaftqError) -> str:
    if err.in_doubt:
        return IN_DOUBT
    return f"failed: {err.reason.name if err.reason_name else err.code.name}"


def queue_drained(stats: Any) -> bool:
    return stats.ready + stats.leased + stats.delayed == 0


class Run:
    """What one run measured, for the report."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.deadline = self.started + BUDGET
        self.events: List[Tuple[str, float]] = []
        self.thread_errors: List[BaseException] = []
        self.stopped = False

    def mark(self, what: str) -> None:
        self.events.append((what, round(time.monotonic() - self.started, 2)))

    def left(self) -> float:
        return self.deadline - time.monotonic()


def report(capsys: Any, title: str, run_: Run, ledger: Ledger, stats: Any, leaders: Tuple[str, str]) -> List[str]:
    figures, violations = ledger.verify()
    lines = [f"{title}: {N} messages, leader {leaders[0]} killed, new leader {leaders[1]}"]
    lines += [f"  {k}: {v}" for k, v in figures.items()]
    lines.append(f"  queue after: ready={stats.ready} leased={stats.leased} delayed={stats.delayed} dead={stats.dead}")
    lines.append(f"  timeline (s): {run_.events}")
    lines += [f"  VIOLATION: {v}" for v in violations]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    return violations


# -- the sync client, with threads -------------------------------------------------


def publish_one(client: raftq.Client, ledger: Ledger, queue: str, i: int) -> None:
    key = ledger.key(i)
    doubt = False
    for attempt in range(APP_TRIES):
        try:
            [result] = client.publish_batch(queue, [{"body": str(i), "idempotency_key": key}])
        except RaftqError as e:
            doubt = doubt or e.in_doubt
            if attempt + 1 < APP_TRIES:
                ledger.publish_retries += 1
                continue
            e.in_doubt = doubt
            ledger.on_publish_failed(key, e)
        else:
            ledger.on_published(key, result)
            return


def wait_until(check: Callable[[], bool], run_: Run, what: str, poll: float = 0.05) -> None:
    while not check():
        if run_.left() <= 0 or run_.thread_errors:
            raise AssertionError(f"timed out waiting until {what} (errors: {run_.thread_errors})")
        time.sleep(poll)


def new_leader(admin: raftq.Client, killed: str, run_: Run) -> str:
    """Polls the surviving nodes until one of them leads."""
    survivors = [s for s in admin.servers if s != killed]
    while run_.left() > 0:
        for server in survivors:
            try:
                status = admin.status(server=server, timeout=1.0)
            except RaftqError:
                continue
            if status.leader_address in survivors and status.leader_id != 0:
                try:
                    if admin.status(server=status.leader_address, timeout=1.0).leader_address == status.leader_address:
                        return status.leader_address
                except RaftqError:
                    pass
        time.sleep(0.05)
    raise AssertionError("no new leader was elected")


def wait_rejoined(admin: raftq.Client, addr: str, within: float = 20.0) -> None:
    """Until the restarted node knows the leader and has applied what the
    leader had committed when asked (so later tests find a whole cluster)."""
    target = None
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if target is None:
                leader = admin.status()
                target = next(n.committed_index for n in leader.nodes if n.node_id == leader.node_id)
            status = admin.status(server=addr, timeout=1.0)
            me = next(n for n in status.nodes if n.node_id == status.node_id)
            if status.leader_id and me.last_applied_index >= target:
                return
        except (RaftqError, StopIteration):
            pass
        time.sleep(0.1)
    raise AssertionError(f"the restarted node {addr} did not catch up")


@pytest.mark.integration
@kills_nodes
def test_sync_no_acknowledged_message_lost_when_the_leader_is_killed(client, queue_name, dev_nodes, capsys):
    run_ = Run()
    ledger = Ledger(f"fo-{uuid.uuid4().hex[:8]}")
    client.create_queue(queue_name, lease_ms=LEASE_MS)
    producer = raftq.Client.from_env(timeout=20.0)
    consumer = raftq.Client.from_env(timeout=20.0)
    sub = consumer.subscribe(queue_name, prefetch=100)

    def guarded(fn: Callable[[], None]) -> Callable[[], None]:
        def body() -> None:
            try:
                fn()
            except BaseException as e:  # reported by the main thread
                run_.thread_errors.append(e)

        return body

    def produce() -> None:
        for i in range(N):
            if run_.left() <= 0 or run_.stopped:
                return
            publish_one(producer, ledger, queue_name, i)
        run_.mark("all published")

    def consume() -> None:
        for message in sub:
            delivery = ledger.on_delivered(message)
            try:
                consumer.ack(message)
                delivery.ack = ACKED
            except RaftqError as e:
                delivery.ack = ack_outcome(e)

    threads = [threading.Thread(target=guarded(f), daemon=True) for f in (produce, consume)]
    killed = None
    try:
        for t in threads:
            t.start()
        wait_until(lambda: ledger.acked_count() >= N // 3, run_, f"{N // 3} publishes were acknowledged")
        old = client.status().leader_address
        assert old in client.servers, f"the leader {old} is one of {client.servers}"
        assert client.status(server=old).leader_address == old, "it leads by its own account"
        killed = dev_nodes.kill(old)
        run_.mark(f"killed {old} (pid {killed.pid}) after {ledger.acked_count()} publishes")
        leader = new_leader(client, old, run_)
        run_.mark(f"{leader} leads")
        dev_nodes.restart(killed)
        killed = None
        run_.mark(f"restarted {old}")
        threads[0].join(max(0.0, run_.left()))
        assert not threads[0].is_alive(), "the producer finished in time"
        wait_until(ledger.all_acked_delivered, run_, "every acknowledged publish was delivered")
        run_.mark("every acknowledged publish delivered")
        wait_until(lambda: queue_drained(client.get_queue(queue_name).stats), run_, "the queue is empty", poll=0.25)
        run_.mark("queue empty")
    finally:
        run_.stopped = True  # the producer stops after the call in flight
        if killed is not None:  # the test failed before it restarted the node
            dev_nodes.restart(killed)
        sub.close()
        for t in threads:
            t.join(15)
        producer.close()
        consumer.close()
    stats = client.get_queue(queue_name).stats
    violations = report(capsys, "failover (sync client)", run_, ledger, stats, (old, leader))
    wait_rejoined(client, old)
    assert not run_.thread_errors, run_.thread_errors
    assert not violations, violations
    assert queue_drained(stats) and stats.dead == 0
    assert stats.published_total == len(ledger.delivered_keys()), "the server stored exactly the keys delivered"
    assert time.monotonic() - run_.started < 60


# -- the asyncio client, with tasks --------------------------------------------------


async def apublish_one(client: raftq.aio.Client, ledger: Ledger, queue: str, i: int) -> None:
    key = ledger.key(i)
    doubt = False
    for attempt in range(APP_TRIES):
        try:
            [result] = await client.publish_batch(queue, [{"body": str(i), "idempotency_key": key}])
        except RaftqError as e:
            doubt = doubt or e.in_doubt
            if attempt + 1 < APP_TRIES:
                ledger.publish_retries += 1
                continue
            e.in_doubt = doubt
            ledger.on_publish_failed(key, e)
        else:
            ledger.on_published(key, result)
            return


async def await_until(check: Callable[[], Any], run_: Run, what: str, poll: float = 0.05) -> None:
    while True:
        ok = check()
        if asyncio.iscoroutine(ok):
            ok = await ok
        if ok:
            return
        if run_.left() <= 0 or run_.thread_errors:
            raise AssertionError(f"timed out waiting until {what} (errors: {run_.thread_errors})")
        await asyncio.sleep(poll)


async def anew_leader(admin: raftq.aio.Client, killed: str, run_: Run) -> str:
    survivors = [s for s in admin.servers if s != killed]
    while run_.left() > 0:
        for server in survivors:
            try:
                status = await admin.status(server=server, timeout=1.0)
                if status.leader_address in survivors and status.leader_id != 0:
                    again = await admin.status(server=status.leader_address, timeout=1.0)
                    if again.leader_address == status.leader_address:
                        return status.leader_address
            except RaftqError:
                continue
        await asyncio.sleep(0.05)
    raise AssertionError("no new leader was elected")


@pytest.mark.integration
@kills_nodes
def test_async_no_acknowledged_message_lost_when_the_leader_is_killed(client, queue_name, dev_nodes, capsys):
    run_ = Run()
    ledger = Ledger(f"fo-{uuid.uuid4().hex[:8]}")
    client.create_queue(queue_name, lease_ms=LEASE_MS)
    leaders: List[Optional[str]] = [None, None]

    async def body() -> Any:
        async with raftq.aio.Client.from_env(timeout=20.0) as admin, raftq.aio.Client.from_env(
            timeout=20.0
        ) as producer, raftq.aio.Client.from_env(timeout=20.0) as consumer:
            sub = consumer.subscribe(queue_name, prefetch=100)

            async def produce() -> None:
                for i in range(N):
                    if run_.left() <= 0:
                        return
                    await apublish_one(producer, ledger, queue_name, i)
                run_.mark("all published")

            async def consume() -> None:
                async for message in sub:
                    delivery: Delivery = ledger.on_delivered(message)
                    try:
                        await message.ack()
                        delivery.ack = ACKED
                    except RaftqError as e:
                        delivery.ack = ack_outcome(e)

            def guarded(coro: Any) -> "asyncio.Task[None]":
                async def wrapper() -> None:
                    try:
                        await coro
                    except BaseException as e:
                        run_.thread_errors.append(e)

                return asyncio.ensure_future(wrapper())

            tasks = [guarded(produce()), guarded(consume())]
            killed = None
            try:
                await await_until(lambda: ledger.acked_count() >= N // 3, run_, f"{N // 3} publishes acknowledged")
                old = (await admin.status()).leader_address
                assert old in admin.servers
                assert (await admin.status(server=old)).leader_address == old
                leaders[0] = old
                killed = dev_nodes.kill(old)
                run_.mark(f"killed {old} (pid {killed.pid}) after {ledger.acked_count()} publishes")
                leaders[1] = await anew_leader(admin, old, run_)
                run_.mark(f"{leaders[1]} leads")
                dev_nodes.restart(killed)
                killed = None
                run_.mark(f"restarted {old}")
                await asyncio.wait_for(asyncio.shield(tasks[0]), max(0.1, run_.left()))
                await await_until(ledger.all_acked_delivered, run_, "every acknowledged publish was delivered")
                run_.mark("every acknowledged publish delivered")

                async def drained() -> bool:
                    return queue_drained((await admin.get_queue(queue_name)).stats)

                await await_until(drained, run_, "the queue is empty", poll=0.25)
                run_.mark("queue empty")
            finally:
                if killed is not None:  # the test failed before it restarted the node
                    dev_nodes.restart(killed)
                sub.close()
                await asyncio.wait(tasks, timeout=15)
                for t in tasks:
                    t.cancel()

    run(body())
    stats = client.get_queue(queue_name).stats
    violations = report(capsys, "failover (asyncio client)", run_, ledger, stats, (leaders[0] or "?", leaders[1] or "?"))
    if leaders[0]:
        wait_rejoined(client, leaders[0])
    assert not run_.thread_errors, run_.thread_errors
    assert not violations, violations
    assert queue_drained(stats) and stats.dead == 0
    assert stats.published_total == len(ledger.delivered_keys())
    assert time.monotonic() - run_.started < 60


# -- the checker itself (no server) ---------------------------------------------------


def _message(key: str, message_id: int, count: int = 1) -> raftq.Message:
    return raftq.Message("q", message_id, b"", {}, count, raftq.Receipt("q", message_id, count), 0, idempotency_key=key)


def test_ledger_passes_a_clean_run_and_allows_duplicates_after_doubtful_acks():
    ledger = Ledger("p")
    for i, key in enumerate(["p-0", "p-1", "p-2"]):
        ledger.on_published(key, raftq.PublishResult(10 + i, duplicate=i == 2))
    ledger.on_publish_failed("p-3", RaftqError(__import__("grpc").StatusCode.UNKNOWN, "", in_doubt=True))
    ledger.on_delivered(_message("p-0", 10)).ack = ACKED
    ledger.on_delivered(_message("p-1", 11)).ack = IN_DOUBT
    ledger.on_delivered(_message("p-1", 11, 2)).ack = "failed: LEASE_EXPIRED"
    ledger.on_delivered(_message("p-1", 11, 3)).ack = ACKED
    ledger.on_delivered(_message("p-2", 12)).ack = ACKED
    ledger.on_delivered(_message("p-3", 13)).ack = ACKED  # in doubt, yet stored: fine
    figures, violations = ledger.verify()
    assert violations == []
    assert figures["duplicates"] == 2
    assert figures["duplicates by the earlier delivery's ack"] == {IN_DOUBT: 1, "failed: LEASE_EXPIRED": 1}
    assert figures["publishes answered duplicate"] == 1


def test_ledger_catches_loss_phantoms_double_storage_and_redelivery_after_ack():
    import grpc

    ledger = Ledger("p")
    ledger.on_published("p-0", raftq.PublishResult(10))
    ledger.on_published("p-1", raftq.PublishResult(11))
    ledger.on_published("p-2", raftq.PublishResult(12))
    ledger.on_publish_failed("p-9", RaftqError(grpc.StatusCode.INVALID_ARGUMENT, "refused"))
    # p-0 never delivered: lost.
    ledger.on_delivered(_message("p-1", 11)).ack = ACKED
    ledger.on_delivered(_message("p-1", 11, 2)).ack = ACKED  # again after an ack
    ledger.on_delivered(_message("p-2", 99)).ack = ACKED  # under another id
    ledger.on_delivered(_message("p-9", 20)).ack = ACKED  # refused, yet delivered
    ledger.on_delivered(_message("other-1", 21)).ack = ACKED  # not ours
    _, violations = ledger.verify()
    text = "\n".join(violations)
    assert "never delivered: ['p-0']" in text
    assert "p-9" in text and "other-1" in text
    assert "more than one id" in text and "p-2" in text
    assert "after a successful ack" in text
    assert len(violations) == 5
