"""Hello world, consumer side: receive messages under a lease and ack them.

    python consumer.py [--queue hello] [--count N] [--idle-s 5]

Stops after N messages (if given) or when nothing arrives for --idle-s.
"""

import argparse

import raftq


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue", default="hello")
    parser.add_argument("--count", type=int, default=0, help="stop after this many (0 = until idle)")
    parser.add_argument("--idle-s", type=float, default=5.0)
    args = parser.parse_args()

    received = 0
    with raftq.Client.from_env() as client:
        while args.count == 0 or received < args.count:
            # A long poll: returns as soon as a message is visible, or empty
            # after the wait.
            messages = client.receive(args.queue, max_messages=10, wait_ms=int(args.idle_s * 1000))
            if not messages:
                print(f"nothing for {args.idle_s}s, stopping")
                break
            for message in messages:
                print(f"received id={message.message_id} {message.text!r}")
            # Ack the batch: the messages are gone for good. Without an ack
            # they come back when the lease ends (at-least-once).
            received += client.ack(messages)
    print(f"consumed and acked {received} messages")
    if args.count and received < args.count:
        raise SystemExit(f"expected {args.count} messages, got {received}")


if __name__ == "__main__":
    main()
