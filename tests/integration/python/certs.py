"""Test certificates made with the openssl command line: a CA, a server certificate for
localhost/127.0.0.1, client certificates (one signed by the CA, one expired, one from an
untrusted CA). Everything in a temporary directory; nothing is reused between runs."""
import os
import subprocess
import tempfile


def _run(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _ca(d, name):
    _run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
         "/CN=%s" % name, "-keyout", name + ".key", "-out", name + ".pem", cwd=d)


def _signed(d, name, ca, subject, days="2", san=None, key_password=None):
    keyargs = ["-nodes"] if key_password is None else ["-passout", "pass:" + key_password]
    _run("req", "-newkey", "rsa:2048", *keyargs, "-subj", subject, "-keyout", name + ".key",
         "-out", name + ".csr", cwd=d)
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        if san:
            f.write("subjectAltName=%s\n" % san)
    if days.startswith("-"):
        # An expired certificate: valid from two days ago until yesterday.
        # (`openssl ca`: OpenSSL 3.0's x509 cannot set the start date.)
        with open(os.path.join(d, "ca.cnf"), "w") as f:
            f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\n"
                    "serial = serial\ndefault_md = sha256\npolicy = p\n[p]\n"
                    "commonName = supplied\n")
        open(os.path.join(d, "index.txt"), "w").close()
        with open(os.path.join(d, "serial"), "w") as f:
            f.write("1000\n")
        _run("ca", "-batch", "-config", "ca.cnf", "-cert", ca + ".pem", "-keyfile", ca + ".key",
             "-in", name + ".csr", "-out", name + ".pem", "-notext",
             "-startdate", "20200101000000Z", "-enddate", "20200102000000Z", cwd=d)
    else:
        _run("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
             "-CAcreateserial", "-days", days, "-out", name + ".pem", "-extfile", ext, cwd=d)


class Certs:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="trestle-certs-")
        d = self.dir
        _ca(d, "ca")
        _ca(d, "rogue-ca")
        _signed(d, "server", "ca", "/CN=localhost", san="DNS:localhost,IP:127.0.0.1")
        _signed(d, "server2", "ca", "/CN=localhost", san="DNS:localhost,IP:127.0.0.1")
        _signed(d, "client", "ca", "/C=DE/O=Trestle/OU=devices/CN=device-1")
        _signed(d, "rogue", "rogue-ca", "/CN=device-1")
        _signed(d, "expired", "ca", "/CN=device-old", days="-1")

    def path(self, name):
        return os.path.join(self.dir, name)
