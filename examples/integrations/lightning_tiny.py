"""Train a tiny Lightning model for a few epochs; every checkpoint file becomes a version.

    python examples/integrations/lightning_tiny.py [WORKDIR] [--epochs 4]

A two-layer regression model on 64 random samples, validated every epoch.
``ModelCheckpoint`` keeps the 2 best files by ``val_loss`` (and ``last.ckpt``);
``AmberCallback(monitor="val_loss")`` makes every file written a version of
``tiny``, so ``tiny:best`` follows ``val_loss`` even for files ModelCheckpoint
has since deleted. Then ``tiny:best`` is loaded back with
``load_from_checkpoint(amber.path(...))``. WORKDIR (default: a new temporary
folder) gets an Amber repository and the checkpoints.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

import amber
from amber.integrations.lightning import AmberCallback

MODEL = "tiny"


class Tiny(pl.LightningModule):
    def __init__(self, hidden: int = 16, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: list[torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: list[torch.Tensor], _: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loaders() -> tuple[torch.utils.data.DataLoader[tuple[torch.Tensor, ...]], ...]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 8, generator=g)
    y = x[:, :2].sum(dim=1, keepdim=True) + 0.1 * torch.randn(64, 1, generator=g)
    train = torch.utils.data.TensorDataset(x[:48], y[:48])
    val = torch.utils.data.TensorDataset(x[48:], y[48:])
    return torch.utils.data.DataLoader(train, batch_size=16), torch.utils.data.DataLoader(val, batch_size=16)


def train(workdir: str, *, epochs: int = 4, **callback: object) -> tuple[pl.Trainer, Tiny, AmberCallback]:
    """Train in ``workdir`` (which must hold an Amber repository)."""
    pl.seed_everything(0, verbose=False)
    amber_callback = AmberCallback(model=MODEL, monitor="val_loss", mode="min", repo=workdir, **callback)  # type: ignore[arg-type]
    checkpoints = ModelCheckpoint(
        dirpath=os.path.join(workdir, "checkpoints"), monitor="val_loss", mode="min", save_top_k=2, save_last=True
    )
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        callbacks=[checkpoints, amber_callback],
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=workdir,
    )
    module = Tiny()
    train_data, val_data = loaders()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")  # two tiny loaders need none
        trainer.fit(module, train_data, val_data)
    return trainer, module, amber_callback


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", nargs="?", default=None)
    parser.add_argument("--epochs", type=int, default=4)
    opts = parser.parse_args(argv)
    workdir = os.path.abspath(opts.workdir or tempfile.mkdtemp(prefix="amber-lightning-"))
    if not os.path.isdir(os.path.join(workdir, ".amber")):
        amber.Repo.init(workdir)
    _, _, callback = train(workdir, epochs=opts.epochs)
    with amber.Repo(workdir) as repo:
        for v in reversed(repo.versions(MODEL)):
            loss, aliases = v.metrics["val_loss"], ",".join(v.aliases)
            print(f"{v.ref}  step {v.iteration}  val_loss {loss:.4f}  {v.metadata['checkpoint']}  {aliases}")
        best = repo.get(f"{MODEL}:best")
    print("pause per save (s):", ", ".join(f"{p:.3f}" for p in callback.pauses))
    loaded = Tiny.load_from_checkpoint(amber.path(f"{MODEL}:best", repo=workdir))
    print(f"{MODEL}:best is {best.ref} (step {best.iteration}); loaded hidden={loaded.hparams.hidden}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
