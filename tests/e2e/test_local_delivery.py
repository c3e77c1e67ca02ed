"""End-to-end tests of local-delivery, driven over its real service socket.

local-delivery is started the way master starts it (listening socket passed
as fd 3 with LISTEN_FDS/LISTEN_PID, `-c CONFIG_DIR -s local`) with a
tern.conf whose every path is inside a temporary directory.  A small client
speaks the lib/ipc frame format (lib/ipc/message.hpp) and the delivery
protocol (lib/delivery/request.hpp), passing the message body as an open fd
with SCM_RIGHTS, exactly as qmgr does; the per-recipient answers are checked
together with what landed on disk and the log lines.

Who the mail is delivered to:
- as root (CI), a throw-away system user is created with useradd, its home
  inside the temporary directory, and used as the local user, vmail_user and
  default_privs, so the tests also prove that files are written with the
  recipient's uid (never root's) and that ~/.forward is honoured;
- as a normal user, the local user is the current user.  Its real home is
  not touched, so the ~/.forward test is skipped with the reason.

A stack test (SMTP → qmgr → local-delivery → Maildir) runs when the harness
(tests/e2e/harness.py) and the smtpd/qmgr programs exist.
"""
import array
import os
import pwd
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
BINARY = os.path.join(BUILD, "local-delivery")
MAGIC = b"TRN1"


# --- lib/ipc framing -------------------------------------------------------

def encode(mtype, attrs):
    body = b""
    for name, value in [("type", mtype)] + list(attrs):
        n = name.encode()
        v = value if isinstance(value, bytes) else str(value).encode()
        body += struct.pack(">H", len(n)) + n + struct.pack(">I", len(v)) + v
    return body


def send_message(sock, mtype, attrs, fds=()):
    body = encode(mtype, attrs)
    header = MAGIC + struct.pack(">IH", len(body), len(fds))
    if fds:
        socket.send_fds(sock, [header], list(fds))
        sock.sendall(body)
    else:
        sock.sendall(header + body)


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def recv_message(sock):
    header = recv_exact(sock, 10)
    if header[:4] != MAGIC:
        raise ValueError("bad magic %r" % header[:4])
    length, _nfds = struct.unpack(">IH", header[4:])
    body = recv_exact(sock, length)
    attrs = []
    pos = 0
    while pos < len(body):
        (nlen,) = struct.unpack(">H", body[pos:pos + 2])
        name = body[pos + 2:pos + 2 + nlen].decode()
        pos += 2 + nlen
        (vlen,) = struct.unpack(">I", body[pos:pos + 4])
        value = body[pos + 4:pos + 4 + vlen].decode("utf-8", "replace")
        pos += 4 + vlen
        attrs.append((name, value))
    return attrs[0][1], attrs[1:]


# --- fixture ---------------------------------------------------------------

