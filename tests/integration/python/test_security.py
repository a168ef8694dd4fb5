"""Security with clients nobody here wrote (docs/security.md): Python Proton with TLS and SASL,
openssl s_client, mosquitto_pub/mosquitto_sub with certificates and passwords, mosquitto_passwd
files, and a trestled connector to a second trestled over TLS + SCRAM with link routing (the
gateway uplink). Every refusal is checked for its specific error and nothing delivered.

Run: /usr/bin/python3 test_security.py TRESTLED TRESTLE_PASSWD TRESTLE_STAT
"""
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import unittest
import urllib.request

from proton import ConnectionException, Message, SSLDomain
from proton.reactor import AtMostOnce
from proton.utils import BlockingConnection

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from certs import Certs  # noqa: E402
from trestled import Trestled, binaries, wait_for  # noqa: E402

TRESTLED, PASSWD, STAT = binaries(("TRESTLED", "trestled"),
                                   ("TRESTLE_PASSWD", "trestle-passwd"),
                                   ("TRESTLE_STAT", "trestle-stat"))
CERTS = None
WORK = None


def setUpModule():
    global CERTS, WORK
    CERTS = Certs()
    WORK = tempfile.mkdtemp(prefix="trestle-security-")
    # The store: alice and gw in trestle's format, bob from mosquitto_passwd ($7$, PBKDF2-SHA512)
    users = os.path.join(WORK, "users")
    subprocess.run([PASSWD, "-c", "-b", users, "alice", "alice-pw"], check=True)
    subprocess.run([PASSWD, "-b", users, "gw", "gw-pw"], check=True)
    mosq = os.path.join(WORK, "mosquitto-users")
    subprocess.run(["mosquitto_passwd", "-c", "-b", mosq, "bob", "bob-pw"], check=True)
    with open(users, "a") as out, open(mosq) as m:
        out.write(m.read())


def tearDownModule():
    shutil.rmtree(CERTS.dir, ignore_errors=True)
    shutil.rmtree(WORK, ignore_errors=True)


def cert(name):
    return CERTS.path(name)


def profile(name="tls", server="server", ca=True, extra="", directory=None):
    """An sslProfile; server=None for a connector's (no certificate of its own)."""
    text = "sslProfile {\n    name: %s\n" % name
    if server:
        d = directory or CERTS.dir
        text += "    certFile: %s\n    privateKeyFile: %s\n" % (
            os.path.join(d, server + ".pem"), os.path.join(d, server + ".key"))
    if ca:
        text += "    caCertFile: %s\n" % cert("ca.pem")
    return text + extra + "}\n"


def user_store():
    return "userStore {\n    name: users\n    passwordFile: %s\n}\n" % os.path.join(WORK, "users")


def listener(name, kind="listener", **attrs):
    body = "".join("    %s: %s\n" % (k, v) for k, v in attrs.items())
    return "%s {\n    name: %s\n    host: 127.0.0.1\n    port: 0\n%s}\n" % (kind, name, body)


def client_domain(certificate=None, ca="ca.pem", verify_name=True):
    d = SSLDomain(SSLDomain.MODE_CLIENT)
    d.set_trusted_ca_db(cert(ca))
    d.set_peer_authentication(SSLDomain.VERIFY_PEER_NAME if verify_name
                              else SSLDomain.VERIFY_PEER)
    if certificate:
        d.set_credentials(cert(certificate + ".pem"), cert(certificate + ".key"), None)
    return d


def management(url, properties, body=None):
    """One $management request as qdmanage sends it; the response's body (status 200)."""
    c = BlockingConnection(url, timeout=10)
    try:
        reply = c.create_receiver(None, dynamic=True)
        c.create_sender("$management", options=AtMostOnce()).send(
            Message(reply_to=reply.remote_source.address, correlation_id="1",
                    properties=properties, body=body if body is not None else {}))
        m = reply.receive(timeout=10)
        assert m.properties["statusCode"] == 200, m.properties
        return m.body
    finally:
        c.close()


