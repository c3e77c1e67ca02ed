"""Idempotent delivery: a crash between the mailbox write and the queue
update does not leave a second copy (docs/queue.md, "Idempotent delivery").

Each test makes one process die at a fixed point with the test-only fault
injection of lib/sys/fault.hpp: TERN_FAULT_<POINT>=<file> in master's
environment (workers inherit it), and the file exists until the first process
that reaches the point removes it and _exits.  So exactly one crash happens,
exactly there; master restarts the worker and qmgr retries.

  LOCAL_AFTER_WRITE   local-delivery wrote the Maildir file and dies before
                      answering; qmgr sees the connection close, defers, and
                      the retry is marked maybe_delivered.
  QMGR_BEFORE_RECORD  qmgr got "delivered" and dies before recording it; the
                      new qmgr finds the message queued before it started.

The retry must find the earlier file -- in new/, or in cur/ with flags when a
mail reader moved it meanwhile -- and report it delivered: one copy, queue empty.
"""
import os
import smtplib
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, fault_armed, program_exists  # noqa: E402

NEEDED = ("master", "smtpd", "qmgr", "local-delivery", "mailctl")
RCPT = "demo@tern.test"
CONFIG = {
    # The retry of a deferred delivery comes from `mailctl queue flush` in
    # the tests, not from a timer.
    "minimal_backoff_time": "1h",
    "maximal_backoff_time": "2h",
    "queue_run_delay": "1h",
}


def send(stack, token):
    with smtplib.SMTP("127.0.0.1", stack.port("smtp"), timeout=30) as c:
        c.sendmail("sender@example.org", [RCPT],
                   f"From: <sender@example.org>\r\nTo: <{RCPT}>\r\nSubject: {token}\r\n\r\nbody {token}\r\n")


def maildir(stack):
    return os.path.join(stack.mail_dir, "tern.test", "demo")


def copies(stack, token):
    """Paths in new/ and cur/ whose text has the token."""
    found = []
    for sub in ("new", "cur"):
        d = os.path.join(maildir(stack), sub)
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            with open(os.path.join(d, name), "rb") as f:
                if token.encode() in f.read():
                    found.append(os.path.join(d, name))
    return found


def queue_empty(stack):
    return "Mail queue is empty" in stack.mailctl("queue", "list").stdout


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "needs the whole stack built")
class IdempotentDeliveryTest(unittest.TestCase):
    def run_with_fault(self, point, token, between=None):
        """Sends one message with the fault armed; returns (stack log, copies)."""
        with fault_armed(point) as marker:
            stack = Stack(config=CONFIG)
            with stack as s:
                send(s, token)
                s.wait_for(lambda: not os.path.exists(marker), 30, f"the {point} crash")
                if between:
                    between(s)
                # The retry: deferred ones are due now, a new qmgr dispatches anyway.
                s.wait_for(lambda: s.mailctl("queue", "flush").returncode == 0 and queue_empty(s), 30,
                           "the queue to empty")
                # "removed" is logged once the removal is committed.
                log = s.wait_for(lambda: ": removed" in s.log_text() and s.log_text(), 10, "the removal")
                found = copies(s, token)
        self.assertIn(f"fault injection: exiting at {point}", log)
        return log, found

    def test_local_delivery_dies_after_the_write(self):
        log, found = self.run_with_fault("LOCAL_AFTER_WRITE", "idem-local-1")
        self.assertEqual(len(found), 1, found)
        self.assertIn("already delivered to maildir", log)
        # The name carries the queue ID and the recipient index.
        qid = os.path.basename(found[0]).split(".")[1].split("_")[0]
        self.assertRegex(os.path.basename(found[0]), r"^\d+\.[0-9A-Z]{14}_0\.[^,]+,S=\d+,W=\d+$")
        self.assertIn(f"{qid}: removed", log)

    def test_qmgr_dies_before_recording(self):
        log, found = self.run_with_fault("QMGR_BEFORE_RECORD", "idem-qmgr-1")
        self.assertEqual(len(found), 1, found)
        self.assertIn("already delivered to maildir", log)

    def test_earlier_copy_moved_to_cur_by_a_reader(self):
        def read_it(s):
            # The first copy is in new/ (written before the crash); a mail
            # reader moves it to cur/ and marks it seen before the retry.
            path = s.wait_for(lambda: copies(s, "idem-cur-1"), 10, "the first copy")[0]
            s.wait_for(lambda: "status=deferred" in s.log_text(), 30, "the deferral")
            os.rename(path, os.path.join(maildir(s), "cur", os.path.basename(path) + ":2,S"))
        log, found = self.run_with_fault("LOCAL_AFTER_WRITE", "idem-cur-1", between=read_it)
        self.assertEqual(len(found), 1, found)
        self.assertIn("/cur/", found[0])
        self.assertTrue(found[0].endswith(":2,S"))
        self.assertIn("already delivered to maildir", log)


if __name__ == "__main__":
    unittest.main()
