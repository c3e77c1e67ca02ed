#!/usr/bin/env python3
"""Mail flow benchmark: tern as `make run` starts it next to a private
Postfix, alternating, several rounds in one run.

    bench/mail-flow/run [--rounds R] [--messages N] [--large-messages N]
                        [--loads new,reuse,large] [--only tern|postfix]

Loads (Postfix's smtp-source, 20 sessions, one recipient demo@tern.test,
sender bench@example.org):

  new     -s 20 -l 1024   -m N      a new connection per message (its default)
  reuse   -s 20 -l 1024   -m N -d   connection reuse: many messages per session
  large   -s 20 -l 102400 -m N/3    100 KiB messages, new connection each

Every run starts a fresh stack, sends the load once and measures both:

  accept  messages / seconds until smtp-source got its last 250 (durable
          accept: both systems fsync before the 250), while delivery runs
  e2e     messages / seconds until the N-th file is in the Maildir new/

tern runs with conf/dev/services.conf (its process counts, `-` = half the cores) and
the settings of conf/dev/tern.conf, only the ports and directories changed:
the stack of `make run`.  Postfix runs as in bench/smtp-accept (virtual(8)
into Maildir, default durability).  The order of the two systems alternates
from round to round.  For each run it prints the rates, the CPU seconds per
1,000 messages of each process kind (tern: its workers; Postfix: its
processes plus the ones that exited; smtp-source itself), the whole machine's
CPU split (/proc/stat) and the CPU pressure (/proc/pressure/cpu "some")
during the run.  At the end: medians per system and load, and the ratios
tern/Postfix.  Only ratios from the same run mean anything on a shared
machine.
"""
import argparse
import atexit
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench", "smtp-accept"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402
import smtp_accept  # noqa: E402  (Postfix setup, smtp-source, helpers)
from smtp_accept import RCPT, SENDER, SMTP_SOURCE, SPOOL_BASE, count_files, wait_for  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
DIR_KEYS = {"daemon_directory", "queue_directory", "data_directory", "run_directory", "mail_directory",
            "mail_spool_directory", "log_target", "config_directory"}


# --- what the machine did ------------------------------------------------------

def proc_stat(pid):
    """(comm, own CPU seconds, waited-for children's CPU seconds) or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    comm = text[text.index("(") + 1:text.rindex(")")]
    fields = text[text.rindex(")") + 2:].split()
    own = (int(fields[11]) + int(fields[12])) / TICK
    children = (int(fields[13]) + int(fields[14])) / TICK
    return comm, own, children


def cpu_by_kind(pids, master):
    """{comm: seconds} over live pids, plus "exited" = the master's reaped children."""
    out = {}
    for pid in pids:
        st = proc_stat(pid)
        if st:
            out[st[0]] = out.get(st[0], 0.0) + st[1]
    st = proc_stat(master) if master else None
    if st:
        out["exited"] = st[2]
    return out


def machine_cpu():
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    user, nice, system, idle, iowait, irq, softirq = (int(x) / TICK for x in parts[:7])
    return {"user": user + nice, "system": system, "softirq": softirq + irq, "iowait": iowait, "idle": idle}


def disk_requests():
    """Write, discard and cache flush requests completed by the whole disks, from
    /proc/diskstats: on a virtual machine each request to the disk costs CPU
    (an exit to the host, an interrupt, a completion), so requests per
    message say as much as syncs per message.  Partitions (a name ending in a
    digit after a letter, like vda1) are skipped: their requests are counted
    in their disk's line too."""
    writes = discards = flushes = 0
    try:
        with open("/proc/diskstats") as f:
            for line in f:
                parts = line.split()
                name = parts[2]
                if name.startswith(("loop", "ram", "dm-", "sr")) or re.fullmatch(r"[a-z]+\d+|nvme\d+n\d+p\d+", name):
                    continue
                writes += int(parts[7])
                if len(parts) >= 20:
                    discards += int(parts[14])
                    flushes += int(parts[18])
    except OSError:
        pass
    return {"writes": writes, "discards": discards, "flushes": flushes}


