"""End-to-end tests of authenticated submission (RFC 6409, RFC 4954) on a
real stack with the auth daemon: AUTH PLAIN and LOGIN (with and without an
initial response) over STARTTLS and implicit TLS with swaks, curl and
smtplib; 530 without AUTH, 553 for a sender the login does not own, 538
before TLS for a client treated as remote, 454 when auth is down; the
Received header (ESMTPSA, optionally without the client address) and the
Message-ID/Date added to submitted mail; authenticated relaying; failure
throttling seen through SMTP; the per-account burst block, `mailctl block
list` and `mailctl block clear`.
"""
import base64
import os
import re
import smtplib
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, program_exists, tls_context  # noqa: E402

NEEDED = ("master", "smtpd", "qmgr", "local-delivery", "auth", "mailctl")
PLAIN_IR = base64.b64encode(b"\0demo@tern.test\0demo").decode()


def read(path):
    with open(path, "rb") as f:
        return f.read()


def swaks(*args, timeout=60):
    return subprocess.run(["swaks", "--suppress-data", "--hide-informational"] + list(args),
                          capture_output=True, text=True, timeout=timeout)


def delivered(stack, n):
    stack.wait_for(lambda: len(stack.maildir_new("tern.test", "demo")) >= n, 20, f"{n} messages in demo's Maildir")
    return [read(p) for p in stack.maildir_new("tern.test", "demo")]


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "needs " + ", ".join(NEEDED))
class Submission(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(config={"auth_failure_delay": "0"})
        cls.stack.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.stack.__exit__(None, None, None)

    def submission(self):
        return self.stack.port("submission")

    def test_swaks_starttls_plain_with_initial_response(self):
        before = len(self.stack.maildir_new("tern.test", "demo"))
        r = swaks("--server", f"127.0.0.1:{self.submission()}", "--tls", "--auth", "PLAIN",
                  "--auth-user", "demo@tern.test", "--auth-password", "demo",
                  "--from", "demo@tern.test", "--to", "demo@tern.test",
                  "--header", "Subject: swaks plain", "--body", "hello", "--add-header", "X-Test: 1")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("AUTH PLAIN " + PLAIN_IR, r.stdout)  # SASL-IR in one line
        self.assertIn("235 2.7.0", r.stdout)
        msgs = delivered(self.stack, before + 1)
        body = [m for m in msgs if b"swaks plain" in m][0]
        self.assertRegex(body, rb"Received: from \S+ \(localhost \[127\.0\.0\.1\]\)")
        self.assertIn(b"with ESMTPSA id", body)

    def test_swaks_login_without_initial_response(self):
        r = swaks("--server", f"127.0.0.1:{self.submission()}", "--tls", "--auth", "LOGIN",
                  "--auth-user", "demo@tern.test", "--auth-password", "demo",
                  "--from", "demo+lists@tern.test", "--to", "friend@example.net", "--quit-after", "RCPT")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("334 VXNlcm5hbWU6", r.stdout)
        # Authenticated clients may relay; the extension still belongs to demo.
        self.assertRegex(r.stdout, r"RCPT TO:<friend@example\.net>\s*\n<~  250 2\.1\.5")

    def test_curl_implicit_tls_plain_and_login(self):
        for options in ([], ["--login-options", "AUTH=LOGIN"]):
            before = len(self.stack.maildir_new("tern.test", "demo"))
            msg = b"From: demo@tern.test\r\nTo: demo@tern.test\r\nSubject: curl smtps\r\n\r\nbody\r\n"
            r = subprocess.run(["curl", "-sS", "-k", f"smtps://127.0.0.1:{self.stack.port('smtps')}",
                                "-u", "demo@tern.test:demo", *options, "--mail-from", "demo@tern.test",
                                "--mail-rcpt", "demo@tern.test", "-T", "-"], input=msg,
                               capture_output=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            body = [m for m in delivered(self.stack, before + 1) if b"curl smtps" in m][-1]
            self.assertIn(b"with ESMTPSA id", body)
            # Submission fills in what the client left out (RFC 6409 8.2, 8.3).
            self.assertRegex(body, rb"\nMessage-I[Dd]: <[^>]+@mail\.tern\.test>")
            self.assertRegex(body, rb"\nDate: ")
        log = self.stack.log_text()
        self.assertRegex(log, r"client=localhost\[127\.0\.0\.1\], sasl_method=LOGIN, sasl_username=demo@tern\.test")

    def test_smtplib_starttls_login_and_plain(self):
        for mech in ("PLAIN", "LOGIN"):
            with smtplib.SMTP("127.0.0.1", self.submission(), timeout=10) as c:
                c.starttls(context=tls_context())
                c.ehlo("client.example")
                self.assertIn("PLAIN", c.esmtp_features.get("auth", ""))
                c.user, c.password = "demo@tern.test", "demo"
                code, _ = c.auth(mech, getattr(c, "auth_" + mech.lower()), initial_response_ok=(mech == "PLAIN"))
                self.assertEqual(code, 235)
                self.assertEqual(c.sendmail("demo@tern.test", ["someone@example.org"],
                                            b"Subject: relay\r\n\r\nx\r\n"), {})

    def test_refusals(self):
        with smtplib.SMTP("127.0.0.1", self.submission(), timeout=10) as c:
            c.starttls(context=tls_context())
            c.ehlo("client.example")
            # No AUTH: submission refuses the transaction.
            code, msg = c.mail("demo@tern.test")
            self.assertEqual((code, msg[:5]), (530, b"5.7.0"))
            # Unknown mechanism, bad base64, cancel.
            self.assertEqual(c.docmd("AUTH CRAM-MD5")[0], 504)
            self.assertEqual(c.docmd("AUTH PLAIN !!!!")[0], 501)
            self.assertEqual(c.docmd("AUTH LOGIN")[0], 334)
            self.assertEqual(c.docmd("*")[0], 501)
            # Wrong password.
            bad = base64.b64encode(b"\0demo@tern.test\0wrong").decode()
            code, msg = c.docmd("AUTH PLAIN " + bad)
            self.assertEqual((code, msg[:5]), (535, b"5.7.8"))
            # Right password; then a sender the login does not own.
            self.assertEqual(c.docmd("AUTH PLAIN " + PLAIN_IR)[0], 235)
            self.assertEqual(c.docmd("AUTH PLAIN " + PLAIN_IR)[0], 503)
            code, msg = c.mail("postmaster@example.net")
            self.assertEqual(code, 553)
            self.assertIn(b"5.7.1 <postmaster@example.net>: Sender address rejected: not owned by user demo@tern.test",
                          msg)
            # Its own address, and the null sender, are fine.
            self.assertEqual(c.mail("DEMO@tern.test")[0], 250)
            c.rset()
            self.assertEqual(c.mail("<>")[0], 250)

    def test_alias_owned_by_the_login(self):
        # demo is the target of the postmaster and root aliases (harness aliases file).
        with smtplib.SMTP("127.0.0.1", self.submission(), timeout=10) as c:
            c.starttls(context=tls_context())
            c.login("demo@tern.test", "demo")
            self.assertEqual(c.mail("postmaster@mail.tern.test")[0], 250)


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "needs " + ", ".join(NEEDED))
class SubmissionPolicy(unittest.TestCase):
    def test_no_auth_before_tls_for_a_remote_client(self):
        # Loopback counts as remote here: AUTH only after STARTTLS.
        with Stack(config={"smtpd_sasl_loopback_plaintext": "no"}) as s:
            with smtplib.SMTP("127.0.0.1", s.port("submission"), timeout=10) as c:
                c.ehlo("client.example")
                self.assertNotIn("auth", c.esmtp_features)
                code, msg = c.docmd("AUTH PLAIN " + PLAIN_IR)
                self.assertEqual((code, msg[:6]), (538, b"5.7.11"))
                c.starttls(context=tls_context())
                c.ehlo("client.example")
                self.assertIn("auth", c.esmtp_features)
                self.assertEqual(c.docmd("AUTH PLAIN " + PLAIN_IR)[0], 235)
            # Port 25 offers no AUTH at all by default.
            with smtplib.SMTP("127.0.0.1", s.port("smtp"), timeout=10) as c:
                c.starttls(context=tls_context())
                c.ehlo("client.example")
                self.assertNotIn("auth", c.esmtp_features)
                self.assertEqual(c.docmd("AUTH PLAIN " + PLAIN_IR)[0], 503)

    def test_loopback_may_auth_in_plaintext_by_default_and_client_can_be_hidden(self):
        with Stack(config={"smtpd_sasl_hide_client": "yes"}) as s:
            with smtplib.SMTP("127.0.0.1", s.port("submission"), timeout=10) as c:
                c.ehlo("client.example")
                self.assertIn("PLAIN", c.esmtp_features.get("auth", ""))
                c.login("demo@tern.test", "demo")
                c.sendmail("demo@tern.test", ["demo@tern.test"], b"Subject: hidden\r\n\r\nx\r\n")
            body = delivered(s, 1)[0]
            self.assertRegex(body, rb"(?m)^Received: by mail\.tern\.test \(tern\) with ESMTPA id ")
            self.assertNotIn(b"127.0.0.1", body)

    def test_auth_daemon_down_is_a_temporary_failure(self):
        with Stack(autostart=False) as s:
            s.services = [l for l in s.services if not l.startswith("auth ")]
            s.write_services()
            s.start()
            with smtplib.SMTP("127.0.0.1", s.port("submission"), timeout=10) as c:
                c.ehlo("client.example")
                code, msg = c.docmd("AUTH PLAIN " + PLAIN_IR)
                self.assertEqual((code, msg[:5]), (454, b"4.7.0"))

    def test_failed_logins_block_the_client_address(self):
        with Stack(config={"auth_failure_delay": "0", "auth_failure_limit": "3"}) as s:
            bad = base64.b64encode(b"\0demo@tern.test\0wrong").decode()
            with smtplib.SMTP("127.0.0.1", s.port("submission"), timeout=10) as c:
                c.ehlo("client.example")
                for _ in range(3):
                    self.assertEqual(c.docmd("AUTH PLAIN " + bad)[0], 535)
                # Blocked now: even the right password is refused.
                self.assertEqual(c.docmd("AUTH PLAIN " + PLAIN_IR)[0], 535)
            self.assertIn("authentication failed: user=<demo@tern.test>, rip=127.0.0.1, service=smtp, "
                          "reason=client address blocked", s.log_text())

    def test_per_account_burst_block_and_clear(self):
        cfg = {"smtpd_auth_message_limit": "3", "smtpd_auth_recipient_limit": "5"}
        with Stack(config=cfg) as s:
            with smtplib.SMTP("127.0.0.1", s.port("submission"), timeout=10) as c:
                c.login("demo@tern.test", "demo")
                for i in range(3):
                    self.assertEqual(c.sendmail("demo@tern.test", ["demo@tern.test"], b"Subject: burst\r\n\r\nx\r\n"), {})
                code, msg = c.mail("demo@tern.test")
                self.assertEqual((code, msg[:5]), (451, b"4.7.1"))
            self.assertRegex(s.log_text(), r"blocked account demo@tern\.test for 3600s: message rate 4/3600s exceeds limit 3")
            listing = s.mailctl("block", "list").stdout
            self.assertRegex(listing, r"account demo@tern\.test until .*message rate 4/3600s exceeds limit 3")
            # Still blocked on a new connection, until cleared.
            with smtplib.SMTP("127.0.0.1", s.port("submission"), timeout=10) as c:
                c.login("demo@tern.test", "demo")
                self.assertEqual(c.mail("demo@tern.test")[0], 451)
            r = s.mailctl("block", "clear", "demo@tern.test")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("No blocks", s.mailctl("block", "list").stdout)
            with smtplib.SMTP("127.0.0.1", s.port("submission"), timeout=10) as c:
                c.login("demo@tern.test", "demo")
                self.assertEqual(c.mail("demo@tern.test")[0], 250)
                # Recipients count too: 5 fit, the 6th blocks the account.
                for i in range(5):
                    self.assertEqual(c.rcpt(f"r{i}@example.org")[0], 250)
                self.assertEqual(c.rcpt("r5@example.org")[0], 451)
            self.assertIn("recipient rate 6/3600s exceeds limit 5", s.mailctl("block", "list").stdout)


if __name__ == "__main__":
    unittest.main()
