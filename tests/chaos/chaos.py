"""Chaos clients (docs/development.md, "Testing"): many concurrent AMQP and
MQTT clients do random things over real sockets to a real trestled, bounded in time, while the
Kafka broker under it goes down and comes back. Then the router must be alive with no sanitizer
report, its connections, links and addresses back at the configured baseline, its RSS near its
baseline, a fresh client must still route AMQP->AMQP, MQTT->MQTT and MQTT->Kafka->AMQP, and
every message acknowledged to a Kafka-bound address (AMQP accepted, MQTT PUBACK/PUBREC) must be
in the topic.

- AMQP clients drive Qpid Proton's engine (python3-qpid-proton) over their own sockets: attach
  and detach senders and receivers on closest, balanced, multicast, link-routed (a Proton
  example broker behind a route-container connector), Kafka-bound, anonymous and dynamic
  addresses and topic filters; send settled or unsettled, small or 2 MiB; settle with every
  outcome or never; grant credit, drain; set `$lwt` wills; close cleanly, with an error, reset
  the TCP connection, stop half way through a frame, or send garbage.
- MQTT clients encode MQTT 3.1.1 and 5 by hand: clean and persistent sessions, client ids
  shared between clients (takeover), shared subscriptions, QoS 0/1/2 both ways (answered or
  not), retained messages, wills with delay, keep-alive expiry, abrupt drops, garbage.
- `$management`: trestle-stat's views, queried all along.

Seeded: client i's choices come from Random(seed * 1000 + i); thread timing still varies, so a
replay is close, not exact. A failure prints the seed and the last actions of every client.

Run: /usr/bin/python3 chaos.py --trestled B/trestled --kafka-mock B/tests/kafka_mock
        --broker B/tests/proton_example_broker --trestle-stat B/trestle-stat [--seed N]
        [--seconds S] [--clients N]
"""
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


# ---------------------------------------------------------------------------------------------
# AMQP: Proton's engine over a socket of our own


