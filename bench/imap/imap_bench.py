#!/usr/bin/env python3
"""tern's imapd next to a private Dovecot 2.3, in the same run (issue 11).

Both servers get the same messages (hard links of one generated set) in a
folder of each size, then, alternating tern and Dovecot over several rounds:

  SELECT first    the first SELECT after the fill (index not built), on
                  --first copies of the folder (hard links), each once
  SELECT first + NOOP  the same and a NOOP after it: until the index is
                  stored (tern answers SELECT before it writes the index,
                  and reads the next command after)
  SELECT cold     server restarted, the folder's index files dropped from
                  the page cache (posix_fadvise DONTNEED), new connection
  SELECT warm     a second connection right after
  FETCH FLAGS     FETCH 1:* (FLAGS)                     } on the warm
  FETCH ENVELOPE  UID FETCH 1:* (ENVELOPE)              } connection
  SEARCH SUBJECT  SEARCH SUBJECT <word of ~1% subjects> }
  SEARCH BODY     SEARCH BODY <word of ~1% bodies>      }

Each is timed twice: wall clock from sending the command to its tagged OK,
and the CPU time the server's processes used meanwhile (schedstat of all
their threads: less disturbed by other jobs on a shared machine).

and PSS with many idle IDLE connections (LOGIN, SELECT INBOX, IDLE): the
sum of /proc/PID/smaps_rollup "Pss" over all the server's processes (tern:
master, auth, imapd; Dovecot: its master and every descendant -- imap per
connection, imap-login, auth, config, anvil, log, stats).  Medians over the
rounds and the ratio tern/Dovecot are printed.  Bounded: every command has
a deadline, every loop a count; 127.0.0.1 only; everything lives in one
temporary directory under /var/tmp that is removed at the end.

    bench/imap/run [--sizes 10000,100000] [--rounds 3] [--first 3] [--idle 1000] [--only tern|dovecot]
"""
import argparse
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
USER = "demo@tern.test"
PASSWORD = "demo"
CMD_TIMEOUT = 600  # seconds for any one IMAP command (a 100,000-message SEARCH BODY on a busy VM)

# --- messages ----------------------------------------------------------------

FIRST = ["Anna", "Bernd", "Chloé", "David", "Emil", "Fatima", "Günter", "Hana", "Ivan", "Julia",
         "Kenji", "Lena", "Marco", "Nadia", "Olaf", "Priya", "Quentin", "Rosa", "Sven", "Tomás"]
LAST = ["Meyer", "Schmidt", "Dubois", "Rossi", "Novak", "Tanaka", "García", "Okafor", "Berg", "Kowalski"]
DOMAINS = ["example.org", "example.com", "lists.example.net", "mail.example.de", "corp.example"]
WORDS = ("report meeting budget review invoice schedule project update release draft contract "
         "travel lunch server backup migration deadline proposal feedback agenda question answer "
         "holiday photos newsletter order shipment payment reminder account security password "
         "weekly monthly quarterly team office customer support ticket issue patch build test").split()
# Rare words the SEARCH commands look for: each goes into ~1% of subjects / bodies.
SUBJECT_NEEDLE = "zeppelin"
BODY_NEEDLE = "quokka"
LOREM = ("the quick brown fox jumps over the lazy dog while the committee discusses the next steps "
         "for the project and asks everyone to read the attached notes before the meeting").split()


def _line(rnd, n):
    return " ".join(rnd.choice(LOREM if rnd.random() < 0.7 else WORDS) for _ in range(n))


def _text(rnd, size, needle):
    lines, total = [], 0
    while total < size:
        line = _line(rnd, rnd.randint(6, 13))
        lines.append(line)
        total += len(line) + 1
    if needle:
        lines.insert(rnd.randrange(len(lines) + 1), f"we saw a {BODY_NEEDLE} near the river")
    return "\n".join(lines) + "\n"


def _name(rnd):
    return f"{rnd.choice(FIRST)} {rnd.choice(LAST)}"


def _addr(name, rnd):
    local = name.split()[0].lower().encode("ascii", "ignore").decode() or "x"
    return f"{local}.{rnd.randint(1, 99)}@{rnd.choice(DOMAINS)}"


def _encoded_name(name):
    import base64
    if name.isascii():
        return f'"{name}"'
    return "=?UTF-8?B?" + base64.b64encode(name.encode()).decode() + "?="


