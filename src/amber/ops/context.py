"""What every operation needs: the store, the catalog, the repository's folders."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from amber.catalog.db import Catalog
from amber.progress import NullProgress, Progress
from amber.store.objects import ObjectStore


@dataclass
class Context:
    root: str  # the folder holding .amber/
    amber: str  # the .amber folder
    store: ObjectStore
    catalog: Catalog
    workers: int = field(default_factory=lambda: max(1, min(8, os.cpu_count() or 1)))
    progress: Progress = field(default_factory=NullProgress)

    def sub(self, *parts: str) -> str:
        return os.path.join(self.amber, *parts)
