"""Formats with tensor headers: safetensors, .npy, .npz, GGUF (written by hand here)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file
from tests.unit.formats.builders import write_gguf

from amber.formats import Detected, Region, detect, plan_regions
from amber.formats.regions import covers


def _plan(path: Path) -> list[Region]:
    regions = plan_regions(str(path), path.stat().st_size)
    assert covers(regions, path.stat().st_size)
    return regions


def _safetensors_layout(path: Path) -> tuple[int, dict[str, list[int]]]:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    return 8 + n, {k: v["data_offsets"] for k, v in header.items() if k != "__metadata__"}


def test_safetensors_tensors_get_their_own_regions(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = {
        "big32": rng.standard_normal((256, 128)).astype(np.float32),
        "big16": rng.standard_normal((256, 256)).astype(np.float16),
        "big64": rng.standard_normal((100, 100)).astype(np.float64),
        "ids": np.arange(20000, dtype=np.int64),
        "bias": np.zeros(8, np.float32),
    }
    path = tmp_path / "m.safetensors"
    save_file(arrays, str(path), metadata={"format": "np"})
    base, offsets = _safetensors_layout(path)
    regions = _plan(path)
    for name, itemsize in (("big32", 4), ("big16", 2), ("big64", 8), ("ids", 0)):
        begin, end = offsets[name]
        assert Region(base + begin, end - begin, itemsize) in regions
    expected = {"parameters": 32768 + 65536 + 10000 + 20000 + 8, "dtype": "float16"}
    assert Detected("safetensors", None, {}, expected) == detect(str(path))


def test_npy_array_is_one_region_after_the_header(tmp_path: Path) -> None:
    array = np.random.default_rng(0).standard_normal((300, 100)).astype(np.float32)
    path = tmp_path / "a.npy"
    np.save(path, array)
    size = path.stat().st_size
    assert [Region(0, size - array.nbytes, 0), Region(size - array.nbytes, array.nbytes, 4)] == _plan(path)
    assert Detected("numpy", None, {}, {"parameters": 30000, "dtype": "float32"}) == detect(str(path))


def test_npz_stored_members_are_located(tmp_path: Path) -> None:
    x = np.random.default_rng(0).standard_normal((200, 100)).astype(np.float64)
    path = tmp_path / "a.npz"
    np.savez(path, x=x, small=np.arange(3))
    data = path.read_bytes()
    assert Region(data.index(x.tobytes()), x.nbytes, 8) in _plan(path)
    assert detect(str(path)).metadata == {"parameters": 20003, "dtype": "float64"}


def test_npz_compressed_members_are_opaque_but_counted(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    np.savez_compressed(path, x=np.zeros((300, 300), np.float32), y=np.ones(5, np.int32))
    assert all(r.itemsize == 0 for r in _plan(path))
    assert detect(str(path)).metadata == {"parameters": 90005, "dtype": "float32"}


def test_gguf_tensors_are_located_by_offset_and_type(tmp_path: Path) -> None:
    f32 = np.arange(32 * 600, dtype=np.float32).tobytes()  # 76800 bytes
    q8 = bytes(range(256)) * 340  # Q8_0: 32 elements per 34-byte block → 2560 blocks = 87040 bytes
    f16 = np.ones(40000, np.float16).tobytes()
    path = tmp_path / "m.gguf"
    tensors = [("tok", (32, 600), 0, f32), ("q", (32 * 2560,), 8, q8[: 2560 * 34]), ("h", (40000,), 1, f16)]
    base = write_gguf(path, tensors)
    regions = _plan(path)
    assert Region(base, len(f32), 4) in regions
    assert Region(base + 76800, 87040, 0) in regions
    assert Region(base + 76800 + 87040, 80000, 2) in regions
    expected = {"parameters": 19200 + 81920 + 40000, "dtype": "Q8_0", "gguf_version": 3, "architecture": "llama",
                "name": "tiny"}  # fmt: skip
    assert Detected("gguf", None, {}, expected) == detect(str(path))


@pytest.mark.parametrize("data", [b"GGUF\x01\x00\x00\x00" + b"\x00" * 40, b"GGUF\x03\x00\x00\x00" + b"\xff" * 16])
def test_bad_gguf_plans_as_opaque(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(data)
    assert [Region(0, len(data), 0, cdc=True)] == _plan(path)
    assert Detected() == detect(str(path))


def test_safetensors_with_lying_offsets_plans_as_opaque(tmp_path: Path) -> None:
    header = json.dumps({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 1000]}}).encode()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\x00" * 16)
    assert [Region(0, path.stat().st_size, 0, cdc=True)] == _plan(path)
