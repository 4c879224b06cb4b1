"""The CLI as a user meets it: real subprocesses, exit codes, JSON, messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import cli_json, run_cli, tree_bytes

VERSION_KEYS = [
    "id", "model", "number", "ref", "label", "kind", "created_at", "iteration", "metrics", "notes",
    "model_type", "tags", "metadata", "parent", "aliases", "size_bytes", "stored_bytes", "unique_bytes",
]  # fmt: skip


def make_model(folder: Path, seed: int = 0) -> None:
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    np.save(folder / "weights.npy", (rng.standard_normal((300, 300)) * 0.02).astype(np.float32))
    (folder / "notes.txt").write_text(f"seed {seed}\n")


@pytest.fixture
def cli_repo(work: Path) -> Path:
    assert run_cli("init", cwd=work).returncode == 0
    make_model(work / "model")
    return work


def test_no_repository_says_how_to_make_one(work: Path) -> None:
    proc = run_cli("list", cwd=work)
    assert proc.returncode == 4
    assert "no Amber repository" in proc.stderr
    assert "amber init" in proc.stderr
    assert proc.stderr.count("\n") == 2  # the error line and its hint


def test_snapshot_records_everything_given(cli_repo: Path) -> None:
    doc = cli_json(
        "snapshot", "model", "--model", "face", "--name", "Best face detail", "--notes", "bs 8, lr 5e-5",
        "--iteration", "50000", "--metric", "loss_src=0.21", "--metric", "loss_dst=0.34", "--tag", "exp1",
        "--meta", "lr=5e-5", "--meta", "note=plain text", "--type", "SAEHD", cwd=cli_repo,
    )  # fmt: skip
    assert list(doc) == VERSION_KEYS
    assert doc["ref"] == "face:v1"
    assert doc["model"] == "face"
    assert doc["number"] == 1
    assert doc["label"] == "Best face detail"
    assert doc["kind"] == "manual"
    assert doc["iteration"] == 50000
    assert doc["metrics"] == {"loss_src": 0.21, "loss_dst": 0.34}
    assert doc["notes"] == "bs 8, lr 5e-5"
    assert doc["model_type"] == "SAEHD"
    assert doc["tags"] == ["exp1"]
    # what the user passed, plus what detection read from the .npy header
    assert doc["metadata"] == {"lr": 5e-5, "note": "plain text", "dtype": "float32", "parameters": 90000}
    assert doc["parent"] is None
    assert doc["aliases"] == ["latest"]
    assert doc["size_bytes"] == sum(p.stat().st_size for p in (cli_repo / "model").iterdir())
    assert 0 < doc["stored_bytes"] < doc["size_bytes"] + 4096
    assert doc["created_at"].endswith("Z")


def test_list_show_and_refs(cli_repo: Path) -> None:
    first = cli_json("snapshot", "model", "--name", "one", cwd=cli_repo)
    make_model(cli_repo / "model", seed=1)
    second = cli_json("snapshot", "model", "--name", "two", cwd=cli_repo)
    assert first["model"] == "model"  # --model defaults to the folder's name
    assert second["parent"] == "model:v1"

    listed = cli_json("list", cwd=cli_repo)
    assert [v["ref"] for v in listed] == ["model:v2", "model:v1"]
    assert [list(v) for v in listed] == [VERSION_KEYS, VERSION_KEYS]

    for ref in ("model:v1", "v1", first["id"][:10]):
        assert cli_json("show", ref, cwd=cli_repo)["id"] == first["id"]
    assert cli_json("show", "model:latest", cwd=cli_repo)["id"] == second["id"]
    shown = cli_json("show", "model:v2", cwd=cli_repo)
    assert shown["files"] == [
        {"path": "notes.txt", "size": 7, "mode": 0o644, "type": "file"},
        {"path": "weights.npy", "size": 360128, "mode": 0o644, "type": "file"},
    ]

    table = run_cli("list", cwd=cli_repo).stdout
    assert "model:v2" in table and "two" in table and "s ago" in table


def test_unknown_and_ambiguous_refs(cli_repo: Path) -> None:
    cli_json("snapshot", "model", cwd=cli_repo)
    cli_json("snapshot", "model", "--model", "other", cwd=cli_repo)
    proc = run_cli("show", "model:v3", cwd=cli_repo)
    assert proc.returncode == 4
    assert "no version matches 'model:v3'" in proc.stderr
    assert "model:v1" in proc.stderr  # a close match is offered
    proc = run_cli("show", "v1", cwd=cli_repo)
    assert proc.returncode == 2
    assert "'v1' matches 2 versions" in proc.stderr


def test_restore_needs_yes_without_a_terminal(cli_repo: Path) -> None:
    cli_json("snapshot", "model", cwd=cli_repo)
    before = tree_bytes(cli_repo / "model")
    make_model(cli_repo / "model", seed=7)
    changed = tree_bytes(cli_repo / "model")
    proc = run_cli("restore", "model:v1", cwd=cli_repo)
    assert proc.returncode == 5
    assert "pass --yes" in proc.stderr
    assert changed == tree_bytes(cli_repo / "model")

    proc = run_cli("restore", "model:v1", "--yes", cwd=cli_repo)
    assert proc.returncode == 0, proc.stderr
    assert "Backed up the current state as model:v2 'auto-backup before restoring model:v1'" in proc.stdout
    assert before == tree_bytes(cli_repo / "model")
    backup = cli_json("show", "model:v2", cwd=cli_repo)
    assert backup["kind"] == "backup"
    assert cli_json("show", "model:latest", cwd=cli_repo)["ref"] == "model:v1"  # backups are never latest

    proc = run_cli("restore", "model:v1", "--yes", cwd=cli_repo)
    assert "The current state equals model:v1; no backup needed" in proc.stdout
    assert len(cli_json("list", cwd=cli_repo)) == 2


def test_restore_refused_while_a_process_holds_a_file(cli_repo: Path) -> None:
    cli_json("snapshot", "model", cwd=cli_repo)
    make_model(cli_repo / "model", seed=3)
    changed = tree_bytes(cli_repo / "model")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys,time; f=open(sys.argv[1],'rb'); print('open', flush=True); time.sleep(60)",
         str(cli_repo / "model" / "weights.npy")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        proc = run_cli("restore", "model:v1", "--yes", cwd=cli_repo)
        assert proc.returncode == 5
        assert f"process {holder.pid}" in proc.stderr
        assert "weights.npy" in proc.stderr and "--force" in proc.stderr
        assert changed == tree_bytes(cli_repo / "model")
        assert len(cli_json("list", cwd=cli_repo)) == 1  # nothing was backed up either
        assert run_cli("restore", "model:v1", "--yes", "--force", cwd=cli_repo).returncode == 0
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def test_restore_refused_right_after_a_write(cli_repo: Path) -> None:
    cli_json("snapshot", "model", cwd=cli_repo)
    make_model(cli_repo / "model", seed=4)
    proc = run_cli("restore", "model:v1", "--yes", cwd=cli_repo, env={"AMBER_QUIET_SECONDS": "30"})
    assert proc.returncode == 5
    assert "written" in proc.stderr and "ago" in proc.stderr


def test_delete_reports_bytes_freed(cli_repo: Path) -> None:
    cli_json("snapshot", "model", cwd=cli_repo)
    make_model(cli_repo / "model", seed=5)
    v2 = cli_json("snapshot", "model", cwd=cli_repo)
    objects = cli_repo / ".amber" / "objects"
    before = sum(p.stat().st_size for p in objects.rglob("*") if p.is_file())
    doc = cli_json("delete", "model:v2", "--yes", cwd=cli_repo)
    after = sum(p.stat().st_size for p in objects.rglob("*") if p.is_file())
    assert doc["freed_bytes"] == before - after
    assert doc["freed_bytes"] > 300_000  # the weights changed, so their chunks were v2's alone
    assert doc["deleted"]["id"] == v2["id"]
    assert [v["ref"] for v in cli_json("list", cwd=cli_repo)] == ["model:v1"]
    v3 = cli_json("snapshot", "model", cwd=cli_repo)
    assert v3["ref"] == "model:v3"  # numbers are never reused
    assert run_cli("verify", "--data", cwd=cli_repo).returncode == 0


def test_export_leaves_the_model_alone(cli_repo: Path) -> None:
    cli_json("snapshot", "model", cwd=cli_repo)
    expected = tree_bytes(cli_repo / "model")
    make_model(cli_repo / "model", seed=9)
    current = tree_bytes(cli_repo / "model")
    doc = cli_json("export", "model:v1", "out", cwd=cli_repo)
    assert doc == {"version": "model:v1", "path": str(cli_repo / "out")}
    assert expected == tree_bytes(cli_repo / "out")
    assert current == tree_bytes(cli_repo / "model")
    proc = run_cli("export", "model:v1", "out", cwd=cli_repo)
    assert proc.returncode == 2 and "already exists" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["snapshot", "missing"], "'missing' does not exist"),
        (["snapshot", "."], "is the repository itself"),
        (["snapshot", ".amber"], "is the repository itself"),
        (["snapshot", "model", "--metric", "loss"], "--metric expects NAME=VALUE"),
        (["snapshot", "model", "--metric", "loss=low"], "--metric loss needs a number"),
        (["snapshot", "model", "--model", "bad name"], "not a valid model name"),
    ],
)
def test_bad_input_is_one_clear_line(cli_repo: Path, args: list[str], message: str) -> None:
    proc = run_cli(*args, cwd=cli_repo)
    assert proc.returncode == 2
    assert message in proc.stderr.splitlines()[0]
    assert "Traceback" not in proc.stderr
    assert run_cli("list", "--json", cwd=cli_repo).stdout.strip() == "[]"


def test_refused_entries(cli_repo: Path) -> None:
    model = cli_repo / "model"
    os.symlink("/etc/passwd", model / "escape")
    proc = run_cli("snapshot", "model", cwd=cli_repo)
    assert proc.returncode == 2
    assert "symlink 'escape' points outside the folder ('/etc/passwd')" in proc.stderr
    (model / "escape").unlink()
    os.symlink("../../x", model / "escape")
    assert run_cli("snapshot", "model", cwd=cli_repo).returncode == 2
    (model / "escape").unlink()
    os.mkfifo(model / "pipe")
    proc = run_cli("snapshot", "model", cwd=cli_repo)
    assert proc.returncode == 2 and "'pipe' is not a regular file" in proc.stderr
    (model / "pipe").unlink()
    (model / "nested" / ".amber").mkdir(parents=True)
    proc = run_cli("snapshot", "model", cwd=cli_repo)
    assert proc.returncode == 2 and "repository inside the model folder" in proc.stderr
    assert cli_json("list", cwd=cli_repo) == []


def test_json_errors_go_to_stderr(cli_repo: Path) -> None:
    proc = run_cli("show", "model:v9", "--json", cwd=cli_repo)
    assert proc.returncode == 4
    assert proc.stdout == ""
    err = json.loads(proc.stderr)["error"]
    assert err["type"] == "VersionNotFound"
    assert err["exit_code"] == 4
    assert err["message"] == "no version matches 'model:v9'"


def test_help_and_version(work: Path) -> None:
    proc = run_cli("--version", cwd=work)
    assert proc.returncode == 0 and proc.stdout.startswith("amber ")
    for command in ("init", "snapshot", "list", "show", "restore", "delete", "export", "verify", "du"):
        proc = run_cli(command, "--help", cwd=work)
        assert proc.returncode == 0
        assert "Example" in proc.stdout, command


def test_piped_output_has_no_progress_noise(cli_repo: Path) -> None:
    proc = run_cli("snapshot", "model", cwd=cli_repo)
    assert proc.stderr == ""
    assert proc.stdout.startswith("Snapshot model:v1")
    started = time.time()
    assert run_cli("list", cwd=cli_repo).returncode == 0
    assert time.time() - started < 30


def test_du_unique_bytes_is_what_delete_frees(cli_repo: Path) -> None:
    cli_json("snapshot", "model", cwd=cli_repo)
    make_model(cli_repo / "model", seed=11)
    cli_json("snapshot", "model", cwd=cli_repo)
    (cli_repo / "model" / "notes.txt").write_text("only the notes changed\n")
    cli_json("snapshot", "model", cwd=cli_repo)
    du = cli_json("du", cwd=cli_repo)
    by_ref = {v["ref"]: v for v in du["versions"]}
    assert list(by_ref) == ["model:v3", "model:v2", "model:v1"]
    objects = cli_repo / ".amber" / "objects"
    on_disk = sum(p.stat().st_size for p in objects.rglob("*") if p.is_file())
    assert du["total"]["stored_bytes"] == on_disk
    assert du["total"]["logical_bytes"] == sum(v["size_bytes"] for v in du["versions"])
    assert du["models"] == [{**du["total"], "model": "model"}]
    for ref in ("model:v2", "model:v1"):
        expected = cli_json("du", cwd=cli_repo)["versions"]
        unique = next(v["unique_bytes"] for v in expected if v["ref"] == ref)
        freed = cli_json("delete", ref, "--yes", cwd=cli_repo)["freed_bytes"]
        assert freed == unique
    assert cli_json("du", cwd=cli_repo)["total"]["stored_bytes"] == sum(
        p.stat().st_size for p in objects.rglob("*") if p.is_file()
    )
