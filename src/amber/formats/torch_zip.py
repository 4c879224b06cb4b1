"""PyTorch checkpoints in zip form (``torch.save`` since 1.6: .pt .pth .bin .ckpt).

The zip holds ``<archive>/data.pkl`` (the object, with tensors as references to
storages), and each storage's raw bytes as a stored member
``<archive>/data/<key>``. Each storage is a tensor span; its dtype comes from
the storage type ``data.pkl`` names for that key (``torch.FloatStorage`` …),
read with the safe unpickler. A storage whose dtype cannot be learnt gets
itemsize 0: a wrong guess would group int64 token ids as if they were floats.
"""

from __future__ import annotations

import os
import re
import struct
from typing import BinaryIO

from amber.errors import AmberError, InvalidInput
from amber.formats import safe_pickle
from amber.formats.regions import Malformed
from amber.formats.tensors import Tensor, Weights
from amber.formats.zipmembers import Member, members, read_member

_SCALARS = {"float32": "<f", "float64": "<d", "float16": "<e", "bfloat16": "<f"}
_PICKLE = re.compile(r"^(?:(.*)/)?data\.pkl$")


def find_pickle(found: list[Member]) -> Member | None:
    """The ``data.pkl`` member at the top of the archive folder, if any."""
    for member in found:
        match = _PICKLE.match(member.name)
        if match and "/" not in (match.group(1) or ""):
            return member
    return None


def read(f: BinaryIO, size: int, path: str, found: list[Member]) -> Weights:
    """Storage records of the checkpoint as tensors (shape: element count)."""
    pickle_member = find_pickle(found)
    if pickle_member is None:
        raise Malformed("zip has no data.pkl")
    prefix = pickle_member.name[: -len("data.pkl")] + "data/"
    storages = _storages(f, pickle_member, path)
    tensors = []
    for member in found:
        if member.stored and member.name.startswith(prefix) and "/" not in member.name[len(prefix) :]:
            key = member.name[len(prefix) :]
            info = storages.get(key)
            dtype = info.dtype if info is not None else "unknown"
            numel = info.numel if info is not None else 0
            tensors.append(Tensor(key, dtype, (numel,), member.data, member.size))
    return Weights("torch", tuple(tensors))


def _storages(f: BinaryIO, member: Member, path: str) -> dict[str, safe_pickle.StorageInfo]:
    """Storage dtypes by key; unknown globals are stand-ins here (nothing runs)."""
    try:
        data = read_member(f, member, safe_pickle.MAX_PICKLE)
        return safe_pickle.load_with_storages(data, path, lenient=True).storages
    except (AmberError, Malformed):
        return {}


def load(path: str) -> safe_pickle.Loaded:
    """The object a checkpoint pickles, read by the safe unpickler in lenient mode.

    Checkpoints legitimately pickle classes of their own (a config object,
    ``argparse.Namespace``, a whole ``nn.Module``); each such global becomes an
    inert stand-in, is never imported, and is listed in ``refused``. Raises
    InvalidInput if the file is not a readable zip checkpoint.
    """
    try:
        with open(path, "rb") as f:
            found = members(f, os.fstat(f.fileno()).st_size)
            member = find_pickle(found)
            if member is None:
                raise Malformed("no data.pkl inside")
            data = read_member(f, member, safe_pickle.MAX_PICKLE)
    except Malformed as exc:
        raise InvalidInput(f"'{path}' is not a readable PyTorch checkpoint: {exc}") from None
    return safe_pickle.load_with_storages(data, path, lenient=True)


def read_scalar(path: str, tensor: safe_pickle.TensorInfo) -> float | None:
    """The value of a one-element float tensor of the checkpoint (e.g. a best score)."""
    fmt = _SCALARS.get(tensor.dtype)
    if fmt is None or tensor.numel != 1:
        return None
    width = 2 if tensor.dtype == "bfloat16" else struct.calcsize(fmt)
    try:
        with open(path, "rb") as f:
            found = members(f, os.fstat(f.fileno()).st_size)
            pickle_member = find_pickle(found)
            if pickle_member is None:
                return None
            name = pickle_member.name[: -len("data.pkl")] + "data/" + tensor.storage.key
            member = next((m for m in found if m.name == name and m.stored), None)
            if member is None or (tensor.offset + 1) * width > member.size:
                return None
            f.seek(member.data + tensor.offset * width)
            raw = f.read(width)
            if tensor.dtype == "bfloat16":  # the high half of a float32
                raw = b"\x00\x00" + raw
            return float(struct.unpack(fmt, raw)[0])
    except (OSError, Malformed, struct.error):
        return None
