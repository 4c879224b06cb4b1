"""The folder watcher, step by step on a clock the test moves: settle, every, in use, torn, gone."""

from __future__ import annotations

import os
import pickle
import threading
from pathlib import Path
from typing import Any

import pytest

import amber
from amber.errors import InvalidInput
from amber.integrations import watch as watch_mod
from amber.integrations.watch import FINGERPRINT_KEY, Watcher, fingerprint, parse_duration


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def folder(repo: amber.Repo, work: Path) -> Path:
    path = work / "model"
    path.mkdir()
    _save(path, 1000, [[0.5, 0.6]])
    return path


def _save(path: Path, iteration: int, history: list[list[float]]) -> None:
    (path / "new_SAEHD_encoder.npy").write_bytes(pickle.dumps({"w": [iteration] * 8}))
    data = {"iter": iteration, "options": {"resolution": 128}, "loss_history": history}
    (path / "new_SAEHD_data.dat").write_bytes(pickle.dumps(data))


def _watcher(folder: Path, repo: amber.Repo, clock: Clock, lines: list[str], **options: Any) -> Watcher:
    options = {"settle": 1.0, "every": 0.0} | options
    w = Watcher(folder, model="face", repo=repo, report=lines.append, monotonic=clock, **options)
    w.prepare()
    return w


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("10m", 600.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("0s", 0.0),
        ("2.5", 2.5),
        ("1d", 86400.0),
        (" 45S ", 45.0),
    ],
)
def test_durations_parse(text: str, seconds: float) -> None:
    assert seconds == parse_duration(text)


