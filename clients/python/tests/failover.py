"""Helpers of the failover tests (test_failover.py): the ledger that checks
a run's deliveries against its publishes, and killing and restarting a node
of a local `raftq dev` cluster."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set, Tuple

import raftq

#: run-tests.sh --dev sets it to "dev": the tests may SIGKILL the dev
#: cluster's nodes (and restart them).
CAN_KILL_ENV = "RAFTQ_TEST_CAN_KILL"
#: Where to note the pids of restarted nodes, for run-tests.sh to stop them
#: should pytest die before it does.
PIDFILE_ENV = "RAFTQ_TEST_PIDFILE"

ACKED = "acked"
IN_DOUBT = "in doubt"


@dataclass
class Delivery:
    message_id: int
    delivery_count: int
    #: ACKED, IN_DOUBT, or "failed: REASON" (the ack surely did nothing).
    ack: str = ""


@dataclass
class Ledger:
    """Every publish and delivery of one run, and the checks on them:

    - every publish the server acknowledged is delivered at least once;
    - nothing is delivered that was not published (a publish refused for
      sure must never show up; one in doubt may);
    - a key is stored once: all its deliveries carry the id its publish
      returned (a retried publish that had committed returns the same id);
    - a message is delivered again only after an ack that did not surely
      succeed (in doubt, or failed); a redelivery after a successful ack is
      a violation. Those redeliveries are the run's duplicates: counted and
      reported, allowed (at-least-once).
    """

    prefix: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: key -> message id, for publishes the server acknowledged.
    published: Dict[str, int] = field(default_factory=dict)
    #: Keys whose publish failed in doubt (it may have been stored).
    publish_in_doubt: Set[str] = field(default_factory=set)
    #: Keys whose publish was refused for sure (never stored).
    publish_refused: Set[str] = field(default_factory=set)
    #: Publishes answered `duplicate`: an earlier attempt had committed.
    dedup_hits: int = 0
    #: Publish attempts the application made again (same key) after an error.
    publish_retries: int = 0
    #: key -> its deliveries, in order.
    deliveries: Dict[str, List[Delivery]] = field(default_factory=lambda: collections.defaultdict(list))
    #: Deliveries of keys not of this run (the queue is the run's own: none).
    foreign: List[Tuple[str, int]] = field(default_factory=list)

    def key(self, i: int) -> str:
        return f"{self.prefix}-{i}"

    def on_published(self, key: str, result: raftq.PublishResult) -> None:
        with self.lock:
            self.published[key] = result.message_id
            self.publish_in_doubt.discard(key)
            self.publish_refused.discard(key)
            self.dedup_hits += int(result.duplicate)

    def on_publish_failed(self, key: str, err: raftq.RaftqError) -> None:
        """Once the application gave up on `key`."""
        with self.lock:
            (self.publish_in_doubt if err.in_doubt else self.publish_refused).add(key)

    def on_delivered(self, message: raftq.BaseMessage) -> Delivery:
        delivery = Delivery(message.message_id, message.delivery_count)
        key = message.idempotency_key
        with self.lock:
            if not key.startswith(self.prefix + "-"):
                self.foreign.append((key, message.message_id))
            self.deliveries[key].append(delivery)
        return delivery

    def acked_count(self) -> int:
        with self.lock:
            return len(self.published)

    def delivered_keys(self) -> Set[str]:
        with self.lock:
            return set(self.deliveries)

    def all_acked_delivered(self) -> bool:
        with self.lock:
            return set(self.published) <= set(self.deliveries)

    def verify(self) -> Tuple[Dict[str, object], List[str]]:
        """(report, violations): the run's figures, and what broke the rules
        (empty when it passed)."""
        with self.lock:
            violations: List[str] = []
            lost = sorted(set(self.published) - set(self.deliveries))
            if lost:
                violations.append(f"{len(lost)} acknowledged publishes never delivered: {lost[:10]}")
            phantom = sorted(set(self.deliveries) - set(self.published) - self.publish_in_doubt)
            if phantom:
                violations.append(f"{len(phantom)} keys delivered that were never (surely) published: {phantom[:10]}")
            if self.foreign:
                violations.append(f"deliveries of keys not published by this run: {self.foreign[:10]}")
            split = {}
            for key, ds in self.deliveries.items():
                ids = {d.message_id for d in ds}
                if key in self.published:
                    ids.add(self.published[key])
                if len(ids) > 1:
                    split[key] = sorted(ids)
            if split:
                violations.append(f"{len(split)} keys stored under more than one id: {list(split.items())[:10]}")

            duplicates = 0
            after: collections.Counter = collections.Counter()
            redelivered_after_ack = []
            unsettled = []
            for key, ds in self.deliveries.items():
                for earlier in ds[:-1]:
                    duplicates += 1
                    after[earlier.ack or "no ack"] += 1
                    if earlier.ack == ACKED:
                        redelivered_after_ack.append((key, earlier.message_id))
                if ds and ds[-1].ack != ACKED:
                    unsettled.append((key, ds[-1].ack))
            if redelivered_after_ack:
                violations.append(
                    f"{len(redelivered_after_ack)} messages delivered again after a successful ack: {redelivered_after_ack[:10]}"
                )
            delivered = sum(len(ds) for ds in self.deliveries.values())
            report: Dict[str, object] = {
                "published (acknowledged)": len(self.published),
                "publishes in doubt": len(self.publish_in_doubt),
                "publishes refused": len(self.publish_refused),
                "publish retries by the application": self.publish_retries,
                "publishes answered duplicate": self.dedup_hits,
                "distinct messages delivered": len(self.deliveries),
                "deliveries": delivered,
                "duplicates": duplicates,
                "duplicates by the earlier delivery's ack": dict(after),
                "last delivery's ack not surely done": len(unsettled),
            }
            return report, violations


# -- killing and restarting a dev node -------------------------------------------


@dataclass
class ServerProcess:
    """A running `raftq server`, as found in /proc."""

    pid: int
    argv: List[str]
    cwd: str
    env: Dict[str, str]
    addr: str


def find_server(addr: str) -> Optional[ServerProcess]:
    """The local `raftq server` process serving clients on `addr` (its
    `--listen`), or None."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = [a.decode() for a in f.read().split(b"\0") if a]
            if "server" not in argv or "--listen" not in argv:
                continue
            i = argv.index("--listen")
            if i + 1 >= len(argv) or argv[i + 1] != addr:
                continue
            cwd = os.readlink(f"/proc/{entry}/cwd")
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = dict(kv.decode().split("=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
        except (OSError, ValueError, UnicodeDecodeError):
            continue  # gone, or not ours to read
        return ServerProcess(int(entry), argv, cwd, env, addr)
    return None


class Nodes:
    """Kills nodes of the local cluster and restarts them (raftq dev does
    not: a killed node stays down). Restarted nodes are this process's
    children; `stop()` ends them."""

    def __init__(self, logdir: str) -> None:
        self._logdir = logdir
        self._started: List[subprocess.Popen] = []

    def kill(self, addr: str) -> ServerProcess:
        node = find_server(addr)
        if node is None:
            raise AssertionError(f"no local `raftq server --listen {addr}` process to kill")
        os.kill(node.pid, signal.SIGKILL)
        for proc in self._started:  # reap it if it is ours (restarted earlier)
            if proc.pid == node.pid:
                proc.wait()
        return node

    def restart(self, node: ServerProcess) -> subprocess.Popen:
        """Starts `node` again with the same command line, directory and
        environment (its data dir holds its Raft state)."""
        log = open(os.path.join(self._logdir, f"restarted-{node.addr.replace(':', '-')}.log"), "ab")
        proc = subprocess.Popen(
            node.argv,
            cwd=node.cwd,
            env=node.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self._started.append(proc)
        pidfile = os.environ.get(PIDFILE_ENV)
        if pidfile:
            with open(pidfile, "a") as f:
                f.write(f"{proc.pid}\n")
        return proc

    def stop(self) -> None:
        for proc in self._started:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._started:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        stopped = {str(proc.pid) for proc in self._started}
        self._started.clear()
        pidfile = os.environ.get(PIDFILE_ENV)
        if pidfile and os.path.exists(pidfile):  # what is left for run-tests.sh to stop
            with open(pidfile) as f:
                left = [line for line in f.read().split() if line not in stopped]
            with open(pidfile, "w") as f:
                f.writelines(f"{pid}\n" for pid in left)
