"""How much CPU the rest of the machine used while a figure ran.

Other people's test runs on the same 2 cores slow every figure down; the report says how
much, rather than pretend the machine was quiet: machine busy time (/proc/stat) minus the
CPU of this process and everything it started (reaped children included).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from bench.servers import descendants


def _machine_busy() -> float:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own() -> float:
    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in descendants(os.getpid()):
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in f[11:15]) / ticks  # utime stime cutime cstime
    return total


@dataclass
class Snapshot:
    busy: float
    own: float
    wall: float

    @classmethod
    def take(cls) -> Snapshot:
        return cls(_machine_busy(), _own(), os.times().elapsed)

    def foreign_since(self, earlier: Snapshot) -> tuple[float, float]:
        """(CPU seconds used by other processes, as a share of the machine's capacity)."""
        foreign = max(0.0, (self.busy - earlier.busy) - (self.own - earlier.own))
        capacity = (self.wall - earlier.wall) * (os.cpu_count() or 1)
        return foreign, foreign / capacity if capacity > 0 else 0.0


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def wait_quiet(max_wait: float = 20.0, threshold: float = 0.25) -> tuple[float, float]:
    """Wait (at most `max_wait` s) for a 1 s window in which other processes use at most
    `threshold` of the machine. Returns (seconds waited, their share in the last window)."""
    start = time.monotonic()
    while True:
        before = Snapshot.take()
        time.sleep(1.0)  # the measurement window itself
        _, share = Snapshot.take().foreign_since(before)
        waited = time.monotonic() - start
        if share <= threshold or waited >= max_wait:
            return waited, share
