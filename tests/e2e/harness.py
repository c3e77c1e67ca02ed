"""The end-to-end harness: a whole tern stack in a temporary directory.

    from harness import Stack

    with Stack() as s:                      # writes the config, starts, waits until ready
        smtp = socket.create_connection(("127.0.0.1", s.port("smtp")))
        ...
        s.wait_for(lambda: s.maildir_new("tern.test", "demo"), 10, "delivery to demo")

What a Stack is:
- a temporary directory holding etc/ (tern.conf, services.conf, users,
  aliases, tls/cert.pem + key.pem), spool/, lib/, state/ (run_directory),
  mail/ (mail_directory), log/tern.log (log_target);
- tern.conf: every directory inside it, daemon_directory = the build folder
  ($TERN_BUILD, set by tests/run; default build/), default_user and
  vmail_user = the current user, myhostname = mail.tern.test,
  virtual_mailbox_domains = tern.test, plus `config={key: value}`;
- services.conf: smtp, submission, smtps on free loopback ports, qmgr and
  local and auth on UNIX sockets in run_directory, imap, imaps, pop3 and pop3s on free
  loopback ports -- only those whose program exists
  in the build folder.  `procs={"smtp": 1}` changes process counts;
  `services=[lines]` replaces the whole file (a "{port}" in a line becomes a
  fresh free port); `extra_services=[lines]` appends lines;
- `programs={"name": "#!/bin/sh ..."}` adds test programs: daemon_directory
  then becomes a private folder of symlinks to every build program plus
  these scripts (for supervision tests: a worker that crashes at once).  A
  test worker that should count as up must say so like a real one:
  `echo ready >&$TERN_READY_FD` (IDLE_WORKER does);
- when master is root and some service runs as another user (privilege
  tests), daemon_directory is a private folder of hard links (or copies) of
  the build programs inside the stack's 0755 temp dir, so a dropped worker
  can exec its program wherever the checkout lives (e.g. under a 0700 /root);
- users file (demo@tern.test, password "demo") and aliases file.

start() runs `mailctl start` and waits (polling, bounded) until `mailctl
status` shows every service "running": all its processes up and each one
has told master it is ready (config loaded, listeners taken: lib/daemon's
notify_ready).  A listening port proves nothing -- master opens it before
any worker runs.  `wait=` names the services to wait for (default: all).
stop() runs `mailctl stop`.  Leaving the with-block always stops the stack
and kills every process still running with this stack's configuration
directory on its command line; when the block raised, the tail of the log
is printed to help the reader.  No fixed sleeps: everything polls a
condition with a deadline.
"""
import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get("TERN_BUILD") or os.path.join(ROOT, "build"))
MAILCTL = os.path.join(BUILD, "mailctl")

# demo@tern.test's password is "demo" (SHA512-crypt, as in conf/dev/passwd).
DEMO_USERS = "demo@tern.test:\n"
DEMO_PASSWD = ("demo@tern.test:{SHA512-CRYPT}$6$3brT4zVUneoOKHFN$xQfKfRFfBKSh1Su/8A0QftHF2l3/"
               "bbEbTnLDVplTAH/1JVA6LedpszczOVI9IrK2yPOWxNk.CfzbCgU2m0Jdj0\n")
DEMO_ALIASES = "postmaster: demo@tern.test\nroot: demo@tern.test\n"

# A test worker that stays up after telling master it is ready.
IDLE_WORKER = "#!/bin/sh\n# a worker that just stays up\necho ready >&$TERN_READY_FD\nexec sleep 600\n"

_cert_cache = None
_live_stacks = set()


def _cleanup_at_exit():
    for stack in list(_live_stacks):
        stack.kill_leftovers()
    if _cert_cache:  # the run's self-signed certificate (_self_signed_cert)
        shutil.rmtree(_cert_cache, ignore_errors=True)


def _terminate(signo, frame):
    # `timeout` or a CI runner stopping the tests: unwind through every
    # with-block (their __exit__ stops the stacks), then the atexit sweep.
    raise SystemExit(128 + signo)


atexit.register(_cleanup_at_exit)
try:
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)
except ValueError:  # not the main thread
    pass


_given_ports = set()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now and that
    this test run has not handed out before (the kernel may offer the same
    ephemeral port twice in a row, e.g. to two services of one stack)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _given_ports:
            _given_ports.add(port)
            return port
    raise StackError("no fresh free port after 100 tries")


def program_exists(name):
    return os.access(os.path.join(BUILD, name), os.X_OK)


