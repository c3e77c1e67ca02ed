"""End-to-end tests of master and mailctl: start, status, stop, crash
restarts and throttling, reload, the single-instance lock, configuration
diagnostics.  Every stack runs in a temporary directory on free loopback
ports (tests/e2e/harness.py)."""
import os
import signal
import socket
import stat
import subprocess
import unittest

from harness import BUILD, IDLE_WORKER as IDLE, MAILCTL, Stack, pid_alive as alive, program_exists

CRASHER = "#!/bin/sh\n# a worker that dies at once, to provoke throttling\nexit 1\n"
# Ready only once the test creates <config dir>/go ($2: master runs it as
# "slow -c CONFIG_DIR -s NAME"); gives up waiting after 30 s.
SLOW = ("#!/bin/sh\n# a worker slow to load its configuration\ni=0\n"
        "while [ ! -e \"$2/go\" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\n"
        "echo ready >&$TERN_READY_FD\nexec sleep 600\n")


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True


class FoundationTest(unittest.TestCase):
    def test_start_status_stop(self):
        with Stack() as s:
            st = s.status()
            self.assertEqual(list(st), s.service_names())
            for name in s.service_names():
                self.assertEqual(st[name]["state"], "running", name)
                self.assertEqual(len(st[name]["pids"]), s.procs_of(name), name)
                self.assertEqual(st[name]["restarts"], 0)
            log = s.log_text()
            self.assertIn(f"daemon started -- version 0.1, configuration {s.conf_dir}", log)
            if os.getuid() != 0:
                self.assertIn("warning: not running as root: services run as", log)
            sock = os.path.join(s.run_dir, "master.sock")
            self.assertEqual(stat.S_IMODE(os.stat(sock).st_mode), 0o600)
            with open(os.path.join(s.run_dir, "master.pid")) as f:
                self.assertEqual(int(f.read().split()[0]), s.master_pid)
            for d in (s.queue_dir, s.data_dir, s.mail_dir):
                self.assertTrue(os.path.isdir(d), d)
            workers = [p for name in st for p in st[name]["pids"]]

            out = s.stop()
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn("tern stopped", out.stdout)
            down = s.mailctl("status")
            self.assertEqual(down.returncode, 3)
            self.assertIn("tern is not running", down.stdout)
            for pid in workers + [s.master_pid]:
                self.assertFalse(alive(pid), f"pid {pid} still runs")
            self.assertFalse(os.path.exists(sock))
            self.assertFalse(os.path.exists(os.path.join(s.run_dir, "master.pid")))
            self.assertIn("daemon stopped", s.log_text())
            self.assertIn("tern is not running", s.stop().stdout)  # stop is idempotent

    @unittest.skipUnless(program_exists("smtpd"), "needs build/smtpd")
    def test_workers_serve_the_passed_socket(self):
        with Stack() as s:
            with socket.create_connection(("127.0.0.1", s.port("smtp")), timeout=5) as c:
                c.settimeout(5)
                self.assertTrue(c.recv(512).startswith(b"220 "))

    def test_killed_worker_is_restarted(self):
        with Stack(procs={"smtp": 2}) as s:
            name = s.service_names()[0]
            before = s.pids(name)
            victim = before[0]
            os.kill(victim, signal.SIGKILL)

            def restarted():
                svc = s.status()[name]
                return (svc["restarts"] == 1 and len(svc["pids"]) == len(before)
                        and victim not in svc["pids"] and svc)
            svc = s.wait_for(restarted, 2, f"{name} restarted after kill -9")
            self.assertEqual(svc["last_crash"], "killed by signal 9")
            # The new worker may still be loading its config: wait until it says ready.
            svc = s.wait_for(lambda: (st := s.status()[name])["state"] == "running" and st, 5,
                             f"{name} running again")
            self.assertIn(before[1], svc["pids"])  # the other worker was left alone
            self.assertRegex(s.log_text(), rf"warning: process \S+ pid {victim} killed by signal 9")

    def test_worker_is_starting_until_it_says_ready(self):
        with Stack(programs={"slow": SLOW, "idle": IDLE},
                   services=["steady none - - 1 idle", "slow inet 127.0.0.1:{port} - 1 slow"],
                   wait=["steady"]) as s:
            svc = s.status()["slow"]
            self.assertEqual(svc["state"], "starting")
            self.assertEqual(len(svc["pids"]), 1)
            self.assertEqual(svc["starting"], svc["pids"])
            pid = svc["pids"][0]
            self.assertRegex(s.mailctl("status").stdout, rf"\nslow\s+starting\s+{pid}\*\s")
            # The port accepts already: master owns it, so it proves nothing.
            socket.create_connection(("127.0.0.1", s.port("slow")), timeout=2).close()
            self.assertEqual(s.status()["slow"]["state"], "starting")

            open(os.path.join(s.conf_dir, "go"), "w").close()
            s.wait_ready(["slow"], 10)
            svc = s.status()["slow"]
            self.assertEqual((svc["state"], svc["pids"], svc["starting"], svc["restarts"]),
                             ("running", [pid], [], 0))
            self.assertRegex(s.mailctl("status").stdout, rf"\nslow\s+running\s+{pid}\s")

    def test_sighup_reload_restarts_only_the_changed_service(self):
        with Stack(procs={"smtp": 2}) as s:
            names = s.service_names()
            self.assertGreaterEqual(len(names), 2, "needs two services")
            changed = names[0]
            before = {n: s.pids(n) for n in names}
            fields = next(l for l in s.services if l.split()[0] == changed).split()
            fields[4] = "1"
            s.set_service(changed, " ".join(fields))
            os.kill(s.master_pid, signal.SIGHUP)

            def reloaded():
                st = s.status()
                svc = st[changed]
                return (len(svc["pids"]) == 1 and not set(svc["pids"]) & set(before[changed])
                        and svc["state"] == "running" and st)
            st = s.wait_for(reloaded, 10, f"{changed} restarted with 1 process")
            for n in names[1:]:
                self.assertEqual(st[n]["pids"], before[n], f"{n} must keep its processes")
            self.assertEqual(st[changed]["restarts"], 0)  # a reload is not a crash
            self.assertIn("reload: 0 added, 1 changed, 0 removed", s.log_text())

    def test_reload_adds_and_removes_services(self):
        with Stack(programs={"idle": IDLE},
                   services=["keep none - - 1 idle", "gone unix $run_directory/gone.sock - 1 idle"]) as s:
            keep = s.pids("keep")
            gone = s.pids("gone")
            s.services = ["keep none - - 1 idle", "fresh inet 127.0.0.1:{port} - 2 idle"]
            s.services[1] = s._fill_ports(s.services[1])
            s.write_services()
            self.assertEqual(s.mailctl("reload").returncode, 0)
            s.wait_ready(["keep", "fresh"])
            st = s.status()
            self.assertEqual(list(st), ["keep", "fresh"])
            self.assertEqual(st["keep"]["pids"], keep)
            s.wait_for(lambda: not [p for p in gone if alive(p)], 10, "removed service stopped")
            self.assertFalse(os.path.exists(os.path.join(s.run_dir, "gone.sock")))
            self.assertIn("reload: 1 added, 0 changed, 1 removed, 1 unchanged", s.log_text())

    def test_reload_hands_sockets_over(self):
        with Stack(programs={"idle": IDLE},
                   services=["a inet 127.0.0.1:{port} - 1 idle", "b unix $run_directory/b.sock - 1 idle"]) as s:
            p = s.port("a")
            old_a = s.pids("a")
            # a gains a second address while its first stays bound by the old
            # worker; c takes over b's socket as b goes away.
            s.services = [s._fill_ports(f"a inet 127.0.0.1:{p},127.0.0.1:{{port}} - 1 idle"),
                          "c unix $run_directory/b.sock - 1 idle"]
            s.write_services()
            out = s.mailctl("reload")
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            s.wait_ready(["a", "c"])
            st = s.status()
            self.assertNotEqual(st["a"]["pids"], old_a)
            q = int(st["a"]["listen"].split(",")[1].rsplit(":", 1)[1])
            for port in (p, q):
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
            with socket.socket(socket.AF_UNIX) as u:
                u.connect(os.path.join(s.run_dir, "b.sock"))
            self.assertNotIn("error", s.log_text())

    def test_tern_conf_change_restarts_every_service(self):
        with Stack() as s:
            before = {n: set(s.pids(n)) for n in s.service_names()}
            s.config["smtpd_banner"] = "$myhostname ESMTP reloaded"
            s.write_config()
            self.assertEqual(s.mailctl("reload").returncode, 0)

            def all_new():
                st = s.status()
                return all(st[n]["state"] == "running" and st[n]["pids"]
                           and not set(st[n]["pids"]) & before[n] for n in before)
            s.wait_for(all_new, 10, "every service restarted")
            self.assertIn(f"0 added, {len(before)} changed, 0 removed, 0 unchanged", s.log_text())

    def test_mailctl_reload_moves_a_port(self):
        with Stack() as s:
            inet = [n for n in s.service_names() if n in ("smtp", "submission", "smtps")]
            if not inet:
                self.skipTest("needs an inet service (build/smtpd)")
            name = inet[-1]
            old_port = s.port(name)
            others = {n: s.pids(n) for n in s.service_names() if n != name}
            line = next(l for l in s.services if l.split()[0] == name)
            s.set_service(name, line.replace(f":{old_port} ", ":{port} ", 1))
            new_port = s.port(name)
            out = s.mailctl("reload")
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertIn("tern reloaded", out.stdout)
            s.wait_ready([name])
            # Retiring workers hold the old socket until they have drained.
            s.wait_for(lambda: refused(old_port), 10, f"old port {old_port} closed")
            socket.create_connection(("127.0.0.1", new_port), timeout=2).close()
            for n, pids in others.items():
                self.assertEqual(s.pids(n), pids, n)

    def test_reload_with_bad_config_keeps_running(self):
        with Stack() as s:
            before = {n: s.pids(n) for n in s.service_names()}
            with open(os.path.join(s.conf_dir, "tern.conf"), "a") as f:
                f.write("no_such_key = 1\n")
            out = s.mailctl("reload")
            self.assertEqual(out.returncode, 1)
            self.assertRegex(out.stderr, r"tern\.conf:\d+: .*no_such_key")
            os.kill(s.master_pid, signal.SIGHUP)
            s.wait_for(lambda: "reload failed" in s.log_text(), 5, "reload failure logged")
            self.assertEqual({n: s.pids(n) for n in s.service_names()}, before)

    def test_second_master_is_refused(self):
        with Stack() as s:
            out = s.mailctl("start")
            self.assertEqual(out.returncode, 1)
            self.assertIn(f"tern is already running (pid {s.master_pid})", out.stderr)
            # master itself refuses too (the pid lock), not only mailctl's check.
            direct = subprocess.run([os.path.join(BUILD, "master"), "-c", s.conf_dir, "-d"],
                                    capture_output=True, text=True, timeout=30)
            self.assertEqual(direct.returncode, 1)
            self.assertIn(f"tern is already running (pid {s.master_pid})", direct.stderr)
            self.assertEqual(s.status()[s.service_names()[0]]["state"], "running")

    def test_bad_config_refuses_to_start(self):
        with Stack(config={"no_such_key": "1", "master_crash_limit": "lots"}, autostart=False) as s:
            out = s.mailctl("start")
            self.assertEqual(out.returncode, 1)
            conf = os.path.join(s.conf_dir, "tern.conf")
            self.assertRegex(out.stderr, re_line(conf) + r".*no_such_key")
            self.assertRegex(out.stderr, re_line(conf) + r".*master_crash_limit")
            self.assertEqual(s.mailctl("status").returncode, 3)

    def test_bad_services_line_refuses_to_start(self):
        with Stack(extra_services=["broken inet nowhere - 1 smtpd"], autostart=False) as s:
            out = s.mailctl("start")
            self.assertEqual(out.returncode, 1)
            self.assertRegex(out.stderr, re_line(os.path.join(s.conf_dir, "services.conf")))
            self.assertEqual(s.mailctl("status").returncode, 3)

    def test_config_check_and_values(self):
        with Stack(autostart=False) as s:
            ok = s.mailctl("config", "check")
            self.assertEqual(ok.returncode, 0, ok.stderr)
            self.assertIn("configuration OK", ok.stdout)
            one = s.mailctl("config", "myhostname", "master_crash_limit")
            self.assertEqual(one.stdout, "myhostname = mail.tern.test\nmaster_crash_limit = 5\n")
            nondefault = s.mailctl("config", "-n").stdout
            self.assertIn("myhostname = mail.tern.test\n", nondefault)
            self.assertNotIn("master_crash_limit", nondefault)
            self.assertIn("master_crash_window = 60s", s.mailctl("config").stdout)
            self.assertEqual(s.mailctl("config", "no_such_key").returncode, 1)

            with open(os.path.join(s.conf_dir, "tern.conf"), "a") as f:
                f.write("bogus_key = 2\nmaster_stop_timeout = soon\n")
            s.services += ["dup none - - 1 smtpd", "dup none - - 1 smtpd"]  # duplicate name
            s.write_services()
            bad = s.mailctl("config", "check")
            self.assertEqual(bad.returncode, 1)
            conf = os.path.join(s.conf_dir, "tern.conf")
            self.assertRegex(bad.stderr, re_line(conf) + r".*bogus_key")
            self.assertRegex(bad.stderr, re_line(conf) + r".*master_stop_timeout")
            self.assertRegex(bad.stderr, re_line(os.path.join(s.conf_dir, "services.conf")))

    def test_status_when_down(self):
        with Stack(autostart=False) as s:
            out = s.mailctl("status")
            self.assertEqual(out.returncode, 3)
            self.assertEqual(out.stdout.strip(), "tern is not running")
            self.assertEqual(s.mailctl("reload").returncode, 3)

    def test_crashing_service_is_throttled(self):
        with Stack(config={"master_crash_limit": "2", "master_restart_backoff_max": "60s"},
                   programs={"crasher": CRASHER, "idle": IDLE},
                   services=["steady none - - 1 idle", "crashy none - - 1 crasher"],
                   wait=["steady"]) as s:
            svc = s.wait_for(lambda: s.status()["crashy"]["state"] == "throttled" and s.status()["crashy"],
                             10, "crashy throttled")
            self.assertRegex(svc["last_crash"],
                             r"^exit status 1 at start-up; throttled after 3 start-up crashes, retry in \d+s$")
            self.assertEqual(svc["pids"], [])
            self.assertIn("warning: service crashy: throttling after 3 crashes", s.log_text())
            # It never said it was ready, and the log says so.
            self.assertRegex(s.log_text(), r"warning: process \S+/crasher pid \d+ exit status 1 before it was ready")
            self.assertEqual(s.status()["steady"]["state"], "running")
            self.assertRegex(s.mailctl("status").stdout,
                             r"crashy\s+throttled\s+-\s+-\s+2\s+-\s+exit status 1 at start-up; throttled")

    def test_sigterm_stops_everything(self):
        with Stack() as s:
            workers = [p for n in s.service_names() for p in s.pids(n)]
            os.kill(s.master_pid, signal.SIGTERM)
            s.wait_for(lambda: s.mailctl("status").returncode == 3, 15, "master gone")
            s.wait_for(lambda: not [p for p in workers if alive(p)], 10, "workers gone")
            for name in s.service_names():
                if " unix " in next(l for l in s.services if l.split()[0] == name):
                    self.assertFalse(os.path.exists(s.socket_path(name)), name)

    def test_killed_master_takes_its_workers_and_restarts_cleanly(self):
        with Stack() as s:
            workers = [p for n in s.service_names() for p in s.pids(n)]
            old_master = s.master_pid
            os.kill(old_master, signal.SIGKILL)
            # PR_SET_PDEATHSIG: the workers stop with their master.
            s.wait_for(lambda: not [p for p in workers if alive(p)], 10, "orphaned workers gone")
            down = s.mailctl("status")  # a stale master.sock is no master
            self.assertEqual(down.returncode, 3, down.stdout + down.stderr)
            s.start()  # stale pid file and sockets do not block a new start
            self.assertNotEqual(s.master_pid, old_master)

    def test_help_texts(self):
        top = subprocess.run([MAILCTL, "--help"], capture_output=True, text=True)
        self.assertEqual(top.returncode, 0)
        for word in ("start", "stop", "reload", "status", "config", "Exit status", "3 tern is not running"):
            self.assertIn(word, top.stdout)
        for cmd in ("start", "stop", "reload", "status", "config"):
            a = subprocess.run([MAILCTL, cmd, "--help"], capture_output=True, text=True)
            b = subprocess.run([MAILCTL, "help", cmd], capture_output=True, text=True)
            self.assertEqual(a.returncode, 0)
            self.assertTrue(a.stdout.startswith(f"usage: mailctl {cmd}"), a.stdout)
            self.assertEqual(a.stdout, b.stdout)
        bad = subprocess.run([MAILCTL, "frobnicate"], capture_output=True, text=True)
        self.assertEqual(bad.returncode, 2)


def re_line(path):
    """Regex for 'PATH:LINE:' diagnostics."""
    import re
    return re.escape(path) + r":\d+:"


if __name__ == "__main__":
    unittest.main()
