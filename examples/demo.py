"""Train a tiny model, snapshot it as it trains, restore an earlier version, list them all.

Run from the project folder: ``python examples/demo.py`` (``scripts/demo`` installs first).
Everything happens in ./demo-workspace, which holds an embedded Amber repository.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

import amber

WORK = Path("demo-workspace")


def save(model: torch.nn.Module, opt: torch.optim.Optimizer, step: int, loss: float, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    torch.save({"optimizer": opt.state_dict(), "step": step}, folder / "optimizer.pt")
    (folder / "config.json").write_text(json.dumps({"layers": [32, 64, 1], "step": step, "loss": loss}))


def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    repo = amber.Repo.init(WORK)
    folder = WORK / "model"
    torch.manual_seed(0)
    x = torch.randn(512, 32)
    y = (x[:, :4].sum(dim=1, keepdim=True) > 0).float()
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    step = 0
    for _round in range(3):
        for _ in range(50):
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
            loss.backward()
            opt.step()
            step += 1
        save(model, opt, step, loss.item(), folder)
        v = repo.snapshot(
            folder, model="tiny-mlp", name=f"after {step} steps", iteration=step,
            metrics={"loss": round(loss.item(), 4)}, tags=["demo"], metadata={"lr": 1e-2},
        )  # fmt: skip
        print(f"snapshot {v.ref}: step {step}, loss {loss.item():.4f}, {v.size_bytes} bytes ({v.stored_bytes} stored)")

    first = repo.versions("tiny-mlp")[-1]
    expected = (folder / "model.safetensors").read_bytes()
    result = repo.restore(first.ref, force=True)
    restored = load_file(str(folder / "model.safetensors"))
    print(f"restored {first.ref}; the folder's weights now have {sum(t.numel() for t in restored.values())} values")
    kept = result.backup or result.equal_to
    print(f"the state before the restore is safe as {kept.ref if kept else '?'}; restoring it again")
    repo.restore(kept.ref if kept else "tiny-mlp:latest", force=True)
    assert (folder / "model.safetensors").read_bytes() == expected, "restore was not bit-exact"
    repo.close()
    print()
    subprocess.run([sys.executable, "-m", "amber", "--repo", str(WORK), "list"], check=True)


if __name__ == "__main__":
    main()
