"""End-to-end tests of the queue manager on a real stack (SMTP -> queue ->
qmgr -> local-delivery -> Maildir): delivery, bounces as RFC 3464 reports,
retries with backoff, delay warnings, expiry, restart safety, and the
`mailctl queue` commands.

A recipient is made to defer by putting a plain file where its Maildir
would be: local-delivery then answers 4.x (this works as root too, unlike
a chmod).  Backoff times are set to 1-2 seconds so that retries happen
within the test.
"""
import email
import email.policy
import os
import re
import shutil
import smtplib
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, program_exists  # noqa: E402

NEEDED = ("master", "smtpd", "qmgr", "local-delivery", "mailctl")
FAST = {"minimal_backoff_time": "1s", "maximal_backoff_time": "2s", "queue_run_delay": "5s"}
# The users file lines the tests add next to demo@tern.test ("x" is no valid
# hash: these users never log in).
USERS = ("bob@tern.test:{SHA512-CRYPT}x::::quota=100\n"
         "carol@tern.test:{SHA512-CRYPT}x\n")


def add_users(stack):
    with open(os.path.join(stack.conf_dir, "users"), "a") as f:
        f.write(USERS)


def send(stack, sender, recipients, body):
    with smtplib.SMTP("127.0.0.1", stack.port("smtp"), timeout=15) as c:
        c.sendmail(sender, recipients, body)


def maildir_path(stack, user):
    return os.path.join(stack.mail_dir, "tern.test", user)


def block_mailbox(stack, user):
    """A plain file where the Maildir belongs: every delivery to it defers."""
    path = maildir_path(stack, user)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.isdir(path):
        shutil.rmtree(path)
    with open(path, "w") as f:
        f.write("not a maildir\n")


def unblock_mailbox(stack, user):
    path = maildir_path(stack, user)
    if os.path.isfile(path):
        os.unlink(path)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def queue_ids(stack):
    out = stack.mailctl("queue", "list", check=True).stdout
    return re.findall(r"^([0-9A-Z]{14})[*! ]", out, re.M)


def queue_id_of(stack, recipient):
    """The queue ID logged for a message accepted by smtpd for recipient."""
    m = re.findall(r"(\w{14}): to=<" + re.escape(recipient) + ">", stack.log_text())
    return m[-1] if m else None


