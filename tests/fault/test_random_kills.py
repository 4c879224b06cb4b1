"""kill -9 at a random moment of snapshot, restore and delete on a ~20 MB model folder.

Rounds: $AMBER_FAULT_ROUNDS (default 10); the ``soak`` variant runs ten times as many
(``pytest -m soak tests/fault``). Seed: $AMBER_FAULT_SEED (default below). After every
kill the next command (``amber verify --data``) must find the repository whole and:

* no version committed before the kill is lost, and each exports bit-exact;
* a version the killed command managed to commit is whole (snapshot: the folder's
  tree; restore: a backup of the folder's tree before the restore);
* the model folder is wholly the tree before or wholly the tree after;
* no staging folder is left beside the model folder and no journal entry remains.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save as safetensors_bytes
from tests.fault.faultkit import (
    SIGKILLED,
    amber_cli,
    amber_popen,
    journal_entries,
    leftovers,
    npy_bytes,
    rounds,
    tree_digest,
    verify_clean,
    write_tree,
)

import amber

DEFAULT_SEED = 20_240_611
MAX_VERSIONS = 10  # older versions are deleted (without a kill) so verify stays fast


def big_state(seed: int) -> dict[str, bytes | tuple[str, str]]:
    """~20 MB: a 12 MB safetensors file that changes in one slice per state, a 6 MB .npy that changes whole."""
    base = np.random.default_rng(7).standard_normal(3_000_000).astype(np.float32)
    rng = np.random.default_rng(seed)
    start = int(rng.integers(0, 2_700_000))
    base[start : start + 250_000] = rng.standard_normal(250_000).astype(np.float32)
    return {
        "model.safetensors": safetensors_bytes({"w": base}),
        "optimizer.npy": npy_bytes(rng.standard_normal(1_500_000).astype(np.float32)),
        "config.json": f'{{"seed": {seed}}}'.encode(),
        "logs/step.txt": f"{seed}\n".encode(),
        "best": ("link", "model.safetensors"),
    }


@dataclass
class Ledger:
    """What the test knows to be committed, and what it saw."""

    expected: dict[str, str] = field(default_factory=dict)  # version id -> tree digest
    outcomes: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    seen_leftovers: set[str] = field(default_factory=set)

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.violations.append(message)


def _listed(root: Path) -> dict[str, amber.Version]:
    with amber.Repo(root) as repo:
        return {v.id: v for v in repo.versions()}


def _exported_digest(root: Path, ref: str, scratch: Path) -> str:
    import shutil

    dest = scratch / "export"
    if dest.exists():
        shutil.rmtree(dest)
    with amber.Repo(root) as repo:
        repo.export(ref, dest)
    digest = tree_digest(dest)
    shutil.rmtree(dest)
    return digest


def _estimate(seen: list[float]) -> float:
    """How long an uninterrupted run of the command takes: the median of the recent ones."""
    recent = sorted(seen[-5:])
    return recent[len(recent) // 2]


def _timed(root: Path, *args: str) -> float:
    start = time.monotonic()
    proc = amber_cli(*args, cwd=root)
    assert proc.returncode == 0, proc.stderr
    return time.monotonic() - start


@dataclass
class Round:
    number: int
    op: str  # snapshot, restore or delete
    args: list[str]
    env: dict[str, str]
    old: str  # tree digest of the folder before the command
    target: str | None  # version id restored or deleted
    before: dict[str, amber.Version]
    killed: bool = False

    def say(self, what: str) -> str:
        return f"round {self.number}: {'killed' if self.killed else 'finished'} {self.op} {what}"


def run_rounds(root: Path, scratch: Path, n: int, seed: int) -> Ledger:
    rng = random.Random(seed)
    folder = root / "big"
    ledger = Ledger()
    write_tree(folder, big_state(0))
    first = _timed(root, "snapshot", "big")
    ledger.expected[next(iter(_listed(root)))] = tree_digest(folder)
    state = 1
    write_tree(folder, big_state(state))
    durations = {"snapshot": [first], "restore": [_timed(root, "restore", "big:v1", "--yes")], "delete": [0.6]}
    for number in range(1, n + 1):
        _prune(root, ledger)
        op = rng.choice(["snapshot", "snapshot", "snapshot", "restore", "restore", "delete"])
        if op == "snapshot" and rng.random() < 0.8:
            state += 1
            write_tree(folder, big_state(state))
        if op == "delete" and len(ledger.expected) < 2:
            op = "restore"
        target = None if op == "snapshot" else rng.choice(sorted(ledger.expected))
        args = {"snapshot": ["snapshot", "big", "--json"], "restore": ["restore", str(target), "--yes"]}.get(
            op, ["delete", str(target), "--yes"]
        )
        env = {"AMBER_NO_EXCHANGE": "1"} if rng.random() < 0.3 else {}
        r = Round(number, op, args, env, tree_digest(folder), target, _listed(root))
        _kill_at_random(root, r, rng.uniform(0.3, 1.3) * _estimate(durations[op]), durations, ledger)
        try:
            verify_clean(root)  # the next command
        except AssertionError as exc:
            ledger.violations.append(r.say(f"left a repository that does not verify: {exc}"))
            break
        _check_round(root, scratch, ledger, r)
    for vid, digest in ledger.expected.items():  # finally, every committed version restores bit-exact
        ledger.check(_exported_digest(root, vid, scratch) == digest, f"end: {vid[:12]} does not restore bit-exact")
    return ledger


def _kill_at_random(root: Path, r: Round, delay: float, durations: dict[str, list[float]], ledger: Ledger) -> None:
    started = time.monotonic()
    proc = amber_popen(*r.args, cwd=root, **r.env)
    while proc.poll() is None and time.monotonic() - started < delay:
        time.sleep(0.005)
    if proc.poll() is None:
        proc.kill()
    else:
        durations[r.op].append(time.monotonic() - started)
    _, err = proc.communicate()
    r.killed = proc.returncode == SIGKILLED
    ledger.check(r.killed or proc.returncode == 0, r.say(f"exited {proc.returncode}: {err!r}"))


def _check_round(root: Path, scratch: Path, ledger: Ledger, r: Round) -> None:
    now = _listed(root)
    lost = set(ledger.expected) - set(now) - ({r.target} if r.op == "delete" else set())
    ledger.check(not lost, r.say(f"lost versions {sorted(v[:12] for v in lost)}"))
    new = {vid: v for vid, v in now.items() if vid not in r.before}
    ledger.check(len(new) <= 1, r.say(f"created {len(new)} versions"))
    fresh = set(leftovers(root)) - ledger.seen_leftovers
    ledger.seen_leftovers |= fresh
    ledger.check(not fresh, r.say(f"left {sorted(fresh)} beside the model folder"))
    ledger.check(journal_entries(root) == [], r.say("left a journal entry"))
    for vid, v in new.items():  # a version the command managed to commit is whole
        digest = _exported_digest(root, vid, scratch)
        kind = "manual" if r.op == "snapshot" else "backup"
        ledger.check((v.kind, digest) == (kind, r.old), r.say(f"committed {v.ref} ({v.kind}) with the wrong tree"))
        ledger.expected[vid] = digest
    landed = tree_digest(root / "big")
    how = "killed during " if r.killed else "finished before the kill: "
    outcome = {"snapshot": _snapshot_outcome, "restore": _restore_outcome, "delete": _delete_outcome}[r.op]
    ledger.outcomes[how + outcome(ledger, r, landed, bool(new), now)] += 1
    survivors = sorted(ledger.expected)
    probe = survivors[r.number % len(survivors)]  # one earlier version, at random, must still restore bit-exact
    ledger.check(_exported_digest(root, probe, scratch) == ledger.expected[probe], r.say(f"broke {probe[:12]}"))


def _snapshot_outcome(ledger: Ledger, r: Round, landed: str, committed: bool, now: dict[str, amber.Version]) -> str:
    ledger.check(landed == r.old, r.say("changed the model folder"))
    ledger.check(r.killed or committed, r.say("exited 0 without a version"))
    return "snapshot, " + ("version committed" if committed else "no version")


def _restore_outcome(ledger: Ledger, r: Round, landed: str, committed: bool, now: dict[str, amber.Version]) -> str:
    want = ledger.expected[str(r.target)]
    ledger.check(landed in (r.old, want), r.say("left a folder that is neither the old nor the new tree"))
    ledger.check(r.killed or landed == want, r.say("exited 0 but the folder is not the version"))
    return "restore, " + ("new tree" if landed == want and want != r.old else "old tree")


def _delete_outcome(ledger: Ledger, r: Round, landed: str, committed: bool, now: dict[str, amber.Version]) -> str:
    gone = r.target not in now
    ledger.check(r.killed or gone, r.say("exited 0 but the version is still listed"))
    ledger.check(landed == r.old, r.say("changed the model folder"))
    if gone:
        del ledger.expected[str(r.target)]
    return "delete, " + ("committed" if gone else "not committed")


def _prune(root: Path, ledger: Ledger) -> None:
    with amber.Repo(root) as repo:
        versions = sorted(repo.versions(), key=lambda v: v.number)
        for v in versions[: max(0, len(versions) - MAX_VERSIONS)]:
            repo.delete(v.id, force=True)
            ledger.expected.pop(v.id, None)


def _report(ledger: Ledger, n: int, seed: int) -> None:
    print(f"\nrandom kills: {n} rounds, seed {seed}, outcomes {dict(sorted(ledger.outcomes.items()))}")
    print(f"versions tracked at the end: {len(ledger.expected)}; violations: {len(ledger.violations)}")
    for line in ledger.violations:
        print("  " + line)


def _seed() -> int:
    return int(os.environ.get("AMBER_FAULT_SEED", DEFAULT_SEED))


def test_kill_at_random_moments(work: Path, tmp_path: Path) -> None:
    n, seed = rounds(10), _seed()
    amber.Repo.init(work).close()
    ledger = run_rounds(work, tmp_path, n, seed)
    _report(ledger, n, seed)
    assert ledger.violations == []


@pytest.mark.soak
def test_kill_at_random_moments_soak(work: Path, tmp_path: Path) -> None:
    n, seed = 10 * rounds(10), _seed() + 1
    amber.Repo.init(work).close()
    ledger = run_rounds(work, tmp_path, n, seed)
    _report(ledger, n, seed)
    assert ledger.violations == []
