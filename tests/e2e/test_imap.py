"""End-to-end tests of imapd on a real stack with real clients: Python's
imaplib (plain on loopback, STARTTLS, implicit TLS), curl's imap:// and
imaps://, a raw socket for what imaplib will not send (bad syntax, huge
literals, overlong lines, pipelining after STARTTLS), APPEND then FETCH
byte-exact (CRLF on the wire, LF on disk, RFC822.SIZE exact), two sessions
on one mailbox seeing each other's changes, and IDLE reporting a message
delivered through smtpd.
"""
import imaplib
import os
import re
import shutil
import smtplib
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, program_exists, tls_context  # noqa: E402

NEEDED = ("master", "mailctl", "auth", "imapd")
USER, PASSWORD = "demo@tern.test", "demo"


class Raw:
    """A hand-driven IMAP connection."""

    def __init__(self, port, tls=False):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock = tls_context().wrap_socket(sock) if tls else sock
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self):
        deadline = time.monotonic() + 10
        while b"\r\n" not in self.buf:
            if time.monotonic() > deadline:
                raise TimeoutError("no line from imapd")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("imapd closed the connection; buffered: %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def until_tagged(self, tag):
        """Lines up to and including the tagged response of `tag`."""
        lines = []
        for _ in range(10000):
            l = self.line()
            lines.append(l)
            if l.startswith(tag + " "):
                return lines
        raise AssertionError("no tagged response")

    def closed(self):
        try:
            self.sock.settimeout(5)
            return self.sock.recv(1) == b""
        except (ConnectionError, OSError):
            return True

    def close(self):
        self.sock.close()


def login(port, tls=False):
    m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=tls_context(), timeout=10) if tls \
        else imaplib.IMAP4("127.0.0.1", port, timeout=10)
    m.login(USER, PASSWORD)
    return m


MESSAGE = (b"From: Alice Example <alice@example.org>\r\n"
           b"To: demo@tern.test\r\n"
           b"Subject: =?UTF-8?Q?gr=C3=BC=C3=9Fe?= from APPEND\r\n"
           b"Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n"
           b"Message-ID: <append-1@example.org>\r\n"
           b"MIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n"
           b"\r\n"
           b"first line\r\n"
           b"\r\n"
           b"last line, no final newline")


