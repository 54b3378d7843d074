"""The deadline watchdog and the cursors a snapshot keeps between calls."""

from __future__ import annotations

import threading
import time

from serving_support import Served

from codeintel.serving.snapshot import Deadline, Query, Watchdog


def test_the_watchdog_runs_each_action_at_its_time_and_never_a_cancelled_one() -> None:
    watchdog = Watchdog()
    ran: list[str] = []
    done = threading.Event()
    now = time.monotonic()
    watchdog.watch(now + 0.30, lambda: (ran.append("late"), done.set()))
    cancel = watchdog.watch(now + 0.05, lambda: ran.append("cancelled"))
    watchdog.watch(now + 0.10, lambda: ran.append("early"))
    cancel()
    assert done.wait(5)
    assert ran == ["early", "late"]
    assert time.monotonic() - now >= 0.30


def test_a_cursor_interrupted_at_the_deadline_is_dropped_and_a_finished_one_is_reused(served: Served) -> None:
    with served.store.lease() as snap:
        with Query(snap, Deadline(5)) as q:
            assert q.scalar("SELECT count(*) FROM core.goids")
            first = q.cursor
        with Query(snap, Deadline(5)) as q:
            assert q.cursor is first  # given back, taken again
        with Query(snap, Deadline(0.3)) as q:
            slow = q.cursor
            try:
                q.scalar("SELECT count(*) FROM range(60000) a, range(60000) b WHERE (a.range * b.range) % 7 = 1")
            except Exception as exc:  # DeadlineExceeded
                assert "deadline" in str(exc)
            else:
                raise AssertionError("the cross join was not interrupted")
        with Query(snap, Deadline(5)) as q:
            assert q.cursor is not slow
            assert q.scalar("SELECT count(*) FROM core.goids") == served.query("SELECT count(*) FROM core.goids")[0][0]
