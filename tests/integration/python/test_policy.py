"""Policy (qdrouterd's policy and vhost; docs/security.md, "Policy") on every protocol: AMQP
attaches, anonymous senders, sessions, sizes and connection limits with Python Proton; MQTT
SUBSCRIBE, PUBLISH, wills and retained messages with mosquitto_pub/mosquitto_sub and a raw
MQTT client that reads every reason code; $management reads allowed and writes denied; vhosts
created and updated at runtime. Every denial is checked for its specific refusal, for nothing
delivered, and for its count in $management and /metrics.

Run: /usr/bin/python3 test_policy.py TRESTLED TRESTLE_PASSWD TRESTLE_STAT
"""
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import unittest
import urllib.request

from proton import ConnectionException, Delivery, Message
from proton.reactor import AtMostOnce
from proton.utils import BlockingConnection, LinkDetached, SendException

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trestled import Trestled, binaries, wait_for  # noqa: E402

TRESTLED, PASSWD, STAT = binaries(("TRESTLED", "trestled"),
                                   ("TRESTLE_PASSWD", "trestle-passwd"),
                                   ("TRESTLE_STAT", "trestle-stat"))
WORK = None
USERS = {"admin": "admin-pw", "alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}


def setUpModule():
    global WORK
    WORK = tempfile.mkdtemp(prefix="trestle-policy-")
    path = os.path.join(WORK, "users")
    for i, (user, pw) in enumerate(USERS.items()):
        subprocess.run([PASSWD] + (["-c"] if i == 0 else []) + ["-b", path, user, pw],
                       check=True)


def tearDownModule():
    shutil.rmtree(WORK, ignore_errors=True)


CONFIG = """
router {
    id: R.policy
}
userStore {
    name: users
    passwordFile: %(users)s
}
policy {
    maxConnections: 40
    enableVhostPolicy: yes
}
# The default vhost, groups as qdrouterd writes them (a JSON value over several lines).
vhost {
    hostname: $default
    maxConnectionsPerUser: 3
    allowUnknownUser: yes
    groups: {
        "admins": {
            "users": "admin",
            "remoteHosts": "*",
            "sources": "*",
            "targets": "*",
            "allowDynamicSource": true,
            "allowAnonymousSender": true,
            "allowManagementWrite": true
        },
        "operators": {
            "users": ["alice"],
            "remoteHosts": "127.0.0.1",
            "sources": "*",
            "targets": "$management",
            "allowDynamicSource": true
        },
        "devices": {
            "users": "bob",
            "remoteHosts": "127.0.0.1, ::1",
            "sourcePattern": "cmd/${user}/#",
            "targetPattern": "telemetry/${user}/#, will/${user}",
            "allowAnonymousSender": true,
            "maxSenders": 2,
            "maxMessageSize": 1000
        },
        "$default": {
            "remoteHosts": "*",
            "sources": "public*",
            "targets": "public*"
        }
    }
}
vhost {
    hostname: locked
    groups: {"far": {"users": "carol", "remoteHosts": "10.0.0.0-10.255.255.255",
                     "sources": "*", "targets": "*"}}
}
listener {
    name: amqp
    host: 127.0.0.1
    port: 0
    saslMechanisms: PLAIN ANONYMOUS
    allowInsecureAuthentication: yes
}
mqttListener {
    name: mqtt
    host: 127.0.0.1
    port: 0
    allowAnonymous: yes
}
mqttListener {
    name: mqtt-locked
    host: 127.0.0.1
    port: 0
    policyVhost: locked
}
httpListener {
    name: http
    host: 127.0.0.1
    port: 0
}
"""


# --- a raw MQTT client: every reason code as the router sent it ---

def varint(n):
    out = b""
    while True:
        b, n = n % 128, n // 128
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def packet(first, body):
    return bytes([first]) + varint(len(body)) + body


def s16(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


class Mqtt:
    def __init__(self, port, client_id, user=None, password=None, v5=True, will=None):
        self.v5 = v5
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        flags = 0x02
        payload = s16(client_id)
        if will:
            flags |= 0x04
            payload += (b"\x00" if v5 else b"") + s16(will[0]) + s16(will[1])
        if user:
            flags |= 0x80
            payload += s16(user)
        if password:
            flags |= 0x40
            payload += s16(password)
        body = s16("MQTT") + bytes([5 if v5 else 4, flags]) + b"\x00\x3c"
        body += (b"\x00" if v5 else b"") + payload
        self.sock.sendall(packet(0x10, body))
        kind, body = self.read()
        assert kind == 0x20, kind
        self.connack = body[1]

    def read(self):
        """(packet type, body), or (None, b'') once the router closed the connection."""
        def exact(n):
            data = b""
            while len(data) < n:
                chunk = self.sock.recv(n - len(data))
                if not chunk:
                    raise EOFError
                data += chunk
            return data
        try:
            first = exact(1)[0]
            n, shift = 0, 0
            while True:
                b = exact(1)[0]
                n += (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            return first & 0xF0, exact(n)
        except (EOFError, ConnectionResetError):
            return None, b""

    def subscribe(self, filters, packet_id=1):
        body = struct.pack(">H", packet_id) + (b"\x00" if self.v5 else b"")
        for f in filters:
            body += s16(f) + b"\x01"
        self.sock.sendall(packet(0x82, body))
        kind, body = self.read()
        assert kind == 0x90, kind
        return list(body[2 + (1 + body[2] if self.v5 else 0):])

    def publish(self, topic, payload=b"x", qos=1, retain=False, packet_id=7):
        """QoS 1: the PUBACK reason code (None: the connection was closed instead)."""
        body = s16(topic) + (struct.pack(">H", packet_id) if qos else b"")
        body += (b"\x00" if self.v5 else b"") + payload
        self.sock.sendall(packet(0x30 | (qos << 1) | (1 if retain else 0), body))
        if not qos:
            return None
        kind, body = self.read()
        if kind is None:
            return None
        assert kind == 0x40, kind
        return body[2] if len(body) > 2 else 0

    def close(self):
        try:
            self.sock.sendall(packet(0xE0, b"\x00" if self.v5 else b""))
        except OSError:
            pass
        self.sock.close()


class PolicyTest(unittest.TestCase):
    def setUp(self):
        self.router = Trestled(TRESTLED, CONFIG % {"users": os.path.join(WORK, "users")})
        self.ports = self.router.start(["amqp", "mqtt", "mqtt-locked", "http"])
        self.open = []

    def tearDown(self):
        for c in self.open:
            try:
                c.close()
            except Exception:  # noqa: BLE001 - closing what a test left open
                pass
        code = self.router.stop()
        report = self.router.sanitizer_report()
        log = self.router.log()
        self.router.cleanup()
        self.assertEqual(code, 0, "trestled did not stop gracefully:\n" + log[-4000:])
        self.assertIsNone(report)

    def amqp(self, user=None, **kw):
        if user:
            kw.update(user=user, password=USERS[user], allowed_mechs="PLAIN")
        else:
            kw.update(allowed_mechs="ANONYMOUS")
        c = BlockingConnection("amqp://127.0.0.1:%d" % self.ports["amqp"], timeout=10, **kw)
        self.open.append(c)
        return c

    def mqtt(self, client_id, user=None, listener="mqtt", **kw):
        m = Mqtt(self.ports[listener], client_id, user, USERS.get(user), **kw)
        self.open.append(m)
        return m

    def assert_link_refused(self, make, words):
        with self.assertRaises(LinkDetached) as e:
            make()
        self.assertIn("amqp:unauthorized-access", str(e.exception))
        for w in words:
            self.assertIn(w, str(e.exception))

    def manage(self, user, properties, body=None):
        """One $management request; (status code, body)."""
        c = self.amqp(user)
        reply = c.create_receiver(None, dynamic=True)
        c.create_sender("$management", options=AtMostOnce()).send(
            Message(reply_to=reply.remote_source.address, correlation_id="1",
                    properties=properties, body=body if body is not None else {}))
        m = reply.receive(timeout=10)
        c.close()
        return m.properties["statusCode"], m.body

    def vhost_stats(self, name="$default"):
        code, body = self.manage("admin", {"operation": "READ",
                                           "type": "org.apache.qpid.dispatch.vhost",
                                           "name": name})
        self.assertEqual(code, 200, body)
        return body

    def metric(self, pattern):
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.ports["http"],
                                      timeout=10).read().decode()
        m = re.search(pattern, text)
        self.assertIsNotNone(m, pattern + "\n" + text[-3000:])
        return m.group(1)

    # --- AMQP ---

    def test_amqp_sources_and_targets(self):
        bob = self.amqp("bob")
        bob.create_sender("telemetry/bob/temp")           # targetPattern with ${user}
        bob.create_receiver("cmd/bob/reboot")             # sourcePattern
        self.assert_link_refused(lambda: bob.create_sender("telemetry/alice/temp"),
                                 ["target 'telemetry/alice/temp'", "user 'bob'"])
        self.assert_link_refused(lambda: bob.create_receiver("cmd/alice/reboot"),
                                 ["source 'cmd/alice/reboot'"])
        self.assert_link_refused(lambda: bob.create_receiver(None, dynamic=True),
                                 ["dynamic sources"])
        # Users in no group get $default (allowUnknownUser): public* only.
        anon = self.amqp()
        anon.create_sender("public.news")
        self.assert_link_refused(lambda: anon.create_sender("private"), ["target 'private'"])
        self.assert_link_refused(lambda: anon.create_sender(None), ["anonymous senders"])
        stats = self.vhost_stats()
        self.assertEqual(stats["senderDenied"], 3)
        self.assertEqual(stats["receiverDenied"], 2)
        self.assertEqual(stats["perUserDenials"]["bob"], {"sender": 1, "receiver": 2})
        self.assertEqual(stats["perUserDenials"]["anonymous"], {"sender": 2})
        self.assertEqual(self.metric(
            r'trestle_policy_denials_total\{vhost="\$default",user="bob",kind="receiver"\} (\d+)'),
            "2")
        self.assertRegex(self.router.log(), r"link '.*' refused by policy: source "
                         r"'cmd/alice/reboot' is not allowed for user 'bob'")

    def test_amqp_anonymous_sender_each_message(self):
        # The receiver is another process (a BlockingConnection moves only while waited on).
        sub = subprocess.Popen(["mosquitto_sub", "-p", str(self.ports["mqtt"]), "-t",
                                "telemetry/bob/#", "-v", "-C", "1", "-W", "20", "-u", "admin",
                                "-P", USERS["admin"]], stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: sub.poll() is None and (sub.kill(), sub.communicate()))
        wait_for(lambda: "user 'admin'" in self.router.log(), 10, "the subscriber")
        bob = self.amqp("bob")
        s = bob.create_sender(None)
        with self.assertRaises(SendException) as e:
            s.send(Message(address="cmd/bob/1", body="not mine to send"))
        self.assertEqual(e.exception.state, Delivery.REJECTED)
        # user-id must be the connection's user (no allowUserIdProxy in bob's group).
        with self.assertRaises(SendException) as e:
            s.send(Message(address="telemetry/bob/1", body="as alice", user_id=b"alice"))
        self.assertEqual(e.exception.state, Delivery.REJECTED)
        s.send(Message(address="telemetry/bob/1", body="ok", user_id=b"bob"))
        out, _ = sub.communicate(timeout=20)
        self.assertEqual(out.strip(), "telemetry/bob/1 ok")
        self.assertEqual(self.vhost_stats()["messageDenied"], 2)
        self.assertIn("message with user-id 'alice' denied by policy", self.router.log())
        self.assertIn("message to 'cmd/bob/1' denied by policy", self.router.log())

    def test_amqp_limits(self):
        bob = self.amqp("bob")
        bob.create_sender("telemetry/bob/1")
        second = bob.create_sender("telemetry/bob/2")
        self.assert_link_refused(lambda: bob.create_sender("telemetry/bob/3"),
                                 ["sender limit of the policy reached (maxSenders 2)"])
        second.close()
        bob.create_sender("telemetry/bob/3")  # the count went down with the detach
        self.assert_link_refused(lambda: bob.create_sender("telemetry/bob/4"), ["maxSenders 2"])
        # Receivers are counted apart (maxReceivers: qdrouterd's default, no limit here).
        bob.create_receiver("cmd/bob/1")
        self.assertEqual(self.vhost_stats()["senderDenied"], 2)

    def test_amqp_message_size(self):
        admin = self.amqp("admin")
        admin.create_receiver("telemetry/bob/big")
        bob = self.amqp("bob")
        s = bob.create_sender("telemetry/bob/big")
        with self.assertRaises((LinkDetached, SendException, ConnectionException)) as e:
            s.send(Message(body="x" * 4000))
        self.assertIn("message-size-exceeded", str(e.exception) + self.router.log())
        self.assertIn("policy's maxMessageSize (1000 bytes)", self.router.log())
        self.assertEqual(self.vhost_stats()["maxMessageSizeDenied"], 1)

    def test_amqp_connection_limits_and_hosts(self):
        held = [self.amqp("bob") for _ in range(3)]
        with self.assertRaises(ConnectionException) as e:
            self.amqp("bob")
        self.assertIn("amqp:resource-limit-exceeded", str(e.exception))
        self.assertIn("connection limit for user 'bob' reached (3)", str(e.exception))
        held[0].close()
        wait_for(lambda: self.vhost_stats()["connectionsCurrent"] <= 3, 10, "a connection gone")
        self.amqp("bob")  # room again
        # vhost 'locked' admits carol from 10.x only; an unknown vhost falls back to $default.
        with self.assertRaises(ConnectionException) as e:
            self.amqp("carol", virtual_host="locked")
        self.assertIn("amqp:unauthorized-access", str(e.exception))
        self.assertIn("host 127.0.0.1 is not allowed for group 'far'", str(e.exception))
        self.amqp("carol", virtual_host="no-such-vhost").create_sender("public.x")
        self.assertEqual(self.vhost_stats("locked")["connectionsDenied"], 1)
        self.assertEqual(self.vhost_stats()["connectionsDenied"], 1)
        self.assertRegex(self.router.log(), r"AMQP connection from 127\.0\.0\.1:\d+ \(user "
                         r"'carol', vhost 'locked'\) refused by policy")

    # --- $management ---

    def test_management_guarded(self):
        query = {"operation": "QUERY", "type": "org.amqp.management",
                 "entityType": "org.apache.qpid.dispatch.listener"}
        self.assertEqual(self.manage("alice", query)[0], 200)  # reads: the target suffices
        create = {"operation": "CREATE", "type": "org.apache.qpid.dispatch.vhost",
                  "name": "tenant"}
        tenant = {"hostname": "tenant", "groups": {"t": {"users": "carol", "remoteHosts": "*",
                                                         "sources": "t/*", "targets": "t/*"}}}
        code, _ = self.manage("alice", create, tenant)
        self.assertEqual(code, 403)
        self.assertEqual(self.vhost_stats()["managementDenied"], 1)
        self.assertIn("by user 'alice' (vhost '$default') denied", self.router.log())
        # bob's group does not even allow the $management target.
        self.assert_link_refused(lambda: self.amqp("bob").create_sender("$management"),
                                 ["target '$management'"])
        # admin may write: a vhost created at runtime applies to the next connection.
        code, body = self.manage("admin", create, tenant)
        self.assertEqual(code, 201, body)
        carol = self.amqp("carol", virtual_host="tenant")
        carol.create_sender("t/1")
        self.assert_link_refused(lambda: carol.create_sender("public.x"), ["target 'public.x'"])
        code, body = self.manage("admin", {"operation": "UPDATE",
                                           "type": "org.apache.qpid.dispatch.vhost",
                                           "name": "tenant"},
                                 {"groups": {"t": {"users": "carol", "remoteHosts": "*",
                                                   "sources": "*", "targets": "*"}}})
        self.assertEqual(code, 200, body)
        carol.create_sender("t/2")  # the open connection keeps its rules ...
        self.assert_link_refused(lambda: carol.create_sender("public.x"), ["public.x"])
        self.amqp("carol", virtual_host="tenant").create_sender("public.x")  # ... new ones not
        bad = {"groups": {"t": {"users": "carol", "remoteHosts": "not-an-ip"}}}
        code, body = self.manage("admin", {"operation": "UPDATE",
                                           "type": "org.apache.qpid.dispatch.vhost",
                                           "name": "tenant"}, bad)
        self.assertEqual(code, 400)
        code, _ = self.manage("admin", {"operation": "DELETE",
                                        "type": "org.apache.qpid.dispatch.vhost",
                                        "name": "tenant"})
        self.assertEqual(code, 204)
        # trestle-stat shows the vhosts and their denials.
        out = subprocess.run([STAT, "-b", "127.0.0.1:%d" % self.ports["amqp"], "--vhoststats",
                              "--sasl-username", "alice", "--sasl-password", "alice-pw"],
                             capture_output=True, text=True, timeout=20)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"\$default\s+\d+\s+0\s+\d+")
        self.assertIn("locked", out.stdout)

    # --- MQTT ---

    def test_mqtt_subscribe_filters(self):
        m = self.mqtt("dev-1", "bob")
        self.assertEqual(m.connack, 0)
        # Allowed, wider than allowed, someone else's: 0x87 for each denied filter (MQTT 5).
        self.assertEqual(m.subscribe(["cmd/bob/#", "cmd/+/reboot", "cmd/alice/x", "#"]),
                         [1, 0x87, 0x87, 0x87])
        m3 = self.mqtt("dev-2", "bob", v5=False)
        self.assertEqual(m3.subscribe(["cmd/bob/+", "telemetry/bob/1"]), [1, 0x80])
        # mosquitto_sub, both versions, is told so.
        for version in ("mqttv5", "mqttv311"):
            r = subprocess.run(["mosquitto_sub", "-p", str(self.ports["mqtt"]), "-V", version,
                                "-t", "cmd/alice/#", "-u", "bob", "-P", USERS["bob"], "-W", "5"],
                               capture_output=True, text=True, timeout=20)
            self.assertIn("All subscription requests were denied", r.stdout + r.stderr)
        self.assertEqual(self.vhost_stats()["subscriptionDenied"], 6)
        self.assertIn("SUBSCRIBE 'cmd/alice/x' by user 'bob' denied by policy", self.router.log())

    def test_mqtt_publish(self):
        watcher = subprocess.Popen(["mosquitto_sub", "-p", str(self.ports["mqtt"]), "-t", "#",
                                    "-v", "-u", "admin", "-P", USERS["admin"], "-W", "20"],
                                   stdout=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: "client 'admin" in self.router.log() or
                     re.search(r"user 'admin'", self.router.log()), 10, "the watcher")
            m = self.mqtt("dev-1", "bob")
            self.assertIn(m.publish("telemetry/bob/t", b"allowed"), (0, 0x10))
            self.assertEqual(m.publish("telemetry/alice/t", b"denied"), 0x87)
            m.publish("telemetry/alice/t", b"denied-qos0", qos=0)
            self.assertEqual(m.publish("telemetry/alice/r", b"denied", retain=True), 0x87)
            self.assertEqual(m.publish("telemetry/bob/t", b"y" * 2000), 0x95)  # maxMessageSize
            self.assertIn(m.publish("telemetry/bob/t", b"last"), (0, 0x10))
            # mosquitto_pub (MQTT 5, QoS 1) is told it is not authorized.
            r = subprocess.run(["mosquitto_pub", "-p", str(self.ports["mqtt"]), "-V", "mqttv5",
                                "-q", "1", "-t", "telemetry/alice/x", "-m", "z", "-u", "bob",
                                "-P", USERS["bob"], "-d"], capture_output=True, text=True,
                               timeout=20)
            self.assertIn("received PUBACK (Mid: 1, RC:135)", r.stdout + r.stderr)
            self.assertIn("Publish 1 failed: Not authorized", r.stdout + r.stderr)
            # 3.1.1 cannot refuse a QoS 1 publish: the connection goes.
            m3 = self.mqtt("dev-3", "bob", v5=False)
            self.assertIsNone(m3.publish("telemetry/alice/t", b"denied"))
        finally:
            watcher.terminate()
            out, _ = watcher.communicate(timeout=10)
        self.assertEqual(out.split("\n")[:2], ["telemetry/bob/t allowed", "telemetry/bob/t last"])
        self.assertNotIn("denied", out)
        code, body = self.manage("admin", {"operation": "QUERY", "type": "org.amqp.management",
                                           "entityType": "io.trestle.retained"})
        self.assertEqual(code, 200)
        self.assertEqual(body["results"], [])  # the retained one was refused, not stored
        self.assertEqual(self.vhost_stats()["messageDenied"], 5)
        self.assertEqual(self.vhost_stats()["maxMessageSizeDenied"], 1)

    def test_mqtt_connect(self):
        # A will to a topic the user may not publish to is refused at CONNECT.
        self.assertEqual(self.mqtt("w1", "bob", will=("telemetry/alice/w", "bye")).connack,
                         0x87)
        self.assertEqual(self.mqtt("w2", "bob", v5=False,
                                   will=("telemetry/alice/w", "bye")).connack, 5)
        self.assertEqual(self.mqtt("w3", "bob", will=("will/bob", "bye")).connack, 0)
        # Per-user connection limit (3): quota exceeded; 3.1.1 gets server unavailable.
        held = [self.mqtt("h%d" % i, "alice") for i in range(3)]
        self.assertTrue(all(h.connack == 0 for h in held))
        self.assertEqual(self.mqtt("h4", "alice").connack, 0x97)
        self.assertEqual(self.mqtt("h5", "alice", v5=False).connack, 3)
        # The locked vhost (the listener's policyVhost) admits carol from 10.x only.
        self.assertEqual(self.mqtt("c1", "carol", listener="mqtt-locked").connack, 0x87)
        r = subprocess.run(["mosquitto_pub", "-p", str(self.ports["mqtt-locked"]), "-t", "x",
                            "-m", "y", "-u", "carol", "-P", USERS["carol"]],
                           capture_output=True, text=True, timeout=20)
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stderr, r"(?i)not authori[sz]ed")
        self.assertEqual(self.vhost_stats("locked")["connectionsDenied"], 2)
        self.assertRegex(self.router.log(), r"MQTT CONNECT from .* \(client 'w1', user 'bob'\) "
                         r"refused by policy: will topic 'telemetry/alice/w'")


