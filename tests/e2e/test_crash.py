"""The crash test (issue 9's torture, bounded for CI): mail keeps flowing,
nothing accepted is lost and nothing is delivered twice while workers of
every kind are SIGKILLed during a burst.

2,000 messages (CRASH_MESSAGES overrides) from 10 smtplib senders, each
message tried at most 3 times (tests/e2e/torture.py).  Kills happen at fixed
points of the burst, so every run makes the same kills: the smtpd that
serves sessions after the 250th, 750th and 1250th accepted message, qmgr
after the 400th, 1000th and 1600th delivered message and local-delivery
after the 550th, 1150th and 1750th, i.e. while the deliveries run.  master
keeps its default crash limit: killing workers that did work must never
throttle a service.

Asserted: every message accepted (3 tries suffice because a killed worker
is back at once), 0 lost (every accepted token is in the Maildir), 0
duplicates caused by the delivery side (a retry after a lost report must
recognise the earlier copy; docs/queue.md), no file cut short, no 5xx, the
queue empty at the end, all 9 kills made, no throttling, and the run inside
its time bound.  Duplicates that SMTP itself causes (a 250 lost with the
killed smtpd, the client sends again) are counted apart and allowed.
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, program_exists  # noqa: E402
import torture  # noqa: E402

NEEDED = ("master", "smtpd", "qmgr", "local-delivery", "mailctl")
MESSAGES = int(os.environ.get("CRASH_MESSAGES", "2000"))
SENDERS = 10
TRIES = 3
BURST_LIMIT = 180   # seconds: a hang guard, not a benchmark
DRAIN_LIMIT = 120
CONFIG = {
    # Mail deferred by a killed agent comes back quickly.
    "minimal_backoff_time": "1s",
    "maximal_backoff_time": "2s",
    "queue_run_delay": "2s",
    "smtpd_client_connection_limit": "0",
}


def plan(messages):
    """The fixed kill points, scaled to the burst size."""
    at = lambda fraction: max(1, int(messages * fraction))  # noqa: E731
    return ([("accepted", at(f), "smtp") for f in (0.125, 0.375, 0.625)] +
            [("delivered", at(f), "qmgr") for f in (0.2, 0.5, 0.8)] +
            [("delivered", at(f), "local") for f in (0.275, 0.575, 0.875)])


@unittest.skipUnless(all(program_exists(p) for p in NEEDED), "needs " + ", ".join(NEEDED))
class CrashTest(unittest.TestCase):
    """One torture run (setUpClass); each test checks one promise of it."""

    @classmethod
    def setUpClass(cls):
        t0 = time.monotonic()
        cls.stack = s = Stack(config=CONFIG, procs={"smtp": 2, "local": 2})
        s.__enter__()
        try:
            cls.senders = senders = torture.Senders(s.port("smtp"), MESSAGES, SENDERS, tries=TRIES,
                                                    limit=BURST_LIMIT)
            cls.killer = killer = torture.PlannedKiller(s, senders, plan(MESSAGES), BURST_LIMIT + DRAIN_LIMIT)
            killer.start()
            cls.finished = senders.run()
            t_burst = time.monotonic() - t0
            # The last kill points are deliveries: they may come after the burst.
            killer.join(DRAIN_LIMIT)
            killer.stop.set()
            cls.killer_hung = killer.is_alive()
            try:
                torture.drain(s, DRAIN_LIMIT)
            except TimeoutError:
                print("\n" + s.mailctl("queue", "list").stdout[-3000:])
                raise
            cls.elapsed = time.monotonic() - t0
            cls.figures = torture.account(s, senders)
            cls.queue_listing = s.mailctl("queue", "list", check=True).stdout
            restarts = {n: st["restarts"] for n, st in (s.status() or {}).items()}
            print("\ncrash test: " + torture.summary(cls.figures, killer.kills(),
                                                      {"burst": t_burst, "total": cls.elapsed}) +
                  f"; restarts {restarts}", flush=True)
        except BaseException:
            s.__exit__(*sys.exc_info())
            raise

    @classmethod
    def tearDownClass(cls):
        cls.stack.__exit__(None, None, None)

    def test_the_planned_kills_happened(self):
        self.assertTrue(self.finished, "senders hung")
        self.assertFalse(self.killer_hung, "killer hung")
        self.assertIsNone(self.killer.error, f"killer: {self.killer.error}")
        self.assertEqual(self.killer.kills(), {"smtp": 3, "qmgr": 3, "local": 3}, self.killer.done)

    def test_every_message_accepted_without_throttling(self):
        self.assertEqual(self.senders.rejected, [], "5xx answers during the burst")
        self.assertEqual(self.senders.given_up, [], f"not accepted within {TRIES} tries")
        self.assertEqual(self.figures["accepted"], MESSAGES)
        self.assertEqual(self.figures["throttled"], 0, "a service was throttled")
        self.assertLess(self.elapsed, BURST_LIMIT + DRAIN_LIMIT)

    def test_no_accepted_message_lost(self):
        f = self.figures
        self.assertEqual(f["lost"], [], f"{len(f['lost'])} accepted messages never delivered")
        self.assertEqual(f["broken"], [], "delivered files cut short or without their token")
        self.assertEqual(f["unexpected"], [])
        self.assertIn("Mail queue is empty", self.queue_listing)

    # Idempotent delivery (docs/queue.md): a qmgr or local-delivery kill
    # between the mailbox write and the queue update must not deliver again.
    def test_no_duplicate_from_the_delivery_side(self):
        f = self.figures
        self.assertEqual(f["delivery_duplicates"], 0,
                         f"delivered twice without an SMTP retry: {f['delivery_duplicate_tokens'][:10]}")


if __name__ == "__main__":
    unittest.main()
