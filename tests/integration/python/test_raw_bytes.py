"""AMQP->AMQP forwarding must not decode and re-encode messages (docs/architecture.md).

Python Proton's low-level API sends and receives raw delivery bytes, which Proton C++ cannot.
The message below uses valid but non-canonical encodings (str32/map32/list32 where a canonical
encoder would pick the 8-bit forms, plus a footer): a router that decoded and re-encoded it would
hand the receiver different bytes.

Run: /usr/bin/python3 test_raw_bytes.py /path/to/trestled
"""
import os
import struct
import sys
import unittest

from proton import Delivery
from proton.reactor import Container

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trestled import Trestled  # noqa: E402

TRESTLED = sys.argv.pop(1) if len(sys.argv) > 1 else os.environ.get("TRESTLED", "trestled")


def str32(s):
    b = s.encode()
    return b"\xb1" + struct.pack(">I", len(b)) + b


def sym32(s):
    b = s.encode()
    return b"\xb3" + struct.pack(">I", len(b)) + b


def list32(*items):
    body = b"".join(items)
    return b"\xd0" + struct.pack(">II", len(body) + 4, len(items)) + body


def map32(*pairs):
    body = b"".join(k + v for k, v in pairs)
    return b"\xd1" + struct.pack(">II", len(body) + 4, 2 * len(pairs)) + body


def section(code, value):
    return b"\x00\x53" + bytes([code]) + value


def message(to):
    header = section(0x70, list32(b"\x41"))  # durable = true
    annotations = section(0x72, map32((sym32("x-opt-kept"), str32("as is"))))
    properties = section(0x73, list32(b"\x40", b"\x40", str32(to)))  # message-id, user-id, to
    app = section(0x74, map32((str32("k"), str32("v"))))
    body = section(0x77, str32("payload that must not be re-encoded"))
    footer = section(0x78, map32((sym32("x-opt-footer"), b"\x54\x07")))
    return header + annotations + properties + app + body + footer


class Raw:
    """Sends raw bytes on one link and records raw bytes arriving on another."""

    def __init__(self, url, send_address, receive_address, payload):
        self.url, self.send_address, self.receive_address = url, send_address, receive_address
        self.payload = payload
        self.received = None
        self.outcome = None
        self.sent = False

    def on_reactor_init(self, event):
        conn = event.container.connect(self.url)
        self.receiver = event.container.create_receiver(conn, self.receive_address)
        self.receiver.flow(1)
        self.sender = event.container.create_sender(conn, self.send_address)
        self.deadline = event.container.schedule(10, self)

    def on_link_flow(self, event):
        link = event.link
        if link.is_sender and link.credit > 0 and not self.sent:
            self.sent = True
            link.delivery("t1")
            link.send(self.payload)
            link.advance()

    def on_delivery(self, event):
        dlv = event.delivery
        if dlv.link.is_receiver:
            if dlv.readable and not dlv.partial:
                self.received = dlv.link.recv(dlv.pending)
                dlv.update(Delivery.ACCEPTED)
                dlv.settle()
        elif dlv.remote_state:
            self.outcome = dlv.remote_state
            dlv.settle()
            self.deadline.cancel()
            event.connection.close()

    def on_timer_task(self, event):
        event.container.stop()


class RawBytes(unittest.TestCase):
    def setUp(self):
        self.router = Trestled(TRESTLED, "router {\n    id: Rpy\n}\nlistener {\n    name: amqp\n"
                                         "    host: 127.0.0.1\n    port: 0\n}\n")
        self.port = self.router.start(["amqp"])["amqp"]

    def tearDown(self):
        code = self.router.stop()
        self.router.cleanup()
        self.assertEqual(code, 0)

    def run_raw(self, send_address, to):
        payload = message(to)
        raw = Raw("127.0.0.1:%d" % self.port, send_address, "raw/out", payload)
        Container(raw).run()
        return payload, raw

    def test_targeted_link_forwards_bytes_unchanged(self):
        payload, raw = self.run_raw("raw/out", "ignored-on-a-targeted-link")
        self.assertEqual(raw.outcome, Delivery.ACCEPTED)
        self.assertEqual(raw.received, payload)

    def test_anonymous_relay_forwards_bytes_unchanged(self):
        payload, raw = self.run_raw(None, "raw/out")  # routed by the str32-encoded 'to'
        self.assertEqual(raw.outcome, Delivery.ACCEPTED)
        self.assertEqual(raw.received, payload)


if __name__ == "__main__":
    unittest.main()
