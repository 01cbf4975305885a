"""A Linux timerfd armed at absolute `time.monotonic_ns()` instants: an event loop watches its fd
like a socket, so a scheduler wakes within microseconds of a due instant (an hrtimer), where the
loops' own timers round to whole milliseconds (libev for gevent, libuv for uvloop).

One syscall arms it, one read consumes an expiry. Timer slack: the kernel may defer a timer by the
thread's slack (50 us by default) to batch wake-ups; `tighten_timer_slack` sets it to 1 us for
the calling thread (a load worker's loop thread), which is what a schedule needs.
"""

from __future__ import annotations

import ctypes
import os

_CLOCK_MONOTONIC = 1  # the clock of time.monotonic_ns() on Linux
_TFD_NONBLOCK_CLOEXEC = os.O_NONBLOCK | os.O_CLOEXEC
_TFD_TIMER_ABSTIME = 1
_PR_SET_TIMERSLACK = 29


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class Timerfd:
    """One timerfd (raises OSError or AttributeError where the OS has none)."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._settime = libc.timerfd_settime
        self._settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec), ctypes.c_void_p]
        fd = libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        self.fd: int = fd
        self._spec = _Itimerspec()
        self._value = self._spec.it_value
        self._spec_ref = ctypes.byref(self._spec)

    def arm(self, due_ns: int) -> None:
        """Readable at `due_ns` (monotonic); at once if that has passed. Re-arming replaces it."""
        value = self._value
        value.tv_sec, value.tv_nsec = divmod(max(due_ns, 1), 1_000_000_000)
        if self._settime(self.fd, _TFD_TIMER_ABSTIME, self._spec_ref, None) != 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")

    def consume(self) -> None:
        """Read the expiry count, so the fd is quiet until armed again."""
        try:
            os.read(self.fd, 8)
        except BlockingIOError:
            pass

    def close(self) -> None:
        os.close(self.fd)


def tighten_timer_slack(slack_ns: int = 1_000) -> bool:
    """Let the kernel defer this thread's timers by at most `slack_ns` (prctl); False where it cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_TIMERSLACK, ctypes.c_ulong(slack_ns), 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False
