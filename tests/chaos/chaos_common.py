"""What the chaos clients share: the addresses they use, the journal of their last actions,
the record of what was acknowledged, and the client thread base (chaos.py runs them)."""
import argparse
import collections
import os
import random
import re
import select
import socket
import struct
import subprocess
import sys
import threading
import time

from proton import (Collector, Condition, Connection, Delivery, Endpoint, Event, Link, Message,
                    Transport)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration", "python"))
from trestled import Trestled, wait_for  # noqa: E402


KAFKA_TOPIC = "telemetry"
# chaos/... and rq/... are governed by an address rule and a link route that the management
# loop creates and deletes while the clients use them.
AMQP_ADDRESSES = ["closest/c1", "balanced/b1", "multicast/m1", "multicast/m2", "q1",
                  "queue/lr1", "telemetry/a1", "telemetry/a2", "sensors/s1", "exclusive.x",
                  "chaos/x1", "rq/r1"]
AMQP_FILTERS = ["multicast/#", "sensors/+", "telemetry/#", "$share/ga/sensors/#"]
MQTT_TOPICS = ["sensors/s1", "sensors/s2", "multicast/m1", "telemetry/t1", "telemetry/t2",
               "closest/c1", "q1", "chaos/x1"]
MQTT_FILTERS = ["sensors/#", "sensors/+", "multicast/#", "telemetry/#", "#", "$share/g1/sensors/#",
                "$share/g2/telemetry/+", "closest/c1", "q1", "+/+"]



class Journal:
    """The last actions of every client, printed when an invariant breaks."""

    def __init__(self):
        self.lock = threading.Lock()
        self.entries = collections.defaultdict(lambda: collections.deque(maxlen=40))
        self.start = time.time()

    def add(self, who, what):
        with self.lock:
            self.entries[who].append((time.time() - self.start, who, what))

    def dump(self):
        with self.lock:
            rows = sorted(e for q in self.entries.values() for e in q)
        return "\n".join("%7.3f %-6s %s" % row for row in rows)


class Acked:
    """Message ids acknowledged by the router for Kafka-bound addresses, with how."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ids = set()
        self.how = {}
        self.start = time.time()

    def add(self, mid, how=""):
        with self.lock:
            self.ids.add(mid)
            self.how[mid] = "%.3f %s" % (time.time() - self.start, how)


def rst_close(sock):
    """Closes with a TCP reset (SO_LINGER 0): the peer sees no orderly shutdown."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()




class ChaosClient(threading.Thread):
    """One client's thread: sessions of random actions until the deadline."""

    def __init__(self, who, seed, ctx):
        super().__init__(daemon=True)
        self.who, self.rng, self.ctx = who, random.Random(seed), ctx
        self.sent = 0
        self.error = None

    def log(self, what):
        self.ctx.journal.add(self.who, what)

    def run(self):
        try:
            while time.time() < self.ctx.deadline:
                self.session()
        except Exception as e:  # a client bug is reported, not hidden
            self.error = "%s: %r" % (self.who, e)

    def connect(self, make):
        """make() connected, or None: refused ends the run (the router is gone)."""
        try:
            return make()
        except ConnectionRefusedError:
            self.log("connection refused: the router is gone")
            self.ctx.deadline = 0
        except OSError as e:
            self.log("connect failed: %s" % e)
            time.sleep(0.1)  # backoff before connecting again (the listener is busy)
        return None
