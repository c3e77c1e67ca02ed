#!/usr/bin/env python3
"""SMTP acceptance and end-to-end benchmark: tern next to Postfix, same load.

    bench/smtp-accept/run [--messages N] [--sessions S] [--sizes 1024,102400]
                          [--latency-messages L] [--only tern|postfix] [--timeout T]

The load is Postfix's smtp-source (`-s S -m N -l SIZE`, one recipient,
demo@tern.test), a new connection per message as smtp-source does by
default.  For each message size it measures, for tern and then for a private
Postfix instance:

  accept    messages/second accepted durably (the 250 after DATA means the
            message is fsync'd into the queue).  Nothing is delivered, so no
            delivery competes for the disk: tern runs without qmgr and
            local-delivery; Postfix (whose cleanup stalls when qmgr is absent)
            puts every message on hold with check_recipient_access ... HOLD,
            which writes and fsyncs the queue file just the same.  The count
            of queued messages is checked afterwards.
  latency   DATA-end -> 250 latency (p50/p95/p99), from a small Python client
            over S sessions driven from one thread, L messages in all, on the same accept-only stack.
  e2e       messages/second from the first connection until N files are in
            the recipient's Maildir new/ (full stack: queue manager and local
            delivery into Maildir, each fsync'd as both systems do by default).
  rss       peak RSS (VmHWM) of the SMTP server processes: the largest one and
            the sum over all of them (tern: its smtpd processes; Postfix: every
            smtpd process it started).

Both run on 127.0.0.1 only, in temporary directories under /var/tmp (a real
disk, like a spool), and everything they start is stopped at the end.  Every
wait has a deadline (--timeout per phase).  Postfix is skipped with a note
when its binaries are missing (bench/smtp-accept/run installs the `postfix`
package when it can; tests never need it).
"""
import argparse
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402  (tern's end-to-end Stack)

SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
RCPT = "demo@tern.test"
SENDER = "bench@example.org"
SPOOL_BASE = "/var/tmp"  # tempfile's default may be a tmpfs elsewhere


# --- measuring ---------------------------------------------------------------

def wait_for(fn, timeout, what):
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def count_files(*dirs):
    n = 0
    for d in dirs:
        try:
            n += len(os.listdir(d))
        except FileNotFoundError:
            pass
    return n


def count_tree(top):
    """Regular files anywhere under top (queue bodies in hash directories)."""
    n = 0
    for _, _, files in os.walk(top):
        n += len(files)
    return n


def smtp_source(port, messages, size, sessions, timeout):
    """Runs smtp-source; returns (seconds, stderr text)."""
    cmd = [SMTP_SOURCE, "-s", str(sessions), "-m", str(messages), "-l", str(size),
           "-f", SENDER, "-t", RCPT, "-M", "client.bench.test", f"127.0.0.1:{port}"]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    took = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"smtp-source exited {proc.returncode}: {proc.stderr.strip()[:500]}")
    return took, proc.stderr


def start_smtp_source(port, messages, size, sessions):
    cmd = [SMTP_SOURCE, "-s", str(sessions), "-m", str(messages), "-l", str(size),
           "-f", SENDER, "-t", RCPT, "-M", "client.bench.test", f"127.0.0.1:{port}"]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


class ProbeSession:
    """One SMTP session of the latency probe, driven by latency_probe()'s
    selector loop: EHLO once, then MAIL/RCPT/DATA/body per message."""

    def __init__(self, port, count, body):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setblocking(False)
        self.count = count
        self.body = body
        self.buf = b""
        self.out = b""
        self.step = "greeting"
        self.sent_at = 0.0
        self.done = count == 0

    def next_command(self):
        """What to send after a positive reply to the current step."""
        order = {"greeting": ("ehlo", b"EHLO client.bench.test\r\n"),
                 "ehlo": ("mail", b"MAIL FROM:<" + SENDER.encode() + b">\r\n"),
                 "mail": ("rcpt", b"RCPT TO:<" + RCPT.encode() + b">\r\n"),
                 "rcpt": ("data", b"DATA\r\n"),
                 "data": ("dot", self.body + b".\r\n"),
                 "dot": ("mail", b"MAIL FROM:<" + SENDER.encode() + b">\r\n")}
        return order[self.step]

    def on_reply(self, code, now, latencies):
        if self.done:
            return  # the answer to QUIT
        if self.step == "dot":
            if code != b"250":
                raise RuntimeError(f"end of data answered {code!r}")
            latencies.append(now - self.sent_at)
            self.count -= 1
            if self.count == 0:
                self.out += b"QUIT\r\n"
                self.done = True
                return
        elif not (code.startswith(b"2") or (self.step == "data" and code == b"354")):
            raise RuntimeError(f"{self.step} answered {code!r}")
        self.step, text = self.next_command()
        self.out += text
        if self.step == "dot":
            self.sent_at = None  # stamped when the final ".\r\n" has left

    def replies(self):
        """Complete final reply lines (not continuation lines) in the buffer."""
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            if len(line) >= 4 and line[3:4] == b"-":
                continue
            yield line[:3]