class AmqpClient:
    def __init__(self, port, name, acked=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setblocking(False)
        self.transport = Transport()
        self.conn = Connection()
        self.conn.container = name
        self.collector = Collector()
        self.conn.collect(self.collector)
        self.transport.bind(self.conn)
        self.conn.open()
        self.session = self.conn.session()
        self.session.open()
        self.acked = acked
        self.links = []
        self.unsettled = []  # received deliveries not yet settled
        self.received = []   # (link name, body) of complete messages
        self.outcomes = {}   # tag -> remote state of sent deliveries
        self.kafka_ids = {}  # tag -> message id sent unsettled to a Kafka-bound address
        self.closed = False
        self.next_tag = 0

    def pump(self, seconds):
        """Moves bytes both ways and handles events for `seconds`."""
        end = time.time() + seconds
        while not self.closed:
            self._events()
            pending = self.transport.pending()
            if pending > 0:
                try:
                    n = self.sock.send(self.transport.peek(min(pending, 1 << 16)))
                    self.transport.pop(n)
                except BlockingIOError:
                    pass
                except OSError:
                    self.closed = True
                    break
            elif pending < 0 and self.transport.capacity() < 0:
                self.closed = True
                break
            capacity = self.transport.capacity()
            if capacity <= 0:
                self.closed = capacity < 0
                if self.closed or time.time() >= end:
                    break
                continue
            try:
                data = self.sock.recv(min(capacity, 1 << 16))
                if data:
                    self.transport.push(data)
                else:
                    self.transport.close_tail()
                    self.closed = True
            except BlockingIOError:
                remaining = end - time.time()
                if remaining <= 0:
                    break
                # Wait for the socket: readable, or writable while output waits.
                writing = [self.sock] if self.transport.pending() > 0 else []
                select.select([self.sock], writing, [], min(remaining, 0.05))
            except OSError:
                self.closed = True
        self._events()

    def _events(self):
        while True:
            ev = self.collector.peek()
            if ev is None:
                return
            if ev.type == Event.DELIVERY:
                self._delivery(ev.delivery)
            elif ev.type == Event.LINK_REMOTE_CLOSE:
                if ev.link.state & Endpoint.LOCAL_ACTIVE:
                    ev.link.close()
            elif ev.type == Event.CONNECTION_REMOTE_CLOSE:
                if ev.connection.state & Endpoint.LOCAL_ACTIVE:
                    ev.connection.close()
            self.collector.pop()

    def _delivery(self, d):
        link = d.link
        if link.is_receiver:
            if d.readable:
                data = link.recv(d.pending)
                if not d.partial and data is not None:
                    link.advance()
                    try:
                        m = Message()
                        m.decode(data if isinstance(data, bytes) else bytes(data))
                        body = m.body
                    except Exception:
                        body = None
                    if isinstance(body, (bytes, memoryview)):  # a data section (from MQTT)
                        body = bytes(body).decode(errors="replace")
                    self.received.append((link.name, body))
                    if not d.settled:
                        self.unsettled.append(d)
        else:
            if d.remote_state or d.settled:
                self.outcomes[d.tag] = d.remote_state
                mid = self.kafka_ids.pop(d.tag, None)
                if mid and d.remote_state == Delivery.ACCEPTED and self.acked:
                    self.acked.add(mid, "AMQP accepted")
                d.settle()

    def sender(self, address, name=None, settled=False):
        s = self.session.sender(name or "s%d" % len(self.links))
        if address is not None:
            s.target.address = address
        s.source.address = "chaos"
        if settled:
            s.snd_settle_mode = Link.SND_SETTLED
        s.open()
        self.links.append(s)
        return s

    def receiver(self, address, dynamic=False, credit=10):
        r = self.session.receiver("r%d" % len(self.links))
        if dynamic:
            r.source.dynamic = True
        else:
            r.source.address = address
        r.target.address = "chaos"
        r.open()
        if credit:
            r.flow(credit)
        self.links.append(r)
        return r

    def send(self, link, body, to=None, settled=False, kafka_id=None, partial=False):
        tag = str(self.next_tag)
        self.next_tag += 1
        d = link.delivery(tag)
        data = Message(body=body, address=to, durable=True).encode()
        if partial:
            link.send(data[: len(data) // 2])  # the rest never comes
            return d
        link.send(data)
        link.advance()
        if settled:
            d.settle()
        elif kafka_id:
            self.kafka_ids[tag] = kafka_id
        return d

    def close(self, error=None):
        if error:
            self.conn.condition = Condition(error, "chaos")
        self.conn.close()
        self.pump(0.05)
        self.sock.close()
        self.closed = True


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


class AmqpChaos(ChaosClient):
    def __init__(self, index, ctx):
        super().__init__("amqp%d" % index, ctx.seed * 1000 + index, ctx)

    def session(self):
        rng, ctx = self.rng, self.ctx
        name = "%s-%d" % (self.who, rng.randrange(1000))
        c = self.connect(lambda: AmqpClient(ctx.ports["amqp"], name, ctx.acked))
        if not c:
            return
        self.log("connect")
        lifetime = time.time() + rng.uniform(0.2, 4)
        senders, receivers = [], []
        while time.time() < min(lifetime, ctx.deadline) and not c.closed:
            action = rng.randrange(100)
            if action < 15:
                kind = rng.randrange(6)
                if kind == 0:
                    r = c.receiver(None, dynamic=True, credit=rng.randrange(20))
                    self.log("attach receiver dynamic")
                elif kind == 1:
                    f = rng.choice(AMQP_FILTERS)
                    r = c.receiver(f, credit=rng.randrange(20))
                    self.log("attach receiver filter %s" % f)
                else:
                    a = rng.choice(AMQP_ADDRESSES)
                    r = c.receiver(a, credit=rng.randrange(20))
                    self.log("attach receiver %s" % a)
                receivers.append(r)
            elif action < 30:
                a = None if rng.random() < 0.25 else rng.choice(AMQP_ADDRESSES)
                settled = rng.random() < 0.3
                senders.append((c.sender(a, settled=settled), a))
                self.log("attach sender %s%s" % (a or "(anonymous)", " settled" if settled else ""))
            elif action < 55 and senders:
                s, a = rng.choice(senders)
                if s.state & Endpoint.LOCAL_ACTIVE and s.credit > 0:
                    to = rng.choice(AMQP_ADDRESSES) if a is None else None
                    settled = s.snd_settle_mode == Link.SND_SETTLED or rng.random() < 0.3
                    big = rng.random() < 0.02
                    self.sent += 1
                    mid = "%s-%d" % (self.who, self.sent)
                    body = (mid + ":" + "x" * (2 << 20)) if big else mid
                    dest = a or to
                    kafka = dest.startswith("telemetry/") and not settled and not big
                    c.send(s, body, to=to, settled=settled, kafka_id=mid if kafka else None)
                    self.log("send %s to %s%s%s" % (mid, dest, " settled" if settled else "",
                                                    " 2MiB" if big else ""))
            elif action < 68 and c.unsettled:
                d = c.unsettled.pop(rng.randrange(len(c.unsettled)))
                outcome = rng.choice([Delivery.ACCEPTED, Delivery.REJECTED, Delivery.RELEASED,
                                      Delivery.MODIFIED, None])
                if d.link.state & Endpoint.LOCAL_ACTIVE:
                    if outcome:
                        d.update(outcome)
                    if rng.random() < 0.9:
                        d.settle()
                    self.log("settle %s" % outcome)
            elif action < 76 and receivers:
                r = rng.choice(receivers)
                if r.state & Endpoint.LOCAL_ACTIVE:
                    if rng.random() < 0.2:
                        r.drain(rng.randrange(5))
                        self.log("drain")
                    else:
                        r.flow(rng.randrange(1, 20))
                        self.log("flow")
            elif action < 82 and (senders or receivers):
                links = [s for s, _ in senders] + receivers
                link = rng.choice(links)
                if link.state & Endpoint.LOCAL_ACTIVE:
                    if rng.random() < 0.3:
                        link.condition = Condition("amqp:link:detach-forced", "chaos")
                    link.close()
                    self.log("detach %s" % link.name)
            elif action < 85:
                # An EnMasse-style will: a sender to $lwt named by the client id.
                s = c.sender("$lwt", name="%s-will-%d" % (self.who, rng.randrange(3)))
                c.pump(0.01)
                if s.credit > 0:
                    c.send(s, "will of " + self.who, to="multicast/wills")
                    self.log("set $lwt will")
                senders.append((s, "$lwt"))
            elif action < 87:
                break  # the end of this connection comes below
            c.pump(rng.uniform(0, 0.03))
        self.end(c)

    def end(self, c):
        rng = self.rng
        how = rng.randrange(6)
        if c.closed:
            self.log("connection closed by the router")
            c.sock.close()
        elif how == 0:
            self.log("reset")
            rst_close(c.sock)
        elif how == 1:
            # Half a frame, then a reset: the router must drop the rest, nothing more.
            s = c.sender(rng.choice(AMQP_ADDRESSES))
            c.pump(0.02)
            c.send(s, "half", partial=True)
            pending = c.transport.pending()
            if pending > 0:
                data = c.transport.peek(pending)
                try:
                    c.sock.send(data[: max(1, len(data) // 2)])
                except OSError:
                    pass
            self.log("half a frame, then reset")
            rst_close(c.sock)
        elif how == 2:
            self.log("garbage")
            try:
                c.sock.send(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))))
            except OSError:
                pass
            c.pump(0.05)
            rst_close(c.sock)
        elif how == 3:
            self.log("close with error")
            c.close("amqp:internal-error")
        else:
            self.log("close")
            c.close()


# ---------------------------------------------------------------------------------------------
# MQTT: 3.1.1 and 5 encoded by hand


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">H", len(b)) + b


def packet(first, body):
    return bytes([first]) + varint(len(body)) + body


class MqttClient:
    def __init__(self, port, client_id, v5, clean=True, keepalive=30, will=None,
                 session_expiry=0, acked=None, who=""):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.settimeout(0.02)
        self.v5, self.acked, self.who = v5, acked, who
        self.buf = b""
        self.closed = False
        self.pending_kafka = {}  # packet id -> message id of a QoS 1/2 publish to Kafka
        self.received = []       # (topic, payload)
        self.connack = None
        self.answer = True       # acknowledge what arrives
        self.journal = None      # where acknowledgements of Kafka-bound publishes are noted
        flags = 0x02 if clean else 0
        payload = mstr(client_id)
        if will:
            topic, msg, qos, retain, delay = will
            flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
            if v5:
                payload += varint(5) + b"\x18" + struct.pack(">I", delay)
            payload += mstr(topic) + mstr(msg)
        props = b""
        if v5:
            p = b"\x11" + struct.pack(">I", session_expiry) if session_expiry else b""
            props = varint(len(p)) + p
        body = mstr("MQTT") + bytes([5 if v5 else 4, flags]) + struct.pack(">H", keepalive)
        self.write(packet(0x10, body + props + payload))

    def write(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True

    # Packet ids from one counter for every client: a session outlives its connections (and
    # client ids are shared), and a QoS 2 id still unreleased in the session marks a duplicate
    # (MQTT-4.3.3), which the router must acknowledge without delivering it again.
    _pid_lock = threading.Lock()
    _next_pid = 0

    def pid(self):
        with MqttClient._pid_lock:
            MqttClient._next_pid = MqttClient._next_pid % 65535 + 1
            return MqttClient._next_pid

    def props(self):
        return b"\x00" if self.v5 else b""

    def subscribe(self, f, qos, no_local=False):
        opts = qos | (0x04 if no_local and self.v5 and not f.startswith("$share/") else 0)
        self.write(packet(0x82, struct.pack(">H", self.pid()) + self.props() + mstr(f) +
                          bytes([opts])))

    def unsubscribe(self, f):
        self.write(packet(0xA2, struct.pack(">H", self.pid()) + self.props() + mstr(f)))

    def publish(self, topic, payload, qos, retain=False, kafka_id=None):
        var = mstr(topic)
        if qos:
            p = self.pid()
            var += struct.pack(">H", p)
            if kafka_id:
                self.pending_kafka[p] = kafka_id
        self.write(packet(0x30 | (qos << 1) | (1 if retain else 0),
                          var + self.props() + payload.encode()))

    def disconnect(self, with_will=False):
        if self.v5 and with_will:
            self.write(packet(0xE0, b"\x04\x00"))  # 0x04: disconnect with will message
        else:
            self.write(packet(0xE0, b""))

    def pump(self, seconds):
        end = time.time() + seconds
        while not self.closed:
            try:
                data = self.sock.recv(1 << 16)
                if not data:
                    self.closed = True
                    break
                self.buf += data
                self._parse()
            except socket.timeout:
                if time.time() >= end:
                    break
            except OSError:
                self.closed = True

    def _parse(self):
        while len(self.buf) >= 2:
            n, mult, i = 0, 1, 1
            while True:
                if i >= len(self.buf):
                    return
                b = self.buf[i]
                n += (b & 0x7F) * mult
                mult *= 128
                i += 1
                if not b & 0x80:
                    break
            if len(self.buf) < i + n:
                return
            first, body = self.buf[0], self.buf[i:i + n]
            self.buf = self.buf[i + n:]
            self._packet(first, body)

    def _packet(self, first, body):
        kind = first >> 4
        if kind == 2:
            self.connack = body[1] if len(body) > 1 else 0
        elif kind == 3:
            qos = (first >> 1) & 3
            tl = struct.unpack(">H", body[:2])[0]
            topic = body[2:2 + tl].decode(errors="replace")
            pos = 2 + tl
            pid = None
            if qos:
                pid = struct.unpack(">H", body[pos:pos + 2])[0]
                pos += 2
            if self.v5:
                plen, mult = 0, 1
                while True:
                    b = body[pos]
                    pos += 1
                    plen += (b & 0x7F) * mult
                    mult *= 128
                    if not b & 0x80:
                        break
                pos += plen
            self.received.append((topic, body[pos:]))
            if self.answer and qos == 1:
                self.write(packet(0x40, struct.pack(">H", pid)))
            elif self.answer and qos == 2:
                self.write(packet(0x50, struct.pack(">H", pid)))
        elif kind in (4, 5):  # PUBACK / PUBREC for our publishes
            pid = struct.unpack(">H", body[:2])[0]
            reason = body[2] if len(body) > 2 else 0
            mid = self.pending_kafka.pop(pid, None)
            if mid and reason < 0x80 and self.acked:
                self.acked.add(mid, "MQTT %d %s reason 0x%02x" % (5 if self.v5 else 4,
                                                                 "PUBACK" if kind == 4 else "PUBREC",
                                                                 reason))
            if mid and self.journal:
                self.journal.add(self.who, "%s %s reason 0x%02x" % (
                    "PUBACK" if kind == 4 else "PUBREC", mid, reason))
            if kind == 5:
                self.write(packet(0x62, struct.pack(">H", pid)))
        elif kind == 6:  # PUBREL for a QoS 2 message to us
            self.write(packet(0x70, body[:2]))
        elif kind == 14:
            self.closed = True


class MqttChaos(ChaosClient):
    def __init__(self, index, ctx):
        super().__init__("mqtt%d" % index, ctx.seed * 1000 + 500 + index, ctx)

    def session(self):
        rng, ctx = self.rng, self.ctx
        v5 = rng.random() < 0.5
        # A few ids are shared by all MQTT clients: connecting with one takes its session over.
        cid = ("shared-%d" % rng.randrange(3)) if rng.random() < 0.3 else \
            "%s-%d" % (self.who, rng.randrange(4))
        clean = rng.random() < 0.5
        keepalive = rng.choice([1, 2, 30, 60])
        will = None
        if rng.random() < 0.4:
            will = (rng.choice(["sensors/will", "multicast/wills", "telemetry/will"]),
                    "will of " + cid, rng.randrange(3), rng.random() < 0.3, rng.randrange(3))
        expiry = rng.choice([0, 1, 5])
        c = self.connect(lambda: MqttClient(ctx.ports["mqtt"], cid, v5, clean, keepalive, will,
                                            session_expiry=expiry, acked=ctx.acked, who=self.who))
        if not c:
            return
        c.answer = rng.random() < 0.85
        c.journal = ctx.journal
        self.log("connect %s v%d clean=%d keepalive=%d will=%s" % (cid, 5 if v5 else 4, clean,
                                                                   keepalive, bool(will)))
        c.pump(0.05)
        lifetime = time.time() + rng.uniform(0.2, 5)
        last_sent = time.time()
        while time.time() < min(lifetime, ctx.deadline) and not c.closed:
            action = rng.randrange(100)
            if action < 15:
                f = rng.choice(MQTT_FILTERS)
                c.subscribe(f, rng.randrange(3), no_local=rng.random() < 0.2)
                self.log("subscribe %s" % f)
            elif action < 20:
                c.unsubscribe(rng.choice(MQTT_FILTERS))
                self.log("unsubscribe")
            elif action < 60:
                topic = rng.choice(MQTT_TOPICS)
                qos = rng.randrange(3)
                retain = rng.random() < 0.1
                self.sent += 1
                mid = "%s-%d" % (self.who, self.sent)
                kafka = topic.startswith("telemetry/") and qos > 0
                c.publish(topic, mid, qos, retain=retain, kafka_id=mid if kafka else None)
                self.log("publish %s to %s qos %d%s" % (mid, topic, qos, " retain" if retain else ""))
            elif action < 62:
                c.publish(rng.choice(MQTT_TOPICS), "", 0, retain=True)  # deletes a retained one
                self.log("delete retained")
            elif action < 64 and keepalive <= 2:
                self.log("silent past the keep-alive")
                c.pump(keepalive * 1.5 + 1)
                break
            elif action < 66:
                break
            if time.time() - last_sent > keepalive / 2:
                c.write(packet(0xC0, b""))
                last_sent = time.time()
            c.pump(rng.uniform(0, 0.03))
        how = rng.randrange(5)
        if c.closed:
            self.log("closed by the router")
            c.sock.close()
        elif how == 0:
            self.log("drop (reset)")
            rst_close(c.sock)
        elif how == 1:
            self.log("garbage")
            c.write(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 32))))
            c.pump(0.05)
            rst_close(c.sock)
        elif how == 2:
            self.log("half a packet, then reset")
            c.write(bytes([0x32, 0x40, 0x00]))
            rst_close(c.sock)
        else:
            with_will = v5 and rng.random() < 0.3
            self.log("disconnect%s" % (" with will" if with_will else ""))
            c.disconnect(with_will)
            c.pump(0.02)
            c.sock.close()