class PolicyConfigErrors(unittest.TestCase):
    """Bad policy in a config file: an error naming the file, the line and the setting."""

    def check(self, text, line, words):
        path = os.path.join(WORK, "bad.conf")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([TRESTLED, "--check", "-c", path], capture_output=True, text=True,
                           timeout=20)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("%s:%d" % (path, line), r.stderr + r.stdout)
        for w in words:
            self.assertIn(w, r.stderr + r.stdout)

    def test_errors(self):
        head = "policy {\n    enableVhostPolicy: yes\n}\n"  # 3 lines
        self.check(head + "vhost {\n    hostname: a\n    groups: {\"g\": {\"users\": \"x\", "
               "\"remoteHosts\": \"*\", \"bogus\": 1}}\n}\n", 6, ["unknown setting 'bogus'",
                                                                   "group 'g'"])
        self.check(head + "vhost {\n    hostname: a\n    groups: {\n        \"g\": {\n"
               "            \"remoteHosts\": \"1.2.3\"\n        }\n    }\n}\n", 6,
               ["'1.2.3' is not an IP address"])
        self.check(head + "vhost {\n    hostname: a\n    groups: {\"g\": {\"users\": \"x\"}}\n}\n",
               6, ["needs remoteHosts"])
        self.check(head + "vhost {\n    hostname: a\n    groups: {\"g\": {\"remoteHosts\": \"*\","
               " \"sources\": \"a\", \"sourcePattern\": \"b\"}}\n}\n", 6, ["not both"])
        self.check(head + "vhost {\n    hostname: a\n    groups: {\"g\": \n", 6, ["not closed"])
        self.check(head + "vhost {\n    hostname: a\n}\nvhost {\n    hostname: a\n}\n", 7,
                   ["defined twice"])


if __name__ == "__main__":
    unittest.main()
