"""The chaos clients' attacks on the secured listeners (docs/security.md): MQTT over TLS with
right, wrong and missing credentials, plaintext on TLS ports, TLS handshakes cut off or fed
garbage, AMQP over TLS with SASL exchanges broken off. Every refusal must be one: a CONNACK that
accepts a wrong password is an error."""
import select
import socket
import ssl
import time

from chaos_common import ChaosClient, rst_close
from chaos_mqtt import MqttClient, packet

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
        else:
            self.amqp_tls()

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
