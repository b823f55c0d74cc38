"""FairGate: at most `slots` holders, waiters admitted strictly first come, first served."""

from __future__ import annotations

import threading

import pytest

from starbridge.server.fairness import FairGate, default_slots


def _wait_until(predicate, timeout_s: float = 5.0) -> None:
    done = threading.Event()
    for _ in range(int(timeout_s / 0.005)):
        if predicate():
            return
        done.wait(0.005)
    raise AssertionError("condition not reached")


def test_waiters_are_admitted_in_arrival_order():
    gate = FairGate(1)
    assert gate.acquire()
    order: list[int] = []
    threads = []
    for k in range(5):
        t = threading.Thread(target=lambda k=k: (gate.acquire(), order.append(k), gate.release()))
        t.start()
        threads.append(t)
        _wait_until(lambda k=k: gate.waiting == k + 1)  # queued in this order
    gate.release()
    for t in threads:
        t.join(5)
    assert order == [0, 1, 2, 3, 4]
    assert gate.acquire() and gate.waiting == 0  # every slot came back
    gate.release()


def test_a_thread_that_comes_back_goes_to_the_end_of_the_line():
    gate = FairGate(1)
    assert gate.acquire()
    got, hold = threading.Event(), threading.Event()
    other = threading.Thread(target=lambda: (gate.acquire(), got.set(), hold.wait(5), gate.release()))
    other.start()
    _wait_until(lambda: gate.waiting == 1)
    gate.release()  # the slot goes to the waiter, not back to the pool
    gave_up = threading.Event()
    gave_up.set()
    assert gate.acquire(cancel=gave_up, poll_s=0.01) is False  # re-queued behind it: no slot
    assert got.wait(5)
    hold.set()
    other.join(5)
    assert gate.acquire()
    gate.release()


def test_slots_bound_the_holders():
    gate = FairGate(2)
    assert gate.acquire() and gate.acquire()
    cancel = threading.Event()
    cancel.set()
    assert gate.acquire(cancel=cancel, poll_s=0.01) is False  # full: a cancelled waiter gives up
    assert gate.waiting == 0
    gate.release()
    assert gate.acquire(cancel=cancel, poll_s=0.01) is True
    gate.release()
    gate.release()
    with pytest.raises(RuntimeError, match="without a matching acquire"):
        gate.release()


def test_cancelling_keeps_the_line_intact():
    gate = FairGate(1)
    assert gate.acquire()
    cancel = threading.Event()
    results: dict[str, bool] = {}
    a = threading.Thread(target=lambda: results.__setitem__("a", gate.acquire(cancel=cancel, poll_s=0.01)))
    a.start()
    _wait_until(lambda: gate.waiting == 1)
    b = threading.Thread(target=lambda: (results.__setitem__("b", gate.acquire()), gate.release()))
    b.start()
    _wait_until(lambda: gate.waiting == 2)
    cancel.set()
    a.join(5)
    assert results["a"] is False
    gate.release()
    b.join(5)
    assert results["b"] is True


def test_bad_slot_count_and_default():
    with pytest.raises(ValueError):
        FairGate(0)
    assert default_slots() >= 1
