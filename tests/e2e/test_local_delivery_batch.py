"""local-delivery's group commit (docs/local-delivery.md, "Group commit"),
over its real service socket like test_local_delivery.py.

Requests that reach local-delivery together are delivered as one batch: every
message file written and synced, one index transaction per folder, the
directories and indexes synced, and only then every answer.  To make a batch
of a known size, the daemon is stopped (SIGSTOP) while the test connects and
sends every request, then continued: it accepts all connections at its first
wake-up and reads every request at its next poll, so they form one batch.

- A burst to two virtual mailboxes and, as root, to the ~/Maildir of two
  throw-away users (two owners): every copy once, files owned by the right
  user with mode 0600, and each folder's index holds every file under its
  own UID, the UIDs 1..N without a gap.
- A crash at a fixed point of a batch (the test-only fault LOCAL_AFTER_WRITE:
  all mailboxes written, no answer sent): every file of the batch is there
  although no request was answered, and the retries after the restart --
  marked maybe_delivered as qmgr marks them, or not -- report "already
  delivered" without a second copy.
"""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_local_delivery import BINARY, Box, files_in, read, recv_message, send_message, statuses  # noqa: E402

REQUESTS = 12  # stays below the test listener's backlog of 16: connect() never blocks


def index_uids(maildir):
    """{queue-id_index: uid} from the folder's LMDB index ("names": base name -> UID)."""
    out = subprocess.run(["mdb_dump", "-n", "-s", "names", os.path.join(maildir, "tern-index.lmdb")],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    lines = out.splitlines()
    data = lines[lines.index("HEADER=END") + 1:lines.index("DATA=END")]
    uids = {}
    for key, value in zip(data[0::2], data[1::2]):
        base = bytes.fromhex(key.strip()).decode()
        uids[base.split(".")[1]] = int(value.strip(), 16)
    return uids


# The arrival time is part of the Maildir name: a retry must send the same.
ARRIVAL = int(time.time()) - 1


def request_attrs(queue_id, recipients, size, maybe_delivered):
    attrs = [("queue_id", queue_id), ("sender", "sender@example.org"), ("arrival", ARRIVAL),
             ("size", size), ("nexthop", "local")]
    for i, addr in enumerate(recipients):
        attrs.append(("rcpt", "%d %d %s" % (i, len(addr.encode()), addr)))
    if maybe_delivered:
        attrs.append(("maybe_delivered", "1"))
    return attrs


def wait_stopped(pid, timeout=10):
    """Until the process is really stopped (kill() only queues the signal)."""
    deadline = time.time() + timeout
    while True:
        with open("/proc/%d/stat" % pid) as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "T":
                return
        if time.time() > deadline:
            raise AssertionError("process %d did not stop" % pid)
        time.sleep(0.01)


def burst(box, requests, maybe_delivered=False, timeout=60):
    """Sends every (queue_id, recipients, text) while the daemon is stopped;
    returns one {index: (code, dsn, text)} per request, None where the
    connection closed without an answer."""
    socks = []
    os.kill(box.proc.pid, signal.SIGSTOP)
    try:
        wait_stopped(box.proc.pid)
        for queue_id, recipients, text in requests:
            with tempfile.TemporaryFile(dir=box.tmp) as body:
                body.write(text.encode())
                body.flush()
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(timeout)
                sock.connect(box.socket_path)
                send_message(sock, "deliver", request_attrs(queue_id, recipients, len(text), maybe_delivered),
                             [body.fileno()])
                socks.append(sock)
    finally:
        os.kill(box.proc.pid, signal.SIGCONT)
    answers = []
    for sock in socks:
        try:
            answers.append(statuses(*recv_message(sock)))
        except EOFError:
            answers.append(None)
        finally:
            sock.close()
    return answers


def restart(box):
    box.stop()
    os.unlink(box.socket_path)
    box.start()


@unittest.skipUnless(os.path.exists(BINARY), "build/local-delivery is not built")
class GroupCommitTest(unittest.TestCase):
    def setUp(self):
        self.fault = os.path.join(tempfile.mkdtemp(prefix="tern-fault-"), "armed")
        os.environ["TERN_FAULT_LOCAL_AFTER_WRITE"] = self.fault  # armed only while the file exists
        self.box = Box(extra_conf=["home_mailbox = Maildir/"])
        self.other = None
        if os.geteuid() == 0:
            name = "ternlb%d" % (os.getpid() % 100000)
            home = self.box.path("home", name)
            subprocess.run(["useradd", "--home-dir", home, "--no-create-home", "--shell", "/usr/sbin/nologin",
                            "--user-group", name], check=True, capture_output=True, timeout=30)
            self.other = name
            os.makedirs(home)
            pw = pwd.getpwnam(name)
            os.chown(home, pw.pw_uid, pw.pw_gid)
        # A second virtual mailbox (picked up at the next delivery, as an edit would be).
        with open(self.box.path("etc/users"), "a") as f:
            f.write("bob@virt.test:{PLAIN}x\n")
        later = time.time() + 5
        os.utime(self.box.path("etc/users"), (later, later))
        # Serving: one lone delivery first (it also makes the virtual mailbox's index).
        res = self.box.deliver(["alice@virt.test"], "Subject: warm-up\n\nfirst\n", queue_id="WARMUP00000000")
        self.assertEqual(res[0][:2], ("d", "2.0.0"), res)

    def tearDown(self):
        del os.environ["TERN_FAULT_LOCAL_AFTER_WRITE"]
        shutil.rmtree(os.path.dirname(self.fault), ignore_errors=True)
        self.box.close()
        if self.other:
            subprocess.run(["userdel", self.other], capture_output=True, timeout=30)
        for marker in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            self.assertNotIn(marker, self.box.output)

    def mailboxes(self):
        """(address, Maildir, owner uid) of each recipient of a request: two
        virtual mailboxes, and as root the ~/Maildir of two users (a normal
        user's real home is not touched)."""
        boxes = [("alice@virt.test", self.box.path("vmail", "virt.test", "alice"), self.box.uid),
                 ("bob@virt.test", self.box.path("vmail", "virt.test", "bob"), self.box.uid)]
        if self.other:
            boxes.append((self.box.user + "@localhost", os.path.join(self.box.home, "Maildir"), self.box.uid))
            pw = pwd.getpwnam(self.other)
            boxes.append((self.other + "@localhost", os.path.join(pw.pw_dir, "Maildir"), pw.pw_uid))
        return boxes

    def requests(self, prefix):
        addresses = [a for a, _, _ in self.mailboxes()]
        # Queue IDs as qmgr's: 14 characters of [0-9A-Z].
        return [("%s%s" % (prefix, str(i).rjust(14 - len(prefix), "0")), addresses, "Subject: %s-%d\n\nbody %s-%d\n" % (prefix, i, prefix, i))
                for i in range(REQUESTS)]

    def copies(self, maildir, token):
        found = []
        for sub in ("new", "cur"):
            for name in files_in(os.path.join(maildir, sub)):
                if ("Subject: %s\n" % token) in read(os.path.join(maildir, sub, name)):
                    found.append(os.path.join(maildir, sub, name))
        return found

    def check_each_copy_once(self, prefix):
        for _, maildir, uid in self.mailboxes():
            for i in range(REQUESTS):
                found = self.copies(maildir, "%s-%d" % (prefix, i))
                self.assertEqual(len(found), 1, (maildir, i, found))
                st = os.stat(found[0])
                self.assertEqual(st.st_uid, uid, found[0])
                self.assertEqual(st.st_mode & 0o777, 0o600, found[0])
            self.assertEqual(files_in(os.path.join(maildir, "tmp")), [], maildir)

    def test_burst_to_several_owners_every_copy_once_under_its_own_uid(self):
        answers = burst(self.box, self.requests("BURST"))
        for a in answers:
            self.assertIsNotNone(a)
            self.assertEqual(sorted(a), list(range(len(self.mailboxes()))), a)
            for code, dsn, text in a.values():
                self.assertEqual((code, dsn, text), ("d", "2.0.0", "delivered to maildir"))
        self.check_each_copy_once("BURST")
        # Every file is indexed under its own UID, 1..N without a gap (in
        # alice's folder the warm-up message has 1).
        for address, maildir, _ in self.mailboxes():
            uids = index_uids(maildir)
            count = REQUESTS + (1 if address.startswith("alice@") else 0)
            self.assertEqual(sorted(uids.values()), list(range(1, count + 1)), (maildir, uids))
            self.assertEqual(len(files_in(os.path.join(maildir, "new"))), count)

    def test_crash_after_the_batch_is_written_loses_nothing_and_retries_add_no_copy(self):
        with open(self.fault, "w"):
            pass
        answers = burst(self.box, self.requests("CRASH"))
        self.assertEqual(answers, [None] * REQUESTS)  # died before any answer ...
        self.assertFalse(os.path.exists(self.fault))
        self.box.proc.wait(timeout=30)
        self.check_each_copy_once("CRASH")            # ... with every message of the batch on disk
        restart(self.box)
        # qmgr's retry of a lost answer is marked maybe_delivered; the
        # rename into new/ also finds the name when it is not.
        for maybe in (True, False):
            answers = burst(self.box, self.requests("CRASH"), maybe_delivered=maybe)
            for a in answers:
                self.assertIsNotNone(a)
                for code, dsn, text in a.values():
                    self.assertEqual((code, dsn, text), ("d", "2.0.0", "already delivered to maildir"))
            self.check_each_copy_once("CRASH")


if __name__ == "__main__":
    unittest.main()
