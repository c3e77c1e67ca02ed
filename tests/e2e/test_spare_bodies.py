"""Recycled queue bodies (docs/queue.md, "Removal"; lib/queue/spare.hpp).

A finished body of at most 256 KiB is not unlinked: qmgr renames it to
spare/r.<queue id>, an smtpd claims it and uses the same file (the same
inode, its blocks still allocated) for a later message.  The old content is
not truncated away at the claim, so the new body must overwrite it from the
start and be cut at its own end.  Checked with the real stack and smtplib:

- a long message is queued while qmgr is stopped, so its body's inode can be
  read, then delivered and recycled;
- with qmgr stopped again, shorter messages (~5 KiB: above the 4 KiB a
  body may have to stay out of a file, lib/queue/queue.hpp kSmallBodyMax)
  are sent one by one until one of their bodies is that inode (bounded: 500
  messages, 60 s): its size is the short message's, not the long one's;
- after qmgr continues, every short message is in the Maildir byte for byte
  (no byte of the long one after its end).
"""
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import program_exists  # noqa: E402
from test_mailflow import NEEDED, VIRTUAL, maildir_path, new_stack, queue_empty, read, send_smtplib  # noqa: E402

MAX_SHORT = 500


def body_path(stack, qid):
    return os.path.join(stack.queue_dir, "msg", qid[-2:], qid)


def delivered_files(stack):
    new = os.path.join(maildir_path(stack, "demo"), "new")
    return [os.path.join(new, n) for n in os.listdir(new)] if os.path.isdir(new) else []


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "tern programs not built")
class SpareBodiesTest(unittest.TestCase):
    def setUp(self):
        self.stack = new_stack()
        self.stack.start()
        self.qmgr = self.stack.pids("qmgr")[0]
        self.stopped = False

    def tearDown(self):
        if self.stopped:
            os.kill(self.qmgr, signal.SIGCONT)
        self.stack.stop()

    def pause_qmgr(self, stop):
        os.kill(self.qmgr, signal.SIGSTOP if stop else signal.SIGCONT)
        self.stopped = stop

    def test_short_body_in_a_recycled_long_one_is_cut_at_its_end(self):
        s = self.stack
        long_lines = ["From: <demo@tern.test>", "To: <demo@tern.test>", "Subject: long", ""] + \
            ["long line %04d %s" % (i, "x" * 60) for i in range(300)]  # ~23 KiB
        self.pause_qmgr(True)
        long_id = send_smtplib(s, VIRTUAL, long_lines)
        inode = os.stat(body_path(s, long_id)).st_ino
        long_size = os.stat(body_path(s, long_id)).st_size
        self.pause_qmgr(False)
        recycled = os.path.join(s.queue_dir, "spare", "r." + long_id)
        s.wait_for(lambda: os.path.exists(recycled), timeout=30, what="the long body recycled")

        self.pause_qmgr(True)
        sent = {}
        reused = None
        deadline = time.monotonic() + 60
        for i in range(MAX_SHORT):
            if time.monotonic() > deadline:
                break
            token = "short%03d" % i
            lines = ["From: <demo@tern.test>", "To: <demo@tern.test>", "Subject: " + token, ""] + \
                ["short line %02d %s" % (j, "y" * 60) for j in range(70)] + [token]  # ~5 KiB
            qid = send_smtplib(s, VIRTUAL, lines)
            sent[qid] = token
            st = os.stat(body_path(s, qid))
            if st.st_ino == inode:
                reused = (qid, st.st_size)
                break
        self.assertIsNotNone(reused, "no short message got the recycled body within %d messages" % len(sent))
        qid, size = reused
        self.assertLess(size, long_size)
        self.assertLess(size, 8192, "the recycled body was not cut at the short message's end")
        with open(body_path(s, qid), "rb") as f:
            text = f.read()
        self.assertTrue(text.rstrip(b"\n").endswith(sent[qid].encode()), text[-200:])
        self.assertNotIn(b"long line", text)

        self.pause_qmgr(False)
        s.wait_for(lambda: queue_empty(s), timeout=60, what="the queue delivered")
        by_token = {}
        for path in delivered_files(s):
            data = read(path)
            for token in sent.values():
                if b"Subject: " + token.encode() + b"\n" in data:
                    by_token[token] = data
        self.assertEqual(set(by_token), set(sent.values()))
        for token, data in by_token.items():
            self.assertTrue(data.endswith(b"y\n" + token.encode() + b"\n"), (token, data[-120:]))
            self.assertNotIn(b"long line", data)


if __name__ == "__main__":
    unittest.main()