@contextlib.contextmanager
def fault_armed(point):
    """Arms the test-only fault point `point` (lib/sys/fault.hpp) for the
    stacks started inside: TERN_FAULT_<point> names a marker file in the
    environment master inherits, and the first process to reach the point
    removes the file and dies.  Yields the marker's path (gone = it fired)."""
    marker_dir = tempfile.mkdtemp(prefix="tern-fault-")
    marker = os.path.join(marker_dir, "armed")
    with open(marker, "w"):
        pass
    var = "TERN_FAULT_" + point
    os.environ[var] = marker
    try:
        yield marker
    finally:
        os.environ.pop(var, None)
        if os.path.exists(marker):
            os.unlink(marker)
        os.rmdir(marker_dir)


def current_user():
    return pwd.getpwuid(os.getuid()).pw_name


def _self_signed_cert():
    """One self-signed certificate per test run (generating is slow-ish)."""
    global _cert_cache
    if _cert_cache is None:
        d = tempfile.mkdtemp(prefix="tern-e2e-cert-")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=mail.tern.test", "-keyout", os.path.join(d, "key.pem"),
                        "-out", os.path.join(d, "cert.pem")],
                       check=True, capture_output=True, timeout=60)
        _cert_cache = d
    return _cert_cache


def pid_alive(pid):
    """False for a pid that is gone or a zombie nobody reaped yet."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rfind(")") + 2:][:1] != "Z"


def tls_context():
    """A client TLS context for the stack's self-signed certificate (the
    tests check what the server does, not its certificate)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def proc_status(pid):
    """The fields of /proc/PID/status, each split into words:
    {"Uid": ["0", "0", "0", "0"], "Groups": [...], ...}."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    return fields


def process_name(pid):
    """The command name of a process (/proc/PID/comm), "" when it is gone."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def stop_processes(procs, timeout=10):
    """Terminates helper processes (Popen objects): SIGTERM to all first,
    then each gets `timeout` seconds before SIGKILL."""
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class StackError(Exception):
    pass


