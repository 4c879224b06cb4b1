"""Training integrations: snapshots taken for you, from inside training or from outside it.

* :mod:`amber.integrations.transformers` — ``AmberCallback`` for the Hugging Face
  ``Trainer`` (and TRL's ``SFTTrainer``): every checkpoint save becomes a version.
* :mod:`amber.integrations.lightning` — ``AmberCallback`` for Lightning: every
  checkpoint file Lightning writes becomes a version.
* :mod:`amber.integrations.watch` — ``Watcher``: polls a folder that a trainer we
  cannot hook writes to (DeepFaceLab) and snapshots it once it has settled.

This package imports no framework: each submodule imports its own framework when
it is imported itself, so ``import amber`` stays free of torch and transformers.
"""

from __future__ import annotations

__all__: list[str] = []
