"""pop3d end to end, with real POP3 clients: Python's poplib, curl
(pop3://, pop3s://, STLS with --ssl-reqd) and fetchmail (over STLS).

Mail reaches demo@tern.test through smtpd and local delivery, or -- for
the large-message and expunge cases -- as files put straight into the
Maildir, the way another tool would (the store reconciles).  Checked: the
greeting and CAPA in each state; USER/PASS and AUTH PLAIN (with and without
an initial response); STLS, with plaintext pipelined behind it discarded;
implicit TLS; no login before TLS from a client outside
pop3d_secure_networks (127.0.0.2, with the key set to 127.0.0.1/32);
LIST/STAT sizes equal to the CRLF size on disk and to RETR's octet count;
RETR byte-exact (CRLF, dot-stuffed) and TOP; UIDL stable across sessions;
DELE + QUIT removes, DELE + dropped connection does not; a delivery during
a session does not shift its numbering; a message removed behind the
session's back answers -ERR and the session goes on; [IN-USE] for a second
session, also when an IMAP client expunged it (with imapd built); UIDL
equal to IMAP's UIDVALIDITY and UIDs (same); [AUTH] for a bad password,
and the session closed after three;
overlong lines, unknown commands and bad
arguments; the idle timeout; a 24 MB message streamed without a copy of it
in pop3d's heap.
"""
import os
import poplib
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import MAILCTL, Stack, program_exists  # noqa: E402

NEEDED = ("master", "smtpd", "qmgr", "local-delivery", "auth", "pop3d", "mailctl")
USER, PASSWORD = "demo@tern.test", "demo"


def plain_ir(user=USER, password=PASSWORD):
    import base64
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


