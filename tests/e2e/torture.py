"""Mail under kill -9: the senders, killers and accounting shared by the
crash test (tests/e2e/test_crash.py, bounded, in `make check`) and the
manual full torture (tests/torture, issue 9's 10,000 messages).

Senders: N smtplib clients (threads), each taking the next message from one
list and sending it on its connection, reconnecting after an error.  A
message gets up to `tries` attempts; a 4xx or a broken connection is
retried, a 5xx is a rejection.  The client notes whether a retry followed a
failure *after the message body was sent* (DATA answered 354, the body and
the final dot went out, no 250 came back): that message may have been
queued by the first attempt, so a second copy of it in the Maildir is a
duplicate SMTP itself causes (RFC 5321 6.1 allows it), counted apart from
duplicates the delivery side causes.

Every message carries a unique token in its Subject and Message-ID; the
Maildir is read back at the end: lost = accepted tokens not delivered,
duplicates = extra copies, split into SMTP-caused and delivery-side.

Killers: `PlannedKiller` kills at fixed points (after the k-th accepted
message, after the k-th delivered file), one ready worker of a service each
time, so that a run always makes the same kills; `RandomKiller` (manual
torture only) kills a random ready worker every ~gap seconds.
"""
import os
import random
import re
import signal
import smtplib
import socket
import threading
import time

RCPT = "demo@tern.test"
TOKEN_RE = re.compile(rb"^Subject: torture (tt-\d+-[0-9a-f]{8})$", re.M)
VICTIMS = ("smtp", "qmgr", "local")


def message(token):
    # CRLF lines, none starting with a dot: sent as is after DATA.
    return (f"From: <{RCPT}>\r\nTo: <{RCPT}>\r\nSubject: torture {token}\r\n"
            f"Message-ID: <{token}@torture.test>\r\n\r\n"
            f"body of {token}\r\n" + "filler line to give the message some size\r\n" * 20 +
            f"end {token}\r\n").encode()


