#!/usr/bin/env python3
"""Remote delivery benchmark: messages per second that tern's smtp-client
and a private Postfix 3.7's smtp(8) deliver to Postfix's smtp-sink on
loopback, in the same run, alternating.

    bench/remote-delivery/run [--rounds R] [--messages N] [--loads few,many]
                              [--only tern|postfix]

Loads (1 KiB messages, one recipient each, spread round-robin over the
destination domains):

  few     4 domains (d0.few.test ...): many messages per destination
  many    200 domains (d0.many.test ...): a few messages per destination

Every domain has an MX record naming its own host, whose A record is one of
8 smtp-sink listeners on 127.0.0.2 ... 127.0.0.9 (same port).  Both systems
resolve them through the same small DNS server (tests/e2e/dnsserver.py) on
127.0.0.153:53: tern through `dns_resolvers`, Postfix through the libc
resolver, started in a private mount namespace whose /etc/resolv.conf names
that server.  Postfix's smtp(8) reaches the sinks' port through a transport
map `<domain> smtp:<domain>:<port>` (MX lookup kept); tern through `smtp_tcp_port`.

One run: a fresh system, the N messages queued first without delivery
(tern: smtpd without qmgr and smtp-client; Postfix: every recipient put on
hold), then delivery released (tern: qmgr and smtp-client added by a
reload; Postfix: `postsuper -H ALL` and `postqueue -f`) and timed until the
sinks have counted N messages.  Both run with their default process counts
and concurrency limits (tern: conf/dev/services.conf and conf/dev/tern.conf
as `make run` uses them; Postfix: default_destination_concurrency_limit 20,
connection cache on demand).  Printed per run: msg/s, CPU seconds per 1,000
messages per process kind, the sinks' session count, the DNS queries
asked and the CPU pressure
(/proc/pressure/cpu "some") during the run; at the end the medians and the
ratio tern/Postfix.  Needs root (smtp-sink, port 53, the namespace).
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
import threading
import time
import smtplib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench", "mail-flow"))
sys.path.insert(0, os.path.join(ROOT, "bench", "smtp-accept"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402
import mail_flow  # noqa: E402  (CPU and pressure readings, the dev stack's configuration)
import smtp_accept  # noqa: E402  (the private Postfix)
from dnsserver import DnsServer  # noqa: E402
from smtp_accept import SPOOL_BASE, wait_for  # noqa: E402

SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
POSTSUPER = shutil.which("postsuper") or "/usr/sbin/postsuper"
POSTQUEUE = shutil.which("postqueue") or "/usr/sbin/postqueue"
DNS_HOST = "127.0.0.153"
SINK_HOSTS = [f"127.0.0.{i}" for i in range(2, 10)]
LOADS = {"few": 4, "many": 200}
SENDER = "bench@tern.test"
INJECT_SESSIONS = 8


# --- the receiving side ----------------------------------------------------------

class Sinks:
    """One smtp-sink per address in SINK_HOSTS on one port, each with its
    running counter (-c) read from its stdout."""

    def __init__(self, port):
        self.port = port
        self.counts = {}
        self.sessions = {}
        self.procs = []
        for host in SINK_HOSTS:
            p = subprocess.Popen([SMTP_SINK, "-u", "nobody", "-c", f"{host}:{port}", "256"],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.procs.append(p)
            self.counts[host] = 0
            self.sessions[host] = 0
            threading.Thread(target=self._read, args=(host, p), daemon=True).start()
        for host in SINK_HOSTS:
            wait_for(lambda h=host: self._listening(h), 10, f"smtp-sink on {host}:{port}")

    def _listening(self, host):
        import socket
        try:
            socket.create_connection((host, self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def _read(self, host, proc):
        # "sess=N quit=N mesg=N\r" per message and per session end.
        rx = re.compile(rb"sess=(\d+) quit=(\d+) mesg=(\d+)")
        buf = b""
        while True:
            chunk = proc.stdout.read1(4096)
            if not chunk:
                return
            buf += chunk
            *done, buf = buf.split(b"\r")
            for item in reversed(done):
                m = rx.search(item)
                if m:
                    self.sessions[host] = int(m.group(1))
                    self.counts[host] = int(m.group(3))
                    break

    def total(self):
        return sum(self.counts.values())

    def total_sessions(self):
        """Sessions ended so far (smtp-sink counts one when it closes)."""
        return sum(self.sessions.values())

    def close(self):
        harness.stop_processes(self.procs)


def add_domains(dns, load, count):
    for i in range(count):
        domain = f"d{i}.{load}.test"
        dns.add(domain, "MX", (10, f"mx.{domain}"))
        dns.add(f"mx.{domain}", "A", SINK_HOSTS[i % len(SINK_HOSTS)])


def inject(port, load, messages, timeout):
    """Queues `messages` 1 KiB messages over INJECT_SESSIONS sessions, the
    recipients round-robin over the load's domains."""
    domains = LOADS[load]
    line = b"x" * 70 + b"\r\n"
    errors = []

    def session(first):
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=timeout) as c:
                c.ehlo("client.bench.test")
                for n in range(first, messages, INJECT_SESSIONS):
                    rcpt = f"user{n}@d{n % domains}.{load}.test"
                    head = (f"From: <{SENDER}>\r\nTo: <{rcpt}>\r\nSubject: remote bench {n}\r\n"
                            f"Message-ID: <{n}.{time.time()}@bench.test>\r\n\r\n").encode()
                    body = head + line * ((1024 - len(head)) // len(line))
                    c.sendmail(SENDER, [rcpt], body)
        except Exception as e:  # reported by the caller
            errors.append(e)

    threads = [threading.Thread(target=session, args=(i,)) for i in range(INJECT_SESSIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    if errors or any(t.is_alive() for t in threads):
        raise RuntimeError(f"injection failed: {errors[:1] or 'timed out'}")


# --- the systems -----------------------------------------------------------------

class Tern:
    name = "tern"
    delivery = ("qmgr", "smtp-client")

    def __init__(self, args, sink_port):
        self.args = args
        self.sink_port = sink_port

    def start(self):
        tempfile.tempdir = SPOOL_BASE  # the harness's mkdtemp(): a real disk
        config = mail_flow.dev_config()
        config.update({"dns_resolvers": f"{DNS_HOST}:53", "smtp_tcp_port": str(self.sink_port)})
        config.update(dict(kv.split("=", 1) for kv in self.args.tern_set))
        services = mail_flow.dev_services()
        self.held = [l for l in services if l.split()[0] in self.delivery]
        self.stack = harness.Stack(config=config,
                                   services=[l for l in services if l.split()[0] not in self.delivery])
        self.stack.__enter__()
        self.port = self.stack.port("smtp")

    def release(self):
        for line in self.held:
            self.stack.set_service(line.split()[0], line)
        proc = self.stack.mailctl("reload")
        if proc.returncode != 0:
            raise RuntimeError(f"mailctl reload: {proc.stdout}{proc.stderr}")

    def processes(self):
        pids = self.stack._stack_processes()
        master = next((p for p in pids if (mail_flow.proc_stat(p) or ("",))[0] == "master"), None)
        return pids, master

    def failures(self):
        return len(re.findall(r"status=(?:deferred|bounced)", self.stack.log_text()))

    def stop(self):
        self.stack.__exit__(None, None, None)


class Postfix(smtp_accept.Postfix):
    def __init__(self, args, sink_port, resolv):
        super().__init__(args)
        self.sink_port = sink_port
        self.tables = tempfile.mkdtemp(prefix="postfix-remote-", dir=SPOOL_BASE)
        with open(os.path.join(self.tables, "hold"), "w") as f:
            f.write("/./ HOLD\n")
        with open(os.path.join(self.tables, "transport"), "w") as f:
            # No $1 in transport regexps: one line per domain.
            for load, count in LOADS.items():
                for i in range(count):
                    f.write(f"d{i}.{load}.test smtp:d{i}.{load}.test:{sink_port}\n")
        self.resolv = resolv

    def start(self):
        t = self.tables
        self.setup(full=True, main_extra={
            "smtpd_recipient_restrictions": f"check_recipient_access regexp:{t}/hold, permit_mynetworks, reject",
            "transport_maps": f"texthash:{t}/transport",
            "smtp_tls_security_level": "none",
        }, master_extra="smtp      unix  -       -       n       -       -       smtp\n",
            start_prefix=["unshare", "-m", "--propagation", "private", "sh", "-c",
                          'mount --bind "$0" /etc/resolv.conf && exec "$@"', self.resolv])

    def release(self):
        env = dict(os.environ, MAIL_CONFIG=self.conf)
        for cmd in ([POSTSUPER, "-c", self.conf, "-H", "ALL"], [POSTQUEUE, "-c", self.conf, "-f"]):
            subprocess.run(cmd, check=True, capture_output=True, timeout=60, env=env, stdin=subprocess.DEVNULL)

    def processes(self):
        pids = self._processes()
        return pids, next((p for p in pids if self._comm(p) == "master"), None)

    def failures(self):
        try:
            with open(os.path.join(self.base, "postfix.log"), errors="replace") as f:
                return len(re.findall(r"status=(?:deferred|bounced)", f.read()))
        except OSError:
            return 0

    def stop(self):
        self.teardown()

    def remove_tables(self):
        shutil.rmtree(self.tables, ignore_errors=True)


# --- one run -----------------------------------------------------------------------

def run_once(system, sinks, dns, load, messages, timeout):
    system.start()
    try:
        inject(system.port, load, messages, timeout)
        before = sinks.total()
        pids, master = system.processes()
        cpu0 = mail_flow.cpu_by_kind(pids, master)
        p0, _ = mail_flow.pressure_total()
        sessions0 = sinks.total_sessions()
        queries0 = len(dns.queries)
        start = time.monotonic()
        system.release()
        wait_for(lambda: sinks.total() - before >= messages, timeout,
                 f"{system.name}: {messages} messages at the sinks")
        elapsed = time.monotonic() - start
        queries = len(dns.queries) - queries0
        pids, master = system.processes()
        cpu1 = mail_flow.cpu_by_kind(pids, master)
        p1, _ = mail_flow.pressure_total()
        failures = system.failures()
    finally:
        system.stop()  # cached sessions close here: counted below
    time.sleep(0.5)  # the sinks' counter threads see the last closes
    cpu = {k: cpu1.get(k, 0.0) - cpu0.get(k, 0.0) for k in cpu1}
    cpu = {k: v for k, v in cpu.items() if v > 0.005}
    pressure = (p1 - p0) / 1e6 / elapsed * 100 if p0 is not None else None
    return {"rate": messages / elapsed, "cpu": cpu, "messages": messages, "pressure": pressure,
            "failures": failures, "queries": queries, "sessions": sinks.total_sessions() - sessions0}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--messages", type=int, default=3000)
    p.add_argument("--loads", default="few,many")
    p.add_argument("--only", choices=["tern", "postfix"])
    p.add_argument("--timeout", type=float, default=300, help="deadline of each step of a run, seconds")
    p.add_argument("--keep", action="store_true", help="keep the Postfix temp directories")
    p.add_argument("--tern-set", action="append", default=[], metavar="KEY=VALUE",
                   help="a tern.conf key for tern's runs (A/B of a setting), repeatable")
    a = p.parse_args()
    if any("=" not in kv for kv in a.tern_set):
        sys.exit("--tern-set takes KEY=VALUE")
    if os.geteuid() != 0:
        sys.exit("needs root: smtp-sink drops to nobody, the DNS server uses port 53, Postfix a mount namespace")
    if not os.access(SMTP_SINK, os.X_OK):
        sys.exit("smtp-sink not found: install the postfix package (bench/remote-delivery/run does)")
    if not 1 <= a.rounds <= 20 or not 1 <= a.messages <= 100000:
        sys.exit("--rounds must be 1..20, --messages 1..100000")
    loads = [x for x in a.loads.split(",") if x]
    for load in loads:
        if load not in LOADS:
            sys.exit(f"unknown load {load} (few, many)")

    work = tempfile.mkdtemp(prefix="remote-bench-", dir=SPOOL_BASE)
    atexit.register(shutil.rmtree, work, True)
    resolv = os.path.join(work, "resolv.conf")
    with open(resolv, "w") as f:
        f.write(f"nameserver {DNS_HOST}\noptions attempts:2 timeout:2\n")
    dns = DnsServer(DNS_HOST, 53)
    atexit.register(dns.close)
    for load in loads:
        add_domains(dns, load, LOADS[load])
    sinks = Sinks(harness.free_port())
    atexit.register(sinks.close)

    systems = []
    if a.only in (None, "tern"):
        systems.append(Tern(a, sinks.port))
    if a.only in (None, "postfix"):
        if smtp_accept.Postfix.available():
            pf = Postfix(a, sinks.port, resolv)
            atexit.register(pf.remove_tables)
            systems.append(pf)
        else:
            print("note: Postfix not measured (needs /usr/sbin/postfix)", file=sys.stderr)

    mail_flow.print_pressure("before")
    print(f"# {os.cpu_count()} CPUs; {a.messages} messages of 1 KiB per run; sinks on "
          f"{SINK_HOSTS[0]}..{SINK_HOSTS[-1]}:{sinks.port}; DNS on {DNS_HOST}:53")
    results = {}
    for load in loads:
        print(f"\n## load {load}: {LOADS[load]} destination domains")

        def report(rnd, system, r):
            print(f"  round {rnd} {system.name:8} {r['rate']:7.0f} msg/s  cpu pressure {mail_flow.fmt_pressure(r)}  "
                  f"SMTP sessions {r['sessions']}  DNS queries {r['queries']}  deferred/bounced log lines {r['failures']}", flush=True)
            print(f"      {mail_flow.fmt_cpu(r)}", flush=True)

        by_system = mail_flow.run_rounds(systems, a.rounds,
                                         lambda system: run_once(system, sinks, dns, load, a.messages, a.timeout),
                                         report)
        for name, rs in by_system.items():
            results[(load, name)] = rs

    print("\n## medians (msg/s)")
    for load in loads:
        med = {}
        for system in systems:
            rs = results.get((load, system.name), [])
            if rs:
                med[system.name] = statistics.median(r["rate"] for r in rs)
                print(f"{load:5} {system.name:8} {med[system.name]:7.0f}  ({len(rs)} rounds)")
        if "tern" in med and "postfix" in med:
            pairs = list(zip(results.get((load, "tern"), []), results.get((load, "postfix"), [])))
            per_round = ", ".join(f"{t['rate'] / p['rate']:.2f}" for t, p in pairs)
            print(f"{load:5} tern/postfix: {med['tern'] / med['postfix']:.2f}x   per round: {per_round}")
    mail_flow.print_pressure("after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
