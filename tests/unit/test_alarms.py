"""The shared alarm thread: alarms fire in due order, cancelled ones never, and many
alarms do not start a thread each."""

from __future__ import annotations

import threading
import time

from acr_ci import alarms


def test_alarms_fire_in_due_order_and_cancelled_ones_never() -> None:
    fired: list[str] = []
    done = threading.Event()
    alarms.after(0.15, lambda: (fired.append("late"), done.set()))
    alarms.after(0.05, lambda: fired.append("early"))
    cancelled = alarms.after(0.10, lambda: fired.append("cancelled"))
    cancelled.cancel()
    assert done.wait(5)
    assert fired == ["early", "late"]


def test_a_new_earlier_alarm_wakes_the_sleeping_thread() -> None:
    alarms.after(30, lambda: None).cancel()  # the thread now sleeps towards +30 s
    keep = alarms.after(30, lambda: None)
    done = threading.Event()
    t0 = time.monotonic()
    alarms.after(0.05, done.set)
    assert done.wait(5)
    assert time.monotonic() - t0 < 5  # it did not wait for the 30 s alarm
    keep.cancel()


def test_thousands_of_alarms_share_one_thread_and_cancelled_ones_are_dropped() -> None:
    before = threading.active_count()
    pending = [alarms.after(60, lambda: None) for _ in range(3000)]
    assert threading.active_count() <= before + 1
    for a in pending:
        a.cancel()
    assert len(alarms._clock._heap) < 3000  # compaction: cancelled alarms do not pile up
    fired = threading.Event()
    alarms.after(0, fired.set)
    assert fired.wait(5)


def test_cancel_after_firing_is_harmless() -> None:
    fired = threading.Event()
    a = alarms.after(0, fired.set)
    assert fired.wait(5)
    a.cancel()
    a.cancel()
