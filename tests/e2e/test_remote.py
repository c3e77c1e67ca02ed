"""End-to-end tests of remote delivery: SMTP in -> queue -> qmgr ->
smtp-client -> scripted SMTP receivers on loopback addresses (127.0.0.x,
::1), with next hops from a test DNS server (dnsserver.py) that tern is
pointed at with dns_resolvers, and smtp_tcp_port set to the receivers'
port.  Each test uses its own domains, so one stack serves the class.
"""
import email
import email.policy
import hashlib
import http.server
import os
import re
import signal
import shutil
import smtplib
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dnsserver import DnsServer  # noqa: E402
from harness import Stack, free_port, program_exists, _self_signed_cert  # noqa: E402
from smtpsink import SmtpSink  # noqa: E402

NEEDED = ("master", "smtpd", "qmgr", "local-delivery", "smtp-client", "mailctl")


SMTP_CLIENT_SERVICE = "smtp-client unix $run_directory/smtp.sock - 1 smtp-client"


def remote_stack(dns_port, smtp_port, config=None, **stack_args):
    """A stack that delivers to remote hosts: names from the test's DNS
    server, SMTP to smtp_port, short timeouts and retries; `config` adds
    keys or overrides these."""
    settings = {
        "dns_resolvers": f"127.0.0.1:{dns_port}",
        "dns_timeout": "1s",
        "smtp_tcp_port": str(smtp_port),
        "smtp_connect_timeout": "5s",
        "minimal_backoff_time": "1s",
        "maximal_backoff_time": "2s",
        "queue_run_delay": "1s",
    }
    settings.update(config or {})
    return Stack(config=settings, extra_services=[SMTP_CLIENT_SERVICE], **stack_args)


def openssl(*args, stdin=None):
    return subprocess.run(["openssl"] + list(args), check=True, capture_output=True, input=stdin, timeout=60).stdout


def make_ca_and_cert(directory, host, *more_hosts):
    """A test CA and a certificate for host (and more_hosts) signed by it."""
    ca_key, ca = os.path.join(directory, "ca.key"), os.path.join(directory, "ca.pem")
    key, csr, cert = (os.path.join(directory, n) for n in ("host.key", "host.csr", "host.pem"))
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=tern test CA",
            "-keyout", ca_key, "-out", ca)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={host}", "-keyout", key, "-out", csr)
    ext = os.path.join(directory, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=" + ",".join(f"DNS:{h}" for h in (host,) + more_hosts) + "\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "2",
            "-extfile", ext, "-out", cert)
    return ca, cert, key