class Box:
    """A temporary tern.conf world plus a running local-delivery."""

    def __init__(self, extra_conf=()):
        self.tmp = tempfile.mkdtemp(prefix="tern-ld-")
        os.chmod(self.tmp, 0o755)  # the delivery user must be able to reach its home
        self.created_user = None
        if os.geteuid() == 0:
            name = "ternld%d" % (os.getpid() % 100000)
            home = os.path.join(self.tmp, "home", name)
            os.makedirs(os.path.dirname(home))
            subprocess.run(["useradd", "--home-dir", home, "--no-create-home", "--shell",
                            "/usr/sbin/nologin", "--user-group", name], check=True,
                           capture_output=True, timeout=30)
            self.created_user = name
            os.makedirs(home)
            pw = pwd.getpwnam(name)
            os.chown(home, pw.pw_uid, pw.pw_gid)
        else:
            pw = pwd.getpwuid(os.getuid())
        self.user = pw.pw_name
        self.uid = pw.pw_uid
        self.home = pw.pw_dir
        self.etc = self.path("etc")
        self.out = self.path("out")
        for d in ("etc", "spool", "vmail", "queue/maildrop", "run", "log", "out"):
            os.makedirs(self.path(d), exist_ok=True)
        os.chown(self.out, self.uid, -1)
        os.chown(self.path("vmail"), self.uid, -1)
        # The maildrop belongs to default_user (qmgr's user), who writes forwarded copies.
        os.chown(self.path("queue/maildrop"), self.uid, -1)
        self.write("etc/team.list", "# the team\n%s\nalice@virt.test\n" % self.user)
        self.write("etc/aliases", "\n".join([
            "team: :include:%s" % self.path("etc/team.list"),
            "sales@virt.test: alice+sales@virt.test",
            'archive: "|cat > %s/cmd.out; env > %s/cmd.env"' % (self.out, self.out),
            'busy: "|echo try later; exit 75"',
            'broken: "|echo no such list >&2; exit 67"',
            "archfile: %s/archive.mbox" % self.out,
            "faraway: friend@remote.example",
            "",
        ]))
        self.write("etc/users", "alice@virt.test:{PLAIN}x\nsmall@virt.test:{PLAIN}x::::quota=300\n")
        self.write("etc/tern.conf", "\n".join([
            "myhostname = mail.local.test",
            "mydomain = local.test",
            "mydestination = localhost, local.test",
            "virtual_mailbox_domains = virt.test",
            "queue_directory = " + self.path("queue"),
            "run_directory = " + self.path("run"),
            "data_directory = " + self.path("lib"),
            "mail_directory = " + self.path("vmail"),
            "mail_spool_directory = " + self.path("spool"),
            "log_target = " + self.path("log/tern.log"),
            "vmail_user = " + self.user,
            "default_user = " + self.user,
            "default_privs = " + self.user,
            "deliver_lock_attempts = 2",
            "deliver_lock_delay = 1s",
        ] + list(extra_conf) + [""]))
        self.socket_path = self.path("run/local.sock")
        self.proc = None
        self.output = ""
        self.start()

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def write(self, rel, text):
        with open(self.path(rel), "w") as f:
            f.write(text)

    def start(self):
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.socket_path)
        listener.listen(16)
        fd = listener.fileno()
        # fd 3 + LISTEN_PID of the exec'd process itself ($$ survives exec).
        script = 'exec 3<&%d; LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=local exec "$0" "$@"' % fd
        self.proc = subprocess.Popen(["/bin/sh", "-c", script, BINARY, "-c", self.etc, "-s", "local"],
                                     pass_fds=(fd,), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        listener.close()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc and self.proc.stdout:
            self.output = self.proc.stdout.read().decode("utf-8", "replace")
            self.proc.stdout.close()

    def close(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.created_user:
            subprocess.run(["userdel", self.created_user], capture_output=True, timeout=30)

    def log_text(self):
        try:
            with open(self.path("log/tern.log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def deliver(self, recipients, body, sender="sender@example.org", queue_id="4F2A1B3C5D", timeout=30):
        """Sends one deliver request; returns {index: (code, dsn, text)}."""
        fd, body_path = tempfile.mkstemp(dir=self.tmp)
        os.write(fd, body.encode())
        os.close(fd)
        bfd = os.open(body_path, os.O_RDONLY)
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            deadline = time.time() + 10
            while True:  # the daemon may still be starting
                try:
                    sock.connect(self.socket_path)
                    break
                except (FileNotFoundError, ConnectionRefusedError):
                    if time.time() > deadline:
                        raise
                    time.sleep(0.05)
            attrs = [("queue_id", queue_id), ("sender", sender), ("arrival", int(time.time()) - 1),
                     ("size", len(body)), ("nexthop", "local")]
            for i, r in enumerate(recipients):
                addr, orcpt = r if isinstance(r, tuple) else (r, "")
                attrs.append(("rcpt", "%d %d %s%s" % (i, len(addr.encode()), addr, orcpt)))
            send_message(sock, "deliver", attrs, [bfd])
            mtype, answer = recv_message(sock)
            sock.close()
        finally:
            os.close(bfd)
            os.unlink(body_path)
        return statuses(mtype, answer)


def statuses(mtype, attrs):
    """A "result" message's statuses: {index: (code, dsn, text)}."""
    assert mtype == "result", mtype
    results = {}
    for name, value in attrs:
        if name == "status":
            index, code, dsn, text = value.split(" ", 3)
            results[int(index)] = (code, dsn, text)
    return results


def message(subject="hello", extra_headers="", body="Hi there.\nFrom the other side\n"):
    return ("From: Sender <sender@example.org>\nTo: someone\nSubject: %s\n%s\n%s"
            % (subject, extra_headers, body))


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def files_in(d):
    try:
        return sorted(os.listdir(d))
    except FileNotFoundError:
        return []


@unittest.skipUnless(os.path.exists(BINARY), "build/local-delivery is not built")
class LocalDeliveryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.box = Box()

    @classmethod
    def tearDownClass(cls):
        cls.box.close()
        # A sanitizer build reports memory errors on the daemon's output.
        for marker in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            if marker in cls.box.output:
                raise AssertionError("local-delivery reported:\n" + cls.box.output[-4000:])

    def maildir(self, user):
        return self.box.path("vmail", "virt.test", user)

    def test_virtual_maildir(self):
        body = message("virtual")
        res = self.box.deliver(["alice@virt.test"], body, queue_id="A1B2C3D4E5")
        self.assertEqual(res[0][:2], ("d", "2.0.0"), res)
        md = self.maildir("alice")
        names = [n for n in files_in(md + "/new") if "virtual" in read(md + "/new/" + n)]
        self.assertEqual(len(names), 1, files_in(md + "/new"))
        path = md + "/new/" + names[0]
        with open(path) as f:
            text = f.read()
        self.assertTrue(text.startswith("Return-Path: <sender@example.org>\nDelivered-To: alice@virt.test\n"))
        self.assertTrue(text.endswith(body))
        size = len(text.encode())
        self.assertTrue(names[0].endswith(",S=%d,W=%d" % (size, size + text.count("\n"))), names[0])
        self.assertEqual(files_in(md + "/tmp"), [])
        self.assertEqual(os.stat(path).st_uid, self.box.uid)
        self.assertEqual(os.stat(path).st_mode & 0o077, 0)
        log = self.box.log_text()
        self.assertIn("A1B2C3D4E5: to=<alice@virt.test>, relay=local, delay=", log)
        self.assertIn("dsn=2.0.0, status=sent (delivered to maildir)", log)

    def test_extension_and_virtual_alias(self):
        res = self.box.deliver(["alice+lists@virt.test", ("sales@virt.test", "rfc822;Sales@virt.test")],
                               message("extension"), queue_id="B1B2C3D4E5")
        self.assertEqual(res[0][:2], ("d", "2.0.0"), res)
        self.assertEqual(res[1][:2], ("d", "2.0.0"), res)
        md = self.maildir("alice")
        hits = [n for n in files_in(md + "/new") if "Subject: extension" in read(md + "/new/" + n)]
        self.assertEqual(len(hits), 2)
        self.assertIn("B1B2C3D4E5: to=<sales@virt.test>, relay=local", self.box.log_text())

    def test_local_mbox(self):
        box = self.box.path("spool", self.box.user)
        before = read(box) if os.path.exists(box) else ""
        res = self.box.deliver([self.box.user + "@localhost"], message("mbox"))
        self.assertEqual(res[0][:2], ("d", "2.0.0"), res)
        with open(box) as f:
            text = f.read()[len(before):]
        self.assertTrue(text.startswith("From sender@example.org "), text[:80])
        self.assertIn("\nReturn-Path: <sender@example.org>\nDelivered-To: %s@localhost\n" % self.box.user, text)
        self.assertIn("\n>From the other side\n", text)  # mboxrd quoting
        self.assertTrue(text.endswith("\n\n"))
        self.assertEqual(os.stat(box).st_uid, self.box.uid)
        self.assertFalse(os.path.exists(box + ".lock"))

    def test_busy_mailbox_lock_defers(self):
        box = self.box.path("spool", self.box.user)
        with open(box + ".lock", "w") as f:
            f.write("99999\n")
        try:
            before = read(box) if os.path.exists(box) else ""
            res = self.box.deliver([self.box.user + "@localhost"], message("locked out"))
            self.assertEqual(res[0][:2], ("s", "4.2.0"), res)
            self.assertIn("lock", res[0][2])
            self.assertEqual(read(box) if os.path.exists(box) else "", before)
        finally:
            os.unlink(box + ".lock")
        res = self.box.deliver([self.box.user + "@localhost"], message("lock released"))
        self.assertEqual(res[0][:2], ("d", "2.0.0"), res)

    def test_alias_with_include(self):
        spool = self.box.path("spool", self.box.user)
        res = self.box.deliver(["team@local.test"], message("for the team"))
        self.assertEqual(res[0][:2], ("d", "2.0.0"), res)
        self.assertIn("Subject: for the team", read(spool))
        md = self.maildir("alice")
        hits = [n for n in files_in(md + "/new") if "for the team" in read(md + "/new/" + n)]
        self.assertEqual(len(hits), 1)
        # Delivered-To names the address the message was sent to, not the expansion.
        self.assertIn("Delivered-To: team@local.test\n", read(md + "/new/" + hits[0]))

    def test_unknown_users_bounce(self):
        res = self.box.deliver(["nobody-xyzzy@localhost", "bob@virt.test", "alice@virt.test"], message("unknown"))
        self.assertEqual(res[0][:2], ("b", "5.1.1"), res)
        self.assertEqual(res[1][:2], ("b", "5.1.1"), res)
        self.assertEqual(res[2][:2], ("d", "2.0.0"), res)
        self.assertIn("to=<nobody-xyzzy@localhost>, relay=local", self.box.log_text())
        self.assertIn("status=bounced (unknown user", self.box.log_text())

    def test_forwarding_loop(self):
        md = self.maildir("alice")
        before = len(files_in(md + "/new"))
        res = self.box.deliver(["alice@virt.test"],
                               message("looping", "Delivered-To: Alice@Virt.Test\n"))
        self.assertEqual(res[0][:2], ("b", "5.4.6"), res)
        self.assertIn("loop", res[0][2])
        self.assertEqual(len(files_in(md + "/new")), before)

    def test_over_quota(self):
        md = self.maildir("small")
        ok = self.box.deliver(["small@virt.test"], message("fits", body="x\n"))
        self.assertEqual(ok[0][:2], ("d", "2.0.0"), ok)
        self.assertEqual(len(files_in(md + "/new")), 1)
        res = self.box.deliver(["small@virt.test"], message("too big", body="y" * 400 + "\n"))
        self.assertEqual(res[0][:2], ("b", "5.2.2"), res)
        self.assertEqual(len(files_in(md + "/new")), 1)
        self.assertTrue(read(md + "/maildirsize").startswith("300S\n"))
        self.assertEqual(files_in(md + "/tmp"), [])

    def test_command_alias(self):
        res = self.box.deliver([("archive@localhost", "rfc822;archive@localhost")], message("to a command"),
                               sender="boss@example.org")
        self.assertEqual(res[0][:2], ("d", "2.0.0"), res)
        out = self.box.out
        self.assertIn("Subject: to a command", read(out + "/cmd.out"))
        env = read(out + "/cmd.env")
        self.assertIn("SENDER=boss@example.org\n", env)
        self.assertIn("RECIPIENT=archive@localhost\n", env)
        self.assertIn("USER=%s\n" % self.box.user, env)
        self.assertEqual(os.stat(out + "/cmd.out").st_uid, self.box.uid)  # never as root

    def test_command_exit_codes(self):
        res = self.box.deliver(["busy@localhost", "broken@localhost"], message("codes"))
        self.assertEqual(res[0][0], "s", res)  # EX_TEMPFAIL: try again later
        self.assertTrue(res[0][1].startswith("4."), res)
        self.assertIn("try later", res[0][2])
        self.assertEqual(res[1][:2], ("b", "5.1.1"), res)  # EX_NOUSER

    def test_file_alias(self):
        res = self.box.deliver(["archfile@localhost"], message("to a file"))
        self.assertEqual(res[0][:2], ("d", "2.0.0"), res)
        text = read(self.box.out + "/archive.mbox")
        self.assertTrue(text.startswith("From sender@example.org "))
        self.assertIn("Subject: to a file", text)

    def test_remote_target_is_forwarded_through_the_maildrop(self):
        drop = self.box.path("queue", "maildrop")
        before = set(files_in(drop))
        res = self.box.deliver(["faraway@localhost"], message("far away"), sender="s@example.org")
        self.assertEqual(res[0][:2], ("d", "2.0.0"), res)
        self.assertIn("forwarded to friend@remote.example", res[0][2])
        new = [n for n in set(files_in(drop)) - before if not n.startswith("tmp.")]
        self.assertEqual(len(new), 1)
        text = read(os.path.join(drop, new[0]))
        self.assertIn("\nsender s@example.org\n", text)
        self.assertIn("\nrcpt friend@remote.example\n", text)
        self.assertIn("Delivered-To: faraway@localhost\n", text)

    def test_forward_file(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to create a test user: a normal user's real ~/.forward is not touched")
        fwd = os.path.join(self.box.home, ".forward")
        with open(fwd, "w") as f:
            f.write("# keep a copy and send one to alice\n\\%s, alice@virt.test\n" % self.box.user)
        os.chown(fwd, self.box.uid, -1)
        try:
            spool = self.box.path("spool", self.box.user)
            res = self.box.deliver([self.box.user + "@local.test"], message("forwarded by .forward"))
            self.assertEqual(res[0][:2], ("d", "2.0.0"), res)
            self.assertIn("forwarded by .forward", read(spool))
            md = self.maildir("alice")
            self.assertTrue(any("forwarded by .forward" in read(md + "/new/" + n)
                                for n in files_in(md + "/new")))
            # A group-writable .forward is ignored (anyone in the group could redirect the mail).
            os.chmod(fwd, 0o664)
            before = len(files_in(md + "/new"))
            res = self.box.deliver([self.box.user + "@local.test"], message("insecure forward"))
            self.assertEqual(res[0][:2], ("d", "2.0.0"), res)
            self.assertEqual(len(files_in(md + "/new")), before)
            self.assertIn("ignoring %s" % fwd, self.box.log_text())
        finally:
            os.unlink(fwd)

    def test_edited_aliases_are_recompiled(self):
        path = self.box.path("etc", "aliases")
        with open(path) as f:
            original = f.read()
        try:
            with open(path, "a") as f:
                f.write("newcomer: alice@virt.test\n")
            later = time.time() + 5
            os.utime(path, (later, later))
            res = self.box.deliver(["newcomer@localhost"], message("newcomer"))
            self.assertEqual(res[0][:2], ("d", "2.0.0"), res)
        finally:
            with open(path, "w") as f:
                f.write(original)
            later = time.time() + 10
            os.utime(path, (later, later))
        res = self.box.deliver(["newcomer@localhost"], message("newcomer gone"))
        self.assertEqual(res[0][:2], ("b", "5.1.1"), res)

    def test_malformed_request_gets_no_answer(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(self.box.socket_path)
        send_message(sock, "deliver", [("queue_id", "X"), ("sender", "")])  # no rcpt, no fd
        self.assertEqual(sock.recv(100), b"")  # closed without a result
        sock.close()
        # ...and the daemon keeps serving.
        res = self.box.deliver(["alice@virt.test"], message("still alive"))
        self.assertEqual(res[0][:2], ("d", "2.0.0"), res)



@unittest.skipUnless(os.path.exists(BINARY), "build/local-delivery is not built")
class HomeMaildirTest(unittest.TestCase):
    def test_home_maildir_owned_by_the_user(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to create a test user: a normal user's real ~/Maildir is not touched")
        box = Box(extra_conf=["home_mailbox = Maildir/"])
        try:
            res = box.deliver([box.user + "+tag@localhost"], message("home maildir"))
            self.assertEqual(res[0][:2], ("d", "2.0.0"), res)
            md = os.path.join(box.home, "Maildir")
            names = files_in(md + "/new")
            self.assertEqual(len(names), 1)
            self.assertIn("Delivered-To: %s+tag@localhost\n" % box.user, read(md + "/new/" + names[0]))
            for p in (md, md + "/new", md + "/new/" + names[0]):
                self.assertEqual(os.stat(p).st_uid, box.uid, p)
            self.assertFalse(os.path.exists(box.path("spool", box.user)))
        finally:
            box.close()


def _stack_available():
    try:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import harness  # noqa: F401
    except ImportError:
        return False
    return all(os.access(os.path.join(BUILD, p), os.X_OK)
               for p in ("master", "mailctl", "smtpd", "qmgr", "local-delivery"))


@unittest.skipUnless(_stack_available(), "harness or smtpd/qmgr/master not built")
class LocalDeliveryStackTest(unittest.TestCase):
    """SMTP in, qmgr, local-delivery, Maildir out: the whole path."""

    def test_smtp_to_virtual_maildir_and_alias(self):
        import smtplib
        from harness import Stack
        with Stack(autostart=False) as s:
            with open(os.path.join(s.conf_dir, "aliases"), "a") as f:
                f.write("helpdesk: demo+help@tern.test\n")
            s.start()
            with smtplib.SMTP("127.0.0.1", s.port("smtp"), timeout=30) as c:
                c.ehlo("client.example")
                c.mail("sender@example.org")
                code, _ = c.rcpt("nobody-here@tern.test")
                self.assertEqual(code, 550)
                self.assertEqual(c.rcpt("demo@tern.test")[0], 250)
                self.assertEqual(c.rcpt("helpdesk@mail.tern.test")[0], 250)
                code, _ = c.data(b"From: sender@example.org\r\nSubject: stack test\r\n\r\n"
                                 b"From here on\r\n.leading dot\r\n")
                self.assertEqual(code, 250)
            s.wait_for(lambda: len(s.maildir_new("tern.test", "demo")) >= 2, 30, "two copies for demo")
            texts = [read(p) for p in s.maildir_new("tern.test", "demo")]
            self.assertTrue(all("Subject: stack test" in t for t in texts))
            self.assertTrue(all(t.startswith("Return-Path: <sender@example.org>\n") for t in texts))
            self.assertIn("Delivered-To: demo@tern.test\n", texts[0] + texts[1])
            self.assertIn("Delivered-To: helpdesk@mail.tern.test\n", texts[0] + texts[1])
            self.assertTrue(all("\n.leading dot\n" in t and "\r" not in t for t in texts))
            for path in s.maildir_new("tern.test", "demo"):
                size = os.path.getsize(path)
                self.assertIn(",S=%d," % size, os.path.basename(path))
            s.wait_for(lambda: "tern/local-delivery[" in s.log_text() and
                       "to=<helpdesk@mail.tern.test>, relay=local" in s.log_text(), 10, "log line")
            line = [l for l in s.log_text().splitlines()
                    if "tern/local-delivery[" in l and "to=<demo@tern.test>" in l][0]
            self.assertRegex(line, r": [0-9A-Z]+: to=<demo@tern.test>, relay=local, delay=[0-9.]+, "
                                   r"delays=[0-9.]+/[0-9.]+/0/[0-9.]+, dsn=2.0.0, status=sent \(delivered to maildir\)")

if __name__ == "__main__":
    unittest.main()
