"""The chaos clients' attacks on the secured listeners (docs/security.md): MQTT over TLS with
right, wrong and missing credentials, plaintext on TLS ports, TLS handshakes cut off or fed
garbage, WebSocket upgrades over TLS (wss://) followed by a CONNECT or garbage frames, AMQP
over TLS with SASL exchanges broken off. Every refusal must be one: a CONNACK that
accepts a wrong password is an error."""
import select
import socket
import ssl
import time

from proton import Endpoint

from chaos_common import ChaosClient, rst_close
from chaos_mqtt import MqttClient, mstr, packet

USER, PASSWORD = "chaos", "chaos-pw"


def client_hello():
    """The first flight of a real TLS client: a ClientHello record."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


class SecurityChaos(ChaosClient):
    def __init__(self, index, ctx):
        super().__init__("sec%d" % index, ctx.seed * 1000 + 900 + index, ctx)
        self.tls = ssl.create_default_context(cafile=ctx.ca)
        self.tls.check_hostname = False
        self.hello = client_hello()

    def tls_socket(self, port):
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        return self.tls.wrap_socket(raw, server_hostname="localhost")

    def session(self):
        rng, ctx = self.rng, self.ctx
        what = rng.randrange(8)
        if what <= 2:
            self.mqtt_tls(rng.choice(["right", "right", "wrong", "none", "unknown"]))
        elif what == 3:
            port = rng.choice([ctx.ports["mqtts"], ctx.ports["amqps"]])
            self.log("plaintext to TLS port %d" % port)
            s = self.connect(lambda: socket.create_connection(("127.0.0.1", port), timeout=5))
            if s:
                s.sendall(rng.choice([b"AMQP\x00\x01\x00\x00", b"AMQP\x03\x01\x00\x00",
                                      packet(0x10, b"\x00\x04MQTT\x04\x02\x00\x3c\x00\x01x")]))
                self.expect_closed(s)
        elif what == 4:
            port = rng.choice([ctx.ports["mqtts"], ctx.ports["amqps"], ctx.ports["amqp"]])
            cut = rng.randrange(1, len(self.hello))
            self.log("ClientHello cut after %d bytes to port %d" % (cut, port))
            s = self.connect(lambda: socket.create_connection(("127.0.0.1", port), timeout=5))
            if s:
                s.sendall(self.hello[:cut])
                if rng.random() < 0.5:
                    s.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))))
                # Stalled mid-handshake until the router answers or closes, or a random while.
                select.select([s], [], [], rng.uniform(0, 0.05))
                rst_close(s)
        elif what == 5:
            self.wss()
        else:
            self.amqp_tls()

    def wss(self):
        """A WebSocket upgrade over TLS (right or wrong path and subprotocol), then a masked
        MQTT CONNECT with the right password, or garbage frames."""
        rng, ctx = self.rng, self.ctx
        sock = self.connect(lambda: self.tls_socket(ctx.ports["mqtts"]))
        if not sock:
            return
        path = rng.choice(["/mqtt", "/mqtt", "/other"])
        proto = rng.choice(["mqtt", "mqtt", "chat"])
        self.log("wss upgrade %s (%s)" % (path, proto))
        try:
            sock.settimeout(5)
            sock.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n\r\n" % (
                              path, proto)).encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
            ok = path == "/mqtt" and proto == "mqtt"
            want = b"HTTP/1.1 101" if ok else b"HTTP/1.1 4"
            if not head.startswith(want):
                self.error = "%s: wss upgrade %s %s answered %r" % (self.who, path, proto,
                                                                    head[:40])
            if ok:
                mask = bytes(rng.randrange(256) for _ in range(4))
                if rng.random() < 0.6:
                    body = (b"\x00\x04MQTT\x04\xc2\x00\x3c" + mstr("wss-" + self.who) +
                            mstr(USER) + mstr(PASSWORD))
                    payload = packet(0x10, body)
                else:
                    payload = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
                frame = bytes([0x82, 0x80 | len(payload)]) + mask + bytes(
                    b ^ mask[i % 4] for i, b in enumerate(payload))
                if rng.random() < 0.3:
                    frame = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
                sock.sendall(frame)
                sock.settimeout(rng.uniform(0, 0.3))
                sock.recv(4096)
        except (socket.timeout, OSError, ssl.SSLError):
            pass
        rst_close(sock)

    def expect_closed(self, s, within=3.0):
        """The router must close a connection it refuses, soon."""
        s.settimeout(within)
        try:
            while s.recv(4096):
                pass
        except socket.timeout:
            self.error = "%s: a refused connection was still open after %g s" % (self.who,
                                                                                  within)
        except OSError:
            pass
        s.close()

    def mqtt_tls(self, creds):
        rng, ctx = self.rng, self.ctx
        v5 = rng.random() < 0.5
        user, password = {"right": (USER, PASSWORD), "wrong": (USER, "not-" + PASSWORD),
                          "none": (None, None), "unknown": ("nobody", PASSWORD)}[creds]
        sock = self.connect(lambda: self.tls_socket(ctx.ports["mqtts"]))
        if not sock:
            return
        sock.settimeout(0.02)
        c = MqttClient(0, "%s-tls" % self.who, v5, who=self.who, user=user, password=password,
                       sock=sock)
        self.log("MQTT over TLS v%d, %s credentials" % (5 if v5 else 4, creds))
        deadline = time.time() + 3  # a refusal comes after a one-second delay
        while c.connack is None and not c.closed and time.time() < deadline:
            c.pump(0.05)
        if creds == "right":
            if c.connack != 0:
                self.error = "%s: right credentials refused (CONNACK %r)" % (self.who, c.connack)
            else:
                c.subscribe("sensors/#", 1)
                c.publish("sensors/tls", "over TLS", rng.randrange(2))
                c.pump(rng.uniform(0, 0.1))
                c.disconnect()
        else:
            want = (0x87 if creds == "none" else 0x86) if v5 else (5 if creds == "none" else 4)
            if c.connack != want:
                self.error = "%s: %s credentials got CONNACK %r, want %#x" % (
                    self.who, creds, c.connack, want)
        if rng.random() < 0.3:
            rst_close(sock)
        else:
            sock.close()

    def amqp_tls(self):
        """AMQP over TLS, then a SASL exchange broken off somewhere."""
        rng, ctx = self.rng, self.ctx
        sock = self.connect(lambda: self.tls_socket(ctx.ports["amqps"]))
        if not sock:
            return
        step = rng.randrange(4)
        self.log("AMQP over TLS, SASL broken off at step %d" % step)
        try:
            if step >= 1:
                sock.sendall(b"AMQP\x03\x01\x00\x00")
            if step >= 2:
                # sasl-init PLAIN with a wrong password (a hand-encoded frame)
                resp = b"\x00" + USER.encode() + b"\x00wrong"
                body = (b"\x00\x53\x41\xc0" + bytes([len(resp) + 10, 2]) + b"\xa3\x05PLAIN" +
                        b"\xa0" + bytes([len(resp)]) + resp)
                sock.sendall(bytes([0, 0, 0, 8 + len(body), 2, 1, 0, 0]) + body)
            if step >= 3:
                sock.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))))
            sock.settimeout(rng.uniform(0, 0.2))
            sock.recv(4096)
        except (socket.timeout, OSError):
            pass
        rst_close(sock)


class PolicyChaos(ChaosClient):
    """Clients of the 'restricted' vhost (chaos.py's config: allowed/# only, 3 connections per
    user, 2 senders): random allowed and denied subscriptions, publishes, wills and attaches,
    and too many connections. Every denial must be one, with its reason code; nothing sent to a
    denied topic may arrive (a watcher on the open listener subscribes to denied/#)."""

    def __init__(self, index, ctx):
        super().__init__("pol%d" % index, ctx.seed * 1000 + 950 + index, ctx)

    def session(self):
        rng = self.rng
        what = rng.randrange(5)
        if what <= 2:
            self.mqtt_policy()
        elif what == 3:
            self.mqtt_crowd()
        else:
            self.amqp_policy()

    def mqtt(self, v5, will=None):
        port = self.ctx.ports["mqtt-policy"]
        s = self.connect(lambda: socket.create_connection(("127.0.0.1", port), timeout=5))
        if not s:
            return None
        s.settimeout(0.02)
        c = MqttClient(0, "%s-%d" % (self.who, self.rng.randrange(1 << 30)), v5, who=self.who,
                       will=will, sock=s)
        deadline = time.time() + 3
        while c.connack is None and not c.closed and time.time() < deadline:
            c.pump(0.02)
        return c

    def mqtt_policy(self):
        rng = self.rng
        v5 = rng.random() < 0.5
        denied_will = rng.random() < 0.2
        will = ("denied/will" if denied_will else "allowed/will", "w", 0, False, 0)
        c = self.mqtt(v5, will=will if rng.random() < 0.4 or denied_will else None)
        if not c:
            return
        self.log("policy MQTT v%d%s" % (5 if v5 else 4, ", denied will" if denied_will else ""))
        if denied_will:
            if c.connack not in (0x87, 5, 0x97, 3):  # the per-user limit may come first
                self.error = "%s: a will to a denied topic got CONNACK %r" % (self.who, c.connack)
            c.sock.close()
            return
        if c.connack == (0x97 if v5 else 3):
            c.sock.close()  # the per-user limit: other clients of this vhost hold it
            return
        if c.connack != 0:
            self.error = "%s: allowed client got CONNACK %r" % (self.who, c.connack)
            c.sock.close()
            return
        filters = [rng.choice(["allowed/#", "allowed/+/x", "denied/#", "#", "+/x",
                               "$share/g/allowed/a", "$share/g/denied/a"])
                   for _ in range(rng.randrange(1, 4))]
        for f in filters:
            c.subscribe(f, 1)
        deadline = time.time() + 3
        while len(c.subacks) < len(filters) and not c.closed and time.time() < deadline:
            c.pump(0.02)
        for f, code in zip(filters, c.subacks):
            allowed = f.startswith("allowed/") or f.startswith("$share/g/allowed")
            if allowed and code >= 0x80:
                self.error = "%s: allowed filter %s refused (%#x)" % (self.who, f, code)
            if not allowed and code != (0x87 if v5 else 0x80):
                self.error = "%s: denied filter %s got %#x" % (self.who, f, code)
        for _ in range(rng.randrange(4)):
            denied = rng.random() < 0.5
            topic = ("denied/" if denied else "allowed/") + str(rng.randrange(3))
            qos = rng.randrange(2)
            c.publish(topic, "policy " + topic, qos, retain=rng.random() < 0.2)
            if denied and qos and not v5:
                c.pump(0.5)
                if not c.closed:
                    self.error = "%s: 3.1.1 QoS 1 to a denied topic kept the connection" % self.who
                c.sock.close()
                return
        c.pump(rng.uniform(0.05, 0.3))
        for pid, reason in c.pubacks.items():
            if reason not in (0, 0x10, 0x87):
                self.error = "%s: PUBACK reason %#x" % (self.who, reason)
        if rng.random() < 0.3:
            rst_close(c.sock)
        else:
            c.disconnect()
            c.sock.close()

    def mqtt_crowd(self):
        """More connections than the vhost's maxConnectionsPerUser (3): the fourth is refused."""
        self.log("policy: a crowd of anonymous clients")
        held = []
        for _ in range(5):
            c = self.mqtt(True)
            if c:
                held.append(c)
        codes = [c.connack for c in held]
        if any(code not in (0, 0x97) for code in codes):
            self.error = "%s: a crowd got CONNACKs %r" % (self.who, codes)
        if codes.count(0) > 3:
            self.error = "%s: %d connections admitted past the limit of 3" % (self.who,
                                                                               codes.count(0))
        for c in held:
            rst_close(c.sock) if self.rng.random() < 0.5 else c.sock.close()

    def amqp_policy(self):
        """AMQP attaches on the restricted listener: allowed/ ones open, others are refused."""
        from chaos_amqp import AmqpClient
        rng = self.rng
        try:
            a = AmqpClient(self.ctx.ports["amqp-policy"], "%s-amqp" % self.who)
        except OSError:
            return
        address = rng.choice(["allowed/a", "denied/a", "allowed/b"])
        sender = rng.random() < 0.5
        self.log("policy AMQP %s %s" % ("sender to" if sender else "receiver from", address))
        try:
            link = a.sender(address) if sender else a.receiver(address, credit=5)
            deadline = time.time() + 3
            while time.time() < deadline and not (link.state & Endpoint.REMOTE_ACTIVE or
                                                  link.state & Endpoint.REMOTE_CLOSED):
                a.pump(0.02)
            refused = bool(link.state & Endpoint.REMOTE_CLOSED)
            cond = link.remote_condition.name if link.remote_condition else None
            if address.startswith("denied") and not (refused and
                                                     cond == "amqp:unauthorized-access"):
                if not (a.conn.state & Endpoint.REMOTE_CLOSED):  # the crowd limit
                    self.error = "%s: attach to %s not refused (%r)" % (self.who, address, cond)
            if address.startswith("allowed") and refused and cond == "amqp:unauthorized-access":
                self.error = "%s: attach to %s refused" % (self.who, address)
        finally:
            a.close()
