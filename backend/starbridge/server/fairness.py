"""Fair sharing of the machine between sessions: a first-come, first-served gate around generation.

Every session's generator thread passes the gate before it makes a block. The gate admits at most
`slots` blocks at once (the cores the generators may use) and serves waiters strictly in arrival
order, so under overload the sessions take turns: each one's frame rate degrades by the same
factor instead of a few sessions starving (the OS and the GIL share CPU time, not turns).

Usage::

    gate = FairGate(slots=2)
    if gate.acquire(cancel=closed_event):   # False: cancelled while waiting in line
        try:
            make_block()
        finally:
            gate.release()
"""

from __future__ import annotations

import collections
import os
import threading


def default_slots() -> int:
    """Blocks generated at once by default: one per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


class FairGate:
    """A counting semaphore whose waiters are admitted in FIFO order."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"a gate needs at least one slot, got {slots}")
        self.slots = slots
        self._lock = threading.Lock()
        self._busy = 0
        self._waiters: collections.deque[threading.Event] = collections.deque()

    @property
    def waiting(self) -> int:
        """Threads queued at the gate now."""
        with self._lock:
            return len(self._waiters)

    def acquire(self, cancel: threading.Event | None = None, poll_s: float = 0.05) -> bool:
        """Take a slot, keeping this thread's place in line until it comes (or `cancel` is set).

        Returns False only when `cancel` was set before the slot came; the caller then owns nothing.
        """
        with self._lock:
            if self._busy < self.slots and not self._waiters:
                self._busy += 1
                return True
            turn = threading.Event()
            self._waiters.append(turn)
        while not turn.wait(poll_s):
            if cancel is not None and cancel.is_set():
                with self._lock:
                    if turn.is_set():  # handed a slot just now: the caller must release it
                        return True
                    self._waiters.remove(turn)
                    return False
        return True

    def release(self) -> None:
        """Give the slot back: straight to the longest waiter, if any."""
        with self._lock:
            if self._waiters:
                self._waiters.popleft().set()  # the slot changes hands; _busy stays
            elif self._busy > 0:
                self._busy -= 1
            else:
                raise RuntimeError("FairGate.release() without a matching acquire()")
