"""How long operations report progress without knowing how it is shown."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, description: str, total: int) -> None:
        """A new phase begins; ``total`` is in bytes (0 when unknown)."""

    def advance(self, amount: int) -> None:
        """``amount`` more bytes are done. May be called from worker threads."""

    def finish(self) -> None:
        """The current phase is over."""


class NullProgress:
    """Reports nothing: the default for library calls and piped output."""

    def start(self, description: str, total: int) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass

    def finish(self) -> None:
        pass