MIME = (b"From: b@example.org\r\nDate: Tue, 1 Jul 2003 11:00:00 +0000\r\nSubject: parts\r\n"
        b"Message-ID: <m1@x>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n"
        b"--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        b"--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"AAFiaW5hcnn/\r\n--XX--\r\n")


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "imapd and auth not built")
class ImapTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # imapd_timeout: the only timer of an IDLE session, far beyond any wait here.
        cls.stack = Stack(config={"imapd_append_limit": "100000", "imapd_timeout": "2h"})
        cls.stack.start()
        cls.port = cls.stack.port("imap")
        cls.tls_port = cls.stack.port("imaps")

    @classmethod
    def tearDownClass(cls):
        cls.stack.__exit__(None, None, None)

    def fresh_folder(self, m, name):
        m.create(name)
        typ, data = m.select(name)
        self.assertEqual(typ, "OK", data)
        return int(data[0])

    # --- login and state ---------------------------------------------------

    def test_greeting_capabilities_and_login(self):
        r = Raw(self.port)
        greeting = r.line()
        self.assertRegex(greeting, r"^\* OK \[CAPABILITY [^\]]*IMAP4rev2")
        self.assertIn("IMAP4rev1", greeting)
        self.assertIn("AUTH=PLAIN", greeting)       # loopback: plaintext allowed
        self.assertIn("STARTTLS", greeting)
        self.assertNotIn("LOGINDISABLED", greeting)
        r.send("a1 FETCH 1 FLAGS\r\n")
        self.assertRegex(r.until_tagged("a1")[-1], r"^a1 BAD .*log in")
        r.send("a2 LOGIN demo@tern.test wrong\r\n")
        self.assertRegex(r.until_tagged("a2")[-1], r"^a2 NO \[AUTHENTICATIONFAILED\]")
        r.send("a3 LOGIN demo@tern.test demo\r\n")
        lines = r.until_tagged("a3")
        self.assertRegex(lines[-1], r"^a3 OK \[CAPABILITY [^\]]*IDLE")
        r.send("a4 LOGIN demo@tern.test demo\r\n")
        self.assertRegex(r.until_tagged("a4")[-1], r"^a4 BAD .*before logging in")
        r.send("a5 FETCH 1 FLAGS\r\n")
        self.assertRegex(r.until_tagged("a5")[-1], r"^a5 BAD .*selected mailbox")
        r.send("a6 LOGOUT\r\n")
        lines = r.until_tagged("a6")
        self.assertTrue(lines[0].startswith("* BYE"))
        self.assertTrue(r.closed())

    def test_authenticate_plain_sasl_ir_and_challenge(self):
        r = Raw(self.port)
        r.line()
        # SASL-IR: base64("\0demo@tern.test\0demo")
        r.send("p1 AUTHENTICATE PLAIN AGRlbW9AdGVybi50ZXN0AGRlbW8=\r\n")
        self.assertRegex(r.until_tagged("p1")[-1], r"^p1 OK")
        r.close()
        r = Raw(self.port)
        r.line()
        r.send("p2 AUTHENTICATE PLAIN\r\n")
        self.assertEqual(r.line(), "+ ")
        r.send("*\r\n")
        self.assertRegex(r.until_tagged("p2")[-1], r"^p2 BAD .*cancelled")
        r.send("p3 AUTHENTICATE PLAIN\r\n")
        self.assertEqual(r.line(), "+ ")
        r.send("AGRlbW9AdGVybi50ZXN0AGRlbW8=\r\n")
        self.assertRegex(r.until_tagged("p3")[-1], r"^p3 OK")
        r.close()

    def test_starttls_discards_pipelined_plaintext(self):
        r = Raw(self.port)
        r.line()
        # The LOGIN pipelined after STARTTLS arrives in the clear: it must
        # never be executed inside the TLS session.
        r.send("t1 STARTTLS\r\nt2 LOGIN demo@tern.test demo\r\n")
        self.assertRegex(r.line(), r"^t1 OK")
        r.sock = tls_context().wrap_socket(r.sock)
        r.buf = b""
        r.send("t3 CAPABILITY\r\n")
        lines = r.until_tagged("t3")
        self.assertFalse(any(l.startswith("t2") for l in lines), lines)
        self.assertNotIn("STARTTLS", lines[0])
        r.send("t4 STARTTLS\r\n")
        self.assertRegex(r.until_tagged("t4")[-1], r"^t4 BAD .*already")
        r.close()
        m = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        m.starttls(ssl_context=tls_context())
        self.assertEqual(m.login(USER, PASSWORD)[0], "OK")
        m.logout()

    def test_implicit_tls(self):
        m = login(self.tls_port, tls=True)
        typ, data = m.list()
        self.assertEqual(typ, "OK")
        m.logout()

    # --- folders --------------------------------------------------------------

    def test_default_folders_and_list_extended(self):
        m = login(self.port)
        typ, data = m.list()
        self.assertEqual(typ, "OK")
        text = b"\n".join(data).decode()
        for name, use in (("Drafts", r"\Drafts"), ("Sent", r"\Sent"), ("Trash", r"\Trash"),
                          ("Junk", r"\Junk"), ("Archive", r"\Archive")):
            self.assertRegex(text, r"\(([^)]*\s)?" + re.escape(use) + r"[\s)][^\n]*\"/\" " + name, text)
        self.assertIn('"/" INBOX', text)
        typ, data = m._simple_command("LIST", '""', '""')
        self.assertEqual(m.untagged_responses["LIST"][-1], b'(\\Noselect) "/" ""')
        m.create("Projekt/Entw&APw-rfe")
        typ, data = m.list('""', "Projekt/*")
        self.assertIn(b'"/" Projekt/Entw&APw-rfe', b"\n".join(data))
        typ, data = m.list('""', "%")
        top = b"\n".join(data)
        self.assertIn(b"\\HasChildren", [l for l in data if l.endswith(b" Projekt")][0])
        self.assertNotIn(b"Entw", top)
        # LIST-STATUS
        typ, data = m._simple_command("LIST", '""', "INBOX", "RETURN", "(STATUS (MESSAGES UIDNEXT SIZE))")
        self.assertEqual(typ, "OK")
        self.assertRegex(b" ".join(m.untagged_responses.get("STATUS", [])).decode(), r"INBOX \(MESSAGES \d+ UIDNEXT \d+ SIZE \d+\)")
        with self.assertRaises(imaplib.IMAP4.error):  # an unknown item is refused, not echoed empty
            m._simple_command("LIST", '""', "INBOX", "RETURN", "(STATUS (MESSAGES BOGUS))")
        with self.assertRaises(imaplib.IMAP4.error):
            m._simple_command("LIST", '""', "INBOX", "RETURN", "(STATUS ())")
        # SPECIAL-USE selection: only the five special folders, with their attribute.
        m.untagged_responses.pop("LIST", None)
        typ, data = m._simple_command("LIST", "(SPECIAL-USE)", '""', "*")
        self.assertEqual(typ, "OK")
        special = m.untagged_responses.get("LIST", [])
        self.assertEqual(len(special), 5, special)
        self.assertTrue(all(re.search(rb"\\(Drafts|Sent|Trash|Junk|Archive)", l) for l in special), special)
        self.assertEqual(m.rename("Projekt/Entw&APw-rfe", "Projekt/Final")[0], "OK")
        self.assertEqual(m.delete("Projekt/Final")[0], "OK")
        typ, data = m.delete("Nope")
        self.assertEqual(typ, "NO")
        self.assertIn(b"NONEXISTENT", data[0])
        typ, data = m.create("INBOX")
        self.assertEqual(typ, "NO")
        m.logout()

    # --- messages ------------------------------------------------------------------

    def test_append_then_fetch_is_byte_exact(self):
        m = login(self.port)
        self.fresh_folder(m, "Exact")
        typ, data = m.append("Exact", r"(\Flagged)", imaplib.Time2Internaldate(1700000000), MESSAGE)
        self.assertEqual(typ, "OK", data)
        self.assertRegex(data[0].decode(), r"\[APPENDUID \d+ 1\]")
        m.noop()
        typ, data = m.fetch("1", "(BODY.PEEK[] RFC822.SIZE FLAGS INTERNALDATE)")
        self.assertEqual(typ, "OK")
        meta, body = data[0]
        meta += data[1]
        self.assertEqual(body, MESSAGE)
        self.assertIn(b"RFC822.SIZE %d" % len(MESSAGE), meta)
        self.assertIn(b"\\Flagged", meta)
        self.assertNotIn(b"\\Seen", meta)
        # On disk: LF line ends.
        root = os.path.join(self.stack.mail_dir, "tern.test", "demo")
        files = []
        for dirpath, _, names in os.walk(root):
            if ".Exact" in dirpath and os.path.basename(dirpath) in ("cur", "new"):
                files += [os.path.join(dirpath, n) for n in names]
        self.assertEqual(len(files), 1, files)
        with open(files[0], "rb") as f:
            self.assertEqual(f.read(), MESSAGE.replace(b"\r\n", b"\n"))
        # Partial fetch and header fields, then a fetch that sets \Seen.
        typ, data = m.fetch("1", "(BODY.PEEK[TEXT]<0.10> BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertEqual(data[0][1], b"first line")
        self.assertEqual(data[1][1], b"Subject: =?UTF-8?Q?gr=C3=BC=C3=9Fe?= from APPEND\r\n\r\n")
        typ, data = m.fetch("1", "(BODY[TEXT])")
        self.assertIn(b"\\Seen", b" ".join(x if isinstance(x, bytes) else x[0] for x in data))
        typ, data = m.fetch("1", "ENVELOPE")
        self.assertIn(b'"Tue, 1 Jul 2003 10:52:37 +0200"', data[0])
        self.assertIn(b'"<append-1@example.org>"', data[0])
        typ, data = m.uid("FETCH", "1:*", "(UID BODYSTRUCTURE)")
        self.assertIn(b'("TEXT" "PLAIN" ("CHARSET" "utf-8")', data[0].upper().replace(b'"UTF-8"', b'"utf-8"'))
        m.logout()

    def put_foreign_files(self, folder, flags):
        """Files another MDA left in a folder imapd has not indexed yet
        (sizes in their names, as Dovecot's and tern's deliveries name them);
        flags None: in new/."""
        d = os.path.join(self.demo_maildir(), "." + folder)
        self.assertFalse([n for n in os.listdir(d) if n.startswith("tern-index")])
        for i, f in enumerate(flags):
            body = b"Subject: foreign %d\n\nbody\n" % i
            base = "%d.M%dP1.other,S=%d,W=%d" % (1700000000 + i, i, len(body), len(body) + 3)
            path = os.path.join(d, "new", base) if f is None else os.path.join(d, "cur", base + ":2," + f)
            with open(path, "wb") as out:
                out.write(body)

    def test_first_select_is_answered_before_the_index_is_written(self):
        # A folder's first SELECT builds its index; the answer leaves before
        # the records are written.  Told figures, then what FETCH sees, on
        # each transport (plain, STARTTLS, implicit TLS), and a FETCH
        # pipelined behind the SELECT runs only after the build.
        flags = ["S", "S", "", "FS", None, "ST"]
        for n, transport in enumerate(("plain", "starttls", "tls", "plain, after another SELECT")):
            folder = "first%d" % n
            m = login(self.port)
            self.assertEqual(m.create(folder)[0], "OK")
            m.logout()
            self.put_foreign_files(folder, flags)
            if transport == "starttls":
                r = Raw(self.port)
                r.line()
                r.send("s1 STARTTLS\r\n")
                self.assertRegex(r.line(), r"^s1 OK")
                r.sock = tls_context().wrap_socket(r.sock)
            else:
                r = Raw(self.tls_port if transport == "tls" else self.port, tls=transport == "tls")
                r.line()
            r.send("l1 LOGIN demo@tern.test demo\r\n")
            self.assertRegex(r.until_tagged("l1")[-1], r"^l1 OK")
            if "after" in transport:
                r.send("s1 SELECT INBOX\r\n")
                self.assertRegex(r.until_tagged("s1")[-1], r"^s1 OK")
            r.send("s2 SELECT %s\r\ns3 UID FETCH 1:* (FLAGS)\r\n" % folder)
            answer = r.until_tagged("s2")
            if "after" in transport:
                self.assertEqual(answer[0], "* OK [CLOSED] previous mailbox closed")
            self.assertRegex(answer[-1], r"^s2 OK \[READ-WRITE\]", transport)
            self.assertIn("* 6 EXISTS", answer, transport)
            self.assertIn("* 6 RECENT", answer, transport)
            self.assertIn("* OK [UNSEEN 3] first unseen message", answer, transport)
            self.assertIn("* OK [UIDNEXT 7] predicted next UID", answer, transport)
            fetched = r.until_tagged("s3")
            self.assertRegex(fetched[-1], r"^s3 OK", transport)
            got = [l for l in fetched if l.startswith("* ") and " FETCH " in l]
            self.assertEqual(len(got), 6, fetched)
            self.assertIn("* 3 FETCH (UID 3 FLAGS (\\Recent))", fetched, transport)
            self.assertIn("* 4 FETCH (UID 4 FLAGS (\\Seen \\Flagged \\Recent))", fetched, transport)
            self.assertIn("* 6 FETCH (UID 6 FLAGS (\\Seen \\Deleted \\Recent))", fetched, transport)
            r.send("s4 LOGOUT\r\n")
            r.until_tagged("s4")
            r.close()
            # A second session sees the same folder, UIDs and all.
            m = login(self.port)
            typ, data = m.select(folder)
            self.assertEqual(data, [b"6"])
            self.assertEqual(m.untagged_responses.get("UIDNEXT"), [b"7"])
            m.logout()

    def test_select_after_a_restart_is_answered_from_the_index_file(self):
        # imapd restarted: a folder's index is cold, and SELECT is answered
        # from the index file's last commit before imapd opens it
        # (mailstore::EarlyAnswer).  The answer is the one before the
        # restart, a FETCH pipelined behind it sees those messages, and a
        # message appended after it is news at the next command.
        with Stack(config={"imapd_timeout": "2h"}) as s:
            port = s.port("imap")
            m = login(port)
            self.assertEqual(m.create("cold")[0], "OK")
            for flags in (r"(\Seen)", None, r"(\Flagged $Work)", r"(\Seen \Deleted)", None):
                self.assertEqual(m.append("cold", flags, None, MESSAGE)[0], "OK")
            m.logout()

            def select_lines(pipelined=""):
                r = Raw(port)
                r.line()
                r.send("l1 LOGIN demo@tern.test demo\r\n")
                self.assertRegex(r.until_tagged("l1")[-1], r"^l1 OK")
                # (Not behind the LOGIN: an answer goes early only when
                # nothing is waiting to be sent before it.)
                r.send("s1 SELECT cold\r\n" + pipelined)
                lines = r.until_tagged("s1")
                self.assertRegex(lines[-1], r"^s1 OK \[READ-WRITE\]")
                return r, lines
            r, first = select_lines()  # claims the \Recent ones
            r.close()
            r, before = select_lines()
            r.close()
            self.assertIn("* 5 EXISTS", before)
            self.assertIn("* 0 RECENT", before)
            self.assertIn("* OK [UNSEEN 2] first unseen message", before)
            self.assertTrue(any(l.startswith("* FLAGS (") and "$Work" in l for l in before), before)
            s.stop()
            s.start()
            r, after = select_lines("f1 UID FETCH 1:* (FLAGS)\r\n")
            self.assertEqual(after, before)
            fetched = r.until_tagged("f1")
            self.assertRegex(fetched[-1], r"^f1 OK")
            self.assertIn("* 3 FETCH (UID 3 FLAGS (\\Flagged $Work))", fetched)
            self.assertIn("* 4 FETCH (UID 4 FLAGS (\\Seen \\Deleted))", fetched)
            self.assertEqual(len([l for l in fetched if " FETCH (" in l]), 5, fetched)
            other = login(port)
            self.assertEqual(other.append("cold", None, None, MESSAGE)[0], "OK")
            other.logout()
            r.send("n1 NOOP\r\n")
            noop = r.until_tagged("n1")
            self.assertIn("* 6 EXISTS", noop)
            self.assertRegex(noop[-1], r"^n1 OK")
            r.send("z LOGOUT\r\n")
            r.until_tagged("z")
            r.close()

    def test_store_search_copy_move_expunge(self):
        m = login(self.port)
        self.fresh_folder(m, "Work")
        for i in range(5):
            msg = MESSAGE.replace(b"from APPEND", b"number %d" % i)
            self.assertEqual(m.append("Work", None, None, msg)[0], "OK")
        m.noop()
        typ, data = m.store("2:3", "+FLAGS", r"(\Deleted)")
        self.assertEqual(typ, "OK")
        self.assertEqual(len(data), 2)
        typ, data = m.search(None, "DELETED")
        self.assertEqual(data[0].split(), [b"2", b"3"])
        typ, data = m.search("UTF-8", "SUBJECT", '"number 4"')
        self.assertEqual(data[0].split(), [b"5"])
        typ, data = m.search(None, "SUBJECT", "grüße".encode("utf-8")) if False else m.uid("SEARCH", "CHARSET", "UTF-8", "NOT", "DELETED")
        self.assertEqual(data[0].split(), [b"1", b"4", b"5"])
        typ, data = m._simple_command("SEARCH", "RETURN", "(MIN MAX COUNT)", "UNDELETED")
        self.assertEqual(typ, "OK")
        self.assertIn(b"MIN 1 MAX 5 COUNT 3", m.untagged_responses["ESEARCH"][-1])
        typ, data = m.copy("1", "Trash")
        self.assertRegex(data[0].decode(), r"\[COPYUID \d+ 1 \d+\]")
        typ, data = m._simple_command("MOVE", "4", "Archive")
        self.assertEqual(typ, "OK")
        typ, data = m.expunge()
        self.assertEqual(typ, "OK")
        # 2 and 3 went (EXPUNGE 3, then 2), 4 was moved before: 2 remain.
        typ, data = m.search(None, "ALL")
        self.assertEqual(data[0].split(), [b"1", b"2"])
        typ, data = m.sort("(REVERSE SUBJECT)", "UTF-8", "ALL")
        self.assertEqual(data[0].split(), [b"2", b"1"])
        m.close()
        m.logout()

    def test_two_sessions_see_each_other(self):
        a, b = login(self.port), login(self.port)
        self.fresh_folder(a, "Shared")
        for i in range(3):
            a.append("Shared", None, None, MESSAGE)
        a.noop()
        b.select("Shared")
        a.store("1", "+FLAGS", r"(\Answered)")
        b.noop()
        fetches = b"\n".join(x for x in b.untagged_responses.get("FETCH", []) if isinstance(x, bytes))
        self.assertIn(b"\\Answered", fetches)
        a.store("2", "+FLAGS", r"(\Deleted)")
        a.expunge()
        typ, data = b.noop()
        self.assertIn(b"2", b.untagged_responses.get("EXPUNGE", [b""]))
        b.append("Shared", None, None, MESSAGE)
        a.noop()
        self.assertIn(b"3", a.untagged_responses.get("EXISTS", []))
        a.logout()
        b.logout()

    @unittest.skipUnless(program_exists("smtpd") and program_exists("qmgr") and program_exists("local-delivery"),
                         "needs the mail flow")
    def demo_maildir(self):
        for d in (os.path.join(self.stack.mail_dir, "tern.test", "demo", "Maildir"),
                  os.path.join(self.stack.mail_dir, "tern.test", "demo")):
            if os.path.isdir(os.path.join(d, "cur")):
                return d
        raise AssertionError("no Maildir for demo@tern.test")

    def test_idle_reports_a_delivery_through_smtpd(self):
        # imapd has no periodic rescan: while a session IDLEs, the only timer
        # it has is the autologout (imapd_timeout, 2 hours in this stack),
        # and this client sends nothing.  So an EXISTS that arrives at all
        # within Raw.line's 10 s can only come from the store's change notice
        # (inotify on new/ and cur/).  The latency from the file appearing
        # to the EXISTS is printed (docs/imap.md records it), not asserted
        # against a tight bound.
        r = Raw(self.port)
        r.line()
        r.send("i1 LOGIN demo@tern.test demo\r\ni2 SELECT INBOX\r\n")
        r.until_tagged("i1")
        lines = r.until_tagged("i2")
        exists = int([l for l in lines if l.endswith(" EXISTS")][0].split()[1])
        r.send("i3 IDLE\r\n")
        self.assertEqual(r.line(), "+ idling")
        maildir = self.demo_maildir()

        def names():
            return set(os.listdir(os.path.join(maildir, "new"))) | \
                {n.split(":")[0] for n in os.listdir(os.path.join(maildir, "cur"))}
        known = names()
        appeared = []

        def watch():  # notes when the delivered file shows up (1 ms polls, at most 20 s)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if names() - known:
                    appeared.append(time.monotonic())
                    return
                time.sleep(0.001)
        watcher = threading.Thread(target=watch)
        watcher.start()
        with smtplib.SMTP("127.0.0.1", self.stack.port("smtp"), timeout=10) as s:
            s.sendmail("alice@example.org", [USER],
                       b"From: alice@example.org\r\nTo: demo@tern.test\r\nSubject: idle test\r\n\r\nhello\r\n")
        line = r.line()  # Raw.line waits at most 10 s
        seen = time.monotonic()
        watcher.join()
        self.assertEqual(line, "* %d EXISTS" % (exists + 1))
        self.assertTrue(appeared, "the delivered file was never seen")
        print("\nIDLE: EXISTS %.1f ms after the file appeared" % ((seen - appeared[0]) * 1000), file=sys.stderr)
        r.send("DONE\r\n")
        self.assertRegex(r.until_tagged("i3")[-1], r"^i3 OK")
        r.send("i4 FETCH %d (ENVELOPE)\r\n" % (exists + 1))
        lines = r.until_tagged("i4")
        self.assertIn('"idle test"', lines[0])
        r.close()

    def test_curl_imap_and_imaps(self):
        if not shutil.which("curl"):
            self.skipTest("curl not installed")
        m = login(self.port)
        m.append("INBOX", None, None, MESSAGE)
        m.logout()
        out = subprocess.run(["curl", "-sS", "-u", f"{USER}:{PASSWORD}",
                              f"imap://127.0.0.1:{self.port}/INBOX", "-X", "FETCH 1:* (FLAGS)"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("FETCH (FLAGS", out.stdout)
        out = subprocess.run(["curl", "-sS", "-k", "-u", f"{USER}:{PASSWORD}",
                              f"imaps://127.0.0.1:{self.tls_port}/INBOX;UID=1"],
                             capture_output=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(b"Subject:", out.stdout)

    def raw_login(self, tag="l"):
        r = Raw(self.port)
        r.line()
        r.send(f"{tag} LOGIN demo@tern.test demo\r\n")
        self.assertRegex(r.until_tagged(tag)[-1], f"^{tag} OK")
        return r

    def test_enable_rev2_condstore_qresync(self):
        m = login(self.port)
        self.fresh_folder(m, "Sync")
        for i in range(4):
            m.append("Sync", None, None, MESSAGE.replace(b"append-1", b"sync-%d" % i))
        m.logout()
        r = self.raw_login()
        r.send("e1 ENABLE IMAP4rev2 QRESYNC\r\n")
        lines = r.until_tagged("e1")
        self.assertEqual(lines[0], "* ENABLED IMAP4rev2 QRESYNC")
        r.send("e2 SELECT Sync\r\n")
        lines = r.until_tagged("e2")
        uidvalidity = int(re.search(r"UIDVALIDITY (\d+)", "\n".join(lines)).group(1))
        modseq = int(re.search(r"HIGHESTMODSEQ (\d+)", "\n".join(lines)).group(1))
        self.assertFalse(any("RECENT" in l for l in lines), lines)  # IMAP4rev2
        # STORE UNCHANGEDSINCE: message 1 changes, then a stale one is refused.
        r.send(f"e3 STORE 1 (UNCHANGEDSINCE {modseq}) +FLAGS (\\Flagged)\r\n")
        lines = r.until_tagged("e3")
        self.assertRegex(lines[0], r"^\* 1 FETCH \(FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)")
        r.send("e4 STORE 1 (UNCHANGEDSINCE 1) -FLAGS (\\Flagged)\r\n")
        self.assertRegex(r.until_tagged("e4")[-1], r"^e4 OK \[MODIFIED 1\]")
        r.send(f"e5 FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq})\r\n")
        lines = r.until_tagged("e5")
        self.assertEqual(len(lines), 2, lines)
        self.assertIn("MODSEQ", lines[0])
        # IMAP4rev2 SEARCH answers with ESEARCH; SEARCHRES saves a result.
        r.send("e6 SEARCH FLAGGED\r\n")
        lines = r.until_tagged("e6")
        self.assertEqual(lines[0], '* ESEARCH (TAG "e6") ALL 1')
        r.send("e7 UID SEARCH RETURN (SAVE) NOT FLAGGED\r\ne8 UID FETCH $ (FLAGS)\r\n")
        self.assertEqual(r.until_tagged("e7"), ["e7 OK UID SEARCH completed"])
        self.assertEqual(len(r.until_tagged("e8")), 4)
        # UID EXPUNGE of one of two deleted messages, reported as VANISHED.
        r.send("e9 STORE 2:3 +FLAGS.SILENT (\\Deleted)\r\n")
        r.until_tagged("e9")
        r.send("e10 UID FETCH 3 UID\r\n")
        uid3 = int(re.search(r"UID (\d+)", r.until_tagged("e10")[0]).group(1))
        r.send(f"e11 UID EXPUNGE {uid3}\r\n")
        lines = r.until_tagged("e11")
        self.assertEqual(lines[0], f"* VANISHED {uid3}")
        r.send("e12 UNSELECT\r\n")
        r.until_tagged("e12")
        # QRESYNC select: what vanished since the first modseq.
        r.send(f"e13 SELECT Sync (QRESYNC ({uidvalidity} {modseq}))\r\n")
        text = "\n".join(r.until_tagged("e13"))
        self.assertIn(f"* VANISHED (EARLIER) {uid3}", text)
        self.assertRegex(text, r"\* 1 FETCH \(UID \d+ FLAGS \(\\Flagged\) MODSEQ")
        r.close()

    def test_binary_thread_id_namespace(self):
        m = login(self.port)
        self.fresh_folder(m, "Threads")
        base = (b"From: a@example.org\r\nDate: Tue, 1 Jul 2003 10:%02d:00 +0000\r\nSubject: %s\r\n"
                b"Message-ID: <%s>\r\n%s\r\nbody\r\n")
        m.append("Threads", None, None, base % (1, b"topic", b"t1@x", b""))
        m.append("Threads", None, None, base % (2, b"Re: topic", b"t2@x", b"References: <t1@x>\r\n"))
        m.append("Threads", None, None, base % (3, b"other", b"t3@x", b""))
        m.append("Threads", None, None, MIME)
        m.noop()
        typ, data = m._simple_command("THREAD", "REFERENCES", "UTF-8", "ALL")
        self.assertEqual(typ, "OK")
        self.assertEqual(m.untagged_responses["THREAD"][-1], b"(1 2)(3)(4)")
        typ, data = m._simple_command("THREAD", "ORDEREDSUBJECT", "UTF-8", "ALL")
        self.assertEqual(m.untagged_responses["THREAD"][-1], b"(1 2)(3)(4)")
        typ, data = m.fetch("4", "(BINARY.PEEK[2] BINARY.SIZE[2] BODY.PEEK[2.MIME])")
        self.assertEqual(typ, "OK", data)
        self.assertEqual(data[0][1], b"\x00\x01binary\xff")
        flat = b" ".join(x if isinstance(x, bytes) else x[0] + x[1] for x in data)
        self.assertIn(b"BINARY.SIZE[2] 9", flat)
        self.assertIn(b"Content-Transfer-Encoding: base64", flat)
        typ, data = m.fetch("4", "(BODYSTRUCTURE)")
        self.assertIn(b'"MIXED"', data[0].upper())
        typ, data = m.xatom("ID", '("name" "test-client")')
        self.assertEqual(m.untagged_responses["ID"][-1], b'("name" "tern" "vendor" "tern")')
        typ, data = m.namespace()
        self.assertEqual(data[0], b'(("" "/")) NIL NIL')
        m.logout()

    # --- bad input ----------------------------------------------------------------

    def test_bad_input_answers_and_the_connection_survives(self):
        r = Raw(self.port)
        r.line()
        r.send("b1 LOGIN demo@tern.test demo\r\n")
        r.until_tagged("b1")
        r.send("b2 SELECT INBOX\r\n")
        r.until_tagged("b2")
        cases = [
            ("b3 FETCH 1 (FLAGS\r\n", r"^b3 BAD .*\)"),
            ("b4 FETCH 0:x FLAGS\r\n", r"^b4 BAD .*sequence set"),
            ("b5 FETCH 1 BOGUS\r\n", r"^b5 BAD .*FETCH attribute"),
            ("b6 SEARCH OR SEEN\r\n", r"^b6 BAD "),
            ("b7 FROBNICATE\r\n", r"^b7 BAD .*unknown command"),
            ("b8 STORE 1 +FLAGS (\\Bogus)\r\n", r"^b8 BAD .*system flag"),
            ("b9 FETCH 4000000000 FLAGS\r\n", r"^b9 BAD .*beyond"),
            ("b10 SEARCH CHARSET KOI8-R ALL\r\n", r"^b10 NO \[BADCHARSET"),
            ("b11 LIST \"\" \"\"\r\n", r"^b11 OK"),
        ]
        for cmd, expected in cases:
            r.send(cmd)
            self.assertRegex(r.until_tagged(cmd.split()[0])[-1], expected, cmd)
        # A literal far above the limits: refused before "+" is sent.
        r.send("b12 LOGIN {1099511627776}\r\n")
        self.assertRegex(r.line(), r"^b12 BAD \[TOOBIG\]")
        r.send("b13 APPEND INBOX {200000}\r\n")
        self.assertRegex(r.line(), r"^b13 NO \[TOOBIG\].*APPENDLIMIT")
        # An overlong command line.
        r.send("b14 SEARCH " + "X" * 20000 + "\r\n")
        self.assertRegex(r.line(), r"^b14 BAD \[TOOBIG\] command line too long")
        r.send("b15 NOOP\r\n")
        self.assertRegex(r.until_tagged("b15")[-1], r"^b15 OK")
        # A non-synchronizing literal above LITERAL-'s 4096 bytes cannot be
        # skipped: BYE and close.
        r.send("b16 APPEND INBOX {5000+}\r\n")
        self.assertRegex(r.line(), r"^\* BYE .*4096")
        self.assertTrue(r.closed())


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "imapd and auth not built")
@unittest.skipUnless(shutil.which("mbsync"), "mbsync (isync) not installed")
class MbsyncTest(unittest.TestCase):
    """mbsync (isync) synchronising INBOX both ways: server to a local
    Maildir, then a new local message and a local flag change back."""

    def test_sync_both_ways(self):
        with Stack() as st:
            port = st.port("imap")
            m = login(port)
            for i in range(2):
                m.append("INBOX", None, None, MESSAGE.replace(b"append-1", b"mbsync-%d" % i))
            m.logout()
            local = os.path.join(st.base, "mbsync-local")
            os.makedirs(local)
            cfg = os.path.join(st.base, "mbsyncrc")
            with open(cfg, "w") as f:
                f.write(f"""IMAPAccount tern
Host 127.0.0.1
Port {port}
User {USER}
Pass {PASSWORD}
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account tern

MaildirStore near
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :near:
Patterns INBOX
Create Both
Expunge Both
SyncState *
Sync All
""")

            def mbsync():
                p = subprocess.run(["mbsync", "-c", cfg, "-a"], capture_output=True, text=True, timeout=60)
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

            def local_files():
                out = []
                for sub in ("new", "cur"):
                    d = os.path.join(local, "INBOX", sub)
                    out += [os.path.join(d, n) for n in sorted(os.listdir(d))] if os.path.isdir(d) else []
                return out

            mbsync()
            files = local_files()
            self.assertEqual(len(files), 2, files)
            with open(files[0], "rb") as f:
                self.assertIn(b"Subject: =?UTF-8?Q?gr=C3=BC=C3=9Fe?= from APPEND", f.read())
            # Mark one read locally, add one locally, sync back.
            seen = files[0]
            base = os.path.basename(seen).split(":2,")[0]
            os.rename(seen, os.path.join(local, "INBOX", "cur", base + ":2,S"))
            with open(os.path.join(local, "INBOX", "new", "1700000000.local1.host"), "wb") as f:
                f.write(b"From: near@example.org\nSubject: written locally\n\nhi\n")
            mbsync()
            m = login(port)
            m.select("INBOX")
            typ, data = m.search(None, "SUBJECT", '"written locally"')
            self.assertEqual(len(data[0].split()), 1)
            typ, data = m.search(None, "SEEN")
            self.assertEqual(len(data[0].split()), 1)
            typ, data = m.search(None, "ALL")
            self.assertEqual(len(data[0].split()), 3)
            m.logout()


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "imapd and auth not built")
class ImapPlaintextTest(unittest.TestCase):
    """imapd_plaintext_auth = never: the loopback client is treated like a
    remote one, so the LOGINDISABLED path is exercised on 127.0.0.1."""

    def test_no_password_before_tls(self):
        with Stack(config={"imapd_plaintext_auth": "never"}) as st:
            port = st.port("imap")
            r = Raw(port)
            greeting = r.line()
            self.assertIn("LOGINDISABLED", greeting)
            self.assertIn("STARTTLS", greeting)
            self.assertNotIn("AUTH=", greeting)
            r.send("n1 LOGIN demo@tern.test demo\r\n")
            self.assertRegex(r.until_tagged("n1")[-1], r"^n1 NO \[PRIVACYREQUIRED\]")
            r.send("n2 AUTHENTICATE PLAIN AGRlbW9AdGVybi50ZXN0AGRlbW8=\r\n")
            self.assertRegex(r.until_tagged("n2")[-1], r"^n2 NO \[PRIVACYREQUIRED\]")
            r.send("n3 STARTTLS\r\n")
            self.assertRegex(r.line(), r"^n3 OK")
            r.sock = tls_context().wrap_socket(r.sock)
            r.send("n4 CAPABILITY\r\n")
            caps = r.until_tagged("n4")[0]
            self.assertIn("AUTH=PLAIN", caps)
            self.assertNotIn("LOGINDISABLED", caps)
            r.send("n5 LOGIN demo@tern.test demo\r\n")
            self.assertRegex(r.until_tagged("n5")[-1], r"^n5 OK")
            r.close()
            # Implicit TLS is TLS from the first byte.
            m = login(st.port("imaps"), tls=True)
            m.logout()


if __name__ == "__main__":
    unittest.main()