@pytest.mark.parametrize("text", ["", "10x", "m", "-5s", "5 s", "1h-2m", "nan"])
def test_bad_durations_are_refused_with_examples(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_duration(text)
    assert f"'{text}' is not a duration; use e.g. 30s, 10m, 1h or 1h30m" == str(info.value)


def test_fingerprint_sees_writes_renames_and_removals(tmp_path: Path) -> None:
    assert fingerprint(str(tmp_path / "missing")) is None
    (tmp_path / "a").write_bytes(b"1")
    first = fingerprint(str(tmp_path))
    assert first == fingerprint(str(tmp_path))
    seen = {first}
    for change in (
        lambda: (tmp_path / "a").write_bytes(b"2"),
        lambda: (tmp_path / "a").rename(tmp_path / "b"),
        lambda: (tmp_path / "sub").mkdir(),
        lambda: (tmp_path / "sub" / "c").write_bytes(b""),
        lambda: (tmp_path / "b").unlink(),
    ):
        change()
        now = fingerprint(str(tmp_path))
        assert now not in seen
        seen.add(now)


def test_a_snapshot_waits_until_the_folder_has_settled(folder: Path, repo: amber.Repo) -> None:
    clock, lines = Clock(), []
    w = _watcher(folder, repo, clock, lines)
    assert w.step() is None  # just started: not yet quiet for a second
    clock.now += 0.6
    _save(folder, 1100, [[0.4, 0.5]])
    assert w.step() is None  # changed: the settle time starts again
    clock.now += 0.9
    assert w.step() is None
    clock.now += 0.2
    v = w.step()
    assert v is not None
    assert (v.ref, v.kind, v.iteration, v.metrics) == ("face:v1", "auto", 1100, {"loss_src": 0.4, "loss_dst": 0.5})
    assert ("SAEHD", fingerprint(str(folder))) == (v.model_type, v.metadata[FINGERPRINT_KEY])
    clock.now += 5
    assert w.step() is None  # unchanged since: nothing to do
    assert lines[0].startswith("snapshot face:v1  iteration 1100  loss_src=0.4  loss_dst=0.5  (")
    assert [v.id] == [x.id for x in w.summary.versions]


def test_every_spaces_snapshots_apart(folder: Path, repo: amber.Repo) -> None:
    clock, lines = Clock(), []
    w = _watcher(folder, repo, clock, lines, every=60.0)
    clock.now += 1
    assert w.step() is not None
    _save(folder, 2000, [[0.3, 0.4]])
    clock.now += 1
    w.step()
    clock.now += 5
    assert w.step() is None  # settled, but the last snapshot is 6 s old
    clock.now += 55
    assert w.step().iteration == 2000  # type: ignore[union-attr]


def test_a_file_held_open_by_another_process_postpones_the_snapshot(
    folder: Path, repo: amber.Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, lines = Clock(), []
    held = [(4242, "trainer.py", str(folder / "new_SAEHD_encoder.npy"))]
    monkeypatch.setattr(watch_mod.inuse, "holders", lambda path: list(held))
    w = _watcher(folder, repo, clock, lines)
    clock.now += 2
    assert w.step() is None
    assert w.step() is None
    assert lines == ["waiting: process 4242 (trainer.py) has 'new_SAEHD_encoder.npy' open"]  # said once
    held.clear()
    assert w.step() is not None


def test_a_real_open_file_is_seen(folder: Path, repo: amber.Repo) -> None:
    import subprocess
    import sys

    clock, lines = Clock(), []
    w = _watcher(folder, repo, clock, lines)
    clock.now += 2
    code = "import sys, time; f = open(sys.argv[1], 'ab'); print('open', flush=True); time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", code, str(folder / "new_SAEHD_data.dat")], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"open\n"
        assert w.step() is None
        assert f"waiting: process {child.pid} (" in lines[0]
        assert lines[0].endswith(") has 'new_SAEHD_data.dat' open")
    finally:
        child.kill()
        child.wait()
        child.stdout.close()  # type: ignore[union-attr]
    assert w.step() is not None


def test_a_snapshot_the_writer_interrupted_is_discarded_and_taken_again(
    folder: Path, repo: amber.Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, lines = Clock(), []
    w = _watcher(folder, repo, clock, lines)
    real = repo.snapshot

    def snapshot_while_training_writes(*args: Any, **kwargs: Any) -> amber.Version:
        version = real(*args, **kwargs)
        _save(folder, 1500, [[0.2, 0.3]])  # the trainer started its next save meanwhile
        return version

    monkeypatch.setattr(repo, "snapshot", snapshot_while_training_writes)
    clock.now += 2
    assert w.step() is None
    monkeypatch.setattr(repo, "snapshot", real)
    assert w.summary.discarded == 1
    assert lines == ["the folder changed during the snapshot; discarded face:v1, will take it again"]
    assert repo.versions("face") == []
    clock.now += 0.5
    assert w.step() is None  # the new state must settle first
    clock.now += 1
    assert (lambda v: (v.ref, v.iteration))(w.step()) == ("face:v2", 1500)


def test_a_folder_that_disappears_is_reported_and_watched_until_it_returns(
    folder: Path, repo: amber.Repo, work: Path
) -> None:
    clock, lines = Clock(), []
    w = _watcher(folder, repo, clock, lines)
    folder.rename(work / "aside")
    clock.now += 2
    assert w.step() is None
    assert w.step() is None
    assert [f"'{folder}' is not there; still watching"] == lines
    (work / "aside").rename(folder)
    assert w.step() is None
    assert f"'{folder}' is back" == lines[1]
    clock.now += 1
    assert w.step() is not None


def test_a_failed_snapshot_is_reported_and_retried_later(
    folder: Path, repo: amber.Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, lines = Clock(), []
    w = _watcher(folder, repo, clock, lines)

    def fail(*args: Any, **kwargs: Any) -> amber.Version:
        raise amber.AmberError("the disk is full")

    monkeypatch.setattr(repo, "snapshot", fail)
    clock.now += 2
    assert w.step() is None
    assert lines == ["snapshot failed: the disk is full; will retry"]
    monkeypatch.undo()
    clock.now += 4
    assert w.step() is None  # retries wait at least 5 s
    clock.now += 1
    assert w.step() is not None
    assert w.summary.failed == 1


def test_a_restarted_watcher_does_not_snapshot_an_untouched_folder(folder: Path, repo: amber.Repo) -> None:
    clock, lines = Clock(), []
    first = _watcher(folder, repo, clock, lines)
    clock.now += 2
    assert first.step() is not None
    again = _watcher(folder, repo, clock, lines, once=True)
    assert again.run(handle_signals=False).stopped_by == "once"
    assert lines[-1] == "no change since the last snapshot"
    assert len(repo.versions("face")) == 1


def test_once_takes_one_snapshot_after_settling(folder: Path, repo: amber.Repo) -> None:
    w = Watcher(folder, model="face", repo=repo, settle=0.2, every=0.0, once=True, report=lambda _: None)
    summary = w.run(handle_signals=False)
    assert (summary.stopped_by, [v.ref for v in summary.versions]) == ("once", ["face:v1"])
    assert summary.seconds >= 0.2


def test_keep_applies_the_retention_policy_after_each_snapshot(folder: Path, repo: amber.Repo) -> None:
    clock, lines = Clock(), []
    w = _watcher(folder, repo, clock, lines, keep="keep-last=2,keep-best=1", best_metric="loss_dst")
    losses = [0.1, 0.9, 0.8, 0.7]
    for n, loss in enumerate(losses):
        _save(folder, 1000 * (n + 1), [[loss, loss]])
        clock.now += 2
        w.step()
        clock.now += 2
        assert w.step() is not None
    settings = repo.model_settings("face")
    assert (settings.best_metric, settings.retention) == ("loss_dst", "keep-last=2,keep-best=1,keep-aliased")
    assert [v.iteration for v in repo.versions("face")] == [4000, 3000, 1000]


def test_keep_best_without_a_best_metric_is_refused_before_watching(folder: Path, repo: amber.Repo) -> None:
    w = Watcher(folder, model="face", repo=repo, keep="keep-best=3")
    with pytest.raises(InvalidInput, match="keep-best needs a best metric") as info:
        w.prepare()
    assert info.value.hint == "add --best-metric NAME (e.g. loss_dst)"
    with pytest.raises(InvalidInput, match="'keep-lots' is not a retention rule"):
        Watcher(folder, model="face", repo=repo, keep="keep-lots")


def test_max_snapshots_and_stop_end_the_run(folder: Path, repo: amber.Repo) -> None:
    w = Watcher(
        folder, model="face", repo=repo, settle=0.0, every=0.0, poll=0.01, max_snapshots=2, report=lambda _: None
    )
    w.prepare()
    w.step()  # the first version
    _save(folder, 5000, [[0.1, 0.1]])
    summary = w.run(handle_signals=False)
    assert (summary.stopped_by, [v.ref for v in summary.versions]) == ("max-snapshots", ["face:v1", "face:v2"])
    idle = Watcher(folder, model="face", repo=repo, settle=0.0, every=0.0, poll=0.01, report=lambda _: None)
    threading.Timer(0.3, idle.stop).start()
    assert (lambda s: (s.stopped_by, s.versions))(idle.run(handle_signals=False)) == ("signal", [])


def test_a_repository_given_by_path_is_opened_per_snapshot(folder: Path, work: Path) -> None:
    w = Watcher(folder, model="face", repo=str(work), settle=0.0, once=True, report=lambda _: None)
    assert [v.ref for v in w.run(handle_signals=False).versions] == ["face:v1"]
    assert os.path.isdir(work / ".amber")


def test_ctrl_c_lets_a_snapshot_finish_and_a_second_ctrl_c_abandons_it(
    folder: Path, repo: amber.Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal
    import time

    real, started = repo.snapshot, threading.Event()

    def slow(*args: Any, **kwargs: Any) -> amber.Version:
        started.set()
        time.sleep(1.2)
        return real(*args, **kwargs)

    def ctrl_c(after: float) -> None:
        started.wait(10)
        time.sleep(after)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(repo, "snapshot", slow)
    lines: list[str] = []
    before = signal.getsignal(signal.SIGINT)
    w = Watcher(folder, model="face", repo=repo, settle=0.0, every=0.0, poll=0.01, report=lines.append)
    threading.Thread(target=ctrl_c, args=(0.1,)).start()
    summary = w.run()  # the first Ctrl-C arrives mid-snapshot: it finishes, then the watch stops
    assert (summary.stopped_by, [v.ref for v in summary.versions]) == ("signal", ["face:v1"])
    assert lines[0] == "stopping (Ctrl-C again to abandon a running snapshot)"
    assert signal.getsignal(signal.SIGINT) is before

    _save(folder, 2000, [[0.2, 0.2]])
    started.clear()
    w = Watcher(folder, model="face", repo=repo, settle=0.0, every=0.0, poll=0.01, report=lines.append)
    for delay in (0.1, 0.2):
        threading.Thread(target=ctrl_c, args=(delay,)).start()
    with pytest.raises(KeyboardInterrupt):
        w.run()
    assert signal.getsignal(signal.SIGINT) is before
    assert [v.ref for v in repo.versions("face")] == ["face:v1"]  # the abandoned snapshot left no version
    assert repo.verify().ok
