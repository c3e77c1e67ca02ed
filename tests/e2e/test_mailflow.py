"""End-to-end mail flow with real SMTP clients that tern did not write.

Each client of the matrix -- swaks, curl (smtp://, --mail-from, --mail-rcpt,
-T file) and Python's smtplib -- sends, against a fresh Stack, one message to
the virtual mailbox demo@tern.test (Maildir) and one to the current Unix user
at localhost (an mbox in the stack's mail_spool_directory, found through
mydestination).  What lands on disk is checked byte by byte: Return-Path,
Delivered-To, a Received header naming the queue id the client was told,
the body intact and dot-unstuffed, LF line endings, the Maildir name's
,S=<size>,W=<size with CRLF> matching the file, and the mbox `From ` line
with `>From ` quoting.

Further: SMTP pipelining (swaks --pipeline), an 8BITMIME body with SMTPUTF8
to a UTF-8 local part (a virtual user jörg@tern.test and an alias
müller@localhost), and the Postfix-format log lines that pflogsumm and
admins grep for (client=, from=<...>, size=, nrcpt=, to=<...>, relay=local,
status=sent / deferred / bounced).

A recipient is made to defer by putting a plain file where its Maildir
belongs (as in test_qmgr.py), and to bounce by a quota smaller than the
message (users file quota=).
"""
import os
import re
import shutil
import smtplib
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, current_user, program_exists  # noqa: E402

NEEDED = ("master", "smtpd", "qmgr", "local-delivery", "mailctl")
FAST = {"minimal_backoff_time": "1s", "maximal_backoff_time": "2s", "queue_run_delay": "5s"}
SENDER = "demo@tern.test"
VIRTUAL = "demo@tern.test"
# The extra users: a UTF-8 local part, and bob whose quota no message fits.
USERS = ("j\u00f6rg@tern.test:{SHA512-CRYPT}x\n"
         "bob@tern.test:{SHA512-CRYPT}x::::quota=100\n")
# No "root:" line: as root the current user must reach its own mbox.
ALIASES = "postmaster: demo@tern.test\nm\u00fcller: j\u00f6rg@tern.test\n"

# The body every client sends: a leading dot (dot-stuffing on the wire), a
# "From " line (mbox quoting), an empty line, trailing spaces, 8-bit free.
BODY_LINES = ["Hello from the mail-flow test.", ".a line that starts with a dot", "..two dots",
              "From the start of a line", ">From already quoted", "", "trailing spaces   ",
              "last line"]


def have(tool):
    return shutil.which(tool) is not None


def local_user():
    return current_user()


def local_address():
    return f"{local_user()}@localhost"


def message_text(subject, token):
    """The message as lines without line endings (the clients add CRLF)."""
    return [f"From: Demo <{SENDER}>", f"To: <{VIRTUAL}>", f"Subject: {subject} {token}",
            f"Message-ID: <{token}@client.test>", ""] + BODY_LINES + [f"token {token}"]


def new_stack(**kw):
    """A stack (not started) with the extra users and aliases written."""
    s = Stack(config=dict(FAST, **kw.pop("config", {})), autostart=False, **kw)
    with open(os.path.join(s.conf_dir, "users"), "a") as f:
        f.write(USERS)
    with open(os.path.join(s.conf_dir, "aliases"), "w") as f:
        f.write(ALIASES)
    return s


def read(path):
    with open(path, "rb") as f:
        return f.read()


def mbox_path(stack, user):
    return os.path.join(stack.mail_dir, "spool", user)


def maildir_path(stack, user):
    """The Maildir of a virtual user: mail_directory/<domain>/<user>/{tmp,new,cur}."""
    return os.path.join(stack.mail_dir, "tern.test", user)


def queued_as(text):
    m = re.search(r"250[ -][\d.]* ?.*queued as ([0-9A-Z]+)", text)
    return m.group(1) if m else None


def queue_empty(stack):
    return "Mail queue is empty" in stack.mailctl("queue", "list").stdout


# --- the clients ---------------------------------------------------------

def send_smtplib(stack, rcpt, lines, utf8=False):
    """Returns the queue id from the 250 reply after DATA."""
    data = ("\r\n".join(lines) + "\r\n").encode()
    with smtplib.SMTP("127.0.0.1", stack.port("smtp"), timeout=20) as c:
        c.ehlo("client.test")
        opts = ["BODY=8BITMIME", "SMTPUTF8"] if utf8 else []
        code, resp = c.mail(SENDER, opts)
        assert code == 250, (code, resp)
        code, resp = c.rcpt(rcpt)
        assert code == 250, (code, resp)
        code, resp = c.data(data)
        assert code == 250, (code, resp)
        return queued_as(f"250 {resp.decode()}")


