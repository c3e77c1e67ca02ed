"""tern installed as a host's mail system, without touching the host.

Each test builds a scratch root in a private mount namespace:

- `unshare --mount` holds the namespace (a `sleep` process); every command
  runs in it through `nsenter`, then `chroot`s into the root;
- the root is a tmpfs; its /usr is an overlay whose lower layer is the
  host's /usr (never written) and whose upper layer lives in that tmpfs, so
  `make install`/`dpkg -i` write there; /bin, /lib... are the usual links;
  /proc is mounted, /dev holds bind mounts of null, zero, random, urandom;
- /etc holds its own passwd/group/shadow (root, then the users that the
  install creates and two ordinary users, alice and bob), hosts, and the
  linker cache, openssl.cnf, adduser.conf, pam.d, alternatives copied from
  the host;
- the host sees an empty directory; ending the namespace's processes
  removes every mount.

tern inside listens on free loopback high ports (services.conf is edited
like an administrator would) and logs to syslog as installed; the test
binds the root's /dev/log and reads the datagrams.  Only as root (CI);
skipped otherwise.  docs/install.md describes what is checked here.
"""
import glob
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import unittest

from harness import BUILD, ROOT, free_port, proc_status
from mountns import hold_private_mount_namespace

ALICE, BOB = 2001, 2002
USER_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"


