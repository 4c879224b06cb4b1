"""The tools the storage benchmark compares, and how one step of each is run and measured.

Every step (one snapshot, one restore) is a child process started through
``/usr/bin/time``, which reports the child's peak RSS from ``wait4``: a child
forked straight from a Python process would inherit that parent's high-water
mark at ``exec``. Wall time is taken around the whole child, interpreter start
included; Amber's child also reports the time of the API call alone.

Durability is treated alike: Amber, borg and restic fsync what they write;
for tar and cp (and every tool's restore but Amber's, which fsyncs itself) the
timed command ends with ``sync FILE...``, which fsyncs exactly the files
written.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
TIME = "/usr/bin/time"
TOOLS = ("amber", "borg", "restic", "tar+zstd", "cp")


@dataclass
class Step:
    wall: float  # seconds, the whole child process
    peak_rss_mb: float
    cpu: float  # user + system seconds of the child tree
    others_busy: float  # share of all cores busy with other processes meanwhile
    inner: dict[str, Any] = field(default_factory=dict)  # what an Amber child printed
    stdout: str = ""


def _busy() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot."""
    with open("/proc/stat") as fh:
        f = [int(x) for x in fh.readline().split()[1:8]]
    return sum(f) - f[3] - f[4], sum(f)


def run(cmd: list[str], *, cwd: str | None = None, env: dict[str, str] | None = None, reports: bool = False) -> Step:
    """Run ``cmd`` under /usr/bin/time; raise with its stderr if it fails.

    ``reports``: the child prints one JSON document (an Amber step), kept as ``inner``.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        full = [TIME, "-f", "%M %U %S", "-o", tf.name, *cmd]
        b0, _ = _busy()
        start = time.perf_counter()
        proc = subprocess.run(full, cwd=cwd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        b1, _ = _busy()
        if proc.returncode != 0:
            raise RuntimeError(f"{shlex.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        rss_kb, user, system = tf.read().split()[-3:]
    cpu = float(user) + float(system)
    hz = os.sysconf("SC_CLK_TCK")
    cores = os.cpu_count() or 1
    others = max(0.0, (b1 - b0) / hz - cpu) / (wall * cores) if wall > 0 else 0.0
    inner: dict[str, Any] = {}
    if reports:
        inner = json.loads(proc.stdout.strip().splitlines()[-1])
    return Step(wall, int(rss_kb) / 1024, cpu, min(1.0, others), inner, proc.stdout)


def shell(script: str, *args: str, cwd: str | None = None, env: dict[str, str] | None = None) -> Step:
    return run(["sh", "-c", script, "sh", *args], cwd=cwd, env=env)


class Tool:
    """A way to keep a sequence of folders: one snapshot per folder, restore by index."""

    name = ""

    def __init__(self, repo: str) -> None:
        self.repo = repo
        self.ids: list[str] = []
        self.names: list[str] = []  # the folder each snapshot was taken of (base name)

    def init(self) -> None:
        os.makedirs(self.repo)

    def snapshot(self, folder: str) -> Step:
        raise NotImplementedError

    def restore(self, index: int, dest: str) -> tuple[Step, str]:
        """Write the folder of snapshot ``index`` under ``dest`` (which does not exist); where it is."""
        raise NotImplementedError

    def stored_dir(self) -> str:
        return self.repo


class Amber(Tool):
    name = "amber"

    def __init__(self, repo: str, model: str) -> None:
        super().__init__(repo)
        self.model = model

    def _op(self, *args: str) -> Step:
        return run([sys.executable, os.path.join(HERE, "storage_amber.py"), *args], reports=True)

    def init(self) -> None:
        self._op("init", self.repo)

    def snapshot(self, folder: str) -> Step:
        iteration = folder.rsplit("-", 1)[-1]
        step = self._op("snapshot", self.repo, folder, self.model, iteration if iteration.isdigit() else "0")
        self.ids.append(step.inner["ref"])
        self.names.append(os.path.basename(folder))
        return step

    def restore(self, index: int, dest: str) -> tuple[Step, str]:
        os.makedirs(dest)
        out = os.path.join(dest, self.names[index])
        return self._op("export", self.repo, self.ids[index], out), out

    def du(self) -> dict[str, Any]:
        return self._op("du", self.repo).inner


class Borg(Tool):
    name = "borg"

    def __init__(self, repo: str) -> None:
        super().__init__(repo)
        self.env = {**os.environ, "BORG_BASE_DIR": repo + "-home", "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
                    "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes", "BORG_PASSPHRASE": ""}  # fmt: skip

    def init(self) -> None:
        run(["borg", "init", "--encryption=none", self.repo], env=self.env)

    def snapshot(self, folder: str) -> Step:
        name = f"s{len(self.ids)}"
        step = run(["borg", "create", "--compression", "zstd,3", f"{self.repo}::{name}", os.path.basename(folder)],
                   cwd=os.path.dirname(folder), env=self.env)  # fmt: skip
        self.ids.append(name)
        self.names.append(os.path.basename(folder))
        return step

    def restore(self, index: int, dest: str) -> tuple[Step, str]:
        os.makedirs(dest)
        step = shell('borg extract "$1" && find . -type f -exec sync {} +', f"{self.repo}::{self.ids[index]}",
                     cwd=dest, env=self.env)  # fmt: skip
        return step, os.path.join(dest, self.names[index])


class Restic(Tool):
    name = "restic"

    def __init__(self, repo: str) -> None:
        super().__init__(repo)
        self.env = {**os.environ, "RESTIC_PASSWORD": "bench", "RESTIC_REPOSITORY": repo,
                    "RESTIC_CACHE_DIR": repo + "-cache"}  # fmt: skip

    def init(self) -> None:
        run(["restic", "init", "--repository-version", "2"], env=self.env)

    def snapshot(self, folder: str) -> Step:
        step = run(["restic", "backup", "--json", "--host", "bench", os.path.basename(folder)],
                   cwd=os.path.dirname(folder), env=self.env)  # fmt: skip
        self.ids.append(_restic_snapshot_id(step.stdout))
        self.names.append(os.path.basename(folder))
        return step

    def restore(self, index: int, dest: str) -> tuple[Step, str]:
        step = shell('restic restore "$1" --target "$2" && find "$2" -type f -exec sync {} +', self.ids[index], dest,
                     env=self.env)  # fmt: skip
        return step, find_folder(dest, self.names[index])


def _restic_snapshot_id(stdout: str) -> str:
    """The id in the summary message of ``restic backup --json``."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{") and '"summary"' in line:
            return str(json.loads(line)["snapshot_id"])
    raise RuntimeError("restic backup printed no summary")