class Conn:
    """A raw POP3 connection: exact bytes, for what poplib hides."""

    def __init__(self, port, source=None, tls=False, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        if tls:
            self.sock = client_context().wrap_socket(self.sock, server_hostname="mail.tern.test")
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; have " + repr(self.buf[:200]))
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("latin-1")

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.line()

    def multiline(self):
        """The raw body of a multi-line answer, up to (not including) the ".\\r\\n"."""
        while True:
            if self.buf.startswith(b".\r\n"):
                end = 0
                break
            end = self.buf.find(b"\r\n.\r\n")
            if end >= 0:
                end += 2
                break
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("connection closed inside a multi-line answer")
            self.buf += chunk
        body, self.buf = self.buf[:end], self.buf[end + 3:]
        return body

    def login(self):
        assert self.cmd("USER " + USER).startswith("+OK")
        answer = self.cmd("PASS " + PASSWORD)
        assert answer.startswith("+OK"), answer
        return answer

    def starttls(self):
        self.sock = client_context().wrap_socket(self.sock, server_hostname="mail.tern.test")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


_stack_cert = None


def client_context(hostname_check=True):
    """Trusts the stack's certificate (CN mail.tern.test); poplib checks the
    name it connected to (127.0.0.1), so its contexts verify the chain only."""
    ctx = ssl.create_default_context(cafile=_stack_cert)
    ctx.check_hostname = hostname_check
    return ctx


def stored_crlf(data):
    return data.replace(b"\n", b"\r\n")


def stuffed(data):
    """RFC 1939 3 byte-stuffing of CRLF text."""
    lines = data.split(b"\r\n")
    return b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines)


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "needs the built stack with pop3d")
class Pop3Test(unittest.TestCase):
    stack = None

    @classmethod
    def setUpClass(cls):
        # A third listener with a short idle timeout for test_idle_timeout.
        cls.stack = Stack(extra_services=["pop3short inet 127.0.0.1:{port} - 1 pop3d -o pop3d_timeout=3s"],
                          autostart=False)
        # 127.0.0.2 counts as remote for the plaintext-login tests.
        for line in list(cls.stack.services):
            if line.split()[0] in ("pop3", "pop3s"):
                cls.stack.set_service(line.split()[0], line + " -o pop3d_secure_networks=127.0.0.1/32")
        # IMAP beside POP3 for the UIDL/UID comparison, when imapd is built
        # (the harness adds it itself once it knows imapd).
        if program_exists("imapd") and "imap" not in cls.stack.service_names():
            cls.stack.set_service("imap", "imap inet 127.0.0.1:{port} - 1 imapd")
        cls.stack.__enter__()
        try:
            cls.stack.start()
        except BaseException:
            cls.stack.__exit__(*sys.exc_info())
            raise
        global _stack_cert
        _stack_cert = os.path.join(cls.stack.conf_dir, "tls", "cert.pem")

    @classmethod
    def tearDownClass(cls):
        cls.stack.__exit__(None, None, None)

    def setUp(self):
        self.conns = []
        self.empty_inbox()

    def tearDown(self):
        for c in self.conns:
            c.close()

    # --- helpers ---------------------------------------------------------

    def conn(self, port=None, **kw):
        c = Conn(port or self.stack.port("pop3"), **kw)
        self.conns.append(c)
        greeting = c.line()
        self.assertTrue(greeting.startswith("+OK "), greeting)
        return c

    def maildir(self):
        return os.path.join(self.stack.mail_dir, "tern.test", "demo")

    def files(self):
        out = []
        for sub in ("new", "cur"):
            d = os.path.join(self.maildir(), sub)
            if os.path.isdir(d):
                out += [os.path.join(d, n) for n in os.listdir(d)]
        return sorted(out)

    def empty_inbox(self):
        """Removes every message through POP3 itself (DELE all + QUIT)."""
        def attempt():
            c = Conn(self.stack.port("pop3"))
            try:
                c.line()
                c.cmd("USER " + USER)
                # [IN-USE] while the previous test's session is still closing.
                if not c.cmd("PASS " + PASSWORD).startswith("+OK"):
                    return False
                count = int(c.cmd("STAT").split()[1])
                for n in range(1, count + 1):
                    c.cmd(f"DELE {n}")
                c.cmd("QUIT")
                # The close shows that the session and its lock are gone.
                c.sock.recv(10)
            finally:
                c.close()
            return not self.files()
        self.stack.wait_for(attempt, 15, "empty Maildir, no POP3 session left")

    def send_mail(self, token, extra=""):
        body = (f"From: <sender@example.org>\r\nTo: <{USER}>\r\nSubject: pop3 test {token}\r\n"
                f"Message-ID: <{token}@example.org>\r\n\r\nfirst line\r\n.leading dot\r\n..two dots\r\n"
                f"{extra}token {token}\r\n")
        before = len(self.files())
        with smtplib.SMTP("127.0.0.1", self.stack.port("smtp"), timeout=10) as s:
            s.sendmail("sender@example.org", [USER], body)
        self.stack.wait_for(lambda: len(self.files()) > before, 15, "delivery of " + token)
        with open(self.file_with(token), "rb") as f:
            return f.read()

    def file_with(self, token):
        """The stored file now (the store moves files from new/ to cur/)."""
        for p in self.files():
            try:
                with open(p, "rb") as f:
                    if token.encode() in f.read():
                        return p
            except FileNotFoundError:
                continue
        self.fail("no stored message with " + token)

    def drop_file(self, data):
        """Puts a message into Maildir/new as another tool would."""
        new = os.path.join(self.maildir(), "new")
        os.makedirs(new, exist_ok=True)
        name = f"{int(time.time())}.P{os.getpid()}Q{uuid.uuid4().hex[:8]}.test"
        tmp = os.path.join(self.maildir(), "tmp", name)
        os.makedirs(os.path.dirname(tmp), exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(new, name))
        return os.path.join(new, name)

    def poplib_login(self, cls=poplib.POP3, port=None):
        p = cls("127.0.0.1", port or self.stack.port("pop3"), timeout=10)
        p.user(USER)
        p.pass_(PASSWORD)
        return p

    # --- the tests -------------------------------------------------------

    def test_poplib_plain_retr_list_stat_uidl(self):
        tok = uuid.uuid4().hex
        stored = self.send_mail(tok)
        expected = stored_crlf(stored)
        p = self.poplib_login()
        try:
            count, size = p.stat()
            self.assertEqual((count, size), (1, len(expected)))
            self.assertEqual(p.list()[1], [f"1 {len(expected)}".encode()])
            # The Maildir name carries the CRLF size too (W=).
            self.assertIn(f",W={len(expected)}", os.path.basename(self.file_with(tok)))
            resp, lines, octets = p.retr(1)
            self.assertEqual(resp, f"+OK {len(expected)} octets".encode())
            self.assertEqual(b"\r\n".join(lines) + b"\r\n", expected)
            uid1 = p.uidl(1).split()[2]
            self.assertRegex(uid1.decode(), r"^[0-9A-F]{16}$")
            self.assertTrue(p.quit().startswith(b"+OK"))
        finally:
            p.close()
        p = self.poplib_login()
        try:  # UIDL is the same in the next session
            self.assertEqual(p.uidl()[1], [b"1 " + uid1])
            p.quit()
        finally:
            p.close()

    def test_retr_raw_bytes_are_dot_stuffed_and_top(self):
        tok = uuid.uuid4().hex
        stored = self.send_mail(tok)
        c = self.conn()
        c.login()
        size = int(c.cmd("LIST 1").split()[2])
        self.assertEqual(c.cmd("RETR 1"), f"+OK {size} octets")
        raw = c.multiline()
        self.assertEqual(raw, stuffed(stored_crlf(stored)))
        self.assertIn(b"\r\n..leading dot\r\n...two dots\r\n", raw)
        self.assertEqual(c.cmd("TOP 1 0"), "+OK top of message follows")
        head = c.multiline()
        self.assertTrue(head.endswith(b"\r\n\r\n"))
        self.assertEqual(head, raw[:raw.index(b"\r\n\r\n") + 4])
        c.cmd("TOP 1 2")
        self.assertEqual(c.multiline(), head + b"first line\r\n..leading dot\r\n")
        self.assertEqual(c.cmd("QUIT"), "+OK logging out, 0 messages deleted")

    def test_capa_by_state(self):
        c = self.conn()
        self.assertEqual(c.cmd("CAPA"), "+OK capability list follows")
        caps = c.multiline().decode().split("\r\n")[:-1]
        for cap in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "USER", "STLS"):
            self.assertIn(cap, caps)
        self.assertIn("SASL PLAIN LOGIN", caps)
        c.login()
        c.cmd("CAPA")
        caps = c.multiline().decode().split("\r\n")[:-1]
        self.assertIn("UIDL", caps)
        self.assertNotIn("USER", caps)
        self.assertNotIn("STLS", caps)
        self.assertEqual(c.cmd("STLS"), "-ERR STLS is only allowed before login")

    def test_auth_plain(self):
        c = self.conn()
        self.assertEqual(c.cmd("AUTH PLAIN " + plain_ir()).split(",")[0], "+OK logged in")
        c.cmd("QUIT")
        c = self.conn()
        self.assertEqual(c.cmd("AUTH PLAIN"), "+ ")
        self.assertTrue(c.cmd(plain_ir()).startswith("+OK logged in"))
        c.cmd("QUIT")
        c = self.conn()
        self.assertEqual(c.cmd("AUTH PLAIN " + plain_ir(password="wrong")), "-ERR [AUTH] authentication failed")
        self.assertEqual(c.cmd("AUTH PLAIN"), "+ ")
        self.assertEqual(c.cmd("*"), "-ERR authentication cancelled")
        self.assertEqual(c.cmd("AUTH CRAM-MD5"), "-ERR unsupported authentication mechanism: CRAM-MD5")
        self.assertTrue(c.cmd("AUTH PLAIN !!!").startswith("-ERR "))
        c.cmd("USER " + USER)
        self.assertEqual(c.cmd("PASS wrong"), "-ERR [AUTH] authentication failed")

    def test_failed_logins_close_the_session(self):
        # Another client address and user, so that the auth daemon's
        # throttling of these failures touches no other test's logins.
        c = self.conn(self.stack.port("pop3s"), source="127.0.0.3", tls=True)
        for _ in range(2):
            self.assertEqual(c.cmd("AUTH PLAIN " + plain_ir("nobody@tern.test", "guess")),
                             "-ERR [AUTH] authentication failed")
        c.cmd("USER nobody@tern.test")
        self.assertEqual(c.cmd("PASS guess"), "-ERR [AUTH] authentication failed")
        self.assertEqual(c.line(), "-ERR too many failed logins, closing the connection")
        self.assertEqual(c.sock.recv(10), b"")
        self.assertRegex(self.stack.log_text(), r"auth\[\d+\]: authentication failed: user=<nobody@tern.test>, "
                                                r"rip=127.0.0.3, service=pop3")

    def test_stls_with_poplib_and_pipelined_plaintext_discarded(self):
        p = poplib.POP3("127.0.0.1", self.stack.port("pop3"), timeout=10)
        try:
            p.stls(client_context(False))
            p.user(USER)
            self.assertTrue(p.pass_(PASSWORD).startswith(b"+OK logged in"))
            p.quit()
        finally:
            p.close()
        # RFC 2595 4 / the STARTTLS injection attack: a command sent in the
        # clear right behind STLS must not run inside the TLS session.
        c = self.conn()
        c.send("STLS\r\nUSER " + USER + "\r\n")
        self.assertEqual(c.line(), "+OK begin TLS negotiation")
        c.starttls()
        # Had the USER run, PASS would now log in.
        self.assertEqual(c.cmd("PASS " + PASSWORD), "-ERR send USER first")
        self.assertTrue(c.cmd("USER " + USER).startswith("+OK"))
        self.assertTrue(c.cmd("PASS " + PASSWORD).startswith("+OK logged in"))
        self.assertTrue(c.cmd("QUIT").startswith("+OK"))
        self.stack.wait_for(lambda: re.search(r"pop3d\[\d+\]: login: user=<demo@tern.test>, rip=127.0.0.1, tls=yes",
                                              self.stack.log_text()), 10, "login with tls=yes logged")

    def test_implicit_tls_with_poplib(self):
        tok = uuid.uuid4().hex
        stored = self.send_mail(tok)
        p = poplib.POP3_SSL("127.0.0.1", self.stack.port("pop3s"), timeout=10, context=client_context(False))
        try:
            self.assertTrue(p.getwelcome().startswith(b"+OK"))
            p.user(USER)
            p.pass_(PASSWORD)
            resp, lines, _ = p.retr(1)
            self.assertEqual(b"\r\n".join(lines) + b"\r\n", stored_crlf(stored))
            caps = p.capa()
            self.assertNotIn("STLS", caps)
            p.quit()
        finally:
            p.close()

    def test_no_plaintext_login_off_secure_networks(self):
        # pop3d_secure_networks = 127.0.0.1/32: 127.0.0.2 counts as remote.
        c = self.conn(source="127.0.0.2")
        c.cmd("CAPA")
        caps = c.multiline().decode().split("\r\n")
        self.assertIn("STLS", caps)
        self.assertNotIn("USER", caps)
        self.assertFalse([x for x in caps if x.startswith("SASL")])
        refused = "-ERR plaintext login is not allowed without TLS: use STLS first"
        self.assertEqual(c.cmd("USER " + USER), refused)
        self.assertEqual(c.cmd("PASS " + PASSWORD), refused)
        self.assertEqual(c.cmd("AUTH PLAIN " + plain_ir()), refused)
        self.assertEqual(c.cmd("STAT"), "-ERR log in first (USER and PASS, or AUTH)")
        self.assertEqual(c.cmd("STLS"), "+OK begin TLS negotiation")
        c.starttls()
        self.assertTrue(c.cmd("AUTH PLAIN " + plain_ir()).startswith("+OK logged in"))
        c.cmd("QUIT")

    def test_dele_applies_only_after_quit(self):
        keep_tok, gone_tok = "keep-" + uuid.uuid4().hex, "gone-" + uuid.uuid4().hex
        self.send_mail(keep_tok)
        self.send_mail(gone_tok)
        p = self.poplib_login()
        # Which number is which message: RETR them.
        number = {}
        for n in (1, 2):
            text = b"\n".join(p.retr(n)[1])
            number["keep" if b"keep-" in text else "gone"] = n
        p.dele(number["gone"])
        self.assertEqual(p.stat()[0], 1)
        with self.assertRaises(poplib.error_proto):
            p.retr(number["gone"])
        # Dropped connection (no QUIT): nothing is deleted.
        p.close()
        self.stack.wait_for(lambda: "deletions not applied=1" in self.stack.log_text(), 10,
                            "the dropped session logged")
        c = self.conn()
        c.login()
        self.assertEqual(c.cmd("STAT").split()[1], "2")
        # RSET unmarks.
        c.cmd(f"DELE {number['gone']}")
        self.assertTrue(c.cmd("RSET").startswith("+OK maildrop has 2 messages"))
        c.cmd(f"DELE {number['gone']}")
        self.assertEqual(c.cmd("QUIT"), "+OK logging out, 1 messages deleted")
        self.assertEqual(len(self.files()), 1)
        self.file_with(keep_tok)
        c = self.conn()
        c.login()
        self.assertEqual(c.cmd("STAT").split()[1], "1")
        c.cmd("RETR 1")
        self.assertIn(b"keep-", c.multiline())
        c.cmd("QUIT")

    def test_delivery_during_session_does_not_shift_numbers(self):
        first = "first-" + uuid.uuid4().hex
        self.send_mail(first)
        c = self.conn()
        self.assertTrue(c.login().startswith("+OK logged in, 1 messages"))
        uid1 = c.cmd("UIDL 1").split()[2]
        late = "late-" + uuid.uuid4().hex
        self.send_mail(late)
        self.assertEqual(c.cmd("STAT").split()[1], "1")
        self.assertEqual(c.cmd("LIST 2"), "-ERR no such message")
        self.assertEqual(c.cmd("DELE 1"), "+OK message 1 deleted")
        self.assertTrue(c.cmd("QUIT").startswith("+OK logging out, 1 messages deleted"))
        c = self.conn()
        c.login()
        self.assertEqual(c.cmd("STAT").split()[1], "1")
        self.assertNotEqual(c.cmd("UIDL 1").split()[2], uid1)
        c.cmd("RETR 1")
        self.assertIn(late.encode(), c.multiline())
        c.cmd("QUIT")

    def test_message_removed_behind_the_session(self):
        one = "one-" + uuid.uuid4().hex
        self.send_mail(one)
        self.send_mail("two-" + uuid.uuid4().hex)
        c = self.conn()
        c.login()
        c.cmd("RETR 1")
        victim = 1 if b"one-" in c.multiline() else 2
        os.unlink(self.file_with(one))  # another client (or tool) removed it meanwhile
        self.assertEqual(c.cmd(f"RETR {victim}"), f"-ERR message {victim} is no longer available")
        self.assertTrue(c.cmd(f"TOP {3 - victim} 0").startswith("+OK"))
        c.multiline()
        self.assertEqual(c.cmd(f"DELE {victim}"), f"+OK message {victim} deleted")
        self.assertEqual(c.cmd("QUIT"), "+OK logging out, 0 messages deleted")
        self.assertEqual(len(self.files()), 1)

    def test_new_user_without_mail(self):
        # Added with mailctl; nothing was ever delivered, so no Maildir yet.
        proc = subprocess.run([MAILCTL, "-c", self.stack.conf_dir, "user", "add", "fresh@tern.test",
                               "--password-stdin"], input="s3cret\n", capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.stack.mail_dir, "tern.test", "fresh")))

        def login():
            c = Conn(self.stack.port("pop3"))
            self.conns.append(c)
            c.line()
            c.cmd("USER fresh@tern.test")
            return c if c.cmd("PASS s3cret").startswith("+OK logged in, 0 messages (0 octets)") else None
        # The auth daemon notices the edited users file by itself.
        c = self.stack.wait_for(login, 15, "login of the new user")
        self.assertEqual(c.cmd("STAT"), "+OK 0 0")
        self.assertEqual(c.cmd("LIST"), "+OK 0 messages (0 octets)")
        self.assertEqual(c.multiline(), b"")
        self.assertEqual(c.cmd("UIDL"), "+OK unique-id listing follows")
        self.assertEqual(c.multiline(), b"")
        self.assertEqual(c.cmd("RETR 1"), "-ERR no such message")
        self.assertEqual(c.cmd("QUIT"), "+OK logging out, 0 messages deleted")

    def imap(self):
        if "imap" not in self.stack.service_names():
            self.skipTest("imapd is not built")
        import imaplib
        m = imaplib.IMAP4("127.0.0.1", self.stack.port("imap"), timeout=10)
        m.login(USER, PASSWORD)
        return m

    def test_uidl_matches_imap_uidvalidity_and_uids(self):
        for i in range(3):
            self.send_mail(f"imap-{i}-" + uuid.uuid4().hex)
        m = self.imap()
        try:
            typ, data = m.select("INBOX")
            self.assertEqual(typ, "OK")
            uidvalidity = int(re.search(rb"\d+", m.response("UIDVALIDITY")[1][0]).group())
            typ, data = m.uid("SEARCH", None, "ALL")
            uids = sorted(int(u) for u in data[0].split())
            m.logout()
        finally:
            m.shutdown() if m.state != "LOGOUT" else None
        self.assertEqual(len(uids), 3)
        c = self.conn()
        c.login()
        c.cmd("UIDL")
        listing = c.multiline().decode().split("\r\n")[:-1]
        self.assertEqual(listing, [f"{n} {uidvalidity:08X}{uid:08X}" for n, uid in enumerate(uids, 1)])
        c.cmd("QUIT")

    def test_imap_expunge_during_pop3_session(self):
        first, second = "x-" + uuid.uuid4().hex, "y-" + uuid.uuid4().hex
        self.send_mail(first)
        self.send_mail(second)
        c = self.conn()
        c.login()
        c.cmd("TOP 1 0")
        victim = 1 if first.encode() in c.multiline() else 2
        m = self.imap()
        try:
            m.select("INBOX")
            typ, data = m.search(None, "HEADER", "Message-ID", first)
            self.assertEqual(typ, "OK")
            m.store(data[0].decode(), "+FLAGS", "\\Deleted")
            m.expunge()
            m.logout()
        finally:
            m.shutdown() if m.state != "LOGOUT" else None
        self.assertEqual(c.cmd(f"RETR {victim}"), f"-ERR message {victim} is no longer available")
        self.assertTrue(c.cmd(f"RETR {3 - victim}").endswith(" octets"))
        self.assertIn(second.encode(), c.multiline())
        c.cmd(f"DELE {victim}")
        self.assertEqual(c.cmd("QUIT"), "+OK logging out, 0 messages deleted")
        self.assertEqual(len(self.files()), 1)

    def test_in_use(self):
        self.send_mail(uuid.uuid4().hex)
        a = self.conn()
        a.login()
        b = self.conn()
        b.cmd("USER " + USER)
        self.assertEqual(b.cmd("PASS " + PASSWORD), "-ERR [IN-USE] your mailbox is in use by another POP3 session")
        a.cmd("QUIT")
        self.assertEqual(a.sock.recv(10), b"")  # closed: the lock is gone with the session
        b.cmd("USER " + USER)
        self.assertTrue(b.cmd("PASS " + PASSWORD).startswith("+OK logged in"))
        b.cmd("QUIT")

    def test_bad_input(self):
        c = self.conn()
        self.assertEqual(c.cmd("XYZZ"), "-ERR unknown command: XYZZ")
        self.assertEqual(c.cmd("RETRIEVE 1"), "-ERR unknown command")
        self.assertEqual(c.cmd(""), "-ERR empty command")
        self.assertEqual(c.cmd("NOOP\0"), "-ERR command contains control characters")
        self.assertEqual(c.cmd("A" * 5000), "-ERR line too long (at most 2048 octets)")
        self.assertEqual(c.cmd("APOP demo@tern.test 0123"),
                         "-ERR APOP is not offered: use USER/PASS or AUTH PLAIN (over TLS)")
        c.login()
        self.assertEqual(c.cmd("RETR abc"), "-ERR invalid message number: abc")
        self.assertEqual(c.cmd("RETR 0"), "-ERR invalid message number: 0")
        self.assertEqual(c.cmd("RETR 99999999999"), "-ERR invalid message number: 99999999999")
        self.assertEqual(c.cmd("RETR 7"), "-ERR no such message")
        self.assertEqual(c.cmd("TOP 1"), "-ERR syntax: TOP msg lines")
        self.assertEqual(c.cmd("LIST 1 2"), "-ERR syntax: LIST [msg]")
        self.assertEqual(c.cmd("STAT now"), "-ERR syntax: STAT")
        self.assertEqual(c.cmd("USER x"), "-ERR already logged in")
        self.assertEqual(c.cmd("NOOP"), "+OK")
        self.assertEqual(c.cmd("QUIT"), "+OK logging out, 0 messages deleted")

    def test_pipelining(self):
        tok = uuid.uuid4().hex
        self.send_mail(tok)
        c = self.conn()
        c.send(f"USER {USER}\r\nPASS {PASSWORD}\r\nSTAT\r\nRETR 1\r\nNOOP\r\nQUIT\r\n")
        self.assertTrue(c.line().startswith("+OK"))
        self.assertTrue(c.line().startswith("+OK logged in"))
        self.assertTrue(c.line().startswith("+OK 1 "))
        self.assertTrue(c.line().endswith(" octets"))
        self.assertIn(tok.encode(), c.multiline())
        self.assertEqual(c.line(), "+OK")
        self.assertTrue(c.line().startswith("+OK logging out"))

    def test_idle_timeout(self):
        c = self.conn(self.stack.port("pop3short"))
        start = time.monotonic()
        self.assertEqual(c.line(), "-ERR autologout: idle for too long")  # pop3d_timeout = 3s
        self.assertEqual(c.sock.recv(10), b"")
        self.assertLess(time.monotonic() - start, 9)

    def test_large_message_streamed(self):
        # 24 MB of 100-byte lines, every 5th starting with a dot.
        line = b"x" * 98 + b"\n"
        dotted = b"." + b"y" * 97 + b"\n"
        data = b"Subject: big\n\n" + (line * 4 + dotted) * 50000
        self.drop_file(data)
        expected = data.replace(b"\n", b"\r\n")
        pid = self.stack.pids("pop3")[0]

        def rss_anon():
            with open(f"/proc/{pid}/status") as f:
                return int(re.search(r"RssAnon:\s+(\d+) kB", f.read()).group(1)) * 1024
        c = self.conn()
        c.login()
        self.assertEqual(c.cmd("LIST 1"), f"+OK 1 {len(expected)}")
        before = rss_anon()
        self.assertEqual(c.cmd("RETR 1"), f"+OK {len(expected)} octets")
        # The server has begun sending; a copy of the body (24 MB, 25 MB
        # with CRLF) in its heap would show now.
        c.buf += c.sock.recv(65536)
        self.assertLess(rss_anon() - before, 8 << 20)
        body = c.multiline()
        self.assertEqual(len(body), len(expected) + 50000)  # one stuffed dot per dotted line
        self.assertEqual(body, stuffed(expected))
        self.assertEqual(c.cmd("QUIT"), "+OK logging out, 0 messages deleted")

    def test_curl_pop3_and_pop3s(self):
        if not shutil.which("curl"):
            self.skipTest("curl is not installed")
        tok = uuid.uuid4().hex
        expected = stored_crlf(self.send_mail(tok))
        plain = subprocess.run(["curl", "-sS", "--max-time", "20", "-u", f"{USER}:{PASSWORD}",
                                f"pop3://127.0.0.1:{self.stack.port('pop3')}/1"],
                               capture_output=True, timeout=30)
        self.assertEqual(plain.returncode, 0, plain.stderr)
        self.assertEqual(plain.stdout, expected)
        resolve = ["--resolve", f"mail.tern.test:{self.stack.port('pop3s')}:127.0.0.1",
                   "--resolve", f"mail.tern.test:{self.stack.port('pop3')}:127.0.0.1", "--cacert", _stack_cert]
        tls = subprocess.run(["curl", "-sS", "--max-time", "20", "-u", f"{USER}:{PASSWORD}"] + resolve +
                             [f"pop3s://mail.tern.test:{self.stack.port('pop3s')}/1"],
                             capture_output=True, timeout=30)
        self.assertEqual(tls.returncode, 0, tls.stderr)
        self.assertEqual(tls.stdout, expected)
        stls = subprocess.run(["curl", "-sS", "--max-time", "20", "--ssl-reqd", "-u", f"{USER}:{PASSWORD}"] +
                              resolve + [f"pop3://mail.tern.test:{self.stack.port('pop3')}/"],
                              capture_output=True, timeout=30)
        self.assertEqual(stls.returncode, 0, stls.stderr)
        self.assertEqual(stls.stdout, f"1 {len(expected)}\r\n".encode())

    def test_fetchmail_over_stls(self):
        if not shutil.which("fetchmail"):
            self.skipTest("fetchmail is not installed (scripts/install-deps)")
        toks = [uuid.uuid4().hex for _ in range(2)]
        for t in toks:
            self.send_mail(t)
        d = tempfile.mkdtemp(prefix="tern-fetchmail-")
        try:
            out = os.path.join(d, "mbox")
            rc = os.path.join(d, "fetchmailrc")
            with open(rc, "w") as f:
                f.write(f'set no syslog\n'
                        f'poll mail.tern.test via 127.0.0.1 port {self.stack.port("pop3")} protocol pop3\n'
                        f'  user "{USER}" password "{PASSWORD}" is "someone" here\n'
                        f"  sslproto 'TLS1.2+' sslcertck sslcertfile \"{_stack_cert}\" sslcommonname \"mail.tern.test\"\n"
                        f'  mda "/bin/sh -c \'cat >> {out}\'" nokeep\n')
            os.chmod(rc, 0o600)
            env = dict(os.environ, HOME=d, FETCHMAILHOME=d)
            proc = subprocess.run(["fetchmail", "-f", rc, "-v", "--nosyslog"], capture_output=True, text=True,
                                  timeout=60, env=env, stdin=subprocess.DEVNULL)
            self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
            self.assertIn("STLS", proc.stdout + proc.stderr)
            with open(out, "rb") as f:
                got = f.read()
            for t in toks:
                self.assertIn(t.encode(), got)
            self.assertIn(b"\n.leading dot\n", got)  # un-stuffed again by fetchmail
        finally:
            shutil.rmtree(d, ignore_errors=True)
        # fetchmail deleted what it fetched (DELE + QUIT).
        self.stack.wait_for(lambda: not self.files(), 10, "the fetched messages removed")
        self.assertRegex(self.stack.log_text(), r"pop3d\[\d+\]: login: user=<demo@tern.test>, rip=127.0.0.1, tls=yes")


if __name__ == "__main__":
    unittest.main()
