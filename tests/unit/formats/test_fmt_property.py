"""Whatever a file holds, its regions cover it exactly, and planning never raises."""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import struct
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file
from tests.unit.formats.builders import write_gguf

from amber.errors import AmberError
from amber.formats import plan_regions, safe_pickle
from amber.formats.regions import covers

MAGICS = [
    b"",
    b"\x80\x02",
    b"\x80\x04\x95",
    b"\x80\x05",
    b"PK\x03\x04",
    b"GGUF\x03\x00\x00\x00",
    b"\x93NUMPY\x01\x00",
    struct.pack("<Q", 20) + b"{",
]

LEAVES = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
PLAIN = st.recursive(
    LEAVES | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=20,
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _plan_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.bin"
        path.write_bytes(data)
        regions = plan_regions(str(path), len(data))
    assert covers(regions, len(data))
    assert (regions == []) == (len(data) == 0)


@SETTINGS
@given(magic=st.sampled_from(MAGICS), rest=st.binary(max_size=2048))
def test_arbitrary_bytes_are_covered(magic: bytes, rest: bytes) -> None:
    _plan_bytes(magic + rest)


def _safetensors() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.safetensors"
        save_file({"a": np.ones((70, 300), np.float32), "b": np.arange(10), "c": np.zeros(9, np.float16)}, str(path))
        return path.read_bytes()


def _npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, a=np.ones((300, 100), np.float32), b=np.arange(7))
    return buffer.getvalue()


def _npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ones((300, 100), np.float16))
    return buffer.getvalue()


def _dfl() -> bytes:
    return pickle.dumps({"w": np.ones((200, 100), np.float32), "i": np.arange(9), "h": np.ones(3, np.float16)}, 4)


def _gguf() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.gguf"
        write_gguf(path, [("a", (32, 600), 0, np.ones(19200, np.float32).tobytes()), ("b", (5,), 1, b"\x00" * 10)])
        return path.read_bytes()


def _zip_with_pickle() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"x": 1}, 2))
        archive.writestr("archive/data/0", b"\x01" * 70000)
    return buffer.getvalue()


REAL: list[Callable[[], bytes]] = [_safetensors, _npz, _npy, _dfl, _gguf, _zip_with_pickle]
SAMPLES = {f.__name__: f() for f in REAL}


@SETTINGS
@given(
    name=st.sampled_from(sorted(SAMPLES)),
    cut=st.floats(0, 1),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=4),
)
def test_damaged_real_files_are_covered(name: str, cut: float, flips: list[tuple[float, int]]) -> None:
    data = bytearray(SAMPLES[name])
    for where, value in flips:
        data[int(where * (len(data) - 1))] = value
    _plan_bytes(bytes(data[: int(cut * len(data))] if cut < 0.5 else data))


def test_intact_real_files_are_covered_by_more_than_one_region() -> None:
    for name, data in SAMPLES.items():
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "f"
            path.write_bytes(data)
            regions = plan_regions(str(path), len(data))
        assert covers(regions, len(data)), name
        assert any(r.itemsize or not r.cdc for r in regions), name


@SETTINGS
@given(data=st.binary(max_size=512), proto=st.sampled_from([b"", b"\x80\x02", b"\x80\x04"]))
def test_safe_unpickler_raises_only_amber_errors(data: bytes, proto: bytes) -> None:
    with contextlib.suppress(AmberError):
        safe_pickle.load(proto + data, "f.pkl")


@SETTINGS
@given(value=PLAIN, proto=st.integers(2, 5))
def test_plain_data_round_trips_through_the_safe_unpickler(value: object, proto: int) -> None:
    loaded = safe_pickle.load(pickle.dumps(value, proto), "f")
    assert json.dumps(loaded, default=repr) == json.dumps(value, default=repr)
