"""The per-host request limit: slots, sharing within a thread, giving the slot back while
a retry waits, pacing, and where the limits come from (config, environment)."""

from __future__ import annotations

import threading
import time

import pytest

from acr_ci.config.model import RegistryLimit
from acr_ci.errors import UsageError
from acr_ci.registry.client import Client
from acr_ci.registry.limits import (
    HostLimit,
    Limit,
    LimitedTransport,
    default_limit,
    limits_from_config,
)


def test_never_more_than_max_concurrent_threads_hold_a_slot() -> None:
    limit = HostLimit(Limit(max_concurrent=3))
    lock = threading.Lock()
    now = peak = 0

    def work() -> None:
        nonlocal now, peak
        for _ in range(5):
            release = limit.acquire()
            with lock:
                now += 1
                peak = max(peak, now)
            time.sleep(0.002)
            with lock:
                now -= 1
            release()

    threads = [threading.Thread(target=work) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert peak == 3


def test_a_thread_holding_a_slot_shares_it_and_release_is_idempotent() -> None:
    limit = HostLimit(Limit(max_concurrent=1))
    outer = limit.acquire()
    inner = limit.acquire()  # same thread: would deadlock if it waited for a second slot
    inner()
    inner()  # twice: no effect
    got = threading.Event()

    def other() -> None:
        limit.acquire()()
        got.set()

    t = threading.Thread(target=other)
    t.start()
    assert not got.wait(0.1)  # the outer request still holds the slot
    outer()
    assert got.wait(5)
    t.join(timeout=5)


def test_the_slot_is_given_back_while_a_retry_waits() -> None:
    limit = HostLimit(Limit(max_concurrent=1))
    other_ran = threading.Event()

    def other() -> None:
        limit.acquire()()
        other_ran.set()

    release = limit.acquire()
    t = threading.Thread(target=other)

    def wait_for_other(seconds: float) -> None:
        t.start()
        assert other_ran.wait(5), "the waiting request kept its slot"

    limit.sleeping(1.0, wait_for_other)
    t.join(timeout=5)
    # the slot is ours again after the wait: nobody else gets it until we release
    late = threading.Event()
    t2 = threading.Thread(target=lambda: (limit.acquire()(), late.set()))
    t2.start()
    assert not late.wait(0.1)
    release()
    assert late.wait(5)
    t2.join(timeout=5)


def test_max_per_second_paces_request_starts() -> None:
    clock = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)

    limit = HostLimit(Limit(max_per_second=4), clock=lambda: clock[0], sleep=sleep)
    for _ in range(5):
        limit.acquire()()
    assert slept == pytest.approx([0.25, 0.5, 0.75, 1.0])
    unlimited = HostLimit(Limit(max_per_second=float("nan")), sleep=sleep)
    unlimited.acquire()()
    assert len(slept) == 4


def test_limits_come_from_config_then_environment_then_the_default() -> None:
    entries = [RegistryLimit("reg.example.com:5000", 2, 5.0), RegistryLimit("mirror.lan")]
    assert default_limit({}) == Limit(8, None)
    env_default = default_limit({"ACR_CI_MAX_CONCURRENT": "3"})
    assert env_default == Limit(3, None)
    limits = limits_from_config(entries, env_default)
    assert limits == {"reg.example.com:5000": Limit(2, 5.0), "mirror.lan": Limit(3, None)}
    for bad in ("0", "65", "x", "-1", "1e3"):
        with pytest.raises(UsageError, match="ACR_CI_MAX_CONCURRENT"):
            default_limit({"ACR_CI_MAX_CONCURRENT": bad})
    with Client(limits=limits, default_limit=env_default) as client:
        assert client.limit_for("REG.example.com:5000") == Limit(2, 5.0)
        assert client.limit_for("reg.example.com") == Limit(3, None)
        assert client.limit_for("mirror.lan:443") == Limit(3, None)
        t = client.transport("reg.example.com:5000")
        assert isinstance(t, LimitedTransport) and t.limit.limit == Limit(2, 5.0)
        assert client.transport("reg.example.com:5000") is t  # one per host, shared


def test_blob_flights_one_sender_per_blob_and_destination() -> None:
    from acr_ci.registry.copy import BlobFlights

    flights = BlobFlights()
    inside = threading.Event()
    leave = threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with flights.flight("reg/a", "sha256:x") as there:
            seen.append(there)
            inside.set()
            assert leave.wait(5)
            flights.landed("reg/a", "sha256:x")

    t1 = threading.Thread(target=first)
    t1.start()
    assert inside.wait(5)
    with flights.flight("reg/b", "sha256:x") as there:  # another destination: not waited for
        assert there is False
    waiter_done = threading.Event()

    def second() -> None:
        with flights.flight("reg/a", "sha256:x") as there:
            seen.append(there)
        waiter_done.set()

    t2 = threading.Thread(target=second)
    t2.start()
    assert not waiter_done.wait(0.1)  # waits for the first sender
    leave.set()
    assert waiter_done.wait(5)
    t1.join(timeout=5)
    t2.join(timeout=5)
    assert seen == [False, True]  # the second finds it landed: nothing to send
