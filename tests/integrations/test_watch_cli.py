"""``amber watch`` as a user runs it: a DeepFaceLab-style writer in bursts, Ctrl-C, SIGTERM, bad options."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import amber
from tests.integrations.conftest import EXAMPLES, amber_cmd, env, load_example, run

dfl = load_example("watch_dfl")


def _dfl_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    dfl.save(str(path), 500, [[0.9, 0.8]], dfl.np.random.default_rng(1), hold=0.0)
    return path


def test_every_version_is_a_state_the_writer_finished(tmp_path: Path) -> None:
    amber.Repo.init(tmp_path)
    model, states = tmp_path / "model", tmp_path / "states.txt"
    model.mkdir()
    saves = 3
    writer = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "watch_dfl.py"), str(tmp_path), "--writer", f"--saves={saves}"], env=env()
    )
    argv = amber_cmd(
        "watch",
        str(model),
        "--model",
        "face",
        "--every",
        "0s",
        "--settle",
        "1s",
        "--max-snapshots",
        str(saves),
        "--json",
    )
    watcher = subprocess.Popen(argv, cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert writer.wait(timeout=60) == 0
        out, err = watcher.communicate(timeout=30)  # exits by itself after --max-snapshots
    finally:
        for proc in (writer, watcher):
            proc.kill()
            proc.wait()
    assert watcher.returncode == 0, err
    summary = json.loads(out)
    produced = {h: int(i) for i, h in (line.split() for line in states.read_text().splitlines())}
    assert saves == len(produced)
    with amber.Repo(tmp_path) as repo:
        versions = list(reversed(repo.versions("face")))
        for v in versions:
            repo.export(v.ref, tmp_path / v.ref.replace(":", "-"))
            assert v.iteration == produced.get(dfl.folder_hash(str(tmp_path / v.ref.replace(":", "-")))), v.ref
        assert repo.verify().ok
    assert [v.iteration for v in versions] == [1000, 2000, 3000]
    assert [versions[-1].metrics["loss_src"], versions[-1].metrics["loss_dst"]] == [1 / 3, 0.5]
    assert {"auto"} == {v.kind for v in versions}
    assert ("max-snapshots", [v.ref for v in versions]) == (
        summary["stopped_by"],
        [v["ref"] for v in summary["versions"]],
    )
    assert "waiting: process " in err  # the save that held a file open half written was waited out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_stops_watching_with_exit_0_and_a_summary(tmp_path: Path, sig: signal.Signals) -> None:
    amber.Repo.init(tmp_path)
    model = _dfl_folder(tmp_path / "model")
    argv = amber_cmd("watch", str(model), "--every", "0s", "--settle", "0.2s")
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline() for _ in range(2)]
        assert lines[0].startswith(f"watching {model} as model 'model' (every 0s, settle 0.2s)")
        assert lines[1].startswith("snapshot model:v1  iteration 500  loss_src=0.9  loss_dst=0.8  (")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0
    assert "stopping (Ctrl-C again to abandon a running snapshot)" in err
    assert out.startswith("Watched for ") and out.endswith(": 1 snapshot(s) (model:v1)\n")


def test_once_prints_a_json_summary(tmp_path: Path) -> None:
    amber.Repo.init(tmp_path)
    model = _dfl_folder(tmp_path / "model")
    proc = run(
        amber_cmd("watch", str(model), "-m", "face", "--settle", "0s", "--once", "--json", "--tag", "w"), cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["stopped_by"], doc["discarded"], doc["failed"]) == ("once", 0, 0)
    assert [(v["ref"], v["kind"], v["iteration"], v["tags"]) for v in doc["versions"]] == [
        ("face:v1", "auto", 500, ["w"])
    ]
    again = run(amber_cmd("watch", str(model), "-m", "face", "--settle", "0s", "--once"), cwd=tmp_path)
    assert again.returncode == 0
    assert "no change since the last snapshot" in again.stderr
    assert again.stdout.endswith(": 0 snapshot(s) (none)\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--every", "10x"], "Error: '10x' is not a duration; use e.g. 30s, 10m, 1h or 1h30m"),
        (["--keep", "keep-best=3"], "Error: keep-best needs a best metric"),
        (["--mode", "lowest"], "Error: --mode must be 'min' or 'max', not 'lowest'"),
        (["--max-snapshots", "0"], "Error: --max-snapshots must be at least 1"),
    ],
)
def test_bad_options_exit_2_with_the_reason(tmp_path: Path, args: list[str], message: str) -> None:
    amber.Repo.init(tmp_path)
    (tmp_path / "model").mkdir()
    start = time.monotonic()
    proc = run(amber_cmd("watch", str(tmp_path / "model"), *args), cwd=tmp_path)
    assert (2, message) == (proc.returncode, proc.stderr.splitlines()[0])
    assert time.monotonic() - start < 30


def test_no_repository_exits_4(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    proc = run(amber_cmd("watch", str(tmp_path / "model")), cwd=tmp_path)
    assert proc.returncode == 4
    assert proc.stderr.startswith(f"Error: no Amber repository in '{tmp_path}'")
