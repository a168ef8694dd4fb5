"""Clients that go away with deliveries unsettled never take the router down (issue: the
README's first example crashed trestled with SIGSEGV when its connection closed).

Each test drives a real trestled over real sockets, then checks that it is still alive, still
routes for a fresh client, stops gracefully (exit code 0) and logged no sanitizer report.

Run: /usr/bin/python3 test_client_disconnects.py /path/to/trestled
"""
import os
import sys
import unittest

from proton import Message
from proton.handlers import MessagingHandler
from proton.reactor import AtMostOnce, Container
from proton import Timeout
from proton.utils import BlockingConnection

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trestled import Trestled  # noqa: E402

TRESTLED = sys.argv.pop(1) if len(sys.argv) > 1 else os.environ.get("TRESTLED", "trestled")

CONFIG = """router {
    id: R.disconnects
}
listener {
    name: amqp
    host: 127.0.0.1
    port: 0
}
address {
    prefix: multicast
    distribution: multicast
}
"""


class ClientDisconnects(unittest.TestCase):
    def setUp(self):
        self.router = Trestled(TRESTLED, CONFIG)
        self.url = "127.0.0.1:%d" % self.router.start(["amqp"])["amqp"]

    def tearDown(self):
        alive = self.router.alive()
        code = self.router.stop()
        report = self.router.sanitizer_report()
        log = self.router.log()
        self.router.cleanup()
        self.assertTrue(alive, "trestled died:\n" + log[-4000:])
        self.assertEqual(code, 0, "trestled did not stop gracefully:\n" + log[-4000:])
        self.assertIsNone(report)

    def assert_routes(self):
        c = BlockingConnection(self.url, timeout=10)
        r = c.create_receiver("multicast/fresh")
        c.create_sender("multicast/fresh", options=AtMostOnce()).send(Message(body="still here"))
        self.assertEqual(r.receive(timeout=10).body, "still here")
        c.close()

    def unsettled_send_times_out(self, sender_conn, receiver_conn, address):
        r = receiver_conn.create_receiver(address)
        s = sender_conn.create_sender(address)
        # Unsettled: the router waits for the receiver's outcome, which never comes before send()
        # gives up (qdrouterd does the same).
        with self.assertRaises(Timeout):
            s.send(Message(body="hello, Trestle"), timeout=1)
        return r

    def test_readme_example_receiver_and_sender_on_one_connection(self):
        c = BlockingConnection(self.url, timeout=10)
        self.unsettled_send_times_out(c, c, "multicast/hello")
        c.close()
        self.assertTrue(self.router.alive())
        self.assert_routes()

    def test_readme_example_on_two_connections_sender_closing_first(self):
        rc, sc = BlockingConnection(self.url, timeout=10), BlockingConnection(self.url, timeout=10)
        self.unsettled_send_times_out(sc, rc, "multicast/hello")
        sc.close()
        rc.close()
        self.assert_routes()

    def test_readme_example_on_two_connections_receiver_closing_first(self):
        rc, sc = BlockingConnection(self.url, timeout=10), BlockingConnection(self.url, timeout=10)
        self.unsettled_send_times_out(sc, rc, "multicast/hello")
        rc.close()
        sc.close()
        self.assert_routes()

    def test_balanced_with_one_receiver_that_never_settles(self):
        for same_connection in (False, True):
            handler = BalancedScenario(self.url, same_connection)
            Container(handler).run()
            self.assertEqual(handler.failure, None)
            self.assertEqual(handler.a_got + handler.b_got, 50)
            self.assertGreater(handler.a_got, 0, "A attached first: it gets the first message")
            self.assertTrue(self.router.alive())
        self.assert_routes()


class BalancedScenario(MessagingHandler):
    """Receiver A attaches first and never settles; receiver B accepts; 50 messages to a balanced
    address, one at a time; then both connections close normally."""

    def __init__(self, url, same_connection):
        super().__init__(auto_accept=False)
        self.url, self.same_connection = url, same_connection
        self.a_got = self.b_got = self.sent = 0
        self.failure = None

    def on_start(self, event):
        self.ca = event.container.connect(self.url)
        self.a = event.container.create_receiver(self.ca, "balanced/q", name="A")
        self.timer = event.container.schedule(20, self)

    def on_link_opened(self, event):
        if event.receiver and event.receiver.name == "A" and not hasattr(self, "cb"):
            c = event.container
            self.cb = c.connect(self.url)
            self.b = c.create_receiver(self.cb, "balanced/q", name="B")
            self.s = c.create_sender(self.ca if self.same_connection else self.cb, "balanced/q")

    def on_sendable(self, event):
        # One at a time: the next once the previous reached a receiver.
        if self.sent == self.a_got + self.b_got and self.sent < 50:
            event.sender.send(Message(body=self.sent))
            self.sent += 1

    def on_message(self, event):
        if event.receiver.name == "B":  # (wrappers are not identical objects)
            self.accept(event.delivery)
            self.b_got += 1
        else:
            self.a_got += 1
        if self.a_got + self.b_got == 50:
            self.timer.cancel()
            self.ca.close()
            self.cb.close()
        elif self.s.credit:
            self.s.send(Message(body=self.sent))
            self.sent += 1

    def on_timer_task(self, event):
        self.failure = "timed out with %d + %d of 50 received" % (self.a_got, self.b_got)
        event.container.stop()


if __name__ == "__main__":
    unittest.main()
