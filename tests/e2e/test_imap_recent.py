"""End-to-end tests of \\Recent (RFC 3501 2.3.2) with Python's imaplib:
the first session that SELECTs a folder after messages arrive sees them as
recent, and only that one; deliveries during a session become recent for
the session that has the folder selected and refreshes first; EXAMINE and
STATUS see unclaimed messages without taking them; a session that ENABLEd
IMAP4rev2 shows no \\Recent (RFC 9051) but still takes its SELECT's messages.
Deliveries are files dropped into the folder's new/ as any delivery agent
does (tmp/ then rename), so imapd finds them by its own rescan.
"""
import imaplib
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, program_exists  # noqa: E402

NEEDED = ("master", "mailctl", "auth", "imapd")
USER, PASSWORD = "demo@tern.test", "demo"


def login():
    m = imaplib.IMAP4("127.0.0.1", RecentTest.port, timeout=10)
    m.login(USER, PASSWORD)
    return m


def recent_of(m):
    """The last '* N RECENT' of the last command (None when there was none)."""
    typ, data = m.response("RECENT")
    return int(data[-1]) if data and data[-1] is not None else None


def flags_by_seq(m):
    typ, data = m.fetch("1:*", "(FLAGS)")
    assert typ == "OK", data
    out = {}
    for item in data:
        if not isinstance(item, bytes):
            continue
        mm = re.match(rb"(\d+) \(FLAGS \(([^)]*)\)\)", item)
        if mm:
            out[int(mm.group(1))] = mm.group(2).decode().split()
    return out


def search(m, *criteria):
    typ, data = m.search(None, *criteria)
    assert typ == "OK", data
    return [int(x) for x in data[0].split()]


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "imapd and auth not built")
class RecentTest(unittest.TestCase):
    port = None

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(config={"imapd_timeout": "2h"})
        cls.stack.start()
        RecentTest.port = cls.stack.port("imap")

    @classmethod
    def tearDownClass(cls):
        cls.stack.__exit__(None, None, None)

    def maildir(self):
        for d in (os.path.join(self.stack.mail_dir, "tern.test", "demo", "Maildir"),
                  os.path.join(self.stack.mail_dir, "tern.test", "demo")):
            if os.path.isdir(os.path.join(d, "cur")):
                return d
        raise AssertionError("no Maildir for demo@tern.test")

    def deliver(self, folder, subject):
        d = os.path.join(self.maildir(), "." + folder)
        name = "%d.M%dP%d.test" % (time.time(), time.monotonic_ns() // 1000, os.getpid())
        with open(os.path.join(d, "tmp", name), "wb") as f:
            f.write(b"From: a@example.org\nSubject: " + subject.encode() + b"\n\nhello\n")
        os.rename(os.path.join(d, "tmp", name), os.path.join(d, "new", name))

    def new_folder(self, name):
        m = login()
        self.assertEqual(m.create(name)[0], "OK")
        for i in range(2):
            m.append(name, None, None, b"Subject: appended %d\r\n\r\nbody\r\n" % i)
        m.logout()

    def test_one_session_sees_each_message_as_recent(self):
        self.new_folder("Rec1")
        a, b = login(), login()
        typ, data = a.select("Rec1")
        self.assertEqual(data, [b"2"])
        self.assertEqual(recent_of(a), 2)
        self.assertEqual(flags_by_seq(a), {1: ["\\Recent"], 2: ["\\Recent"]})
        self.assertEqual(search(a, "RECENT"), [1, 2])
        self.assertEqual(search(a, "NEW"), [1, 2])
        self.assertEqual(search(a, "OLD"), [])
        b.select("Rec1")
        self.assertEqual(recent_of(b), 0)
        self.assertEqual(flags_by_seq(b), {1: [], 2: []})
        self.assertEqual(search(b, "OLD"), [1, 2])

        # A delivery while both have the folder selected: the first to look takes it.
        self.deliver("Rec1", "third")
        a.noop()
        self.assertEqual(a.response("EXISTS")[1][-1], b"3")
        self.assertEqual(recent_of(a), 3)
        b.noop()
        self.assertEqual(b.response("EXISTS")[1][-1], b"3")
        self.assertEqual(recent_of(b), 0)
        self.assertIn("\\Recent", flags_by_seq(a)[3])
        self.assertNotIn("\\Recent", flags_by_seq(b)[3])
        # Reading it: NEW no longer, RECENT still.
        a.store("3", "+FLAGS", "(\\Seen)")
        self.assertEqual(search(a, "NEW"), [1, 2])
        self.assertEqual(search(a, "RECENT"), [1, 2, 3])
        a.logout()
        b.logout()

        # A later session: nothing is recent any more.
        c = login()
        c.select("Rec1")
        self.assertEqual(recent_of(c), 0)
        c.logout()

    def test_examine_and_status_do_not_take_recent(self):
        self.new_folder("Rec2")
        c = login()
        typ, data = c.status("Rec2", "(MESSAGES RECENT UNSEEN)")
        self.assertEqual(typ, "OK")
        self.assertIn(b"RECENT 2", data[0])
        c.select("Rec2", readonly=True)  # EXAMINE
        self.assertEqual(recent_of(c), 2)
        self.assertEqual(flags_by_seq(c), {1: ["\\Recent"], 2: ["\\Recent"]})
        c.close()
        typ, data = c.status("Rec2", "(RECENT)")
        self.assertIn(b"RECENT 2", data[0])
        c.select("Rec2")
        self.assertEqual(recent_of(c), 2)  # EXAMINE left them
        typ, data = c.status("Rec2", "(RECENT)")  # the selected folder: this session's view
        self.assertIn(b"RECENT 2", data[0])
        c.logout()
        d = login()
        typ, data = d.status("Rec2", "(RECENT)")
        self.assertIn(b"RECENT 0", data[0])
        d.logout()

    def test_rev2_session_shows_no_recent_but_takes_them(self):
        self.new_folder("Rec3")
        r2 = login()
        typ, data = r2.enable("IMAP4rev2")
        self.assertEqual(typ, "OK")
        r2.select("Rec3")
        self.assertIsNone(recent_of(r2))
        self.assertEqual(flags_by_seq(r2), {1: [], 2: []})
        self.deliver("Rec3", "third")
        r2.noop()
        self.assertIsNone(recent_of(r2))
        self.assertEqual(flags_by_seq(r2)[3], [])
        r1 = login()
        r1.select("Rec3")
        self.assertEqual(recent_of(r1), 0)
        r1.logout()
        r2.logout()


if __name__ == "__main__":
    unittest.main()
