"""Every error Amber raises on purpose.

Each carries a message a user can act on and, where there is one, a hint naming
the next thing to try. The CLI maps these types to exit codes in one table
(``amber.cli.exit_codes``).

    AmberError
    ├── RepoNotFound(FileNotFoundError)       no .amber/ here or above
    ├── RepoExists(FileExistsError)           amber init where one already is
    ├── NotFound(LookupError)
    │   ├── ModelNotFound
    │   ├── VersionNotFound                    unknown reference, with close matches
    │   └── ObjectMissing                      a chunk or manifest the catalog names is gone
    ├── AmbiguousRef(LookupError)              a reference that names several versions
    ├── InvalidInput(ValueError)               bad path, bad option value, hostile manifest
    │   └── UnsafePickle                       a pickle asks for a global we do not allow
    ├── Refused                                needs --yes / --force, or the folder is in use
    │   ├── FolderInUse
    │   └── ConfirmationRequired
    ├── Conflict                               another process holds the lock
    ├── FileKeptChanging                       training kept writing during a snapshot
    ├── Corruption                             a hash check failed, or the catalog is damaged
    └── StorageError(OSError)                  the disk said no (ENOSPC, EIO, ...)
"""

from __future__ import annotations

from collections.abc import Sequence


class AmberError(Exception):
    """Base of every error Amber raises on purpose."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class RepoNotFound(AmberError, FileNotFoundError):
    def __init__(self, start: str) -> None:
        super().__init__(
            f"no Amber repository in '{start}' or any folder above it",
            hint="run 'amber init' in your project folder to create one",
        )


class RepoExists(AmberError, FileExistsError):
    def __init__(self, path: str) -> None:
        super().__init__(f"'{path}' already holds an Amber repository")


class NotFound(AmberError, LookupError):
    pass


class ModelNotFound(NotFound):
    def __init__(self, name: str, known: Sequence[str]) -> None:
        listing = ", ".join(known) if known else "none yet"
        super().__init__(
            f"no model named '{name}' (models: {listing})",
            hint="'amber list' shows every model and version",
        )
        self.name = name


class VersionNotFound(NotFound):
    def __init__(self, ref: str, close: Sequence[str] = ()) -> None:
        message = f"no version matches '{ref}'"
        if close:
            message += f"; did you mean {', '.join(close)}?"
        super().__init__(message, hint="'amber list' shows every version")
        self.ref = ref
        self.close = list(close)


class ObjectMissing(NotFound):
    def __init__(self, object_id: str) -> None:
        super().__init__(
            f"object {object_id[:16]} is missing from the store",
            hint="run 'amber verify --data' to see which versions it breaks",
        )
        self.object_id = object_id


class AmbiguousRef(AmberError, LookupError):
    def __init__(self, ref: str, candidates: Sequence[str]) -> None:
        super().__init__(
            f"'{ref}' matches {len(candidates)} versions: {', '.join(candidates)}",
            hint="type more of the id, or use MODEL:vN",
        )
        self.ref = ref
        self.candidates = list(candidates)


class InvalidInput(AmberError, ValueError):
    pass


class UnsafePickle(InvalidInput):
    def __init__(self, path: str, what: str) -> None:
        super().__init__(
            f"'{path}' is a pickle that asks for {what}, which Amber never loads",
            hint="the file may be malicious; Amber only reads arrays and plain containers from pickles",
        )
        self.path = path


class Refused(AmberError):
    pass


class FolderInUse(Refused):
    pass


class ConfirmationRequired(Refused):
    pass


class Conflict(AmberError):
    pass


class FileKeptChanging(AmberError):
    def __init__(self, path: str, tries: int) -> None:
        super().__init__(
            f"'{path}' kept changing while it was read ({tries} tries); training is still writing it",
            hint="wait until the save finishes (or pause training) and snapshot again",
        )
        self.path = path


class Corruption(AmberError):
    pass


class StorageError(AmberError, OSError):
    """The operating system refused a read or write; nothing was half-written."""
