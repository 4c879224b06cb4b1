"""Hugging Face ``Trainer`` (and TRL ``SFTTrainer``): every checkpoint save becomes a version.

```python
from amber.integrations.transformers import AmberCallback
trainer = SFTTrainer(..., callbacks=[AmberCallback(model="gpt2-lora")])
```

``on_save`` runs after the Trainer has written ``checkpoint-<step>/`` completely
(weights, optimizer, ``trainer_state.json``) and rotated old ones, so the folder
the callback snapshots is whole. Each version is one committed transaction: a
crash or Ctrl-C later in training leaves it intact. Only the main process
(``state.is_world_process_zero``) snapshots.

With ``background=True`` the snapshot runs on a worker thread while training
goes on. The Trainer only changes checkpoint folders when it saves (it writes a
new one, then rotates old ones out), so the callback waits for the running
snapshot at the end of any step or epoch that will save, and at the end of
training. A folder the Trainer deletes at the very end (``save_total_limit``
with ``load_best_model_at_end``) may still be lost; the error is logged.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from amber.integrations.recorder import Recorded, Recorder, RepoSpec, log, numbers, plain

ARGS_KEPT = (
    "learning_rate",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "num_train_epochs",
    "max_steps",
    "seed",
)
LORA_KEPT = ("r", "lora_alpha", "lora_dropout")


class AmberCallback(Recorded, TrainerCallback):
    """Snapshot each checkpoint the Trainer saves as a version of ``model`` (kind ``callback``).

    ``every_save``: snapshot every save (else only saves ``on_epoch`` asked for).
    ``on_epoch``: also save (and so snapshot) at the end of every epoch.
    ``name_template``: the version's label, formatted with ``step`` and ``epoch``.
    ``retention``: a policy such as ``"keep-last=5,keep-best=2"`` applied after each snapshot.
    ``background``: snapshot on a worker thread while training goes on (see the module doc).
    ``pauses`` holds the seconds each save's snapshot kept training waiting; ``versions`` the versions.
    """

    def __init__(
        self,
        model: str,
        *,
        repo: RepoSpec = None,
        every_save: bool = True,
        on_epoch: bool = False,
        tags: Sequence[str] = (),
        retention: str | None = None,
        name_template: str = "step {step}",
        background: bool = False,
    ) -> None:
        self.recorder = Recorder(model, repo=repo, tags=tags, retention=retention, background=background)
        self.every_save = every_save
        self.on_epoch = on_epoch
        self.name_template = name_template
        self._epoch_save = False

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        metric = args.metric_for_best_model
        if metric:
            name = metric if metric.startswith("eval_") else f"eval_{metric}"
            greater = args.greater_is_better
            if greater is None:
                greater = not name.endswith("loss")
            self.recorder.follow(name, "max" if greater else "min")

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if control.should_save:
            self.recorder.wait()  # the Trainer is about to write and rotate checkpoint folders

    def on_epoch_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.on_epoch:
            control.should_save = True
            self._epoch_save = True
        if control.should_save:
            self.recorder.wait()

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self.recorder.wait()  # with save_strategy "best" the save is decided after evaluating

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.recorder.close()

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        wanted, self._epoch_save = self.every_save or self._epoch_save, False
        if not wanted or not state.is_world_process_zero or not args.output_dir:
            return
        folder = checkpoint_folder(args.output_dir, state.global_step)
        if folder is None:
            log.warning("amber: no checkpoint-%d folder under '%s'; nothing snapshotted", state.global_step,
                        args.output_dir)  # fmt: skip
            return
        metadata = {**args_metadata(args), **lora_metadata(kwargs.get("model"))}
        if state.epoch is not None:
            metadata["epoch"] = float(state.epoch)
        epoch = state.epoch if state.epoch is not None else 0.0
        self.recorder.snapshot(
            folder,
            name=self.name_template.format(step=state.global_step, epoch=epoch),
            iteration=state.global_step,
            metrics=latest_metrics(state.log_history),
            metadata=metadata,
        )


def checkpoint_folder(output_dir: str, step: int) -> str | None:
    """``output_dir/checkpoint-<step>``, or the newest such folder one run level below (hyperparameter search)."""
    name = f"checkpoint-{step}"
    direct = os.path.join(output_dir, name)
    if os.path.isdir(direct):
        return direct
    nested = [p for p in glob.glob(os.path.join(glob.escape(output_dir), "*", name)) if os.path.isdir(p)]
    return max(nested, key=os.path.getmtime) if nested else None


def latest_metrics(history: Sequence[dict[str, Any]]) -> dict[str, float]:
    """The latest logged ``loss``, ``learning_rate`` and ``eval_*`` values (the log is oldest first)."""
    out: dict[str, float] = {}
    for entry in history:
        wanted = {k: v for k, v in entry.items() if k in ("loss", "learning_rate") or k.startswith("eval_")}
        out.update(numbers(wanted))
    return out


def args_metadata(args: TrainingArguments) -> dict[str, Any]:
    """The training arguments that decide what a checkpoint is."""
    return plain({key: getattr(args, key, None) for key in ARGS_KEPT})


def lora_metadata(model: Any) -> dict[str, Any]:
    """r, lora_alpha, lora_dropout and target_modules (sorted) of a PEFT model's active adapter."""
    configs = getattr(model, "peft_config", None)
    if not isinstance(configs, dict) or not configs:
        return {}
    active = getattr(model, "active_adapter", None)
    config = configs.get(active) if isinstance(active, str) else None
    config = config or next(iter(configs.values()))
    out = plain({key: getattr(config, key, None) for key in LORA_KEPT})
    out = {k: v for k, v in out.items() if v is not None}
    peft_type = getattr(config, "peft_type", None)
    if peft_type is not None:
        out["peft_type"] = str(getattr(peft_type, "value", peft_type))
    targets = getattr(config, "target_modules", None)
    if isinstance(targets, str):
        out["target_modules"] = [targets]
    elif targets:
        out["target_modules"] = sorted(str(t) for t in targets)
    return out
