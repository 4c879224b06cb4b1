"""The ``amber`` command starts light: what each short command imports, checked in sys.modules.

Every run is a fresh interpreter going through the console script's entry point
(``amber.cli.app:run``) with stdout and stderr on pipes, as a script meets it.
No timings are asserted (the machine is shared); the modules are what make the
time, and they are checked at exit.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

import amber
from amber.cli import output

# Never needed to list, show or re-snapshot an unchanged folder of safetensors.
HEAVY = ("numpy", "zstandard", "torch", "safetensors", "transformers", "lightning")
PICKLE_MACHINERY = ("amber.formats.safe_pickle", "amber.formats.pickled", "amber.formats.torch_zip")
RICH = ("rich", "rich.console", "rich.table", "rich.progress")

_RUNNER = """
import json, sys
out, args = sys.argv[1], sys.argv[2:]
sys.argv = ["amber", *args]
from amber.cli.app import run
try:
    run()
    code = 0
except SystemExit as exc:
    code = exc.code
sys.stdout.flush()
with open(out, "w") as fh:
    json.dump({"code": code, "modules": sorted(sys.modules)}, fh)
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "AMBER_REPO")}
    return {**env, "COLUMNS": "200"}


def _amber(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``amber ARGS`` in a fresh interpreter; return the process and the modules loaded at exit."""
    report = tmp_path / "modules.json"
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(report), *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(report.read_text())
    assert doc["code"] == 0, proc.stderr
    return proc, set(doc["modules"])


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if n in modules)


def _write_safetensors(path: Path, tensors: dict[str, tuple[int, int]]) -> None:
    """A float32 safetensors file written by hand: name -> (rows, cols), bytes patterned."""
    header: dict[str, object] = {}
    blobs, offset = [], 0
    for name, (rows, cols) in tensors.items():
        blob = bytes((i * 7 + len(name)) % 251 for i in range(rows * cols * 4))
        header[name] = {"dtype": "F32", "shape": [rows, cols], "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    head = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(head)) + head + b"".join(blobs))


@pytest.fixture
def snapshotted(tmp_path: Path) -> Path:
    """A repository holding version m:v1 of a Hugging Face-like folder, its files' stats cached."""
    root = tmp_path / "repo"
    amber.Repo.init(root).close()
    model = root / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "tiny", "architectures": ["TinyModel"]}))
    _write_safetensors(model / "model.safetensors", {"embed": (64, 32), "head": (32, 64)})
    (model / "notes.txt").write_text("a small model\n")
    past = time.time() - 3600  # older than the racy window: the next snapshot trusts the stat cache
    for f in model.iterdir():
        os.utime(f, (past, past))
    with amber.Repo(root) as repo:
        v = repo.snapshot(model, model="m")
    assert v.ref == "m:v1" and v.model_type == "hf-transformers"
    return root


def test_importing_the_cli_loads_no_heavy_module(tmp_path: Path) -> None:
    code = "import json, sys, amber.cli.app; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    modules = set(json.loads(proc.stdout))
    assert _loaded(modules, HEAVY + RICH + PICKLE_MACHINERY) == []
    # the formats parsers, and the operations no short command needs, load on use only
    lazy = ("amber.formats.registry", "amber.ops.diff", "amber.ops.restore", "amber.ops.snapshot", "pyfastcdc")
    assert _loaded(modules, lazy) == []


def test_list_json_loads_neither_numpy_nor_rich(snapshotted: Path, tmp_path: Path) -> None:
    proc, modules = _amber(tmp_path, "--repo", str(snapshotted), "list", "--json")
    assert [v["ref"] for v in json.loads(proc.stdout)] == ["m:v1"]
    assert _loaded(modules, HEAVY + RICH + PICKLE_MACHINERY) == []
    assert _loaded(modules, ("amber.formats.registry", "amber.ops.restore", "amber.ops.diff")) == []


def test_list_as_a_table_loads_rich_but_nothing_heavy(snapshotted: Path, tmp_path: Path) -> None:
    proc, modules = _amber(tmp_path, "--repo", str(snapshotted), "list")
    assert proc.stdout.split()[:8] == ["ref", "label", "iteration", "metrics", "created", "size", "stored", "aliases"]
    assert "m:v1" in proc.stdout
    assert _loaded(modules, HEAVY + PICKLE_MACHINERY) == []


def test_show_to_a_pipe_is_plain_text_without_rich(snapshotted: Path, tmp_path: Path) -> None:
    proc, modules = _amber(tmp_path, "--repo", str(snapshotted), "show", "m:v1")
    lines = proc.stdout.splitlines()
    assert "     version  m:v1  (" in lines[0]
    assert "       files" in lines
    assert any(line.endswith("  model.safetensors") for line in lines)
    assert "[bold]" not in proc.stdout and "\x1b[" not in proc.stdout
    assert _loaded(modules, (*HEAVY[2:], "numpy", *RICH, *PICKLE_MACHINERY)) == []  # zstandard: manifests


@pytest.mark.parametrize("as_json", [False, True])
def test_unchanged_snapshot_loads_no_codec_no_pickle_machinery_no_rich(
    snapshotted: Path, tmp_path: Path, as_json: bool
) -> None:
    args = ["--repo", str(snapshotted), "snapshot", str(snapshotted / "model"), "--model", "m"]
    proc, modules = _amber(tmp_path, *args, *(["--json"] if as_json else []))
    if as_json:
        doc = json.loads(proc.stdout)
        assert (doc["ref"], doc["model_type"], doc["metadata"]["parameters"]) == ("m:v2", "hf-transformers", 4096)
    else:
        assert proc.stdout.startswith("Snapshot m:v2 'v2': 3 files")
    assert _loaded(modules, HEAVY + RICH + PICKLE_MACHINERY) == []
    assert "amber.formats.safetensors" in modules  # metadata detection read the header, and only that parser
    with amber.Repo(snapshotted) as repo:
        assert repo.get("m:v2").manifest == repo.get("m:v1").manifest


def test_user_text_in_plain_output_is_never_read_as_markup(snapshotted: Path, tmp_path: Path) -> None:
    args = ["--repo", str(snapshotted), "snapshot", str(snapshotted / "model"), "--model", "m"]
    proc, _ = _amber(tmp_path, *args, "--name", "[wip] run [/x] :smile:")
    assert proc.stdout.startswith("Snapshot m:v2 '[wip] run [/x] :smile:': ")
    proc, modules = _amber(tmp_path, "--repo", str(snapshotted), "show", "m:v2")
    assert "       label  [wip] run [/x] :smile:" in proc.stdout.splitlines()
    assert _loaded(modules, RICH) == []


def test_plain_renders_markup_as_rich_does_without_a_terminal() -> None:
    from rich.text import Text

    cases = ["[bold]key[/bold]  value", "[red]Error:[/red] x", "\\[bold] x", "a\\\\[b]c[/b]", "[1, 2] ['a']", "no tag"]
    texts = ["[wip] a", "a [/b] c", "back\\slash [x]\\", "\\[bold] x", "a\\", "[@click]z", ":smile:"]
    for text in texts:  # user text goes into markup escaped, and comes out as it was
        cases.append(f"[dim]hint: {output.escape(text)}[/dim]")
        assert output.plain(cases[-1]) == f"hint: {text}"
    for markup in cases:
        assert output.plain(markup) == Text.from_markup(markup, emoji=False).plain
