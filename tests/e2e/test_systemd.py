"""tern.service under a real systemd, as the Debian package installs it.

The test builds the package (`make deb`), makes a Debian root with
mmdebstrap (systemd and the package's dependencies; the tarball is kept in
the build directory, so only the first run downloads), installs the package
into it with dpkg, and boots it with `systemd-nspawn -b` in a private
network namespace: tern listens on the usual ports 25, 587... of the
container's own loopback, nothing of the host's.  The whole root is a tmpfs
in a private mount namespace (as in test_install.py), so the host keeps
nothing of it.  Checked, through commands run inside the container:

- tern.service came up at boot (enabled by the package): Type=notify,
  active, master as its main process, logging into the journal under the
  Postfix-style identifiers (`journalctl -t tern/local-delivery`);
- mail between two ordinary users with sendmail, delivered;
- `systemctl reload tern` (ExecReload = mailctl reload);
- `mailctl status`, `mailctl stop` and `mailctl start` say that systemd
  manages tern and go through systemctl; mail sent while stopped leaves at
  start;
- master killed with SIGKILL: systemd restarts the unit (Restart=on-failure)
  and mail flows again;
- `systemctl stop` drains: the unit ends inactive with result success and
  no tern process left; master's bounding set is the unit's.

Needs root, systemd-nspawn and mmdebstrap (scripts/install-deps installs
them) and a host where mounts can be made private; skipped with the reason
otherwise (a chroot whose / is no mount point, as ../shared/tools/fresh-machine
makes, cannot boot a container).
"""
import glob
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import BUILD, ROOT, process_name
from mountns import hold_private_mount_namespace

PACKAGES = ["systemd", "systemd-sysv", "dbus", "procps", "adduser", "openssl", "libevent-2.1-7",
            "libevent-openssl-2.1-7", "libevent-pthreads-2.1-7", "libldns3", "liblmdb0", "libssl3", "libcrypt1"]
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
CAP_SYS_ADMIN = 21


