"""End-to-end tests of master's restart policy (DESIGN.md "Processes",
docs/admin-guide.md "Crashes, restarts and throttling"):

- a worker killed after it served mail is back and serving within a second:
  a new SMTP session works, a new message is delivered;
- killing serving workers again and again never throttles a service, even
  with master_crash_limit = 1;
- a worker that dies right after it said ready is restarted without
  throttling, but paced;
- a real worker that dies at start-up (a bad -o override in services.conf,
  a deterministic fault) is throttled, logged, and shown by mailctl status.

Every kill happens at a fixed point: after a message was accepted and
delivered, with the victim's pid read from `mailctl status`.
"""
import os
import signal
import smtplib
import time
import unittest

from harness import Stack, program_exists

NEEDED = ("master", "smtpd", "qmgr", "local-delivery", "mailctl")
RCPT = "demo@tern.test"
# The restart must not hide behind a long queue backoff.
FAST = {"minimal_backoff_time": "1s", "maximal_backoff_time": "2s", "queue_run_delay": "2s"}
SERVICES = ["smtp inet 127.0.0.1:{port} - 1 smtpd",
            "qmgr unix $run_directory/qmgr.sock - 1 qmgr",
            "local unix $run_directory/local.sock - 1 local-delivery"]
BACK_WITHIN = 1.0  # seconds from the kill until the stack serves again (issue 9)
# Says ready, then dies at once: a crash after start-up.
READY_THEN_DIE = "#!/bin/sh\necho ready >&$TERN_READY_FD\nexit 3\n"


def send(stack, tag, timeout=10):
    """One message over a new SMTP session; returns its token."""
    token = f"rs-{tag}-{time.monotonic_ns()}"
    with smtplib.SMTP("127.0.0.1", stack.port("smtp"), timeout=timeout) as c:
        c.sendmail(RCPT, [RCPT], f"Subject: {token}\r\nMessage-ID: <{token}@restart.test>\r\n\r\n{token}\r\n")
    return token


def delivered(stack, token):
    for path in stack.maildir_new("tern.test", "demo"):
        try:
            with open(path, "rb") as f:
                if token.encode() in f.read():
                    return True
        except FileNotFoundError:  # moved or renamed meanwhile
            continue
    return False


def ready_pid(stack, service):
    """The pid of the service's single worker once it is up and ready."""
    def one():
        svc = stack.status()[service]
        return svc["state"] == "running" and len(svc["pids"]) == 1 and svc["pids"][0]
    return stack.wait_for(one, 10, f"{service} running")


def served_then_killed(test, stack, service):
    """Sends a message, waits for its delivery (every worker did work), then
    kills the service's worker; returns (old pid, kill time)."""
    token = send(stack, "before")
    stack.wait_for(lambda: delivered(stack, token), 10, "delivery before the kill")
    pid = ready_pid(stack, service)
    t_kill = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    return pid, t_kill


