"""End-to-end tests of QUOTA (RFC 9208) in imapd with imaplib: the quota a
user has in the users table (quota=) is what GETQUOTAROOT/GETQUOTA show,
mail delivered through smtpd is counted, APPEND and COPY over the quota get
NO [OVERQUOTA] while MOVE (same quota root) does not change the usage,
local-delivery bounces exactly what IMAP said no longer fits, an EXPUNGE
gives the space back to both, and SETQUOTA is refused.
"""
import imaplib
import os
import re
import smtplib
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DEMO_PASSWD, DEMO_USERS, Stack, program_exists  # noqa: E402

NEEDED = ("master", "mailctl", "auth", "imapd", "smtpd", "qmgr", "local-delivery")
LIMIT = 20000  # bytes: quota=20000 in the users table
SMALL = "small@tern.test"
# small@tern.test has demo's password ("demo") and a quota.
USERS = DEMO_USERS + DEMO_USERS.replace("demo@tern.test", SMALL).rstrip("\n") + f"::::quota={LIMIT}\n"
PASSWD = DEMO_PASSWD + DEMO_PASSWD.replace("demo@tern.test", SMALL)


def message(subject, body_bytes):
    head = (f"From: alice@example.org\r\nTo: {SMALL}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '-')}@example.org>\r\n\r\n").encode()
    line = b"x" * 74 + b"\r\n"
    body = line * (body_bytes // len(line))
    return head + body


def kib(n):
    return (n + 1023) // 1024


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "the daemons are not built")
class ImapQuotaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(autostart=False)
        with open(os.path.join(cls.stack.conf_dir, "users"), "w") as f:
            f.write(USERS)
        with open(os.path.join(cls.stack.conf_dir, "passwd"), "w") as f:
            f.write(PASSWD)
        cls.stack.start()
        cls.port = cls.stack.port("imap")

    @classmethod
    def tearDownClass(cls):
        cls.stack.__exit__(None, None, None)

    def login(self, user):
        m = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        m.login(user, "demo")
        return m

    def quota(self, m):
        """(used KiB, limit KiB) from GETQUOTAROOT INBOX."""
        typ, data = m.getquotaroot("INBOX")
        self.assertEqual(typ, "OK", data)
        roots, quotas = data
        self.assertEqual(roots, [b'INBOX ""'])
        match = re.fullmatch(rb'"" \(STORAGE (\d+) (\d+)\)', quotas[0])
        self.assertTrue(match, quotas)
        return int(match.group(1)), int(match.group(2))

    def stored_bytes(self):
        """Bytes of all message files of small@tern.test (LF line ends, as stored)."""
        root = os.path.join(self.stack.mail_dir, "tern.test", "small")
        total = 0
        for dirpath, _, files in os.walk(root):
            if os.path.basename(dirpath) in ("cur", "new"):
                total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
        return total

    def deliver(self, msg):
        with smtplib.SMTP("127.0.0.1", self.stack.port("smtp"), timeout=10) as s:
            s.sendmail("alice@example.org", [SMALL], msg)

    def delivery_log(self, subject_id, status):
        """Waits for local-delivery's line about the message with this Message-ID."""
        def found():
            text = self.stack.log_text()
            qids = re.findall(r"(\w+): message-id=<%s@example\.org>" % re.escape(subject_id), text)
            for qid in qids:
                m = re.search(r"%s: to=<%s>.*status=(\w+)" % (qid, re.escape(SMALL)), text)
                if m:
                    return m.group(0)
            return None
        line = self.stack.wait_for(found, timeout=20, what=f"delivery of {subject_id}")
        self.assertIn("status=" + status, line)
        return line

    def test_quota_follows_deliveries_appends_and_expunges(self):
        m = self.login(SMALL)
        caps = m.capability()[1][0].decode()
        self.assertIn(" QUOTA ", caps + " ")
        self.assertIn("QUOTA=RES-STORAGE", caps)
        self.assertNotIn("QUOTASET", caps)
        self.assertEqual(self.quota(m), (0, kib(LIMIT)))

        # A delivery through smtpd is counted.
        self.deliver(message("first", 5000))
        self.delivery_log("first", "sent")
        used, limit = self.quota(m)
        self.assertEqual(used, kib(self.stored_bytes()))
        self.assertGreater(used, 4)
        typ, data = m.getquota('""')
        self.assertEqual(typ, "OK")
        self.assertEqual(data, [b'"" (STORAGE %d %d)' % (used, limit)])

        # APPEND counts, and an APPEND over the quota is refused.
        typ, data = m.append("INBOX", None, None, message("appended", 9000))
        self.assertEqual(typ, "OK", data)
        self.assertEqual(self.quota(m)[0], kib(self.stored_bytes()))
        typ, data = m.append("INBOX", None, None, message("too big", 8000))
        self.assertEqual(typ, "NO", data)
        self.assertIn(b"[OVERQUOTA]", data[0])

        # COPY over the quota: refused as a whole; MOVE keeps the usage.
        m.select("INBOX")
        before = self.stored_bytes()
        typ, data = m.copy("1:*", "Archive")
        self.assertEqual(typ, "NO", data)
        self.assertIn(b"[OVERQUOTA]", data[0])
        self.assertEqual(m.status("Archive", "(MESSAGES)")[1][0], b"Archive (MESSAGES 0)")
        typ, data = m._simple_command("MOVE", "2", "Archive")
        self.assertEqual(typ, "OK", data)
        self.assertEqual(self.stored_bytes(), before)
        self.assertEqual(self.quota(m)[0], kib(before))

        # local-delivery bounces what IMAP says does not fit, delivers what does.
        used_bytes = self.stored_bytes()
        free = LIMIT - used_bytes
        self.assertGreater(free, 1000)
        self.deliver(message("no room", free + 500))
        self.delivery_log("no-room", "bounced")
        self.assertEqual(self.stored_bytes(), used_bytes)
        fits = message("room", free - 600)
        self.deliver(fits)
        self.delivery_log("room", "sent")
        self.assertEqual(self.quota(m)[0], kib(self.stored_bytes()))

        # STATUS SIZE counts the same messages with CRLF line ends (RFC822.SIZE).
        m.select("INBOX")
        typ, data = m.fetch("1:*", "(RFC822.SIZE)")
        crlf_total = sum(int(re.search(rb"RFC822.SIZE (\d+)", d).group(1)) for d in data)
        inbox_dir = os.path.join(self.stack.mail_dir, "tern.test", "small")
        inbox_stored = sum(os.path.getsize(os.path.join(inbox_dir, sub, f))
                           for sub in ("cur", "new") for f in os.listdir(os.path.join(inbox_dir, sub)))
        self.assertEqual(m.status("INBOX", "(SIZE)")[1][0], b"INBOX (SIZE %d)" % crlf_total)
        self.assertGreater(crlf_total, inbox_stored)

        # STATUS DELETED-STORAGE, then EXPUNGE gives the space back.
        m.select("Archive")
        m.store("1", "+FLAGS", "(\\Deleted)")
        typ, data = m.status("Archive", "(DELETED-STORAGE DELETED)")
        archived = os.path.getsize(next(
            os.path.join(d, f) for d, _, fs in os.walk(os.path.join(self.stack.mail_dir, "tern.test", "small", ".Archive"))
            for f in fs if os.path.basename(d) == "cur"))
        self.assertEqual(data[0], b"Archive (DELETED-STORAGE %d DELETED 1)" % kib(archived))
        m.expunge()
        self.assertEqual(self.quota(m)[0], kib(self.stored_bytes()))
        self.deliver(message("after expunge", 8000))
        self.delivery_log("after-expunge", "sent")
        self.assertEqual(self.quota(m)[0], kib(self.stored_bytes()))
        m.logout()

    def test_setquota_is_refused(self):
        m = self.login(SMALL)
        typ, data = m._simple_command("SETQUOTA", '""', "(STORAGE 100000)")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[NOPERM]", data[0])
        with self.assertRaises(imaplib.IMAP4.error):  # BAD: no limit
            m._simple_command("SETQUOTA", '""', "(STORAGE)")
        typ, data = m.getquota('"other"')
        self.assertEqual(typ, "NO")
        self.assertIn(b"[NONEXISTENT]", data[0])
        m.logout()

    def test_user_without_quota_has_no_quota_root(self):
        m = self.login("demo@tern.test")
        typ, data = m.getquotaroot("INBOX")
        self.assertEqual(typ, "OK")
        self.assertEqual(data, [[b"INBOX"], [None]])
        self.assertEqual(m.getquota('""')[0], "NO")
        self.assertEqual(m.getquotaroot("NoSuchFolder")[0], "NO")
        m.logout()


if __name__ == "__main__":
    unittest.main()
