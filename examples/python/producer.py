"""Hello world, producer side: declare a queue and publish to it.

    python producer.py [--queue hello] [--count 10]

Uses the raftq package (clients/python): `pip install ./clients/python`.
The cluster comes from the environment, as for the raftq CLI:
RAFTQ_SERVERS, and RAFTQ_TOKEN / RAFTQ_TLS_* when auth and TLS are on.
"""

import argparse

import raftq


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue", default="hello")
    parser.add_argument("--count", type=int, default=10)
    args = parser.parse_args()

    with raftq.Client.from_env() as client:
        # Declare the queue; it may already exist (a second run).
        try:
            client.create_queue(args.queue)
            print(f"declared queue {args.queue}")
        except raftq.RaftqError as e:
            if e.reason is not raftq.ErrorReason.QUEUE_EXISTS:
                raise
            print(f"queue {args.queue} already exists")

        # One request, all or nothing. The client gives each message an
        # idempotency key, so its retries after a failover store nothing twice.
        results = client.publish_batch(args.queue, [f"Hello World! #{i}" for i in range(args.count)])
        ids = [r.message_id for r in results]
        print(f"sent {len(ids)} messages, ids {ids[0]}..{ids[-1]}")


if __name__ == "__main__":
    main()
