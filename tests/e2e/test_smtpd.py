"""End-to-end tests of smtpd on a real stack: EHLO capabilities,
pipelining, SIZE limits, relay refusal, SMTP smuggling, STARTTLS and
implicit TLS, 8BITMIME/SMTPUTF8, recipient limits, CHUNKING, and rate-limit
blocks lifted with `mailctl block clear`.

The stacks run smtpd without qmgr, so accepted mail stays in the queue and
acceptance is checked on the queue itself (`mailctl queue list` and
`mailctl queue cat`); delivery is other tests' business.
"""
import os
import re
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import MAILCTL, Stack, program_exists, tls_context  # noqa: E402

NEEDED = ("master", "smtpd", "mailctl")
SMTPD_ONLY = [
    "smtp inet 127.0.0.1:{port} - 1 smtpd",
    "smtps inet 127.0.0.1:{port} - 1 smtpd -o smtpd_mode=smtps",
    "auth unix $run_directory/auth.sock - 1 auth",  # smtps (submission) needs AUTH
]
QUEUED = re.compile(r"250 2\.0\.0 Ok: queued as ([0-9A-Z]+)")


LISTED = re.compile(r"^([0-9A-Z]{6,})[*!]?\s", re.M)


def queue_files(stack):
    """The queue ids of every queued message (`mailctl queue list`: a small
    body has no file of its own, docs/queue.md "Small bodies")."""
    listing = stack.mailctl("queue", "list", check=True).stdout
    return set(LISTED.findall(listing))


