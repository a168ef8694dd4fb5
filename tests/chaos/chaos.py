"""Chaos clients (docs/development.md, "Testing"): many concurrent AMQP and
MQTT clients do random things over real sockets to a real trestled, bounded in time, while the
Kafka broker under it goes down and comes back. Then the router must be alive with no sanitizer
report, its connections, links and addresses back at the configured baseline, its RSS near its
baseline, a fresh client must still route AMQP->AMQP, MQTT->MQTT and MQTT->Kafka->AMQP, and
every message acknowledged to a Kafka-bound address (AMQP accepted, MQTT PUBACK/PUBREC) must be
in the topic.

- AMQP clients drive Qpid Proton's engine (python3-qpid-proton) over their own sockets: attach
  and detach senders and receivers on closest, balanced, multicast, link-routed (a Proton
  example broker behind a route-container connector), Kafka-bound, anonymous and dynamic
  addresses and topic filters; send settled or unsettled, small or 2 MiB; settle with every
  outcome or never; grant credit, drain; set `$lwt` wills; close cleanly, with an error, reset
  the TCP connection, stop half way through a frame, or send garbage.
- MQTT clients encode MQTT 3.1.1 and 5 by hand: clean and persistent sessions, client ids
  shared between clients (takeover), shared subscriptions, QoS 0/1/2 both ways (answered or
  not), retained messages, wills with delay, keep-alive expiry, abrupt drops, garbage.
- Security clients (chaos_security.py) on a TLS MQTT listener with a userStore and a TLS AMQP
  listener with authenticatePeer: right, wrong and missing credentials (each refusal checked for
  its reason code), plaintext on TLS ports, ClientHellos cut off or followed by garbage, SASL
  exchanges broken off.
- Policy clients (chaos_security.py) on listeners of a restricted vhost: allowed and denied
  subscriptions, publishes, wills and attaches, and more connections than a user may have;
  each denial checked for its reason code, and nothing sent to a denied topic may arrive.
- `$management`: trestle-stat's views, queried all along; addresses, link routes and vhosts
  created and deleted at runtime.

Seeded: client i's choices come from Random(seed * 1000 + i); thread timing still varies, so a
replay is close, not exact. A failure prints the seed and the last actions of every client.

Run: /usr/bin/python3 chaos.py --trestled B/trestled --kafka-mock B/tests/kafka_mock
        --broker B/tests/proton_example_broker --trestle-stat B/trestle-stat [--seed N]
        [--seconds S] [--clients N]
"""
import argparse
import collections
import os
import random
import re
import select
import shutil
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
from trestled import Trestled, wait_for  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chaos_common import *  # noqa: E402,F401,F403
from chaos_amqp import AmqpChaos, AmqpClient  # noqa: E402
from chaos_mqtt import MqttChaos, MqttClient  # noqa: E402
from chaos_security import PolicyChaos, SecurityChaos, USER, PASSWORD  # noqa: E402
from certs import Certs  # noqa: E402

# ---------------------------------------------------------------------------------------------
# The run


class Context:
    pass


def metrics(router):
    status, text = router.http("/metrics")
    if status != 200:
        return None
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                values[name] = float(value)
            except ValueError:
                pass
    return values


