#!/usr/bin/env python3
"""Timings of tern's imapd on a folder of N messages (tern only; the
side-by-side with a private Dovecot that the issue asks for is not written
yet).  Starts a stack with one imapd (tests/e2e/harness.py), writes N small
messages straight into demo@tern.test's Maildir cur/ (as another tool
would), then times over a raw socket: SELECT (cold: the index is built;
warm), FETCH 1:* (FLAGS), UID FETCH 1:* (ENVELOPE), SEARCH SUBJECT, SEARCH
BODY.  Bounded: N messages, 127.0.0.1 only, the stack is removed.

    bench/imap/tern_ops.py [N]      (default 10000; run from the checkout)
"""
import os, sys, time, socket
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
os.environ.setdefault("TERN_BUILD", os.path.join(ROOT, "build"))
from harness import Stack
N = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
def cmd(s, tag, text):
    s.sendall(f"{tag} {text}\r\n".encode())
    buf = b"\r\n"
    t = time.monotonic()
    while f"\r\n{tag} ".encode() not in buf:
        c = s.recv(1 << 20)
        if not c: raise Exception(buf[-300:])
        buf += c
    return time.monotonic() - t, len(buf)
with Stack(services=["imap inet 127.0.0.1:{port} - 1 imapd", "auth unix $run_directory/auth.sock - 1 auth"]) as st:
    port = st.port("imap")
    s = socket.create_connection(("127.0.0.1", port)); s.recv(1000)
    cmd(s, "a", "LOGIN demo@tern.test demo")
    cur = os.path.join(st.mail_dir, "tern.test", "demo", "cur"); os.makedirs(cur, exist_ok=True)
    for i in range(N):
        body = (f"From: user{i%50}@example.org\nTo: demo@tern.test\nSubject: message number {i} about topic {i%97}\n"
                f"Date: Tue, 1 Jul 2003 10:52:37 +0200\nMessage-ID: <{i}@x>\n\n" + ("line of text %d\n" % i) * 20)
        name = f"{1700000000+i}.M{i}P1.host,S={len(body)}:2,"
        with open(os.path.join(cur, name), "w") as f: f.write(body)
    for tag, c in [("b", "SELECT INBOX"), ("c", "UNSELECT"), ("d", "SELECT INBOX"), ("e", "FETCH 1:* (FLAGS)"),
                   ("f", "UID FETCH 1:* (ENVELOPE)"), ("g", 'SEARCH SUBJECT "topic 5"'), ("h", 'SEARCH BODY "text 9999"'),
                   ("i", "FETCH 1:* (FLAGS)")]:
        dt, n = cmd(s, tag, c)
        print(f"{c:28s} {dt*1000:8.1f} ms {n} bytes")
