"""DeepFaceLab model folders.

DeepFaceLab keeps every model of a workspace in one folder, each as files named
``<name>_<TYPE>_<part>`` (XSeg: ``XSeg_<part>``): weights ``*.npy`` (pickled
dicts of arrays), ``*_data.dat`` (a pickled dict: ``iter``, ``options``,
``loss_history``, ``sample_for_preview``, …) and ``*_summary.txt``. A model is
named by its prefix (``new_SAEHD``, ``XSeg``). Several models can share the
folder; detection reports one only when it is the only one, or the one chosen.
"""

from __future__ import annotations

import fnmatch
import math
import os
import re
from typing import Any

from amber.errors import InvalidInput
from amber.formats import Detected

TYPES = ("SAEHD", "AMP", "Quick96", "XSeg")
_TYPE = "|".join(TYPES)
_DATA = re.compile(rf"^(?:(?P<name>.+)_)?(?P<type>{_TYPE})_data\.dat$")
_WEIGHTS = re.compile(rf"^(?:(?P<name>.+)_)?(?P<type>{_TYPE})_(?P<part>.+)\.npy$")
_ANY = re.compile(rf"^(?:(?P<name>.+)_)?(?P<type>{_TYPE})_.+$")
_GLOB = re.compile(r"[*?\[]")


def _files(folder: str) -> list[str]:
    try:
        with os.scandir(folder) as entries:
            return sorted(e.name for e in entries if e.is_file(follow_symlinks=False))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _prefix(filename: str) -> tuple[str, str | None, str] | None:
    """(model prefix, name, TYPE) a DeepFaceLab file belongs to, if it is one."""
    match = _DATA.match(filename) or _WEIGHTS.match(filename)
    if match is None:
        return None
    name, kind = match.group("name"), match.group("type")
    return (f"{name}_{kind}" if name else kind), name, kind


def owner_prefix(filename: str) -> str | None:
    """The model prefix a DeepFaceLab-named file carries (``new_SAEHD_summary.txt`` → ``new_SAEHD``)."""
    match = _ANY.match(filename)
    if match is None:
        return None
    name, kind = match.group("name"), match.group("type")
    return f"{name}_{kind}" if name else kind


def dfl_models(folder: str) -> list[str]:
    """Prefixes of the DeepFaceLab models in ``folder`` (``['XSeg', 'new_SAEHD']``)."""
    found = {p[0] for p in map(_prefix, _files(folder)) if p is not None}
    return sorted(found)


def dfl_files(folder: str, select: str) -> list[str]:
    """Names of the files in ``folder`` that ``select`` picks.

    ``select`` is a glob over file names (``new_SAEHD_*``), a model prefix from
    :func:`dfl_models`, a model's bare name or TYPE when only one model has it
    (``new``, ``XSeg``), or else a literal name prefix.
    """
    names = _files(folder)
    if _GLOB.search(select):
        return [n for n in names if fnmatch.fnmatchcase(n, select)]
    model = resolve(folder, select)
    if model is None:
        return [n for n in names if n.startswith(select)]
    models = dfl_models(folder)
    return [n for n in names if _owner(n, models) == model]


def resolve(folder: str, select: str) -> str | None:
    """The model prefix ``select`` names in ``folder``, or None."""
    models = dfl_models(folder)
    if select in models:
        return select
    if _GLOB.search(select):
        hits = [m for m in models if any(_owner(n, models) == m for n in dfl_files(folder, select))]
    else:
        hits = [m for m in models if m.split("_")[-1] == select or m.rsplit("_", 1)[0] == select]
    return hits[0] if len(hits) == 1 else None


def _owner(filename: str, models: list[str]) -> str | None:
    """The model a file belongs to: the longest prefix ``<prefix>_`` it starts with."""
    owners = [m for m in models if filename.startswith(m + "_")]
    return max(owners, key=len) if owners else None


def detect(folder: str, select: str | None = None) -> Detected | None:
    """The DeepFaceLab model in ``folder`` (chosen by ``select`` if several)."""
    models = dfl_models(folder)
    if not models:
        return None
    chosen = resolve(folder, select) if select else (models[0] if len(models) == 1 else None)
    if chosen is None:
        return Detected(metadata={"dfl_models": models})
    name, _, kind = chosen.rpartition("_")
    found = Detected(model_type=kind, metadata={"dfl_model": chosen, "dfl_name": name or kind, "dfl_models": models})
    data_path = os.path.join(folder, f"{chosen}_data.dat")
    if os.path.isfile(data_path):
        _read_data(data_path, kind, found)
    return found


def _read_data(path: str, kind: str, found: Detected) -> None:
    from amber.formats import safe_pickle  # only a folder with a _data.dat needs the unpickler

    if os.path.getsize(path) > safe_pickle.MAX_PICKLE:
        raise InvalidInput(f"'{path}' is too large to be a DeepFaceLab _data.dat")
    with open(path, "rb") as f:
        data = safe_pickle.load(f.read(), path)  # raises UnsafePickle for a hostile file
    if not isinstance(data, dict):
        raise InvalidInput(f"'{path}' does not hold a DeepFaceLab model dict")
    if _is_int(data.get("iter")):
        found.iteration = int(data["iter"])
    found.metrics.update(_losses(data.get("loss_history"), kind))
    options = data.get("options")
    if isinstance(options, dict):
        for key, value in options.items():
            if isinstance(key, str) and _plain(value):
                found.metadata.setdefault(key, value)


def _losses(history: Any, kind: str) -> dict[str, float]:
    if not isinstance(history, list) or not history:
        return {}
    last = history[-1]
    values = list(last) if isinstance(last, (list, tuple)) else [last]
    if not values or not all(_number(v) for v in values):
        return {}
    if kind == "XSeg" or len(values) == 1:
        names = ["loss"] + [f"loss_{i}" for i in range(1, len(values))]
    else:
        names = ["loss_src", "loss_dst"] + [f"loss_{i}" for i in range(2, len(values))]
    return {n: float(v) for n, v in zip(names, values, strict=True) if math.isfinite(float(v))}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _plain(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (str, int, bool)) or value is None
