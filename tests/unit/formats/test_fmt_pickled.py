"""Walking pickled dicts of arrays: every array's bytes become a region, nothing is built."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
from tests.unit.formats.builders import DECODER, ENCODER, dfl_weights, hostile_pickle

from amber.formats import Region, plan_regions
from amber.formats.pickled import walk
from amber.formats.regions import Malformed, covers


def _mixed() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "a": rng.standard_normal((200, 100)).astype(np.float32),
        "ids": np.arange(9000, dtype=np.int64),
        "b": rng.standard_normal((300, 100)).astype(np.float32),  # same dtype again: a memo reference
        "h": rng.standard_normal(40000).astype(np.float16),
        "d": rng.standard_normal(10000).astype(np.float64),
    }


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_each_array_payload_is_found_with_its_itemsize(protocol: int) -> None:
    arrays = _mixed()
    data = pickle.dumps(arrays, protocol)
    spans, end = walk(io.BytesIO(data), len(data))
    assert len(data) == end
    expected_sizes = {"a": 4, "ids": 0, "b": 4, "h": 2, "d": 8}
    assert [(arrays[k].nbytes, expected_sizes[k]) for k in arrays] == [(s.length, s.itemsize) for s in spans]
    for span, array in zip(spans, arrays.values(), strict=True):
        assert array.tobytes() == data[span.offset : span.end]


def test_dfl_weight_file_regions_line_up_with_arrays(tmp_path: Path) -> None:
    shapes = {**ENCODER, **DECODER}
    arrays = dfl_weights(3, shapes)
    path = tmp_path / "new_SAEHD_encoder.npy"
    data = pickle.dumps(arrays, 4)
    path.write_bytes(data)
    regions = plan_regions(str(path), len(data))
    assert covers(regions, len(data))
    weight = arrays["upscale0/conv1/weight:0"]  # 3*3*128*256*4 bytes: large, its own region
    start = data.index(weight.tobytes())
    assert Region(start, weight.nbytes, 4) in regions
    dense = arrays["dense1/weight:0"]  # 131072 bytes
    assert Region(data.index(dense.tobytes()), dense.nbytes, 4) in regions
    # the small arrays before it fold into one region with the pickle opcodes around them
    assert Region(0, data.index(dense.tobytes()), 4) == regions[0]
    assert len(regions) == 5


def test_trailing_bytes_after_stop_are_content_defined(tmp_path: Path) -> None:
    data = pickle.dumps({"w": np.ones(100000, np.float32)}, 4)
    path = tmp_path / "x.pkl"
    path.write_bytes(data + b"\x00" * 100)
    regions = plan_regions(str(path), len(data) + 100)
    start = data.index(np.ones(100000, np.float32).tobytes())
    assert Region(start, 400000, 4) == regions[-2]
    assert Region(start + 400000, len(data) + 100 - start - 400000, 0, cdc=True) == regions[-1]


def test_hostile_pickle_is_walked_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "new_SAEHD_encoder.npy"
    path.write_bytes(hostile_pickle(marker))
    regions = plan_regions(str(path), path.stat().st_size)
    assert covers(regions, path.stat().st_size)
    assert not marker.exists()


@pytest.mark.parametrize("cut", [3, 40, 200])
def test_truncated_pickle_is_malformed_and_plans_as_opaque(tmp_path: Path, cut: int) -> None:
    data = pickle.dumps({"w": np.ones(1000, np.float32)}, 4)[:cut]
    with pytest.raises(Malformed):
        walk(io.BytesIO(data), len(data))
    path = tmp_path / "t.npy"
    path.write_bytes(data)
    assert [Region(0, cut, 0, cdc=True)] == plan_regions(str(path), cut)


def test_pickle_without_arrays_is_content_defined(tmp_path: Path) -> None:
    data = pickle.dumps({"loss": [[0.5, 0.4]] * 100}, 4)
    path = tmp_path / "x.pkl"
    path.write_bytes(data)
    assert [Region(0, len(data), 0, cdc=True)] == plan_regions(str(path), len(data))
