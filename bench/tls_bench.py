#!/usr/bin/env python3
"""TLS costs, paired in one run (issue 22):

1. AMQP routed throughput over TLS + SASL PLAIN against plaintext: amqp_arrow sender and
   receiver through one trestled, 1->1 unsettled on a closest address, the two variants
   interleaved, median of --runs (target: TLS / plain >= 0.8).
2. MQTT connection setups per second with TLS + user name and password, Trestle against
   Mosquitto 2.0 with the same certificate and the same mosquitto_passwd file (target >= 1):
   one client, sequential, each setup a TCP connect, TLS 1.3 handshake, CONNECT with
   credentials, CONNACK, DISCONNECT.

3. MQTT QoS 1 throughput over TLS, Trestle against Mosquitto with the same certificate
   (target >= 1.2): bench/mqtt_load with --cafile, one publisher and one subscriber, 100-byte
   payloads, at most --window messages outstanding (as bench/mqtt_bench.py's b_1to1_qos1).

Run: /usr/bin/python3 bench/tls_bench.py --trestled build/trestled --arrow build/bench/amqp_arrow
        --load build/bench/mqtt_load
"""
import json
import argparse
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration", "python"))
from amqp_bench import proc_stat, result_of, run_interleaved, start_arrow  # noqa: E402
from certs import Certs  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Trestled:
    def __init__(self, trestled, conf_text, names, log_level="debug"):
        self.dir = tempfile.mkdtemp(prefix="tls-bench-")
        conf = os.path.join(self.dir, "t.conf")
        with open(conf, "w") as f:
            f.write(conf_text)
        self.log = os.path.join(self.dir, "t.log")
        self.proc = subprocess.Popen([trestled, "--config", conf, "--log-level", log_level],
                                     stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        self.ports = {}
        deadline = time.time() + 10
        while len(self.ports) < len(names) and time.time() < deadline:
            for m in re.finditer(r"listener '([^']+)' \(\w+\) listening on [^ ]*:(\d+)",
                                 self.text()):
                self.ports[m.group(1)] = int(m.group(2))
            time.sleep(0.02)  # polling the log for the listeners' ports, bounded
        if len(self.ports) < len(names):
            raise RuntimeError("trestled did not start:\n" + self.text())

    def text(self):
        with open(self.log) as f:
            return f.read()

    def wait_attached(self, address, timeout=10):
        deadline = time.time() + timeout
        while "attached (from '%s')" % address not in self.text():
            if time.time() > deadline:
                raise RuntimeError("receiver did not attach")
            time.sleep(0.01)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def amqp_config(certs, users):
    return ("router {\n    id: bench\n}\n"
            "sslProfile {\n    name: tls\n    certFile: %s\n    privateKeyFile: %s\n}\n"
            "userStore {\n    name: users\n    passwordFile: %s\n}\n"
            "listener {\n    name: plain\n    host: 127.0.0.1\n    port: 0\n}\n"
            "listener {\n    name: tls\n    host: 127.0.0.1\n    port: 0\n    sslProfile: tls\n"
            "    authenticatePeer: yes\n    saslMechanisms: PLAIN\n}\n"
            % (certs.path("server.pem"), certs.path("server.key"), users))


def run_amqp(args, certs, users, tls):
    r = Trestled(args.trestled, amqp_config(certs, users), ["plain", "tls"])
    try:
        port = r.ports["tls" if tls else "plain"]
        extra = ["--tls", certs.path("ca.pem"), "--user", "bench", "--password", "bench-pw"] \
            if tls else []
        url = "127.0.0.1:%d" % port
        rcv = start_arrow(args.arrow, "receive", "--connect", url, "--address", "closest/b",
                          "--count", str(args.count), "--credit", "1000", *extra)
        r.wait_attached("closest/b")
        cpu0 = proc_stat(r.proc.pid)
        snd = start_arrow(args.arrow, "send", "--connect", url, "--address", "closest/b",
                          "--count", str(args.count), *extra)
        sender = result_of(snd)
        receiver = result_of(rcv)
        cpu = proc_stat(r.proc.pid) - cpu0
    finally:
        r.stop()
    elapsed = (receiver["last_ns"] - sender["first_ns"]) / 1e9
    return {"rate": receiver["count"] / elapsed, "received": receiver["count"],
            "cpu_us_per_msg": cpu * 1e6 / max(receiver["count"], 1)}


def mqtt_string(s):
    b = s.encode()
    return bytes([len(b) >> 8, len(b) & 255]) + b


def connect_packet(client_id, user, password):
    vh = mqtt_string("MQTT") + bytes([4, 0xC2, 0, 60])  # 3.1.1, user+password+clean, 60 s
    payload = mqtt_string(client_id) + mqtt_string(user) + mqtt_string(password)
    body = vh + payload
    return bytes([0x10, len(body)]) + body  # short enough for a one-byte length


def setups(port, ca, seconds, password="bench-pw"):
    """Sequential TLS + CONNECT/CONNACK/DISCONNECT for `seconds`; returns setups per second."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    n, refused = 0, 0
    start = time.time()
    while time.time() - start < seconds:
        with socket.create_connection(("127.0.0.1", port)) as raw:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(connect_packet("bench-%d" % n, "bench", password))
                ack = b""
                while len(ack) < 4:
                    chunk = s.recv(4 - len(ack))
                    if not chunk:
                        break
                    ack += chunk
                if ack[:2] != b"\x20\x02" or ack[3] != 0:
                    refused += 1
                s.sendall(b"\xe0\x00")
        n += 1
    if refused:
        raise RuntimeError("%d of %d CONNECTs refused" % (refused, n))
    return n / (time.time() - start)


def run_setups_trestle(args, certs, users):
    conf = ("router {\n    id: bench\n}\n"
            "sslProfile {\n    name: tls\n    certFile: %s\n    privateKeyFile: %s\n}\n"
            "userStore {\n    name: users\n    passwordFile: %s\n}\n"
            "mqttListener {\n    name: mqtts\n    host: 127.0.0.1\n    port: 0\n"
            "    sslProfile: tls\n}\n"
            % (certs.path("server.pem"), certs.path("server.key"), users))
    # Trestle's default log level: two lines per connection (mosquitto: log_type none).
    r = Trestled(args.trestled, conf, ["mqtts"], log_level="info")
    try:
        cpu0 = proc_stat(r.proc.pid)
        rate = setups(r.ports["mqtts"], certs.path("ca.pem"), args.seconds)
        cpu = proc_stat(r.proc.pid) - cpu0
    finally:
        r.stop()
    return {"rate": rate, "cpu_ms_per_setup": cpu * 1000 / (rate * args.seconds)}


def start_mosquitto(certs, users):
    """Mosquitto 2.0 on a TLS listener with our certificate: (process, port, its directory).
    With `users`, its password file (no anonymous clients); without, anonymous clients."""
    d = tempfile.mkdtemp(prefix="mosquitto-bench-")
    port = free_port()
    conf = os.path.join(d, "m.conf")
    auth = ("password_file %s\nallow_anonymous false\n" % users) if users \
        else "allow_anonymous true\n"
    with open(conf, "w") as f:
        f.write("listener %d 127.0.0.1\ncertfile %s\nkeyfile %s\n%s"
                "persistence false\nlog_type none\nset_tcp_nodelay true\n"
                # as root it would switch to user mosquitto, who cannot read our temp files
                "user %s\n"
                % (port, certs.path("server.pem"), certs.path("server.key"), auth,
                   os.environ.get("USER", "root")))
    p = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return p, port, d
        except OSError:
            if time.time() > deadline:
                p.kill()
                raise
            time.sleep(0.02)  # waiting for mosquitto to listen, bounded


def stop_mosquitto(p, d):
    p.terminate()
    p.wait(10)
    shutil.rmtree(d, ignore_errors=True)


def run_setups_mosquitto(args, certs, users):
    p, port, d = start_mosquitto(certs, users)
    try:
        cpu0 = proc_stat(p.pid)
        rate = setups(port, certs.path("ca.pem"), args.seconds)
        cpu = proc_stat(p.pid) - cpu0
    finally:
        stop_mosquitto(p, d)
    return {"rate": rate, "cpu_ms_per_setup": cpu * 1000 / (rate * args.seconds)}


def qos1_flow(args, port, certs):
    """mqtt_load over TLS, 1 -> 1 QoS 1; its JSON line."""
    out = subprocess.run([args.load, "flow", "--port", str(port), "--publishers", "1",
                          "--subscribers", "1", "--qos", "1", "--count", str(args.mqtt_count),
                          "--window", "1000", "--payload", "100", "--cafile",
                          certs.path("ca.pem")],
                         stdout=subprocess.PIPE, text=True, timeout=300, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_qos1_trestle(args, certs):
    conf = ("router {\n    id: bench\n}\n"
            "sslProfile {\n    name: tls\n    certFile: %s\n    privateKeyFile: %s\n}\n"
            "mqttListener {\n    name: mqtts\n    host: 127.0.0.1\n    port: 0\n"
            "    sslProfile: tls\n}\n" % (certs.path("server.pem"), certs.path("server.key")))
    r = Trestled(args.trestled, conf, ["mqtts"], log_level="info")
    try:
        cpu0 = proc_stat(r.proc.pid)
        res = qos1_flow(args, r.ports["mqtts"], certs)
        cpu = proc_stat(r.proc.pid) - cpu0
    finally:
        r.stop()
    return {"rate": res["rate"], "cpu_us_per_msg": cpu * 1e6 / max(res["received_by_all"], 1)}


def run_qos1_mosquitto(args, certs):
    p, port, d = start_mosquitto(certs, None)
    try:
        cpu0 = proc_stat(p.pid)
        res = qos1_flow(args, port, certs)
        cpu = proc_stat(p.pid) - cpu0
    finally:
        stop_mosquitto(p, d)
    return {"rate": res["rate"], "cpu_us_per_msg": cpu * 1e6 / max(res["received_by_all"], 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trestled", required=True)
    ap.add_argument("--arrow", required=True)
    ap.add_argument("--load", required=True, help="build/bench/mqtt_load")
    ap.add_argument("--mqtt-count", type=int, default=300000)
    ap.add_argument("--count", type=int, default=500000)
    ap.add_argument("--seconds", type=float, default=5.0, help="per setup-rate run")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if not shutil.which("mosquitto"):
        sys.exit("mosquitto is not installed: scripts/deps.sh bench")

    certs = Certs()
    work = tempfile.mkdtemp(prefix="tls-bench-users-")
    users = os.path.join(work, "passwd")  # mosquitto's format: both brokers read it
    subprocess.run(["mosquitto_passwd", "-c", "-b", users, "bench", "bench-pw"], check=True)
    try:
        res = run_interleaved([
            ("amqp_routed_plain", lambda: run_amqp(args, certs, users, False)),
            ("amqp_routed_tls_plain_sasl", lambda: run_amqp(args, certs, users, True)),
            ("mqtt_setups_trestle", lambda: run_setups_trestle(args, certs, users)),
            ("mqtt_setups_mosquitto", lambda: run_setups_mosquitto(args, certs, users)),
            ("mqtt_qos1_tls_trestle", lambda: run_qos1_trestle(args, certs)),
            ("mqtt_qos1_tls_mosquitto", lambda: run_qos1_mosquitto(args, certs)),
        ], args.runs)
    finally:
        shutil.rmtree(certs.dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)

    print("\nTLS benchmark: AMQP %d messages x 100 bytes routed 1->1 unsettled; MQTT setups for "
          "%.0f s per run; MQTT QoS 1 %d messages x 100 bytes 1->1 over TLS; median of %d "
          "interleaved runs\n" % (args.count, args.seconds, args.mqtt_count, args.runs))
    print("%-28s %10s %36s %s" % ("scenario", "rate/s", "runs", "router CPU"))
    for k, v in res.items():
        cpu = ("%.2f us/msg" % v["cpu_us_per_msg"] if "cpu_us_per_msg" in v
               else "%.2f ms/setup" % v["cpu_ms_per_setup"])
        print("%-28s %10.0f %36s %s" % (k, v["rate"], " ".join(map(str, v["runs"])), cpu))
    checks = [
        ("AMQP routed, TLS+SASL / plain", res["amqp_routed_tls_plain_sasl"]["rate"] /
         res["amqp_routed_plain"]["rate"], 0.8),
        ("MQTT TLS+password setups, Trestle / Mosquitto", res["mqtt_setups_trestle"]["rate"] /
         res["mqtt_setups_mosquitto"]["rate"], 1.0),
        ("MQTT QoS 1 over TLS, Trestle / Mosquitto", res["mqtt_qos1_tls_trestle"]["rate"] /
         res["mqtt_qos1_tls_mosquitto"]["rate"], 1.2),
    ]
    print("\n%-48s %8s %8s" % ("ratio", "value", "target"))
    ok = True
    for name, value, target in checks:
        good = value >= target
        ok &= good
        print("%-48s %8.3f %8s" % (name, value, ("PASS >= " if good else "FAIL >= ") +
                                    str(target)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
