"""`make run` on a checkout that ran it before: run/etc/ catches up.

scripts/dev-run start is run with TERN_RUN_DIR pointing at a private
folder prepared the way an older dev-run left it: a services.conf without
the pickup service (on free ports, as the user edited them), a tern.conf
with a user's own value, a users file holding a password hash, and a
CA:TRUE certificate.  After `start`: the new
service was merged in and runs, the user's lines are untouched, the
certificate is a leaf with the names clients verify, and a second start
merges nothing.
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import BUILD, ROOT, free_port, program_exists

DEV_RUN = os.path.join(ROOT, "scripts", "dev-run")


def openssl(*args):
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=True).stdout


@unittest.skipUnless(program_exists("pickup") and program_exists("qmgr"), "needs build/pickup and build/qmgr")
class DevRunRefreshTest(unittest.TestCase):
    def setUp(self):
        self.run_dir = tempfile.mkdtemp(prefix="tern-devrun-")
        self.env = dict(os.environ, TERN_RUN_DIR=self.run_dir)
        self.etc = os.path.join(self.run_dir, "etc")
        os.makedirs(os.path.join(self.etc, "tls"))
        self.addCleanup(shutil.rmtree, self.run_dir, True)
        self.addCleanup(self.dev_run, "stop")

    def dev_run(self, action):
        return subprocess.run([DEV_RUN, action, BUILD], capture_output=True, text=True, env=self.env,
                              timeout=120, cwd=ROOT)

    def old_checkout(self):
        with open(os.path.join(ROOT, "conf/dev/services.conf")) as f:
            services = f.read()
        # An older conf/dev: no pickup service; the user moved every port.
        services = re.sub(r"(?m)^pickup .*\n", "", services)
        services = re.sub(r"127\.0\.0\.1:\d+", lambda m: f"127.0.0.1:{free_port()}", services)
        with open(os.path.join(self.etc, "services.conf"), "w") as f:
            f.write(services)
        with open(os.path.join(ROOT, "conf/dev/tern.conf")) as f:
            conf = f.read()
        conf = conf.replace("queue_run_delay = 30s", "queue_run_delay = 45s")  # the user's choice
        conf = re.sub(r"(?m)^maximal_backoff_time = .*\n", "", conf)     # a key that came later
        with open(os.path.join(self.etc, "tern.conf"), "w") as f:
            f.write(conf)
        shutil.copy(os.path.join(ROOT, "conf/dev", "aliases"), self.etc)
        # An older users file held demo's hash itself (no password file yet).
        with open(os.path.join(ROOT, "conf/dev/passwd")) as f:
            demo = [l for l in f if l.startswith("demo@")][0]
        with open(os.path.join(self.etc, "users"), "w") as f:
            f.write(demo)
        # The certificate an older dev-run made: openssl's default, CA:TRUE.
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                        "-subj", "/CN=mail.tern.test", "-keyout", os.path.join(self.etc, "tls/key.pem"),
                        "-out", os.path.join(self.etc, "tls/cert.pem")], capture_output=True, check=True)
        self.assertIn("CA:TRUE", openssl("x509", "-in", os.path.join(self.etc, "tls/cert.pem"), "-noout",
                                         "-ext", "basicConstraints"))
        return services

    def test_new_services_keys_and_a_leaf_certificate_reach_an_old_run_dir(self):
        services_before = self.old_checkout()
        started = self.dev_run("start")
        self.assertEqual(started.returncode, 0, started.stdout + started.stderr)
        out = started.stdout
        self.assertIn("merge-config: added service pickup", out)
        self.assertIn("merge-config: added key maximal_backoff_time", out)
        self.assertNotIn("queue_run_delay", out)
        self.assertIn("replacing run/etc/tls/cert.pem (a CA certificate)", out)

        with open(os.path.join(self.etc, "services.conf")) as f:
            services = f.read()
        self.assertTrue(services.startswith(services_before), "the user's lines stay as they were")
        self.assertRegex(services, r"(?m)^pickup\s+none")
        with open(os.path.join(self.etc, "tern.conf")) as f:
            conf = f.read()
        self.assertIn("queue_run_delay = 45s", conf)
        self.assertNotIn("queue_run_delay = 30s", conf)

        cert = os.path.join(self.etc, "tls/cert.pem")
        text = openssl("x509", "-in", cert, "-noout", "-ext", "basicConstraints,subjectAltName,extendedKeyUsage")
        self.assertIn("CA:FALSE", text)
        for name in ("DNS:mail.tern.test", "DNS:localhost", "IP Address:127.0.0.1"):
            self.assertIn(name, text)
        self.assertIn("TLS Web Server Authentication", text)
        # A verifying client that trusts this file accepts it for 127.0.0.1.
        verify = subprocess.run(["openssl", "verify", "-CAfile", cert, "-verify_ip", "127.0.0.1",
                                 "-purpose", "sslserver", cert], capture_output=True, text=True)
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)

        status = subprocess.run([os.path.join(BUILD, "mailctl"), "-c", self.etc, "status"],
                                capture_output=True, text=True, timeout=30)
        self.assertRegex(status.stdout, r"(?m)^pickup\s+(running|starting)")
        # The password file arrived; the old users file still logs demo in,
        # and after `mailctl user convert` it holds no hash.
        self.assertTrue(os.path.exists(os.path.join(self.etc, "passwd")))
        mailctl = [os.path.join(BUILD, "mailctl"), "-c", self.etc]
        for step in ("before", "after"):
            check = subprocess.run(mailctl + ["auth", "test", "demo@tern.test", "--password-stdin"], input="demo\n",
                                   capture_output=True, text=True, timeout=30)
            self.assertEqual(check.returncode, 0, step + ": " + check.stdout + check.stderr)
            if step == "before":
                converted = subprocess.run(mailctl + ["user", "convert"], capture_output=True, text=True, timeout=30)
                self.assertIn("moved 1 password hashes", converted.stdout, converted.stderr)
        with open(os.path.join(self.etc, "users")) as f:
            self.assertEqual(f.read(), "demo@tern.test:\n")

        self.assertEqual(self.dev_run("stop").returncode, 0)
        again = self.dev_run("start")
        self.assertEqual(again.returncode, 0, again.stdout + again.stderr)
        self.assertNotIn("merge-config:", again.stdout)
        self.assertNotIn("certificate", again.stdout)


if __name__ == "__main__":
    unittest.main()