class Stack:
    def __init__(self, config=None, services=None, extra_services=None, procs=None, programs=None,
                 autostart=True, wait=None, keep=False):
        self.autostart = autostart
        self.wait_services = wait
        self.keep = keep or os.environ.get("TERN_E2E_KEEP") == "1"
        self.base = tempfile.mkdtemp(prefix="tern-e2e-")
        # Services may run as another user (privilege tests): let them in.
        os.chmod(self.base, 0o755)
        self.conf_dir = os.path.join(self.base, "etc")
        self.queue_dir = os.path.join(self.base, "spool")
        self.data_dir = os.path.join(self.base, "lib")
        self.run_dir = os.path.join(self.base, "state")
        self.mail_dir = os.path.join(self.base, "mail")
        self.log_dir = os.path.join(self.base, "log")
        self.log_path = os.path.join(self.log_dir, "tern.log")
        self.daemon_dir = BUILD
        self.programs = programs or {}
        self.seen_pids = set()
        self.master_pid = None
        _live_stacks.add(self)
        os.makedirs(os.path.join(self.conf_dir, "tls"))
        os.makedirs(self.log_dir)
        os.chmod(self.log_dir, 0o777)  # workers that dropped to another user still log
        user = current_user()
        self.config = {
            "myhostname": "mail.tern.test",
            "mydomain": "tern.test",
            "virtual_mailbox_domains": "tern.test",
            "daemon_directory": self.daemon_dir,
            "queue_directory": self.queue_dir,
            "data_directory": self.data_dir,
            "run_directory": self.run_dir,
            "mail_directory": self.mail_dir,
            "mail_spool_directory": os.path.join(self.mail_dir, "spool"),
            "log_target": self.log_path,
            "default_user": user,
            "vmail_user": user,
            "master_stop_timeout": "5s",
        }
        self.config.update(config or {})
        self.services = []  # services.conf lines
        if services is not None:
            self.services = [self._fill_ports(l) for l in services]
        else:
            self.services = self._default_services(procs or {})
        self.services += [self._fill_ports(l) for l in (extra_services or [])]
        if self.programs or self.drops_privileges():
            self._make_daemon_dir(self.programs, copy=self.drops_privileges())
            if "daemon_directory" not in (config or {}):
                self.config["daemon_directory"] = self.daemon_dir
        self.write_config()
        self.write_services()
        with open(os.path.join(self.conf_dir, "users"), "w") as f:
            f.write(DEMO_USERS)
        with open(os.path.join(self.conf_dir, "passwd"), "w") as f:
            f.write(DEMO_PASSWD)
        with open(os.path.join(self.conf_dir, "aliases"), "w") as f:
            f.write(DEMO_ALIASES)
        cert = _self_signed_cert()
        for name in ("cert.pem", "key.pem"):
            shutil.copy(os.path.join(cert, name), os.path.join(self.conf_dir, "tls", name))
            # Workers read it after dropping to their user (privilege tests).
            os.chmod(os.path.join(self.conf_dir, "tls", name), 0o644)

    # --- configuration ---------------------------------------------------

    def drops_privileges(self):
        """True when master (root) will run some worker as another user."""
        if os.geteuid() != 0:
            return False
        me = current_user()
        for line in self.services:
            f = line.split()
            if len(f) < 4:
                continue
            user = self.config.get("default_user", me) if f[3] == "-" else f[3]
            if user != me:
                return True
        return False

    def _make_daemon_dir(self, programs, copy=False):
        """A private daemon_directory: the build programs (symlinks, or with
        copy= hard links falling back to copies, so that a worker dropped to
        another user can exec them through this 0755 path) plus programs."""
        self.daemon_dir = os.path.join(self.base, "libexec")
        os.makedirs(self.daemon_dir)
        os.chmod(self.daemon_dir, 0o755)
        for name in os.listdir(BUILD):
            path = os.path.join(BUILD, name)
            if name == "unit-tests" or not (os.path.isfile(path) and os.access(path, os.X_OK)):
                continue
            dest = os.path.join(self.daemon_dir, name)
            if not copy:
                os.symlink(path, dest)
                continue
            try:
                os.link(path, dest)
            except OSError:  # another file system, or links not allowed
                shutil.copy2(path, dest)
            os.chmod(dest, 0o755)
        for name, text in programs.items():
            path = os.path.join(self.daemon_dir, name)
            if os.path.lexists(path):
                os.unlink(path)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o755)

    @staticmethod
    def _fill_ports(line):
        while "{port}" in line:
            line = line.replace("{port}", str(free_port()), 1)
        return line

    def _default_services(self, procs):
        def n(name, default):
            return str(procs.get(name, default))
        lines = []
        if program_exists("smtpd"):
            lines.append(f"smtp inet 127.0.0.1:{free_port()} - {n('smtp', 2)} smtpd")
            lines.append(f"submission inet 127.0.0.1:{free_port()} - {n('submission', 1)} smtpd "
                         "-o smtpd_mode=submission")
            lines.append(f"smtps inet 127.0.0.1:{free_port()} - {n('smtps', 1)} smtpd "
                         "-o smtpd_mode=smtps")
        if program_exists("qmgr"):
            lines.append(f"qmgr unix $run_directory/qmgr.sock - {n('qmgr', 1)} qmgr")
        if program_exists("local-delivery"):
            lines.append(f"local unix $run_directory/local.sock - {n('local', 1)} local-delivery")
        if program_exists("auth"):
            lines.append(f"auth unix $run_directory/auth.sock - {n('auth', 1)} auth")
        if program_exists("user-session"):
            lines.append(f"user-session unix $run_directory/user-session.sock - {n('user-session', 1)} user-session")
        if program_exists("imapd"):
            lines.append(f"imap inet 127.0.0.1:{free_port()} - {n('imap', 1)} imapd")
            lines.append(f"imaps inet 127.0.0.1:{free_port()} - {n('imaps', 1)} imapd "
                         "-o imapd_mode=imaps")
        if program_exists("pop3d"):
            lines.append(f"pop3 inet 127.0.0.1:{free_port()} - {n('pop3', 1)} pop3d")
            lines.append(f"pop3s inet 127.0.0.1:{free_port()} - {n('pop3s', 1)} pop3d -o pop3d_mode=pop3s")
        return lines

    def write_config(self):
        with open(os.path.join(self.conf_dir, "tern.conf"), "w") as f:
            f.write("# written by tests/e2e/harness.py\n")
            for k, v in self.config.items():
                f.write(f"{k} = {v}\n")

    def write_services(self):
        with open(os.path.join(self.conf_dir, "services.conf"), "w") as f:
            f.write("# written by tests/e2e/harness.py\n")
            for line in self.services:
                f.write(line + "\n")

    def set_service(self, name, line):
        """Replaces (or adds) the services.conf line of `name` and rewrites the file."""
        line = self._fill_ports(line)
        for i, l in enumerate(self.services):
            if l.split()[0] == name:
                self.services[i] = line
                break
        else:
            self.services.append(line)
        self.write_services()

    def service_names(self):
        return [l.split()[0] for l in self.services]

    def port(self, name):
        """The first TCP port of an inet service."""
        for l in self.services:
            f = l.split()
            if f[0] == name and f[1] == "inet":
                return int(f[2].split(",")[0].rsplit(":", 1)[1])
        raise KeyError(f"no inet service {name!r}")

    def socket_path(self, name):
        for l in self.services:
            f = l.split()
            if f[0] == name and f[1] == "unix":
                return f[2].split(",")[0].replace("$run_directory", self.run_dir)
        raise KeyError(f"no unix service {name!r}")

    # --- running ---------------------------------------------------------

    def mailctl(self, *args, timeout=60, check=False):
        proc = subprocess.run([MAILCTL, "-c", self.conf_dir] + [str(a) for a in args],
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise StackError(f"mailctl {' '.join(map(str, args))} exited {proc.returncode}:\n"
                             f"{proc.stdout}{proc.stderr}")
        return proc

    def start(self, wait=None, timeout=20):
        proc = self.mailctl("start")
        if proc.returncode != 0:
            raise StackError(f"mailctl start exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
                             f"\n--- log tail ---\n{self.log_tail()}")
        names = wait if wait is not None else self.wait_services
        if names is None:
            names = self.service_names()
        self.wait_ready(names, timeout)
        return proc

    def wait_ready(self, names, timeout=20):
        def ready():
            st = self.status()
            if st is None:
                return False
            # "running" = every process said it is ready (master's readiness
            # pipe); the ports are master's and accept before any worker runs.
            for name in names:
                svc = st.get(name)
                if (not svc or svc["state"] != "running" or svc["starting"]
                        or len(svc["pids"]) != self.procs_of(name)):
                    return False
            return True
        self.wait_for(ready, timeout, "services running and ready: " + ", ".join(names))

    def procs_of(self, name):
        for l in self.services:
            f = l.split()
            if f[0] == name:
                return int(f[4]) if f[4] != "-" else max(1, ((os.cpu_count() or 1) + 1) // 2)
        raise KeyError(name)

    def status(self):
        """Parsed `mailctl status`: {name: {state, pids, starting, uptime, restarts, listen,
        last_crash}} (starting: the pids not ready yet, shown with '*'), or None when tern
        is not running."""
        proc = self.mailctl("status")
        if proc.returncode == 3:
            return None
        if proc.returncode != 0:
            raise StackError(f"mailctl status exited {proc.returncode}: {proc.stdout}{proc.stderr}")
        lines = proc.stdout.splitlines()
        m = re.match(r"tern is running \(pid (\d+)", lines[0])
        if m:
            self.master_pid = int(m.group(1))
            self.seen_pids.add(self.master_pid)
        out = {}
        for line in lines[2:]:
            f = line.split(None, 6)
            if len(f) < 7:
                continue
            marked = [] if f[2] == "-" else f[2].split(",")
            pids = [int(p.rstrip("*")) for p in marked]
            starting = [int(p.rstrip("*")) for p in marked if p.endswith("*")]
            self.seen_pids.update(pids)
            out[f[0]] = {"state": f[1], "pids": pids, "starting": starting, "uptime": f[3],
                         "restarts": int(f[4]),
                         "listen": f[5], "last_crash": "" if f[6] == "-" else f[6]}
        return out

    def pids(self, service):
        st = self.status() or {}
        return st.get(service, {}).get("pids", [])

    def stop(self, timeout=60):
        return self.mailctl("stop", timeout=timeout)

    def wait_for(self, fn, timeout=10, what="condition"):
        """Polls fn() until it returns something true; returns that value."""
        deadline = time.monotonic() + timeout
        delay = 0.02
        last_error = None
        while True:
            try:
                value = fn()
                if value:
                    return value
            except (OSError, StackError, ValueError, KeyError) as e:
                last_error = e
            if time.monotonic() >= deadline:
                extra = f" (last error: {last_error})" if last_error else ""
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}{extra}")
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    # --- what happened -----------------------------------------------------

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=60):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def maildir_new(self, domain, user):
        """Files in mail_directory/<domain>/<user>/Maildir/new (or .../<user>/new)."""
        for d in (os.path.join(self.mail_dir, domain, user, "Maildir", "new"),
                  os.path.join(self.mail_dir, domain, user, "new")):
            if os.path.isdir(d):
                return sorted(os.path.join(d, n) for n in os.listdir(d))
        return []

    # --- cleanup -----------------------------------------------------------

    def _stack_processes(self):
        """Pids of live processes started for this stack (their argv names our config dir)."""
        pids = set()
        marker = self.conf_dir.encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if marker in cmd.split(b"\0") and pid_alive(int(entry)):
                pids.add(int(entry))
        return pids

    def kill_leftovers(self):
        pids = self._stack_processes() | {p for p in self.seen_pids if pid_alive(p)}
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
            time.sleep(0.05)

    def __enter__(self):
        if self.autostart:
            try:
                self.start()
            except BaseException:
                self.__exit__(*sys.exc_info())
                raise
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            sys.stderr.write(f"\n--- tern log tail ({self.log_path}) ---\n{self.log_tail()}\n---\n")
        try:
            if self.status() is not None:
                self.stop()
        except Exception as e:  # cleanup must go on
            sys.stderr.write(f"harness: stop failed: {e}\n")
        self.kill_leftovers()
        _live_stacks.discard(self)
        if not self.keep:
            shutil.rmtree(self.base, ignore_errors=True)
        return False
