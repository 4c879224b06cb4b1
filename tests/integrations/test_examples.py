"""Each example under examples/integrations runs standalone in a fresh folder and says it worked."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.integrations.conftest import EXAMPLES, run

pytestmark = pytest.mark.slow


def test_hf_lora_sft(tmp_path: Path) -> None:
    import trl  # noqa: F401
    proc = run([sys.executable, str(EXAMPLES / "hf_lora_sft.py"), str(tmp_path / "w")], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^gpt2-lora:v1  step 2  loss \d\.\d{4}  r=4  \[callback\]$", proc.stdout, re.M)
    assert re.search(r"^gpt2-lora:v2  step 4  loss \d\.\d{4}  r=4  \[callback\]$", proc.stdout, re.M)
    assert "gpt2-lora:latest loaded with from_pretrained gives the trained model's logits: True" in proc.stdout


def test_lightning_tiny(tmp_path: Path) -> None:
    import lightning  # noqa: F401
    proc = run(
        [sys.executable, str(EXAMPLES / "lightning_tiny.py"), str(tmp_path / "w"), "--epochs", "2"], cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^tiny:v1  step 3  val_loss \d\.\d{4}  epoch=0-step=3\.ckpt", proc.stdout, re.M)
    assert re.search(r"^tiny:v2  step 6  val_loss \d\.\d{4}  epoch=1-step=6\.ckpt  latest", proc.stdout, re.M)
    assert re.search(r"^tiny:best is tiny:v\d \(step \d\); loaded hidden=16$", proc.stdout, re.M)


def test_watch_dfl(tmp_path: Path) -> None:
    proc = run([sys.executable, str(EXAMPLES / "watch_dfl.py"), str(tmp_path / "w"), "--saves", "2"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    kept = re.findall(
        r"^face:v\d+  iteration (\d+)  .* \[auto\] -> the writer's state at iteration (\d+)$", proc.stdout, re.M
    )
    assert kept and all(a == b for a, b in kept)
    assert kept[-1][0] == "2000"
    assert "NOT a state" not in proc.stdout
