"""The machine under the benchmark: its disk, its cores, and how busy others keep it.

Timed steps run as child processes; :func:`run` returns a child's wall time and
its own resource usage (``wait4``), and how much CPU other user processes used
meanwhile (kernel threads, such as writeback doing the step's own I/O, are not
counted), so a noisy neighbour shows in the results instead of hiding.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Ran:
    wall: float  # seconds, fork to exit
    cpu: float  # user + system seconds of the child and its waited-for children
    peak_rss_mb: float  # the child's peak resident set (wait4 ru_maxrss)
    others_cores: float  # average cores busy with work that was not this child
    stdout: str


def _others_jiffies() -> int:
    """CPU ticks used so far by user processes outside this process tree (with their reaped children)."""
    me = os.getpid()
    procs: dict[int, tuple[int, int]] = {}  # pid -> (ppid, ticks)
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ppid, flags = int(fields[1]), int(fields[6])
        if flags & 0x00200000:  # PF_KTHREAD
            continue
        procs[int(name)] = (ppid, sum(int(x) for x in fields[11:15]))  # utime stime cutime cstime
    ours = {me}
    changed = True
    while changed:
        changed = False
        for pid, (ppid, _) in procs.items():
            if ppid in ours and pid not in ours:
                ours.add(pid)
                changed = True
    return sum(ticks for pid, (_, ticks) in procs.items() if pid not in ours)


def _busy_jiffies() -> tuple[int, int]:
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields[:8]) - idle, sum(fields[:8])


def run(cmd: Sequence[str], *, cwd: str | None = None) -> Ran:
    """Run ``cmd``; fail loudly if it fails."""
    hz = os.sysconf("SC_CLK_TCK")
    others0 = _others_jiffies()
    start = time.perf_counter()
    proc = subprocess.Popen(list(cmd), cwd=cwd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    others1 = _others_jiffies()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}")
    cpu = usage.ru_utime + usage.ru_stime
    others = max(0, others1 - others0) / hz / wall if wall > 0 else 0.0
    return Ran(wall, cpu, usage.ru_maxrss / 1024, others, out)


def wait_quiet(*, limit: float = 45.0, threshold: float = 0.15) -> float:
    """Wait (up to ``limit`` s) for a second in which under ``threshold`` of all cores are busy.

    Returns the busy share of the last second seen, so a run on a busy machine says so.
    """
    deadline = time.monotonic() + limit
    while True:
        b0, t0 = _busy_jiffies()
        time.sleep(1.0)
        b1, t1 = _busy_jiffies()
        share = (b1 - b0) / max(1, t1 - t0)
        if share < threshold or time.monotonic() > deadline:
            return share


def filesystem(path: str) -> dict[str, str]:
    """The mount holding ``path``: device, type, and whether the device is rotational."""
    path = os.path.realpath(path)
    best = ("", "", "")
    with open("/proc/mounts") as fh:
        for line in fh:
            dev, mnt, fstype = line.split()[:3]
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best[1]):
                best = (dev, mnt, fstype)
    dev, mnt, fstype = best
    kind = "unknown"
    name = os.path.basename(dev)
    rot = f"/sys/block/{name}/queue/rotational"
    if os.path.exists(rot):
        with open(rot) as fh:
            kind = f"rotational flag {fh.read().strip()}"
        if name.startswith("vd"):
            kind = f"virtio block device, {kind}"
    return {"device": dev, "mount": mnt, "type": fstype, "kind": kind}


def cpu_model() -> str:
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def memory_gb() -> float:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    return 0.0