def pressure_total():
    """CPU pressure "some" total (microseconds) and avg10, or (None, None)."""
    try:
        with open("/proc/pressure/cpu") as f:
            line = f.readline()
    except OSError:
        return None, None
    m = re.search(r"avg10=([\d.]+).*total=(\d+)", line)
    return (int(m.group(2)), float(m.group(1))) if m else (None, None)


# --- the systems ---------------------------------------------------------------

def dev_services():
    """conf/dev/services.conf as harness lines: continuation lines joined,
    inet ports replaced by free ones."""
    lines = []
    with open(os.path.join(ROOT, "conf", "dev", "services.conf")) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0].isspace() and lines:
                lines[-1] += " " + line.strip()
                continue
            lines.append(re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:{port}", line))
    return lines


def dev_config():
    """The keys of conf/dev/tern.conf except directories (the harness's)."""
    cfg = {}
    with open(os.path.join(ROOT, "conf", "dev", "tern.conf")) as f:
        for raw in f:
            line = raw.split("#", 1)[0].rstrip()
            if not line or line[0].isspace() or "=" not in line:
                continue
            key, value = (x.strip() for x in line.split("=", 1))
            if key not in DIR_KEYS:
                cfg[key] = value
    return cfg


# The directories of finished runs, removed when the benchmark ends, not
# between runs: on ext4 without a journal (this machine's root) every file
# create skips the inodes deleted in the last 60 s (360 s while their
# inode-table block is dirty), reading each one's block (recently_deleted()
# in fs/ext4/ialloc.c).  Removing a run's 6,000 Maildir files and queue
# files right before the next run made that run's creates pay for the
# previous run's deletions -- tern's for Postfix's and the other way round --
# instead of each system paying for its own.
_finished_dirs = []


def _remove_finished_dirs():
    for d in _finished_dirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_remove_finished_dirs)


class Tern:
    name = "tern"

    def __init__(self, args):
        self.args = args

    def start(self):
        tempfile.tempdir = SPOOL_BASE  # harness uses mkdtemp(): a real disk
        config = dev_config()
        for setting in getattr(self.args, "tern_set", []):
            key, _, value = setting.partition("=")
            config[key.strip()] = value.strip()
        self.stack = harness.Stack(config=config, services=dev_services(), keep=True)
        self.stack.__enter__()
        self.port = self.stack.port("smtp")
        self.new_dir = os.path.join(self.stack.mail_dir, "tern.test", "demo", "new")

    def processes(self):
        return self.stack._stack_processes(), self.stack.master_pid or self._master()

    def _master(self):
        for pid in self.stack._stack_processes():
            st = proc_stat(pid)
            if st and st[0] == "master":
                return pid
        return None

    def delivered(self):
        return count_files(self.new_dir)

    def stop(self):
        self.stack.__exit__(None, None, None)
        if not getattr(self.args, "keep", False):
            _finished_dirs.append(self.stack.base)


class Postfix(smtp_accept.Postfix):
    def start(self):
        self.setup(full=True)
        self.new_dir = os.path.join(self.mail, "tern.test", "demo", "Maildir", "new")

    def processes(self):
        pids = self._processes()
        master = next((p for p in pids if self._comm(p) == "master"), None)
        return pids, master

    def delivered(self):
        return count_files(self.new_dir)

    def stop(self):
        self.teardown(remove=False)
        if not self.args.keep:
            _finished_dirs.append(self.base)


# --- one run -------------------------------------------------------------------

