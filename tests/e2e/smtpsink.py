"""A scriptable SMTP receiver for the remote-delivery tests, listening on a
loopback address (127.0.0.x or ::1) and port the test chooses.

    sink = SmtpSink("127.0.0.3", port, extensions=["PIPELINING", "8BITMIME"])
    sink.rcpt_reply = lambda addr: "550 5.1.1 no such user" if ... else None
    ... sink.messages: [Message(mail=..., rcpts=[...], data=bytes, tls=bool)]
    ... sink.sessions: number of connections, sink.commands: every line seen
    sink.close()

extensions: the EHLO keywords offered (default: a modern server).  With
certfile/keyfile, STARTTLS is offered too and works.  With auth={user:
password}, AUTH (auth_mechanisms, default PLAIN LOGIN) is offered after
STARTTLS only; .authenticated lists (user, mechanism) of good logins.  Replies default to
success; ehlo=False answers EHLO with 502 (a server that only knows HELO);
rcpt_reply, mail_reply and data_reply (callables returning a reply
line or None) change them.  .mail_pipelined says, per MAIL, whether the
client had sent the next command before MAIL's reply (PIPELINING).  DATA is read until the "." line and
dot-unstuffed; .raw keeps the lines as they came (CRLF, stuffed).
"""
import base64
import socket
import ssl
import threading
import time

DEFAULT_EXTENSIONS = ["PIPELINING", "SIZE 10240000", "8BITMIME", "SMTPUTF8", "DSN", "ENHANCEDSTATUSCODES"]


class Message:
    def __init__(self):
        self.mail = ""
        self.rcpts = []
        self.raw = b""
        self.data = b""
        self.tls = False
        self.accepted_at = None  # time.monotonic() when the final 250 was sent


