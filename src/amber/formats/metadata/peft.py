"""PEFT adapters: ``adapter_config.json`` beside ``adapter_model.safetensors``.

Model type ``peft-<peft_type>`` (``peft-lora``); metadata keeps the adapter's
rank, alpha, dropout, target modules (sorted) and base model; parameters are
the adapter weights'. A Trainer checkpoint of an adapter also has its
``trainer_state.json`` read.
"""

from __future__ import annotations

import os
from typing import Any

from amber.formats import Detected
from amber.formats.metadata import trainer
from amber.formats.metadata.jsonfile import read_object
from amber.formats.metadata.weights import summarize

CONFIG = "adapter_config.json"
WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
_KEPT = ("r", "lora_alpha", "lora_dropout", "base_model_name_or_path", "task_type", "bias", "peft_version")


def detect(folder: str) -> Detected | None:
    config = read_object(os.path.join(folder, CONFIG))
    if config is None:
        return None
    peft_type = config.get("peft_type")
    kind = peft_type.lower() if isinstance(peft_type, str) else "adapter"
    found = Detected(model_type=f"peft-{kind}")
    found.metadata.update(_from_config(config))
    trainer.apply(folder, found)
    weights = [os.path.join(folder, n) for n in WEIGHTS if os.path.isfile(os.path.join(folder, n))]
    summarize(weights[:1]).into(found.metadata)
    return found


def _from_config(config: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(config.get("peft_type"), str):
        out["peft_type"] = config["peft_type"]
    for key in _KEPT:
        value = config.get(key)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            out[key] = value
    targets = config.get("target_modules")
    if isinstance(targets, list):
        out["target_modules"] = sorted(str(t) for t in targets)
    elif isinstance(targets, str):
        out["target_modules"] = [targets]
    return out
