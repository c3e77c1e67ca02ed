"""Privilege separation, proven on real processes: master stays root, every
worker runs with exactly its service user's uid, gid and groups, and a
worker whose user cannot be taken on never runs at all.

Only meaningful as root (CI runs as root); skipped otherwise.  Uses the
system user `nobody`, which every Debian system has.  The harness gives
each such stack its own daemon_directory (links or copies of the build
programs in the 0755 temp dir), so the drop is proven even when the
checkout lives where `nobody` cannot go (a clone under a 0700 /root).
"""
import os
import pwd
import smtplib
import socket
import unittest

from harness import BUILD, IDLE_WORKER as IDLE, Stack, proc_status, program_exists


def proc_ids(pid):
    """(uids, gids, groups) of a process from /proc/<pid>/status."""
    fields = proc_status(pid)
    return ([int(x) for x in fields["Uid"]], [int(x) for x in fields["Gid"]],
            sorted(int(x) for x in fields.get("Groups", [])))


def expected_groups(user):
    pw = pwd.getpwnam(user)
    return sorted(set([pw.pw_gid] + os.getgrouplist(user, pw.pw_gid)))


@unittest.skipUnless(os.geteuid() == 0, "privilege drop can only be tested as root")
class PrivilegesTest(unittest.TestCase):
    def setUp(self):
        try:
            self.nobody = pwd.getpwnam("nobody")
        except KeyError:
            self.skipTest("no user 'nobody' on this system")

    def test_workers_run_as_their_service_user(self):
        with Stack(programs={"idle": IDLE}, config={"default_user": "nobody"},
                   services=["unprivileged none - nobody 2 idle",
                             "rooted unix $run_directory/rooted.sock root 1 idle"]) as s:
            self.assertEqual(proc_ids(s.master_pid)[0], [0, 0, 0, 0])
            for pid in s.pids("unprivileged"):
                uids, gids, groups = proc_ids(pid)
                self.assertEqual(uids, [self.nobody.pw_uid] * 4, f"pid {pid}")
                self.assertEqual(gids, [self.nobody.pw_gid] * 4, f"pid {pid}")
                self.assertNotIn(0, groups, "root's groups must be gone")
                self.assertEqual(groups, expected_groups("nobody"))
            # A root service keeps root: the drop follows services.conf.
            self.assertEqual(proc_ids(s.pids("rooted")[0])[0], [0, 0, 0, 0])
            self.assertNotIn("not running as root", s.log_text())
            # Service sockets belong to default_user, whom internal clients run as.
            st = os.stat(s.socket_path("rooted"))
            self.assertEqual((st.st_uid, st.st_mode & 0o777), (self.nobody.pw_uid, 0o660))
            self.assertEqual(os.stat(s.queue_dir).st_uid, self.nobody.pw_uid)

    def test_unknown_user_never_runs(self):
        with Stack(programs={"idle": IDLE},
                   services=["steady none - root 1 idle",
                             "ghost none - tern-no-such-user 1 idle"],
                   wait=["steady"]) as s:
            svc = s.wait_for(lambda: s.status()["ghost"]["last_crash"] and s.status()["ghost"],
                             10, "ghost refused")
            self.assertEqual(svc["pids"], [])
            self.assertIn("tern-no-such-user", svc["last_crash"])
            self.assertIn("cannot drop privileges to user tern-no-such-user", s.log_text())

    @unittest.skipUnless(program_exists("smtpd"), "needs build/smtpd")
    def test_real_smtpd_serves_as_nobody(self):
        with Stack(config={"default_user": "nobody", "vmail_user": "nobody"},
                   services=["smtp inet 127.0.0.1:{port} - 1 smtpd"]) as s:
            pid = s.pids("smtp")[0]
            self.assertEqual(proc_ids(pid)[0], [self.nobody.pw_uid] * 4)
            # It runs from the stack's own daemon_directory, not the checkout.
            self.assertNotEqual(s.daemon_dir, BUILD)
            self.assertEqual(os.readlink(f"/proc/{pid}/exe"), os.path.join(s.daemon_dir, "smtpd"))
            # master made the queue for the user that writes it.
            self.assertEqual(os.stat(s.queue_dir).st_uid, self.nobody.pw_uid)
            with socket.create_connection(("127.0.0.1", s.port("smtp")), timeout=5) as c:
                c.settimeout(5)
                self.assertTrue(c.recv(512).startswith(b"220 "))

    @unittest.skipUnless(all(program_exists(p) for p in ("smtpd", "qmgr", "local-delivery")),
                         "needs build/smtpd, qmgr and local-delivery")
    def test_mail_flows_with_privileges_dropped(self):
        with Stack(config={"default_user": "nobody", "vmail_user": "nobody"}) as s:
            for name in ("smtp", "qmgr"):
                self.assertEqual(proc_ids(s.pids(name)[0])[0], [self.nobody.pw_uid] * 4, name)
            with smtplib.SMTP("127.0.0.1", s.port("smtp"), timeout=10) as c:
                c.sendmail("someone@example.org", ["demo@tern.test"],
                           "Subject: privileges\r\n\r\nhello\r\n")
            files = s.wait_for(lambda: s.maildir_new("tern.test", "demo"), 15, "delivery to demo")
            self.assertEqual(os.stat(files[0]).st_uid, self.nobody.pw_uid)  # written as vmail_user


if __name__ == "__main__":
    unittest.main()