class SmtpSink:
    def __init__(self, host, port, extensions=None, certfile=None, keyfile=None, greeting=None, auth=None,
                 auth_mechanisms=("PLAIN", "LOGIN"), ehlo=True):
        self.ehlo = ehlo
        self.auth = auth or {}
        self.auth_mechanisms = list(auth_mechanisms)
        self.authenticated = []
        self.host, self.port = host, port
        self.extensions = list(DEFAULT_EXTENSIONS if extensions is None else extensions)
        self.greeting = greeting or "220 sink.test ESMTP"
        self.rcpt_reply = lambda addr: None
        self.mail_reply = lambda line: None
        self.data_reply = lambda msg: None
        self.messages = []
        self.sessions = 0
        self.open_sessions = 0  # connections not closed yet (a client's cached session)
        self.session_starts = []  # time.monotonic() of each accepted connection
        self.commands = []
        self.mail_pipelined = []  # per MAIL: was the next command already sent before its reply?
        self.lock = threading.Lock()
        self.tls_context = None
        if certfile:
            self.tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.tls_context.load_cert_chain(certfile, keyfile)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with self.lock:
                self.sessions += 1
                self.open_sessions += 1
                self.session_starts.append(time.monotonic())
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn):
        conn.settimeout(30)
        f = conn.makefile("rwb")
        tls = False

        def send(line):
            f.write(line.encode() + b"\r\n")
            f.flush()

        try:
            send(self.greeting)
            if not self.greeting.startswith("220"):
                return
            msg = None
            while True:
                line = f.readline()
                if not line:
                    return
                text = line.decode("utf-8", "replace").rstrip("\r\n")
                with self.lock:
                    self.commands.append(text)
                verb = text.split(" ", 1)[0].upper()
                if verb == "EHLO" and not self.ehlo:
                    send("502 5.5.2 Error: command not recognized")
                elif verb == "EHLO":
                    ext = [e for e in self.extensions]
                    if self.tls_context and not tls:
                        ext.append("STARTTLS")
                    if self.auth and tls:
                        ext.append("AUTH " + " ".join(self.auth_mechanisms))
                    lines = ["sink.test"] + ext
                    for l in lines[:-1]:
                        f.write(f"250-{l}\r\n".encode())
                    send(f"250 {lines[-1]}")
                elif verb == "HELO":
                    send("250 sink.test")
                elif verb == "STARTTLS" and self.tls_context and not tls:
                    send("220 2.0.0 go ahead")
                    f.close()
                    conn = self.tls_context.wrap_socket(conn, server_side=True)
                    f = conn.makefile("rwb")
                    tls = True
                elif verb == "AUTH":
                    words = text.split()
                    mech = words[1].upper() if len(words) > 1 else ""
                    if not tls:
                        send("530 5.7.0 Must issue a STARTTLS command first")
                        continue
                    try:
                        if mech == "PLAIN" and mech in self.auth_mechanisms:
                            blob = words[2] if len(words) > 2 else None
                            if blob is None:
                                send("334 ")
                                blob = f.readline().decode().strip()
                            _, user, password = base64.b64decode(blob).decode().split("\0")
                        elif mech == "LOGIN" and mech in self.auth_mechanisms:
                            send("334 VXNlcm5hbWU6")
                            user = base64.b64decode(f.readline().strip()).decode()
                            send("334 UGFzc3dvcmQ6")
                            password = base64.b64decode(f.readline().strip()).decode()
                        else:
                            send("504 5.5.4 mechanism not supported")
                            continue
                    except ValueError:
                        send("501 5.5.2 bad AUTH data")
                        continue
                    if self.auth.get(user) == password:
                        with self.lock:
                            self.authenticated.append((user, mech))
                        send("235 2.7.0 Authentication successful")
                    else:
                        send("535 5.7.8 Authentication credentials invalid")
                elif verb == "MAIL":
                    msg = Message()
                    msg.mail = text
                    msg.tls = tls
                    with self.lock:
                        self.mail_pipelined.append(self._more_input(conn, f))
                    send(self.mail_reply(text) or "250 2.1.0 Ok")
                elif verb == "RCPT":
                    addr = text[text.find("<") + 1:text.find(">")]
                    reply = self.rcpt_reply(addr)
                    if not reply and msg is not None:
                        msg.rcpts.append(text)
                    send(reply or "250 2.1.5 Ok")
                elif verb == "DATA":
                    if msg is None or not msg.rcpts:
                        send("554 5.5.1 no valid recipients")
                        continue
                    send("354 End data with <CR><LF>.<CR><LF>")
                    raw = b""
                    while True:
                        l = f.readline()
                        if not l:
                            return
                        raw += l
                        if l == b".\r\n":
                            break
                    msg.raw = raw
                    body = []
                    for l in raw.split(b"\r\n")[:-2]:
                        body.append(l[1:] if l.startswith(b".") else l)
                    msg.data = b"\r\n".join(body) + b"\r\n"
                    reply = self.data_reply(msg)
                    if not reply:
                        msg.accepted_at = time.monotonic()
                        with self.lock:
                            self.messages.append(msg)
                    send(reply or "250 2.0.0 Ok: queued as SINK%d" % len(self.messages))
                    msg = None
                elif verb == "RSET":
                    msg = None
                    send("250 2.0.0 Ok")
                elif verb == "QUIT":
                    send("221 2.0.0 Bye")
                    return
                else:
                    send("502 5.5.2 Error: command not recognized")
        except (OSError, ssl.SSLError):
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass
            with self.lock:
                self.open_sessions -= 1

    @staticmethod
    def _more_input(conn, f):
        """Whether input follows the line just read, without waiting: a client
        that pipelines sent RCPT (and DATA) with MAIL; one that does not waits
        for MAIL's reply first, so nothing can be there yet."""
        conn.setblocking(False)
        try:
            return len(f.peek(1)) > 0  # the buffer, else what the socket holds now
        except (BlockingIOError, ssl.SSLWantReadError):
            return False
        finally:
            conn.settimeout(30)

    def close(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()