BASELINE_SERIES = ['trestle_connections{protocol="amqp"}', 'trestle_connections{protocol="mqtt"}',
                   "trestle_links", "trestle_addresses", 'trestle_mqtt_sessions{state="connected"}',
                   'trestle_mqtt_sessions{state="offline"}']


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class KafkaMock:
    def __init__(self, path):
        self.p = subprocess.Popen([path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        assert line.startswith("bootstrap "), line
        self.bootstrap = line.split()[1]
        self.seq = 0
        self.lock = threading.Lock()

    def command(self, cmd):
        with self.lock:
            self.seq += 1
            self.p.stdin.write("%d %s\n" % (self.seq, cmd))
            self.p.stdin.flush()
            while True:
                line = self.p.stdout.readline()
                if not line or line.startswith("done %d" % self.seq):
                    return

    def stop(self):
        self.p.stdin.close()
        self.p.wait(10)


def config(ctx, bootstrap, broker_port):
    return """router {
    id: R.chaos
}
listener {
    name: amqp
    host: 127.0.0.1
    port: 0
    linkCapacity: 20
}
mqttListener {
    name: mqtt
    host: 127.0.0.1
    port: 0
    maxSessionExpirySeconds: 3
    allowAnonymous: yes
}
sslProfile {
    name: tls
    certFile: %(cert)s
    privateKeyFile: %(key)s
}
userStore {
    name: users
    passwordFile: %(users)s
}
mqttListener {
    name: mqtts
    host: 127.0.0.1
    port: 0
    sslProfile: tls
    websocketPath: /mqtt
}
listener {
    name: amqps
    host: 127.0.0.1
    port: 0
    sslProfile: tls
    authenticatePeer: yes
}
policy {
    enableVhostPolicy: yes
}
vhost {
    hostname: $default
    allowUnknownUser: yes
    groups: {"$default": {"remoteHosts": "*", "sources": "*", "targets": "*",
                          "allowDynamicSource": true, "allowAnonymousSender": true,
                          "allowManagementWrite": true}}
}
vhost {
    hostname: restricted
    maxConnectionsPerUser: 3
    allowUnknownUser: yes
    groups: {
        "$default": {
            "remoteHosts": "127.0.0.1",
            "sourcePattern": "allowed/#",
            "targetPattern": "allowed/#",
            "maxSenders": 2
        }
    }
}
mqttListener {
    name: mqtt-policy
    host: 127.0.0.1
    port: 0
    allowAnonymous: yes
    policyVhost: restricted
}
listener {
    name: amqp-policy
    host: 127.0.0.1
    port: 0
    policyVhost: restricted
}
httpListener {
    name: http
    host: 127.0.0.1
    port: 0
}
connector {
    name: broker
    host: 127.0.0.1
    port: %d
    role: route-container
}
linkRoute {
    prefix: queue
    direction: in
    connection: broker
}
linkRoute {
    prefix: queue
    direction: out
    connection: broker
}
address {
    prefix: closest
    distribution: closest
}
address {
    prefix: multicast
    distribution: multicast
}
address {
    prefix: balanced
    distribution: balanced
}
kafka {
    bootstrapServers: %s
}
kafkaRoute {
    name: telemetry
    pattern: telemetry/#
    topic: %s
}
""".replace("%(cert)s", ctx.certs.path("server.pem")).replace(
        "%(key)s", ctx.certs.path("server.key")).replace("%(users)s", ctx.users) % (
        broker_port, bootstrap, KAFKA_TOPIC)


def fresh_routing(ctx):
    """A fresh client still routes AMQP->AMQP, MQTT->MQTT and MQTT->Kafka->AMQP."""
    problems = []
    port = ctx.ports["amqp"]
    a = AmqpClient(port, "fresh-amqp")
    r = a.receiver("closest/fresh", credit=10)
    k = a.receiver("telemetry/fresh", credit=10)
    s = a.sender("closest/fresh")
    wait_for(lambda: a.pump(0.05) or s.credit > 0, 20, "credit for a fresh AMQP sender")
    a.send(s, "fresh amqp")
    wait_for(lambda: a.pump(0.05) or ("fresh amqp" in [b for _, b in a.received]), 20,
             "AMQP -> AMQP")
    sub = MqttClient(ctx.ports["mqtt"], "fresh-sub", v5=True)
    sub.subscribe("fresh/mqtt", 1)
    sub.pump(0.3)
    pub = MqttClient(ctx.ports["mqtt"], "fresh-pub", v5=False)
    pub.pump(0.1)
    pub.publish("fresh/mqtt", "fresh mqtt", 1)
    try:
        wait_for(lambda: sub.pump(0.05) or any(p == b"fresh mqtt" for _, p in sub.received), 20,
                 "MQTT -> MQTT")
    except AssertionError as e:
        problems.append(str(e))
    acked = Acked()
    pub.acked = acked
    pub.publish("telemetry/fresh", "fresh kafka", 1, kafka_id="fresh kafka")
    try:
        wait_for(lambda: pub.pump(0.05) or "fresh kafka" in acked.ids, 30, "Kafka's PUBACK")
        wait_for(lambda: a.pump(0.05) or ("fresh kafka" in [b for _, b in a.received]), 30,
                 "MQTT -> Kafka -> AMQP")
    except AssertionError as e:
        problems.append(str(e))
    for c in (sub, pub):
        c.disconnect()
        c.sock.close()
    a.close()
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trestled", required=True)
    ap.add_argument("--kafka-mock", required=True)
    ap.add_argument("--broker", required=True)
    ap.add_argument("--trestle-stat", required=True)
    ap.add_argument("--trestle-manage", required=True)
    ap.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--clients", type=int, default=6, help="AMQP clients; as many MQTT ones")
    ap.add_argument("--rss-slack-mb", type=float, default=64,
                    help="how far above its baseline RSS may end (ASan builds grow more)")
    ap.add_argument("--linger", type=float, default=0,
                    help="after a failure, keep the router up this many seconds to look at it")
    args = ap.parse_args()
    print("chaos: seed %d, %d s, %d AMQP + %d MQTT clients" % (args.seed, args.seconds,
                                                              args.clients, args.clients))
    sys.stdout.flush()

    ctx = Context()
    ctx.seed = args.seed
    ctx.journal = Journal()
    ctx.acked = Acked()
    # The secured listeners' certificate and one user, for the security clients.
    ctx.certs = Certs()
    ctx.ca = ctx.certs.path("ca.pem")
    ctx.users = ctx.certs.path("users")
    subprocess.run(["mosquitto_passwd", "-c", "-b", ctx.users, USER, PASSWORD], check=True)
    kafka = KafkaMock(args.kafka_mock)
    kafka.command("topic %s 4" % KAFKA_TOPIC)
    broker_port = free_port()
    broker = subprocess.Popen([args.broker, "127.0.0.1", str(broker_port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ)
    # ASan keeps 256 MB of freed memory by default: that, not the router, would be measured.
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=16"
    router = Trestled(args.trestled, config(ctx, kafka.bootstrap, broker_port), env=env)
    failures = []
    threads = []
    try:
        ctx.ports = router.start(["amqp", "mqtt", "http", "mqtts", "amqps", "mqtt-policy",
                                  "amqp-policy"])
        wait_for(lambda: router.http("/readyz")[0] == 200, 30, "/readyz")
        wait_for(lambda: "assigned topic" in router.log(), 30, "the Kafka route's partitions")
        wait_for(lambda: (metrics(router) or {}).get('trestle_connections{protocol="amqp"}') == 1,
                 30, "the connector to the broker")
        baseline = metrics(router)
        rss0 = router.rss_kb()
        ctx.deadline = time.time() + args.seconds
        threads = [AmqpChaos(i, ctx) for i in range(args.clients)] + \
                  [MqttChaos(i, ctx) for i in range(args.clients)] + \
                  [SecurityChaos(i, ctx) for i in range(2)] + \
                  [PolicyChaos(i, ctx) for i in range(2)]
        # Nothing sent to a topic the policy denies may arrive anywhere.
        watcher = MqttClient(ctx.ports["mqtt"], "denied-watcher", v5=True)
        watcher.subscribe("denied/#", 0)
        watcher.pump(0.2)
        for t in threads:
            t.start()
        # Meanwhile: management queries all along, and the Kafka broker down and up.
        stat = [args.trestle_stat, "-b", "127.0.0.1:%d" % ctx.ports["amqp"]]
        views = [["-c"], ["-l"], ["-a"], ["--mqtt"], ["--kafka"], ["--retained"], ["-g"]]
        rng = random.Random(args.seed)
        next_outage = time.time() + rng.uniform(5, 15)
        broker_down_until = 0
        manage = [args.trestle_manage, "-b", "127.0.0.1:%d" % ctx.ports["amqp"]]
        runtime = {"address": False, "linkRoute": False, "vhost": False}  # created, now
        changes = [0, 0]  # runtime changes made, refused
        while time.time() < ctx.deadline:
            if rng.random() < 0.15:
                kind = rng.choice(sorted(runtime))
                if runtime[kind]:
                    cmd = ["delete", "--type=" + kind, "--name=chaos-" + kind]
                elif kind == "address":
                    cmd = ["create", "--type=address", "--name=chaos-address", "prefix=chaos",
                           "distribution=" + rng.choice(["closest", "balanced", "multicast"])]
                elif kind == "vhost":
                    cmd = ["create", "--type=vhost", "--name=chaos-vhost", "hostname=chaos-vhost",
                           'groups={"g": {"users": "u", "remoteHosts": "*", "sources": "a*"}}']
                else:
                    cmd = ["create", "--type=linkRoute", "--name=chaos-linkRoute", "prefix=rq",
                           "direction=" + rng.choice(["in", "out"]), "connection=broker"]
                r = subprocess.run(manage + cmd, capture_output=True, text=True, timeout=30)
                if r.returncode == 0:
                    runtime[kind] = not runtime[kind]
                changes[r.returncode != 0] += 1
                ctx.journal.add("mgmt", "trestle-manage %s -> %d" % (" ".join(cmd), r.returncode))
            view = rng.choice(views)
            r = subprocess.run(stat + view, capture_output=True, text=True, timeout=30)
            ctx.journal.add("mgmt", "trestle-stat %s -> %d" % (" ".join(view), r.returncode))
            if not router.alive():
                break
            now = time.time()
            if broker_down_until and now >= broker_down_until:
                kafka.command("up 1")
                ctx.journal.add("kafka", "broker up")
                broker_down_until = 0
                next_outage = now + rng.uniform(8, 20)
            elif not broker_down_until and now >= next_outage:
                kafka.command("down 1")
                ctx.journal.add("kafka", "broker down")
                broker_down_until = now + rng.uniform(2, 6)
            # The pace of the management queries; a router that dies ends the loop at once.
            try:
                router.process.wait(0.2)
                break
            except subprocess.TimeoutExpired:
                pass
        if broker_down_until:
            kafka.command("up 1")
            ctx.journal.add("kafka", "broker up")
        for t in threads:
            t.join(30)
            if t.is_alive():
                failures.append("%s did not finish" % t.who)
            elif t.error:
                failures.append("client error " + t.error)
        watcher.pump(0.5)
        if watcher.received:
            failures.append("messages to denied topics arrived: %r" % watcher.received[:5])
        watcher.disconnect()
        watcher.sock.close()
        denials = sum(v for k, v in (metrics(router) or {}).items()
                      if k.startswith("trestle_policy_denials_total"))
        print("chaos: clients done; %d messages acknowledged to Kafka; %d runtime address / "
              "link route / vhost changes (%d refused); %d policy denials" % (
                  len(ctx.acked.ids), changes[0], changes[1], denials))
        if not denials:
            failures.append("the policy clients met no denial")
        sys.stdout.flush()

        if not router.alive():
            failures.append("trestled died")
        else:
            # Back to the baseline once sessions expire and wills fire (seconds, not minutes).
            def at_baseline():
                m = metrics(router)
                return m and all(m.get(k) == baseline.get(k) for k in BASELINE_SERIES)
            try:
                wait_for(at_baseline, 60, "connections, links, addresses and sessions back at "
                         "the baseline", interval=0.5)
            except AssertionError as e:
                m = metrics(router) or {}
                failures.append("%s: %s" % (e, {k: (baseline.get(k), m.get(k))
                                                for k in BASELINE_SERIES}))
            routing = fresh_routing(ctx)
            if routing:
                out = subprocess.run(stat + ["--kafka"], capture_output=True, text=True,
                                     timeout=30).stdout
                failures += routing + ["trestle-stat --kafka after it:\n" + out]
            try:
                wait_for(lambda: router.http("/readyz")[0] == 200, 60, "/readyz after the run")
            except AssertionError as e:
                failures.append(str(e))
            rss = router.rss_kb()
            print("chaos: RSS %.1f MB at the baseline, %.1f MB after the run" % (rss0 / 1024,
                                                                              rss / 1024))
            if rss > rss0 + args.rss_slack_mb * 1024:
                failures.append("RSS %.1f MB is more than %.0f MB above its baseline %.1f MB" % (
                    rss / 1024, args.rss_slack_mb, rss0 / 1024))
            # Every acknowledged Kafka-bound message is in the topic.
            if ctx.acked.ids:
                def missing():
                    out = subprocess.run(["kcat", "-b", kafka.bootstrap, "-C", "-t", KAFKA_TOPIC,
                                          "-e", "-q", "-f", "%s\\n"], capture_output=True,
                                         timeout=60).stdout.decode(errors="replace")
                    present = set(re.findall(r"(?:amqp|mqtt)\d+-\d+", out))
                    present.update(x for x in ("fresh kafka",) if x in out)
                    return sorted(ctx.acked.ids - present)
                lost = missing()
                if lost:
                    dump = ctx.journal.dump().splitlines()
                    print("\n".join(l for l in dump if any(x in l for x in lost[:20])))
                    failures.append("%d acknowledged messages are not in topic %s: %s" % (
                        len(lost), KAFKA_TOPIC, [(x, ctx.acked.how.get(x)) for x in lost[:20]]))
    except Exception as e:  # the harness's own failure is reported with the journal too
        failures.append("%s: %s" % (type(e).__name__, e))
    finally:
        ctx.deadline = 0
        if failures and args.linger:
            print("chaos: lingering %g s; the router's ports: %s" % (args.linger, ctx.ports))
            sys.stdout.flush()
            try:  # for a person to look at the failed router, until it ends or time is up
                router.process.wait(args.linger)
            except subprocess.TimeoutExpired:
                pass
        alive = router.alive()
        code = router.stop()
        report = router.sanitizer_report()
        log = router.log()
        router.cleanup()
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(ctx.certs.dir, ignore_errors=True)
        kafka.stop()
    if alive and code != 0:
        failures.append("trestled did not stop gracefully (exit %s)" % code)
    if report:
        failures.append("sanitizer report:\n" + report)
    if not alive:
        failures.append("trestled died; its log ends:\n" + log[-6000:])
    if failures:
        kept = os.path.abspath("chaos-trestled-%d.log" % args.seed)
        with open(kept, "w") as f:
            f.write(log)
        print("chaos: FAILED with seed %d (replay: --seed %d --seconds %g --clients %d); the "
              "router's whole log: %s" % (args.seed, args.seed, args.seconds, args.clients, kept))
        for f in failures:
            print("  - " + f)
        print("last actions:\n" + ctx.journal.dump())
        return 1
    print("chaos: passed with seed %d" % args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())