def make_message(i, rnd):
    """One message (LF line ends, as in a Maildir): ~78% plain text 1-6 KiB,
    ~17% multipart/alternative text+HTML, ~5% multipart/mixed with a base64
    attachment of 20-80 KiB; ~1% of subjects hold SUBJECT_NEEDLE, ~1% of
    bodies BODY_NEEDLE; some non-ASCII names (RFC 2047), some replies."""
    frm = _name(rnd)
    subject_words = [rnd.choice(WORDS) for _ in range(rnd.randint(2, 7))]
    if rnd.random() < 0.01:
        subject_words.insert(rnd.randrange(len(subject_words) + 1), SUBJECT_NEEDLE)
    subject = " ".join(subject_words).capitalize()
    if rnd.random() < 0.25:
        subject = "Re: " + subject
    day = 1 + i % 28
    hdr = [f"Return-Path: <{_addr(frm, rnd)}>",
           f"Received: from mx{rnd.randint(1, 9)}.example.net (mx.example.net [192.0.2.{rnd.randint(1, 254)}])\n"
           f"\tby mail.tern.test with ESMTPS id {i:08X}; Mon, {day} Jun 2026 {i % 24:02d}:{i % 60:02d}:00 +0000",
           f"From: {_encoded_name(frm)} <{_addr(frm, rnd)}>",
           f"To: {USER}",
           f"Subject: {subject}",
           f"Date: Mon, {day} Jun 2026 {i % 24:02d}:{i % 60:02d}:{i % 59:02d} +0200",
           f"Message-ID: <{i}.{rnd.randint(1, 10**9)}@{rnd.choice(DOMAINS)}>"]
    if rnd.random() < 0.3:
        hdr.append(f"Cc: {_encoded_name(_name(rnd))} <{_addr(_name(rnd), rnd)}>")
    if subject.startswith("Re:"):
        hdr.append(f"In-Reply-To: <{max(0, i - rnd.randint(1, 50))}.1@example.org>")
    hdr.append("MIME-Version: 1.0")
    needle = rnd.random() < 0.01
    kind = rnd.random()
    if kind < 0.78:
        hdr.append("Content-Type: text/plain; charset=utf-8")
        hdr.append("Content-Transfer-Encoding: 8bit")
        body = _text(rnd, rnd.randint(1000, 6000), needle)
    elif kind < 0.95:
        b = f"=_alt{i}"
        hdr.append(f'Content-Type: multipart/alternative; boundary="{b}"')
        text = _text(rnd, rnd.randint(1000, 4000), needle)
        html = "<html><body>" + "".join(f"<p>{l}</p>\n" for l in text.splitlines()) + "</body></html>\n"
        body = (f"--{b}\nContent-Type: text/plain; charset=utf-8\n\n{text}\n"
                f"--{b}\nContent-Type: text/html; charset=utf-8\n\n{html}\n--{b}--\n")
    else:
        import base64
        b = f"=_mix{i}"
        hdr.append(f'Content-Type: multipart/mixed; boundary="{b}"')
        text = _text(rnd, rnd.randint(500, 2000), needle)
        blob = base64.encodebytes(rnd.randbytes(rnd.randint(15000, 60000))).decode()
        body = (f"--{b}\nContent-Type: text/plain; charset=utf-8\n\n{text}\n"
                f"--{b}\nContent-Type: application/pdf; name=\"doc{i}.pdf\"\n"
                f"Content-Disposition: attachment; filename=\"doc{i}.pdf\"\n"
                f"Content-Transfer-Encoding: base64\n\n{blob}\n--{b}--\n")
    return ("\n".join(hdr) + "\n\n" + body).encode()


def generate(dirpath, count, seed):
    """Writes `count` messages as Maildir cur/ files into dirpath (about 70%
    seen, some flagged); returns the names."""
    os.makedirs(dirpath, exist_ok=True)
    rnd = random.Random(seed)
    names = []
    for i in range(count):
        data = make_message(i, rnd)
        flags = "S" if rnd.random() < 0.7 else ("FS" if rnd.random() < 0.1 else "")
        # ,S= and ,W= (size with CRLF line ends), as tern's local-delivery and
        # Dovecot's LDA name the files they deliver.
        crlf = len(data) + data.count(b"\n")
        name = f"{1780000000 + i}.M{i}P{seed}.bench,S={len(data)},W={crlf}:2,{flags}"
        with open(os.path.join(dirpath, name), "wb") as f:
            f.write(data)
        names.append(name)
    return names


