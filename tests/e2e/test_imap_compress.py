"""End-to-end tests of COMPRESS=DEFLATE (RFC 4978) in imapd with Python's
imaplib and zlib (raw deflate, windowBits -15, a sync flush after each
command as RFC 4978 asks of clients): plain and under implicit TLS, a big
APPEND (whose inflated size is far above imapd's read-ahead, so the
inflater is refilled as the session reads) and a big FETCH byte-exact, an
IDLE notice arriving through the compressed stream, a second COMPRESS
refused, and garbage instead of deflate data answered with BYE.
"""
import imaplib
import os
import sys
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, program_exists  # noqa: E402
from test_imap import tls_context  # noqa: E402

NEEDED = ("master", "mailctl", "auth", "imapd")
USER, PASSWORD = "demo@tern.test", "demo"
imaplib.Commands.setdefault("COMPRESS", ("AUTH", "SELECTED"))


class Deflating:
    """imaplib.IMAP4 methods that, after compress(), speak raw deflate."""

    def compress(self):
        typ, data = self._simple_command("COMPRESS", "DEFLATE")
        if typ != "OK":
            raise imaplib.IMAP4.error("COMPRESS: %s %r" % (typ, data))
        self._enc = zlib.compressobj(6, zlib.DEFLATED, -15)
        self._dec = zlib.decompressobj(-15)
        self._plain = b""
        self.wire_in = 0   # compressed bytes received
        self.plain_in = 0  # what they inflated to
        return typ, data

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise imaplib.IMAP4.abort("connection closed")
        self.wire_in += len(chunk)
        plain = self._dec.decompress(chunk)
        self.plain_in += len(plain)
        self._plain += plain

    def send(self, data):
        if not hasattr(self, "_enc"):
            return super().send(data)
        self.sock.sendall(self._enc.compress(data) + self._enc.flush(zlib.Z_SYNC_FLUSH))

    def read(self, size):
        if not hasattr(self, "_dec"):
            return super().read(size)
        while len(self._plain) < size:
            self._fill()
        out, self._plain = self._plain[:size], self._plain[size:]
        return out

    def readline(self):
        if not hasattr(self, "_dec"):
            return super().readline()
        for _ in range(100000):
            nl = self._plain.find(b"\n")
            if nl >= 0:
                out, self._plain = self._plain[:nl + 1], self._plain[nl + 1:]
                return out
            self._fill()
        raise imaplib.IMAP4.abort("no line")


class DeflatingIMAP4(Deflating, imaplib.IMAP4):
    pass


class DeflatingIMAP4_SSL(Deflating, imaplib.IMAP4_SSL):
    pass


