"""A real trestled for Python tests: started on a config whose ports are 0, its ports read from
its log, stopped with SIGTERM (exit code 0 expected), its log checked for sanitizer reports."""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:")


def binaries(*names):
    """The programs a test script was given first on its command line (popped, so unittest
    sees only its own arguments), else from the environment, else from PATH. `names`: pairs
    (environment variable, default)."""
    return [sys.argv.pop(1) if len(sys.argv) > 1 else os.environ.get(var, default)
            for var, default in names]


def wait_for(condition, timeout, what, interval=0.02):
    """Polls `condition` until it returns something true; fails with `what` after `timeout` s."""
    deadline = time.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)  # the poll interval of a bounded condition wait


class Trestled:
    def __init__(self, trestled, config_text, extra_args=(), env=None):
        self.conf = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False)
        self.conf.write(config_text)
        self.conf.close()
        self.log_path = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False).name
        self.log_file = open(self.log_path, "w")
        self.process = subprocess.Popen([trestled, "--config", self.conf.name, *extra_args],
                                        stdout=self.log_file, stderr=subprocess.STDOUT,
                                        env=env)
        self.ports = {}
        self.kafka = None

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def start(self, listeners, timeout=30):
        """Waits until every named listener logged its port; returns {name: port}."""
        def found():
            if self.process.poll() is not None:
                raise AssertionError("trestled exited with %s:\n%s" %
                                     (self.process.returncode, self.log()[-4000:]))
            text = self.log()
            for m in re.finditer(r"listener '([^']+)' \(\w+\) listening on [^ ]*:(\d+)", text):
                self.ports[m.group(1)] = int(m.group(2))
            m = re.search(r"embedded Kafka .* at (\S+:\d+)", text)
            if m:
                self.kafka = m.group(1)
            return all(n in self.ports for n in listeners)
        wait_for(found, timeout, "listeners %s in the log" % (listeners,))
        return self.ports

    def alive(self):
        return self.process.poll() is None

    def http(self, path, listener="http"):
        """(status, body) of a GET on the httpListener."""
        url = "http://127.0.0.1:%d%s" % (self.ports[listener], path)
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def rss_kb(self):
        with open("/proc/%d/status" % self.process.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def sanitizer_report(self):
        m = SANITIZER_REPORT.search(self.log())
        return self.log()[m.start():m.start() + 4000] if m else None

    def stop(self, timeout=20):
        """SIGTERM; returns the exit code (0 = a graceful stop)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()
        return self.process.returncode

    def cleanup(self):
        for p in (self.conf.name, self.log_path):
            try:
                os.unlink(p)
            except OSError:
                pass