def link_into(src, names, maildir, owner=None):
    """Hard-links the generated files into maildir/cur (tmp/ and new/ exist)."""
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)
    cur = os.path.join(maildir, "cur")
    for n in names:
        os.link(os.path.join(src, n), os.path.join(cur, n))
    if owner:
        for dirpath, dirs, _ in os.walk(maildir):
            os.chown(dirpath, *owner)


def drop_cache(paths):
    """Evicts the clean pages of the files directly in each folder directory
    from the page cache: the index files of both servers (tern-index.lmdb;
    dovecot.index*, dovecot-uidlist), not the messages in cur/, so that only
    SELECT is cold and the operations after it measure the server, not the
    disk.  Only this benchmark's files: the machine is shared."""
    for top in paths:
        for dirpath, dirs, files in os.walk(top):
            dirs.clear()
            for n in files:
                try:
                    fd = os.open(os.path.join(dirpath, n), os.O_RDONLY | os.O_NOFOLLOW)
                except OSError:
                    continue
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)

# --- IMAP over a raw socket --------------------------------------------------


class Imap:
    def __init__(self, port, deadline=CMD_TIMEOUT):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=deadline)
        self.n = 0
        self.read_until(b"\r\n", time.monotonic() + deadline)

    def read_until(self, marker, deadline):
        """Reads until marker followed by a line end; returns (bytes read, index of marker)."""
        buf, pos = bytearray(b"\r\n"), 0
        while True:
            i = buf.find(marker, pos)
            if i >= 0 and buf.find(b"\r\n", i + len(marker)) >= 0:
                return bytes(buf), i
            pos = max(0, len(buf) - len(marker) - 2) if i < 0 else i
            if time.monotonic() > deadline:
                raise TimeoutError(f"waiting for {marker!r}: {bytes(buf[-300:])!r}")
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise ConnectionError(f"closed: {bytes(buf[-300:])!r}")
            buf += chunk

    def cmd(self, text, timeout=CMD_TIMEOUT):
        """Sends one command; returns (seconds until the tagged reply, reply bytes)."""
        self.n += 1
        tag = f"t{self.n} ".encode()
        t0 = time.monotonic()
        self.s.sendall(tag + text.encode() + b"\r\n")
        buf, i = self.read_until(b"\r\n" + tag, t0 + timeout)
        dt = time.monotonic() - t0
        status = buf[i + 2 + len(tag):].split(b" ", 1)[0]
        if status != b"OK":
            raise RuntimeError(f"{text}: {buf[i:i + 300]!r}")
        return dt, buf

    def close(self):
        try:
            self.s.sendall(b"z LOGOUT\r\n")
        except OSError:
            pass
        self.s.close()


def search_count(reply):
    for line in reply.split(b"\r\n"):
        if line.startswith(b"* SEARCH"):
            return len(line.split()) - 2
    return 0

# --- processes and memory ----------------------------------------------------


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_ns(pids):
    """{pid: CPU time used so far by all its threads} (schedstat, ns)."""
    out = {}
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        total = 0
        for t in tasks:
            try:
                with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
        out[pid] = total
    return out


def cpu_used(before, after):
    """CPU ns between two cpu_ns() snapshots: processes that exited in
    between drop out (their last slice is lost, never counted negative);
    processes started in between count from zero."""
    return sum(ns - before.get(pid, 0) for pid, ns in after.items() if ns >= before.get(pid, 0))


def children_map():
    kids = {}
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat") as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(e))
    return kids


