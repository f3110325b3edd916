"""Pub/sub: one publisher, a topic, two consumer groups that each get every message.

    python pubsub.py [--topic orders] [--groups billing,search] [--count 20] [--idle-s 5]

Declares the topic and one queue per consumer group (`<topic>-<group>`),
binds each queue to the topic without a filter, then publishes --count
messages to the topic while one consumer per group receives and acks its
queue's copies. Fails unless every group got every message exactly once.

Uses the raftq package (clients/python): `pip install ./clients/python`.
The cluster comes from the environment, as for the raftq CLI:
RAFTQ_SERVERS, and RAFTQ_TOKEN / RAFTQ_TLS_* when auth and TLS are on.
"""

import argparse
import collections
import threading
import time
import uuid

import raftq


def declare(client, topic, queues):
    """Creates the topic and the queues unless they exist (a second run),
    and binds each queue to the topic (binding again is harmless)."""
    try:
        client.create_topic(topic)
        print(f"declared topic {topic}")
    except raftq.RaftqError as e:
        if e.reason is not raftq.ErrorReason.TOPIC_EXISTS:
            raise
        print(f"topic {topic} already exists")
    for queue in queues:
        try:
            client.create_queue(queue)
        except raftq.RaftqError as e:
            if e.reason is not raftq.ErrorReason.QUEUE_EXISTS:
                raise
        # No filter: the queue gets a copy of every message. A filter picks
        # some, e.g. raftq.Filter().equals("region", "eu").
        client.bind(topic, queue)
    print(f"bound {', '.join(queues)} to {topic}")


def consume(client, queue, run, count, idle_s, got, errors):
    """One consumer group: receives and acks until it has `count` messages
    of this run, or nothing came for `idle_s`. Counts each body in `got`."""
    try:
        mine = 0
        while mine < count:
            messages = client.receive(queue, max_messages=10, wait_ms=int(idle_s * 1000))
            if not messages:
                break
            for message in messages:
                if message.attributes.get("run") == run:
                    got[message.text] += 1
                    mine += 1
            client.ack(messages)  # an earlier run's leftovers are acked too
        # Exactly once: nothing more is delivered (a copy would show here).
        for message in client.receive(queue, max_messages=10, wait_ms=500):
            if message.attributes.get("run") == run:
                got[message.text] += 1
            client.ack(message)
    except Exception as e:  # reported by main()
        errors.append(f"{queue}: {e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topic", default="orders")
    parser.add_argument("--groups", default="billing,search", help="consumer groups, comma-separated")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--idle-s", type=float, default=5.0)
    args = parser.parse_args()
    groups = [g for g in args.groups.split(",") if g]
    queues = {group: f"{args.topic}-{group}" for group in groups}
    run = uuid.uuid4().hex[:8]  # tells this run's messages from an earlier run's
    bodies = [f"order #{i} (run {run})" for i in range(args.count)]

    with raftq.Client.from_env() as client:
        declare(client, args.topic, list(queues.values()))

        got = {group: collections.Counter() for group in groups}
        errors = []
        consumers = [
            threading.Thread(
                target=consume,
                args=(client, queues[group], run, args.count, args.idle_s, got[group], errors),
                name=f"consumer-{group}",
            )
            for group in groups
        ]
        for consumer in consumers:
            consumer.start()

        # The publisher: batches of 10, each one log entry, all or none. Each
        # message gets one copy per bound queue; the client keys every
        # message, so a retry after a failover stores no second copy.
        started = time.monotonic()
        for first in range(0, args.count, 10):
            batch = [{"body": body, "attributes": {"run": run}} for body in bodies[first : first + 10]]
            for result in client.publish_topic(args.topic, batch):
                copied = sorted(copy.queue for copy in result.copies)
                if copied != sorted(queues.values()):
                    errors.append(f"message {result.message_id} was copied to {copied}")
        print(f"published {args.count} messages to {args.topic}")

        for consumer in consumers:
            consumer.join()
        elapsed = time.monotonic() - started
        stats = client.get_topic(args.topic).stats

    expected = collections.Counter(bodies)
    for group in groups:
        missing = sorted(set(expected) - set(got[group]))
        twice = sorted(body for body, n in got[group].items() if n > 1)
        unknown = sorted(set(got[group]) - set(expected))
        if missing or twice or unknown:
            errors.append(f"{group}: {len(missing)} missing, {len(twice)} more than once, {len(unknown)} unknown")
        print(f"{group} ({queues[group]}): received and acked {sum(got[group].values())} of {args.count} messages")
    print(
        f"topic {args.topic}: {stats.published_total} published, {stats.routed_copies_total} copies routed, "
        f"{stats.unrouted_total} unrouted ({elapsed:.1f}s)"
    )
    if errors:
        raise SystemExit("pub/sub failed: " + "; ".join(errors))
    print(f"every group got every message exactly once ({len(groups)} groups x {args.count} messages)")


if __name__ == "__main__":
    main()
