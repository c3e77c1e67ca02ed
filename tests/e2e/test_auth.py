"""End-to-end tests of the auth daemon and its mailctl commands on a real
stack: `mailctl user add|passwd|del|list`, `mailctl domain`, `mailctl auth
test` against the running daemon and offline, passwords never from argv,
hashes only in the password file (and `mailctl user convert` for an older
users file), the users.lmdb that smtpd reads kept in step, failure delays and blocks per
client address and per user, refused services, and the fail2ban filter
matched by `fail2ban-regex` against the daemon's own log lines.
"""
import os
import re
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import MAILCTL, ROOT, Stack, program_exists  # noqa: E402

NEEDED = ("master", "auth", "mailctl")
FILTER = os.path.join(ROOT, "conf", "fail2ban", "filter.d", "tern-auth.conf")
FAILED = re.compile(r"tern/auth\[\d+\]: authentication failed: user=<([^>]*)>, rip=(\S+), service=(\S+), reason=(.*)$")


def mailctl_in(stack, *args, password=None, timeout=60):
    """mailctl with a password on standard input."""
    return subprocess.run([MAILCTL, "-c", stack.conf_dir] + list(args), input=(password or "") + "\n",
                          capture_output=True, text=True, timeout=timeout)


def auth_test(stack, user, password, *extra):
    return mailctl_in(stack, "auth", "test", user, "--password-stdin", *extra, password=password)


def users_file(stack):
    with open(os.path.join(stack.conf_dir, "users")) as f:
        return f.read()


def passwd_file(stack):
    with open(os.path.join(stack.conf_dir, "passwd")) as f:
        return f.read()