def serving_again(test, stack, service, old_pid, t_kill):
    """Waits, with a deadline of BACK_WITHIN after the kill, until a new
    SMTP session has its message accepted and that message is delivered."""
    deadline = t_kill + BACK_WITHIN
    token = None
    while token is None:
        left = deadline - time.monotonic()
        if left <= 0:
            test.fail(f"{service}: no SMTP session accepted a message within {BACK_WITHIN}s of the kill")
        try:
            token = send(stack, service, timeout=left)
        except (OSError, smtplib.SMTPException):
            time.sleep(0.01)
    while not delivered(stack, token):
        if time.monotonic() > deadline:
            test.fail(f"{service}: message not delivered within {BACK_WITHIN}s of the kill")
        time.sleep(0.01)
    elapsed = time.monotonic() - t_kill
    svc = stack.status()[service]
    test.assertNotIn(old_pid, svc["pids"])
    test.assertEqual(svc["last_crash"], "killed by signal 9")
    return elapsed


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "needs " + ", ".join(NEEDED))
class RestartTest(unittest.TestCase):

    def test_killed_serving_worker_is_back_within_a_second(self):
        with Stack(config=FAST, services=SERVICES) as s:
            for service in ("smtp", "qmgr", "local"):
                with self.subTest(service=service):
                    pid, t_kill = served_then_killed(self, s, service)
                    elapsed = serving_again(self, s, service, pid, t_kill)
                    print(f"\n{service}: killed after serving, serving again after {elapsed * 1000:.0f} ms",
                          end="", flush=True)
            self.assertRegex(s.log_text(), r"warning: process \S+/smtpd pid \d+ killed by signal 9\n")
            self.assertNotIn("throttling", s.log_text())

    def test_repeated_kills_of_serving_workers_never_throttle(self):
        # With a crash limit of 1, two counted crashes would throttle.
        config = dict(FAST, master_crash_limit="1", master_restart_backoff_max="60s")
        kills = 4  # per service
        with Stack(config=config, services=SERVICES) as s:
            for round_ in range(kills):
                for service in ("smtp", "qmgr", "local"):
                    pid, t_kill = served_then_killed(self, s, service)
                    serving_again(self, s, service, pid, t_kill)
            st = s.status()
            for service in ("smtp", "qmgr", "local"):
                self.assertEqual(st[service]["state"], "running")
                self.assertEqual(st[service]["restarts"], kills)
            self.assertNotIn("throttling", s.log_text())
            self.assertEqual(s.log_text().count(" killed by signal 9"), 3 * kills)

    def test_worker_dying_right_after_ready_is_paced_not_throttled(self):
        with Stack(config={"master_crash_limit": "1", "master_restart_backoff_max": "60s"},
                   programs={"flaky": READY_THEN_DIE}, services=["flaky none - - 1 flaky"],
                   wait=[]) as s:
            r0 = s.wait_for(lambda: s.status()["flaky"]["restarts"], 10, "a first restart")
            t0 = time.monotonic()
            svc = s.wait_for(lambda: (st := s.status()["flaky"])["restarts"] >= r0 + 8 and st, 10,
                             "eight more restarts of a worker that dies after ready")
            self.assertNotEqual(svc["state"], "throttled")
            self.assertEqual(svc["last_crash"], "exit status 3")
            self.assertNotIn("throttling", s.log_text())
            # Paced: one start per slot per 100 ms at most.
            restarts = s.status()["flaky"]["restarts"] - r0
            elapsed = time.monotonic() - t0
            self.assertLessEqual(restarts, elapsed / 0.1 + 1, f"{restarts} restarts in {elapsed:.2f}s")

    def test_real_worker_dying_at_start_up_is_throttled(self):
        # smtpd told to require TLS without a certificate refuses to start,
        # before it says ready: a deterministic start-up crash of a real worker.
        services = SERVICES + ["broken inet 127.0.0.1:{port} - 1 smtpd -o smtpd_tls_security_level=encrypt "
                               "-o smtpd_tls_cert_file=/nonexistent/cert.pem"]
        with Stack(config={"master_crash_limit": "2", "master_restart_backoff_max": "60s"},
                   services=services, wait=["smtp", "qmgr", "local"]) as s:
            svc = s.wait_for(lambda: (st := s.status()["broken"])["state"] == "throttled" and st, 15,
                             "broken throttled")
            self.assertEqual(svc["pids"], [])
            self.assertRegex(svc["last_crash"],
                             r"^exit status 1 at start-up; throttled after 3 start-up crashes, retry in \d+s$")
            log = s.log_text()
            self.assertIn("warning: service broken: throttling after 3 crashes", log)
            self.assertRegex(log, r"warning: process \S+/smtpd pid \d+ exit status 1 before it was ready")
            self.assertIn("/nonexistent/cert.pem' does not exist", log)
            # The healthy services are not affected, and mail flows.
            token = send(s, "healthy")
            s.wait_for(lambda: delivered(s, token), 10, "delivery while broken is throttled")
            self.assertEqual(s.status()["smtp"]["state"], "running")


if __name__ == "__main__":
    unittest.main()