def read_body(stack, queue_id):
    """The message as queued, from `mailctl queue cat`."""
    proc = subprocess.run([MAILCTL, "-c", stack.conf_dir, "queue", "cat", queue_id],
                          capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise AssertionError("mailctl queue cat %s: %s" % (queue_id, proc.stderr.decode(errors="replace")))
    return proc.stdout


class Raw:
    """A hand-driven SMTP connection for what smtplib refuses to send."""

    def __init__(self, port, source=None, timeout=10):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""

    def line(self):
        deadline = time.monotonic() + 10
        while b"\r\n" not in self.buf:
            if time.monotonic() > deadline:
                raise TimeoutError("no reply line")
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("connection closed; have %r" % self.buf)
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self):
        """One whole (possibly multi-line) reply as text, lines joined by \\n."""
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line())
        return "\n".join(lines)

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def cmd(self, text):
        self.send((text + "\r\n").encode("utf-8"))
        return self.reply()

    def closed(self):
        """True when the server closed the connection (EOF) within the timeout."""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buf += data
        except (socket.timeout, ConnectionResetError):
            return False

    def close(self):
        self.sock.close()


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "needs " + ", ".join(NEEDED))
class SmtpdTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(config={"mynetworks": "127.0.0.1/32", "message_size_limit": "20000",
                                  "smtpd_recipient_limit": "3"},
                          services=SMTPD_ONLY)
        cls.stack.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.stack.__exit__(None, None, None)

    def port(self):
        return self.stack.port("smtp")

    def session(self, source=None):
        c = Raw(self.port(), source)
        self.assertTrue(c.reply().startswith("220 "))
        self.assertTrue(c.cmd("EHLO client.example").startswith("250"))
        return c

    def test_ehlo_capabilities(self):
        with smtplib.SMTP("127.0.0.1", self.port(), timeout=10) as c:
            code, _ = c.ehlo("client.example")
            self.assertEqual(code, 250)
            for ext in ("pipelining", "size", "starttls", "enhancedstatuscodes", "8bitmime", "dsn",
                        "smtputf8", "chunking"):
                self.assertTrue(c.has_extn(ext), ext)
            self.assertEqual(c.esmtp_features["size"], "20000")
            self.assertFalse(c.has_extn("binarymime"))
            self.assertEqual(c.vrfy("demo@tern.test")[0], 252)

    def test_swaks_pipelining_and_queue(self):
        before = set(queue_files(self.stack))
        proc = subprocess.run(["swaks", "--server", f"127.0.0.1:{self.port()}", "--pipeline",
                               "--from", "alice@example.org", "--to", "demo@tern.test",
                               "--header", "Subject: pipelined"],
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        m = QUEUED.search(proc.stdout)
        self.assertTrue(m, proc.stdout)
        qid = m.group(1)
        self.assertEqual(set(queue_files(self.stack)) - before, {qid})
        body = read_body(self.stack, qid).decode()
        self.assertTrue(body.startswith("Received: from "), body[:200])
        self.assertIn(f"with ESMTP id {qid}\n\tfor <demo@tern.test>;", body)
        self.assertNotIn("\r", body)
        self.assertIn("Subject: pipelined\n", body)
        # swaks sent its own Message-Id and Date: nothing was added.
        self.assertEqual(body.lower().count("\nmessage-id:"), 1)
        self.assertEqual(body.lower().count("\ndate:"), 1)
        listing = self.stack.mailctl("queue", "list", check=True).stdout
        self.assertIn(qid, listing)
        self.assertIn("alice@example.org", listing)
        log = self.stack.wait_for(lambda: (t := self.stack.log_text()) and
                                  re.search(r"disconnect from localhost\[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=1 "
                                            r"data=1 quit=1 commands=5", t) and t, 10, "disconnect line")
        self.assertIn(f"{qid}: client=localhost[127.0.0.1]", log)
        self.assertIn(f"{qid}: message-id=<", log)

    def test_pipelined_transactions_answer_in_order(self):
        c = self.session()
        msg = "Subject: p\r\n\r\nbody\r\n.\r\n"
        c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<demo@tern.test>\r\nDATA\r\n" + msg +
               "MAIL FROM:<b@example.org>\r\nRCPT TO:<nobody@tern.test>\r\nRCPT TO:<demo@tern.test>\r\nDATA\r\n" +
               msg + "NOOP\r\n")
        replies = [c.reply() for _ in range(10)]
        self.assertEqual([r[:3] for r in replies],
                         ["250", "250", "354", "250", "250", "550", "250", "354", "250", "250"], replies)
        self.assertRegex(replies[3], QUEUED)
        self.assertRegex(replies[8], QUEUED)
        self.assertIn("5.1.1", replies[5])
        self.assertTrue(c.cmd("QUIT").startswith("221"))
        c.close()

    def test_size_limit_at_mail_and_during_data(self):
        before = set(queue_files(self.stack))
        c = self.session()
        self.assertTrue(c.cmd("MAIL FROM:<a@example.org> SIZE=20001").startswith("552 5.3.4"))
        self.assertTrue(c.cmd("MAIL FROM:<a@example.org> SIZE=100").startswith("250"))
        self.assertTrue(c.cmd("RCPT TO:<demo@tern.test>").startswith("250"))
        self.assertTrue(c.cmd("DATA").startswith("354"))
        c.send("Subject: big\r\n\r\n" + ("x" * 998 + "\r\n") * 25 + ".\r\n")
        self.assertTrue(c.reply().startswith("552 5.3.4"))
        self.assertEqual(set(queue_files(self.stack)), before)
        # The session is still usable.
        self.assertTrue(c.cmd("MAIL FROM:<a@example.org>").startswith("250"))
        self.assertTrue(c.cmd("QUIT").startswith("221"))
        c.close()

    def test_relay_refused_outside_mynetworks(self):
        c = self.session(source="127.0.0.2")
        self.assertTrue(c.cmd("MAIL FROM:<a@example.org>").startswith("250"))
        r = c.cmd("RCPT TO:<someone@elsewhere.example>")
        self.assertTrue(r.startswith("554 5.7.1"), r)
        self.assertIn("Relay access denied", r)
        # Local mail is still accepted from anyone.
        self.assertTrue(c.cmd("RCPT TO:<demo@tern.test>").startswith("250"))
        self.assertTrue(c.cmd("RCPT TO:<nobody@tern.test>").startswith("550 5.1.1"))
        c.cmd("QUIT")
        c.close()
        # From inside mynetworks the same recipient is relayed.
        c = self.session()
        self.assertTrue(c.cmd("MAIL FROM:<a@example.org>").startswith("250"))
        self.assertTrue(c.cmd("RCPT TO:<someone@elsewhere.example>").startswith("250"))
        c.cmd("QUIT")
        c.close()
        # 127.0.0.2 is loopback: named "localhost" without any DNS lookup.
        self.assertIn("NOQUEUE: reject: RCPT from localhost[127.0.0.2]: 554 5.7.1",
                      self.stack.wait_for(lambda: "localhost[127.0.0.2]: 554" in self.stack.log_text()
                                          and self.stack.log_text(), 10, "reject log line"))

    def test_bare_lf_smuggling_refused(self):
        for smuggle in (b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r"):
            before = set(queue_files(self.stack))
            c = self.session()
            self.assertTrue(c.cmd("MAIL FROM:<a@example.org>").startswith("250"))
            self.assertTrue(c.cmd("RCPT TO:<demo@tern.test>").startswith("250"))
            self.assertTrue(c.cmd("DATA").startswith("354"))
            c.send(b"Subject: outer\r\n\r\nhello" + smuggle +
                   b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<demo@tern.test>\r\nDATA\r\n"
                   b"Subject: smuggled\r\n\r\nevil\r\n.\r\n")
            r = c.reply()
            self.assertTrue(r.startswith("550 5.5.2"), (smuggle, r))
            # The smuggled commands never ran: the next reply answers our NOOP.
            self.assertTrue(c.cmd("NOOP").startswith("250 2.0.0"))
            self.assertEqual(set(queue_files(self.stack)), before, smuggle)
            self.assertTrue(c.cmd("QUIT").startswith("221"))
            c.close()

    def test_starttls_with_curl(self):
        with tempfile.NamedTemporaryFile("wb", suffix=".eml") as f:
            f.write(b"From: a@example.org\r\nSubject: over tls\r\n\r\nsecret\r\n")
            f.flush()
            before = set(queue_files(self.stack))
            proc = subprocess.run(["curl", "-sS", "--ssl-reqd", "-k", "-v", f"smtp://127.0.0.1:{self.port()}",
                                   "--mail-from", "a@example.org", "--mail-rcpt", "demo@tern.test",
                                   "-T", f.name], capture_output=True, text=True, timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        new = set(queue_files(self.stack)) - before
        self.assertEqual(len(new), 1)
        body = read_body(self.stack, new.pop()).decode()
        self.assertRegex(body, r"\(using TLSv1\.[23] with cipher \S+ \(\d+/\d+ bits\)\)\n\tby mail\.tern\.test "
                               r"\(tern\) with ESMTPS id")
        # Added for a mynetworks client whose message lacked them.
        self.assertIn("\nMessage-ID: <", body)
        self.assertIn("\nDate: ", body)
        self.assertIn("Anonymous TLS connection established from localhost[127.0.0.1]: TLSv1",
                      self.stack.log_text())

    def test_starttls_discards_pipelined_plaintext(self):
        c = self.session()
        c.send("STARTTLS\r\nMAIL FROM:<injected@example.org>\r\n")
        self.assertTrue(c.reply().startswith("220 2.0.0"))
        tls = tls_context().wrap_socket(c.sock, server_hostname="mail.tern.test")
        c.sock = tls
        # Had the injected MAIL run, this EHLO-less MAIL would be "nested";
        # instead HELO is required again after the handshake (RFC 3207 4.2).
        self.assertTrue(c.cmd("MAIL FROM:<a@example.org>").startswith("503 5.5.1"))
        ehlo = c.cmd("EHLO client.example")
        self.assertNotIn("STARTTLS", ehlo)
        self.assertTrue(c.cmd("MAIL FROM:<a@example.org>").startswith("250"))
        c.cmd("QUIT")
        c.close()

    def test_implicit_tls_smtps(self):
        with tempfile.NamedTemporaryFile("wb", suffix=".eml") as f:
            f.write(b"Subject: smtps\r\n\r\nhi\r\n")
            f.flush()
            before = set(queue_files(self.stack))
            proc = subprocess.run(["curl", "-sS", "-k", f"smtps://127.0.0.1:{self.stack.port('smtps')}",
                                   "-u", "demo@tern.test:demo", "--mail-from", "demo@tern.test", "--mail-rcpt", "demo@tern.test",
                                   "-T", f.name], capture_output=True, text=True, timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        new = set(queue_files(self.stack)) - before
        self.assertEqual(len(new), 1)
        self.assertIn(b"with ESMTPSA id", read_body(self.stack, new.pop()))

    def test_8bitmime_and_smtputf8(self):
        sender = "j\u00f6rg@b\u00fccher.example"
        rcpt = "\u00e9lise@example.net"
        body = ("From: " + sender + "\r\nSubject: gr\u00fc\u00dfe\r\n\r\nK\u00e4se\r\n").encode("utf-8")
        # Without SMTPUTF8 a UTF-8 address is a syntax error.
        raw = self.session()
        self.assertTrue(raw.cmd("MAIL FROM:<" + sender + ">").startswith("501 5.1.7"))
        self.assertTrue(raw.cmd("MAIL FROM:<" + sender + "> SMTPUTF8").startswith("250"))
        raw.close()
        with smtplib.SMTP("127.0.0.1", self.port(), timeout=10) as c:
            before = set(queue_files(self.stack))
            refused = c.sendmail(sender, [rcpt, "demo@tern.test"], body,
                                 mail_options=["SMTPUTF8", "BODY=8BITMIME"])
            self.assertEqual(refused, {})
        new = set(queue_files(self.stack)) - before
        self.assertEqual(len(new), 1)
        stored = read_body(self.stack, new.pop())
        self.assertIn("K\u00e4se\n".encode("utf-8"), stored)
        self.assertIn(b"with UTF8SMTP id", stored)
        listing = self.stack.mailctl("queue", "list", check=True).stdout
        self.assertIn(sender, listing)

    def test_too_many_recipients(self):
        c = self.session()
        self.assertTrue(c.cmd("MAIL FROM:<a@example.org>").startswith("250"))
        for i in range(3):
            self.assertTrue(c.cmd(f"RCPT TO:<r{i}@elsewhere.example>").startswith("250"))
        self.assertTrue(c.cmd("RCPT TO:<r3@elsewhere.example>").startswith("452 4.5.3"))
        self.assertTrue(c.cmd("RSET").startswith("250"))
        c.cmd("QUIT")
        c.close()

    def test_chunking(self):
        before = set(queue_files(self.stack))
        c = self.session()
        self.assertTrue(c.cmd("MAIL FROM:<a@example.org>").startswith("250"))
        self.assertTrue(c.cmd("RCPT TO:<demo@tern.test>").startswith("250"))
        part1 = b"Subject: chunks\r\n\r\nline one\r"
        part2 = b"\nline two\r\n"
        c.send(b"BDAT %d\r\n" % len(part1) + part1)
        self.assertTrue(c.reply().startswith("250"))
        c.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
        m = QUEUED.search(c.reply())
        self.assertTrue(m)
        stored = read_body(self.stack, m.group(1))
        self.assertIn(b"\nSubject: chunks\n", stored)
        self.assertTrue(stored.endswith(b"\n\nline one\nline two\n"), stored)
        # A bare LF inside a chunk refuses the message, like DATA.
        self.assertTrue(c.cmd("MAIL FROM:<a@example.org>").startswith("250"))
        self.assertTrue(c.cmd("RCPT TO:<demo@tern.test>").startswith("250"))
        bad = b"Subject: x\r\n\r\nbare\nlf\r\n"
        c.send(b"BDAT %d LAST\r\n" % len(bad) + bad)
        self.assertTrue(c.reply().startswith("550 5.5.2"))
        self.assertEqual(set(queue_files(self.stack)) - before, {m.group(1)})
        self.assertTrue(c.cmd("QUIT").startswith("221"))
        c.close()

    def test_protocol_errors(self):
        c = Raw(self.port())
        c.reply()
        self.assertTrue(c.cmd("MAIL FROM:<a@example.org>").startswith("503 5.5.1"))
        self.assertTrue(c.cmd("HELO").startswith("501"))
        self.assertTrue(c.cmd("EHLO x").startswith("250"))
        self.assertTrue(c.cmd("RCPT TO:<demo@tern.test>").startswith("503 5.5.1"))
        self.assertTrue(c.cmd("MAIL FROM:<a@example.org> FOO=BAR").startswith("555 5.5.4"))
        self.assertTrue(c.cmd("MAIL FROM:<a b@example.org>").startswith("501 5.1.7"))
        self.assertTrue(c.cmd("DATA").startswith("503"))
        # RFC 5321 4.2.4: an unrecognised command is a 500, not a 502.
        self.assertEqual(c.cmd("XYZZY"), "500 5.5.2 Error: command not recognized")
        self.assertTrue(c.cmd("A" * 3000).startswith("500 5.5.0"))
        self.assertTrue(c.cmd("NOOP").startswith("250"))
        c.close()


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "needs " + ", ".join(NEEDED))
class SmtpdRateLimitTest(unittest.TestCase):
    def test_block_then_clear(self):
        # No exceptions: 127.0.0.1 (in the default mynetworks) is counted too.
        with Stack(config={"smtpd_client_message_rate_limit": "2", "smtpd_rate_time_unit": "1h",
                           "smtpd_block_time": "1h", "smtpd_rate_limit_exceptions": ""},
                   services=["smtp inet 127.0.0.1:{port} - 2 smtpd"]) as s:
            def send_one():
                with smtplib.SMTP("127.0.0.1", s.port("smtp"), timeout=10) as c:
                    c.sendmail("a@example.org", ["demo@tern.test"], b"Subject: rate\r\n\r\nx\r\n")
            send_one()
            send_one()
            with self.assertRaises(smtplib.SMTPException) as ctx:
                send_one()
            self.assertIn("rate limit exceeded", str(ctx.exception))
            # Blocked at connect now, whichever smtpd process answers.
            for _ in range(3):
                c = Raw(s.port("smtp"))
                r = c.reply()
                self.assertTrue(r.startswith("421 4.7.0"), r)
                self.assertTrue(c.closed())
                c.close()
            self.assertIn("warning: blocked client 127.0.0.1 for 3600s: message rate 3/3600s exceeds limit 2",
                          s.log_text())
            self.assertEqual(s.log_text().count("blocked client 127.0.0.1"), 1)
            listing = s.mailctl("block", "list", check=True).stdout
            self.assertRegex(listing, r"client 127\.0\.0\.1 until .*message rate 3/3600s exceeds limit 2")
            self.assertEqual(s.mailctl("block", "clear", "127.0.0.1").returncode, 0)
            self.assertIn("No blocks", s.mailctl("block", "list", check=True).stdout)
            self.assertEqual(s.mailctl("block", "clear", "127.0.0.1").returncode, 1)
            self.assertEqual(s.mailctl("block", "frobnicate").returncode, 2)
            send_one()

    def test_default_limits_stop_a_burst_from_outside_mynetworks(self):
        """The shipped defaults (no rate key set here): a burst from one
        address outside mynetworks is refused with a 4xx once it passes the
        per-client limit; mynetworks (127.0.0.1 here) is exempt."""
        with Stack(config={"mynetworks": "127.0.0.1/32"},
                   services=["smtp inet 127.0.0.1:{port} - 2 smtpd"]) as s:
            limit = int(s.mailctl("config", "smtpd_client_message_rate_limit", check=True).stdout.split("=")[1])
            unit = s.mailctl("config", "smtpd_rate_time_unit", check=True).stdout.split("=")[1].strip()
            self.assertGreater(limit, 0, "the per-client rate limit must be on by default")
            self.assertEqual(unit, "60s")
            burst = limit + 50  # "hundreds per minute" from one address
            self.assertLess(limit, 200)

            def burst_from(source, count):
                """Sends up to count messages on one connection; returns
                (accepted, the refusal code and text or None)."""
                accepted = 0
                c = smtplib.SMTP("127.0.0.1", s.port("smtp"), timeout=10, source_address=(source, 0))
                try:
                    c.ehlo("burst.test")
                    for i in range(count):
                        try:
                            c.sendmail("burst@example.org", ["demo@tern.test"],
                                       f"Subject: burst {i}\r\n\r\nx\r\n".encode())
                        except smtplib.SMTPSenderRefused as e:
                            return accepted, (e.smtp_code, e.smtp_error.decode())
                        accepted += 1
                finally:
                    try:
                        c.close()
                    except OSError:
                        pass
                return accepted, None

            t0 = time.monotonic()
            accepted, refusal = burst_from("127.0.0.2", burst)
            # One fixed window: the whole burst must fit in it for the count to be exact.
            self.assertLess(time.monotonic() - t0, 55, "burst too slow to test one rate window")
            self.assertEqual(accepted, limit)
            self.assertIsNotNone(refusal)
            self.assertEqual(refusal[0], 421)
            self.assertIn("4.7.0", refusal[1])
            self.assertIn("too many messages from 127.0.0.2, rate limit exceeded", refusal[1])
            self.assertIn(f"warning: blocked client 127.0.0.2 for 3600s: message rate {limit + 1}/60s exceeds "
                          f"limit {limit}", s.log_text())
            # Refused at connect while the block lasts.
            c = Raw(s.port("smtp"), source="127.0.0.2")
            self.assertTrue(c.reply().startswith("421 4.7.0"))
            c.close()
            listing = s.mailctl("block", "list", check=True).stdout
            self.assertRegex(listing, rf"client 127\.0\.0\.2 until .*exceeds limit {limit}")
            # mynetworks is exempt: the same burst from 127.0.0.1 goes through.
            self.assertEqual(burst_from("127.0.0.1", burst), (burst, None))
            self.assertNotIn("127.0.0.1", s.mailctl("block", "list", check=True).stdout)
            # Clearing lifts the block.
            self.assertEqual(s.mailctl("block", "clear", "127.0.0.2").returncode, 0)
            self.assertIn("No blocks", s.mailctl("block", "list", check=True).stdout)
            self.assertEqual(burst_from("127.0.0.2", 1), (1, None))

    def test_connection_limit_counts_clients_outside_mynetworks_only(self):
        """smtpd_client_connection_limit refuses the connection over the
        limit from one outside address, across smtpd processes; clients in
        smtpd_rate_limit_exceptions ($mynetworks) are not counted (Postfix's
        smtpd_client_event_limit_exceptions)."""
        with Stack(config={"mynetworks": "127.0.0.1/32", "smtpd_client_connection_limit": "2"},
                   services=["smtp inet 127.0.0.1:{port} - 2 smtpd"]) as s:
            outside = [Raw(s.port("smtp"), source="127.0.0.2") for _ in range(2)]
            inside = [Raw(s.port("smtp"), source="127.0.0.1") for _ in range(4)]
            try:
                for c in outside + inside:
                    self.assertTrue(c.reply().startswith("220 "))
                third = Raw(s.port("smtp"), source="127.0.0.2")
                self.assertTrue(third.reply().startswith("421 4.7.0"))
                self.assertTrue(third.closed())
                third.close()
                self.assertIn("too many connections from localhost[127.0.0.2]: 3", s.log_text())
                self.assertNotIn("too many connections from localhost[127.0.0.1]", s.log_text())
                # A slot freed by QUIT is free again once that session is closed.
                self.assertTrue(outside[0].cmd("QUIT").startswith("221"))
                self.assertTrue(outside[0].closed())
                deadline = time.monotonic() + 10
                while True:
                    c = Raw(s.port("smtp"), source="127.0.0.2")
                    greeting = c.reply()
                    c.close()
                    if greeting.startswith("220 ") or time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                self.assertTrue(greeting.startswith("220 "), greeting)
            finally:
                for c in outside + inside:
                    c.close()


if __name__ == "__main__":
    unittest.main()
