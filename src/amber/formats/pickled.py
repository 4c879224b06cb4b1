"""Pickled dicts of arrays (DeepFaceLab's ``*.npy`` weights, ``*_data.dat``).

DeepFaceLab writes each network as ``pickle.dumps({name: ndarray}, 4)``. Every
array's raw bytes sit in the stream as one ``BINBYTES`` payload (protocol 5:
``BYTEARRAY8``), so the tensor boundaries can be found by walking the opcodes,
skipping payloads with a seek, and building nothing. The walk only reads
opcode arguments; nothing is unpickled.

An array's dtype is pickled as ``numpy.dtype('f4', ...)``: the type code is a
short string before the payload (protocol ≤ 4) or just after it (protocol 5's
``_frombuffer``), or a memo reference to an earlier dtype. The walk follows
these to give each payload its itemsize. A wrong guess only costs compression,
never bytes: the payload boundaries themselves come from the opcodes.
"""

from __future__ import annotations

import pickletools
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from amber.formats import dtypes, sniff
from amber.formats.regions import Malformed, Span

MAX_OPS = 1_000_000  # a pickle with more opcodes than this is not walked
MAX_PICKLES = 8  # consecutive pickles walked (legacy torch files hold five)
_MAX_LINE = 1 << 16

_OPS = {op.code.encode("latin-1")[0]: op for op in pickletools.opcodes}
_LENGTH_PREFIX = {
    pickletools.TAKEN_FROM_ARGUMENT1: "<B",
    pickletools.TAKEN_FROM_ARGUMENT4: "<i",
    pickletools.TAKEN_FROM_ARGUMENT4U: "<I",
    pickletools.TAKEN_FROM_ARGUMENT8U: "<Q",
}
_PAYLOADS = frozenset({"BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8"})
_STRINGS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"})
_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GETS = frozenset({"GET", "BINGET", "LONG_BINGET"})
PROTO = sniff.PICKLE_PROTO


is_pickle = sniff.is_pickle


@dataclass
class _Walk:
    """What the walk knows about dtypes at the current opcode."""

    spans: list[Span] = field(default_factory=list)
    current: str | None = None  # the dtype code most recently named
    fresh: bool = False  # a dtype was named since the last payload
    pending: int | None = None  # index in spans of a payload still waiting for its dtype
    reduce_code: str | None = None  # a code seen since the last REDUCE
    top: str | None = None  # dtype code of the object the previous opcode pushed
    memo: dict[int, str] = field(default_factory=dict)
    memo_size: int = 0

    def name_dtype(self, code: str) -> None:
        self.current, self.fresh = code, True
        if self.pending is not None:
            old = self.spans[self.pending]
            self.spans[self.pending] = Span(old.offset, old.length, _hint(code))
            self.pending, self.fresh = None, False

    def payload(self, offset: int, length: int, opname: str) -> None:
        if opname == "BYTEARRAY8":  # protocol 5: the dtype follows the bytes
            self.pending = len(self.spans)
            self.spans.append(Span(offset, length, 0))
        elif self.fresh:
            self.spans.append(Span(offset, length, _hint(self.current)))
        self.fresh = False


def walk(f: BinaryIO, size: int) -> tuple[list[Span], int]:
    """Array payload spans of the pickles at the start of ``f``, and where they end."""
    state = _Walk()
    position = 0
    ops = 0
    for _ in range(MAX_PICKLES):
        f.seek(position)
        if not is_pickle(f.read(2)):
            break
        f.seek(position)
        position, ops = _walk_one(f, size, state, ops)
        if position >= size:
            break
    if position == 0:
        raise Malformed("not a pickle")
    return state.spans, position


def _walk_one(f: BinaryIO, size: int, state: _Walk, ops: int) -> tuple[int, int]:
    while True:
        ops += 1
        if ops > MAX_OPS:
            raise Malformed("too many opcodes to walk")
        code = f.read(1)
        if not code:
            raise Malformed("pickle ends without STOP")
        op = _OPS.get(code[0])
        if op is None:
            raise Malformed(f"unknown opcode {code!r}")
        if op.name == "STOP":
            return f.tell(), ops
        _step(f, size, state, op)


def _step(f: BinaryIO, size: int, state: _Walk, op: pickletools.OpcodeInfo) -> None:
    top = None
    name = op.name
    if op.arg is None:
        if name == "MEMOIZE":
            _remember(state, state.memo_size)
        elif name == "REDUCE":
            top, state.reduce_code = state.reduce_code, None
        state.top = top
        return
    n = op.arg.n
    if n in _LENGTH_PREFIX:
        fmt = _LENGTH_PREFIX[n]
        (length,) = struct.unpack(fmt, _read(f, struct.calcsize(fmt)))
        start = f.tell()
        if length < 0 or start + length > size:
            raise Malformed(f"{name} runs past the end of the file")
        if name in _PAYLOADS:
            state.payload(start, length, name)
            f.seek(length, 1)
        elif name in _STRINGS and length <= 8:
            top = _string(state, _read(f, length))
        else:
            f.seek(length, 1)
    elif n == pickletools.UP_TO_NEWLINE:
        lines = [_line(f, name) for _ in range(2 if op.arg.name.endswith("_pair") else 1)]
        top = _memo_op(state, name, lines[0])
    else:
        top = _memo_op(state, name, _read(f, n))
    state.top = top


def _string(state: _Walk, raw: bytes) -> str | None:
    text = raw.decode("utf-8", errors="replace")
    if not dtypes.is_numpy_code(text):
        return None
    state.reduce_code = text
    state.name_dtype(text)
    return text


def _memo_op(state: _Walk, name: str, raw: bytes) -> str | None:
    """Follow memo puts and gets of dtype codes; other fixed arguments pass."""
    if name in _PUTS:
        _remember(state, _index(name, raw))
    elif name in _GETS:
        code = state.memo.get(_index(name, raw))
        if code is not None:
            state.reduce_code = code
            state.name_dtype(code)
        return code
    return None


def _remember(state: _Walk, index: int) -> None:
    if state.top is not None:
        state.memo[index] = state.top
    state.memo_size = max(state.memo_size, index + 1)


def _index(name: str, raw: bytes) -> int:
    if name in ("PUT", "GET"):
        try:
            return int(raw)
        except ValueError:
            raise Malformed(f"{name} with a bad index") from None
    return int.from_bytes(raw, "little")


def _line(f: BinaryIO, name: str) -> bytes:
    line = f.readline(_MAX_LINE)
    if not line.endswith(b"\n"):
        raise Malformed(f"{name} argument has no newline")
    return line.strip()


def _read(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise Malformed("pickle ends inside an opcode")
    return data


def _hint(code: str | None) -> int:
    return dtypes.itemsize_hint(dtypes.numpy_name(code) if code else None)
