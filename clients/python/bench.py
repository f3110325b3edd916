#!/usr/bin/env python3
"""A small benchmark of the Python client against a running raftq cluster.

    python bench.py --mode publish --client aio --inflight 64
    python bench.py --mode publish --client aio --inflight 8 --batch 100
    python bench.py --mode e2e --client aio --inflight 64 --batch 10
    python bench.py --mode e2e --client aio --rate 500      # latency at a set rate

Modes:
    publish  publishes --messages messages with --inflight requests in
             flight, each a publish of one message or, with --batch N, a
             publish_batch of N. Reports msgs/s and the publish call's
             latency (p50/p99/p999).
    e2e      the same publishing, plus one consumer that acks in batches of
             up to --ack-batch with --ack-inflight acks in flight. The
             consumer subscribes (`subscribe`, prefetch --prefetch), or with
             --consume receive loops on `receive` of --receive-batch. Reports msgs/s (first publish to
             last ack) and the end-to-end latency: from a timestamp the
             publisher writes in each body to the subscriber receiving it.
             With --rate R the publishers pace themselves to R msgs/s (the
             latency of a cluster that keeps up); without, they go as fast
             as they can (the latency at saturation: mostly queueing).

Clients: --client aio uses raftq.aio.Client (one event loop, --inflight
tasks); --client threads uses raftq.Client (--inflight threads sharing it).

Servers, token and TLS come from RAFTQ_SERVERS / RAFTQ_TOKEN / RAFTQ_TLS_*
(as `raftq.Client.from_env`), or --servers. The benchmark makes its own
queue (bench-<random>) and deletes it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import queue as queue_mod
import struct
import sys
import threading
import time
import uuid
from typing import Any, Dict, List, Optional, Tuple

import raftq
import raftq.aio

_STAMP = struct.Struct("<q")


def percentile(sorted_values: List[float], p: float) -> float:
    """The nearest-rank percentile `p` (0..100) of sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def body(size: int) -> bytes:
    """A body of `size` bytes (at least 8) starting with the send time."""
    return _STAMP.pack(time.perf_counter_ns()) + b"x" * max(0, size - _STAMP.size)


def sent_at(data: bytes) -> int:
    return _STAMP.unpack_from(data)[0]


class Results:
    def __init__(self) -> None:
        self.publish_latency: List[float] = []  # seconds per publish call
        self.e2e_latency: List[float] = []  # seconds per message
        self.acked = 0
        self.ack_errors = 0
        self.started = 0.0
        self.published_at = 0.0  # when the last publish returned
        self.finished = 0.0
        self.cpu_start = os.times()

    def summary(self, args: argparse.Namespace) -> str:
        total = args.messages
        cpu = os.times()
        cpu_s = (cpu.user - self.cpu_start.user) + (cpu.system - self.cpu_start.system)
        elapsed = self.finished - self.started
        lines = [
            f"mode={args.mode} client={args.client} messages={total} size={args.size}B inflight={args.inflight} "
            f"batch={args.batch}"
            + (f" rate={args.rate}/s" if args.rate else "")
            + (
                f" consume={args.consume}"
                + (f" prefetch={args.prefetch}" if args.consume == "subscribe" else f" receive-batch={args.receive_batch}")
                + f" ack-batch={args.ack_batch} ack-inflight={args.ack_inflight}"
                if args.mode == "e2e"
                else ""
            )
        ]
        if args.mode == "publish":
            lines.append(f"  publish: {total / elapsed:,.0f} msgs/s ({elapsed:.2f} s)")
        else:
            pub = self.published_at - self.started
            lines.append(f"  publish: {total / pub:,.0f} msgs/s ({pub:.2f} s)")
            lines.append(f"  end to end: {self.acked / elapsed:,.0f} msgs/s acked ({elapsed:.2f} s; ack errors {self.ack_errors})")
        lat = sorted(self.publish_latency)
        lines.append(
            f"  publish call latency ms: p50 {percentile(lat, 50) * 1e3:.2f}  p99 {percentile(lat, 99) * 1e3:.2f}  "
            f"p999 {percentile(lat, 99.9) * 1e3:.2f}  (n={len(lat)})"
        )
        if args.mode == "e2e":
            e2e = sorted(self.e2e_latency)
            lines.append(
                f"  end-to-end latency ms: p50 {percentile(e2e, 50) * 1e3:.2f}  p99 {percentile(e2e, 99) * 1e3:.2f}  "
                f"p999 {percentile(e2e, 99.9) * 1e3:.2f}  (n={len(e2e)})"
            )
        lines.append(f"  client CPU: {cpu_s:.1f} s ({cpu_s / elapsed * 100:.0f}% of one core)")
        return "\n".join(lines)


