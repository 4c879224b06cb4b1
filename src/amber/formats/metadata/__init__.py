"""What a model folder says about itself: one detector per kind of folder.

Detectors are tried in order; the first that recognises the folder answers.
Each reads headers and small metadata files only, and no pickle ever runs:

* DeepFaceLab's ``_data.dat`` only ever holds plain data, so it is read
  strictly: anything else in it raises :class:`~amber.errors.UnsafePickle`
  naming the file.
* PyTorch checkpoints legitimately pickle classes of their own, so their
  ``data.pkl`` is read leniently: such globals become inert stand-ins and are
  reported in ``metadata['unsafe_pickles']`` (file name → globals).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from amber.formats import Detected
from amber.formats.metadata import dfl, hf, lightning, loose, peft

# Order matters: DeepFaceLab first (its weights are .npy files a loose-weights
# look would misread), an adapter folder may also hold a config.json, and a
# Trainer checkpoint holds .pt files that would look like loose weights.
DETECTORS: tuple[Callable[[str], Detected | None], ...] = (peft.detect, hf.detect, lightning.detect, loose.detect)


def detect_any(path: str, *, select: str | None = None) -> Detected:
    """Detected for a model folder or a single model file; empty if unknown."""
    if os.path.isfile(path):
        return _detect_file(path, select)
    found = dfl.detect(path, select)
    if found is not None:
        return found
    for detector in DETECTORS:
        found = detector(path)
        if found is not None:
            return found
    return Detected()


def _detect_file(path: str, select: str | None) -> Detected:
    folder, name = os.path.split(path)
    prefix = dfl.owner_prefix(name)
    if prefix is not None:
        return dfl.detect(folder or ".", select or prefix) or Detected()
    return loose.detect_file(path) or Detected()
