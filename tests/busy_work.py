"""CPU-bound neighbours for the tests of what the machine watch counts as other work: one spelling of
the busy loop for every test that starts one."""

from __future__ import annotations


def busy_code(seconds: float | None = None, *, stay_normal: bool = False) -> str:
    """Python source for `python -c` that spins a CPU for `seconds` (None: until killed).

    `stay_normal`: every 50 ms it puts itself back to SCHED_OTHER. A tool that keeps a measurement quiet
    (here /work/bin/quiet: chrt -i 0 on everything outside the measured tree) would otherwise make it
    yield to us, and work that yields is rightly not counted (inferload/machine.py), so the test would
    check nothing. The source holds no double quote, so a shell can carry it inside one.
    """
    lines = ["import os, time",
             "stop = None" if seconds is None else f"stop = time.monotonic() + {seconds}",
             "while stop is None or time.monotonic() < stop:"]
    if stay_normal:
        lines += ["    try:",
                  "        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))",
                  "    except OSError:",
                  "        pass"]
    lines += ["    end = time.monotonic() + 0.05",
              "    while time.monotonic() < end:",
              "        pass"]
    return "\n".join(lines) + "\n"