def failed_lines(stack):
    return [FAILED.search(l).groups() for l in stack.log_text().splitlines() if FAILED.search(l)]


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "needs " + ", ".join(NEEDED))
class UserCommands(unittest.TestCase):
    def test_user_lifecycle_through_the_daemon(self):
        cfg = {"virtual_mailbox_domains": "tern.test, $config_directory/domains"}
        with Stack(config=cfg, autostart=False) as s:
            # A listed domains file must exist (smtpd, qmgr refuse to start without it).
            open(os.path.join(s.conf_dir, "domains"), "w").close()
            s.start()
            self.assertIn("succeeded", auth_test(s, "demo@tern.test", "demo").stdout)
            # A new domain, then a user in it; the password arrives on stdin.
            r = s.mailctl("domain", "add", "Example.ORG")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(s.mailctl("domain", "add", "example.org").returncode, 1)
            r = mailctl_in(s, "user", "add", "Alice@example.org", "--password-stdin", "--quota", "10M",
                           password="s3cret pass")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            # The users file (group-readable, compiled for smtpd) has no
            # hash; the password file has it (mode: see the convert test).
            users = users_file(s)
            self.assertRegex(users, r"alice@example\.org::::[^:]*:quota=10M")
            self.assertNotIn("$y$", users)
            self.assertNotIn("s3cret", users)
            self.assertRegex(passwd_file(s), r"(?m)^alice@example\.org:\{YESCRYPT\}\$y\$[^:\n]+$")
            self.assertNotIn("s3cret", passwd_file(s))
            r = auth_test(s, "alice@example.org", "s3cret pass")
            self.assertEqual(r.returncode, 0, r.stdout)
            self.assertIn("mail=" + os.path.join(s.mail_dir, "example.org", "alice"), r.stdout)
            self.assertEqual(auth_test(s, "alice@example.org", "wrong").returncode, 1)
            # list shows the scheme, never the hash.
            r = s.mailctl("user", "list")
            self.assertIn("alice@example.org  YESCRYPT  quota=10485760", r.stdout)
            self.assertNotIn("$y$", r.stdout)
            self.assertIn("example.org  users=1", s.mailctl("domain", "list").stdout)
            # users.lmdb follows: smtpd now accepts mail for the new user.
            if program_exists("smtpd"):
                with smtplib.SMTP("127.0.0.1", s.port("smtp"), timeout=10) as c:
                    c.ehlo("client.example")
                    c.mail("someone@example.net")
                    self.assertEqual(c.rcpt("alice@example.org")[0], 250)
                    self.assertNotEqual(c.rcpt("nobody@example.org")[0], 250)
            # passwd: the old password stops working, the new one works.
            r = mailctl_in(s, "user", "passwd", "alice@example.org", "--password-stdin", password="n3w")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(auth_test(s, "alice@example.org", "s3cret pass").returncode, 1)
            self.assertEqual(auth_test(s, "alice@example.org", "n3w").returncode, 0)
            self.assertIn(":::", users_file(s).split("alice@example.org:")[1])
            self.assertNotIn("$y$", users_file(s))
            # The domain cannot go while it has users; del removes the user.
            self.assertEqual(s.mailctl("domain", "del", "example.org").returncode, 1)
            self.assertEqual(s.mailctl("user", "del", "alice@example.org").returncode, 0)
            self.assertIn("unknown user", auth_test(s, "alice@example.org", "n3w").stdout)
            self.assertNotIn("alice@", passwd_file(s))
            self.assertEqual(s.mailctl("user", "del", "alice@example.org").returncode, 1)
            self.assertEqual(s.mailctl("domain", "del", "example.org").returncode, 0)
            self.assertNotIn("example.org", s.mailctl("domain", "list").stdout)

    def test_refusals(self):
        with Stack(autostart=False) as s:
            # Passwords are never taken from the command line.
            r = s.mailctl("user", "add", "bob@tern.test", "--password", "x")
            self.assertEqual(r.returncode, 2)
            self.assertIn("never taken from the command line", r.stderr)
            r = s.mailctl("auth", "test", "demo@tern.test", "demo")
            self.assertEqual(r.returncode, 2)
            # No terminal and no --password-stdin: refused, nothing written.
            r = s.mailctl("user", "add", "bob@tern.test")
            self.assertEqual(r.returncode, 1)
            self.assertIn("--password-stdin", r.stderr)
            # Not a virtual domain.
            r = mailctl_in(s, "user", "add", "bob@elsewhere.example", "--password-stdin", password="x")
            self.assertEqual(r.returncode, 1)
            self.assertIn("mailctl domain add", r.stderr)
            self.assertNotIn("bob@", users_file(s))
            # domain add needs a domains file in virtual_mailbox_domains.
            self.assertEqual(s.mailctl("domain", "add", "example.org").returncode, 1)
            r = mailctl_in(s, "user", "add", "demo@tern.test", "--password-stdin", password="x")
            self.assertEqual(r.returncode, 1)
            self.assertIn("exists already", r.stderr)

    def test_offline_check_when_the_daemon_is_not_running(self):
        with Stack(autostart=False) as s:
            r = auth_test(s, "demo@tern.test", "demo")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("offline", r.stdout)
            r = auth_test(s, "demo@tern.test", "nope")
            self.assertEqual(r.returncode, 1)
            self.assertIn("offline", r.stdout)
            # New users made while stopped are hashed with the configured scheme.
            with open(os.path.join(s.conf_dir, "tern.conf"), "a") as f:
                f.write("auth_password_scheme = SHA512-CRYPT\n")
            r = mailctl_in(s, "user", "add", "carol@tern.test", "--password-stdin", password="pw")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("carol@tern.test:{SHA512-CRYPT}$6$", passwd_file(s))
            self.assertNotIn("$6$", users_file(s).split("carol@tern.test:")[1])
            self.assertEqual(auth_test(s, "carol@tern.test", "pw").returncode, 0)

    def test_convert_moves_hashes_out_of_an_older_users_file(self):
        with Stack(autostart=False) as s:
            # An older version's layout: the hash in the users file, no password file.
            hash_line = passwd_file(s).strip().split("\n")[-1]
            os.unlink(os.path.join(s.conf_dir, "passwd"))
            with open(os.path.join(s.conf_dir, "users"), "w") as f:
                f.write("# kept\n" + hash_line + "::::quota=5M\n")
            s.start()
            # It still works (with a warning) before the conversion.
            self.assertEqual(auth_test(s, "demo@tern.test", "demo").returncode, 0)
            s.wait_for(lambda: "mailctl user convert" in s.log_text(), 10, "the upgrade warning")
            self.assertIn("1 password hashes: run `mailctl user convert`", s.mailctl("user", "list").stderr)
            r = s.mailctl("user", "convert")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("moved 1 password hashes", r.stdout)
            self.assertEqual(users_file(s), "# kept\ndemo@tern.test:::::quota=5M\n")
            self.assertEqual(passwd_file(s), hash_line + "\n")
            self.assertEqual(os.stat(os.path.join(s.conf_dir, "passwd")).st_mode & 0o777, 0o640)
            self.assertEqual(auth_test(s, "demo@tern.test", "demo").returncode, 0)
            self.assertEqual(auth_test(s, "demo@tern.test", "wrong").returncode, 1)
            self.assertIn("demo@tern.test  SHA512-CRYPT  quota=5242880", s.mailctl("user", "list").stdout)
            # Once is enough: a second run changes nothing.
            r = s.mailctl("user", "convert")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("no password hashes", r.stdout)


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "needs " + ", ".join(NEEDED))
class Throttling(unittest.TestCase):
    CONFIG = {"auth_failure_delay": "150", "auth_failure_delay_max": "600", "auth_failure_limit": "4",
              "auth_block_time": "1h"}

    def test_growing_delay_then_block_per_address(self):
        with Stack(config=self.CONFIG) as s:
            # Delays double per failure: 150, 300, 600 ms (timers never fire early).
            for n, least in enumerate((0.15, 0.30, 0.60)):
                t0 = time.monotonic()
                r = auth_test(s, "demo@tern.test" if n == 0 else f"x{n}@tern.test", "bad", "--rip", "192.0.2.7")
                self.assertEqual(r.returncode, 1)
                self.assertGreaterEqual(time.monotonic() - t0, least)
            # The fourth failure blocks the address: now even the right password fails ...
            auth_test(s, "x4@tern.test", "bad", "--rip", "192.0.2.7")
            r = auth_test(s, "demo@tern.test", "demo", "--rip", "192.0.2.7")
            self.assertEqual(r.returncode, 1)
            self.assertIn("client address blocked", r.stdout)
            # ... while another address still logs in, which clears demo's own count.
            self.assertEqual(auth_test(s, "demo@tern.test", "demo", "--rip", "192.0.2.8").returncode, 0)
            self.assertIn("blocked: user=<x4@tern.test>, rip=192.0.2.7, service=mailctl, "
                          "reason=client address blocked for 3600s", s.log_text())

    def test_block_per_user_across_addresses(self):
        with Stack(config=dict(self.CONFIG, auth_failure_delay="10", auth_failure_delay_max="10")) as s:
            for i in range(4):
                auth_test(s, "demo@tern.test", "guess%d" % i, "--rip", "198.51.100.%d" % (i + 1))
            r = auth_test(s, "demo@tern.test", "demo", "--rip", "198.51.100.50")
            self.assertEqual(r.returncode, 1)
            self.assertIn("user blocked", r.stdout)
            # Another user from a fresh address is not affected.
            mailctl_in(s, "user", "add", "eve@tern.test", "--password-stdin", password="pw")
            self.assertEqual(auth_test(s, "eve@tern.test", "pw", "--rip", "198.51.100.60").returncode, 0)

    def test_unknown_service_and_system_accounts(self):
        with Stack() as s:
            r = auth_test(s, "demo@tern.test", "demo", "--service", "ftp")
            self.assertEqual(r.returncode, 1)
            self.assertIn("not in auth_services", r.stdout)
            # root and daemons never log in (auth_first_valid_uid), whatever the password.
            r = auth_test(s, "root", "whatever")
            self.assertEqual(r.returncode, 1)
            self.assertIn("below auth_first_valid_uid", r.stdout)
            r = auth_test(s, "no-such-login-xyz", "whatever")
            self.assertIn("unknown user", r.stdout)