class RouterTest(unittest.TestCase):
    """One trestled per test, checked for a graceful stop and no sanitizer report."""
    listeners = ()

    def config(self):
        return ""

    def setUp(self):
        self.router = Trestled(TRESTLED, "router {\n    id: R.sec\n}\n" + self.config())
        self.ports = self.router.start(list(self.listeners))

    def tearDown(self):
        code = self.router.stop()
        report = self.router.sanitizer_report()
        log = self.router.log()
        self.router.cleanup()
        self.assertEqual(code, 0, "trestled did not stop gracefully:\n" + log[-4000:])
        self.assertIsNone(report)

    def assert_tls_versions(self, port):
        """openssl s_client: TLS 1.0 and 1.1 refused, 1.2 and 1.3 accepted with the chain."""
        for flag, ok in (("-tls1", False), ("-tls1_1", False), ("-tls1_2", True),
                         ("-tls1_3", True)):
            r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, flag,
                                "-CAfile", cert("ca.pem"), "-verify_return_error"],
                               input=b"", capture_output=True, timeout=20)
            out = r.stdout.decode(errors="replace")
            if ok:
                self.assertIn("Verify return code: 0 (ok)", out, flag)
                self.assertIn("CN = localhost", out)
            else:
                self.assertNotEqual(r.returncode, 0, flag + out)

    def wait_log(self, pattern, what):
        return wait_for(lambda: re.search(pattern, self.router.log()), 10, what)

    def amqp(self, listener, tls=True, **kw):
        scheme = "amqps" if tls else "amqp"
        return BlockingConnection("%s://localhost:%d" % (scheme, self.ports[listener]),
                                  timeout=10, **kw)

    def assert_refused(self, condition, listener, tls=True, **kw):
        with self.assertRaises(ConnectionException) as e:
            c = self.amqp(listener, tls, **kw)
            c.close()
        self.assertIn(condition, str(e.exception))

    def round_trip(self, c, address="q"):
        r = c.create_receiver(address)
        c.create_sender(address, options=AtMostOnce()).send(Message(body="hi " + address))
        self.assertEqual(r.receive(timeout=10).body, "hi " + address)