def run(argv, check=True, timeout=300, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{argv} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def apt_sources():
    for path in ("/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"):
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return path
    raise unittest.SkipTest("no apt sources on this host to make a Debian root from")


def codename():
    with open("/etc/os-release") as f:
        for line in f:
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"')
    raise unittest.SkipTest("no VERSION_CODENAME in /etc/os-release")


def root_tarball():
    """A Debian root with systemd, made once per package list and kept."""
    release = codename()
    key = hashlib.sha256(" ".join([release] + PACKAGES).encode()).hexdigest()[:12]
    tar = os.path.join(BUILD, f"systemd-root-{key}.tar")
    if not os.path.exists(tar):
        part = tar[:-len(".tar")] + ".part.tar"  # mmdebstrap picks the format by the name
        run(["mmdebstrap", "--quiet", "--variant=apt", "--include=" + ",".join(PACKAGES), release, part,
             apt_sources()], timeout=900)
        os.rename(part, tar)
    return tar


def built_package():
    # A `make check SANITIZE=1` must not leak into the package build.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "SANITIZE")}
    env["TERN_PACKAGING"] = "1"
    run(["scripts/install-deps"], cwd=ROOT, env=env, timeout=900)
    run(["make", "-s", "deb"], cwd=ROOT, env=env, timeout=1500)
    debs = glob.glob(os.path.join(ROOT, "build-deb/pkg/tern_*.deb"))
    if len(debs) != 1:
        raise AssertionError(f"expected one package, found {debs}")
    return debs[0]


class Container:
    """A tmpfs root in a private mount namespace, booted with systemd-nspawn."""

    def __init__(self, tarball, deb):
        self.dir = tempfile.mkdtemp(prefix="tern-systemd-")
        self.boot = None
        try:
            self.holder = hold_private_mount_namespace()
        except BaseException:
            os.rmdir(self.dir)
            raise
        try:
            # nspawn keeps per-container state under /run/systemd/nspawn and
            # refuses to clean it up unless that is a tmpfs.
            self.ns(f"""mount -t tmpfs -o size=2g tern-systemd "$1"
mkdir -p /run/systemd/nspawn && mount -t tmpfs tern-nspawn /run/systemd/nspawn
tar -C "$1" -xf '{tarball}'
cp '{deb}' "$1/var/tmp/tern.deb"
""", timeout=300)
        except BaseException:
            self.close()
            raise

    def ns(self, script, check=True, timeout=120):
        """A shell script in the private mount namespace (host side); $1 is the root."""
        return run(["nsenter", "-t", str(self.holder.pid), "-m", "--", "sh", "-ec", script, "sh", self.dir],
                   check=check, timeout=timeout, cwd="/")

    def offline(self, script, timeout=300):
        """A script inside the root before boot (nspawn without -b)."""
        with open(f"/proc/{self.holder.pid}/root{self.dir}/var/tmp/offline.sh", "w") as f:
            f.write(script)
        return self.ns('systemd-nspawn -q -D "$1" --register=no --keep-unit --private-network '
                       '/bin/sh -e /var/tmp/offline.sh', timeout=timeout)

    def start(self):
        self.log = open(os.path.join(self.dir + ".log"), "w")
        self.boot = subprocess.Popen(["nsenter", "-t", str(self.holder.pid), "-m", "--", "systemd-nspawn", "-q",
                                      "-D", self.dir, "-b", "--register=no", "--keep-unit", "--private-network",
                                      "--console=passive"],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)

        # A host whose kernel or cgroup setup cannot run a container at all
        # is no finding about tern: skip with nspawn's words.  Once systemd
        # runs, every failure (tern.service's included) fails the test.
        def init_pid():
            if self.boot.poll() is not None:
                raise unittest.SkipTest(f"systemd-nspawn cannot boot a container here (exit "
                                        f"{self.boot.returncode}): {self.boot_log()}")
            for child in self._children(self.boot.pid):
                for grandchild in [child] + self._children(child):
                    if process_name(grandchild) == "systemd":
                        return grandchild
            return None
        self.init = wait_for(init_pid, 30, "the container's systemd")

        # Until its bus is up, systemctl cannot even ask ("offline" or an error).
        def booted():
            state = self.sh("systemctl is-system-running", check=False).stdout.strip()
            if state in ("maintenance", "stopping"):
                raise AssertionError(f"system state {state}: {self.boot_log()}")
            return state in ("running", "degraded")
        wait_for(booted, 120, "the container to boot")

    @staticmethod
    def _children(pid):
        kids = []
        for task in glob.glob(f"/proc/{pid}/task/*/children"):
            try:
                with open(task) as f:
                    kids += [int(k) for k in f.read().split()]
            except OSError:
                pass
        return kids

    def boot_log(self):
        with open(self.dir + ".log") as f:
            return f.read()[-2000:]

    def sh(self, script, user=None, check=True, timeout=60, stdin=None):
        """A shell script inside the booted container, as root or as `user`."""
        cmd = ["nsenter", "-t", str(self.init), "-m", "-u", "-i", "-n", "-p", "-r", "-w", "--",
               "env", "-i", f"PATH={PATH}", "LANG=C"]
        if user is not None:
            cmd += ["runuser", "-u", user, "--"]
        return run(cmd + ["sh", "-c", script], check=check, timeout=timeout, input=stdin)

    def unit(self, *props):
        out = self.sh("systemctl show tern.service " + " ".join(f"-p {p}" for p in props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def close(self):
        if self.boot and self.boot.poll() is None:
            self.boot.send_signal(signal.SIGTERM)  # nspawn asks the container to halt
            try:
                self.boot.wait(60)
            except subprocess.TimeoutExpired:
                self.boot.kill()
                self.boot.wait()
        if self.holder.poll() is None:
            self.holder.kill()  # its mounts (the tmpfs root) go with the namespace
        self.holder.wait()
        self.holder.stderr.close()
        if self.boot:
            self.log.close()
        os.rmdir(self.dir)
        if os.path.exists(self.dir + ".log"):
            os.unlink(self.dir + ".log")


@unittest.skipUnless(os.geteuid() == 0, "booting a container needs root; CI runs it as root")
class SystemdTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Before the slow steps: where mounts cannot be private, skip at once.
        probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "true"],
                               capture_output=True, text=True, timeout=10)
        if probe.returncode != 0:
            if "propagation" in probe.stderr:
                raise unittest.SkipTest(f"cannot isolate mounts here ({probe.stderr.strip()}): "
                                        "/ is not a mount point")
            raise AssertionError(f"unshare failed: {probe.stderr}")
        cls.deb = built_package()  # installs the packaging tools too (TERN_PACKAGING=1)
        for tool in ("systemd-nspawn", "mmdebstrap", "nsenter"):
            if shutil.which(tool) is None:
                raise AssertionError(f"{tool} is missing: scripts/install-deps installs it")
        cls.tarball = root_tarball()

    def setUp(self):
        self.c = Container(self.tarball, self.deb)
        self.addCleanup(self.c.close)

    def journal(self, ident):
        return self.c.sh(f"journalctl --no-pager -o cat -t {ident}").stdout

    def mail(self, sender, to, subject):
        self.c.sh(f"/usr/sbin/sendmail {to}", user=sender, stdin=f"Subject: {subject}\n\nhello from {sender}\n")

    def delivered(self, user, subject, timeout=30):
        def found():
            out = self.c.sh(f"grep -l '^Subject: {subject}$' /home/{user}/Maildir/new/* 2>/dev/null",
                            check=False).stdout
            return out.strip()
        return wait_for(found, timeout, f"'{subject}' in {user}'s Maildir")

    def wait_active(self, restarts=None):
        def active():
            u = self.c.unit("ActiveState", "SubState", "MainPID", "NRestarts")
            if u["ActiveState"] == "active" and u["MainPID"] != "0" and \
                    (restarts is None or int(u["NRestarts"]) == restarts):
                return u
            return None
        return wait_for(active, 60, "tern.service active")

    def test_unit_under_systemd(self):
        c = self.c
        c.offline("dpkg -i /var/tmp/tern.deb >/dev/null\nuseradd -m alice\nuseradd -m bob\n"
                  "printf '\\n# test_systemd\\nmyhostname = mail.tern.test\\nhome_mailbox = Maildir/\\n' "
                  ">> /etc/tern/tern.conf\n")
        c.start()

        # Enabled by the package, started at boot, ready through sd_notify.
        u = self.wait_active(restarts=0)
        self.assertEqual(self.c.unit("Type")["Type"], "notify")
        master = u["MainPID"]
        self.assertIn("master", c.sh(f"cat /proc/{master}/comm").stdout)
        status = c.sh("mailctl status").stdout
        self.assertIn("managed by systemd: tern.service", status)

        # Mail between two ordinary users; the log lines go to the journal.
        self.mail("alice", "bob", "under systemd")
        path = self.delivered("bob", "under systemd")
        self.assertIn("Return-Path: <alice@mail.tern.test>", c.sh(f"cat {path}").stdout)
        wait_for(lambda: "to=<bob@mail.tern.test>" in self.journal("tern/local-delivery"), 20,
                 "the delivery line under journalctl -t tern/local-delivery")
        self.assertRegex(self.journal("tern/local-delivery"), r"[0-9A-Z]+: to=<bob@mail\.tern\.test>.*status=sent")
        self.assertRegex(self.journal("tern/qmgr"), r"[0-9A-Z]+: from=<alice@mail\.tern\.test>")

        # Reload goes through mailctl reload; the unit stays up, same master.
        c.sh("systemctl reload tern")
        self.assertEqual(self.wait_active(restarts=0)["MainPID"], master)

        # mailctl stop/start go through systemd; mail sent while stopped leaves at start.
        out = c.sh("mailctl stop").stdout
        self.assertIn("managed by systemd: systemctl stop tern.service", out)
        self.assertEqual(self.c.unit("ActiveState")["ActiveState"], "inactive")
        self.mail("bob", "alice", "while stopped")
        self.assertIn("managed by systemd", c.sh("mailctl start").stdout)
        master = self.wait_active(restarts=0)["MainPID"]
        self.delivered("alice", "while stopped")

        # A killed master: systemd starts the unit again and mail flows.
        c.sh(f"kill -KILL {master}")
        u = self.wait_active(restarts=1)
        self.assertNotEqual(u["MainPID"], master)
        self.mail("alice", "bob", "after the restart")
        self.delivered("bob", "after the restart")

        # The bounding set is the unit's: no CAP_SYS_ADMIN in master.
        with_caps = c.sh(f"grep CapBnd /proc/{u['MainPID']}/status").stdout.split()[1]
        self.assertEqual(int(with_caps, 16) & (1 << CAP_SYS_ADMIN), 0)

        # Stop drains: inactive, a clean result, nothing of tern left.
        c.sh("systemctl stop tern")
        u = self.c.unit("ActiveState", "Result")
        self.assertEqual((u["ActiveState"], u["Result"]), ("inactive", "success"))
        self.assertEqual(c.sh("pgrep -u tern", check=False).stdout, "")
        self.assertEqual(c.sh("pgrep -x master", check=False).stdout, "")


if __name__ == "__main__":
    unittest.main()
