"""The 250 after DATA comes only after the message is durably queued
(DESIGN.md "Queue", docs/queue.md "Durability contract"), checked by making
smtpd die at the two points around the queue record's commit, with the
test-only fault injection of lib/sys/fault.hpp (TERN_FAULT_<POINT>=<file>;
the first process to reach the point removes the file and _exits).

  COMMIT_BEFORE_RECORD  the body and its directory entry are synced, the
                        records are not inserted yet.  The client must get
                        no 250, the queue must hold no record of the
                        message (so it can never be delivered), and the
                        client's retry is delivered exactly once.
  COMMIT_BEFORE_REPLY   the records are in the commit log, the 250 is not
                        sent.  The client gets no 250, yet the message is in
                        the queue and is delivered (once): what was
                        committed is never lost, even when the reply is.
  COMMIT_BEFORE_STORE   the records are in the commit log (the 250 may be
                        out), not yet in LMDB.  The next opener of the queue
                        replays the dead smtpd's log: the message is
                        delivered, once.

If the Committer ran a message's completion (the 250) before its commit,
the first case would see a 250; if it committed before the body syncs were
done, the fault would hit with the record already there.
"""
import os
import re
import smtplib
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, fault_armed, program_exists  # noqa: E402

NEEDED = ("master", "smtpd", "qmgr", "local-delivery", "mailctl")
RCPT = "demo@tern.test"
# No timed queue runs: a message is delivered when smtpd wakes qmgr or the
# test flushes, never behind the test's back while it looks at the queue.
QUIET_QUEUE = {"queue_run_delay": "1h", "minimal_backoff_time": "1h", "maximal_backoff_time": "2h"}


def message(token):
    return f"From: <sender@example.org>\r\nTo: <{RCPT}>\r\nSubject: {token}\r\n\r\nbody {token}\r\n"


def send(stack, token):
    """Sends one message; returns the final reply code, or None when the
    connection was lost before any reply to the end of DATA."""
    with smtplib.SMTP("127.0.0.1", stack.port("smtp"), timeout=30) as c:
        c.ehlo("order.test")
        for cmd, want in (("MAIL FROM:<sender@example.org>", 250), (f"RCPT TO:<{RCPT}>", 250), ("DATA", 354)):
            code, text = c.docmd(cmd)
            if code != want:
                raise AssertionError(f"{cmd}: {code} {text!r}")
        c.send(message(token).encode() + b".\r\n")
        try:
            code, _ = c.getreply()
        except smtplib.SMTPServerDisconnected:
            return None
        return code


def copies(stack, token):
    n = 0
    for sub in ("new", "cur"):
        d = os.path.join(stack.mail_dir, "tern.test", "demo", sub)
        for name in os.listdir(d) if os.path.isdir(d) else []:
            with open(os.path.join(d, name), "rb") as f:
                n += token.encode() in f.read()
    return n


def queue_ids(stack):
    """Queue ids `mailctl queue list` shows (14 characters each)."""
    out = stack.mailctl("queue", "list", check=True).stdout
    return re.findall(r"^([0-9A-Z]{14})[*! ]", out, re.M)


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "needs the whole stack built")
class CommitOrderTest(unittest.TestCase):
    def with_fault(self, point, check):
        with fault_armed(point) as marker, Stack(config=QUIET_QUEUE) as s:
            check(s, marker)
            self.assertIn(f"fault injection: exiting at {point}", s.log_text())

    def test_no_250_and_no_record_when_smtpd_dies_before_the_commit(self):
        def check(s, marker):
            self.assertIsNone(send(s, "order-record-1"), "a 250 (or other reply) before the commit")
            self.assertFalse(os.path.exists(marker))
            # No record: the message is not queued and so is never delivered.
            self.assertEqual(queue_ids(s), [])
            # The client's retry goes to the restarted smtpd and is queued once.
            code = s.wait_for(lambda: send(s, "order-record-1"), 30, "a reply from the restarted smtpd")
            self.assertEqual(code, 250)
            s.mailctl("queue", "flush", check=True)
            s.wait_for(lambda: copies(s, "order-record-1") >= 1, 30, "the retry's delivery")
            s.wait_for(lambda: queue_ids(s) == [], 30, "an empty queue")
            self.assertEqual(copies(s, "order-record-1"), 1)
        self.with_fault("COMMIT_BEFORE_RECORD", check)

    def test_committed_message_is_delivered_when_its_250_is_lost(self):
        def check(s, marker):
            self.assertIsNone(send(s, "order-reply-1"), "a 250 from a process that died before sending it")
            self.assertFalse(os.path.exists(marker))
            # It is queued (in the dead smtpd's commit log, which the first
            # opener of the queue replays: the restarted smtpd, which then
            # wakes qmgr, or mailctl).  Either way it is in the queue or
            # already delivered; a flush takes it if it is still waiting
            # (the test does not wait for the queue timer).
            s.wait_for(lambda: len(queue_ids(s)) == 1 or copies(s, "order-reply-1") >= 1, 30,
                       "the committed message in the queue or delivered")
            s.mailctl("queue", "flush", check=True)
            s.wait_for(lambda: copies(s, "order-reply-1") >= 1, 30, "delivery of the committed message")
            s.wait_for(lambda: queue_ids(s) == [], 30, "an empty queue")
            self.assertEqual(copies(s, "order-reply-1"), 1)
        self.with_fault("COMMIT_BEFORE_REPLY", check)

    def test_logged_message_is_recovered_when_smtpd_dies_before_lmdb(self):
        def check(s, marker):
            self.assertIn(send(s, "order-store-1"), (250, None))
            s.wait_for(lambda: not os.path.exists(marker), 30, "smtpd to reach the fault point")
            # mailctl opens the queue: it (or the restarted smtpd, whichever
            # is first) replays the log of the smtpd that died.
            s.wait_for(lambda: len(queue_ids(s)) == 1 or copies(s, "order-store-1") >= 1, 30,
                       "the logged message in the queue or delivered")
            s.mailctl("queue", "flush", check=True)
            s.wait_for(lambda: copies(s, "order-store-1") >= 1, 30, "delivery of the logged message")
            s.wait_for(lambda: queue_ids(s) == [], 30, "an empty queue")
            self.assertEqual(copies(s, "order-store-1"), 1)
        self.with_fault("COMMIT_BEFORE_STORE", check)


if __name__ == "__main__":
    unittest.main()