class Senders:
    """The clients and what they saw."""

    def __init__(self, port, count, clients, tries=3, limit=600):
        self.port = port
        self.tokens = ["tt-%d-%08x" % (i, random.getrandbits(32)) for i in range(count)]
        self.clients = clients
        self.tries = tries
        self.deadline = time.monotonic() + limit
        self.next = 0
        self.lock = threading.Lock()
        self.accepted = set()
        self.given_up = []
        self.rejected = []      # (token, code, text): 5xx answers
        self.retries = 0
        self.after_data = set()  # tokens retried after their body was sent
        self.errors = {}        # error kind: count, for the figures

    def take(self):
        with self.lock:
            if self.next >= len(self.tokens) or time.monotonic() > self.deadline:
                return None
            self.next += 1
            return self.tokens[self.next - 1]

    def run(self):
        threads = [threading.Thread(target=self.client, name=f"sender{i}") for i in range(self.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(self.deadline - time.monotonic(), 0) + 60)
        return not any(t.is_alive() for t in threads)

    def client(self):
        conn = None
        try:
            while (token := self.take()) is not None:
                conn = self.send_one(conn, token)
        finally:
            self.drop(conn)

    def send_one(self, conn, token):
        """Sends one message with up to `tries` attempts; returns the connection to reuse."""
        body = message(token) + b".\r\n"
        history = []  # what each failed attempt met, for a message given up
        for attempt in range(self.tries):
            if attempt:
                with self.lock:
                    self.retries += 1
                time.sleep(0.2 * attempt)  # a killed smtpd is back within ~0.1 s
            sent_body = False
            try:
                if conn is None:
                    conn = smtplib.SMTP("127.0.0.1", self.port, timeout=20)
                    conn.ehlo("torture.test")
                for cmd, want in ((f"MAIL FROM:<{RCPT}>", 250), (f"RCPT TO:<{RCPT}>", 250), ("DATA", 354)):
                    code, text = conn.docmd(cmd)
                    if code != want:
                        raise smtplib.SMTPResponseException(code, text)
                conn.send(body)
                sent_body = True
                code, text = conn.getreply()
                if code != 250:
                    raise smtplib.SMTPResponseException(code, text)
                with self.lock:
                    self.accepted.add(token)
                return conn
            except smtplib.SMTPResponseException as e:
                self.note(e, e.smtp_code)
                history.append(f"{e.smtp_code} {e.smtp_error!r}")
                conn = self.drop(conn)
                if 500 <= e.smtp_code < 600:
                    with self.lock:
                        self.rejected.append((token, e.smtp_code, str(e)))
                    return conn
                # A 4xx after the body is a definite "not queued": no duplicate risk.
            except (smtplib.SMTPException, OSError, socket.timeout) as e:
                self.note(e)
                history.append(f"{type(e).__name__} {e}" + (" after DATA" if sent_body else ""))
                conn = self.drop(conn)
                if sent_body:
                    with self.lock:
                        self.after_data.add(token)
        with self.lock:
            self.given_up.append((token, history))
        return conn

    def note(self, error, code=None):
        kind = type(error).__name__ + (f" {code}" if code else "")
        with self.lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1

    @staticmethod
    def drop(conn):
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass
        return None


def maildir_dirs(stack):
    base = os.path.join(stack.mail_dir, "tern.test", "demo")
    if not os.path.isdir(os.path.join(base, "new")):
        base = os.path.join(base, "Maildir")
    return [os.path.join(base, sub) for sub in ("new", "cur")]


def delivered_files(stack):
    n = 0
    for d in maildir_dirs(stack):
        try:
            n += len(os.listdir(d))
        except FileNotFoundError:
            pass
    return n


def body_files(stack):
    """Message body files left in the queue directory (msg/<hash>/<id>)."""
    return sum(len(names) for _, _, names in os.walk(os.path.join(stack.queue_dir, "msg")))


def delivered_tokens(stack):
    """{token: copies} over demo's Maildir new/ and cur/, and the files cut short."""
    counts, broken = {}, []
    for d in maildir_dirs(stack):
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            with open(os.path.join(d, name), "rb") as f:
                raw = f.read()
            m = TOKEN_RE.search(raw)
            if not m:
                broken.append(name)
                continue
            token = m.group(1).decode()
            if not raw.endswith(f"end {token}\n".encode()):
                broken.append(name)
            counts[token] = counts.get(token, 0) + 1
    return counts, broken


def ready_pids(stack, service):
    """Pids of the service's workers that said they are ready."""
    svc = (stack.status() or {}).get(service, {})
    return [p for p in svc.get("pids", []) if p not in svc.get("starting", [])]


def kill_ready(stack, service, rng=None, timeout=10):
    """SIGKILLs one ready worker of service (waiting, bounded, for one to be
    ready); returns its pid."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pids = ready_pids(stack, service)
        except Exception:  # mailctl slow under load: ask again
            pids = []
        if pids:
            pid = rng.choice(pids) if rng else pids[0]
            try:
                os.kill(pid, signal.SIGKILL)
                return pid
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"no ready {service} worker to kill within {timeout}s")
        time.sleep(0.01)


class PlannedKiller(threading.Thread):
    """Kills at fixed points: plan = [(counter, threshold, service)], counter
    "accepted" (messages that got their 250) or "delivered" (files in the
    Maildir).  Each kill happens once its counter reaches the threshold."""

    def __init__(self, stack, senders, plan, limit):
        super().__init__(name="killer")
        self.stack, self.senders, self.limit = stack, senders, limit
        self.plan = sorted(plan, key=lambda p: (p[0], p[1]))
        self.done = []   # (counter, threshold, service, pid, value seen)
        self.error = None
        self.stop = threading.Event()

    def run(self):
        pending = list(self.plan)
        deadline = time.monotonic() + self.limit
        try:
            while pending and not self.stop.is_set():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"kill points not reached: {pending}")
                values = {"accepted": len(self.senders.accepted), "delivered": delivered_files(self.stack)}
                for point in list(pending):
                    counter, threshold, service = point
                    if values[counter] >= threshold:
                        pid = kill_ready(self.stack, service)
                        self.done.append((counter, threshold, service, pid, values[counter]))
                        pending.remove(point)
                time.sleep(0.005)
        except Exception as e:  # reported by the test
            self.error = e

    def kills(self):
        out = {v: 0 for v in VICTIMS}
        for _, _, service, _, _ in self.done:
            out[service] = out.get(service, 0) + 1
        return out


class RandomKiller(threading.Thread):
    """Kills a random ready worker of a random service every ~gap seconds
    until stopped, then for `after` seconds more."""

    def __init__(self, stack, gap=0.1, after=5.0, seed=None):
        super().__init__(name="killer")
        self.stack, self.gap, self.after = stack, gap, after
        self.rng = random.Random(seed)
        self.kills = {v: 0 for v in VICTIMS}
        self.stop = threading.Event()

    def run(self):
        end = None
        while True:
            wait = self.rng.uniform(self.gap / 2, self.gap * 1.5)
            if end is None:
                if self.stop.wait(wait):
                    end = time.monotonic() + self.after
            elif time.monotonic() >= end:
                return
            else:
                time.sleep(wait)
            service = self.rng.choice(VICTIMS)
            try:
                pids = ready_pids(self.stack, service)
            except Exception:
                continue
            if pids:
                try:
                    os.kill(self.rng.choice(pids), signal.SIGKILL)
                    self.kills[service] += 1
                except ProcessLookupError:
                    pass


def drain(stack, limit):
    """After the burst: every service ready, queue flushed, then waits until
    the queue is empty and the Maildir has not changed for 1.5 s."""
    stack.wait_ready(stack.service_names(), 30)
    stack.mailctl("queue", "flush", check=True)
    last = {"n": -1, "since": time.monotonic()}

    def drained():
        listing = stack.mailctl("queue", "list").stdout
        n = delivered_files(stack)
        now = time.monotonic()
        if n != last["n"]:
            last.update(n=n, since=now)
            return False
        return "Mail queue is empty" in listing and now - last["since"] >= 1.5
    stack.wait_for(drained, limit, "an empty queue and a quiet Maildir")


def account(stack, senders):
    """The figures of a run: lost, duplicates (SMTP-caused and delivery-side), broken files."""
    counts, broken = delivered_tokens(stack)
    extra = {t: n - 1 for t, n in counts.items() if n > 1}
    known = set(senders.tokens)
    return {
        "sent": len(senders.tokens),
        "accepted": len(senders.accepted),
        "given_up": len(senders.given_up),
        "rejected": len(senders.rejected),
        "retries": senders.retries,
        "retries_after_data": len(senders.after_data),
        "lost": sorted(t for t in senders.accepted if t not in counts),
        "distinct_delivered": len(counts),
        "files": sum(counts.values()),
        "smtp_duplicates": sum(n for t, n in extra.items() if t in senders.after_data),
        "delivery_duplicates": sum(n for t, n in extra.items() if t not in senders.after_data),
        "delivery_duplicate_tokens": sorted(t for t in extra if t not in senders.after_data),
        "unexpected": sorted(t for t in counts if t not in known),
        "broken": broken,
        "orphan_body_files": body_files(stack),
        "throttled": stack.log_text().count("throttling after"),
        "errors": dict(senders.errors),
    }


def summary(figures, kills, seconds):
    f = figures
    return (f"{f['sent']} messages, {f['accepted']} accepted, {f['given_up']} given up, "
            f"{f['rejected']} rejected, {len(f['lost'])} lost, "
            f"{f['delivery_duplicates']} delivery-side duplicates, {f['smtp_duplicates']} SMTP-caused duplicates "
            f"({f['retries_after_data']} retries after DATA, {f['retries']} retries), "
            f"{len(f['broken'])} broken, {f['orphan_body_files']} orphan body files, "
            f"kills {sum(kills.values())} {kills}, throttling {f['throttled']}x, "
            f"{' '.join(f'{k}={v:.1f}s' for k, v in seconds.items())}; errors {f['errors']}")
