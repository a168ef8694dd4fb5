"""Runs the documentation's examples, exactly as written, against a real trestled: README.md
first, then the other documents given, in order (docs/development.md, "Testing").

- Blocks fenced as ```sh test or ```python test run in order, in one session against one
  trestled started on its built-in default configuration (router-config/standalone.conf) with
  its well-known ports made ephemeral. The examples' text is rewritten only for those ports:
  127.0.0.1:5672 (AMQP), -p 1883 (MQTT), 127.0.0.1:8672 (HTTP), 127.0.0.1:PORT (the embedded
  Kafka, which the README tells the reader to read off the log), and build/trestle-stat /
  trestle-manage to the built tools.
- A line `#> text` in a block says that the block's output holds that line (white space folded;
  in any order, since background subscribers print when their messages arrive).
- After a background `mosquitto_sub ... -t 'FILTER' ... &`, the runner waits until the router
  shows that subscription (what a person typing the next line does without noticing).
- Blocks fenced as ```conf test are configurations: `trestled --check` must accept each.
  Paths under /etc/trestle/ point to a temporary stand-in with test certificates and files.

Run: /usr/bin/python3 readme_examples.py TRESTLED TRESTLE_STAT TRESTLE_MANAGE README.md [DOC.md...]
"""
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration", "python"))
from trestled import Trestled, wait_for  # noqa: E402

TRESTLED, TRESTLE_STAT, TRESTLE_MANAGE = sys.argv[1:4]
DOCS = sys.argv[4:]
ROOT = os.path.dirname(os.path.abspath(DOCS[0]))  # README.md is at the repository's root
BLOCK = re.compile(r"^```(sh|python|conf) test\n(.*?)^```", re.M | re.S)


def fold(s):
    return " ".join(s.split())


def blocks():
    for doc in DOCS:
        with open(doc) as f:
            text = f.read()
        where = os.path.relpath(os.path.abspath(doc), ROOT)
        for m in BLOCK.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            yield m.group(1), m.group(2), "%s:%d" % (where, line)


def default_config():
    with open(os.path.join(ROOT, "router-config", "standalone.conf")) as f:
        conf = f.read()
    conf, n = re.subn(r"port: (amqp|mqtt|8672)\b", "port: 0", conf)
    assert n == 3, "standalone.conf's listeners changed: update readme_examples.py"
    return conf


class Session:
    def __init__(self):
        self.router = Trestled(TRESTLED, default_config())
        self.ports = self.router.start(["amqp", "mqtt", "http"])
        # Ready = what the README's reader sees before trying anything: /readyz answers 200 and
        # the Kafka routes are consuming (their multicast consumers start from the topic's end).
        wait_for(lambda: self.router.http("/readyz")[0] == 200, 30, "/readyz")
        wait_for(lambda: self.router.log().count("assigned topic") >= 2, 30,
                 "the Kafka routes' partitions")

    def rewrite(self, text):
        p = self.ports
        text = re.sub(r"(build/)?trestle-(stat|manage)( -b 127\.0\.0\.1:5672)?\b",
                      lambda m: "%s -b 127.0.0.1:%d" % (
                          TRESTLE_STAT if m.group(2) == "stat" else TRESTLE_MANAGE, p["amqp"]),
                      text)
        text = text.replace("127.0.0.1:5672", "127.0.0.1:%d" % p["amqp"])
        text = text.replace("127.0.0.1:8672", "127.0.0.1:%d" % p["http"])
        text = re.sub(r"-p 1883\b", "-p %d" % p["mqtt"], text)
        text = text.replace("127.0.0.1:PORT", self.router.kafka)
        return text

    def run_shell(self, body, line):
        script = ["set -e"]
        for cmd in self.rewrite(body).splitlines():
            script.append(cmd)
            m = re.match(r"\s*mosquitto_sub .*-t '([^']+)'.*&\s*$", cmd)
            if m:
                script.append("__wait_subscribed %s" % shlex.quote(m.group(1)))
        helper = ("__wait_subscribed() { for i in $(seq 100); do %s -b 127.0.0.1:%d --mqtt | "
                  "grep -qF \"$1(\" && return 0; sleep 0.1; done; echo \"not subscribed: $1\" >&2;"
                  " return 1; }\n" % (TRESTLE_STAT, self.ports["amqp"]))
        return self.run(["bash", "-c", helper + "\n".join(script)], body, line)

    def run(self, argv, body, line):
        expected = [fold(m) for m in re.findall(r"^\s*#> ?(.*)$", body, re.M)]
        out = tempfile.TemporaryFile("w+")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                             start_new_session=True)
        try:
            code = p.wait(90)
        except subprocess.TimeoutExpired:
            code = "timeout"

        def output():
            out.seek(0)
            return out.read()

        def missing():
            text = [fold(x) for x in output().splitlines()]
            return [e for e in expected if not any(e in t for t in text)]
        try:
            if code == 0 and missing():
                wait_for(lambda: not missing(), 15, "the output the README shows")
        except AssertionError:
            pass
        finally:
            try:
                os.killpg(p.pid, signal.SIGTERM)  # background clients the block started
            except ProcessLookupError:
                pass
        problems = []
        if code != 0:
            problems.append("exit status %s" % code)
        if missing():
            problems.append("output lacks %s" % missing())
        if not self.router.alive():
            problems.append("trestled died")
        if problems:
            return "%s: %s\n--- output:\n%s" % (line, "; ".join(problems), output())
        return None