class AmqpTlsSasl(RouterTest):
    listeners = ("amqps", "plain", "plain-insecure", "external", "external-ou", "mixed", "http")

    def config(self):
        return (profile() + user_store() +
                listener("amqps", sslProfile="tls", authenticatePeer="yes") +
                listener("plain") +
                listener("plain-insecure", allowInsecureAuthentication="yes",
                       saslMechanisms="PLAIN") +
                listener("external", sslProfile="tls", authenticatePeer="yes",
                       saslMechanisms="EXTERNAL") +
                profile("tls-ou", extra="    uidFormat: ou\n") +
                listener("external-ou", sslProfile="tls-ou", saslMechanisms="EXTERNAL") +
                listener("mixed", sslProfile="tls", requireSsl="no", authenticatePeer="yes") +
                "httpListener {\n    name: http\n    host: 127.0.0.1\n    port: 0\n}\n")

    def test_plain_over_tls(self):
        c = self.amqp("amqps", ssl_domain=client_domain(), allowed_mechs="PLAIN",
                      user="alice", password="alice-pw")
        self.round_trip(c)
        c.close()
        self.wait_log(r"sasl PLAIN, user 'alice', TLSv1\.3", "the connection's user in the log")
        # A mosquitto_passwd user authenticates AMQP too.
        c = self.amqp("amqps", ssl_domain=client_domain(), allowed_mechs="PLAIN",
                      user="bob", password="bob-pw")
        c.close()

    def test_refusals(self):
        d = client_domain()
        self.assert_refused("amqp:unauthorized-access", "amqps", ssl_domain=d,
                            allowed_mechs="PLAIN", user="alice", password="guess-123")
        self.assert_refused("amqp:unauthorized-access", "amqps", ssl_domain=d,
                            allowed_mechs="PLAIN", user="nobody", password="x")
        # authenticatePeer: ANONYMOUS is not offered, so a client that only has it fails.
        self.assert_refused("amqp:unauthorized-access", "amqps", ssl_domain=d,
                            allowed_mechs="ANONYMOUS")
        # ... and a client without a SASL layer is not let in.
        self.assert_refused("amqp:", "amqps", ssl_domain=d, sasl_enabled=False)
        # A server we do not trust, and a name that does not match.
        self.assert_refused("certificate verify failed", "amqps",
                            ssl_domain=client_domain(ca="rogue-ca.pem"))
        failures = self.metric(r'trestle_authentication_failures_total\{protocol="amqp"\} (\d+)')
        self.assertEqual(int(failures), 4)  # all but the TLS failure
        self.assertNotIn("guess-123", self.router.log())  # no password in the log

    def metric(self, pattern):
        status, body = self.router.http("/metrics")
        self.assertEqual(status, 200)
        m = re.search(pattern, body)
        self.assertIsNotNone(m, body[-2000:])
        return m.group(1)

    def test_plaintext_and_tls_mismatches(self):
        # Plaintext AMQP to a TLS port: refused at once, with a log line that says why.
        self.assert_refused("amqp:", "amqps", tls=False, allowed_mechs="ANONYMOUS")
        self.wait_log(r"plaintext on a TLS listener \(requireSsl\), refused",
                      "a log line for plaintext on a TLS port")
        # A TLS ClientHello on a plain port fails fast too.
        self.assert_refused("", "plain", ssl_domain=client_domain())
        self.wait_log(r"TLS handshake received, but this listener has no TLS",
                      "a log line for TLS on a plain port")

    def test_plain_needs_encryption_unless_allowed(self):
        # Without TLS, PLAIN is not offered: the password is never sent in the clear.
        self.assert_refused("amqp:unauthorized-access", "plain", tls=False,
                            allowed_mechs="PLAIN", user="alice", password="alice-pw")
        c = self.amqp("plain-insecure", tls=False, allowed_mechs="PLAIN", user="alice",
                      password="alice-pw")
        self.round_trip(c)
        c.close()
        self.assert_refused("amqp:unauthorized-access", "plain-insecure", tls=False,
                            allowed_mechs="ANONYMOUS")  # not in saslMechanisms

    def test_require_ssl_no_takes_both(self):
        # TLS and plaintext on one port: TLS clients authenticate with PLAIN ...
        c = self.amqp("mixed", ssl_domain=client_domain(), allowed_mechs="PLAIN", user="alice",
                      password="alice-pw")
        c.close()
        # ... plaintext ones reach SASL, where PLAIN is not offered without TLS and
        # authenticatePeer rules out ANONYMOUS.
        self.assert_refused("amqp:unauthorized-access", "mixed", tls=False,
                            allowed_mechs="PLAIN", user="alice", password="alice-pw")
        self.assertNotIn("plaintext on a TLS listener", self.router.log())

    def test_external(self):
        c = self.amqp("external", ssl_domain=client_domain("client"), allowed_mechs="EXTERNAL")
        self.round_trip(c)
        c.close()
        self.wait_log(r"sasl EXTERNAL, user 'CN=device-1,OU=devices,O=Trestle,C=DE'|"
                      r"sasl EXTERNAL, user '[^']*device-1", "the subject as the user")
        c = self.amqp("external-ou", ssl_domain=client_domain("client"), allowed_mechs="EXTERNAL")
        c.close()
        self.wait_log(r"sasl EXTERNAL, user 'Trestle;devices'", "uidFormat ou as the user")
        # No certificate, an untrusted one, an expired one: the TLS handshake fails.
        for bad in (None, "rogue", "expired"):
            with self.assertRaises(ConnectionException, msg=str(bad)):
                self.amqp("external", ssl_domain=client_domain(bad),
                          allowed_mechs="EXTERNAL").close()
        # (Proton does not say which check failed: the MQTT tests see the reasons.)
        self.wait_log(r"certificate verify failed", "the refused certificates in the log")

    def test_trestle_stat_with_qdstat_tls_and_sasl_options(self):
        pw = os.path.join(WORK, "alice-pw")
        with open(pw, "w") as f:
            f.write("alice-pw\n")
        url = "amqps://localhost:%d" % self.ports["amqps"]
        r = subprocess.run([STAT, "-b", url, "--ssl-trustfile", cert("ca.pem"),
                            "--sasl-mechanisms", "PLAIN", "--sasl-username", "alice",
                            "--sasl-password-file", pw, "-c"],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        row = [l for l in r.stdout.splitlines() if " alice " in l]
        self.assertEqual(len(row), 1, r.stdout)
        self.assertIn("TLSv1.3", row[0])  # the security column
        # EXTERNAL with a client certificate
        r = subprocess.run([STAT, "-b", "amqps://localhost:%d" % self.ports["external"],
                            "--ssl-trustfile", cert("ca.pem"), "--ssl-certificate",
                            cert("client.pem"), "--ssl-key", cert("client.key"),
                            "--sasl-mechanisms", "EXTERNAL", "-c"],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("CN=device-1", r.stdout)
        # No credentials, and an untrusted router: refused, with the reason.
        r = subprocess.run([STAT, "-b", url, "--ssl-trustfile", cert("ca.pem"), "-c"],
                           capture_output=True, text=True, timeout=20)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("failed", r.stdout + r.stderr)
        r = subprocess.run([STAT, "-b", url, "--ssl-trustfile", cert("rogue-ca.pem"),
                            "--sasl-mechanisms", "PLAIN", "--sasl-username", "alice",
                            "--sasl-password-file", pw, "-c"],
                           capture_output=True, text=True, timeout=20)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("certificate verify failed", r.stdout + r.stderr)

    def test_tls_versions(self):
        self.assert_tls_versions(self.ports["amqps"])


class EncryptedKey(unittest.TestCase):
    def test_password_forms_and_errors(self):
        key = os.path.join(WORK, "encrypted.key")
        subprocess.run(["openssl", "rsa", "-in", cert("server.key"), "-aes256", "-passout",
                        "pass:key-pass", "-out", key], check=True, capture_output=True)
        with open(os.path.join(WORK, "key-pass"), "w") as f:
            f.write("key-pass\n")

        def check(password, env=None):
            conf = os.path.join(WORK, "key.conf")
            with open(conf, "w") as f:
                f.write("sslProfile {\n    name: tls\n    certFile: %s\n    privateKeyFile: %s\n"
                        "%s}\nlistener {\n    name: l\n    port: 0\n    sslProfile: tls\n}\n" % (
                            cert("server.pem"), key,
                            "    password: %s\n" % password if password else ""))
            # stdin closed: a prompt for the pass phrase would show as a hang or an EOF error.
            return subprocess.run([TRESTLED, "--check", "--config", conf], capture_output=True,
                                  text=True, timeout=20, stdin=subprocess.DEVNULL,
                                  env=dict(os.environ, **(env or {})))

        for ok in ("key-pass", "env:KEY_PASS", "file:" + os.path.join(WORK, "key-pass")):
            r = check(ok, {"KEY_PASS": "key-pass"})
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for bad, text in ((None, "cannot be used (or the password is wrong)"),
                          ("not-the-pass", "cannot be used (or the password is wrong)"),
                          ("env:NO_SUCH_VARIABLE", "environment variable NO_SUCH_VARIABLE")):
            r = check(bad)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn("key.conf:1: sslProfile 'tls': " , r.stdout + r.stderr)
            self.assertIn(text, r.stdout + r.stderr)
            self.assertNotIn("PEM pass phrase", r.stdout + r.stderr)
            self.assertNotIn("not-the-pass", r.stdout + r.stderr)


class ConnectorUplink(unittest.TestCase):
    """The gateway: LAN clients on a plain listener, link-routed to the cloud router through a
    connector with TLS and SCRAM-SHA-256 (Proton's client cannot do SCRAM without Cyrus: the
    connector is the client here)."""

    def start(self, config, listeners, env=None):
        r = Trestled(TRESTLED, config, env=env)
        self.routers.append(r)
        return r, r.start(listeners)

    def setUp(self):
        self.routers = []
        self.files = tempfile.mkdtemp(prefix="trestle-cloud-", dir=WORK)
        for ext in ("pem", "key"):
            shutil.copy(cert("server." + ext), self.files)
        self.cloud, cp = self.start(
            "router {\n    id: cloud\n}\n" + profile(directory=self.files) + user_store() +
            listener("uplink", sslProfile="tls", authenticatePeer="yes",
                     saslMechanisms="SCRAM-SHA-256 SCRAM-SHA-512") +
            listener("local") +
            "address {\n    prefix: telemetry\n    distribution: balanced\n}\n",
            ["uplink", "local"])
        self.cloud_local = "127.0.0.1:%d" % cp["local"]
        secret = os.path.join(WORK, "gw-secret")
        with open(secret, "w") as f:
            f.write("gw-pw\n")
        self.gateway, gp = self.start(
            "router {\n    id: gateway\n}\n" +
            profile("uplink", server=None) +
            listener("lan") +
            "connector {\n    name: cloud\n    host: localhost\n    port: %d\n"
            "    role: route-container\n    sslProfile: uplink\n    saslUsername: gw\n"
            "    saslPassword: file:%s\n    saslMechanisms: SCRAM-SHA-256\n}\n" % (
                cp["uplink"], secret) +
            "linkRoute {\n    prefix: telemetry\n    direction: in\n    connection: cloud\n}\n" +
            "linkRoute {\n    prefix: telemetry\n    direction: out\n    connection: cloud\n}\n",
            ["lan"])
        self.lan = "127.0.0.1:%d" % gp["lan"]

    def tearDown(self):
        for r in self.routers:
            code = r.stop()
            report = r.sanitizer_report()
            log = r.log()
            r.cleanup()
            self.assertEqual(code, 0, log[-4000:])
            self.assertIsNone(report)

    def test_link_routed_over_tls_and_scram(self):
        wait_for(lambda: re.search(r"sasl SCRAM-SHA-256, user 'gw', TLSv1\.3", self.cloud.log()),
                 15, "the gateway's connection authenticated on the cloud router")
        # Both links routed through the uplink to the cloud router, and back: one connection
        # (a BlockingConnection only does I/O while it is waited on).
        lan = BlockingConnection(self.lan, timeout=10)
        r = lan.create_receiver("telemetry/t1")
        lan.create_sender("telemetry/t1", options=AtMostOnce()).send(Message(body="from a device"))
        self.assertEqual(r.receive(timeout=10).body, "from a device")
        # It crossed the cloud router: its links for telemetry/t1 carried the message.
        links = management(self.cloud_local, {"operation": "QUERY",
                                              "entityType": "org.apache.qpid.dispatch.router.link"},
                           {"attributeNames": ["owningAddr", "linkDir", "deliveryCount"]})
        carried = [(d, n) for a, d, n in links["results"] if a and a.endswith("telemetry/t1")]
        self.assertEqual(sorted(carried), [("in", 1), ("out", 1)], links)
        lan.close()
        # The secret in the gateway's management: masked.
        body = management(self.lan, {"operation": "READ", "type": "connector", "name": "cloud"})
        self.assertEqual(body["saslPassword"], "***")
        self.assertEqual(body["saslUsername"], "gw")
        for r in self.routers:
            self.assertNotIn("gw-pw", r.log())

    def test_certificate_rotation_while_connected(self):
        # Rotation on the cloud router: its files replaced as cert-manager does (a rename).
        wait_for(lambda: "user 'gw'" in self.cloud.log(), 15, "the uplink")
        port = int(re.search(r"listener 'uplink' \(amqp\) listening on [^ ]*:(\d+)",
                             self.cloud.log()).group(1))

        def served():
            return ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(
                ssl.get_server_certificate(("127.0.0.1", port))))

        def pem(name):
            with open(cert(name)) as f:
                return ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(f.read()))

        self.assertEqual(served(), pem("server.pem"))
        for ext in ("pem", "key"):
            tmp = os.path.join(self.files, "server.%s.new" % ext)
            shutil.copy(cert("server2." + ext), tmp)
            os.rename(tmp, os.path.join(self.files, "server." + ext))
        wait_for(lambda: served() == pem("server2.pem"), 10, "the new certificate served")
        # The connection made before the rotation goes on: a routed link still works.
        lan = BlockingConnection(self.lan, timeout=10)
        r = lan.create_receiver("telemetry/t2")
        lan.create_sender("telemetry/t2", options=AtMostOnce()).send(
            Message(body="after rotation"))
        self.assertEqual(r.receive(timeout=10).body, "after rotation")
        lan.close()
        self.assertEqual(self.cloud.log().count("user 'gw'"), 1, "the uplink reconnected")

    def test_wrong_password_is_refused_and_retried(self):
        bad, _ = self.start(
            "router {\n    id: gateway2\n}\n" + profile("uplink", server=None) +
            "connector {\n    name: cloud\n    host: localhost\n    port: %d\n"
            "    sslProfile: uplink\n    saslUsername: gw\n    saslPassword: env:GW_PASSWORD\n"
            "    maxReconnectDelaySeconds: 1\n}\n" %
            int(re.search(r"'uplink' \(amqp\) listening on [^ ]*:(\d+)",
                          self.cloud.log()).group(1)),
            [], env=dict(os.environ, GW_PASSWORD="not-it"))
        wait_for(lambda: self.cloud.log().count("authentication failed") >= 2, 15,
                 "two refused attempts")
        self.assertIn("user 'gw'", self.cloud.log())
        self.assertNotIn("not-it", self.cloud.log() + bad.log())


