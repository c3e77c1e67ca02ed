"""A private mount namespace for tests that build a scratch root (test_install,
test_systemd): a `sleep` process holds it and commands enter it with nsenter."""
import os
import subprocess
import time
import unittest


def hold_private_mount_namespace():
    """Start the holder and return it once it runs in its own namespace.

    Inside a chroot whose root is a plain directory (not a mount point),
    mounts cannot be made private, and a scratch root whose mounts could
    reach the host's is not isolated: the caller's test is skipped."""
    holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--", "sleep", "infinity"],
                              stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    # unshare execs sleep in the new namespace: wait until it did.
    while True:
        if holder.poll() is not None:
            err = holder.stderr.read().strip()
            holder.stderr.close()
            if "propagation" in err:
                raise unittest.SkipTest(f"cannot isolate mounts here ({err}): / is not a mount point")
            raise AssertionError(f"unshare failed: {err}")
        try:
            if os.readlink(f"/proc/{holder.pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt"):
                return holder
        except FileNotFoundError:
            continue  # it exited after the poll above: the next poll sees it
        if time.monotonic() > deadline:
            holder.kill()
            holder.wait()
            raise AssertionError("unshare did not enter a new mount namespace")
        time.sleep(0.02)