FIXTURE = {}


def etc_trestle():
    """A stand-in for /etc/trestle, which the security examples name: a CA, a server
    certificate and key, an empty password file and an uplink password. (--check loads every
    file a configuration names. test_security.py covers encrypted keys.)"""
    if "dir" not in FIXTURE:
        from certs import Certs
        c = Certs()
        d = FIXTURE["dir"] = tempfile.mkdtemp(prefix="etc-trestle-")
        os.mkdir(os.path.join(d, "tls"))
        for src, dst in (("server.pem", "tls/tls.crt"), ("server.key", "tls/tls.key"),
                         ("ca.pem", "tls/ca.crt"), ("ca.pem", "cloud-ca.pem")):
            shutil.copy(c.path(src), os.path.join(d, dst))
        with open(os.path.join(d, "passwd"), "w") as f:
            f.write("# trestle-passwd adds users here\n")
        with open(os.path.join(d, "uplink-password"), "w") as f:
            f.write("uplink-secret\n")
        shutil.rmtree(c.dir)
    return FIXTURE["dir"]


def check_config(body, line):
    env = None
    if "/etc/trestle/" in body:
        body = body.replace("/etc/trestle/", etc_trestle() + "/")
        env = dict(os.environ, TRESTLE_KEY_PASSWORD="fixture")
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write(body)
    r = subprocess.run([TRESTLED, "--check", "--config", f.name], capture_output=True, text=True,
                       timeout=30, env=env)
    os.unlink(f.name)
    if r.returncode != 0:
        return "%s: trestled --check refused the configuration:\n%s" % (
            line, r.stdout + r.stderr)
    return None


def main():
    session = Session()
    failures, ran = [], 0
    try:
        for kind, body, line in blocks():
            ran += 1
            if kind == "conf":
                problem = check_config(body, line)
            elif kind == "sh":
                problem = session.run_shell(body, line)
            else:
                problem = session.run(["/usr/bin/python3", "-c", session.rewrite(body)], body, line)
            print("%s %s block: %s" % (line, kind, "FAILED" if problem else "ok"))
            if problem:
                failures.append(problem)
    finally:
        if "dir" in FIXTURE:
            shutil.rmtree(FIXTURE["dir"], ignore_errors=True)
        alive = session.router.alive()
        code = session.router.stop()
        report = session.router.sanitizer_report()
        log = session.router.log()
        session.router.cleanup()
    if not alive or code != 0:
        failures.append("trestled %s (exit %s):\n%s" % ("died" if not alive else "did not stop",
                                                        code, log[-4000:]))
    if report:
        failures.append("sanitizer report:\n" + report)
    if ran < 5:
        failures.append("only %d blocks are marked runnable" % ran)
    for f in failures:
        print(f)
    print("documentation examples: %d blocks run, %d problems" % (ran, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
