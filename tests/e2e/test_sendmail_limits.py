"""Per-uid send limits for sendmail (qmgr's pickup): two unprivileged
users submit through sendmail as themselves; the one that goes over
sendmail_message_limit is blocked (one log line, `mailctl block list`
shows `uid N`), its extra files wait in the maildrop, the other user and
root are not affected, and `mailctl block clear N` lets the waiting mail
through.  Needs root (to run sendmail as other users); skipped otherwise.
"""
import os
import pwd
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, Stack, program_exists  # noqa: E402
from test_sendmail import maildrop_files, maildrop_ready  # noqa: E402

NEEDED = ("master", "smtpd", "qmgr", "local-delivery", "mailctl", "sendmail")
USERS = ("nobody", "daemon")


def _users():
    try:
        return [pwd.getpwnam(u) for u in USERS]
    except KeyError:
        return None


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "needs " + ", ".join(NEEDED))
@unittest.skipUnless(os.geteuid() == 0, "needs root to run sendmail as two unprivileged users")
@unittest.skipUnless(_users(), f"needs the system users {', '.join(USERS)}")
class SendmailLimits(unittest.TestCase):
    def setUp(self):
        self.stack = Stack(config={"sendmail_message_limit": "3", "sendmail_recipient_limit": "100",
                                   "minimal_backoff_time": "1s", "queue_run_delay": "1s"})
        self.stack.__enter__()
        self.addCleanup(self.stack.__exit__, None, None, None)
        maildrop_ready(self.stack)
        s = self.stack
        # What setup-system arranges with a setgid sendmail, made simple:
        # every user may drop files (sticky: none may remove another's).
        os.chmod(s.queue_dir, 0o755)
        os.chmod(os.path.join(s.queue_dir, "maildrop"), 0o1733)
        # The build tree may sit where other users cannot go (/root).
        self.sendmail = os.path.join(s.base, "sendmail")
        shutil.copy(os.path.join(BUILD, "sendmail"), self.sendmail)
        os.chmod(self.sendmail, 0o755)

    def submit(self, user, n, subject):
        for i in range(n):
            kw = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user else {}
            proc = subprocess.run([self.sendmail, "-c", self.stack.conf_dir, "-f", "demo@tern.test", "demo@tern.test"],
                                  input=f"Subject: {subject} {i}\n\nfrom {subject}\n".encode(),
                                  capture_output=True, timeout=30, cwd="/", **kw)
            self.assertEqual(proc.returncode, 0, proc.stderr)

    def delivered(self, subject):
        n = 0
        for path in self.stack.maildir_new("tern.test", "demo"):
            with open(path, "rb") as f:
                if f"Subject: {subject} ".encode() in f.read():
                    n += 1
        return n

    def test_burst_by_one_uid_is_held_until_cleared(self):
        s = self.stack
        first, second = _users()
        self.submit(first, 5, "burst")
        s.wait_for(lambda: self.delivered("burst") >= 3, 20, "three messages of the bursting user")
        line = s.wait_for(lambda: re.search(r"maildrop file \S+: uid %d over the sendmail limit \(message rate "
                                            r"4/3600s exceeds limit 3\): held in the maildrop" % first.pw_uid,
                                            s.log_text()), 20, "the block's log line")
        self.assertTrue(line)
        # The other user and root are not held back.
        self.submit(second, 2, "other")
        self.submit(None, 4, "root")
        s.wait_for(lambda: self.delivered("other") == 2 and self.delivered("root") == 4, 20,
                   "the other user's and root's mail")
        # Still exactly three of the burst, two files waiting, one log line,
        # after scans that saw them (queue_run_delay 1s; the other mail went
        # through those scans).
        self.assertEqual(self.delivered("burst"), 3)
        self.assertEqual(len(maildrop_files(s)), 2)
        self.assertEqual(len(re.findall(r"uid %d over the sendmail limit" % first.pw_uid, s.log_text())), 1)
        listing = s.mailctl("block", "list", check=True).stdout
        self.assertRegex(listing, r"(?m)^uid %d until .*message rate 4/3600s exceeds limit 3" % first.pw_uid)
        self.assertNotIn(f"uid {second.pw_uid} ", listing)
        self.assertNotIn("uid 0 ", listing)

        out = s.mailctl("block", "clear", str(first.pw_uid), check=True)
        self.assertEqual(out.returncode, 0)
        s.wait_for(lambda: self.delivered("burst") == 5, 20, "the held messages after block clear")
        s.wait_for(lambda: not maildrop_files(s), 10, "an empty maildrop")
        self.assertEqual(s.mailctl("block", "list", check=True).stdout.strip(), "No blocks")


if __name__ == "__main__":
    unittest.main()