def requests(total: int, batch: int) -> List[Tuple[int, int]]:
    """The publish requests of a run, as (index of the first message, how
    many messages): `total` messages, `batch` a request."""
    return [(start, min(batch, total - start)) for start in range(0, total, batch)]


def pacing(args: argparse.Namespace, started: float, first_index: int) -> float:
    """How long to wait before sending the request whose first message is
    message `first_index`, to keep --rate."""
    if not args.rate:
        return 0.0
    return started + first_index / args.rate - time.perf_counter()


# -- asyncio -----------------------------------------------------------------


async def run_aio(args: argparse.Namespace, queue: str) -> Results:
    res = Results()
    async with raftq.aio.Client.from_env(**client_kwargs(args)) as client:
        await client.create_queue(queue)
        try:
            await warm_up_aio(client, queue, args)
            res.cpu_start = os.times()
            work = iter(requests(args.messages, args.batch))
            res.started = time.perf_counter()

            async def publisher() -> None:
                for first, n in work:
                    wait = pacing(args, res.started, first)
                    if wait > 0:
                        await asyncio.sleep(wait)
                    t0 = time.perf_counter()
                    if n == 1 and args.batch == 1:
                        await client.publish(queue, body(args.size))
                    else:
                        await client.publish_batch(queue, [body(args.size) for _ in range(n)])
                    res.publish_latency.append(time.perf_counter() - t0)

            async def publishers() -> None:
                await asyncio.gather(*(publisher() for _ in range(args.inflight)))
                res.published_at = time.perf_counter()

            if args.mode == "publish":
                await publishers()
            else:
                await asyncio.gather(publishers(), subscriber_aio(client, queue, args, res))
            res.finished = time.perf_counter()
        finally:
            await client.delete_queue(queue)
    return res


async def subscriber_aio(client: raftq.aio.Client, queue: str, args: argparse.Namespace, res: Results) -> None:
    pending: List[raftq.AsyncMessage] = []
    ready = asyncio.Event()
    received = 0
    done = asyncio.Event()

    async def acker() -> None:
        while not (done.is_set() and not pending):
            if not pending:
                ready.clear()
                await ready.wait()
                continue
            batch, pending[:] = pending[: args.ack_batch], pending[args.ack_batch :]
            try:
                acked = await client.ack(batch)
                res.acked += acked  # not `+= await ...`: that reads res.acked before awaiting
            except raftq.RaftqError:
                res.ack_errors += len(batch)

    ackers = [asyncio.ensure_future(acker()) for _ in range(args.ack_inflight)]

    def take(message: raftq.AsyncMessage) -> None:
        res.e2e_latency.append((time.perf_counter_ns() - sent_at(message.body)) / 1e9)
        pending.append(message)

    if args.consume == "subscribe":
        async with client.subscribe(queue, prefetch=args.prefetch) as sub:
            async for message in sub:
                take(message)
                ready.set()
                received += 1
                if received >= args.messages:
                    break
    else:
        while received < args.messages:
            batch = await client.receive(queue, max_messages=args.receive_batch, wait_ms=1000)
            for message in batch:
                take(message)
            ready.set()
            received += len(batch)
    done.set()
    ready.set()
    await asyncio.gather(*ackers)


async def warm_up_aio(client: raftq.aio.Client, queue: str, args: argparse.Namespace) -> None:
    """Connections made, the leader found, the code paths warm."""
    for _ in range(2):
        await asyncio.gather(*(client.publish(queue, b"warm") for _ in range(min(args.inflight, 64))))
    await client.purge_queue(queue)


# -- threads over the sync client ------------------------------------------------


