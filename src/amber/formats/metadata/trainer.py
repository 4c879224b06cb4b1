"""Hugging Face ``trainer_state.json``: the step, the logged losses and evals.

``global_step`` is the iteration. From ``log_history`` (oldest first) each of
``loss``, ``learning_rate`` and every numeric ``eval_*`` takes its latest
value. ``epoch``, ``best_metric`` and ``best_model_checkpoint`` go to metadata.
"""

from __future__ import annotations

import os

from amber.formats import Detected
from amber.formats.metadata.jsonfile import integer, number, read_object

FILENAME = "trainer_state.json"
_METRICS = ("loss", "learning_rate")


def apply(folder: str, found: Detected) -> bool:
    """Fill ``found`` from ``folder``'s trainer_state.json; False if there is none."""
    state = read_object(os.path.join(folder, FILENAME))
    if state is None:
        return False
    step = integer(state.get("global_step"))
    if step is not None:
        found.iteration = step
    history = state.get("log_history")
    for entry in history if isinstance(history, list) else []:
        if not isinstance(entry, dict):
            continue
        for key, value in entry.items():
            if isinstance(key, str) and (key in _METRICS or key.startswith("eval_")):
                as_number = number(value)
                if as_number is not None:
                    found.metrics[key] = as_number
    epoch = number(state.get("epoch"))
    if epoch is not None:
        found.metadata["epoch"] = epoch
    best = number(state.get("best_metric"))
    if best is not None:
        found.metadata["best_metric"] = best
    if isinstance(state.get("best_model_checkpoint"), str):
        found.metadata["best_model_checkpoint"] = state["best_model_checkpoint"]
    return True
