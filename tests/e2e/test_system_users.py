"""System users' ~/Maildir over IMAP and POP3 (docs/imap.md, "System users").

A throw-away system user is created with useradd (home inside the stack's
temporary directory, password set with chpasswd), so these tests need
root; as another user they are skipped with that reason.  Mail reaches
~/Maildir through smtpd -> qmgr -> local-delivery (home_mailbox =
Maildir/).  The vmail-side imapd/pop3d relay to a backend process that
user-session (root) starts under the user's uid; the tests check that
process in /proc (uid, gid, CapEff 0), one process per login, IDLE,
persistent flags, a virtual user served as before, and that killing the
backend ends the client's connection with a BYE instead of a hang.
"""
import imaplib
import os
import poplib
import pwd
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, Stack, proc_status, tls_context as _tls  # noqa: E402
from test_local_delivery import recv_message, send_message  # noqa: E402  (lib/ipc frames)

PASSWORD = "s3cret-Sys"
NEEDED = ("master", "mailctl", "smtpd", "qmgr", "local-delivery", "auth", "imapd", "pop3d", "user-session")


def _built():
    return all(os.access(os.path.join(BUILD, p), os.X_OK) for p in NEEDED)


@unittest.skipUnless(_built(), "tern programs (%s) not built" % ", ".join(NEEDED))
class SystemUserTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root: creates a system user with useradd and runs user-session as root")
        if not shutil.which("useradd") or not shutil.which("chpasswd"):
            raise unittest.SkipTest("useradd/chpasswd not installed")
        cls.name = "ternsu%d" % (os.getpid() % 100000)
        cls.stack = Stack(config={
            "home_mailbox": "Maildir/",
            "mydestination": "localhost, $myhostname",
        }, autostart=False)
        home = os.path.join(cls.stack.base, "home", cls.name)
        os.makedirs(os.path.dirname(home))
        subprocess.run(["useradd", "--home-dir", home, "--create-home", "--shell", "/usr/sbin/nologin",
                        "--user-group", cls.name], check=True, capture_output=True, timeout=30)
        try:
            subprocess.run(["chpasswd"], input="%s:%s\n" % (cls.name, PASSWORD), text=True, check=True,
                           capture_output=True, timeout=30)
            cls.pw = pwd.getpwnam(cls.name)
            cls.stack.start()
        except BaseException:
            cls._remove_user()
            raise

    @classmethod
    def _remove_user(cls):
        subprocess.run(["userdel", cls.name], capture_output=True, timeout=30)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.stack.stop()
        finally:
            cls._remove_user()
            if os.environ.get("TERN_E2E_KEEP") != "1":
                shutil.rmtree(cls.stack.base, ignore_errors=True)

    # --- helpers ---------------------------------------------------------

    def deliver(self, subject, rcpt=None):
        rcpt = rcpt or "%s@localhost" % self.name
        msg = "From: a@example.org\r\nTo: %s\r\nSubject: %s\r\n\r\nbody of %s\r\n" % (rcpt, subject, subject)
        with smtplib.SMTP("127.0.0.1", self.stack.port("smtp"), timeout=20) as s:
            s.sendmail("a@example.org", [rcpt], msg)

    def maildir_count(self):
        d = os.path.join(self.pw.pw_dir, "Maildir", "new")
        c = os.path.join(self.pw.pw_dir, "Maildir", "cur")
        return sum(len(os.listdir(x)) for x in (d, c) if os.path.isdir(x))

    def deliver_and_wait(self, subject):
        before = self.maildir_count()
        self.deliver(subject)
        self.stack.wait_for(lambda: self.maildir_count() > before, 20, "delivery to ~/Maildir")

    def backend_pids(self, service="imap"):
        pattern = r"backend started: user=<%s>, uid=\d+, service=%s, pid=(\d+)" % (self.name, service)
        return [int(p) for p in re.findall(pattern, self.stack.log_text())]

    def imap_login(self):
        before = len(self.backend_pids())
        m = imaplib.IMAP4("127.0.0.1", self.stack.port("imap"), timeout=20)
        m.starttls(ssl_context=_tls())
        typ, data = m.login(self.name, PASSWORD)
        self.assertEqual(typ, "OK", data)
        self.stack.wait_for(lambda: len(self.backend_pids()) > before, 10, "backend start logged")
        return m, self.backend_pids()[-1]

    # --- tests -------------------------------------------------------------

    def test_imap_reads_home_maildir_as_the_user(self):
        self.deliver_and_wait("hello imap")
        m, pid = self.imap_login()
        try:
            st = proc_status(pid)
            self.assertEqual(int(st["Uid"][0]), self.pw.pw_uid)
            self.assertEqual(int(st["Uid"][1]), self.pw.pw_uid)  # effective
            self.assertEqual(int(st["Gid"][1]), self.pw.pw_gid)
            self.assertEqual(int(st["CapEff"][0], 16), 0)
            self.assertEqual(int(st["CapPrm"][0], 16), 0)
            self.assertEqual(int(st["CapBnd"][0], 16), 0)
            typ, data = m.select("INBOX")
            self.assertEqual(typ, "OK", data)
            typ, data = m.search(None, 'SUBJECT "hello imap"')
            self.assertEqual(typ, "OK")
            nums = data[0].split()
            self.assertTrue(nums, data)
            typ, data = m.fetch(nums[-1], "(BODY.PEEK[])")
            self.assertIn(b"body of hello imap", data[0][1])
            # Folders the store creates belong to the user, not root.
            self.assertEqual(os.stat(os.path.join(self.pw.pw_dir, "Maildir", ".Sent")).st_uid, self.pw.pw_uid)
        finally:
            m.logout()

    def test_flags_persist_across_sessions(self):
        self.deliver_and_wait("flag me")
        m, _ = self.imap_login()
        m.select("INBOX")
        num = m.search(None, 'SUBJECT "flag me"')[1][0].split()[-1]
        typ, _ = m.store(num, "+FLAGS", "(\\Flagged $Label1)")
        self.assertEqual(typ, "OK")
        m.logout()
        m, _ = self.imap_login()
        try:
            m.select("INBOX")
            num = m.search(None, 'SUBJECT "flag me"')[1][0].split()[-1]
            typ, data = m.fetch(num, "(FLAGS)")
            self.assertIn(b"\\Flagged", data[0])
            self.assertIn(b"$Label1", data[0])
        finally:
            m.logout()

    def test_idle_sees_a_new_delivery(self):
        m, _ = self.imap_login()
        try:
            typ, data = m.select("INBOX")
            exists = int(data[0])
            tag = m._new_tag().decode()
            m.send(("%s IDLE\r\n" % tag).encode())
            self.assertTrue(m.readline().startswith(b"+"))
            self.deliver("while idling")
            m.sock.settimeout(20)
            seen = None
            for _ in range(20):
                line = m.readline()
                got = re.match(rb"\* (\d+) EXISTS", line)
                if got and int(got.group(1)) > exists:
                    seen = line
                    break
            self.assertIsNotNone(seen, "no EXISTS after a delivery while in IDLE")
            m.send(b"DONE\r\n")
            for _ in range(20):
                line = m.readline()
                if line.startswith(tag.encode()):
                    self.assertIn(b"OK", line)
                    break
        finally:
            m.logout()

    def test_two_logins_two_processes(self):
        a, pa = self.imap_login()
        b, pb = self.imap_login()
        try:
            self.assertNotEqual(pa, pb)
            for pid in (pa, pb):
                self.assertEqual(int(proc_status(pid)["Uid"][1]), self.pw.pw_uid)
            self.assertEqual(a.select("INBOX")[0], "OK")
            self.assertEqual(b.select("INBOX")[0], "OK")
        finally:
            a.logout()
            b.logout()
        # Each backend ends with its session.
        for pid in (pa, pb):
            self.stack.wait_for(lambda: re.search(r"backend exited: user=<%s>, pid=%d, status=exit 0" % (self.name, pid),
                                                  self.stack.log_text()), 10, "backend %d exit" % pid)

    def test_killed_backend_gives_bye(self):
        m, pid = self.imap_login()
        m.select("INBOX")
        os.kill(pid, signal.SIGKILL)
        m.sock.settimeout(15)
        line = m.readline()
        self.assertTrue(line.startswith(b"* BYE"), line)
        self.assertEqual(m.readline(), b"")  # then the connection closes
        m.shutdown()

    def test_virtual_user_is_served_by_vmail_imapd(self):
        before = len(re.findall(r"backend started:", self.stack.log_text()))
        m = imaplib.IMAP4("127.0.0.1", self.stack.port("imap"), timeout=20)
        m.starttls(ssl_context=_tls())
        try:
            self.assertEqual(m.login("demo@tern.test", "demo")[0], "OK")
            self.assertEqual(m.select("INBOX")[0], "OK")
        finally:
            m.logout()
        self.assertEqual(len(re.findall(r"backend started:", self.stack.log_text())), before)

    def test_pop3_stls_reads_home_maildir(self):
        self.deliver_and_wait("hello pop3")
        before = len(self.backend_pids("pop3"))
        p = poplib.POP3("127.0.0.1", self.stack.port("pop3"), timeout=20)
        p.stls(context=_tls())
        p.user(self.name)
        self.assertTrue(p.pass_(PASSWORD).startswith(b"+OK"))
        try:
            self.stack.wait_for(lambda: len(self.backend_pids("pop3")) > before, 10, "pop3 backend start")
            pid = self.backend_pids("pop3")[-1]
            st = proc_status(pid)
            self.assertEqual(int(st["Uid"][1]), self.pw.pw_uid)
            self.assertEqual(int(st["CapEff"][0], 16), 0)
            count, _ = p.stat()
            self.assertGreaterEqual(count, 1)
            bodies = [b"\n".join(p.retr(i)[1]) for i in range(1, count + 1)]
            self.assertTrue(any(b"body of hello pop3" in b for b in bodies))
        finally:
            p.quit()

    def test_command_pipelined_after_login_reaches_the_backend(self):
        raw = socket.create_connection(("127.0.0.1", self.stack.port("imap")), timeout=20)
        f = raw.makefile("rb")
        self.assertTrue(f.readline().startswith(b"* OK"))
        raw.sendall(b"s STARTTLS\r\n")
        self.assertTrue(f.readline().startswith(b"s OK"))
        tls = _tls().wrap_socket(raw)
        f = tls.makefile("rb")
        tls.sendall(("l LOGIN %s %s\r\nn NOOP\r\nq LOGOUT\r\n" % (self.name, PASSWORD)).encode())
        lines = []
        for _ in range(20):
            line = f.readline()
            if not line:
                break
            lines.append(line)
        tls.close()
        tagged = [l.split(b" ")[0:2] for l in lines if not l.startswith(b"*")]
        self.assertEqual(tagged, [[b"l", b"OK"], [b"n", b"OK"], [b"q", b"OK"]], lines)

    def test_no_user_session_means_unavailable_not_a_hang(self):
        sock = self.stack.socket_path("user-session")
        os.rename(sock, sock + ".away")
        try:
            m = imaplib.IMAP4("127.0.0.1", self.stack.port("imap"), timeout=20)
            m.starttls(ssl_context=_tls())
            with self.assertRaises(imaplib.IMAP4.error) as e:
                m.login(self.name, PASSWORD)
            self.assertIn("UNAVAILABLE", str(e.exception))
            # The session is still usable: a virtual user can log in on it.
            self.assertEqual(m.login("demo@tern.test", "demo")[0], "OK")
            m.logout()
        finally:
            os.rename(sock + ".away", sock)

    def pop3_login(self):
        before = len(self.backend_pids("pop3"))
        p = poplib.POP3("127.0.0.1", self.stack.port("pop3"), timeout=20)
        p.stls(context=_tls())
        p.user(self.name)
        self.assertTrue(p.pass_(PASSWORD).startswith(b"+OK"))
        self.stack.wait_for(lambda: len(self.backend_pids("pop3")) > before, 10, "pop3 backend start")
        return p, self.backend_pids("pop3")[-1]

    def test_pop3_in_use_and_killed_backend(self):
        p, pid = self.pop3_login()
        q = poplib.POP3("127.0.0.1", self.stack.port("pop3"), timeout=20)
        q.stls(context=_tls())
        q.user(self.name)
        with self.assertRaises(poplib.error_proto) as e:
            q.pass_(PASSWORD)
        self.assertIn(b"[IN-USE]", e.exception.args[0])
        q.quit()
        os.kill(pid, signal.SIGKILL)
        p.sock.settimeout(15)
        self.assertTrue(p.file.readline().startswith(b"-ERR [SYS/TEMP]"))
        self.assertEqual(p.file.readline(), b"")
        p.close()
        # The lock went with the session: a new login works.
        p, _ = self.pop3_login()
        p.quit()

    # --- the root service's checks, driven over its socket ----------------

    def ask_user_session(self, ticket, protocol="imap"):
        """A backend-request as imapd sends it; returns (type, attrs)."""
        mine, theirs = socket.socketpair()
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(10)
                s.connect(self.stack.socket_path("user-session"))
                send_message(s, "backend-request", [("protocol", protocol), ("ticket", ticket),
                                                    ("rip", "127.0.0.1"), ("tls", "1"), ("tag", "t1")],
                             fds=[theirs.fileno()])
                return recv_message(s)
        finally:
            mine.close()
            theirs.close()

    def auth_ticket(self, service="imap"):
        """A real ticket: a password check on the auth socket, as imapd does."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(self.stack.socket_path("auth"))
            send_message(s, "auth-check", [("id", "1"), ("mechanism", "PLAIN"), ("authzid", ""),
                                           ("user", self.name), ("password", PASSWORD), ("rip", "127.0.0.1"),
                                           ("service", service), ("secured", "1")])
            mtype, attrs = recv_message(s)
        values = dict(attrs)
        self.assertEqual((mtype, values.get("outcome")), ("auth-answer", "ok"), attrs)
        self.assertEqual(len(values.get("ticket", "")), 64, attrs)
        return values["ticket"]

    def test_forged_ticket_is_refused(self):
        mtype, attrs = self.ask_user_session("00" * 32)
        self.assertEqual(mtype, "backend-refused", attrs)
        self.assertIn("ticket refused", dict(attrs)["reason"])

    def test_ticket_works_once_and_for_its_service_only(self):
        ticket = self.auth_ticket("imap")
        mtype, attrs = self.ask_user_session(ticket, "pop3")  # the wrong service burns it
        self.assertEqual(mtype, "backend-refused", attrs)
        mtype, attrs = self.ask_user_session(ticket, "imap")
        self.assertEqual(mtype, "backend-refused", attrs)
        ticket = self.auth_ticket("imap")
        mtype, attrs = self.ask_user_session(ticket, "imap")
        self.assertEqual(mtype, "backend-started", attrs)
        mtype, attrs = self.ask_user_session(ticket, "imap")  # replayed
        self.assertEqual(mtype, "backend-refused", attrs)


if __name__ == "__main__":
    unittest.main()