def run_once(system, load, messages, size, timeout):
    system.start()
    try:
        pids, master = system.processes()
        before_cpu = cpu_by_kind(pids, master)
        before_machine = machine_cpu()
        before_disk = disk_requests()
        p_before, avg_before = pressure_total()
        cmd = [SMTP_SOURCE, "-s", "20", "-m", str(messages), "-l", str(size), "-f", SENDER, "-t", RCPT,
               "-M", "client.bench.test"] + (["-d"] if load == "reuse" else []) + [f"127.0.0.1:{system.port}"]
        start = time.monotonic()
        src = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        accepted = delivered = None
        src_cpu = 0.0
        deadline = start + timeout
        try:
            while delivered is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{system.name} {load}: accepted={accepted is not None}, "
                                       f"{system.delivered()} of {messages} delivered after {timeout}s")
                if accepted is None:
                    pid, status, usage = os.wait4(src.pid, os.WNOHANG)
                    if pid:
                        accepted = time.monotonic() - start
                        src.returncode = os.waitstatus_to_exitcode(status)
                        src_cpu = usage.ru_utime + usage.ru_stime
                        if src.returncode != 0:
                            raise RuntimeError(f"smtp-source exited {src.returncode}: {src.stderr.read()[:300]}")
                    time.sleep(0.01)
                    continue
                # Counted only once all is accepted (no listing during accept):
                # e2e cannot end before that.
                if system.delivered() >= messages:
                    delivered = time.monotonic() - start
                    break
                time.sleep(0.02)
        finally:
            if accepted is None and src.poll() is None:
                src.kill()
                src.wait()
        elapsed = time.monotonic() - start
        pids, master = system.processes()
        after_cpu = cpu_by_kind(pids, master)
        after_machine = machine_cpu()
        after_disk = disk_requests()
        p_after, avg_after = pressure_total()
    finally:
        system.stop()
    cpu = {k: after_cpu.get(k, 0.0) - before_cpu.get(k, 0.0) for k in after_cpu}
    cpu = {k: v for k, v in cpu.items() if v > 0.005}
    cpu["smtp-source"] = src_cpu
    machine = {k: after_machine[k] - before_machine[k] for k in after_machine}
    pressure = (p_after - p_before) / 1e6 / elapsed * 100 if p_before is not None else None
    disk = {k: after_disk[k] - before_disk[k] for k in after_disk}
    return {"accept": messages / accepted, "e2e": messages / delivered, "cpu": cpu, "machine": machine, "disk": disk,
            "messages": messages, "pressure": pressure, "avg10": (avg_before, avg_after)}


def run_rounds(systems, rounds, run, report):
    """Runs run(system) `rounds` times for every system, the order reversed
    every other round so that neither always goes first; a failed run is
    reported and left out.  report(round, system, result) prints a run.
    Returns {system name: [results]}."""
    results = {}
    for rnd in range(rounds):
        order = systems if rnd % 2 == 0 else list(reversed(systems))
        for system in order:
            try:
                r = run(system)
            except Exception as e:  # report and go on
                print(f"  round {rnd + 1} {system.name}: FAILED: {e}", flush=True)
                continue
            results.setdefault(system.name, []).append(r)
            report(rnd + 1, system, r)
    return results


def print_pressure(when):
    """The machine's CPU pressure line, to print before and after the figures."""
    with open("/proc/pressure/cpu") as f:
        print(f"# /proc/pressure/cpu {when}:", f.readline().strip())


def fmt_pressure(r):
    return f"{r['pressure']:.0f}%" if r["pressure"] is not None else "n/a"


def fmt_cpu(r):
    per = 1000.0 / r["messages"]
    parts = [f"{k} {v * per:.2f}" for k, v in sorted(r["cpu"].items(), key=lambda kv: -kv[1])]
    return "CPU s/1000 msg: " + ", ".join(parts)