def descendants(pid):
    kids, out, todo = children_map(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(fn, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        try:
            v = fn()
            if v:
                return v
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def pressure():
    try:
        with open("/proc/pressure/cpu") as f:
            return f.readline().strip()
    except OSError:
        return "n/a"

# --- the two servers ---------------------------------------------------------


class Tern:
    name = "tern"

    def __init__(self, base, build):
        os.environ["TERN_BUILD"] = build
        sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
        import harness  # noqa: E402
        tempfile.tempdir = base
        self.stack = harness.Stack(
            services=["imap inet 127.0.0.1:{port} - 1 imapd", "auth unix $run_directory/auth.sock - 1 auth"],
            autostart=False)
        tempfile.tempdir = None
        self.maildir = os.path.join(self.stack.mail_dir, "tern.test", "demo")

    def start(self):
        self.stack.start()
        self.port = self.stack.port("imap")

    def stop(self):
        self.stack.stop()
        pids = set(self.stack.seen_pids)
        wait_for(lambda: not any(pid_alive(p) for p in pids), 60, "tern's processes to exit")

    def folder_dir(self, folder):
        return os.path.join(self.maildir, "." + folder)

    def cache_paths(self, folder):
        return [self.folder_dir(folder)]

    def pids(self):
        return [self.stack.master_pid] + [p for s in ("imap", "auth") for p in self.stack.pids(s)]

    def close(self):
        self.stack.kill_leftovers()


DOVECOT_CONF = """\
# Private instance for bench/imap: own base_dir, ports, users and logs.
instance_name = {instance}
base_dir = {base}/run
state_dir = {base}/state
protocols = imap
listen = 127.0.0.1
log_path = {base}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
first_valid_uid = 1
mail_max_userip_connections = 100000
default_process_limit = 4000
default_client_limit = 10000
default_vsz_limit = 1G
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {base}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={base}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  client_limit = 10000
}}
"""


class Dovecot:
    name = "dovecot"

    def __init__(self, base):
        import pwd
        self.base = os.path.join(base, "dovecot")
        os.makedirs(self.base)
        os.chmod(self.base, 0o755)
        nobody = pwd.getpwnam("nobody")
        self.owner = (nobody.pw_uid, nobody.pw_gid)
        self.home = os.path.join(self.base, "home", USER)
        self.maildir = os.path.join(self.home, "Maildir")
        os.makedirs(self.maildir)
        for d in (os.path.join(self.base, "home"), self.home, self.maildir):
            os.chown(d, *self.owner)
        with open(os.path.join(self.base, "users"), "w") as f:
            f.write(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.conf = os.path.join(self.base, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write(DOVECOT_CONF.format(instance=f"bench-imap-{os.getpid()}", base=self.base,
                                        uid=self.owner[0], gid=self.owner[1], port=self.port))
        self.master = None

    def start(self):
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        subprocess.run(["dovecot", "-c", self.conf], check=True, timeout=30,
                       preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard)))
        pidfile = os.path.join(self.base, "run", "master.pid")
        self.master = wait_for(lambda: int(open(pidfile).read().split()[0]), 30, "dovecot's master.pid")

        def greets():
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            ok = s.recv(200).startswith(b"* OK")
            s.close()
            return ok
        wait_for(greets, 30, "dovecot's greeting")

    def stop(self):
        if not self.master:
            return
        pids = descendants(self.master)
        os.kill(self.master, signal.SIGTERM)
        wait_for(lambda: not any(pid_alive(p) for p in pids), 60, "dovecot's processes to exit")
        self.master = None

    def folder_dir(self, folder):
        return os.path.join(self.maildir, "." + folder)

    def cache_paths(self, folder):
        return [self.folder_dir(folder)]

    def pids(self):
        return descendants(self.master)

    def close(self):
        if self.master and pid_alive(self.master):
            for p in descendants(self.master):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass

# --- measurements ------------------------------------------------------------


FIRST_OPS = ["SELECT first", "SELECT first + NOOP"]
OPS = FIRST_OPS + ["SELECT cold", "SELECT warm", "FETCH 1:* (FLAGS)", "UID FETCH 1:* (ENVELOPE)",
                   f"SEARCH SUBJECT {SUBJECT_NEEDLE}", f"SEARCH BODY {BODY_NEEDLE}"]
WARM_OPS = OPS[4:]  # on the warm connection, after SELECT warm

SHORT = dict(zip(OPS, ["select-first", "select-first+noop", "select-cold", "select-warm", "flags", "envelope",
                       "subject", "body"]))


def first_copies(folder, n):
    """The folder and its copies for SELECT first (the first is the one
    every other operation uses)."""
    return [folder] + [f"{folder}f{k}" for k in range(2, max(n, 1) + 1)]


def login(port):
    c = Imap(port)
    c.cmd(f"LOGIN {USER} {PASSWORD}")
    return c


def timed_command(srv, conn, op, text, results, cpu):
    """Runs one command; appends its wall and CPU seconds to results[op] and cpu[op]."""
    c0 = cpu_ns(srv.pids())
    dt, reply = conn.cmd(text)
    cpu.setdefault(op, []).append(cpu_used(c0, cpu_ns(srv.pids())) / 1e9)
    results.setdefault(op, []).append(dt)
    return reply


def first_select(srv, folder, results, cpu):
    """SELECT of a folder whose index is not built, then a NOOP: both the
    answer's time and the time until the next command ran."""
    a = login(srv.port)
    c0 = cpu_ns(srv.pids())
    timed_command(srv, a, "SELECT first", f"SELECT {folder}", results, cpu)
    dt, _ = a.cmd("NOOP")
    cpu.setdefault("SELECT first + NOOP", []).append(cpu_used(c0, cpu_ns(srv.pids())) / 1e9)
    results.setdefault("SELECT first + NOOP", []).append(results["SELECT first"][-1] + dt)
    a.close()


def measure_round(srv, folder, cold, results, counts, cpu):
    """One round of the operations on one server; appends seconds to
    results[op] and the CPU seconds the server's processes used to cpu[op]."""
    if cold:
        srv.stop()
        drop_cache(srv.cache_paths(folder))
        srv.start()

    def timed(conn, op, text):
        return timed_command(srv, conn, op, text, results, cpu)
    if cold == "first":
        first_select(srv, folder, results, cpu)
    else:
        a = login(srv.port)
        timed(a, "SELECT cold", f"SELECT {folder}")
        a.close()
    b = login(srv.port)
    timed(b, "SELECT warm", f"SELECT {folder}")
    for op in WARM_OPS:
        reply = timed(b, op, op)
        if op.startswith("SEARCH"):
            counts.setdefault(op, set()).add(search_count(reply))
        else:
            counts.setdefault(op, set()).add(reply.count(b"\r\n* "))
    b.close()


def idle_pss(srv, n, deadline):
    """Total PSS of the server's processes before and with n idle IDLE connections."""
    before = sum(pss_kib(p) for p in srv.pids())
    conns = []
    try:
        for _ in range(n):
            if time.monotonic() > deadline:
                raise TimeoutError("idle connections: deadline")
            c = Imap(srv.port, 120)
            c.s.sendall(f"a LOGIN {USER} {PASSWORD}\r\nb SELECT INBOX\r\nc IDLE\r\n".encode())
            c.read_until(b"\r\n+ ", deadline)
            conns.append(c)
        time.sleep(1.0)  # let lazily freed memory settle; the same pause for both
        pids = srv.pids()
        after = sum(pss_kib(p) for p in pids)
        return before, after, len(pids)
    finally:
        for c in conns:
            c.s.close()


def fmt_ms(v):
    return f"{v * 1000:9.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000", help="messages per folder, comma-separated")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--first", type=int, default=3, help="copies of each folder for SELECT first (one each)")
    ap.add_argument("--idle", type=int, default=1000, help="idle IDLE connections for the PSS figure (0: skip)")
    ap.add_argument("--only", choices=["tern", "dovecot"])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if os.geteuid() != 0 and args.only != "tern":
        sys.exit("Dovecot's private instance needs root (its own base_dir, login chroot); use --only tern")
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 2 * args.idle + 200)), hard))

    base = tempfile.mkdtemp(prefix="imap-bench-", dir="/var/tmp")
    os.chmod(base, 0o755)
    servers = []
    print(f"cpu pressure at start: {pressure()}")
    print(f"load average at start: {open('/proc/loadavg').read().split()[:3]}")
    t_start = time.monotonic()
    try:
        if args.only != "dovecot":
            servers.append(Tern(base, os.path.abspath(args.build)))
        if args.only != "tern":
            servers.append(Dovecot(base))
        for srv in servers:
            srv.start()
            c = login(srv.port)
            for size in sizes:
                for copy in first_copies(f"m{size}", args.first):
                    c.cmd(f"CREATE {copy}")
            c.close()
        srv_results = {s.name: {} for s in servers}
        for size in sizes:
            folder = f"m{size}"
            t0 = time.monotonic()
            src = os.path.join(base, "src", folder)
            names = generate(src, size, seed=size)
            mb = sum(os.path.getsize(os.path.join(src, n)) for n in names) / 1e6
            for srv in servers:
                for copy in first_copies(folder, args.first):
                    link_into(src, names, srv.folder_dir(copy), getattr(srv, "owner", None))
            # The corpus on disk before either server starts: a server that
            # syncs its index (tern) would otherwise share the disk with the
            # write-back of the hundreds of MB just generated, which a real
            # mailbox does not have pending.
            t_sync = time.monotonic()
            os.sync()
            print(f"\n== {folder}: {size} messages, {mb:.0f} MB, generated and linked in "
                  f"{t_sync - t0:.1f} s, written to disk in {time.monotonic() - t_sync:.1f} s", flush=True)
            res = {s.name: {} for s in servers}
            cpu = {s.name: {} for s in servers}
            counts = {s.name: {} for s in servers}
            order = list(servers)
            for rnd in range(args.rounds + 1):  # round 0: the first SELECT (index built)
                for srv in order:
                    measure_round(srv, folder, "first" if rnd == 0 else True, res[srv.name], counts[srv.name],
                                  cpu[srv.name])
                    if rnd == 0:
                        for copy in first_copies(folder, args.first)[1:]:
                            first_select(srv, copy, res[srv.name], cpu[srv.name])
                    r = res[srv.name]
                    print(f"  round {rnd} {srv.name:8s} " + " ".join(
                        f"{SHORT[op]}={r[op][-1] * 1000:.0f}" for op in OPS if op in r and
                        (op not in FIRST_OPS or rnd == 0) and (op != "SELECT cold" or rnd > 0)) + " ms",
                        flush=True)
                order.reverse()
            for name, c in counts.items():
                bad = {op: v for op, v in c.items() if len(v) != 1}
                if bad:
                    raise RuntimeError(f"{name}: answers changed between rounds: {bad}")
            if len(servers) == 2:
                a, b = (counts[s.name] for s in servers)
                for op in a:
                    if a[op] != b[op]:
                        print(f"  WARNING: {op}: tern answered {a[op]}, dovecot {b[op]}")
            for title, data in (("wall time (command sent -> tagged OK)", res),
                                ("CPU time of the server's processes", cpu)):
                print(f"\n  {folder} ({size} messages), {title}, medians of {args.rounds} rounds in ms "
                      f"(SELECT first: one per folder, {args.first} folders)")
                print(f"  {'operation':30s} " + " ".join(f"{s.name:>9s}" for s in servers)
                      + ("      ratio  goal <= 0.5" if len(servers) == 2 else ""))
                for op in OPS:
                    meds = [statistics.median(data[s.name][op]) for s in servers]
                    line = f"  {op:30s} " + " ".join(fmt_ms(m) for m in meds)
                    if len(servers) == 2:
                        ratio = meds[0] / meds[1] if meds[1] else float("inf")
                        line += f"  {ratio:9.2f}  {'ok' if ratio <= 0.5 else 'MISSED'}"
                    n = counts[servers[0].name].get(op)
                    if n:
                        line += f"   ({next(iter(n))} {'hits' if op.startswith('SEARCH') else 'lines'})"
                    print(line)
            for s in servers:
                srv_results[s.name][folder] = res[s.name]
        if args.idle:
            print(f"\n== PSS with {args.idle} idle IDLE connections (LOGIN, SELECT INBOX, IDLE)")
            per = {}
            for srv in servers:
                srv.stop()
                srv.start()
                before, after, nproc = idle_pss(srv, args.idle, time.monotonic() + 900)
                per[srv.name] = ((after - before) / args.idle, after / args.idle)
                print(f"  {srv.name:8s} PSS {before} KiB idle, {after} KiB with {args.idle} connections "
                      f"({nproc} processes): +{per[srv.name][0]:.1f} KiB per connection "
                      f"({per[srv.name][1]:.1f} KiB per connection counting the whole server)", flush=True)
            if len(servers) == 2:
                t, d = per["tern"], per["dovecot"]
                print(f"  ratio tern/dovecot: {t[0] / d[0]:.3f} (growth), {t[1] / d[1]:.3f} (whole server)"
                      f"   goal <= 0.1: {'ok' if t[0] / d[0] <= 0.1 else 'MISSED'}")
    finally:
        for srv in servers:
            try:
                srv.stop()
            except Exception as e:  # noqa: BLE001 -- cleanup must go on
                print(f"stopping {srv.name}: {e}", file=sys.stderr)
            srv.close()
        print(f"\ncpu pressure at end: {pressure()}")
        print(f"load average at end: {open('/proc/loadavg').read().split()[:3]}")
        print(f"total {time.monotonic() - t_start:.0f} s")
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
