"""The AMQP chaos client: Proton's engine over a socket of its own (chaos.py runs it)."""
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
