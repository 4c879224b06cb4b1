"""The small JSON files model folders describe themselves with."""

from __future__ import annotations

import json
import math
import os
from typing import Any

from amber.errors import InvalidInput

MAX_JSON = 64 << 20  # trainer_state.json of a long run stays far below this


def read_object(path: str) -> dict[str, Any] | None:
    """The JSON object in ``path``; None if there is no such file.

    Raises InvalidInput if the file exists but is not a JSON object.
    """
    try:
        if os.path.getsize(path) > MAX_JSON:
            raise InvalidInput(f"'{path}' is too large to be a model's metadata file")
        with open(path, "rb") as f:
            value = json.loads(f.read())
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidInput(f"'{path}' is not valid JSON ({exc})", hint="is training still writing it?") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"'{path}' does not hold a JSON object")
    return value


def number(value: Any) -> float | None:
    """``value`` as a finite float, or None if it is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