@unittest.skipUnless(all(program_exists(p) for p in NEEDED) and shutil.which("fail2ban-regex"),
                     "needs " + ", ".join(NEEDED) + " and fail2ban-regex")
class Fail2ban(unittest.TestCase):
    def test_filter_matches_every_failure_line_and_nothing_else(self):
        with Stack(config={"auth_failure_delay": "0", "auth_failure_limit": "0"}) as s:
            auth_test(s, "demo@tern.test", "demo", "--rip", "192.0.2.1")          # success: no match
            auth_test(s, "demo@tern.test", "bad", "--rip", "192.0.2.2")
            auth_test(s, "nobody@tern.test", "bad", "--rip", "2001:db8::3")
            # A hostile user name cannot plant another address in the line.
            auth_test(s, "x>, rip=203.0.113.9, service=imap", "bad", "--rip", "192.0.2.4")
            s.wait_for(lambda: len(failed_lines(s)) == 3, 10, "three failure lines")
            log = s.log_text()
        with tempfile.TemporaryDirectory() as d:
            # fail2ban resolves [INCLUDES] beside the filter: give it Debian's common.conf.
            shutil.copy(FILTER, os.path.join(d, "tern-auth.conf"))
            os.symlink("/etc/fail2ban/filter.d/common.conf", os.path.join(d, "common.conf"))
            logfile = os.path.join(d, "tern.log")
            with open(logfile, "w") as f:
                f.write(log)
            r = subprocess.run(["fail2ban-regex", "-o", "ip", logfile, os.path.join(d, "tern-auth.conf")],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.split(), ["192.0.2.2", "2001:db8::3", "192.0.2.4"])


if __name__ == "__main__":
    unittest.main()