def latency_probe(port, messages, sessions, size):
    """DATA-end -> 250 latencies in ms over `messages` messages on `sessions`
    connections, all driven from one thread with a selector (a thread per
    session would measure the Python interpreter's scheduling instead)."""
    import selectors
    line = (b"x" * 71) + b"\r\n"
    body = b"From: <" + SENDER.encode() + b">\r\nTo: <" + RCPT.encode() + b">\r\nSubject: latency\r\n\r\n"
    body += line * max(1, size // len(line))
    per = [messages // sessions + (1 if i < messages % sessions else 0) for i in range(sessions)]
    sel = selectors.DefaultSelector()
    live = []
    for n in per:
        if n:
            ps = ProbeSession(port, n, body)
            sel.register(ps.sock, selectors.EVENT_READ, ps)
            live.append(ps)
    latencies = []
    deadline = time.monotonic() + 300
    try:
        active = list(live)
        while active:
            if time.monotonic() > deadline:
                raise TimeoutError("latency probe took longer than 300s")
            for ps in active:
                events = selectors.EVENT_READ | (selectors.EVENT_WRITE if ps.out else 0)
                sel.modify(ps.sock, events, ps)
            for key, mask in sel.select(timeout=1):
                ps = key.data
                if mask & selectors.EVENT_WRITE and ps.out:
                    n = ps.sock.send(ps.out)
                    ps.out = ps.out[n:]
                    if not ps.out and ps.step == "dot" and ps.sent_at is None:
                        ps.sent_at = time.monotonic()
                if mask & selectors.EVENT_READ:
                    data = ps.sock.recv(65536)
                    if not data:
                        if ps.done:
                            sel.unregister(ps.sock)
                            active.remove(ps)
                            continue
                        raise ConnectionError("server closed the connection")
                    now = time.monotonic()
                    ps.buf += data
                    for code in ps.replies():
                        ps.on_reply(code, now, latencies)
    except (OSError, RuntimeError, TimeoutError) as e:
        print(f"    latency probe failed: {e}", file=sys.stderr)
    finally:
        for ps in live:
            ps.sock.close()
        sel.close()
    if not latencies:
        return None
    latencies.sort()
    pick = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000  # noqa: E731
    return {"n": len(latencies), "p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99)}


def vm_hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_of(pids):
    values = [v for v in (vm_hwm_kib(p) for p in pids) if v is not None]
    if not values:
        return None
    return {"procs": len(values), "max_kib": max(values), "sum_kib": sum(values)}


# --- tern ----------------------------------------------------------------------

class Tern:
    name = "tern"

    def __init__(self, args):
        self.args = args

    def stack(self, full):
        cfg = {"myhostname": "mail.tern.test"}
        kw = {}
        if self.args.smtpd:
            # Another smtpd build (e.g. with an older committer), for A/B runs.
            kw["programs"] = {"smtpd": f'#!/bin/sh\nexec {os.path.abspath(self.args.smtpd)} "$@"\n'}
        if full:
            return harness.Stack(config=cfg, procs={"smtp": self.args.tern_smtpd}, **kw)
        smtp = f"smtp inet 127.0.0.1:{{port}} - {self.args.tern_smtpd} smtpd"
        return harness.Stack(config=cfg, services=[smtp], **kw)

    @staticmethod
    def _base_to_var_tmp():
        # harness.Stack uses tempfile.mkdtemp(): make that a real disk.
        tempfile.tempdir = SPOOL_BASE

    def accept(self, size):
        self._base_to_var_tmp()
        a = self.args
        with self.stack(full=False) as s:
            port = s.port("smtp")
            took, _ = smtp_source(port, a.messages, size, a.sessions, a.timeout)
            queued = count_tree(os.path.join(s.queue_dir, "msg"))
            lat = latency_probe(port, a.latency_messages, a.sessions, size) if a.latency_messages else None
            rss = rss_of(s.pids("smtp"))
            s.stop()
        return {"rate": a.messages / took, "seconds": took, "queued": queued, "latency": lat, "rss": rss}

    def e2e(self, size):
        self._base_to_var_tmp()
        a = self.args
        with self.stack(full=True) as s:
            port = s.port("smtp")
            new = os.path.join(s.mail_dir, "tern.test", "demo")
            start = time.monotonic()
            src = start_smtp_source(port, a.messages, size, a.sessions)
            try:
                wait_for(lambda: len(s.maildir_new("tern.test", "demo")) >= a.messages, a.timeout,
                         f"{a.messages} messages in {new}")
                took = time.monotonic() - start
                src.wait(timeout=a.timeout)
                if src.returncode != 0:
                    raise RuntimeError(f"smtp-source exited {src.returncode}: {src.stderr.read()[:500]}")
            finally:
                if src.poll() is None:
                    src.kill()
                    src.wait()
            rss = rss_of(s.pids("smtp"))
            s.stop()
        return {"rate": a.messages / took, "seconds": took, "rss": rss}


# --- Postfix -------------------------------------------------------------------

MASTER_CF = """\
{listen} inet n - n - - smtpd
cleanup   unix  n       -       n       -       0       cleanup
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""
MASTER_CF_DELIVERY = """\
pickup    unix  n       -       n       60      1       pickup
qmgr      unix  n       -       n       300     1       qmgr
"""


class Postfix:
    """A private Postfix instance: its own config and queue directory
    (`postfix -c DIR`), listening on 127.0.0.1:<free port>, delivering
    tern.test to a virtual Maildir.  Postfix's default durability: cleanup
    fsyncs the queue file before smtpd answers 250, virtual(8) fsyncs the
    Maildir file before the rename into new/."""
    name = "postfix"

    def __init__(self, args):
        self.args = args

    @staticmethod
    def available():
        return os.access(POSTFIX, os.X_OK) and os.access(SMTP_SOURCE, os.X_OK) and os.geteuid() == 0

    def setup(self, full, main_extra=None, master_extra="", start_prefix=()):
        """full: with delivery (else accept only, into the hold queue).
        main_extra / master_extra: more main.cf keys and master.cf lines;
        start_prefix: a command that `postfix start` runs under (e.g. a
        private mount namespace), for bench/remote-delivery."""
        self.base = tempfile.mkdtemp(prefix="postfix-bench-", dir=SPOOL_BASE)
        os.chmod(self.base, 0o755)
        self.conf = os.path.join(self.base, "etc")
        self.queue = os.path.join(self.base, "queue")
        self.mail = os.path.join(self.base, "mail")
        self.port = harness.free_port()
        os.makedirs(self.conf)
        os.makedirs(self.mail)
        nobody = pwd.getpwnam("nobody")
        os.chown(self.mail, nobody.pw_uid, nobody.pw_gid)
        with open(os.path.join(self.conf, "vmailbox"), "w") as f:
            f.write(f"{RCPT} tern.test/demo/Maildir/\n")
        with open(os.path.join(self.conf, "hold"), "w") as f:
            f.write(f"{RCPT} HOLD\n")
        main = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue,
            "data_directory": os.path.join(self.base, "data"),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "mail.bench.test",
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "virtual_mailbox_domains": "tern.test",
            "virtual_mailbox_base": self.mail,
            "virtual_mailbox_maps": "texthash:" + os.path.join(self.conf, "vmailbox"),
            "virtual_uid_maps": f"static:{nobody.pw_uid}",
            "virtual_gid_maps": f"static:{nobody.pw_gid}",
            "maillog_file": os.path.join(self.base, "postfix.log"),
            "smtputf8_enable": "no",
            "biff": "no",
            "append_dot_mydomain": "no",
            "alias_maps": "",
            "alias_database": "",
            "smtpd_banner": "$myhostname ESMTP",
        }
        if not full:
            # Accept only: cleanup writes and fsyncs the queue file as usual,
            # but into the hold queue, so qmgr (which must run: without it
            # every cleanup stalls on the missing qmgr trigger) delivers nothing.
            main["smtpd_recipient_restrictions"] = ("check_recipient_access texthash:" +
                                                    os.path.join(self.conf, "hold") + ", permit_mynetworks, reject")
        main.update(main_extra or {})
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            for k, v in main.items():
                f.write(f"{k} = {v}\n")
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(listen=f"127.0.0.1:{self.port}"))
            f.write(MASTER_CF_DELIVERY)
            f.write(master_extra)
        os.makedirs(self.queue)
        env = dict(os.environ, MAIL_CONFIG=self.conf)
        # `check` creates the queue's subdirectories with their owners.
        for step in ("check", "start"):
            prefix = list(start_prefix) if step == "start" else []
            proc = subprocess.run(prefix + [POSTFIX, "-c", self.conf, step], capture_output=True, text=True,
                                  timeout=60, env=env, stdin=subprocess.DEVNULL)
            if proc.returncode != 0:
                raise RuntimeError(f"postfix {step} failed: {proc.stdout}{proc.stderr}{self.log_tail()}")

        def listening():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_for(listening, 30, f"postfix on port {self.port}")

    def log_tail(self):
        try:
            with open(os.path.join(self.base, "postfix.log"), errors="replace") as f:
                return "".join(f.readlines()[-10:])
        except OSError:
            return ""

    def smtpd_pids(self):
        return [p for p in self._processes() if self._comm(p) == "smtpd"]

    _comm = staticmethod(harness.process_name)

    def _processes(self):
        """Pids of this instance's processes: master and its children carry
        MAIL_CONFIG=<our config dir> in their environment."""
        marker = b"MAIL_CONFIG=" + self.conf.encode()
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if marker in f.read().split(b"\0"):
                        out.append(int(entry))
            except OSError:
                pass
        return out

    def teardown(self, remove=True):
        """Stops this Postfix; its directory is removed unless --keep, or
        unless remove is false (the caller removes it later)."""
        env = dict(os.environ, MAIL_CONFIG=self.conf)
        try:
            subprocess.run([POSTFIX, "-c", self.conf, "stop"], capture_output=True, timeout=60, env=env,
                           stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            pass
        try:
            wait_for(lambda: not self._processes(), 15, "postfix to stop")
        except TimeoutError:
            for pid in self._processes():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        if self.args.keep:
            print(f"    kept {self.base}", file=sys.stderr)
        elif remove:
            shutil.rmtree(self.base, ignore_errors=True)

    def queued(self):
        return sum(count_tree(os.path.join(self.queue, d)) for d in ("incoming", "active", "deferred", "hold"))

    def accept(self, size):
        a = self.args
        self.setup(full=False)
        try:
            took, _ = smtp_source(self.port, a.messages, size, a.sessions, a.timeout)
            queued = self.queued()
            lat = latency_probe(self.port, a.latency_messages, a.sessions, size) if a.latency_messages else None
            rss = rss_of(self.smtpd_pids())
        finally:
            self.teardown()
        return {"rate": a.messages / took, "seconds": took, "queued": queued, "latency": lat, "rss": rss}

    def e2e(self, size):
        a = self.args
        self.setup(full=True)
        try:
            new = os.path.join(self.mail, "tern.test", "demo", "Maildir", "new")
            start = time.monotonic()
            src = start_smtp_source(self.port, a.messages, size, a.sessions)
            try:
                wait_for(lambda: count_files(new) >= a.messages, a.timeout, f"{a.messages} messages in {new}")
                took = time.monotonic() - start
                src.wait(timeout=a.timeout)
            finally:
                if src.poll() is None:
                    src.kill()
                    src.wait()
            rss = rss_of(self.smtpd_pids())
        finally:
            self.teardown()
        return {"rate": a.messages / took, "seconds": took, "rss": rss}


# --- report --------------------------------------------------------------------

def fmt_rate(r):
    return f"{r['rate']:8.0f} msg/s ({r['seconds']:.2f}s)" if r else "       -"


def fmt_lat(r):
    lat = r and r.get("latency")
    if not lat:
        return "-"
    return f"p50 {lat['p50']:.1f} / p95 {lat['p95']:.1f} / p99 {lat['p99']:.1f} ms (n={lat['n']})"


def fmt_rss(r):
    rss = r and r.get("rss")
    if not rss:
        return "-"
    return f"max {rss['max_kib'] / 1024:.1f} MiB, sum {rss['sum_kib'] / 1024:.1f} MiB over {rss['procs']} smtpd"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--messages", type=int, default=2000, help="messages per run (smtp-source -m)")
    p.add_argument("--sessions", type=int, default=20, help="parallel sessions (smtp-source -s)")
    p.add_argument("--sizes", default="1024,102400", help="message sizes in bytes (smtp-source -l)")
    p.add_argument("--latency-messages", type=int, default=500, help="messages for the latency probe (0: skip)")
    p.add_argument("--only", choices=["tern", "postfix"], help="run one system only")
    p.add_argument("--phases", default="accept,e2e", help="accept, e2e or both")
    p.add_argument("--tern-smtpd", type=int, default=os.cpu_count() or 1, help="tern smtpd processes")
    p.add_argument("--smtpd", help="run this smtpd binary instead of build/smtpd (A/B comparisons)")
    p.add_argument("--timeout", type=float, default=300, help="deadline of each phase in seconds")
    p.add_argument("--keep", action="store_true", help="keep the Postfix temp directories")
    a = p.parse_args()
    if not os.access(SMTP_SOURCE, os.X_OK):
        sys.exit("smtp-source not found: install the postfix package (bench/smtp-accept/run does)")
    if a.messages < 1 or a.messages > 1000000 or a.sessions < 1 or a.sessions > 1000:
        sys.exit("--messages must be 1..1000000 and --sessions 1..1000")
    sizes = [int(x) for x in a.sizes.split(",") if x]
    phases = [x for x in a.phases.split(",") if x]
    systems = []
    if a.only in (None, "tern"):
        systems.append(Tern(a))
    if a.only in (None, "postfix"):
        if Postfix.available():
            systems.append(Postfix(a))
        else:
            print("note: Postfix not measured (needs root and /usr/sbin/postfix)", file=sys.stderr)

    print(f"# {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; smtp-source -s {a.sessions} "
          f"-m {a.messages}; spool under {SPOOL_BASE}")
    results = {}
    for size in sizes:
        for phase in phases:
            for sys_ in systems:
                t0 = time.monotonic()
                print(f"  running {sys_.name} {phase} -l {size} ...", file=sys.stderr, flush=True)
                try:
                    results[(sys_.name, phase, size)] = getattr(sys_, phase)(size)
                except Exception as e:  # report and go on with the next measurement
                    print(f"  {sys_.name} {phase} -l {size} failed: {e}", file=sys.stderr)
                    results[(sys_.name, phase, size)] = None
                r = results[(sys_.name, phase, size)]
                if r and "queued" in r and r["queued"] < a.messages:
                    print(f"  WARNING: {sys_.name} queued only {r['queued']} of {a.messages}", file=sys.stderr)
                print(f"    done in {time.monotonic() - t0:.1f}s", file=sys.stderr)

    names = [s.name for s in systems]
    for size in sizes:
        print(f"\n## -l {size}")
        for phase in phases:
            print(f"{phase:7} " + "  ".join(f"{n}: {fmt_rate(results.get((n, phase, size)))}" for n in names))
            if len(names) == 2:
                t, pf = results.get(("tern", phase, size)), results.get(("postfix", phase, size))
                if t and pf:
                    print(f"        tern/postfix = {t['rate'] / pf['rate']:.2f}x")
        if "accept" in phases:
            for n in names:
                print(f"latency {n}: {fmt_lat(results.get((n, 'accept', size)))}")
        for n in names:
            r = results.get((n, "accept", size)) or results.get((n, "e2e", size))
            print(f"rss     {n}: {fmt_rss(r)}")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
