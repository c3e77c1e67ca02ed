"""DANE (RFC 7672) against real DNSSEC: Debian's nsd serves a zone signed
in the test's temporary directory (ldns-keygen, ldns-signzone) and an
unsigned one; unbound on loopback validates, with the signed zone's KSK as
its only trust anchor, and is tern's `dns_resolvers`.  No AD bit is faked
here (test_remote.py covers smtp-client's DANE logic with a scripted DNS
server).  Receivers are smtpsink.py on 127.0.0.x with a self-signed
certificate, which only a TLSA record can vouch for.

  good.dane.test  signed, TLSA 3 1 1 of the receiver's key   -> sent, "Verified"
  bad.dane.test   signed, TLSA 3 1 1 of another key           -> deferred 4.7.5, never plaintext
  plain.test      unsigned zone with the same (right) TLSA    -> no DANE: opportunistic TLS, "Untrusted"

Skipped only when nsd, unbound or the ldns tools are not installed
(scripts/install-deps installs them) or a daemon cannot start here.
"""
import os
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import free_port, program_exists, stop_processes, _self_signed_cert  # noqa: E402
from smtpsink import SmtpSink  # noqa: E402
from test_remote import NEEDED, openssl, remote_stack, spki_sha256  # noqa: E402

TOOLS = {name: shutil.which(name) or f"/usr/sbin/{name}" for name in ("nsd", "unbound")}
TOOLS.update({name: shutil.which(name) for name in ("ldns-keygen", "ldns-signzone")})
MISSING = [n for n, p in TOOLS.items() if not p or not os.access(p, os.X_OK)]

GOOD_MX, BAD_MX, PLAIN_MX = "127.0.0.61", "127.0.0.62", "127.0.0.63"


def _run(*cmd, cwd):
    proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def _wait_dns(port, proc, what, timeout=20):
    """Until `port` answers a DNS query over TCP (any answer), or the daemon died."""
    query = bytes.fromhex("abcd010000010000000000000464616e650474657374000006" "0001")  # SOA dane.test
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(len(query).to_bytes(2, "big") + query)
                if s.recv(2):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer on port {port} within {timeout}s")


