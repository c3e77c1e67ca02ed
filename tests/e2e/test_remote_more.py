"""More remote-delivery cases, on a stack of their own (test_remote.py's
stack marks dead destinations for 2 s only; here it is a minute, so the
"not hammered" count cannot be disturbed by the mark expiring):

- a dead destination: one connection attempt, every other delivery to it
  deferred at once ("delivery temporarily suspended"), retries included;
- HELO when the server refuses EHLO;
- PIPELINING: MAIL, RCPT and DATA in one write only when offered;
- random order among MX hosts of equal preference;
- slow start (a class with its own stack): one session to a destination
  until a delivery succeeded, more after.
"""
import os
import re
import smtplib
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dnsserver import DnsServer  # noqa: E402
from harness import free_port, program_exists  # noqa: E402
from smtpsink import SmtpSink  # noqa: E402
from test_remote import remote_stack  # noqa: E402

NEEDED = ("master", "smtpd", "qmgr", "smtp-client", "mailctl")


class RemoteStackCase(unittest.TestCase):
    """A stack with smtp-client and a test DNS server for the class;
    CONFIG adds the class's own tern.conf keys."""
    CONFIG = {}

    @classmethod
    def setUpClass(cls):
        cls.dns = DnsServer()
        cls.port = free_port()
        cls.stack = remote_stack(cls.dns.port, cls.port, dict(cls.CONFIG))
        cls.stack.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.stack.__exit__(None, None, None)
        cls.dns.close()

    def send_each(self, rcpts, subject):
        """One message per recipient, all over one SMTP session."""
        with smtplib.SMTP("127.0.0.1", self.stack.port("smtp"), timeout=15) as c:
            for i, rcpt in enumerate(rcpts):
                c.sendmail("demo@tern.test", [rcpt], f"Subject: {subject} {i}\r\n\r\nbody {i}\r\n".encode())


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "needs the whole stack built")
class RemoteDeliveryMore(RemoteStackCase):
    CONFIG = {
        "smtp_connect_timeout": "5s",
        "smtp_destination_concurrency_limit": "1",
        "smtp_dead_destination_time": "60s",
        "minimal_backoff_time": "1s",
        "maximal_backoff_time": "1s",
        "queue_run_delay": "1s",
    }

    def setUp(self):
        self.sinks = []

    def tearDown(self):
        for s in self.sinks:
            s.close()

    def sink(self, host, **kw):
        s = SmtpSink(host, self.port, **kw)
        self.sinks.append(s)
        return s

    def log_lines(self, pattern):
        rx = re.compile(pattern)
        return [l for l in self.stack.log_text().splitlines() if rx.search(l)]

    def test_dead_destination_is_not_hammered(self):
        # Nothing listens on the MX address: the first delivery finds the
        # destination unreachable and marks it dead; the other four, and
        # every retry while the mark lasts (60 s), are deferred without a
        # connection.  Each attempt that did connect-and-fail logs its own
        # "Connection refused" deferral; suspended ones say so instead.
        self.dns.add("dead.test", "MX", (10, "mx.dead.test"))
        self.dns.add("mx.dead.test", "A", "127.0.0.71")
        self.send_each([f"u{i}@dead.test" for i in range(5)], "dead")
        deferred = r"to=<u\d@dead\.test>, .*status=deferred"
        # The five first attempts and at least five retries (backoff 1 s).
        self.stack.wait_for(lambda: len(self.log_lines(deferred)) >= 10, 30, "ten deferrals for dead.test")
        lines = self.log_lines(deferred)
        tried = [l for l in lines if "temporarily suspended" not in l]
        suspended = [l for l in lines if "delivery temporarily suspended: " in l]
        self.assertEqual(len(tried), 1, "\n".join(tried))
        self.assertRegex(tried[0], r"Connection refused")
        self.assertEqual(len(suspended), len(lines) - 1)
        self.assertRegex(suspended[0], r"dsn=4\.4\.1, status=deferred \(delivery temporarily suspended: .*refused")
        self.assertIn("u0@dead.test", self.stack.mailctl("queue", "list").stdout)

    def test_helo_when_ehlo_is_refused(self):
        self.dns.add("helo.test", "MX", (10, "mx.helo.test"))
        self.dns.add("mx.helo.test", "A", "127.0.0.72")
        s = self.sink("127.0.0.72", ehlo=False)
        self.send_each(["old@helo.test"], "helo")
        self.stack.wait_for(lambda: s.messages, 20, "the message at mx.helo.test")
        self.assertIn(b"body 0", s.messages[0].data)
        verbs = [c.split(" ", 1)[0].upper() for c in s.commands]
        self.assertEqual(verbs[:3], ["EHLO", "HELO", "MAIL"])
        self.stack.wait_for(lambda: self.log_lines(r"to=<old@helo\.test>, relay=mx\.helo\.test.*status=sent"),
                            20, "the sent log line")

    def test_pipelining_only_when_offered(self):
        # RFC 2920: with PIPELINING, MAIL, the RCPTs and DATA leave in one
        # write, so RCPT is already at the server when it reads MAIL; without
        # it the client waits for each reply, so nothing follows MAIL yet.
        self.dns.add("pipe.test", "MX", (10, "mx.pipe.test"))
        self.dns.add("mx.pipe.test", "A", "127.0.0.75")
        self.dns.add("nopipe.test", "MX", (10, "mx.nopipe.test"))
        self.dns.add("mx.nopipe.test", "A", "127.0.0.76")
        pipe = self.sink("127.0.0.75")
        plain = self.sink("127.0.0.76", extensions=["8BITMIME", "ENHANCEDSTATUSCODES"])
        with smtplib.SMTP("127.0.0.1", self.stack.port("smtp"), timeout=15) as c:
            c.sendmail("demo@tern.test", ["a@pipe.test", "b@pipe.test"], b"Subject: p\r\n\r\npipelined\r\n")
            c.sendmail("demo@tern.test", ["a@nopipe.test", "b@nopipe.test"], b"Subject: n\r\n\r\nstep by step\r\n")
        self.stack.wait_for(lambda: pipe.messages and plain.messages, 20, "both messages at their MX")
        self.assertEqual(len(pipe.messages[0].rcpts), 2)
        self.assertEqual(len(plain.messages[0].rcpts), 2)
        self.assertEqual(pipe.mail_pipelined, [True])
        self.assertEqual(plain.mail_pipelined, [False])

    def test_equal_preference_mx_in_random_order(self):
        # 24 domains, each with the same two MX hosts at preference 10: a
        # new session per domain (connections are reused per destination
        # only), so each session picks its first MX afresh.  With a random
        # order both hosts get mail; a fixed order would send all 24 to one
        # (the chance that a fair coin does that is 2 in 2^24).
        a, b = "127.0.0.73", "127.0.0.74"
        self.dns.add("mxa.eq.test", "A", a)
        self.dns.add("mxb.eq.test", "A", b)
        domains = [f"eq{i}.test" for i in range(24)]
        for d in domains:
            self.dns.add(d, "MX", (10, "mxa.eq.test"))
            self.dns.add(d, "MX", (10, "mxb.eq.test"))
        sa, sb = self.sink(a), self.sink(b)
        self.send_each([f"x@{d}" for d in domains], "equal")
        self.stack.wait_for(lambda: len(sa.messages) + len(sb.messages) >= 24, 30, "24 messages at the two MX")
        self.assertEqual(len(sa.messages) + len(sb.messages), 24)
        self.assertGreater(len(sa.messages), 0)
        self.assertGreater(len(sb.messages), 0)


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "needs the whole stack built")
class SlowStart(RemoteStackCase):
    CONFIG = {
        "smtp_destination_concurrency_limit": "4",
        "smtp_initial_destination_concurrency": "1",
        "smtp_connection_cache_time_limit": "20s",
    }

    def test_one_session_until_a_delivery_succeeded(self):
        # The first message is held at the server until all twelve are in
        # tern; a window of 1 means no second session before it is accepted.
        # Without slow start (limit 4 at once) sessions 2-4 would open while
        # the first one waits.
        self.dns.add("slow.test", "A", "127.0.0.75")
        s = SmtpSink("127.0.0.75", self.port)
        self.addCleanup(s.close)
        gate = threading.Event()
        s.data_reply = lambda msg: None if gate.wait(30) else "451 4.3.0 test gate timed out"
        self.send_each([f"s{i}@slow.test" for i in range(12)], "slow start")
        rx = re.compile(r"qmgr\[\d+\]: \w+: from=<demo@tern\.test>, .*\(queue active\)")
        self.stack.wait_for(lambda: len(rx.findall(self.stack.log_text())) >= 12, 20, "twelve messages handed out")
        self.stack.wait_for(lambda: any(c.upper() == "DATA" for c in s.commands), 20, "the first message at the server")
        gate.set()
        self.stack.wait_for(lambda: len(s.messages) >= 12, 30, "twelve messages at the server")
        first = min(m.accepted_at for m in s.messages)
        self.assertGreaterEqual(s.sessions, 2, "the window never grew")
        self.assertGreater(sorted(s.session_starts)[1], first, "a second session opened before any success")


if __name__ == "__main__":
    unittest.main()
