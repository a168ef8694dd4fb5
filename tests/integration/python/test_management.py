"""$management as stock qdstat/qdmanage drive it (docs/operations.md), with
Python Proton (Debian's python3-qpid-proton): every request, malformed ones included, gets a
response carrying a status code, and the router keeps serving.

Run: /usr/bin/python3 test_management.py /path/to/trestled
"""
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

from proton import Message, symbol, ulong
from proton.utils import BlockingConnection

TRESTLED = sys.argv.pop(1) if len(sys.argv) > 1 else os.environ.get("TRESTLED", "trestled")


class ManagementRequests(unittest.TestCase):
    def setUp(self):
        self.conf = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False)
        self.conf.write("router {\n    id: Rmgmt\n}\nlistener {\n    name: amqp\n"
                        "    host: 127.0.0.1\n    port: 0\n}\n"
                        "address {\n    prefix: closest\n    distribution: closest\n}\n")
        self.conf.close()
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        self.router = subprocess.Popen([TRESTLED, "--config", self.conf.name],
                                       stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        self.port = None
        while time.time() < deadline and self.port is None and self.router.poll() is None:
            with open(self.log.name) as f:
                m = re.search(r"listening on [^ ]*:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.02)  # polling the log file for the port line, bounded by deadline
        self.assertIsNotNone(self.port, "router did not report its port")
        # As qdstat: no SASL layer at all, a dynamic reply address, requests unsettled.
        self.conn = BlockingConnection("127.0.0.1:%d" % self.port, timeout=5, sasl_enabled=False)
        self.receiver = self.conn.create_receiver(None, dynamic=True)
        self.sender = self.conn.create_sender("$management")
        self.reply_to = self.receiver.remote_source.address
        self.correlation = 0

    def tearDown(self):
        self.conn.close()
        self.router.terminate()
        self.assertEqual(self.router.wait(10), 0)
        self.log.close()
        os.unlink(self.log.name)
        os.unlink(self.conf.name)

    def request(self, properties, body=None):
        self.correlation += 1
        m = Message(reply_to=self.reply_to, correlation_id=str(self.correlation),
                    properties=properties, body=body if body is not None else {})
        self.sender.send(m)  # blocks until settled; raises unless accepted
        r = self.receiver.receive(timeout=5)
        self.assertEqual(r.correlation_id, str(self.correlation))
        self.assertEqual(r.address, self.reply_to)
        return r.properties["statusCode"], r.properties["statusDescription"], r.body

    def test_qdstat_g_sequence(self):
        code, desc, body = self.request({"operation": "GET-MGMT-NODES", "type": "org.amqp.management",
                                         "name": "self"})
        self.assertEqual((code, desc, body), (200, "OK", []))
        code, _, body = self.request(
            {"operation": "QUERY", "type": "org.amqp.management", "name": "self",
             "entityType": "org.apache.qpid.dispatch.router", "offset": 0, "count": 500},
            {"attributeNames": []})
        self.assertEqual(code, 200)
        row = dict(zip(body["attributeNames"], body["results"][0]))
        for required in ("id", "version", "mode", "area", "linkRouteCount", "autoLinkCount",
                         "linkCount", "nodeCount", "addrCount", "connectionCount"):
            self.assertIn(required, row)
        self.assertEqual(row["id"], "Rmgmt")
        self.assertEqual(row["mode"], "standalone")

    def test_query_paging_and_attribute_order(self):
        names = ["name", "distribution", "prefix"]
        code, _, body = self.request(
            {"operation": "QUERY", "entityType": "org.apache.qpid.dispatch.router.config.address",
             "offset": 0, "count": 1}, {"attributeNames": names})
        self.assertEqual(code, 200)
        self.assertEqual(body["attributeNames"], names)
        self.assertEqual(body["results"], [["closest", "closest", "closest"]])
        code, _, body = self.request(
            {"operation": "QUERY", "entityType": "org.apache.qpid.dispatch.router.config.address",
             "offset": 1, "count": 1}, {"attributeNames": names})
        self.assertEqual((code, body["results"]), (200, []))

    def test_get_operations_types_attributes_schema(self):
        code, _, body = self.request({"operation": "GET-OPERATIONS", "entityType": "listener"})
        self.assertEqual(code, 200)
        self.assertEqual(body["org.apache.qpid.dispatch.listener"], ["CREATE", "DELETE", "READ"])
        code, _, body = self.request({"operation": "GET-TYPES"})
        self.assertIn("io.trestle.mqttSession", body)
        self.assertIn("org.apache.qpid.dispatch.router.link", body)
        code, _, body = self.request({"operation": "GET-ATTRIBUTES", "entityType": "router.link"})
        self.assertIn("deliveryCount", body["org.apache.qpid.dispatch.router.link"])
        code, _, body = self.request({"operation": "GET-SCHEMA"})
        attrs = body["entityTypes"]["org.apache.qpid.dispatch.listener"]["attributes"]
        self.assertEqual(attrs["linkCapacity"]["default"], 250)

    def test_malformed_requests_get_status_codes(self):
        cases = [
            ({}, 400, "operation"),                                     # no operation at all
            ({"operation": "FROB"}, 501, "FROB"),                       # unknown operation
            ({"operation": "QUERY", "entityType": "nope"}, 400, "No such entity type"),
            ({"operation": "QUERY", "entityType": "router", "offset": -1}, 400, "offset"),
            ({"operation": "READ", "type": "listener"}, 400, "name or an identity"),
            ({"operation": "READ", "type": "listener", "name": "missing"}, 404, "missing"),
            ({"operation": "UPDATE", "type": "router.config.address", "name": "closest"}, 501,
             "cannot be updated"),
            ({"operation": "DELETE", "type": "router", "name": "x"}, 404, "No router"),
            ({"operation": "CREATE", "type": "address", "name": "bad"}, 400, "prefix"),
        ]
        for props, want, text in cases:
            code, desc, _ = self.request(props)
            self.assertEqual(code, want, "%r -> %s %s" % (props, code, desc))
            self.assertIn(text, desc)
        # attributeNames of the wrong type, a body that is not a map for CREATE
        code, desc, _ = self.request({"operation": "QUERY", "entityType": "router"},
                                     {"attributeNames": 7})
        self.assertEqual(code, 400, desc)
        code, desc, _ = self.request({"operation": "CREATE", "type": "address", "name": "l"},
                                     ["not", "a", "map"])
        self.assertEqual(code, 400, desc)
        # still serving
        code, _, _ = self.request({"operation": "GET-MGMT-NODES"})
        self.assertEqual(code, 200)

    def test_create_read_update_delete(self):
        code, desc, body = self.request({"operation": "CREATE", "type": "address", "name": "rt"},
                                        {"prefix": "rt", "distribution": "multicast"})
        self.assertEqual((code, desc), (201, "Created"))
        self.assertEqual(body["distribution"], "multicast")
        code, _, body = self.request({"operation": "READ", "type": "address",
                                      "identity": body["identity"]})
        self.assertEqual((code, body["prefix"]), (200, "rt"))
        code, desc, body = self.request({"operation": "DELETE", "type": "address", "name": "rt"})
        self.assertEqual((code, desc, body), (204, "No Content", {}))
        code, _, _ = self.request({"operation": "READ", "type": "address", "name": "rt"})
        self.assertEqual(code, 404)


if __name__ == "__main__":
    unittest.main(verbosity=2)
