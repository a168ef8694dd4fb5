"""The MQTT chaos client: MQTT 3.1.1 and 5 encoded by hand (chaos.py runs it)."""
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
from chaos_common import *  # noqa: E402,F401,F403

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
                 session_expiry=0, acked=None, who="", user=None, password=None, sock=None):
        # sock: an already connected socket (a TLS one, say)
        self.sock = sock or socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.settimeout(0.02)
        self.v5, self.acked, self.who = v5, acked, who
        self.buf = b""
        self.closed = False
        self.pending_kafka = {}  # packet id -> message id of a QoS 1/2 publish to Kafka
        self.received = []       # (topic, payload)
        self.connack = None
        self.subacks = []        # SUBACK reason codes, as they came
        self.pubacks = {}        # packet id -> PUBACK / PUBREC reason code
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
        if user is not None:
            flags |= 0x80
            payload += mstr(user)
        if password is not None:
            flags |= 0x40
            payload += mstr(password)
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
        elif kind == 9:  # SUBACK
            pos = 2
            if self.v5 and len(body) > 2:
                pos += 1 + body[2]  # property length (short here: one byte)
            self.subacks.extend(body[pos:])
        elif kind in (4, 5):  # PUBACK / PUBREC for our publishes
            pid = struct.unpack(">H", body[:2])[0]
            reason = body[2] if len(body) > 2 else 0
            self.pubacks[pid] = reason
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