class SignedDns:
    """nsd (authoritative: dane.test signed, plain.test unsigned) and
    unbound (validating, trust anchor = dane.test's KSK) in `base`."""

    def __init__(self, base, smtp_port, good_key, other_key):
        self.base = base
        self.procs = []
        z = os.path.join(base, "zones")
        os.makedirs(z)
        records = {
            "dane.test": [
                "good IN MX 10 mx-good.dane.test.", f"mx-good IN A {GOOD_MX}",
                f"_{smtp_port}._tcp.mx-good IN TLSA 3 1 1 {good_key.hex()}",
                "bad IN MX 10 mx-bad.dane.test.", f"mx-bad IN A {BAD_MX}",
                f"_{smtp_port}._tcp.mx-bad IN TLSA 3 1 1 {other_key.hex()}",
            ],
            "plain.test": [
                "@ IN MX 10 mx.plain.test.", f"mx IN A {PLAIN_MX}",
                f"_{smtp_port}._tcp.mx IN TLSA 3 1 1 {good_key.hex()}",
            ],
        }
        for zone, lines in records.items():
            with open(os.path.join(z, zone), "w") as f:
                f.write(f"$ORIGIN {zone}.\n$TTL 60\n"
                        f"@ IN SOA ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 60\n"
                        f"@ IN NS ns.{zone}.\nns IN A 127.0.0.1\n" + "\n".join(lines) + "\n")
        ksk = _run(TOOLS["ldns-keygen"], "-a", "ECDSAP256SHA256", "-k", "dane.test", cwd=z)
        zsk = _run(TOOLS["ldns-keygen"], "-a", "ECDSAP256SHA256", "dane.test", cwd=z)
        _run(TOOLS["ldns-signzone"], "dane.test", zsk, ksk, cwd=z)  # -> dane.test.signed
        shutil.copy(os.path.join(z, ksk + ".ds"), os.path.join(base, "anchor.ds"))

        self.nsd_port, self.port = free_port(), free_port()
        with open(os.path.join(base, "nsd.conf"), "w") as f:
            f.write(f"""server:
    ip-address: 127.0.0.1@{self.nsd_port}
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{z}"
    database: ""
    zonelistfile: "{base}/zone.list"
    xfrdfile: "{base}/xfrd.state"
    xfrdir: "{base}"
    pidfile: "{base}/nsd.pid"
    logfile: "{base}/nsd.log"
    verbosity: 1
remote-control:
    control-enable: no
zone:
    name: dane.test
    zonefile: dane.test.signed
zone:
    name: plain.test
    zonefile: plain.test
""")
        with open(os.path.join(base, "unbound.conf"), "w") as f:
            f.write(f"""server:
    interface: 127.0.0.1@{self.port}
    port: {self.port}
    access-control: 127.0.0.0/8 allow
    do-ip6: no
    do-not-query-localhost: no
    username: ""
    chroot: ""
    directory: "{base}"
    pidfile: "{base}/unbound.pid"
    logfile: "{base}/unbound.log"
    use-syslog: no
    verbosity: 1
    num-threads: 1
    module-config: "validator iterator"
    trust-anchor-file: "{base}/anchor.ds"
    trust-anchor-signaling: no
    root-key-sentinel: no
    # Nothing but the test zones: never a query to the Internet.
    local-zone: "." refuse
    local-zone: "dane.test." transparent
    local-zone: "plain.test." transparent
    domain-insecure: "plain.test."
remote-control:
    control-enable: no
stub-zone:
    name: "dane.test."
    stub-addr: 127.0.0.1@{self.nsd_port}
stub-zone:
    name: "plain.test."
    stub-addr: 127.0.0.1@{self.nsd_port}
""")
        self._start([TOOLS["nsd"], "-d", "-c", os.path.join(base, "nsd.conf")], self.nsd_port, "nsd")
        self._start([TOOLS["unbound"], "-d", "-c", os.path.join(base, "unbound.conf")], self.port, "unbound")

    def _start(self, cmd, port, what):
        log = open(os.path.join(self.base, what + ".out"), "w")
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs.append(proc)
        _wait_dns(port, proc, what)

    def log(self, what):
        text = ""
        for name in (what + ".out", what + ".log"):
            try:
                with open(os.path.join(self.base, name), errors="replace") as f:
                    text += f.read()
            except OSError:
                pass
        return text[-2000:]

    def close(self):
        stop_processes(self.procs)


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "needs the whole stack built")
@unittest.skipIf(MISSING, f"needs {', '.join(MISSING)} (scripts/install-deps installs nsd, unbound, ldnsutils)")
class DaneWithValidatingResolver(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix="tern-e2e-dane-")
        cls.port = free_port()
        cert = _self_signed_cert()
        cls.certfile, cls.keyfile = os.path.join(cert, "cert.pem"), os.path.join(cert, "key.pem")
        other = os.path.join(cls.base, "other.pem")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", os.path.join(cls.base, "other.key"),
                "-out", other, "-days", "2", "-subj", "/CN=other.test")
        try:
            cls.dns = SignedDns(cls.base, cls.port, spki_sha256(cls.certfile), spki_sha256(other))
        except (RuntimeError, OSError) as e:
            shutil.rmtree(cls.base, ignore_errors=True)
            raise unittest.SkipTest(f"nsd/unbound cannot run here: {e}")
        cls.stack = remote_stack(cls.dns.port, cls.port, {
            "dns_timeout": "2s",
            "smtp_tls_security_level": "dane",
        })
        cls.stack.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.stack.__exit__(None, None, None)
        cls.dns.close()
        shutil.rmtree(cls.base, ignore_errors=True)

    def setUp(self):
        self.sinks = []

    def tearDown(self):
        for s in self.sinks:
            s.close()

    def sink(self, host):
        s = SmtpSink(host, self.port, certfile=self.certfile, keyfile=self.keyfile)
        self.sinks.append(s)
        return s

    def send(self, rcpt, subject):
        with smtplib.SMTP("127.0.0.1", self.stack.port("smtp"), timeout=15) as c:
            c.sendmail("demo@tern.test", [rcpt], f"Subject: {subject}\r\n\r\nbody\r\n".encode())

    def wait_log(self, pattern, timeout=30):
        import re
        rx = re.compile(pattern)
        try:
            return self.stack.wait_for(lambda: rx.search(self.stack.log_text()), timeout, f"log line /{pattern}/")
        except Exception:
            print("--- unbound ---\n" + self.dns.log("unbound"), file=sys.stderr)
            raise

    def test_signed_tlsa_match_is_verified(self):
        s = self.sink(GOOD_MX)
        self.send("ann@good.dane.test", "dane match")
        self.stack.wait_for(lambda: s.messages, 30, "the message at mx-good")
        self.assertTrue(s.messages[0].tls)
        self.wait_log(r"Verified TLS connection established to mx-good\.dane\.test\[%s\]:%d"
                      % (GOOD_MX.replace(".", r"\."), self.port))
        self.wait_log(r"to=<ann@good\.dane\.test>, relay=mx-good\.dane\.test\[[\d.]+\]:\d+, .*status=sent")

    def test_signed_tlsa_mismatch_defers_never_plaintext(self):
        s = self.sink(BAD_MX)
        self.send("bea@bad.dane.test", "dane mismatch")
        self.wait_log(r"to=<bea@bad\.dane\.test>, .*dsn=4\.7\.5, status=deferred \(.*no TLSA record matches")
        self.assertEqual(s.messages, [])
        # The queue still holds it: deferred, not bounced.
        self.assertIn("bea@bad.dane.test", self.stack.mailctl("queue", "list").stdout)
        self.assertNotRegex(self.stack.log_text(), r"to=<bea@bad\.dane\.test>.*status=(sent|bounced)")

    def test_unsigned_zone_has_no_dane(self):
        # The same, matching TLSA record, but from an unsigned zone: unbound
        # sets no AD bit, so smtp-client must not call it DANE ("Verified");
        # the dane level falls back to opportunistic TLS.
        s = self.sink(PLAIN_MX)
        self.send("cid@plain.test", "no dnssec")
        self.stack.wait_for(lambda: s.messages, 30, "the message at mx.plain.test")
        self.assertTrue(s.messages[0].tls)
        self.wait_log(r"Untrusted TLS connection established to mx\.plain\.test\[%s\]"
                      % PLAIN_MX.replace(".", r"\."))
        self.assertNotRegex(self.stack.log_text(), r"Verified TLS connection established to mx\.plain\.test")


if __name__ == "__main__":
    unittest.main()