def big_message(n_lines):
    head = (b"From: alice@example.org\r\nTo: demo@tern.test\r\nSubject: big compressed\r\n"
            b"Message-ID: <big@example.org>\r\n\r\n")
    return head + b"".join(b"line %06d of a long and rather repetitive message body\r\n" % i
                           for i in range(n_lines))


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "imapd and auth not built")
class ImapCompressTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(config={"imapd_append_limit": "20000000"})
        cls.stack.start()
        cls.port = cls.stack.port("imap")
        cls.tls_port = cls.stack.port("imaps")

    @classmethod
    def tearDownClass(cls):
        cls.stack.__exit__(None, None, None)

    def connect(self, tls):
        m = DeflatingIMAP4_SSL("127.0.0.1", self.tls_port, ssl_context=tls_context(), timeout=20) if tls \
            else DeflatingIMAP4("127.0.0.1", self.port, timeout=20)
        m.login(USER, PASSWORD)
        return m

    def round_trip(self, tls, folder, n_lines):
        corrupt_before = self.stack.log_text().count("corrupt compressed")
        m = self.connect(tls)
        self.assertIn("COMPRESS=DEFLATE", m.capability()[1][0].decode())
        m.compress()
        # After COMPRESS: no longer offered, and a second one is refused.
        self.assertNotIn("COMPRESS=DEFLATE", m.capability()[1][0].decode())
        typ, data = m._simple_command("COMPRESS", "DEFLATE")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[COMPRESSIONACTIVE]", data[0])
        msg = big_message(n_lines)
        m.create(folder)
        typ, data = m.append(folder, None, None, msg)
        self.assertEqual(typ, "OK", data)
        m.select(folder)
        before = m.wire_in
        typ, data = m.fetch("1", "(RFC822.SIZE BODY.PEEK[])")
        self.assertEqual(typ, "OK")
        self.assertEqual(data[0][1], msg)
        self.assertIn(b"RFC822.SIZE %d" % len(msg), data[0][0])
        received = m.wire_in - before
        # Repetitive text: the FETCH crossed the wire in far fewer bytes.
        self.assertLess(received * 5, len(msg), (received, len(msg)))
        self.assertEqual(m.logout()[0], "BYE")
        self.assertEqual(self.stack.log_text().count("corrupt compressed"), corrupt_before)

    def test_plain_big_append_and_fetch(self):
        # 3.6 MB inflated: many times imapd's 64 KiB read-ahead.
        self.round_trip(False, "Deflate", 60000)

    def test_tls_big_append_and_fetch(self):
        self.round_trip(True, "DeflateTLS", 20000)

    def test_idle_notice_through_compressed_stream(self):
        m = self.connect(False)
        m.compress()
        m.create("IdleZ")
        typ, data = m.select("IdleZ")
        self.assertEqual(data, [b"0"])
        tag = m._new_tag()
        m.send(tag + b" IDLE\r\n")
        self.assertTrue(m.readline().startswith(b"+"))
        other = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        other.login(USER, PASSWORD)
        other.append("IdleZ", None, None, b"Subject: ping\r\n\r\nhello\r\n")
        other.logout()
        # readline waits at most the socket timeout (20 s).
        self.assertEqual(m.readline(), b"* 1 EXISTS\r\n")
        # IMAP4rev1: the new message is this session's \Recent one (RFC 3501 7.3.2).
        self.assertEqual(m.readline(), b"* 1 RECENT\r\n")
        m.send(b"DONE\r\n")
        line = m.readline()
        self.assertTrue(line.startswith(tag + b" OK"), line)
        m.logout()

    def test_first_select_of_a_folder_without_index(self):
        # A first SELECT is answered before the index is written, straight
        # to the socket, but not through the deflate stream: under COMPRESS
        # it is answered after the build, as before.
        m = self.connect(False)
        m.compress()
        m.create("ForeignZ")
        folder = None
        for d in (os.path.join(self.stack.mail_dir, "tern.test", "demo", "Maildir", ".ForeignZ"),
                  os.path.join(self.stack.mail_dir, "tern.test", "demo", ".ForeignZ")):
            if os.path.isdir(os.path.join(d, "cur")):
                folder = d
        self.assertTrue(folder)
        for i, flags in enumerate(("S", "", "S")):
            body = b"Subject: foreign %d\n\nbody\n" % i
            name = "%d.M%dP1.other,S=%d,W=%d:2,%s" % (1700000000 + i, i, len(body), len(body) + 3, flags)
            with open(os.path.join(folder, "cur", name), "wb") as out:
                out.write(body)
        typ, data = m.select("ForeignZ")
        self.assertEqual((typ, data), ("OK", [b"3"]))
        self.assertEqual(m.untagged_responses.get("UNSEEN"), [b"2"])
        typ, data = m.uid("FETCH", "1:*", "(FLAGS)")
        self.assertEqual(typ, "OK")
        self.assertEqual(len(data), 3, data)
        self.assertEqual(m.logout()[0], "BYE")

    def test_garbage_instead_of_deflate_gets_bye(self):
        m = self.connect(False)
        m.compress()
        # 0xff: a final block of the reserved type 3, never valid deflate.
        m.sock.sendall(b"\xff" * 64 + b"a1 NOOP\r\n")
        line = m.readline()
        self.assertTrue(line.startswith(b"* BYE"), line)
        m.sock.settimeout(10)
        self.assertEqual(m.sock.recv(100), b"")  # closed
        m.sock.close()
        log = self.stack.wait_for(lambda: "corrupt compressed data from" in self.stack.log_text(), timeout=10)
        self.assertTrue(log)


if __name__ == "__main__":
    unittest.main()
