#!/usr/bin/python3
"""AMQP routing benchmark: trestled versus the same clients connected directly (no router).

Method as for the qdrouterd 1.19 reference numbers (measured on this machine, bench/RESULTS.md): N messages with a
100-byte body, receivers with 1000 credits, link capacity 250, median of --runs runs, the router
restarted fresh for each scenario. End-to-end msgs/s = messages received / (last receive - first
send). Router CPU from /proc/<pid>/stat over the run, peak RSS = VmHWM, idle RSS = VmRSS after
start-up with nothing connected.

  /usr/bin/python3 bench/amqp_bench.py --trestled build/trestled --arrow build/bench/amqp_arrow
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")

# qdrouterd 1.19 on this machine (bench/RESULTS.md, "AMQP routing"), for context in the printout.
QDROUTERD = {"routed_unsettled": 78192, "routed_presettled": 93438, "multicast_1to4": 31710,
             "direct_unsettled": 332778, "direct_presettled": 379794, "idle_rss_mb": 24.6}

CONFIG = """router {
    id: Bench
}
listener {
    name: amqp
    host: 127.0.0.1
    port: 0
    linkCapacity: 250
}
address {
    prefix: closest
    distribution: closest
}
address {
    prefix: multicast
    distribution: multicast
}
"""


def proc_stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime, seconds


def proc_status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0  # MB
    return 0.0


class Router:
    def __init__(self, trestled):
        self.conf = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False)
        self.conf.write(CONFIG)
        self.conf.close()
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        self.proc = subprocess.Popen([trestled, "--config", self.conf.name, "--log-level", "debug"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.port = None
        deadline = time.time() + 10
        while self.port is None and time.time() < deadline:
            m = re.search(r"listening on [^ ]*:(\d+)", self.text())
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.02)
        if self.port is None:
            raise RuntimeError("router did not start:\n" + self.text())

    def text(self):
        with open(self.log.name) as f:
            return f.read()

    def wait_attached(self, n, address, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.text().count("attached (from '%s')" % address) >= n:
                return
            time.sleep(0.01)
        raise RuntimeError("receivers did not attach")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        os.unlink(self.conf.name)
        os.unlink(self.log.name)


def start_arrow(arrow, *args):
    return subprocess.Popen([arrow] + list(args), stdout=subprocess.PIPE, text=True)


def result_of(p, timeout=300):
    out, _ = p.communicate(timeout=timeout)
    lines = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    return [l for l in lines if "role" in l][-1]


def run_routed(args, address, receivers, presettled):
    router = Router(args.trestled)
    try:
        time.sleep(0.5)  # let start-up allocations settle before the idle reading
        idle_rss = proc_status(router.proc.pid, "VmRSS")
        url = "127.0.0.1:%d" % router.port
        rs = [start_arrow(args.arrow, "receive", "--connect", url, "--address", address,
                          "--count", str(args.count), "--credit", "1000") for _ in range(receivers)]
        router.wait_attached(receivers, address)
        cpu0 = proc_stat(router.proc.pid)
        s = start_arrow(args.arrow, "send", "--connect", url, "--address", address,
                        "--count", str(args.count), *(["--presettled"] if presettled else []))
        sender = result_of(s)
        results = [result_of(r) for r in rs]
        cpu = proc_stat(router.proc.pid) - cpu0
        peak = proc_status(router.proc.pid, "VmHWM")
    finally:
        router.stop()
    received = min(r["count"] for r in results)
    elapsed = (max(r["last_ns"] for r in results) - sender["first_ns"]) / 1e9
    return {"rate": received / elapsed, "received": received, "sent": sender["count"],
            "cpu_us_per_msg": cpu * 1e6 / max(sender["count"], 1), "cpu_pct": 100 * cpu / elapsed,
            "peak_rss_mb": peak, "idle_rss_mb": idle_rss}


def direct_pair(arrow, count, credit, *sender_args):
    """amqp_arrow sending straight to amqp_arrow receiving (no router): both ends' results.
    kafka_bench.py uses it too, as the ceiling of a Proton-based receiver."""
    r = start_arrow(arrow, "receive", "--listen", "127.0.0.1:0", "--address", "direct",
                    "--count", str(count), "--credit", str(credit))
    port = json.loads(r.stdout.readline())["listening"]
    s = start_arrow(arrow, "send", "--connect", "127.0.0.1:%s" % port, "--address", "direct",
                    "--count", str(count), *sender_args)
    sender = result_of(s)
    out, _ = r.communicate(timeout=300)
    return sender, [json.loads(l) for l in out.splitlines() if '"role"' in l][-1]


def run_direct(args, presettled):
    sender, rec = direct_pair(args.arrow, args.count, 1000,
                              *(["--presettled"] if presettled else []))
    elapsed = (rec["last_ns"] - sender["first_ns"]) / 1e9
    return {"rate": rec["count"] / elapsed, "received": rec["count"], "sent": sender["count"]}


def run_interleaved(scenarios, runs):
    """Runs every scenario once per round, so that noise on a shared machine (other processes,
    frequency changes) hits all scenarios alike; returns each scenario's median run."""
    results = {name: [] for name, _ in scenarios}
    for _ in range(runs):
        for name, fn in scenarios:
            results[name].append(fn())
    out = {}
    for name, rs in results.items():
        rs.sort(key=lambda r: r["rate"])
        med = dict(rs[len(rs) // 2])
        med["runs"] = [round(r["rate"]) for r in rs]
        out[name] = med
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trestled", required=True)
    ap.add_argument("--arrow", required=True)
    ap.add_argument("--count", type=int, default=1000000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", help="write the raw results here")
    args = ap.parse_args()

    res = run_interleaved([
        ("direct_unsettled", lambda: run_direct(args, False)),
        ("direct_presettled", lambda: run_direct(args, True)),
        ("routed_unsettled", lambda: run_routed(args, "closest/bench", 1, False)),
        ("routed_presettled", lambda: run_routed(args, "closest/bench", 1, True)),
        ("multicast_1to4", lambda: run_routed(args, "multicast/bench", 4, False)),
    ], args.runs)

    print("\nAMQP routing benchmark: %d messages x 100-byte body, median of %d interleaved runs\n"
          % (args.count, args.runs))
    print("%-20s %12s %28s %9s %10s %10s" % ("scenario", "msgs/s", "runs", "CPU us/msg", "router CPU",
                                           "peak RSS"))
    for k, v in res.items():
        extra = ("%9.2f %9.0f%% %8.1f MB" % (v["cpu_us_per_msg"], v["cpu_pct"], v["peak_rss_mb"])
                 if "cpu_us_per_msg" in v else "")
        print("%-20s %12.0f %28s %s" % (k, v["rate"], v["runs"], extra))
        if v["received"] != v["sent"]:
            print("%20s received %d of %d sent" % ("", v["received"], v["sent"]))

    direct = res["direct_unsettled"]["rate"]
    ratio_u = res["routed_unsettled"]["rate"] / direct
    ratio_p = res["routed_presettled"]["rate"] / res["direct_presettled"]["rate"]
    ratio_m = res["multicast_1to4"]["rate"] / direct
    idle = statistics.median([res[k]["idle_rss_mb"] for k in res if "idle_rss_mb" in res[k]])
    checks = [
        ("routed/direct, unsettled 1->1", ratio_u, ">=", 0.5,
         QDROUTERD["routed_unsettled"] / QDROUTERD["direct_unsettled"]),
        ("routed/direct, presettled 1->1", ratio_p, "", None,
         QDROUTERD["routed_presettled"] / QDROUTERD["direct_presettled"]),
        ("multicast 1->4 in / direct 1->1", ratio_m, ">=", 0.2,
         QDROUTERD["multicast_1to4"] / QDROUTERD["direct_unsettled"]),
        ("idle RSS (MB)", idle, "<=", 8.0, QDROUTERD["idle_rss_mb"]),
    ]
    print("\n%-34s %8s %10s %12s" % ("ratio", "Trestle", "target", "qdrouterd"))
    ok = True
    for name, value, op, target, qd in checks:
        verdict = ""
        if target is not None:
            good = value >= target if op == ">=" else value <= target
            ok &= good
            verdict = "%s %s %s" % ("PASS" if good else "FAIL", op, target)
        print("%-34s %8.3f %10s %12.3f" % (name, value, verdict, qd))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
