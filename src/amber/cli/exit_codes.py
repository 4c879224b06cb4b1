"""The one table from error type to exit code. A code never changes meaning.

0 success            3 verify found damage / some items failed    6 conflict: locked
1 other failure      4 not found: repo, model, version             130 interrupted
2 usage error        5 refused: no confirmation, folder in use, protected alias
"""

from __future__ import annotations

from amber import errors

OK, FAILURE, USAGE, DAMAGE, NOT_FOUND, REFUSED, CONFLICT, INTERRUPTED = 0, 1, 2, 3, 4, 5, 6, 130

_TABLE: list[tuple[type[BaseException], int]] = [
    (errors.RepoNotFound, NOT_FOUND),
    (errors.NotFound, NOT_FOUND),
    (errors.AmbiguousRef, USAGE),
    (errors.InvalidInput, USAGE),
    (errors.RepoExists, USAGE),
    (errors.Refused, REFUSED),
    (errors.Conflict, CONFLICT),
    (errors.Corruption, DAMAGE),
]


def code_for(exc: BaseException) -> int:
    for kind, code in _TABLE:
        if isinstance(exc, kind):
            return code
    return FAILURE
