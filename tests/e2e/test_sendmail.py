"""End-to-end tests of sendmail(1), mailq and newaliases against a real
stack: local submission through the maildrop, pickup by qmgr, -t, -bs,
-bp, -bi, -q, exit codes, and that an interrupted sendmail leaves nothing.
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, Stack, program_exists  # noqa: E402
from test_qmgr import FAST, USERS, block_mailbox, queue_ids, read, unblock_mailbox  # noqa: E402

SENDMAIL = os.path.join(BUILD, "sendmail")
NEEDED = ("master", "smtpd", "qmgr", "local-delivery", "mailctl", "sendmail")
EX_USAGE, EX_TEMPFAIL = 64, 75


def sendmail(stack, args, text, argv0=None, timeout=30):
    argv = [argv0 or SENDMAIL, "-c", stack.conf_dir] + list(args)
    return subprocess.run(argv, input=text.encode() if isinstance(text, str) else text,
                          capture_output=True, timeout=timeout, executable=SENDMAIL)


def maildrop_files(stack):
    d = os.path.join(stack.queue_dir, "maildrop")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def maildrop_ready(stack):
    """qmgr creates the maildrop at start (the install step does on a real
    system): wait for it before submitting."""
    d = os.path.join(stack.queue_dir, "maildrop")
    stack.wait_for(lambda: os.path.isdir(d), 10, "the maildrop directory")


def make_maildrop(stack):
    """What the install step does: the spool and its maildrop exist."""
    os.makedirs(os.path.join(stack.queue_dir, "maildrop"), mode=0o730, exist_ok=True)


def add_users(stack):
    with open(os.path.join(stack.conf_dir, "users"), "a") as f:
        f.write(USERS)


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "needs " + ", ".join(NEEDED))
class SendmailTest(unittest.TestCase):

    def test_t_extracts_recipients_and_removes_bcc(self):
        with Stack(config=FAST, autostart=False) as s:
            add_users(s)
            s.start()
            maildrop_ready(s)
            text = ("From: Demo <demo@tern.test>\r\n"
                    "To: Demo <demo@tern.test>\r\n"
                    "Bcc: carol@tern.test\r\n"
                    "Subject: via sendmail -t\r\n"
                    "\r\n"
                    "first line\r\n"
                    "..two dots stay two dots\r\n"
                    ".\r\n"
                    "after the dot: not part of the message\r\n")
            proc = sendmail(s, ["-t", "-f", "demo@tern.test"], text)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            demo = s.wait_for(lambda: s.maildir_new("tern.test", "demo"), 15, "delivery to demo")
            carol = s.wait_for(lambda: s.maildir_new("tern.test", "carol"), 15, "delivery to the Bcc")
            self.assertNotIn(b"carol@tern.test", read(demo[0]))  # the blind copy stays blind
            for path in (demo[0], carol[0]):
                raw = read(path)
                self.assertNotIn(b"Bcc:", raw)
                self.assertIn(b"(tern sendmail)", raw)
                self.assertIn(b"Message-ID: <", raw)
                self.assertIn(b"Date: ", raw)
                self.assertIn(b"\n..two dots stay two dots\n", raw)
                self.assertNotIn(b"\r\n", raw)
                self.assertNotIn(b"after the dot", raw)
            self.assertRegex(s.log_text(), r"\w{14}: uid=%d from=<demo@tern.test>" % os.getuid())

    def test_message_waits_in_maildrop_while_tern_is_down(self):
        with Stack(config=FAST) as s:
            maildrop_ready(s)
            s.stop()
            self.assertIsNone(s.status())
            proc = sendmail(s, ["-v", "-f", "demo@tern.test", "demo@tern.test"], "Subject: while down\n\nx\n")
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertEqual(len(maildrop_files(s)), 1)
            s.start()
            files = s.wait_for(lambda: s.maildir_new("tern.test", "demo"), 15, "delivery after start")
            self.assertIn(b"Subject: while down", read(files[0]))
            s.wait_for(lambda: not maildrop_files(s), 10, "maildrop emptied")

    def test_i_keeps_lone_dot_lines(self):
        with Stack(config=FAST) as s:
            maildrop_ready(s)
            proc = sendmail(s, ["-oi", "-f", "demo@tern.test", "demo@tern.test"],
                            "Subject: -oi\n\nbefore\n.\nafter\n")
            self.assertEqual(proc.returncode, 0, proc.stderr)
            files = s.wait_for(lambda: s.maildir_new("tern.test", "demo"), 15, "delivery")
            self.assertIn(b"before\n.\nafter\n", read(files[0]))

    def test_bs_smtp_session(self):
        with Stack(config=FAST) as s:
            maildrop_ready(s)
            dialogue = ("EHLO client\r\nMAIL FROM:<demo@tern.test>\r\nRCPT TO:<demo@tern.test>\r\n"
                        "DATA\r\nSubject: via -bs\r\n\r\n..stuffed\r\n.\r\nQUIT\r\n")
            proc = sendmail(s, ["-bs"], dialogue)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            replies = proc.stdout.decode()
            self.assertTrue(replies.startswith("220 "), replies)
            self.assertIn("250 2.0.0 Ok: queued as", replies)
            self.assertIn("221 2.0.0", replies)
            files = s.wait_for(lambda: s.maildir_new("tern.test", "demo"), 15, "delivery")
            self.assertIn(b"\n.stuffed\n", read(files[0]))  # dot-unstuffed, as SMTP requires

            bad = sendmail(s, ["-bs"], "RCPT TO:<demo@tern.test>\r\nDATA\r\nQUIT\r\n").stdout.decode()
            self.assertIn("503 5.5.1", bad)

    def test_dsn_options_reach_the_bounce(self):
        with Stack(config=FAST, autostart=False) as s:
            add_users(s)
            s.start()
            maildrop_ready(s)
            big = "x" * 600 + "\n"
            never = sendmail(s, ["-N", "never", "-f", "demo@tern.test", "bob@tern.test"],
                             "Subject: no notice wanted\n\n" + big)
            self.assertEqual(never.returncode, 0, never.stderr)
            hdrs = sendmail(s, ["-N", "failure", "-R", "hdrs", "-V", "ENV42", "-f", "demo@tern.test",
                                "bob@tern.test"], "Subject: headers only\n\n" + big)
            self.assertEqual(hdrs.returncode, 0, hdrs.stderr)
            files = s.wait_for(lambda: s.maildir_new("tern.test", "demo"), 20, "the one bounce")
            s.wait_for(lambda: s.log_text().count(": removed") >= 3, 15, "both messages and the bounce done")
            self.assertEqual(len(s.maildir_new("tern.test", "demo")), 1)
            raw = read(files[0])
            self.assertIn(b"Original-Envelope-Id: ENV42", raw)
            self.assertIn(b"Content-Type: text/rfc822-headers", raw)
            self.assertIn(b"Subject: headers only", raw)
            self.assertNotIn(b"x" * 600, raw)
            self.assertEqual(sendmail(s, ["-N", "never,delay", "demo@tern.test"], "").returncode, EX_USAGE)

    def test_mailq_shows_the_same_as_queue_list(self):
        with Stack(config=FAST) as s:
            maildrop_ready(s)
            block_mailbox(s, "demo")
            proc = sendmail(s, ["-f", "demo@tern.test", "demo@tern.test"], "Subject: stuck\n\nx\n")
            self.assertEqual(proc.returncode, 0, proc.stderr)
            s.wait_for(lambda: "status=deferred" in s.log_text(), 15, "a deferral")
            with tempfile.TemporaryDirectory() as d:
                mailq = os.path.join(d, "mailq")
                os.symlink(SENDMAIL, mailq)

                def same():
                    a = subprocess.run([mailq, "-c", s.conf_dir], capture_output=True, text=True, timeout=10)
                    b = s.mailctl("queue", "list", check=True).stdout
                    c = sendmail(s, ["-bp"], "").stdout.decode()
                    return a.returncode == 0 and a.stdout == b == c and a.stdout
                out = s.wait_for(same, 10, "identical listings")
            self.assertIn("demo@tern.test", out)
            self.assertRegex(out, r"-- \d+ Kbytes in 1 Request\.")
            unblock_mailbox(s, "demo")
            s.wait_for(lambda: "Mail queue is empty" in sendmail(s, ["-bp"], "").stdout.decode(), 15,
                       "empty queue")

    def test_q_flushes_deferred_mail(self):
        # A retry an hour away: only a flush can deliver within the test.
        config = dict(FAST, minimal_backoff_time="3600s", maximal_backoff_time="3600s")
        with Stack(config=config) as s:
            maildrop_ready(s)
            block_mailbox(s, "demo")
            self.assertEqual(sendmail(s, ["-f", "demo@tern.test", "demo@tern.test"], "Subject: q\n\nx\n")
                             .returncode, 0)
            s.wait_for(lambda: "status=deferred" in s.log_text(), 15, "a deferral")
            unblock_mailbox(s, "demo")
            proc = sendmail(s, ["-q"], "")
            self.assertEqual(proc.returncode, 0, proc.stderr)
            s.wait_for(lambda: s.maildir_new("tern.test", "demo"), 15, "delivery after -q")

    def test_interrupted_sendmail_leaves_nothing(self):
        with Stack(config=FAST) as s:
            maildrop_ready(s)
            p = subprocess.Popen([SENDMAIL, "-c", s.conf_dir, "-f", "demo@tern.test", "demo@tern.test"],
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                p.stdin.write(b"Subject: never complete\n\n" + b"partial body line\n" * 2000)
                p.stdin.flush()
                drop = os.path.join(s.queue_dir, "maildrop")
                s.wait_for(lambda: any(n.startswith("tmp.") for n in os.listdir(drop)), 10,
                           "the temporary maildrop file")
                p.send_signal(signal.SIGTERM)
                self.assertEqual(p.wait(timeout=10), EX_TEMPFAIL)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                p.stdin.close()
                p.stderr.close()
            self.assertEqual(maildrop_files(s), [])
            # A later message goes through: nothing half-written was picked up.
            self.assertEqual(sendmail(s, ["-f", "demo@tern.test", "demo@tern.test"], "Subject: ok\n\nx\n")
                             .returncode, 0)
            files = s.wait_for(lambda: s.maildir_new("tern.test", "demo"), 15, "delivery")
            self.assertEqual(len(files), 1)
            self.assertIn(b"Subject: ok", read(files[0]))
            self.assertNotIn("never complete", s.log_text())

    def test_damaged_maildrop_file_is_set_aside(self):
        with Stack(config=FAST, autostart=False) as s:
            make_maildrop(s)
            self.assertEqual(sendmail(s, ["-f", "demo@tern.test", "demo@tern.test"], "Subject: cut\n\nx\n")
                             .returncode, 0)
            [name] = maildrop_files(s)
            path = os.path.join(s.queue_dir, "maildrop", name)
            data = read(path)
            with open(path, "wb") as f:
                f.write(data[:-20])  # as if the machine crashed mid-write
            s.start()
            s.wait_for(lambda: os.path.exists(os.path.join(s.queue_dir, "corrupt", name)), 15,
                       "the damaged file moved aside")
            self.assertIn("Mail queue is empty", s.mailctl("queue", "list").stdout)
            self.assertEqual(s.maildir_new("tern.test", "demo"), [])

    def test_usage_errors_and_exit_codes(self):
        with Stack(config=FAST, autostart=False) as s:
            self.assertEqual(sendmail(s, [], "Subject: x\n\nx\n").returncode, EX_USAGE)
            self.assertEqual(sendmail(s, ["-t"], "Subject: no To\n\nx\n").returncode, EX_USAGE)
            self.assertEqual(sendmail(s, ["-Z"], "").returncode, EX_USAGE)
            self.assertEqual(sendmail(s, ["-bd"], "").returncode, EX_USAGE)
            self.assertEqual(maildrop_files(s), [])
            # Without a maildrop (not installed): a temporary failure.
            self.assertEqual(sendmail(s, ["demo@tern.test"], "Subject: x\n\nx\n").returncode, EX_TEMPFAIL)
            make_maildrop(s)
            # -oXXX options of sendmail 8 are accepted and ignored.
            ok = sendmail(s, ["-odi", "-oem", "-f", "demo@tern.test", "demo@tern.test"], "Subject: x\n\nx\n")
            self.assertEqual(ok.returncode, 0, ok.stderr)
            self.assertEqual(len(maildrop_files(s)), 1)
            # -q with tern down: qmgr cannot be reached.
            self.assertNotEqual(sendmail(s, ["-q"], "").returncode, 0)

    def test_newaliases_compiles_the_alias_file(self):
        with Stack(config=FAST, autostart=False) as s:
            aliases = os.path.join(s.conf_dir, "aliases")
            compiled = aliases + ".lmdb"
            if os.path.exists(compiled):
                os.unlink(compiled)
            with tempfile.TemporaryDirectory() as d:
                newaliases = os.path.join(d, "newaliases")
                os.symlink(SENDMAIL, newaliases)
                proc = subprocess.run([newaliases, "-c", s.conf_dir], capture_output=True, timeout=30)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertTrue(os.path.exists(compiled))
            os.utime(compiled, (1000000000, 1000000000))  # so that a rebuild shows
            with open(aliases, "a") as f:
                f.write("team: demo@tern.test\n")
            self.assertEqual(sendmail(s, ["-bi"], "").returncode, 0)
            self.assertNotEqual(os.stat(compiled).st_mtime, 1000000000)
            s.start()
            maildrop_ready(s)
            self.assertEqual(sendmail(s, ["-f", "demo@tern.test", "team@mail.tern.test"], "Subject: alias\n\nx\n")
                             .returncode, 0)
            files = s.wait_for(lambda: s.maildir_new("tern.test", "demo"), 15, "delivery via the alias")
            self.assertIn(b"Subject: alias", read(files[0]))


if __name__ == "__main__":
    unittest.main()