def run(argv, check=True, timeout=120, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{argv} exited {p.returncode}\nstdout: {p.stdout[-3000:]}\nstderr: {p.stderr[-3000:]}")
    return p


class Root:
    """A scratch root in a private mount namespace (see the module doc)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tern-root-")
        self.syslog = None
        self.reader = None
        self.closing = False
        self.lock = threading.Lock()
        self.log_lines = []
        try:
            self.holder = hold_private_mount_namespace()
        except BaseException:
            os.rmdir(self.dir)
            raise
        self.host = f"/proc/{self.holder.pid}/root{self.dir}"  # the root as seen from here
        try:
            self._mount()
            self._etc()
        except BaseException:
            self.close()
            raise

    # -- running things inside ---------------------------------------------------------

    def ns(self, script, check=True, timeout=120):
        """A shell script in the namespace (not chrooted); $R is the root."""
        return run(["nsenter", "-t", str(self.holder.pid), "-m", "--", "sh", "-ec", script, "sh", self.dir],
                   check=check, timeout=timeout, cwd="/")

    def sh(self, script, user=None, check=True, timeout=120, stdin=None):
        """A shell script chrooted into the root, as root or as uid `user`."""
        # LeakSanitizer (SANITIZE=1 builds) cannot stop the threads of a
        # setgid, hence non-dumpable, sendmail; leaks are checked elsewhere.
        env = ["env", "-i", f"PATH={USER_PATH}", "LANG=C", "ASAN_OPTIONS=detect_leaks=0"]
        if user is None:
            cmd = ["chroot", self.dir] + env + ["HOME=/root", "sh", "-c", script]
        else:
            name = {ALICE: "alice", BOB: "bob"}[user]
            cmd = ["chroot", f"--userspec={user}:{user}", f"--groups={user}", self.dir] + env + \
                  [f"HOME=/home/{name}", f"USER={name}", f"LOGNAME={name}", "sh", "-c", script]
        return run(["nsenter", "-t", str(self.holder.pid), "-m", "--"] + cmd, check=check, timeout=timeout,
                   cwd="/", input=stdin)

    def path(self, p):
        return self.host + p

    # -- building the root ---------------------------------------------------------------

    def _mount(self):
        links = " ".join(d for d in ("bin", "sbin", "lib", "lib32", "lib64", "libx32") if os.path.islink("/" + d))
        self.ns(f"""R=$1
mount -t tmpfs -o mode=0755,size=1g tern-root "$R"
mkdir -p "$R/.usr/upper" "$R/.usr/work" "$R/usr"
mount -t overlay overlay -o lowerdir=/usr,upperdir="$R/.usr/upper",workdir="$R/.usr/work" "$R/usr"
for l in {links}; do ln -s "$(readlink /$l)" "$R/$l"; done
mkdir -p "$R/etc" "$R/var/lib" "$R/var/spool" "$R/var/mail" "$R/var/log" "$R/run" "$R/home" "$R/root" "$R/proc" "$R/dev" "$R/tmp"
chmod 1777 "$R/tmp"
chmod 0700 "$R/root"
mount -t proc proc "$R/proc"
for n in null zero random urandom; do : >"$R/dev/$n"; mount --bind "/dev/$n" "$R/dev/$n"; done
""")

    def _etc(self):
        etc = self.path("/etc")
        files = {
            "passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
                      f"alice:x:{ALICE}:{ALICE}:Alice Example:/home/alice:/bin/sh\n"
                      f"bob:x:{BOB}:{BOB}:Bob Example:/home/bob:/bin/sh\n",
            "group": "root:x:0:\nmail:x:8:\nnogroup:x:65534:\n"
                     f"alice:x:{ALICE}:\nbob:x:{BOB}:\n",
            "shadow": "root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n"
                      "alice:*:19000:0:99999:7:::\nbob:*:19000:0:99999:7:::\n",
            "gshadow": "root:*::\nmail:*::\nnogroup:*::\nalice:!::\nbob:!::\n",
            "nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files\n",
            "hosts": f"127.0.0.1 localhost\n127.0.1.1 {socket.gethostname()}\n",
            "shells": "/bin/sh\n/usr/sbin/nologin\n",
        }
        for name, text in files.items():
            with open(os.path.join(etc, name), "w") as f:
                f.write(text)
        os.chmod(os.path.join(etc, "shadow"), 0o640)
        os.chmod(os.path.join(etc, "gshadow"), 0o640)
        for name in ("ld.so.cache", "ld.so.conf", "login.defs", "adduser.conf", "deluser.conf", "ssl/openssl.cnf"):
            if os.path.exists("/etc/" + name):
                os.makedirs(os.path.dirname(os.path.join(etc, name)), exist_ok=True)
                shutil.copy("/etc/" + name, os.path.join(etc, name))
        # adduser runs chfn, which asks PAM; awk & co. are alternatives links.
        for tree in ("pam.d", "security", "alternatives"):
            if os.path.isdir("/etc/" + tree):
                shutil.copytree("/etc/" + tree, os.path.join(etc, tree), symlinks=True)
        for user, uid in (("alice", ALICE), ("bob", BOB)):
            home = self.path("/home/" + user)
            os.mkdir(home, 0o700)
            os.chmod(home, 0o700)
            os.chown(home, uid, uid)

    def listen_syslog(self):
        """Binds the root's /dev/log and reads it continuously, like journald
        (a datagram socket holds only max_dgram_qlen messages: a reader that
        lags makes every logging process block in syslog())."""
        self.syslog = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.syslog.bind(self.path("/dev/log"))
        os.chmod(self.path("/dev/log"), 0o666)
        self.syslog.settimeout(0.2)

        def reader(sock=self.syslog):
            while not self.closing:
                try:
                    line = sock.recv(65536).decode("utf-8", "replace")
                except socket.timeout:
                    continue
                except OSError:
                    return
                with self.lock:
                    self.log_lines.append(line)
        self.reader = threading.Thread(target=reader, daemon=True)
        self.reader.start()

    def log(self):
        with self.lock:
            return list(self.log_lines)

    def local_ports(self):
        """services.conf as an administrator would edit it: loopback high ports."""
        conf = self.path("/etc/tern/services.conf")
        with open(conf) as f:
            text = f.read()
        for old in ("0.0.0.0:25,[::]:25", "0.0.0.0:587,[::]:587", "0.0.0.0:465,[::]:465"):
            if old not in text:
                raise AssertionError(f"{old} not in the installed services.conf")
            text = text.replace(old, f"127.0.0.1:{free_port()}")
        with open(conf, "w") as f:
            f.write(text)

    def wait_for(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}\nlog:\n" +
                                     "\n".join(self.log()[-40:]))
            time.sleep(0.05)

    def master_pid(self):
        try:
            with open(self.path("/run/tern/master.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def close(self):
        pid = self.master_pid()
        if pid:
            self.sh("mailctl stop", check=False, timeout=60)
        # Anything still running in the namespace (a worker that outlived
        # master) is ended by pid; then the holder, which ends the mounts.
        mnt = os.readlink(f"/proc/{self.holder.pid}/ns/mnt")
        for p in os.listdir("/proc"):
            if p.isdigit() and int(p) != self.holder.pid:
                try:
                    if os.readlink(f"/proc/{p}/ns/mnt") == mnt:
                        os.kill(int(p), signal.SIGKILL)
                except OSError:
                    pass
        self.closing = True
        if self.reader:
            self.reader.join(5)
        if self.syslog:
            self.syslog.close()
        self.holder.kill()
        self.holder.wait()
        self.holder.stderr.close()
        os.rmdir(self.dir)  # empty on the host: everything was in the tmpfs


def maildir_messages(root, user):
    return sorted(glob.glob(root.path(f"/home/{user}/Maildir/new/*")))


def read(path):
    with open(path) as f:
        return f.read()


@unittest.skipUnless(os.geteuid() == 0, "the install test needs root (unshare, chroot, users, setgid); CI runs it as root")
class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for tool in ("unshare", "nsenter", "chroot"):
            if shutil.which(tool) is None:
                raise AssertionError(f"{tool} is missing (util-linux/coreutils)")

    def setUp(self):
        self.root = Root()
        self.addCleanup(self.root.close)

    def configure(self):
        r = self.root
        r.local_ports()
        with open(r.path("/etc/tern/tern.conf"), "a") as f:
            f.write("\n# test_install\nmyhostname = mail.tern.test\nhome_mailbox = Maildir/\n")
        r.listen_syslog()

    def send(self, user, to, subject):
        return self.root.sh(f"/usr/sbin/sendmail -v {to}", user=user,
                            stdin=f"Subject: {subject}\n\nhello from uid {user}\n")

    def check_layout(self):
        r = self.root
        ids = {name: (int(r.sh(f"id -u {name}").stdout), int(r.sh(f"getent group {name} | cut -d: -f3").stdout))
               for name in ("tern", "vmail")}
        drop = int(r.sh("getent group tern-drop | cut -d: -f3").stdout)
        tern_uid, tern_gid = ids["tern"]

        def mode(p):
            st = os.lstat(r.path(p))
            return (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)

        self.assertEqual(mode("/usr/sbin/sendmail"), (0o2755, 0, drop))
        self.assertEqual(mode("/var/spool/tern"), (0o755, tern_uid, tern_gid))
        self.assertEqual(mode("/var/spool/tern/maildrop"), (0o1730, tern_uid, drop))
        self.assertEqual(mode("/var/spool/tern/public"), (0o710, tern_uid, drop))
        self.assertTrue(stat.S_ISFIFO(os.lstat(r.path("/var/spool/tern/public/pickup")).st_mode))
        self.assertEqual(mode("/var/spool/tern/public/pickup"), (0o620, tern_uid, drop))
        self.assertEqual(mode("/etc/tern/users"), (0o640, 0, tern_gid))
        self.assertEqual(mode("/etc/tern/tls/key.pem"), (0o640, 0, tern_gid))
        for link in ("/usr/bin/mailq", "/usr/bin/newaliases", "/usr/lib/sendmail"):
            self.assertEqual(os.readlink(r.path(link)), "../sbin/sendmail", link)
        return tern_uid, drop

    def check_running_layout(self, tern_uid):
        r = self.root
        tern_gid = int(r.sh("getent group tern | cut -d: -f3").stdout)
        for d in ("db", "msg"):
            st = os.lstat(r.path(f"/var/spool/tern/{d}"))
            self.assertEqual((stat.S_IMODE(st.st_mode), st.st_uid), (0o700, tern_uid), d)
        # Compiled tables are as private as their source.
        users = os.lstat(r.path("/etc/tern/users.lmdb"))
        self.assertEqual((stat.S_IMODE(users.st_mode), users.st_uid, users.st_gid), (0o640, 0, tern_gid))
        aliases = os.lstat(r.path("/etc/tern/aliases.lmdb"))
        self.assertEqual(stat.S_IMODE(aliases.st_mode), 0o644)
        # Nothing under the spool is open to others: no file readable, no
        # directory listable or searchable (the spool itself is searchable,
        # so that sendmail reaches maildrop/ and public/ through it).
        top = r.path("/var/spool/tern")
        for dirpath, dirnames, filenames in os.walk(top):
            for name in dirnames + filenames:
                st = os.lstat(os.path.join(dirpath, name))
                if stat.S_ISSOCK(st.st_mode):
                    continue
                self.assertEqual(st.st_mode & 0o007, 0, f"{os.path.join(dirpath, name)} mode {oct(st.st_mode)}")

    def check_workers(self, tern_uid):
        """Every process as DESIGN.md says: master root; smtpd, qmgr, pickup tern
        with no capabilities; local-delivery root (it switches per delivery)."""
        r = self.root
        master = r.master_pid()
        self.assertEqual(proc_status(master)["Uid"], ["0"] * 4)
        seen = {}
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                if int(proc_status(p)["PPid"][0]) != master:
                    continue
                exe = os.readlink(f"/proc/{p}/exe")
                st = proc_status(p)
            except OSError:
                continue
            seen.setdefault(os.path.basename(exe), []).append(st)
        for name in ("smtpd", "qmgr", "pickup", "local-delivery"):
            self.assertIn(name, seen, f"no {name} process under master (saw {sorted(seen)})")
        for name in ("smtpd", "qmgr", "pickup"):
            for st in seen[name]:
                self.assertEqual(st["Uid"], [str(tern_uid)] * 4, name)
                self.assertEqual(int(st["CapEff"][0], 16), 0, f"{name} CapEff")
                self.assertEqual(int(st["CapPrm"][0], 16), 0, f"{name} CapPrm")
        for st in seen["local-delivery"]:
            self.assertEqual(st["Uid"], ["0"] * 4, "local-delivery starts as root")

    def check_delivered(self, user, sender, subject):
        r = self.root
        uid = {"alice": ALICE, "bob": BOB}[user]

        def found():
            for path in maildir_messages(r, user):
                text = read(path)
                if f"Subject: {subject}\n" in text:
                    return path, text
            return None
        path, text = r.wait_for(found, 20, f"{subject} in {user}'s Maildir")
        self.assertTrue(text.startswith(f"Return-Path: <{sender}@mail.tern.test>\n"), text[:300])
        st = os.stat(path)
        self.assertEqual(st.st_uid, uid)
        self.assertEqual(stat.S_IMODE(st.st_mode) & 0o077, 0, f"{path} mode {oct(st.st_mode)}")
        return path

    def test_make_install_two_users_running_and_stopped(self):
        r = self.root
        t0 = time.monotonic()
        # make install into the root: the tree from the host, then
        # setup-system inside it (as make install does as root without DESTDIR).
        r.ns(f"'{ROOT}/scripts/install-tree' \"$1\" /usr /etc /var '{BUILD}' /lib/systemd/system")
        setup = r.sh("/usr/libexec/tern/setup-system")
        for created in ("user tern", "user vmail", "group tern-drop"):
            self.assertIn(f"created {created}", setup.stdout)
        self.assertIn("ExecStart=/usr/sbin/mailctl start --foreground", read(r.path("/lib/systemd/system/tern.service")))
        if shutil.which("systemd-analyze"):  # part of systemd, on every booted Debian
            verify = r.sh("systemd-analyze verify /lib/systemd/system/tern.service", check=False)
            self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)
        tern_uid, _ = self.check_layout()
        self.configure()

        # Upgrading from a version without the pickup service (neither in
        # /etc/tern nor in merge-config's baseline): setup-system says how
        # to merge, merge-config adds the service and nothing else.
        for conf in ("/etc/tern/services.conf", "/var/lib/tern/shipped-conf/services.conf"):
            text = read(r.path(conf))
            with open(r.path(conf), "w") as f:
                f.write(re.sub(r"(?m)^pickup .*\n", "", text))
        self.assertIn("merge-config /etc/tern /usr/share/tern/conf /var/lib/tern/shipped-conf",
                      r.sh("/usr/libexec/tern/setup-system").stdout)
        merged = r.sh("/usr/libexec/tern/merge-config /etc/tern /usr/share/tern/conf /var/lib/tern/shipped-conf")
        self.assertEqual(merged.stdout, "merge-config: added service pickup in /etc/tern/services.conf\n")

        # Upgrading from a version that kept password hashes in the users
        # file (group tern: smtpd could read them): setup-system moves them
        # into the password file, which only root and tern-auth read.
        users_path = r.path("/etc/tern/users")
        with open(users_path, "a") as f:
            f.write("carol@example.org:{SHA512-CRYPT}$6$0123456789abcdef$hash:::/nonexistent:\n")
        self.assertIn("moved 1 password hashes from /etc/tern/users to /etc/tern/passwd",
                      r.sh("/usr/libexec/tern/setup-system").stdout)
        self.assertNotIn("$6$", read(users_path))
        self.assertIn("carol@example.org::::/nonexistent:\n", read(users_path))
        self.assertEqual(read(r.path("/etc/tern/passwd")), "carol@example.org:{SHA512-CRYPT}$6$0123456789abcdef$hash\n")
        auth_gid = int(r.sh("getent group tern-auth | cut -d: -f3").stdout)
        st = os.lstat(r.path("/etc/tern/passwd"))
        self.assertEqual((stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid), (0o640, 0, auth_gid))
        self.assertEqual(r.sh("cat /etc/tern/passwd", user=ALICE, check=False).returncode, 1)
        self.assertIn("no password hashes", r.sh("/usr/libexec/tern/setup-system").stdout)

        r.sh("mailctl start")
        self.check_workers(tern_uid)
        self.check_running_layout(tern_uid)

        # Running: each user's mail leaves at once (queue_run_delay is 300 s:
        # only the pickup FIFO can make this fast).
        out = self.send(ALICE, "bob", "running from alice")
        self.assertIn("pickup notified", out.stderr)
        self.send(BOB, "alice", "running from bob")
        self.check_delivered("bob", "alice", "running from alice")
        self.check_delivered("alice", "bob", "running from bob")
        log = "\n".join(r.wait_for(lambda: [l for l in r.log() if "status=sent" in l] and r.log(), 10, "log"))
        self.assertRegex(log, r"<22>.*tern/qmgr\[\d+\]: \w+: uid=2001 from=<alice@mail.tern.test>")
        self.assertRegex(log, r"tern/local-delivery\[\d+\]: \w+: to=<bob@mail.tern.test>, .*status=sent")

        # root's sendmail (cron, scripts) reaches qmgr's socket directly.
        out = r.sh("/usr/sbin/sendmail -v alice", stdin="Subject: from root\n\nhello\n")
        self.assertIn("qmgr notified", out.stderr)
        self.check_delivered("alice", "root", "from root")
        # newaliases: root's job (it writes /etc/tern); a user is told why not.
        r.sh("newaliases")
        denied = r.sh("newaliases", user=ALICE, check=False)
        self.assertEqual(denied.returncode, 73, denied.stdout + denied.stderr)

        # mailq as an ordinary user: refused, as documented (the queue is private).
        q = r.sh("mailq", user=BOB, check=False)
        self.assertEqual(q.returncode, 77, q.stdout + q.stderr)
        self.assertIn("only root", q.stderr)
        # The wake-up FIFO and qmgr's socket are out of a user's reach.
        for target in ("/var/spool/tern/public/pickup", "/run/tern/qmgr.sock"):
            denied = r.sh(f"echo x > {target}", user=BOB, check=False)
            self.assertNotEqual(denied.returncode, 0, target)

        # Stopped: the message waits in the maildrop, nobody can read it.
        r.sh("mailctl stop")
        self.send(ALICE, "bob", "stopped from alice")
        self.send(BOB, "alice", "stopped from bob")
        waiting = [n for n in os.listdir(r.path("/var/spool/tern/maildrop")) if not n.startswith("tmp.")]
        self.assertEqual(len(waiting), 2)
        for user in (ALICE, BOB):
            for what in ("ls /var/spool/tern/maildrop", f"cat /var/spool/tern/maildrop/{waiting[0]}",
                         f"cat /var/spool/tern/maildrop/{waiting[1]}", "ls /var/spool/tern/db",
                         "ls /var/spool/tern/msg"):
                self.assertNotEqual(r.sh(what, user=user, check=False).returncode, 0, f"uid {user}: {what}")
        # Neither reads the other's mailbox.
        self.assertNotEqual(r.sh("ls /home/bob/Maildir/new", user=ALICE, check=False).returncode, 0)
        self.assertNotEqual(r.sh("ls /home/alice/Maildir/new", user=BOB, check=False).returncode, 0)
        self.assertEqual(r.sh("ls /home/bob/Maildir/new | wc -l", user=BOB).stdout.strip(), "1")

        # Picked up at start.
        r.sh("mailctl start")
        self.check_delivered("bob", "alice", "stopped from alice")
        self.check_delivered("alice", "bob", "stopped from bob")
        self.assertEqual(os.listdir(r.path("/var/spool/tern/maildrop")), [])
        self.assertEqual(r.sh("mailq").stdout, "Mail queue is empty\n")
        self.check_running_layout(tern_uid)  # and still nothing open to others after the traffic
        r.sh("mailctl stop")
        self.assertLess(time.monotonic() - t0, 120)

    def test_debian_package(self):
        r = self.root
        # A `make check SANITIZE=1` must not leak into the package build.
        env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "SANITIZE")}
        env["TERN_PACKAGING"] = "1"
        run(["scripts/install-deps"], cwd=ROOT, env=env, timeout=900)
        build = run(["make", "-s", "deb"], cwd=ROOT, env=env, timeout=1500)
        debs = glob.glob(os.path.join(ROOT, "build-deb/pkg/tern_*.deb"))
        self.assertEqual(len(debs), 1, debs)
        self.assertNotRegex(build.stdout, r"(?m)^E: ")  # lintian --fail-on error already ran
        shutil.copy(debs[0], r.path("/tmp/tern.deb"))
        info = run(["dpkg-deb", "-f", debs[0], "Provides", "Conflicts", "Replaces"]).stdout
        self.assertEqual(info.count("mail-transport-agent"), 3, info)
        conffiles = run(["dpkg-deb", "-I", debs[0], "conffiles"]).stdout.split()
        self.assertEqual(sorted(conffiles), ["/etc/tern/aliases", "/etc/tern/services.conf",
                                             "/etc/tern/tern.conf", "/etc/tern/users"])

        # An empty dpkg database in the root: the libraries come from the
        # host's /usr (the overlay), so dependencies are forced, nothing else.
        os.makedirs(r.path("/var/lib/dpkg/info"))
        os.makedirs(r.path("/var/lib/dpkg/updates"))
        for name in ("status", "available"):
            open(r.path("/var/lib/dpkg/" + name), "w").close()
        dpkg = "dpkg --force-depends"
        r.sh(f"{dpkg} -i /tmp/tern.deb")
        tern_uid, drop = self.check_layout()
        self.assertIn("root tern-drop 2755 /usr/sbin/sendmail", r.sh("dpkg-statoverride --list").stdout)
        self.assertTrue(os.path.islink(r.path("/etc/systemd/system/multi-user.target.wants/tern.service")))
        self.configure()
        r.sh("mailctl start")
        self.check_workers(tern_uid)
        self.send(ALICE, "alice", "from the package")
        delivered = self.check_delivered("alice", "alice", "from the package")

        # Upgrade over itself, with a message waiting: queue and configuration stay.
        r.sh("mailctl stop")
        self.send(ALICE, "alice", "across the upgrade")
        services = read(r.path("/etc/tern/services.conf"))
        r.sh(f"{dpkg} -i /tmp/tern.deb")
        self.assertEqual(read(r.path("/etc/tern/services.conf")), services)
        self.assertEqual(len(os.listdir(r.path("/var/spool/tern/maildrop"))), 1)
        self.assertEqual(os.stat(r.path("/usr/sbin/sendmail")).st_mode & 0o7777, 0o2755)
        r.sh("mailctl start")
        self.check_delivered("alice", "alice", "across the upgrade")
        r.sh("mailctl stop")

        # Purge: configuration gone, mail and users kept.
        r.sh(f"{dpkg} --purge tern")
        self.assertFalse(os.path.exists(r.path("/etc/tern")))
        self.assertFalse(os.path.exists(r.path("/usr/sbin/sendmail")))
        self.assertTrue(os.path.exists(delivered))
        self.assertEqual(len(maildir_messages(r, "alice")), 2)
        self.assertTrue(os.path.isdir(r.path("/var/spool/tern/db")))
        self.assertEqual(r.sh("id -u tern").stdout.strip(), str(tern_uid))
        self.assertNotIn("sendmail", r.sh("dpkg-statoverride --list", check=False).stdout)


if __name__ == "__main__":
    unittest.main()