def run_threads(args: argparse.Namespace, queue: str) -> Results:
    res = Results()
    with raftq.Client.from_env(**client_kwargs(args)) as client:
        client.create_queue(queue)
        try:
            warm_up_threads(client, queue, args)
            res.cpu_start = os.times()
            work = iter(requests(args.messages, args.batch))
            lock = threading.Lock()
            latencies: List[List[float]] = []
            res.started = time.perf_counter()

            def publisher() -> None:
                mine: List[float] = []
                latencies.append(mine)
                while True:
                    with lock:
                        item = next(work, None)
                    if item is None:
                        return
                    first, n = item
                    wait = pacing(args, res.started, first)
                    if wait > 0:
                        time.sleep(wait)
                    t0 = time.perf_counter()
                    if n == 1 and args.batch == 1:
                        client.publish(queue, body(args.size))
                    else:
                        client.publish_batch(queue, [body(args.size) for _ in range(n)])
                    mine.append(time.perf_counter() - t0)

            consumer = None
            if args.mode == "e2e":
                consumer = threading.Thread(target=subscriber_threads, args=(client, queue, args, res))
                consumer.start()
            threads = [threading.Thread(target=publisher) for _ in range(args.inflight)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            res.published_at = time.perf_counter()
            if consumer is not None:
                consumer.join()
            res.finished = time.perf_counter()
            res.publish_latency = [x for mine in latencies for x in mine]
        finally:
            client.delete_queue(queue)
    return res


def subscriber_threads(client: raftq.Client, queue: str, args: argparse.Namespace, res: Results) -> None:
    pending: "queue_mod.Queue[Optional[raftq.Message]]" = queue_mod.Queue()
    lock = threading.Lock()

    def acker() -> None:
        done = False
        while not done:
            batch = []
            item = pending.get()
            while item is not None:
                batch.append(item)
                if len(batch) >= args.ack_batch:
                    break
                try:
                    item = pending.get_nowait()
                except queue_mod.Empty:
                    break
            if item is None:
                done = True
            if batch:
                try:
                    n = client.ack(batch)
                except raftq.RaftqError:
                    with lock:
                        res.ack_errors += len(batch)
                else:
                    with lock:
                        res.acked += n

    ackers = [threading.Thread(target=acker) for _ in range(args.ack_inflight)]
    for t in ackers:
        t.start()
    received = 0

    def take(message: raftq.Message) -> None:
        res.e2e_latency.append((time.perf_counter_ns() - sent_at(message.body)) / 1e9)
        pending.put(message)

    if args.consume == "subscribe":
        with client.subscribe(queue, prefetch=args.prefetch) as sub:
            for message in sub:
                take(message)
                received += 1
                if received >= args.messages:
                    break
    else:
        while received < args.messages:
            batch = client.receive(queue, max_messages=args.receive_batch, wait_ms=1000)
            for message in batch:
                take(message)
            received += len(batch)
    for _ in ackers:
        pending.put(None)
    for t in ackers:
        t.join()


def warm_up_threads(client: raftq.Client, queue: str, args: argparse.Namespace) -> None:
    threads = [threading.Thread(target=client.publish, args=(queue, b"warm")) for _ in range(min(args.inflight, 64))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.purge_queue(queue)


# -- main -------------------------------------------------------------------------


def client_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    kwargs: Dict[str, Any] = {"timeout": 30.0}
    if args.servers:
        kwargs["servers"] = args.servers
    return kwargs


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--servers", help="host:port,... (default: RAFTQ_SERVERS, else 127.0.0.1:7101..7103)")
    p.add_argument("--mode", choices=["publish", "e2e"], default="publish")
    p.add_argument("--client", choices=["aio", "threads"], default="aio")
    p.add_argument("--messages", type=int, default=20_000, help="messages to publish (default 20000)")
    p.add_argument("--size", type=int, default=100, help="body bytes, at least 8 (default 100)")
    p.add_argument("--inflight", type=int, default=64, help="publish requests in flight (default 64)")
    p.add_argument("--batch", type=int, default=1, help="messages per publish request, 1..1000 (default 1)")
    p.add_argument("--rate", type=float, default=0.0, help="publish at most this many msgs/s (default: no limit)")
    p.add_argument(
        "--consume",
        choices=["subscribe", "receive"],
        default="subscribe",
        help="e2e: the consumer subscribes (default), or loops on receive of --receive-batch",
    )
    p.add_argument("--prefetch", type=int, default=1000, help="e2e: the subscription's prefetch (default 1000)")
    p.add_argument("--receive-batch", type=int, default=100, help="e2e: max_messages of each receive (default 100)")
    p.add_argument("--ack-batch", type=int, default=100, help="e2e: receipts per ack (default 100)")
    p.add_argument("--ack-inflight", type=int, default=4, help="e2e: acks in flight (default 4)")
    args = p.parse_args(argv)
    if args.size < _STAMP.size:
        p.error(f"--size is at least {_STAMP.size}")
    if not 1 <= args.batch <= 1000 or args.inflight < 1 or args.messages < 1:
        p.error("--batch is 1..1000; --inflight and --messages at least 1")
    if args.mode == "e2e" and args.prefetch < args.ack_batch:
        p.error("--prefetch must be at least --ack-batch (the subscriber would wait for its own acks)")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    if args.client == "aio":
        res = asyncio.run(run_aio(args, queue))
    else:
        res = run_threads(args, queue)
    print(res.summary(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
