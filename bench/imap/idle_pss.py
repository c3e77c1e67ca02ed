#!/usr/bin/env python3
"""PSS per idle IDLE connection of tern's imapd.

Starts a tern stack (tests/e2e/harness.py) with one imapd process, opens N
connections that log in, SELECT INBOX and IDLE, and reports the growth of
the imapd process's PSS (/proc/PID/smaps_rollup) divided by N.  Bounded:
N connections, every wait has a deadline; 127.0.0.1 only.

    bench/imap/idle_pss.py [--connections 1000] [--tls] [--build build]
"""
import argparse
import os
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def pss_kib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise RuntimeError("no Pss line")


def read_until(sock, marker, deadline):
    buf = b""
    while marker not in buf:
        if time.monotonic() > deadline:
            raise TimeoutError(f"waiting for {marker!r}, got {buf[-200:]!r}")
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(buf[-200:])
        buf += chunk
    return buf


def idle_connection(port, deadline, tls=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    if tls:
        s = tls.wrap_socket(s)
    read_until(s, b"\r\n", deadline)
    s.sendall(b"a LOGIN demo@tern.test demo\r\nb SELECT INBOX\r\nc IDLE\r\n")
    read_until(s, b"+ idling\r\n", deadline)
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--tls", action="store_true", help="connect to imaps (implicit TLS)")
    args = ap.parse_args()
    os.environ["TERN_BUILD"] = os.path.abspath(args.build)
    sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
    from harness import Stack  # noqa: E402
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.connections + 100)), hard))
    services = ["imap inet 127.0.0.1:{port} - 1 imapd", "auth unix $run_directory/auth.sock - 1 auth"]
    tls = None
    if args.tls:
        import ssl
        services[0] += " -o imapd_mode=imaps"
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    with Stack(services=services) as st:
        pid = st.pids("imap")[0]
        port = st.port("imap")
        deadline = time.monotonic() + 600
        # Warm up: the first login maps code and creates the default folders.
        warm = [idle_connection(port, deadline, tls) for _ in range(10)]
        time.sleep(0.5)
        before = pss_kib(pid)
        conns = [idle_connection(port, deadline, tls) for _ in range(args.connections)]
        time.sleep(1.0)
        after = pss_kib(pid)
        per = (after - before) / args.connections
        print(f"imapd pid {pid}: PSS {before} KiB with 10 warm-up connections, "
              f"{after} KiB with {args.connections} more idle IDLE connections")
        print(f"PSS per idle IDLE connection: {per:.1f} KiB")
        for s in conns + warm:
            s.close()


if __name__ == "__main__":
    main()
