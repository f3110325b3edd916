"""Hello world, producer side: declare a queue and publish to it.

    python producer.py [--queue hello] [--count 10]
"""

import argparse
import uuid

import grpc

from raftq_conn import Connection, queue_pb2, servers_from_env


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue", default="hello")
    parser.add_argument("--count", type=int, default=10)
    args = parser.parse_args()
    conn = Connection(servers_from_env())

    # Declare the queue; it may already exist (a second run).
    try:
        conn.call("CreateQueue", queue_pb2.CreateQueueRequest(name=args.queue, config=queue_pb2.QueueConfig()))
        print(f"declared queue {args.queue}")
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise
        print(f"queue {args.queue} already exists")

    # One request, all or nothing. Each message carries an idempotency key,
    # so retrying the same request after a failover stores nothing twice.
    run = uuid.uuid4().hex[:8]
    messages = [
        queue_pb2.PublishMessage(body=f"Hello World! #{i}".encode(), idempotency_key=f"hello-{run}-{i}")
        for i in range(args.count)
    ]
    response = conn.call("Publish", queue_pb2.PublishRequest(queue=args.queue, messages=messages))
    ids = [r.id for r in response.results]
    print(f"sent {len(ids)} messages, ids {ids[0]}..{ids[-1]}")


if __name__ == "__main__":
    main()