def report_parts(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    return msg, msg.get_payload() if msg.is_multipart() else []


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "needs " + ", ".join(NEEDED))
class QmgrTest(unittest.TestCase):

    def test_smtp_message_reaches_maildir(self):
        with Stack(config=FAST) as s:
            send(s, "demo@tern.test", ["demo@tern.test"], "Subject: plain\n\nhello\n")
            files = s.wait_for(lambda: s.maildir_new("tern.test", "demo"), 15, "delivery to demo")
            self.assertIn(b"Subject: plain", read(files[0]))
            log = s.log_text()
            qid = re.search(r"(\w{14}): from=<demo@tern.test>, size=\d+, nrcpt=1 \(queue active\)", log)
            self.assertTrue(qid, log)
            s.wait_for(lambda: f"{qid.group(1)}: removed" in s.log_text(), 10, "removal")
            self.assertIn("Mail queue is empty", s.mailctl("queue", "list", check=True).stdout)

    def test_unknown_recipient_is_rejected_by_smtpd(self):
        with Stack(config=FAST) as s:
            with self.assertRaises(smtplib.SMTPRecipientsRefused) as ctx:
                send(s, "demo@tern.test", ["nobody@tern.test"], "Subject: x\n\nx\n")
            code, _ = ctx.exception.recipients["nobody@tern.test"]
            self.assertEqual(code, 550)
            self.assertIn("Mail queue is empty", s.mailctl("queue", "list", check=True).stdout)

    def test_over_quota_recipient_bounces_to_sender(self):
        with Stack(config=FAST, autostart=False) as s:
            add_users(s)
            s.start()
            send(s, "demo@tern.test", ["bob@tern.test"],
                 "Subject: too big for bob\nMessage-ID: <big@test>\n\n" + "x" * 600 + "\n")
            files = s.wait_for(lambda: s.maildir_new("tern.test", "demo"), 20, "bounce to demo")
            raw = read(files[0])
            self.assertIn(b"Return-Path: <>", raw)  # envelope sender of a bounce is <>
            msg, parts = report_parts(raw)
            self.assertEqual(msg.get_content_type(), "multipart/report")
            self.assertEqual(msg.get_param("report-type"), "delivery-status")
            self.assertTrue(msg["From"].startswith("MAILER-DAEMON@mail.tern.test"))
            self.assertEqual(len(parts), 3)
            self.assertEqual(parts[0].get_content_type(), "text/plain")
            self.assertIn("<bob@tern.test>", parts[0].get_payload())
            self.assertEqual(parts[1].get_content_type(), "message/delivery-status")
            status = parts[1].as_string()
            self.assertIn("Reporting-MTA: dns; mail.tern.test", status)
            self.assertIn("Arrival-Date:", status)
            self.assertIn("Final-Recipient: rfc822; bob@tern.test", status)
            self.assertIn("Action: failed", status)
            self.assertRegex(status, r"Status: 5\.\d+\.\d+")
            self.assertIn("Diagnostic-Code:", status)
            self.assertEqual(parts[2].get_content_type(), "message/rfc822")
            self.assertIn("Message-ID: <big@test>", parts[2].as_string())
            self.assertRegex(s.log_text(), r"\w{14}: sender non-delivery notification: \w{14}")

    def test_null_sender_message_is_never_bounced(self):
        with Stack(config=FAST, autostart=False) as s:
            add_users(s)
            s.start()
            send(s, "", ["bob@tern.test"], "Subject: a bounce that fails\n\n" + "x" * 600 + "\n")
            s.wait_for(lambda: "sender is the null sender <>, no notice sent" in s.log_text(), 20,
                       "the null-sender decision in the log")
            s.wait_for(lambda: "Mail queue is empty" in s.mailctl("queue", "list").stdout, 10, "empty queue")
            self.assertNotIn("non-delivery notification", s.log_text())
            self.assertEqual(s.maildir_new("tern.test", "demo"), [])

    def test_deferred_recipient_is_retried_after_backoff(self):
        with Stack(config=FAST) as s:
            block_mailbox(s, "demo")
            send(s, "demo@tern.test", ["demo@tern.test"], "Subject: retry me\n\nx\n")
            s.wait_for(lambda: len(re.findall(r"to=<demo@tern.test>.*status=deferred", s.log_text())) >= 2,
                       20, "two deferred attempts")
            listing = s.mailctl("queue", "list", check=True).stdout
            self.assertIn("demo@tern.test", listing)
            self.assertRegex(listing, r"\(.*maildir.*\)")  # the last error, in parentheses
            unblock_mailbox(s, "demo")
            files = s.wait_for(lambda: s.maildir_new("tern.test", "demo"), 15, "delivery after retry")
            self.assertIn(b"Subject: retry me", read(files[0]))

    def test_restarted_qmgr_keeps_deferred_message(self):
        with Stack(config=FAST) as s:
            block_mailbox(s, "demo")
            send(s, "demo@tern.test", ["demo@tern.test"], "Subject: survive restart\n\nx\n")
            s.wait_for(lambda: "status=deferred" in s.log_text(), 15, "a deferral")
            ids = queue_ids(s)
            self.assertEqual(len(ids), 1)
            old = s.pids("qmgr")
            self.assertEqual(len(old), 1)
            os.kill(old[0], 9)  # no chance to save anything from memory
            s.wait_for(lambda: s.pids("qmgr") and s.pids("qmgr") != old, 15, "qmgr restarted by master")
            self.assertEqual(queue_ids(s), ids)
            unblock_mailbox(s, "demo")
            s.wait_for(lambda: s.maildir_new("tern.test", "demo"), 15, "delivery by the new qmgr")
            s.wait_for(lambda: f"{ids[0]}: removed" in s.log_text(), 10, "removal")

    def test_queue_list_show_hold_release_delete(self):
        with Stack(config=FAST) as s:
            block_mailbox(s, "demo")
            send(s, "demo@tern.test", ["demo@tern.test"], "Subject: first\n\nx\n")
            send(s, "demo@tern.test", ["demo@tern.test"], "Subject: second\n\nx\n")
            s.wait_for(lambda: len(queue_ids(s)) == 2, 15, "two queued messages")
            first, second = queue_ids(s)

            self.assertEqual(s.mailctl("queue", "hold", first).returncode, 0)
            self.assertRegex(s.mailctl("queue", "list").stdout, re.escape(first) + "!")
            shown = s.mailctl("queue", "show", first, check=True).stdout
            self.assertIn("sender: <demo@tern.test>", shown)
            self.assertIn("held: yes", shown)
            self.assertIn("recipient: <demo@tern.test> pending", shown)
            self.assertRegex(shown, r"Subject: (first|second)")

            self.assertEqual(s.mailctl("queue", "delete", second).returncode, 0)
            self.assertEqual(queue_ids(s), [first])
            self.assertEqual(s.mailctl("queue", "show", second).returncode, 1)
            self.assertEqual(s.mailctl("queue", "hold", "not-an-id").returncode, 2)

            # Held: not delivered even though the mailbox works again and
            # everything was flushed; a newer message overtakes it.
            unblock_mailbox(s, "demo")
            self.assertEqual(s.mailctl("queue", "flush").returncode, 0)
            send(s, "demo@tern.test", ["demo@tern.test"], "Subject: third\n\nx\n")
            files = s.wait_for(lambda: s.maildir_new("tern.test", "demo"), 15, "delivery of the third")
            self.assertEqual(len(files), 1)
            self.assertIn(b"Subject: third", read(files[0]))
            s.wait_for(lambda: queue_ids(s) == [first], 10, "only the held message left")

            self.assertEqual(s.mailctl("queue", "release", first).returncode, 0)
            s.wait_for(lambda: len(s.maildir_new("tern.test", "demo")) == 2, 15, "delivery after release")
            s.wait_for(lambda: "Mail queue is empty" in s.mailctl("queue", "list").stdout, 10, "empty queue")
            # The deleted message never arrives.
            self.assertEqual(len(s.maildir_new("tern.test", "demo")), 2)

    def test_queue_delete_all(self):
        with Stack(config=FAST) as s:
            block_mailbox(s, "demo")
            for i in range(3):
                send(s, "demo@tern.test", ["demo@tern.test"], f"Subject: n{i}\n\nx\n")
            s.wait_for(lambda: len(queue_ids(s)) == 3, 15, "three queued messages")
            out = s.mailctl("queue", "delete", "ALL", check=True).stdout
            self.assertIn("3 messages removed", out)
            self.assertIn("Mail queue is empty", s.mailctl("queue", "list").stdout)

    def test_delay_warning_then_expiry_bounce(self):
        config = dict(FAST, delay_warning_time="1s", maximal_queue_lifetime="6s")
        with Stack(config=config, autostart=False) as s:
            add_users(s)
            s.start()
            block_mailbox(s, "demo")
            send(s, "carol@tern.test", ["demo@tern.test"], "Subject: slow\n\nx\n")

            def notices():
                return [read(p) for p in s.maildir_new("tern.test", "carol")]
            s.wait_for(lambda: any(b"Delayed Mail" in n for n in notices()), 20, "delay warning to carol")
            warning = next(n for n in notices() if b"Delayed Mail" in n)
            msg, parts = report_parts(warning)
            self.assertEqual(msg.get_content_type(), "multipart/report")
            self.assertIn("Action: delayed", parts[1].as_string())

            s.wait_for(lambda: any(b"Undelivered Mail" in n for n in notices()), 25, "expiry bounce to carol")
            bounce = next(n for n in notices() if b"Undelivered Mail" in n)
            _, parts = report_parts(bounce)
            status = parts[1].as_string()
            self.assertIn("Action: failed", status)
            self.assertIn("Status: 5.4.7", status)
            self.assertIn("status=expired, returned to sender", s.log_text())
            # Exactly one delay warning, however many retries there were.
            self.assertEqual(sum(b"Delayed Mail" in n for n in notices()), 1)


if __name__ == "__main__":
    unittest.main()