class TarZstd(Tool):
    name = "tar+zstd"

    def snapshot(self, folder: str) -> Step:
        archive = os.path.join(self.repo, f"s{len(self.ids)}.tar.zst")
        self.ids.append(archive)
        self.names.append(os.path.basename(folder))
        return shell('tar -C "$1" -cf - "$2" | zstd -3 -q -o "$3" && sync "$3"', os.path.dirname(folder),
                     os.path.basename(folder), archive)  # fmt: skip

    def restore(self, index: int, dest: str) -> tuple[Step, str]:
        os.makedirs(dest)
        step = shell('zstd -d -q -c "$1" | tar -C "$2" -xf - && find "$2" -type f -exec sync {} +', self.ids[index],
                     dest)  # fmt: skip
        return step, os.path.join(dest, self.names[index])


class Copy(Tool):
    name = "cp"

    def snapshot(self, folder: str) -> Step:
        target = os.path.join(self.repo, f"s{len(self.ids)}")
        self.ids.append(target)
        self.names.append(os.path.basename(folder))
        return shell('cp -a "$1" "$2" && find "$2" -type f -exec sync {} +', folder, target)

    def restore(self, index: int, dest: str) -> tuple[Step, str]:
        return shell('cp -a "$1" "$2" && find "$2" -type f -exec sync {} +', self.ids[index], dest), dest


def make(name: str, repo: str, model: str) -> Tool:
    if name == "amber":
        return Amber(repo, model)
    return {"borg": Borg, "restic": Restic, "tar+zstd": TarZstd, "cp": Copy}[name](repo)


def tree_bytes(path: str) -> tuple[int, int]:
    """(apparent bytes, allocated bytes) of every file under ``path``."""
    apparent = allocated = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            st = os.lstat(os.path.join(root, name))
            apparent += st.st_size
            allocated += st.st_blocks * 512
    return apparent, allocated


def find_folder(dest: str, name: str) -> str:
    """Where a restore put the folder called ``name`` (restic keeps the path it was given)."""
    for root, dirs, _files in os.walk(dest):
        if name in dirs:
            return os.path.join(root, name)
    raise RuntimeError(f"restore wrote no folder named {name} under {dest}")