class MqttTlsAuth(RouterTest):
    listeners = ("mqtts", "mqtt-lan", "mqtt-open", "mqtt-cert", "http")

    def config(self):
        return (profile() + profile("tls-ou", extra="    uidFormat: ou\n") + user_store() +
                listener("mqtts", "mqttListener", sslProfile="tls", websocketPath="/mqtt") +
                listener("mqtt-lan", "mqttListener") +
                listener("mqtt-open", "mqttListener", allowAnonymous="yes") +
                listener("mqtt-cert", "mqttListener", sslProfile="tls-ou",
                       requireCertificate="yes", useIdentityAsUsername="yes") +
                "httpListener {\n    name: http\n    host: 127.0.0.1\n    port: 0\n}\n")

    def tls_args(self, certificate=None, ca="ca.pem"):
        a = ["-h", "localhost", "--cafile", cert(ca)]
        if certificate:
            a += ["--cert", cert(certificate + ".pem"), "--key", cert(certificate + ".key")]
        return a

    def pub(self, listener, args, topic="t/1", message="m", version="mqttv311"):
        return subprocess.run(["mosquitto_pub", "-p", str(self.ports[listener]), "-t", topic,
                               "-m", message, "-q", "1", "-V", version, *args],
                              capture_output=True, timeout=20)

    def test_username_password_over_tls(self):
        sub = subprocess.Popen(["mosquitto_sub", "-p", str(self.ports["mqtts"]), "-t", "t/#",
                                "-C", "1", "-W", "15", "-v", "-u", "alice", "-P", "alice-pw",
                                *self.tls_args()], stdout=subprocess.PIPE)
        self.wait_log(r"user 'alice'", "the subscriber")
        r = self.pub("mqtts", self.tls_args() + ["-u", "bob", "-P", "bob-pw"], message="hello")
        self.assertEqual(r.returncode, 0, r.stderr)
        out, _ = sub.communicate(timeout=20)
        self.assertEqual(out.decode().strip(), "t/1 hello")

    def test_websocket_over_tls(self):
        """wss:// and mqtts:// on one port: MQTT.js over WebSocket over TLS meets a
        mosquitto_sub over plain TLS; a wrong password over wss is refused."""
        node = shutil.which("node")
        self.assertIsNotNone(node, "node is needed (scripts/deps.sh test installs it)")
        sdk = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "node")
        sub = subprocess.Popen(["mosquitto_sub", "-p", str(self.ports["mqtts"]), "-t", "ws/#",
                                "-C", "1", "-W", "20", "-v", "-u", "alice", "-P", "alice-pw",
                                *self.tls_args()], stdout=subprocess.PIPE)
        self.wait_log(r"user 'alice'", "the TLS subscriber")
        url = "wss://localhost:%d/mqtt" % self.ports["mqtts"]
        r = subprocess.run([node, "mqtt_wss.js", url, cert("ca.pem"), "bob", "bob-pw", "ws/1"],
                           cwd=sdk, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.strip(), "received over wss")
        out, _ = sub.communicate(timeout=20)
        self.assertEqual(out.decode().strip(), "ws/1 over wss")
        self.wait_log(r"MQTT 5 connection from .* opened \(client .*, user 'bob'",
                      "the WebSocket client's connection")
        r = subprocess.run([node, "mqtt_wss.js", url, cert("ca.pem"), "bob", "wrong", "ws/1"],
                           cwd=sdk, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"(?i)error .*(bad user name or password|134)")
        # A wrong path is answered 404 over TLS, not upgraded.
        probe = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                "--cacert", cert("ca.pem"), "-H", "Upgrade: websocket",
                                "-H", "Connection: Upgrade", "-H", "Sec-WebSocket-Version: 13",
                                "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                                "-H", "Sec-WebSocket-Protocol: mqtt",
                                "https://localhost:%d/elsewhere" % self.ports["mqtts"]],
                               capture_output=True, text=True, timeout=20)
        self.assertEqual(probe.stdout, "404")

    def test_refusals_with_reason_codes(self):
        creds = self.tls_args()
        cases = [  # (args, version, exit code = CONNACK code, log text)
            (creds + ["-u", "alice", "-P", "wrong"], "mqttv311", 4, "bad user name or password"),
            (creds, "mqttv311", 5, "anonymous clients are not allowed"),
            (creds + ["-u", "alice", "-P", "wrong"], "mqttv5", 0x86, None),
            (creds, "mqttv5", 0x87, None),
        ]
        for args, version, code, text in cases:
            r = self.pub("mqtts", args, version=version)
            self.assertEqual(r.returncode, code, (args, version, r.stderr))
        self.assertNotIn("wrong", self.router.log())
        # Plain LAN listener: credentials required too (a store is configured) ...
        self.assertEqual(self.pub("mqtt-lan", ["-h", "127.0.0.1"]).returncode, 5)
        self.assertEqual(self.pub("mqtt-lan", ["-h", "127.0.0.1", "-u", "bob", "-P", "bob-pw"])
                         .returncode, 0)
        # ... unless the listener allows anonymous clients.
        self.assertEqual(self.pub("mqtt-open", ["-h", "127.0.0.1"]).returncode, 0)
        status, body = self.router.http("/metrics")
        m = re.search(r'trestle_authentication_failures_total\{protocol="mqtt"\} (\d+)', body)
        self.assertEqual(int(m.group(1)), 5)

    def test_plaintext_to_tls_port_and_untrusted_server(self):
        r = self.pub("mqtts", ["-h", "127.0.0.1", "-u", "alice", "-P", "alice-pw"])
        self.assertNotEqual(r.returncode, 0)
        self.wait_log(r"not a TLS handshake \(plaintext on a TLS port\?\)", "the log line")
        r = self.pub("mqtts", self.tls_args(ca="rogue-ca.pem") + ["-u", "alice", "-P", "alice-pw"])
        self.assertNotEqual(r.returncode, 0)
        self.assertNotIn("user 'alice'", self.router.log())

    def test_client_certificate_as_username(self):
        r = self.pub("mqtt-cert", self.tls_args("client"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_log(r"user 'Trestle;devices'", "the certificate's identity as the user")
        for bad, reason in ((None, "peer did not return a certificate"),
                            ("rogue", "unable to get local issuer certificate"),
                            ("expired", "certificate has expired")):
            r = self.pub("mqtt-cert", self.tls_args(bad))
            self.assertNotEqual(r.returncode, 0, bad)
            self.wait_log(re.escape(reason), reason)

    def test_tls_versions(self):
        self.assert_tls_versions(self.ports["mqtts"])
        self.wait_log(r"unsupported protocol", "TLS 1.0 refused in the log")


class HttpsMetrics(RouterTest):
    """httpListener over TLS with basic auth for /metrics, probes left open (curl --cacert)."""
    listeners = ("https", "http-insecure")

    def config(self):
        return (profile() + user_store() +
                listener("https", "httpListener", sslProfile="tls", authenticatePeer="yes") +
                listener("http-insecure", "httpListener", authenticatePeer="yes",
                         allowInsecureAuthentication="yes"))

    def curl(self, path, *args, listener="https", scheme="https"):
        r = subprocess.run(["curl", "-sS", "--cacert", cert("ca.pem"), "-o", "-", "-w",
                            "\n%{http_code}", *args,
                            "%s://localhost:%d%s" % (scheme, self.ports[listener], path)],
                           capture_output=True, text=True, timeout=20)
        body, _, code = r.stdout.rpartition("\n")
        return code, body, r

    def test_metrics_need_credentials_probes_do_not(self):
        for probe in ("/healthz", "/readyz"):
            self.assertEqual(self.curl(probe)[0], "200", probe)
        code, _, _ = self.curl("/metrics")
        self.assertEqual(code, "401")
        r = subprocess.run(["curl", "-sS", "-D", "-", "-o", "/dev/null", "--cacert",
                            cert("ca.pem"), "https://localhost:%d/metrics" % self.ports["https"]],
                           capture_output=True, text=True, timeout=20)
        self.assertRegex(r.stdout, r'(?i)www-authenticate: Basic realm="trestle"')
        self.assertEqual(self.curl("/metrics", "-u", "alice:wrong-pw")[0], "401")
        code, body, _ = self.curl("/metrics", "-u", "bob:bob-pw")  # a mosquitto_passwd user
        self.assertEqual(code, "200")
        self.assertRegex(body, r'trestle_authentication_failures_total\{protocol="http"\} 1\b')
        self.assertNotIn("wrong-pw", self.router.log())
        self.wait_log(r"HTTP /metrics on 'https' refused: bad user name or password \(user "
                      r"'alice'\)", "the refusal in the log")
        # The same port refuses plaintext HTTP, and says why in the log.
        code, _, r = self.curl("/healthz", scheme="http")
        self.assertNotEqual(code, "200", r.stdout + r.stderr)
        self.wait_log(r"http 'https': TLS handshake failed", "the plaintext refusal")
        # Plain HTTP with basic auth, where the operator allowed it.
        code, body, _ = self.curl("/metrics", "-u", "alice:alice-pw", listener="http-insecure",
                                  scheme="http")
        self.assertEqual(code, "200")

    def test_config_errors(self):
        conf = os.path.join(WORK, "http.conf")
        for text, words in (
                (user_store() + listener("h", "httpListener", authenticatePeer="yes"),
                 "basic auth sends the password"),
                (listener("h", "httpListener", authenticatePeer="yes",
                          allowInsecureAuthentication="yes"), "authenticatePeer needs a userStore")):
            with open(conf, "w") as f:
                f.write(text)
            r = subprocess.run([TRESTLED, "--check", "--config", conf], capture_output=True,
                               text=True, timeout=20)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn(words, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