def fmt_machine(r):
    m = r["machine"]
    total = sum(m.values()) or 1
    disk = r.get("disk")
    per_msg = ("; disk requests per message: " + ", ".join(f"{k} {v / r['messages']:.2f}" for k, v in disk.items())
               if disk else "")
    return "machine: " + " ".join(f"{k} {100 * v / total:.0f}%" for k, v in m.items()) + per_msg


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--messages", type=int, default=6000, help="messages per run of the 1 KiB loads")
    p.add_argument("--large-messages", type=int, default=2000, help="messages per run of the 100 KiB load")
    p.add_argument("--loads", default="new,reuse,large")
    p.add_argument("--only", choices=["tern", "postfix"])
    p.add_argument("--timeout", type=float, default=300, help="deadline of one run in seconds")
    p.add_argument("--keep", action="store_true", help="keep the run directories (tern's and Postfix's)")
    p.add_argument("--tern-set", action="append", default=[], metavar="KEY=VALUE",
                   help="a tern.conf key for tern's stack (repeatable), to compare settings")
    a = p.parse_args()
    if not os.access(SMTP_SOURCE, os.X_OK):
        sys.exit("smtp-source not found: install the postfix package (bench/mail-flow/run does)")
    if not 1 <= a.rounds <= 20 or not 1 <= a.messages <= 100000 or not 1 <= a.large_messages <= 100000:
        sys.exit("--rounds must be 1..20, --messages and --large-messages 1..100000")
    systems = []
    if a.only in (None, "tern"):
        systems.append(Tern(a))
    if a.only in (None, "postfix"):
        if smtp_accept.Postfix.available():
            systems.append(Postfix(a))
        else:
            print("note: Postfix not measured (needs root and /usr/sbin/postfix)", file=sys.stderr)
    loads = [x for x in a.loads.split(",") if x]
    for load in loads:
        if load not in ("new", "reuse", "large"):
            sys.exit(f"unknown load {load}")

    print_pressure("before")
    print(f"# {os.cpu_count()} CPUs; tern services: " +
          "; ".join(" ".join(l.split()[i] for i in (0, 4)) for l in dev_services()))
    results = {}
    for load in loads:
        size = 102400 if load == "large" else 1024
        n = a.large_messages if load == "large" else a.messages
        print(f"\n## load {load}: smtp-source -s 20 -l {size} -m {n}{' -d' if load == 'reuse' else ''}")

        def report(rnd, system, r):
            print(f"  round {rnd} {system.name:8} accept {r['accept']:7.0f} msg/s  e2e {r['e2e']:7.0f} "
                  f"msg/s  cpu pressure {fmt_pressure(r)} (avg10 {r['avg10'][0]}->{r['avg10'][1]})", flush=True)
            print(f"      {fmt_cpu(r)}", flush=True)
            print(f"      {fmt_machine(r)}", flush=True)

        by_system = run_rounds(systems, a.rounds,
                               lambda system: run_once(system, load, n, size, a.timeout), report)
        for name, rs in by_system.items():
            results[(load, name)] = rs

    print("\n## medians (msg/s)")
    for load in loads:
        med = {}
        for system in systems:
            rs = results.get((load, system.name), [])
            if rs:
                med[system.name] = (statistics.median(r["accept"] for r in rs),
                                    statistics.median(r["e2e"] for r in rs))
                print(f"{load:6} {system.name:8} accept {med[system.name][0]:7.0f}  e2e {med[system.name][1]:7.0f}"
                      f"  ({len(rs)} rounds)")
        if "tern" in med and "postfix" in med:
            ratios = []
            for key, idx in (("accept", 0), ("e2e", 1)):
                ratios.append(f"{key} {med['tern'][idx] / med['postfix'][idx]:.2f}x")
            # Per-round ratios: the pairs ran minutes apart at most.
            pairs = list(zip(results.get((load, "tern"), []), results.get((load, "postfix"), [])))
            per_round = ", ".join(f"{t['accept'] / p['accept']:.2f}/{t['e2e'] / p['e2e']:.2f}" for t, p in pairs)
            print(f"{load:6} tern/postfix: {'  '.join(ratios)}   per round (accept/e2e): {per_round}")
    print_pressure("after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
