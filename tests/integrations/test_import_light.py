"""``import amber`` (and the watcher, and the CLI) never import a training framework."""

from __future__ import annotations

import subprocess
import sys

FRAMEWORKS = ("torch", "transformers", "peft", "trl", "lightning", "pytorch_lightning")


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_amber_loads_neither_torch_nor_transformers() -> None:
    proc = _python("import amber, sys; assert 'torch' not in sys.modules and 'transformers' not in sys.modules")
    assert (proc.returncode, proc.stderr) == (0, "")


def test_the_watcher_and_the_cli_load_no_framework_either() -> None:
    code = (
        "import sys, amber, amber.integrations, amber.integrations.watch, amber.cli.app, amber.cli.watch_cmd\n"
        f"print(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules))"
    )
    proc = _python(code)
    assert (proc.returncode, proc.stdout) == (0, "[]\n"), proc.stderr
