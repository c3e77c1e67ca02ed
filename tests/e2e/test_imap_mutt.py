"""mutt, driven in tmux, reads a message over IMAPS from imapd: a message
delivered through smtpd shows in mutt's index, opens in its pager with the
body shown, and after mutt quits the server has it \\Seen.  The stack's
certificate is a leaf with a subjectAltName for 127.0.0.1, and mutt trusts
it through ssl_ca_certificates_file / certificate_file with host checking
on (no "accept once" prompt).  Every wait is on capture-pane content, with
a deadline.
"""
import imaplib
import os
import shutil
import smtplib
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, program_exists  # noqa: E402

NEEDED = ("master", "mailctl", "auth", "imapd", "smtpd", "qmgr", "local-delivery")
USER, PASSWORD = "demo@tern.test", "demo"
SUBJECT = "Quarterly figures for mutt"
BODY = "The quick brown fox reads this in mutt."


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "the daemons are not built")
@unittest.skipUnless(shutil.which("mutt") and shutil.which("tmux"), "mutt or tmux not installed")
class MuttTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(autostart=False)
        tls = os.path.join(cls.stack.conf_dir, "tls")
        # A leaf certificate (CA:FALSE) naming 127.0.0.1, so that mutt can verify it.
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=mail.tern.test",
                        "-addext", "subjectAltName=DNS:mail.tern.test,DNS:localhost,IP:127.0.0.1",
                        "-addext", "basicConstraints=critical,CA:FALSE",
                        "-keyout", os.path.join(tls, "key.pem"), "-out", os.path.join(tls, "cert.pem")],
                       check=True, capture_output=True, timeout=60)
        cls.stack.start()
        cls.home = os.path.join(cls.stack.base, "mutt-home")
        os.makedirs(cls.home)
        shutil.copy(os.path.join(tls, "cert.pem"), os.path.join(cls.home, "trusted.pem"))
        cls.muttrc = os.path.join(cls.home, "muttrc")
        with open(cls.muttrc, "w") as f:
            f.write(f'''set folder="imaps://127.0.0.1:{cls.stack.port("imaps")}/"
set spoolfile="+INBOX"
set imap_user="{USER}"
set imap_pass="{PASSWORD}"
set ssl_ca_certificates_file="{os.path.join(tls, "cert.pem")}"
set certificate_file="{os.path.join(cls.home, "trusted.pem")}"
set ssl_verify_host=yes
set ssl_force_tls=yes
set header_cache=""
set message_cachedir=""
set quit=yes
set move=no
set wait_key=no
set record=""
set mail_check=600
set imap_keepalive=900
''')
        cls.tmux_socket = os.path.join(cls.stack.base, "tmux.sock")

    @classmethod
    def tearDownClass(cls):
        subprocess.run(["tmux", "-S", cls.tmux_socket, "kill-server"], capture_output=True, timeout=10)
        cls.stack.__exit__(None, None, None)

    def tmux(self, *args):
        return subprocess.run(["tmux", "-S", self.tmux_socket, *args], capture_output=True, text=True, timeout=10,
                              env=dict(os.environ, HOME=self.home, TERM="xterm"))

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "mutt").stdout

    def wait_screen(self, text, timeout=30):
        deadline = time.monotonic() + timeout
        shown = ""
        while time.monotonic() < deadline:
            shown = self.screen()
            if text in shown:
                return shown
            time.sleep(0.1)
        self.fail(f"{text!r} not shown by mutt within {timeout} s; screen:\n{shown}\nlog:\n{self.stack.log_tail(20)}")

    def test_mutt_reads_a_delivered_message_over_imaps(self):
        with smtplib.SMTP("127.0.0.1", self.stack.port("smtp"), timeout=10) as s:
            s.sendmail("alice@example.org", [USER],
                       f"From: Alice Example <alice@example.org>\r\nTo: {USER}\r\nSubject: {SUBJECT}\r\n"
                       f"Message-ID: <mutt-1@example.org>\r\n\r\n{BODY}\r\n".encode())
        self.stack.wait_for(lambda: self.stack.maildir_new("tern.test", "demo"), timeout=20, what="delivery")
        r = self.tmux("new-session", "-d", "-s", "mutt", "-x", "160", "-y", "40", f"mutt -n -F {self.muttrc}")
        self.assertEqual(r.returncode, 0, r.stderr)
        index = self.wait_screen(SUBJECT)
        self.assertIn("=INBOX", index)
        self.assertNotIn("certificate", index.lower())
        self.tmux("send-keys", "-t", "mutt", "Enter")  # open the message in the pager
        pager = self.wait_screen(BODY)
        self.assertIn("Subject: " + SUBJECT, pager)
        self.assertIn("From: Alice Example <alice@example.org>", pager)
        self.tmux("send-keys", "-t", "mutt", "q")  # back to the index
        self.wait_screen("Msgs:1")
        self.tmux("send-keys", "-t", "mutt", "q")  # quit: mutt syncs the mailbox

        def mutt_gone():
            return self.tmux("has-session", "-t", "mutt").returncode != 0
        self.stack.wait_for(mutt_gone, timeout=20, what="mutt to exit")
        m = imaplib.IMAP4("127.0.0.1", self.stack.port("imap"), timeout=10)
        m.login(USER, PASSWORD)
        m.select("INBOX", readonly=True)
        typ, data = m.search(None, "SUBJECT", '"%s"' % SUBJECT, "SEEN")
        self.assertEqual(typ, "OK")
        self.assertEqual(len(data[0].split()), 1, data)
        m.logout()


if __name__ == "__main__":
    unittest.main()
