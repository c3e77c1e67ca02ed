"""End-to-end tests of master's restart policy (DESIGN.md "Processes",
docs/admin-guide.md "Crashes, restarts and throttling"):

- a worker killed after it served mail is replaced at once: master's own
  log says the successor was "started at once" (not after a backoff or the
  restart pace) and when it was ready, both measured with master's clock;
  then a new SMTP session works and a new message is delivered;
- killing serving workers again and again never throttles a service, even
  with master_crash_limit = 1;
- a worker that dies right after it said ready is restarted without
  throttling, but paced;
- a real worker that dies at start-up (a bad -o override in services.conf,
  a deterministic fault) is throttled, logged, and shown by mailctl status.

Every kill happens at a fixed point: after a message was accepted and
delivered, with the victim's pid read from `mailctl status`.  What decides
pass or fail is what master did (its log lines), never how fast a busy
machine ran: the wall-clock bounds are generous, and the times master
measured are printed (issue 9 asks for "back within 1 s"; on a quiet
machine master reports ~10-50 ms from the exit to the successor's "ready").
"""
import os
import re
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
BACK_WITHIN = 1.0  # issue 9: seconds from the kill until the stack serves again (reported, not asserted)
GENEROUS = 30.0   # wall-clock deadline of each step: a loaded machine is slow, not broken
PACE = 0.1        # master's kRespawnPace: a slot is started at most once per 100 ms
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
    stack.wait_for(lambda: delivered(stack, token), GENEROUS, "delivery before the kill")
    pid = ready_pid(stack, service)
    # A slot started less than PACE ago is refilled after the pace, by
    # design: the victim must have been started longer ago than that (the
    # test sets restart_started when the stack is up, master_replaced after
    # each restart).
    time.sleep(max(0.0, stack.restart_started[service] + 2 * PACE - time.monotonic()))
    t_kill = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    return pid, t_kill


def master_replaced(test, stack, service, old_pid):
    """Master's two log lines about old_pid's successor: started at once,
    then ready.  Returns (new pid, ms from the exit to the start, ms from
    the exit to ready), as master measured them."""
    started = re.compile(rf"service {service}: pid (\d+) replaces pid {old_pid}, started (at once|[^(]+) "
                         rf"\((\d+) ms after its exit\)")
    m = stack.wait_for(lambda: started.search(stack.log_text()), GENEROUS, f"{service}: successor of {old_pid}")
    test.assertEqual(m.group(2), "at once", f"{service}: restart held back: {m.group(0)}")
    new_pid = int(m.group(1))
    ready = re.compile(rf"service {service}: pid {new_pid} ready, (\d+) ms after pid {old_pid} exited")
    r = stack.wait_for(lambda: ready.search(stack.log_text()), GENEROUS, f"{service}: pid {new_pid} ready")
    stack.restart_started[service] = time.monotonic()
    return new_pid, int(m.group(3)), int(r.group(1))


def serving_again(test, stack, service, old_pid, t_kill):
    """Checks that master replaced the worker at once, then that a new SMTP
    session has its message accepted and delivered (generous deadlines).
    Returns what master measured and the wall-clock time it all took."""
    new_pid, start_ms, ready_ms = master_replaced(test, stack, service, old_pid)
    deadline = time.monotonic() + GENEROUS
    token = None
    while token is None:
        left = deadline - time.monotonic()
        if left <= 0:
            test.fail(f"{service}: no SMTP session accepted a message within {GENEROUS}s of the restart")
        try:
            token = send(stack, service, timeout=left)
        except (OSError, smtplib.SMTPException):
            time.sleep(0.01)
    stack.wait_for(lambda: delivered(stack, token), GENEROUS, f"{service}: delivery after the restart")
    elapsed = time.monotonic() - t_kill
    svc = stack.status()[service]
    test.assertNotIn(old_pid, svc["pids"])
    test.assertIn(new_pid, svc["pids"])
    test.assertEqual(svc["last_crash"], "killed by signal 9")
    return start_ms, ready_ms, elapsed


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "needs " + ", ".join(NEEDED))
class RestartTest(unittest.TestCase):

    def test_killed_serving_worker_is_back_within_a_second(self):
        with Stack(config=FAST, services=SERVICES) as s:
            s.restart_started = dict.fromkeys(("smtp", "qmgr", "local"), time.monotonic())
            for service in ("smtp", "qmgr", "local"):
                with self.subTest(service=service):
                    pid, t_kill = served_then_killed(self, s, service)
                    start_ms, ready_ms, elapsed = serving_again(self, s, service, pid, t_kill)
                    print(f"\n{service}: killed after serving; master: successor started {start_ms} ms and "
                          f"ready {ready_ms} ms after the exit (goal {BACK_WITHIN * 1000:.0f} ms); mail accepted "
                          f"and delivered again {elapsed * 1000:.0f} ms after the kill", end="", flush=True)
            self.assertRegex(s.log_text(), r"warning: process \S+/smtpd pid \d+ killed by signal 9\n")
            self.assertNotIn("throttling", s.log_text())

    def test_repeated_kills_of_serving_workers_never_throttle(self):
        # With a crash limit of 1, two counted crashes would throttle.
        config = dict(FAST, master_crash_limit="1", master_restart_backoff_max="60s")
        kills = 4  # per service
        with Stack(config=config, services=SERVICES) as s:
            s.restart_started = dict.fromkeys(("smtp", "qmgr", "local"), time.monotonic())
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
