"""Lightning: every checkpoint file Lightning writes becomes a version.

```python
from amber.integrations.lightning import AmberCallback
trainer = L.Trainer(callbacks=[ModelCheckpoint(monitor="val_loss"), AmberCallback(model="tiny", monitor="val_loss")])
```

Lightning calls ``Callback.on_save_checkpoint`` *before* the file is written, and
sorts ``ModelCheckpoint`` after every other callback, so no callback hook sees a
finished file at the moment it appears. Instead, at ``setup`` this callback wraps
the strategy's ``CheckpointIO``: the wrapper lets the real one write the file,
then snapshots that file. Every save goes through it — ``ModelCheckpoint``
(top-k, every-n-steps, on exception) and ``trainer.save_checkpoint`` alike — on
global rank zero only, since the strategy writes only there. ``last.ckpt``
written at a step already snapshotted is not snapshotted again.

A version is the one ``.ckpt`` file: ``Module.load_from_checkpoint(amber.path("tiny:best"))``.

With ``background=True`` the snapshot runs on a worker thread while training
goes on; since every write and removal of a checkpoint passes through the same
wrapper, it first waits for the running snapshot, so no file changes under it.
With ``AsyncCheckpointIO`` the file may not exist yet when the save returns; such
saves are skipped with a warning.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.plugins.io import CheckpointIO

from amber.integrations.recorder import Recorded, Recorder, RepoSpec, log, numbers, plain


class AmberCallback(Recorded, pl.Callback):
    """Snapshot each checkpoint Lightning writes as a version of ``model`` (kind ``callback``).

    ``monitor``/``mode`` make the model's ``best`` alias follow that logged metric.
    ``retention``: a policy such as ``"keep-last=5,keep-best=2"`` applied after each snapshot.
    ``background``: snapshot on a worker thread while training goes on (see the module doc).
    ``pauses`` holds the seconds each snapshot kept training waiting; ``versions`` the versions.
    """

    def __init__(
        self,
        model: str,
        *,
        monitor: str | None = None,
        mode: str = "min",
        repo: RepoSpec = None,
        tags: Sequence[str] = (),
        retention: str | None = None,
        name_template: str = "step {step}",
        background: bool = False,
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', not '{mode}'")
        self.recorder = Recorder(model, repo=repo, tags=tags, retention=retention, background=background)
        if monitor:
            self.recorder.follow(monitor, mode)
        self.monitor = monitor
        self.name_template = name_template
        self._trainer: Any = None
        self._module: Any = None
        self._last_step: int | None = None

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._trainer, self._module = trainer, pl_module
        strategy = trainer.strategy
        current = strategy.checkpoint_io
        if not (isinstance(current, SnapshotIO) and current.callback is self):
            strategy.checkpoint_io = SnapshotIO(current, self)

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self.recorder.close()

    def saved(self, path: str) -> None:
        """Called by :class:`SnapshotIO` once the file at ``path`` is written."""
        trainer = self._trainer
        step = int(trainer.global_step)
        if step == self._last_step:
            return
        if not os.path.isfile(path):
            log.warning("amber: '%s' does not exist after the save returned (async checkpointing?); skipped", path)
            return
        self._last_step = step
        metadata: dict[str, Any] = {"epoch": int(trainer.current_epoch), "checkpoint": os.path.basename(path)}
        if self.monitor:
            metadata["monitor"] = self.monitor
        hparams = getattr(self._module, "hparams", None)
        if hparams:
            metadata.update(plain({k: v for k, v in dict(hparams).items() if k not in metadata}))
        self.recorder.snapshot(
            path,
            name=self.name_template.format(step=step, epoch=trainer.current_epoch),
            iteration=step,
            metrics=numbers(trainer.callback_metrics),
            metadata=metadata,
        )


class SnapshotIO(CheckpointIO):
    """A CheckpointIO that lets ``inner`` write, then tells ``callback`` the file is there."""

    def __init__(self, inner: Any, callback: AmberCallback) -> None:
        super().__init__()
        self.inner = inner
        self.callback = callback

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        self.callback.recorder.wait()  # a background snapshot may be reading the file about to be replaced
        self.inner.save_checkpoint(checkpoint, path, storage_options=storage_options)
        self.callback.saved(os.fspath(path))

    def load_checkpoint(self, path: Any, *args: Any, **kwargs: Any) -> Any:
        return self.inner.load_checkpoint(path, *args, **kwargs)

    def remove_checkpoint(self, path: Any) -> None:
        self.callback.recorder.wait()
        self.inner.remove_checkpoint(path)  # the version stays: that is the point

    def teardown(self) -> None:
        self.inner.teardown()
