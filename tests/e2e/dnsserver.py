"""A small DNS server for the remote-delivery tests: UDP and TCP on
127.0.0.1 (a free port), answering from records the test sets, with no
third-party Python module (the wire format is packed with struct).

    dns = DnsServer()          # starts serving at once
    dns.add("example.test", "MX", (10, "mx1.example.test"))
    dns.add("mx1.example.test", "A", "127.0.0.2")
    dns.servfail.add("broken.test")
    dns.authenticated = True   # set AD, as a validating resolver would
    dns.secure.add("dane.test")  # AD only for names under these zones
    ... dns.port ...
    dns.close()

Types: A, AAAA, MX ((preference, host); host "" or "." is a null MX),
CNAME, TXT (a string or a list of strings), TLSA ((usage, selector,
matching, bytes)).  A name with no record at all answers NXDOMAIN; a name
with records of other types answers NOERROR with no data.  CNAMEs are
followed into the answer, as a recursive resolver does.
"""
import socket
import socketserver
import struct
import threading

TYPES = {"A": 1, "CNAME": 5, "MX": 15, "TXT": 16, "AAAA": 28, "TLSA": 52}


def encode_name(name):
    name = name.rstrip(".")
    out = b""
    if name:
        for label in name.split("."):
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def decode_name(data, pos):
    labels = []
    while True:
        n = data[pos]
        if n == 0:
            return ".".join(labels).lower(), pos + 1
        if n & 0xC0:
            raise ValueError("compression in a question")
        labels.append(data[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n


def rdata(rtype, value):
    if rtype == "A":
        return socket.inet_pton(socket.AF_INET, value)
    if rtype == "AAAA":
        return socket.inet_pton(socket.AF_INET6, value)
    if rtype == "MX":
        return struct.pack(">H", value[0]) + encode_name(value[1])
    if rtype == "CNAME":
        return encode_name(value)
    if rtype == "TXT":
        parts = [value] if isinstance(value, str) else value
        return b"".join(bytes([len(p.encode())]) + p.encode() for p in parts)
    if rtype == "TLSA":
        return bytes(value[:3]) + value[3]
    raise ValueError(rtype)


class DnsServer:
    def __init__(self, host="127.0.0.1", port=0):
        """Serves on host:port; port 0 picks a free port (the same for UDP
        and TCP).  Benchmarks give 53 on a 127.0.0.x of their own, for
        programs that only read /etc/resolv.conf."""
        self.records = {}  # name -> [(type, value)]
        self.servfail = set()
        self.drop = set()
        self.authenticated = False
        self.secure = set()
        self.queries = []  # (name, type) as asked
        self.lock = threading.Lock()
        server = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self):
                data, sock = self.request
                reply = server.answer(data)
                if reply:
                    sock.sendto(reply, self.client_address)

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self):
                self.request.settimeout(5)
                head = self.request.recv(2)
                if len(head) < 2:
                    return
                (n,) = struct.unpack(">H", head)
                data = b""
                while len(data) < n:
                    chunk = self.request.recv(n - len(data))
                    if not chunk:
                        return
                    data += chunk
                reply = server.answer(data)
                if reply:
                    self.request.sendall(struct.pack(">H", len(reply)) + reply)

        for _ in range(50 if port == 0 else 1):
            self.udp = socketserver.ThreadingUDPServer((host, port), Udp)
            self.port = self.udp.server_address[1]
            try:
                socketserver.ThreadingTCPServer.allow_reuse_address = True
                self.tcp = socketserver.ThreadingTCPServer((host, self.port), Tcp)
                break
            except OSError:
                self.udp.server_close()
        else:
            raise RuntimeError("no free port for the test DNS server")
        self.udp.daemon_threads = self.tcp.daemon_threads = True
        self.threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
                        for s in (self.udp, self.tcp)]
        for t in self.threads:
            t.start()

    def add(self, name, rtype, value):
        with self.lock:
            self.records.setdefault(name.rstrip(".").lower(), []).append((rtype, value))

    def clear(self, name):
        with self.lock:
            self.records.pop(name.rstrip(".").lower(), None)

    def answer(self, data):
        try:
            qid, flags, qd = struct.unpack(">HHH", data[:6])
            qname, pos = decode_name(data, 12)
            qtype, qclass = struct.unpack(">HH", data[pos:pos + 4])
        except (ValueError, IndexError, struct.error):
            return None
        question = data[12:pos + 4]
        tname = next((k for k, v in TYPES.items() if v == qtype), str(qtype))
        with self.lock:
            self.queries.append((qname, tname))
            if qname in self.drop:
                return None
            rcode = 0
            answers = []
            if qname in self.servfail:
                rcode = 2
            else:
                name, known = qname, False
                for _ in range(10):
                    recs = self.records.get(name, [])
                    known = known or bool(recs)
                    target = None
                    for rtype, value in recs:
                        if rtype == tname:
                            answers.append((name, rtype, value))
                        elif rtype == "CNAME":
                            answers.append((name, rtype, value))
                            target = value.rstrip(".").lower()
                    if not target:
                        break
                    name, known = target, False
                if not known:
                    rcode = 3
            ad = self.authenticated or any(qname == z or qname.endswith("." + z) for z in self.secure)
        # QR, RD copied, RA, AD as configured.
        rflags = 0x8000 | (flags & 0x0100) | 0x0080 | (0x0020 if ad else 0) | rcode
        out = struct.pack(">HHHHHH", qid, rflags, 1, len(answers), 0, 0) + question
        for name, rtype, value in answers:
            rd = rdata(rtype, value)
            out += encode_name(name) + struct.pack(">HHIH", TYPES[rtype], 1, 60, len(rd)) + rd
        return out

    def close(self):
        for s in (self.udp, self.tcp):
            s.shutdown()
            s.server_close()