class PolicyServer:
    """HTTPS on a loopback address serving MTA-STS policies by Host header."""

    def __init__(self, host, port, certfile, keyfile):
        self.policies = {}  # "mta-sts.example.test" -> text
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = (self.headers.get("Host") or "").split(":")[0]
                server.requests.append((name, self.path))
                text = server.policies.get(name)
                if self.path != "/.well-known/mta-sts.txt" or text is None:
                    self.send_error(404)
                    return
                body = text.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer((host, port), Handler)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(certfile, keyfile)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def spki_sha256(certfile):
    """The DANE 3 1 1 association data of a certificate: SHA-256 of its public key (DER)."""
    pub = openssl("x509", "-in", certfile, "-pubkey", "-noout")
    der = openssl("pkey", "-pubin", "-outform", "DER", stdin=pub)
    return hashlib.sha256(der).digest()


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "needs the whole stack built")
class RemoteDelivery(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = DnsServer()
        cls.port = free_port()
        cls.pki = tempfile.mkdtemp(prefix="tern-e2e-pki-")
        cls.ca, cls.host_cert, cls.host_key = make_ca_and_cert(
            cls.pki, "mx.verified.test", "mx.daneta.test", "mx.sts.test", "mx.stsbad.test", "evil.stsbad.test", "mx.stsweak.test",
            "mta-sts.sts.test", "mta-sts.stsbad.test", "mta-sts.stsweak.test", "mx.stskeep.test",
            "mta-sts.stskeep.test", "mx.stsexp.test", "mta-sts.stsexp.test", "mx.stsnew.test", "mta-sts.stsnew.test",
            "mta-sts.ststry.test")
        cls.sts_port = free_port()
        cls.sts = PolicyServer("127.0.0.40", cls.sts_port, cls.host_cert, cls.host_key)
        cls.stack = remote_stack(cls.dns.port, cls.port, {
            "transport_maps": "$config_directory/transport",
            "smtp_tls_policy_maps": "$config_directory/tls_policy",
            "smtp_tls_CAfile": cls.ca,
            "smtp_mta_sts_port": str(cls.sts_port),
            "smtp_connection_cache_time_limit": "20s",
            # One session per destination at a time: connection reuse is then
            # certain, not a race (every test has its own domains).
            "smtp_destination_concurrency_limit": "1",
            "smtp_dead_destination_time": "2s",
        }, autostart=False)
        with open(os.path.join(cls.stack.conf_dir, "transport"), "w") as f:
            f.write(f"# test routes\nrouted.test smtp:[127.0.0.23]:{cls.port}\n"
                    "refused.test error:5.7.1 we do not send mail there\n"
                    "locally.test local\n")
        # locally.test is received here only through its transport entry;
        # ghost expands to an address there that no one has.
        with open(os.path.join(cls.stack.conf_dir, "aliases"), "a") as f:
            f.write("sales: demo@tern.test\nghost: nosuchuser-xyzzy@locally.test\n")
        with open(os.path.join(cls.stack.conf_dir, "tls_policy"), "w") as f:
            f.write("plain.test encrypt\nverified.test verify\ndane.test dane\ndanebad.test dane\ndaneta.test dane\n"
                    "notls.test none\n")
        cls.stack.__enter__()
        cls.stack.start()
        cls.sinks = []

    @classmethod
    def tearDownClass(cls):
        cls.stack.__exit__(None, None, None)
        cls.dns.close()
        cls.sts.close()
        shutil.rmtree(cls.pki, ignore_errors=True)

    def tearDown(self):
        for s in self.sinks:
            s.close()
        self.sinks = []

    # --- helpers ---------------------------------------------------------

    def sink(self, host, **kw):
        s = SmtpSink(host, self.port, **kw)
        self.sinks.append(s)
        return s

    def send(self, rcpts, body, mail_options=(), rcpt_options=(), sender="demo@tern.test"):
        body = body.replace(b"\n", b"\r\n")
        with smtplib.SMTP("127.0.0.1", self.stack.port("smtp"), timeout=15) as c:
            c.ehlo()
            c.sendmail(sender, rcpts, body, mail_options=list(mail_options), rcpt_options=list(rcpt_options))

    def wait_log(self, pattern, timeout=20):
        rx = re.compile(pattern)
        return self.stack.wait_for(lambda: rx.search(self.stack.log_text()), timeout, f"log line /{pattern}/")

    def wait_messages(self, sink, n, timeout=20):
        self.stack.wait_for(lambda: len(sink.messages) >= n, timeout, f"{n} message(s) at {sink.host}")
        return sink.messages

    def bounce_for(self, text, timeout=30):
        """The bounce in demo@tern.test's mailbox whose text contains `text`."""
        def find():
            for path in self.stack.maildir_new("tern.test", "demo"):
                with open(path, "rb") as f:
                    raw = f.read()
                if text.encode() in raw:
                    return raw
            return None
        return self.stack.wait_for(find, timeout, f"a bounce mentioning {text!r}")

    # --- next hop ----------------------------------------------------------

    def test_mx_preference_and_fallback(self):
        # mx1 (preference 10) refuses connections; mx2 (20) takes the mail;
        # mx3 (30) is never needed.
        self.dns.add("pref.test", "MX", (20, "mx2.pref.test"))
        self.dns.add("pref.test", "MX", (10, "mx1.pref.test"))
        self.dns.add("pref.test", "MX", (30, "mx3.pref.test"))
        self.dns.add("mx1.pref.test", "A", "127.0.0.2")
        self.dns.add("mx2.pref.test", "A", "127.0.0.3")
        self.dns.add("mx3.pref.test", "A", "127.0.0.4")
        mx2 = self.sink("127.0.0.3")
        mx3 = self.sink("127.0.0.4")
        self.send(["alice@pref.test"], b"Subject: pref\n\nhello\n")
        msgs = self.wait_messages(mx2, 1)
        self.assertIn(b"hello", msgs[0].data)
        self.wait_log(r"to=<alice@pref\.test>, relay=mx2\.pref\.test\[127\.0\.0\.3\]:%d, delay=[\d.]+, "
                      r"delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+, dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok" % self.port)
        self.assertEqual(mx3.sessions, 0)

    def test_implicit_mx(self):
        self.dns.add("implicit.test", "A", "127.0.0.5")
        s = self.sink("127.0.0.5")
        self.send(["bob@implicit.test"], b"Subject: implicit\n\nno MX here\n")
        self.wait_messages(s, 1)
        self.wait_log(r"to=<bob@implicit\.test>, relay=implicit\.test\[127\.0\.0\.5\]")

    def test_cname_to_mx_host(self):
        self.dns.add("cname.test", "MX", (10, "alias.cname.test"))
        self.dns.add("alias.cname.test", "CNAME", "real.cname.test")
        self.dns.add("real.cname.test", "A", "127.0.0.6")
        s = self.sink("127.0.0.6")
        self.send(["carol@cname.test"], b"Subject: cname\n\nvia a CNAME\n")
        self.wait_messages(s, 1)

    def test_null_mx_bounces_without_connecting(self):
        self.dns.add("nullmx.test", "MX", (0, "."))
        self.dns.add("nullmx.test", "A", "127.0.0.7")
        s = self.sink("127.0.0.7")
        self.send(["dave@nullmx.test"], b"Subject: null\n\nnowhere\n")
        self.wait_log(r"to=<dave@nullmx\.test>, relay=none, .*dsn=5\.1\.10, status=bounced")
        raw = self.bounce_for("dave@nullmx.test")
        self.assertIn(b"5.1.10", raw)
        self.assertEqual(s.sessions, 0)

    def test_nxdomain_bounces(self):
        self.send(["erin@nonexistent.test"], b"Subject: nx\n\nnowhere\n")
        self.wait_log(r"to=<erin@nonexistent\.test>, relay=none, .*dsn=5\.4\.4, status=bounced \(Host or domain name not found")
        self.bounce_for("erin@nonexistent.test")

    def test_servfail_defers(self):
        self.dns.servfail.add("servfail.test")
        self.send(["frank@servfail.test"], b"Subject: sf\n\nlater\n")
        self.wait_log(r"to=<frank@servfail\.test>, relay=none, .*dsn=4\.4\.3, status=deferred .*SERVFAIL")
        out = self.stack.mailctl("queue", "list", check=True).stdout
        self.assertIn("frank@servfail.test", out)
        # Fixed DNS: the next retry delivers.
        self.dns.servfail.discard("servfail.test")
        self.dns.add("servfail.test", "A", "127.0.0.8")
        s = self.sink("127.0.0.8")
        self.wait_messages(s, 1, timeout=30)

    def test_dns_timeout_defers_never_bounces(self):
        # The DNS server never answers for this domain: dns_timeout (1 s)
        # runs out, and that is a temporary failure.
        self.dns.drop.add("silent.test")
        self.send(["sid@silent.test"], b"Subject: silent\n\nno answer\n")
        self.wait_log(r"to=<sid@silent\.test>, relay=none, .*dsn=4\.4\.3, status=deferred \(Host or domain name not found")
        self.assertIn("sid@silent.test", self.stack.mailctl("queue", "list", check=True).stdout)
        self.assertNotRegex(self.stack.log_text(), r"to=<sid@silent\.test>.*status=bounced")

    def test_ipv6(self):
        self.dns.add("six.test", "MX", (10, "mx.six.test"))
        self.dns.add("mx.six.test", "AAAA", "::1")
        s = self.sink("::1")
        self.send(["gina@six.test"], b"Subject: v6\n\nover IPv6\n")
        self.wait_messages(s, 1)
        self.wait_log(r"to=<gina@six\.test>, relay=mx\.six\.test\[::1\]:%d" % self.port)

    def test_ipv6_first_then_ipv4(self):
        # smtp_address_preference = any tries IPv6 first; nothing listens on
        # [::1] at this port, so the IPv4 address of the same host takes it.
        self.dns.add("dual.test", "MX", (10, "mx.dual.test"))
        self.dns.add("mx.dual.test", "AAAA", "::1")
        self.dns.add("mx.dual.test", "A", "127.0.0.29")
        s = self.sink("127.0.0.29")
        self.send(["hugo@dual.test"], b"Subject: dual\n\nfalls back\n")
        self.wait_messages(s, 1)
        self.wait_log(r"to=<hugo@dual\.test>, relay=mx\.dual\.test\[127\.0\.0\.29\]:%d, .*status=sent" % self.port)

    # --- remote replies ------------------------------------------------------

    def test_451_then_delivered_on_retry(self):
        self.dns.add("greylist.test", "A", "127.0.0.9")
        s = self.sink("127.0.0.9")
        seen = []

        def greylist(addr):
            seen.append(addr)
            return "451 4.7.1 greylisted, come back later" if len(seen) == 1 else None
        s.rcpt_reply = greylist
        self.send(["hank@greylist.test"], b"Subject: grey\n\nretry me\n")
        self.wait_log(r"to=<hank@greylist\.test>, .*dsn=4\.7\.1, status=deferred \(host greylist\.test\[127\.0\.0\.9\] "
                      r"said: 451 4\.7\.1 greylisted, come back later \(in reply to RCPT TO command\)\)")
        self.wait_messages(s, 1, timeout=30)
        self.wait_log(r"to=<hank@greylist\.test>, .*status=sent")

    def test_550_bounce_quotes_remote_text(self):
        self.dns.add("reject.test", "A", "127.0.0.10")
        s = self.sink("127.0.0.10")
        s.rcpt_reply = lambda addr: "550 5.1.1 <%s>: mailbox unknown here" % addr if addr.startswith("ivan") else None
        self.send(["ivan@reject.test", "judy@reject.test"], b"Subject: half\n\nfor two\n")
        self.wait_messages(s, 1)
        self.assertEqual(len(s.messages[0].rcpts), 1)
        raw = self.bounce_for("mailbox unknown here")
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        self.assertIn(b"ivan@reject.test", raw)
        self.assertIn(b"reject.test[127.0.0.10]", raw)
        self.assertIn("multipart/report", msg.get_content_type())

    def test_4xx_reply_kept_in_queue(self):
        self.dns.add("full.test", "A", "127.0.0.28")
        s = self.sink("127.0.0.28")
        s.rcpt_reply = lambda addr: "452 4.2.2 mailbox full, sorry"
        self.send(["fred@full.test"], b"Subject: full\n\nlater\n")
        self.wait_log(r"to=<fred@full\.test>, .*dsn=4\.2\.2, status=deferred")
        self.stack.wait_for(lambda: "said: 452 4.2.2 mailbox full, sorry (in reply to RCPT TO command)"
                            in self.stack.mailctl("queue", "list", check=True).stdout, 10, "the reply in mailctl queue")

    def test_unreachable_defers(self):
        self.dns.add("down.test", "A", "127.0.0.11")  # nothing listens there
        self.send(["kate@down.test"], b"Subject: down\n\nunreachable\n")
        self.wait_log(r"to=<kate@down\.test>, relay=down\.test\[127\.0\.0\.11\]:%d, .*dsn=4\.4\.1, status=deferred "
                      r"\(connect to down\.test\[127\.0\.0\.11\]:%d: Connection refused\)" % (self.port, self.port))

    # --- ESMTP ---------------------------------------------------------------

    def test_8bitmime_downgrade(self):
        self.dns.add("seven.test", "A", "127.0.0.12")
        s = self.sink("127.0.0.12", extensions=["PIPELINING", "SIZE 1000000"])
        body = ("Subject: caf\u00e9\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
                "Content-Transfer-Encoding: 8bit\n\nun caf\u00e9 cr\u00e8me\n").encode()
        self.send(["leo@seven.test"], body, mail_options=["BODY=8BITMIME"])
        m = self.wait_messages(s, 1)[0]
        self.assertNotIn("BODY=8BITMIME", m.mail)
        self.assertIn(b"Content-Transfer-Encoding: quoted-printable", m.data)
        self.assertIn(b"un caf=C3=A9 cr=C3=A8me", m.data)
        self.assertNotIn(b"Content-Transfer-Encoding: 8bit", m.data)
        # ... and a server with 8BITMIME gets the bytes as they are.
        self.dns.add("eight.test", "A", "127.0.0.13")
        s8 = self.sink("127.0.0.13")
        self.send(["mia@eight.test"], body, mail_options=["BODY=8BITMIME"])
        m8 = self.wait_messages(s8, 1)[0]
        self.assertIn("BODY=8BITMIME", m8.mail)
        self.assertIn("un caf\u00e9 cr\u00e8me".encode(), m8.data)

    def test_smtputf8_missing_bounces(self):
        self.dns.add("ascii.test", "A", "127.0.0.14")
        s = self.sink("127.0.0.14", extensions=["PIPELINING", "8BITMIME"])
        self.send(["nina@ascii.test"], "Subject: utf8\n\nh\u00e9\n".encode(), sender="d\u00e9mo@tern.test",
                  mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        self.wait_log(r"to=<nina@ascii\.test>, .*dsn=5\.6\.7, status=bounced \(SMTPUTF8 is required, but was not offered")
        self.assertEqual(len(s.messages), 0)

    def test_size_limit_bounces_without_data(self):
        self.dns.add("small.test", "A", "127.0.0.15")
        s = self.sink("127.0.0.15", extensions=["PIPELINING", "SIZE 1000", "8BITMIME"])
        self.send(["oscar@small.test"], b"Subject: big\n\n" + b"x" * 70 + b"\n" * 1 + (b"y" * 70 + b"\n") * 60)
        self.wait_log(r"to=<oscar@small\.test>, .*dsn=5\.3\.4, status=bounced \(message size \d+ exceeds size limit 1000 "
                      r"of server small\.test\[127\.0\.0\.15\]\)")
        self.assertFalse(any(c.upper().startswith("DATA") for c in s.commands))
        self.assertFalse(any(c.upper().startswith("MAIL") for c in s.commands))

    def test_dot_stuffing(self):
        self.dns.add("dots.test", "A", "127.0.0.16")
        s = self.sink("127.0.0.16")
        body = b"Subject: dots\n\n.leading dot\n..two dots\n.\nend\n"
        self.send(["pat@dots.test"], body)
        m = self.wait_messages(s, 1)[0]
        self.assertIn(b"\r\n..leading dot\r\n...two dots\r\n..\r\nend\r\n.\r\n", m.raw)
        self.assertIn(b"\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n", m.data)
        self.assertNotIn(b"\n\n", m.raw.replace(b"\r\n", b""))  # every LF became CRLF

    def test_large_message_streams_whole(self):
        self.dns.add("big.test", "A", "127.0.0.33")
        s = self.sink("127.0.0.33")
        lines = b"".join(b"%06d .line with a leading dot after the number\n" % i if i % 7 else b".%06d\n" % i
                         for i in range(20000))
        self.send(["ivy@big.test"], b"Subject: big\n\n" + lines)
        m = self.wait_messages(s, 1, timeout=40)[0]
        self.assertTrue(m.data.endswith(lines.replace(b"\n", b"\r\n")))

    def test_dsn_parameters_passed_on(self):
        self.dns.add("dsn.test", "A", "127.0.0.17")
        s = self.sink("127.0.0.17")
        self.send(["quinn@dsn.test"], b"Subject: dsn\n\nnotify me\n", mail_options=["RET=HDRS", "ENVID=env+2B42"],
                  rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;quinn@dsn.test"])
        m = self.wait_messages(s, 1)[0]
        self.assertIn("RET=HDRS", m.mail)
        self.assertIn("ENVID=env+2B42", m.mail)
        self.assertIn("NOTIFY=SUCCESS,FAILURE", m.rcpts[0])
        self.assertIn("ORCPT=rfc822;quinn@dsn.test", m.rcpts[0])
        # Without DSN at the server, no parameter is sent.
        self.dns.add("nodsn.test", "A", "127.0.0.18")
        s2 = self.sink("127.0.0.18", extensions=["PIPELINING", "8BITMIME"])
        self.send(["rita@nodsn.test"], b"Subject: dsn\n\nplain\n", mail_options=["RET=HDRS"],
                  rcpt_options=["NOTIFY=NEVER"])
        m2 = self.wait_messages(s2, 1)[0]
        self.assertNotIn("RET=", m2.mail)
        self.assertNotIn("NOTIFY=", m2.rcpts[0])

    def test_without_pipelining(self):
        self.dns.add("slow.test", "A", "127.0.0.19")
        s = self.sink("127.0.0.19", extensions=["8BITMIME"])
        s.rcpt_reply = lambda addr: "550 5.1.1 unknown" if addr.startswith("x") else None
        self.send(["sam@slow.test", "xavier@slow.test", "tom@slow.test"], b"Subject: lock-step\n\none by one\n")
        m = self.wait_messages(s, 1)[0]
        self.assertEqual(len(m.rcpts), 2)
        self.wait_log(r"to=<xavier@slow\.test>, .*dsn=5\.1\.1, status=bounced")

    def test_connection_reuse(self):
        self.dns.add("reuse.test", "A", "127.0.0.20")
        s = self.sink("127.0.0.20")
        for i in range(4):
            self.send([f"user{i}@reuse.test"], b"Subject: reuse %d\n\nagain\n" % i)
        self.wait_messages(s, 4, timeout=30)
        self.assertEqual(s.sessions, 1)
        self.assertGreaterEqual(sum(1 for c in s.commands if c.upper() == "RSET"), 3)

    def test_starttls_opportunistic(self):
        cert = _self_signed_cert()
        self.dns.add("tls.test", "A", "127.0.0.21")
        s = self.sink("127.0.0.21", certfile=os.path.join(cert, "cert.pem"), keyfile=os.path.join(cert, "key.pem"))
        self.send(["uma@tls.test"], b"Subject: tls\n\nencrypted\n")
        m = self.wait_messages(s, 1)[0]
        self.assertTrue(m.tls)
        self.wait_log(r"Untrusted TLS connection established to tls\.test\[127\.0\.0\.21\]:%d: TLSv1\.[23] with cipher"
                      % self.port)


    def test_trusted_when_only_the_name_does_not_match(self):
        # A certificate from the trusted CA, but not for this host's name.
        self.dns.add("trusted.test", "A", "127.0.0.37")
        s = self.sink("127.0.0.37", certfile=self.host_cert, keyfile=self.host_key)
        self.send(["tess@trusted.test"], b"Subject: trusted\n\nname mismatch\n")
        self.assertTrue(self.wait_messages(s, 1)[0].tls)
        self.wait_log(r"Trusted TLS connection established to trusted\.test\[127\.0\.0\.37\]:%d: TLSv1\.[23]" % self.port)

    # --- transport table and TLS policy --------------------------------------

    def test_tls_none_policy_never_starttls(self):
        self.dns.add("notls.test", "A", "127.0.0.38")
        s = self.sink("127.0.0.38", certfile=self.host_cert, keyfile=self.host_key)
        self.send(["nora@notls.test"], b"Subject: none\n\nno TLS wanted\n")
        self.assertFalse(self.wait_messages(s, 1)[0].tls)
        self.assertFalse(any(c.upper().startswith("STARTTLS") for c in s.commands))

    def test_transport_table_routes_to_a_host(self):
        s = self.sink("127.0.0.23")  # routed.test has no DNS records at all
        self.send(["vera@routed.test"], b"Subject: routed\n\nby the table\n")
        self.wait_messages(s, 1)
        self.wait_log(r"to=<vera@routed\.test>, relay=127\.0\.0\.23\[127\.0\.0\.23\]:%d, .*status=sent" % self.port)
        # master compiled both tables at start (on a real system, daemons
        # cannot write /etc/tern themselves).
        self.assertRegex(self.stack.log_text(), r"transport_maps \S+/transport: compiled")
        self.assertRegex(self.stack.log_text(), r"smtp_tls_policy_maps \S+/tls_policy: compiled")

    def test_transport_error_bounces(self):
        self.send(["walt@refused.test"], b"Subject: refused\n\nno\n")
        self.wait_log(r"to=<walt@refused\.test>, relay=none, .*dsn=5\.7\.1, status=bounced \(we do not send mail there\)")
        self.bounce_for("we do not send mail there")

    def test_transport_local_delivers_by_local_part(self):
        # `locally.test local`: neither mydestination nor virtual, yet the
        # local part is looked up as for a mydestination domain, in smtpd
        # (unknown user refused at RCPT) and in local-delivery (an alias).
        with smtplib.SMTP("127.0.0.1", self.stack.port("smtp"), timeout=15) as c:
            c.ehlo()
            self.assertEqual(c.mail("demo@tern.test")[0], 250)
            code, msg = c.rcpt("nosuchuser-xyzzy@locally.test")
            self.assertEqual(code, 550, msg)
            self.assertIn(b"5.1.1", msg)
            self.assertIn(b"User unknown in local recipient table", msg)
        self.send(["Sales@locally.test"], b"Subject: routed locally\n\nby the transport table\n")
        self.bounce_for("routed locally")  # any message in demo's mailbox with that text
        self.wait_log(r"to=<Sales@locally\.test>, relay=local, .*dsn=2\.0\.0, status=sent")
        self.assertNotRegex(self.stack.log_text(), r"smtp-client\[\d+\]: \w+: to=<[^>]*@locally\.test>")

    def test_transport_local_unknown_user_bounces(self):
        # Mail that reaches a `local` domain without smtpd's check (here an
        # alias) bounces for an unknown user, as in mydestination.
        self.send(["ghost@mail.tern.test"], b"Subject: ghost\n\nnobody there\n")
        self.wait_log(r"to=<ghost@mail\.tern\.test>, relay=local, .*dsn=5\.1\.1, status=bounced \(unknown user: "
                      r"\"nosuchuser-xyzzy\"\)")
        raw = self.bounce_for("nosuchuser-xyzzy")
        self.assertIn(b"5.1.1", raw)

    def test_tls_encrypt_policy_never_sends_in_clear(self):
        self.dns.add("plain.test", "A", "127.0.0.24")
        s = self.sink("127.0.0.24")  # no STARTTLS
        self.send(["xena@plain.test"], b"Subject: clear\n\nmust not go in the clear\n")
        self.wait_log(r"to=<xena@plain\.test>, .*dsn=4\.7\.4, status=deferred \(TLS is required, but was not offered "
                      r"by host plain\.test\[127\.0\.0\.24\]\)")
        self.assertFalse(any(c.upper().startswith("MAIL") for c in s.commands))

    def test_tls_verify_with_cafile(self):
        self.dns.add("verified.test", "MX", (10, "mx.verified.test"))
        self.dns.add("mx.verified.test", "A", "127.0.0.25")
        s = self.sink("127.0.0.25", certfile=self.host_cert, keyfile=self.host_key)
        self.send(["yann@verified.test"], b"Subject: verify\n\nverified\n")
        m = self.wait_messages(s, 1)[0]
        self.assertTrue(m.tls)
        self.wait_log(r"Verified TLS connection established to mx\.verified\.test\[127\.0\.0\.25\]:%d" % self.port)

    def test_dane_match_delivers_verified(self):
        cert = _self_signed_cert()  # self-signed: only DANE can vouch for it
        certfile, keyfile = os.path.join(cert, "cert.pem"), os.path.join(cert, "key.pem")
        self.dns.secure.add("dane.test")
        self.dns.add("dane.test", "MX", (10, "mx.dane.test"))
        self.dns.add("mx.dane.test", "A", "127.0.0.26")
        self.dns.add(f"_{self.port}._tcp.mx.dane.test", "TLSA", (3, 1, 1, spki_sha256(certfile)))
        s = self.sink("127.0.0.26", certfile=certfile, keyfile=keyfile)
        self.send(["zoe@dane.test"], b"Subject: dane\n\npinned\n")
        m = self.wait_messages(s, 1)[0]
        self.assertTrue(m.tls)
        self.wait_log(r"Verified TLS connection established to mx\.dane\.test\[127\.0\.0\.26\]:%d" % self.port)

    def test_dane_ta_match(self):
        # DANE-TA(2) with the whole CA certificate (2 0 0): the server sends
        # only its own certificate, issued for the MX name by that CA.
        ca_der = openssl("x509", "-in", self.ca, "-outform", "DER")
        self.dns.secure.add("daneta.test")
        self.dns.add("daneta.test", "MX", (10, "mx.daneta.test"))
        self.dns.add("mx.daneta.test", "A", "127.0.0.34")
        self.dns.add(f"_{self.port}._tcp.mx.daneta.test", "TLSA", (2, 0, 0, ca_der))
        s = self.sink("127.0.0.34", certfile=self.host_cert, keyfile=self.host_key)
        self.send(["jack@daneta.test"], b"Subject: dane-ta\n\ntrust anchor\n")
        self.wait_messages(s, 1)
        self.wait_log(r"Verified TLS connection established to mx\.daneta\.test\[127\.0\.0\.34\]")

    def test_dane_mismatch_defers(self):
        cert = _self_signed_cert()
        certfile, keyfile = os.path.join(cert, "cert.pem"), os.path.join(cert, "key.pem")
        self.dns.secure.add("danebad.test")
        self.dns.add("danebad.test", "MX", (10, "mx.danebad.test"))
        self.dns.add("mx.danebad.test", "A", "127.0.0.27")
        self.dns.add(f"_{self.port}._tcp.mx.danebad.test", "TLSA", (3, 1, 1, b"\x00" * 32))
        s = self.sink("127.0.0.27", certfile=certfile, keyfile=keyfile)
        self.send(["adam@danebad.test"], b"Subject: dane\n\nwrong pin\n")
        self.wait_log(r"to=<adam@danebad\.test>, .*dsn=4\.7\.5, status=deferred \(Server certificate not trusted: "
                      r"no TLSA record matches")
        self.assertFalse(any(c.upper().startswith("MAIL") for c in s.commands))
        self.assertEqual(len(s.messages), 0)

    # --- MTA-STS -------------------------------------------------------------

    def sts_domain(self, domain, mx_host, ip, policy_mx):
        self.dns.add(domain, "MX", (10, mx_host))
        self.dns.add(mx_host, "A", ip)
        self.dns.add(f"_mta-sts.{domain}", "TXT", "v=STSv1; id=1;")
        self.dns.add(f"mta-sts.{domain}", "A", "127.0.0.40")
        self.sts.policies[f"mta-sts.{domain}"] = (f"version: STSv1\nmode: enforce\nmx: {policy_mx}\n"
                                                  "max_age: 86400\n")

    def test_mta_sts_enforce_delivers_verified(self):
        self.sts_domain("sts.test", "mx.sts.test", "127.0.0.41", "*.sts.test")
        s = self.sink("127.0.0.41", certfile=self.host_cert, keyfile=self.host_key)
        self.send(["beth@sts.test"], b"Subject: sts\n\nenforced\n")
        self.wait_messages(s, 1)
        self.wait_log(r"MTA-STS policy for sts\.test: mode=enforce, max_age=86400")
        self.wait_log(r"Verified TLS connection established to mx\.sts\.test\[127\.0\.0\.41\]")
        # A second message uses the cached policy: no second fetch.
        self.send(["beth@sts.test"], b"Subject: sts 2\n\ncached\n")
        self.wait_messages(s, 2)
        self.assertEqual(self.sts.requests.count(("mta-sts.sts.test", "/.well-known/mta-sts.txt")), 1)

    def test_mta_sts_enforce_refuses_unlisted_mx(self):
        self.sts_domain("stsbad.test", "evil.stsbad.test", "127.0.0.42", "mx.stsbad.test")
        s = self.sink("127.0.0.42", certfile=self.host_cert, keyfile=self.host_key)
        self.send(["carl@stsbad.test"], b"Subject: sts\n\nwrong MX\n")
        self.wait_log(r"to=<carl@stsbad\.test>, relay=none, .*dsn=4\.7\.5, status=deferred \(MTA-STS policy for "
                      r"stsbad\.test \(enforce\) matches none of its MX hosts\)")
        self.assertEqual(s.sessions, 0)

    def test_mta_sts_enforce_refuses_unverified_tls(self):
        cert = _self_signed_cert()
        self.sts_domain("stsweak.test", "mx.stsweak.test", "127.0.0.43", "mx.stsweak.test")
        s = self.sink("127.0.0.43", certfile=os.path.join(cert, "cert.pem"), keyfile=os.path.join(cert, "key.pem"))
        self.send(["dina@stsweak.test"], b"Subject: sts\n\nself-signed\n")
        self.wait_log(r"to=<dina@stsweak\.test>, .*dsn=4\.7\.5, status=deferred \(Server certificate not verified")
        self.assertFalse(any(c.upper().startswith("MAIL") for c in s.commands))

    def test_mta_sts_testing_only_logs(self):
        self.sts_domain("ststry.test", "mx.ststry.test", "127.0.0.46", "mx.ststry.test")
        self.dns.clear("mx.ststry.test")
        self.dns.clear("ststry.test")
        self.dns.add("ststry.test", "MX", (10, "unlisted.ststry.test"))
        self.dns.add("unlisted.ststry.test", "A", "127.0.0.46")
        self.sts.policies["mta-sts.ststry.test"] = "version: STSv1\nmode: testing\nmx: mx.ststry.test\nmax_age: 600\n"
        s = self.sink("127.0.0.46")  # no TLS at all: testing must not care
        self.send(["ted@ststry.test"], b"Subject: sts testing\n\nlogged only\n")
        self.wait_messages(s, 1)
        self.wait_log(r"MTA-STS policy for ststry\.test \(testing\) does not list MX host unlisted\.ststry\.test")

    def test_mta_sts_new_txt_id_fetches_the_new_policy(self):
        self.sts_domain("stsnew.test", "mx.stsnew.test", "127.0.0.47", "mx.stsnew.test")
        s = self.sink("127.0.0.47", certfile=self.host_cert, keyfile=self.host_key)
        self.send(["uli@stsnew.test"], b"Subject: sts new 1\n\nfirst\n")
        self.wait_messages(s, 1)
        self.dns.clear("_mta-sts.stsnew.test")
        self.dns.add("_mta-sts.stsnew.test", "TXT", "v=STSv1; id=2;")
        self.sts.policies["mta-sts.stsnew.test"] = ("version: STSv1\nmode: enforce\nmx: other.stsnew.test\n"
                                                   "max_age: 86400\n")
        self.restart_smtp_client()  # no cached session; the kept policy (id 1) is still valid
        self.send(["uli@stsnew.test"], b"Subject: sts new 2\n\nsecond\n")
        self.wait_log(r"to=<uli@stsnew\.test>, relay=none, .*dsn=4\.7\.5, status=deferred \(MTA-STS policy for "
                      r"stsnew\.test \(enforce\) matches none of its MX hosts\)")
        self.assertEqual(self.sts.requests.count(("mta-sts.stsnew.test", "/.well-known/mta-sts.txt")), 2)
        self.assertEqual(len(s.messages), 1)

    def test_cached_session_not_reused_after_mta_sts_policy_expired(self):
        # The first message opens a session under a 4 s policy that lists
        # the MX; the policy is then replaced (new TXT id, the MX no longer
        # listed).  Once the first one expired, the session cached for the
        # next message (20 s) must not carry it: the new policy is fetched
        # and refuses the MX.
        self.sts_domain("stsexp.test", "mx.stsexp.test", "127.0.0.45", "mx.stsexp.test")
        self.sts.policies["mta-sts.stsexp.test"] = "version: STSv1\nmode: enforce\nmx: mx.stsexp.test\nmax_age: 4\n"
        s = self.sink("127.0.0.45", certfile=self.host_cert, keyfile=self.host_key)
        self.send(["lena@stsexp.test"], b"Subject: sts exp 1\n\nfirst\n")
        self.wait_messages(s, 1)
        self.wait_log(r"to=<lena@stsexp\.test>, .*status=sent")
        with open(os.path.join(self.stack.data_dir, "mta-sts", "stsexp.test")) as f:
            expires = int(f.read().split("\n", 2)[1])
        self.dns.clear(f"_mta-sts.stsexp.test")
        self.dns.add("_mta-sts.stsexp.test", "TXT", "v=STSv1; id=2;")
        self.sts.policies["mta-sts.stsexp.test"] = ("version: STSv1\nmode: enforce\nmx: other.stsexp.test\n"
                                                   "max_age: 86400\n")
        # The file keeps the expiry in whole seconds, rounded down.
        self.stack.wait_for(lambda: time.time() > expires + 1.2, 15, "the end of max_age")
        self.assertEqual(s.open_sessions, 1, "the first session is no longer cached: the test proves nothing")
        self.send(["lena@stsexp.test"], b"Subject: sts exp 2\n\nsecond\n")
        self.wait_log(r"to=<lena@stsexp\.test>, relay=none, .*dsn=4\.7\.5, status=deferred \(MTA-STS policy for "
                      r"stsexp\.test \(enforce\) matches none of its MX hosts\)")
        self.wait_log(r"not reusing the session to mx\.stsexp\.test\[127\.0\.0\.45\]:\d+: its TLS or MTA-STS policy changed")
        self.assertEqual(len(s.messages), 1)
        self.assertEqual(s.sessions, 1)

    def test_cached_session_not_reused_after_tls_policy_change(self):
        # A plaintext session is cached; the admin then requires TLS for the
        # destination.  The next message must not go over the old session.
        self.dns.add("retls.test", "A", "127.0.0.35")
        s = self.sink("127.0.0.35")  # no STARTTLS
        self.send(["mona@retls.test"], b"Subject: retls 1\n\nin the clear, allowed\n")
        self.wait_messages(s, 1)
        self.wait_log(r"to=<mona@retls\.test>, .*status=sent")
        with open(os.path.join(self.stack.conf_dir, "tls_policy"), "a") as f:
            f.write("retls.test encrypt\n")
        self.assertEqual(s.open_sessions, 1, "the first session is no longer cached: the test proves nothing")
        self.send(["mona@retls.test"], b"Subject: retls 2\n\nnot in the clear\n")
        self.wait_log(r"to=<mona@retls\.test>, .*dsn=4\.7\.4, status=deferred \(TLS is required, but was not offered")
        self.assertEqual(len(s.messages), 1)
        self.assertGreaterEqual(s.sessions, 2)  # a new one, which found no STARTTLS

    def restart_smtp_client(self):
        old = self.stack.pids("smtp-client")
        for pid in old:
            os.kill(pid, signal.SIGKILL)
        self.stack.wait_for(lambda: (p := self.stack.pids("smtp-client")) and not set(p) & set(old), 20,
                            "a new smtp-client process")

    def test_mta_sts_policy_kept_across_restart_until_max_age(self):
        self.sts_domain("stskeep.test", "mx.stskeep.test", "127.0.0.44", "mx.stskeep.test")
        self.sts.policies["mta-sts.stskeep.test"] = "version: STSv1\nmode: enforce\nmx: mx.stskeep.test\nmax_age: 6\n"
        fetch = ("mta-sts.stskeep.test", "/.well-known/mta-sts.txt")
        s = self.sink("127.0.0.44", certfile=self.host_cert, keyfile=self.host_key)
        self.send(["kim@stskeep.test"], b"Subject: sts keep 1\n\nfirst\n")
        self.wait_messages(s, 1)
        self.assertEqual(self.sts.requests.count(fetch), 1)
        path = os.path.join(self.stack.data_dir, "mta-sts", "stskeep.test")
        with open(path) as f:
            txt_id, expires, text = f.read().split("\n", 2)
        self.assertEqual((txt_id, text), ("1", self.sts.policies["mta-sts.stskeep.test"]))
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        # A new smtp-client process; the policy host now answers 404, so a
        # fetch would leave no policy: the kept one must still apply.
        self.restart_smtp_client()
        del self.sts.policies["mta-sts.stskeep.test"]
        self.send(["kim@stskeep.test"], b"Subject: sts keep 2\n\nafter restart\n")
        self.wait_messages(s, 2)
        self.assertEqual(self.sts.requests.count(fetch), 1)
        self.assertTrue(s.messages[1].tls)
        # After max_age (6 s) the kept policy is no longer used: a new
        # process (no cached session either) asks for it again.
        self.stack.wait_for(lambda: time.time() > int(expires) + 1, 15, "the end of max_age")
        self.restart_smtp_client()
        self.send(["kim@stskeep.test"], b"Subject: sts keep 3\n\nexpired\n")
        self.wait_messages(s, 3)
        self.assertEqual(self.sts.requests.count(fetch), 2)


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "needs the whole stack built")
class Relayhost(unittest.TestCase):
    """relayhost with SMTP AUTH over required TLS, and expiry of mail that
    cannot be delivered (a short queue lifetime)."""

    @classmethod
    def setUpClass(cls):
        cls.dns = DnsServer()
        cls.port = free_port()
        cls.stack = remote_stack(cls.dns.port, cls.port, {
            "relayhost": f"[smarthost.test]:{cls.port}",
            "transport_maps": "$config_directory/transport",
            "smtp_sasl_password_maps": "$config_directory/sasl_passwd",
            "maximal_queue_lifetime": "5s",
        }, autostart=False)
        with open(os.path.join(cls.stack.conf_dir, "transport"), "w") as f:
            f.write(f"login.test smtp:[smarthost2.test]:{cls.port}\n"
                    f"down.test smtp:[127.0.0.32]:{cls.port}\n"
                    f"cleartext.test smtp:[smarthost3.test]:{cls.port}\n"
                    f"perms.test smtp:[smarthost4.test]:{cls.port}\n")
        path = os.path.join(cls.stack.conf_dir, "sasl_passwd")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"# test credentials\n[smarthost.test]:{cls.port} alice:s3cret word\n"
                    f"[smarthost2.test]:{cls.port} bob:hunter2\n"
                    f"[smarthost3.test]:{cls.port} carol:secret\n"
                    f"[smarthost4.test]:{cls.port} gus:secret\n")
        cls.dns.add("smarthost.test", "A", "127.0.0.30")
        cls.dns.add("smarthost2.test", "A", "127.0.0.31")
        cls.dns.add("smarthost3.test", "A", "127.0.0.39")
        cls.dns.add("smarthost4.test", "A", "127.0.0.48")
        cls.stack.__enter__()
        cls.stack.start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.__exit__(None, None, None)
        cls.dns.close()

    def setUp(self):
        cert = _self_signed_cert()
        self.tls = dict(certfile=os.path.join(cert, "cert.pem"), keyfile=os.path.join(cert, "key.pem"))
        self.sinks = []

    def tearDown(self):
        for s in self.sinks:
            s.close()

    send = RemoteDelivery.send
    wait_log = RemoteDelivery.wait_log
    wait_messages = RemoteDelivery.wait_messages
    bounce_for = RemoteDelivery.bounce_for

    def test_relayhost_auth_plain_over_tls(self):
        s = SmtpSink("127.0.0.30", self.port, auth={"alice": "s3cret word"}, **self.tls)
        self.sinks.append(s)
        self.send(["someone@elsewhere.test"], b"Subject: relay\n\nvia the smarthost\n")
        m = self.wait_messages(s, 1)[0]
        self.assertTrue(m.tls)
        self.assertEqual(s.authenticated, [("alice", "PLAIN")])
        self.wait_log(r"to=<someone@elsewhere\.test>, relay=smarthost\.test\[127\.0\.0\.30\]:%d, .*status=sent"
                      % self.port)

    def test_auth_login_and_bad_password(self):
        s = SmtpSink("127.0.0.31", self.port, auth={"bob": "other"}, auth_mechanisms=["LOGIN"], **self.tls)
        self.sinks.append(s)
        self.send(["carl@login.test"], b"Subject: login\n\nwrong password first\n")
        self.wait_log(r"to=<carl@login\.test>, .*status=deferred \(SASL authentication failed; server smarthost2\.test"
                      r"\[127\.0\.0\.31\] said: 535 5\.7\.8")
        self.assertEqual(len(s.messages), 0)
        s.auth["bob"] = "hunter2"
        self.wait_messages(s, 1, timeout=30)
        self.assertIn(("bob", "LOGIN"), s.authenticated)

    def test_auth_needs_tls_password_never_in_the_clear(self):
        # The relay offers no STARTTLS: with credentials for it, nothing is sent.
        s = SmtpSink("127.0.0.39", self.port, auth={"carol": "secret"})
        self.sinks.append(s)
        self.send(["cleo@cleartext.test"], b"Subject: clear\n\nno password in the clear\n")
        self.wait_log(r"to=<cleo@cleartext\.test>, .*dsn=4\.7\.4, status=deferred \(TLS is required, but was not "
                      r"offered by host smarthost3\.test\[127\.0\.0\.39\]")
        self.assertFalse(any(c.upper().startswith(("AUTH", "MAIL")) for c in s.commands), s.commands)

    def test_password_file_others_can_read_is_refused(self):
        # A next hop of its own, so that the retries after this test disturb
        # no other test's destination.
        path = os.path.join(self.stack.conf_dir, "sasl_passwd")
        s = SmtpSink("127.0.0.48", self.port, auth={"gus": "secret"}, **self.tls)
        self.sinks.append(s)
        os.chmod(path, 0o640)
        try:
            self.send(["gus@perms.test"], b"Subject: perms\n\nreadable password file\n")
            self.wait_log(r"to=<gus@perms\.test>, relay=none, .*status=deferred \(smtp_sasl_password_maps \S+: "
                          r"must be owned by the smtp-client user and readable by nobody else \(chmod 600\)\)")
            self.assertEqual(s.sessions, 0)
        finally:
            os.chmod(path, 0o600)

    def test_unreachable_defers_then_bounces(self):
        self.send(["dora@down.test"], b"Subject: down\n\nnobody listens\n")
        self.wait_log(r"to=<dora@down\.test>, .*status=deferred \(connect to 127\.0\.0\.32\[127\.0\.0\.32\]:%d: "
                      r"Connection refused\)" % self.port)
        raw = self.bounce_for("dora@down.test", timeout=40)
        self.assertIn(b"Connection refused", raw)


if __name__ == "__main__":
    unittest.main()