# ---------------------------------------------------------------------------------------------
# The run


class Context:
    pass


def metrics(router):
    status, text = router.http("/metrics")
    if status != 200:
        return None
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                values[name] = float(value)
            except ValueError:
                pass
    return values


BASELINE_SERIES = ['trestle_connections{protocol="amqp"}', 'trestle_connections{protocol="mqtt"}',
                   "trestle_links", "trestle_addresses", 'trestle_mqtt_sessions{state="connected"}',
                   'trestle_mqtt_sessions{state="offline"}']


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class KafkaMock:
    def __init__(self, path):
        self.p = subprocess.Popen([path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        assert line.startswith("bootstrap "), line
        self.bootstrap = line.split()[1]
        self.seq = 0
        self.lock = threading.Lock()

    def command(self, cmd):
        with self.lock:
            self.seq += 1
            self.p.stdin.write("%d %s\n" % (self.seq, cmd))
            self.p.stdin.flush()
            while True:
                line = self.p.stdout.readline()
                if not line or line.startswith("done %d" % self.seq):
                    return

    def stop(self):
        self.p.stdin.close()
        self.p.wait(10)


def config(ctx, bootstrap, broker_port):
    return """router {
    id: R.chaos
}
listener {
    name: amqp
    host: 127.0.0.1
    port: 0
    linkCapacity: 20
}
mqttListener {
    name: mqtt
    host: 127.0.0.1
    port: 0
    maxSessionExpirySeconds: 3
}
httpListener {
    name: http
    host: 127.0.0.1
    port: 0
}
connector {
    name: broker
    host: 127.0.0.1
    port: %d
    role: route-container
}
linkRoute {
    prefix: queue
    direction: in
    connection: broker
}
linkRoute {
    prefix: queue
    direction: out
    connection: broker
}
address {
    prefix: closest
    distribution: closest
}
address {
    prefix: multicast
    distribution: multicast
}
address {
    prefix: balanced
    distribution: balanced
}
kafka {
    bootstrapServers: %s
}
kafkaRoute {
    name: telemetry
    pattern: telemetry/#
    topic: %s
}
""" % (broker_port, bootstrap, KAFKA_TOPIC)


def fresh_routing(ctx):
    """A fresh client still routes AMQP->AMQP, MQTT->MQTT and MQTT->Kafka->AMQP."""
    problems = []
    port = ctx.ports["amqp"]
    a = AmqpClient(port, "fresh-amqp")
    r = a.receiver("closest/fresh", credit=10)
    k = a.receiver("telemetry/fresh", credit=10)
    s = a.sender("closest/fresh")
    wait_for(lambda: a.pump(0.05) or s.credit > 0, 20, "credit for a fresh AMQP sender")
    a.send(s, "fresh amqp")
    wait_for(lambda: a.pump(0.05) or ("fresh amqp" in [b for _, b in a.received]), 20,
             "AMQP -> AMQP")
    sub = MqttClient(ctx.ports["mqtt"], "fresh-sub", v5=True)
    sub.subscribe("fresh/mqtt", 1)
    sub.pump(0.3)
    pub = MqttClient(ctx.ports["mqtt"], "fresh-pub", v5=False)
    pub.pump(0.1)
    pub.publish("fresh/mqtt", "fresh mqtt", 1)
    try:
        wait_for(lambda: sub.pump(0.05) or any(p == b"fresh mqtt" for _, p in sub.received), 20,
                 "MQTT -> MQTT")
    except AssertionError as e:
        problems.append(str(e))
    acked = Acked()
    pub.acked = acked
    pub.publish("telemetry/fresh", "fresh kafka", 1, kafka_id="fresh kafka")
    try:
        wait_for(lambda: pub.pump(0.05) or "fresh kafka" in acked.ids, 30, "Kafka's PUBACK")
        wait_for(lambda: a.pump(0.05) or ("fresh kafka" in [b for _, b in a.received]), 30,
                 "MQTT -> Kafka -> AMQP")
    except AssertionError as e:
        problems.append(str(e))
    for c in (sub, pub):
        c.disconnect()
        c.sock.close()
    a.close()
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trestled", required=True)
    ap.add_argument("--kafka-mock", required=True)
    ap.add_argument("--broker", required=True)
    ap.add_argument("--trestle-stat", required=True)
    ap.add_argument("--trestle-manage", required=True)
    ap.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--clients", type=int, default=6, help="AMQP clients; as many MQTT ones")
    ap.add_argument("--rss-slack-mb", type=float, default=64,
                    help="how far above its baseline RSS may end (ASan builds grow more)")
    ap.add_argument("--linger", type=float, default=0,
                    help="after a failure, keep the router up this many seconds to look at it")
    args = ap.parse_args()
    print("chaos: seed %d, %d s, %d AMQP + %d MQTT clients" % (args.seed, args.seconds,
                                                              args.clients, args.clients))
    sys.stdout.flush()

    ctx = Context()
    ctx.seed = args.seed
    ctx.journal = Journal()
    ctx.acked = Acked()
    kafka = KafkaMock(args.kafka_mock)
    kafka.command("topic %s 4" % KAFKA_TOPIC)
    broker_port = free_port()
    broker = subprocess.Popen([args.broker, "127.0.0.1", str(broker_port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ)
    # ASan keeps 256 MB of freed memory by default: that, not the router, would be measured.
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=16"
    router = Trestled(args.trestled, config(ctx, kafka.bootstrap, broker_port), env=env)
    failures = []
    threads = []
    try:
        ctx.ports = router.start(["amqp", "mqtt", "http"])
        wait_for(lambda: router.http("/readyz")[0] == 200, 30, "/readyz")
        wait_for(lambda: "assigned topic" in router.log(), 30, "the Kafka route's partitions")
        wait_for(lambda: (metrics(router) or {}).get('trestle_connections{protocol="amqp"}') == 1,
                 30, "the connector to the broker")
        baseline = metrics(router)
        rss0 = router.rss_kb()
        ctx.deadline = time.time() + args.seconds
        threads = [AmqpChaos(i, ctx) for i in range(args.clients)] + \
                  [MqttChaos(i, ctx) for i in range(args.clients)]
        for t in threads:
            t.start()
        # Meanwhile: management queries all along, and the Kafka broker down and up.
        stat = [args.trestle_stat, "-b", "127.0.0.1:%d" % ctx.ports["amqp"]]
        views = [["-c"], ["-l"], ["-a"], ["--mqtt"], ["--kafka"], ["--retained"], ["-g"]]
        rng = random.Random(args.seed)
        next_outage = time.time() + rng.uniform(5, 15)
        broker_down_until = 0
        manage = [args.trestle_manage, "-b", "127.0.0.1:%d" % ctx.ports["amqp"]]
        runtime = {"address": False, "linkRoute": False}  # created at runtime, now
        changes = [0, 0]  # runtime changes made, refused
        while time.time() < ctx.deadline:
            if rng.random() < 0.15:
                kind = rng.choice(sorted(runtime))
                if runtime[kind]:
                    cmd = ["delete", "--type=" + kind, "--name=chaos-" + kind]
                elif kind == "address":
                    cmd = ["create", "--type=address", "--name=chaos-address", "prefix=chaos",
                           "distribution=" + rng.choice(["closest", "balanced", "multicast"])]
                else:
                    cmd = ["create", "--type=linkRoute", "--name=chaos-linkRoute", "prefix=rq",
                           "direction=" + rng.choice(["in", "out"]), "connection=broker"]
                r = subprocess.run(manage + cmd, capture_output=True, text=True, timeout=30)
                if r.returncode == 0:
                    runtime[kind] = not runtime[kind]
                changes[r.returncode != 0] += 1
                ctx.journal.add("mgmt", "trestle-manage %s -> %d" % (" ".join(cmd), r.returncode))
            view = rng.choice(views)
            r = subprocess.run(stat + view, capture_output=True, text=True, timeout=30)
            ctx.journal.add("mgmt", "trestle-stat %s -> %d" % (" ".join(view), r.returncode))
            if not router.alive():
                break
            now = time.time()
            if broker_down_until and now >= broker_down_until:
                kafka.command("up 1")
                ctx.journal.add("kafka", "broker up")
                broker_down_until = 0
                next_outage = now + rng.uniform(8, 20)
            elif not broker_down_until and now >= next_outage:
                kafka.command("down 1")
                ctx.journal.add("kafka", "broker down")
                broker_down_until = now + rng.uniform(2, 6)
            time.sleep(0.2)  # the pace of the management queries
        if broker_down_until:
            kafka.command("up 1")
            ctx.journal.add("kafka", "broker up")
        for t in threads:
            t.join(30)
            if t.is_alive():
                failures.append("%s did not finish" % t.who)
            elif t.error:
                failures.append("client error " + t.error)
        print("chaos: clients done; %d messages acknowledged to Kafka; %d runtime address / "
              "link route changes (%d refused)" % (len(ctx.acked.ids), changes[0], changes[1]))
        sys.stdout.flush()

        if not router.alive():
            failures.append("trestled died")
        else:
            # Back to the baseline once sessions expire and wills fire (seconds, not minutes).
            def at_baseline():
                m = metrics(router)
                return m and all(m.get(k) == baseline.get(k) for k in BASELINE_SERIES)
            try:
                wait_for(at_baseline, 60, "connections, links, addresses and sessions back at "
                         "the baseline", interval=0.5)
            except AssertionError as e:
                m = metrics(router) or {}
                failures.append("%s: %s" % (e, {k: (baseline.get(k), m.get(k))
                                                for k in BASELINE_SERIES}))
            routing = fresh_routing(ctx)
            if routing:
                out = subprocess.run(stat + ["--kafka"], capture_output=True, text=True,
                                     timeout=30).stdout
                failures += routing + ["trestle-stat --kafka after it:\n" + out]
            try:
                wait_for(lambda: router.http("/readyz")[0] == 200, 60, "/readyz after the run")
            except AssertionError as e:
                failures.append(str(e))
            rss = router.rss_kb()
            print("chaos: RSS %.1f MB at the baseline, %.1f MB after the run" % (rss0 / 1024,
                                                                              rss / 1024))
            if rss > rss0 + args.rss_slack_mb * 1024:
                failures.append("RSS %.1f MB is more than %.0f MB above its baseline %.1f MB" % (
                    rss / 1024, args.rss_slack_mb, rss0 / 1024))
            # Every acknowledged Kafka-bound message is in the topic.
            if ctx.acked.ids:
                def missing():
                    out = subprocess.run(["kcat", "-b", kafka.bootstrap, "-C", "-t", KAFKA_TOPIC,
                                          "-e", "-q", "-f", "%s\\n"], capture_output=True,
                                         timeout=60).stdout.decode(errors="replace")
                    present = set(re.findall(r"(?:amqp|mqtt)\d+-\d+", out))
                    present.update(x for x in ("fresh kafka",) if x in out)
                    return sorted(ctx.acked.ids - present)
                lost = missing()
                if lost:
                    dump = ctx.journal.dump().splitlines()
                    print("\n".join(l for l in dump if any(x in l for x in lost[:20])))
                    failures.append("%d acknowledged messages are not in topic %s: %s" % (
                        len(lost), KAFKA_TOPIC, [(x, ctx.acked.how.get(x)) for x in lost[:20]]))
    except Exception as e:  # the harness's own failure is reported with the journal too
        failures.append("%s: %s" % (type(e).__name__, e))
    finally:
        ctx.deadline = 0
        if failures and args.linger:
            print("chaos: lingering %g s; the router's ports: %s" % (args.linger, ctx.ports))
            sys.stdout.flush()
            time.sleep(args.linger)  # for a person to look at the failed router
        alive = router.alive()
        code = router.stop()
        report = router.sanitizer_report()
        log = router.log()
        router.cleanup()
        broker.terminate()
        broker.wait(10)
        kafka.stop()
    if alive and code != 0:
        failures.append("trestled did not stop gracefully (exit %s)" % code)
    if report:
        failures.append("sanitizer report:\n" + report)
    if not alive:
        failures.append("trestled died; its log ends:\n" + log[-6000:])
    if failures:
        kept = os.path.abspath("chaos-trestled-%d.log" % args.seed)
        with open(kept, "w") as f:
            f.write(log)
        print("chaos: FAILED with seed %d (replay: --seed %d --seconds %g --clients %d); the "
              "router's whole log: %s" % (args.seed, args.seed, args.seconds, args.clients, kept))
        for f in failures:
            print("  - " + f)
        print("last actions:\n" + ctx.journal.dump())
        return 1
    print("chaos: passed with seed %d" % args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