def send_swaks(stack, rcpt, lines, pipeline=False):
    """swaks builds the DATA from --data with CRLF line ends; returns (queue id, transcript)."""
    headers_end = lines.index("")
    # swaks ends the data with CRLF . CRLF itself: a trailing newline here
    # would add an empty line to the body.
    data = "\n".join(lines)
    args = ["swaks", "--server", "127.0.0.1", "--port", str(stack.port("smtp")),
            "--helo", "swaks.client.test", "--from", SENDER, "--to", rcpt,
            "--data", data, "--timeout", "20"]
    if pipeline:
        args.append("--pipeline")
    assert headers_end > 0
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return queued_as(proc.stdout), proc.stdout


def send_curl(stack, rcpt, lines):
    """curl uploads the file as is (CRLF) and dot-stuffs; the queue id comes from -v."""
    with tempfile.NamedTemporaryFile("wb", suffix=".eml", delete=False) as f:
        f.write(("\r\n".join(lines) + "\r\n").encode())
        path = f.name
    try:
        proc = subprocess.run(["curl", "-sS", "-v", "--max-time", "30",
                               f"smtp://127.0.0.1:{stack.port('smtp')}/curl.client.test",
                               "--mail-from", SENDER, "--mail-rcpt", rcpt, "-T", path],
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    finally:
        os.unlink(path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return queued_as(proc.stderr)


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "needs " + ", ".join(NEEDED))
class MailFlowTest(unittest.TestCase):

    # --- what a delivered message must look like -------------------------

    def check_delivered(self, raw, qid, rcpt, lines):
        """raw: one message as stored (Maildir file, or one mbox entry without its From line)."""
        self.assertNotIn(b"\r", raw, "stored with CRLF")
        text = raw.decode()
        self.assertTrue(text.startswith(f"Return-Path: <{SENDER}>\n"), text[:200])
        head, sep, body = text.partition("\n\n")
        self.assertTrue(sep, "no end of header")
        self.assertIn(f"\nDelivered-To: {rcpt}\n", head)
        received = re.search(r"^Received: (.*(?:\n\s.*)*)", head, re.M)
        self.assertTrue(received, head)
        self.assertRegex(received.group(1), r"\bid " + re.escape(qid) + r"\b")
        self.assertIn("by mail.tern.test", received.group(1))
        for h in lines[:lines.index("")]:
            self.assertIn("\n" + h + "\n", head)
        expected = "\n".join(lines[lines.index("") + 1:]) + "\n"
        return body, expected

    def check_maildir(self, stack, user, qid, rcpt, lines):
        files = stack.wait_for(lambda: stack.maildir_new("tern.test", user), 20, f"delivery to {user}")
        self.assertEqual(len(files), 1, files)
        path = files[0]
        raw = read(path)
        m = re.search(r",S=(\d+),W=(\d+)", os.path.basename(path))
        self.assertTrue(m, path)
        self.assertEqual(int(m.group(1)), len(raw), "S= is not the file size")
        self.assertEqual(int(m.group(2)), len(raw) + raw.count(b"\n"), "W= is not the CRLF size")
        self.assertEqual(int(m.group(1)), os.stat(path).st_size)
        body, expected = self.check_delivered(raw, qid, rcpt, lines)
        self.assertEqual(body, expected)
        return raw

    def check_mbox(self, stack, qid, lines):
        path = mbox_path(stack, local_user())
        stack.wait_for(lambda: os.path.exists(path) and os.path.getsize(path) > 0, 20,
                       "delivery to the mbox " + path)
        stack.wait_for(lambda: queue_empty(stack), 10, "empty queue")
        raw = read(path)
        first, _, rest = raw.partition(b"\n")
        self.assertRegex(first.decode(), r"^From " + re.escape(SENDER) +
                         r" (Mon|Tue|Wed|Thu|Fri|Sat|Sun) \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$")
        self.assertTrue(rest.endswith(b"\n\n"), "an mbox message ends with an empty line")
        self.assertEqual(len(re.findall(rb"^From ", raw, re.M)), 1, raw)
        body, expected = self.check_delivered(rest[:-1], qid, local_address(), lines)
        # mboxrd: every line matching ^>*From gets one more '>'.
        quoted = re.sub(r"^(>*From )", r">\1", expected, flags=re.M)
        self.assertEqual(body, quoted)
        self.assertIn("\n>From the start of a line\n", body)
        self.assertIn("\n>>From already quoted\n", body)
        return raw

    def check_sent_log(self, stack, qid, rcpt, how):
        log = stack.log_text()
        self.assertRegex(log, re.escape(qid) + r": to=<" + re.escape(rcpt) +
                         r">, relay=local, delay=[\d.]+, delays=[\d./]+, dsn=2\.\d\.\d+, status=sent \(delivered to "
                         + how)

    # --- the client matrix -----------------------------------------------

    def run_client(self, send):
        with new_stack() as s:
            s.start()
            lines = message_text("maildir", "tok-maildir")
            qid = send(s, VIRTUAL, lines)
            self.assertTrue(qid, "no queue id in the 250 reply")
            self.check_maildir(s, "demo", qid, VIRTUAL, lines)
            s.wait_for(lambda: queue_empty(s), 10, "empty queue")
            self.check_sent_log(s, qid, VIRTUAL, "maildir")

            lines = message_text("mbox", "tok-mbox")
            qid = send(s, local_address(), lines)
            self.assertTrue(qid, "no queue id in the 250 reply")
            self.check_mbox(s, qid, lines)
            self.check_sent_log(s, qid, local_address(), "mailbox")
            # Nothing else arrived in the virtual mailbox.
            self.assertEqual(len(s.maildir_new("tern.test", "demo")), 1)

    @unittest.skipUnless(have("swaks"), "swaks is not installed")
    def test_swaks_delivers_to_maildir_and_mbox(self):
        self.run_client(lambda s, rcpt, lines: send_swaks(s, rcpt, lines)[0])

    @unittest.skipUnless(have("curl"), "curl is not installed")
    def test_curl_delivers_to_maildir_and_mbox(self):
        self.run_client(send_curl)

    def test_smtplib_delivers_to_maildir_and_mbox(self):
        self.run_client(send_smtplib)

    def test_two_messages_in_one_mbox_stay_apart(self):
        with new_stack() as s:
            s.start()
            a = message_text("first", "tok-a")
            b = message_text("second", "tok-b")
            send_smtplib(s, local_address(), a)
            send_smtplib(s, local_address(), b)
            path = mbox_path(s, local_user())

            def both():
                return os.path.exists(path) and read(path).count(b"\nSubject: ") == 2
            s.wait_for(both, 20, "two messages in the mbox")
            raw = read(path)
            self.assertEqual(len(re.findall(rb"^From " + re.escape(SENDER.encode()) + rb" ", raw, re.M)), 2)
            # The second From line follows an empty line (the first message's end).
            self.assertRegex(raw, rb"\n\nFrom " + re.escape(SENDER.encode()) + rb" ")

    # --- pipelining ------------------------------------------------------

    @unittest.skipUnless(have("swaks"), "swaks is not installed")
    def test_swaks_pipelining(self):
        with new_stack() as s:
            s.start()
            lines = message_text("pipelined", "tok-pipe")
            qid, transcript = send_swaks(s, VIRTUAL, lines, pipeline=True)
            self.assertTrue(qid, transcript)
            # swaks sent MAIL, RCPT and DATA before reading a reply: all
            # three commands come before the first reply to them.
            mail = transcript.index(" -> MAIL FROM:")
            self.assertLess(transcript.index(" -> DATA"), transcript.index("<-  250", mail), transcript)
            self.check_maildir(s, "demo", qid, VIRTUAL, lines)

    # --- 8BITMIME and SMTPUTF8 ----------------------------------------------

    def test_8bitmime_smtputf8_to_utf8_user_and_alias(self):
        with new_stack() as s:
            s.start()
            lines = [f"From: <{SENDER}>", "To: <j\u00f6rg@tern.test>", "Subject: Gr\u00fc\u00dfe",
                     "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit", "",
                     "K\u00e4se, \u00d6l und \u20ac -- UTF-8 in the body.", "\u65e5\u672c\u8a9e"]
            qid = send_smtplib(s, "j\u00f6rg@tern.test", lines, utf8=True)
            self.assertTrue(qid)
            raw = self.check_maildir(s, "j\u00f6rg", qid, "j\u00f6rg@tern.test", lines)
            self.assertIn("K\u00e4se, \u00d6l und \u20ac".encode(), raw)
            # RFC 6531 4.3: the Received "with" protocol of an SMTPUTF8 session.
            self.assertRegex(raw.decode(), r"\n\tby mail\.tern\.test \(tern\) with UTF8SMTPS? id " + qid)
            self.assertTrue(os.path.isdir(maildir_path(s, "j\u00f6rg")))
            s.wait_for(lambda: queue_empty(s), 10, "empty queue")
            self.check_sent_log(s, qid, "j\u00f6rg@tern.test", "maildir")

            # The alias müller@localhost leads to the same mailbox.
            qid2 = send_smtplib(s, "m\u00fcller@localhost", lines, utf8=True)
            s.wait_for(lambda: len(s.maildir_new("tern.test", "j\u00f6rg")) == 2, 20,
                       "delivery through the UTF-8 alias")
            raws = [read(p) for p in s.maildir_new("tern.test", "j\u00f6rg")]
            via_alias = [r for r in raws if ("id " + qid2).encode() in r]
            self.assertEqual(len(via_alias), 1)
            # Delivered-To names the alias or its target (loop detection works with either).
            self.assertRegex(via_alias[0].decode(),
                             r"\nDelivered-To: (m\u00fcller@localhost|j\u00f6rg@tern\.test)\n")
            self.assertIn("K\u00e4se, \u00d6l und \u20ac".encode(), via_alias[0])

    def test_utf8_address_without_smtputf8_is_refused(self):
        # RFC 6531 3.4: a non-ASCII address needs the SMTPUTF8 parameter.
        with new_stack() as s:
            s.start()
            with smtplib.SMTP("127.0.0.1", s.port("smtp"), timeout=20) as c:
                c.ehlo("client.test")
                self.assertEqual(c.mail(SENDER)[0], 250)
                # smtplib refuses to send UTF-8 without SMTPUTF8: write the bytes.
                c.send("RCPT TO:<j\u00f6rg@tern.test>\r\n".encode())
                code, _ = c.getreply()
                self.assertGreaterEqual(code, 500)
            self.assertTrue(queue_empty(s))

    # --- the log lines ---------------------------------------------------

    def test_postfix_format_log_lines(self):
        with new_stack() as s:
            s.start()
            # sent
            qid = send_smtplib(s, VIRTUAL, message_text("logged", "tok-log"))
            s.wait_for(lambda: s.maildir_new("tern.test", "demo"), 20, "delivery")
            s.wait_for(lambda: f"{qid}: removed" in s.log_text(), 10, "removal")
            log = s.log_text()
            self.assertRegex(log, r"tern/smtpd\[\d+\]: " + qid + r": client=localhost\[127\.0\.0\.1\]")
            self.assertRegex(log, r"tern/qmgr\[\d+\]: " + qid + r": from=<demo@tern\.test>, size=\d+, "
                             r"nrcpt=1 \(queue active\)")
            self.assertRegex(log, r"tern/local-delivery\[\d+\]: " + qid + r": to=<demo@tern\.test>, "
                             r"relay=local, delay=[\d.]+, delays=[\d./]+, dsn=2\.0\.0, status=sent \(")

            # deferred: a plain file where demo's Maildir belongs
            blocked = maildir_path(s, "demo")
            shutil.rmtree(blocked)
            with open(blocked, "w") as f:
                f.write("not a maildir\n")
            qid = send_smtplib(s, VIRTUAL, message_text("deferred", "tok-defer"))
            pattern = (re.escape(qid) + r": to=<demo@tern\.test>, relay=local, delay=[\d.]+, "
                       r"delays=[\d./]+, dsn=4\.\d+\.\d+, status=deferred \(.+\)")
            s.wait_for(lambda: re.search(pattern, s.log_text()), 20, "a deferred log line")
            os.unlink(blocked)
            s.wait_for(lambda: f"{qid}: removed" in s.log_text(), 20, "delivery after the deferral")

            # bounced: bob's quota is smaller than any message
            qid = send_smtplib(s, "bob@tern.test", message_text("bounced", "tok-bounce" + "x" * 200))
            pattern = (re.escape(qid) + r": to=<bob@tern\.test>, relay=local, delay=[\d.]+, "
                       r"delays=[\d./]+, dsn=5\.\d+\.\d+, status=bounced \(.+\)")
            s.wait_for(lambda: re.search(pattern, s.log_text()), 20, "a bounced log line")
            s.wait_for(lambda: re.search(re.escape(qid) + r": sender non-delivery notification: \w+",
                                         s.log_text()), 20, "the bounce notice")
            s.wait_for(lambda: queue_empty(s), 20, "empty queue")
            # smtpd's own disconnect summary, as Postfix writes it.
            self.assertRegex(s.log_text(), r"disconnect from localhost\[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=1 "
                             r"data=1 quit=1 commands=5")


if __name__ == "__main__":
    unittest.main()
