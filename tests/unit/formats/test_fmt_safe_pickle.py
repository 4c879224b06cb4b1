"""The safe unpickler builds data and stand-ins, never runs what a pickle names."""

from __future__ import annotations

import argparse
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from tests.unit.formats.builders import Touch, hostile_pickle

from amber.errors import InvalidInput, UnsafePickle
from amber.formats import safe_pickle
from amber.formats.safe_pickle import ArrayInfo, Unknown


def test_the_hostile_payload_is_live(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(Touch(marker)))  # the real unpickler runs it
    assert marker.exists()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_hostile_pickle_is_refused_and_never_runs(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(UnsafePickle) as caught:
        safe_pickle.load(hostile_pickle(marker, protocol), "model/x_data.dat")
    assert str(caught.value) == "'model/x_data.dat' is a pickle that asks for posix.system, which Amber never loads"
    assert caught.value.path == "model/x_data.dat"
    assert not marker.exists()


def test_lenient_mode_stubs_unknown_globals_without_running_them(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    value = safe_pickle.load(hostile_pickle(marker), "w.npy", lenient=True)
    assert isinstance(value["evil"], Unknown)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numpy_arrays_become_shape_and_dtype(protocol: int) -> None:
    data = {"w": np.zeros((3, 4), np.float32), "i": np.arange(5, dtype=np.int64), "h": np.ones(2, np.float16)}
    value = safe_pickle.load(pickle.dumps(data, protocol), "x.pkl")
    assert {"w": ArrayInfo("float32", (3, 4)), "i": ArrayInfo("int64", (5,)), "h": ArrayInfo("float16", (2,))} == value


@pytest.mark.parametrize("protocol", [2, 4])
def test_numpy_scalars_become_python_numbers(protocol: int) -> None:
    data = [np.float32(0.25), np.float64(1.5), np.int64(-7), np.uint8(200), np.bool_(True)]
    assert safe_pickle.load(pickle.dumps(data, protocol), "x.pkl") == [0.25, 1.5, -7, 200, True]


def test_plain_containers_and_data_holders_load() -> None:
    data = {
        "od": OrderedDict(a=1),
        "set": {1, 2},
        "frozen": frozenset({3}),
        "args": argparse.Namespace(lr=0.1, name="run"),
        "nested": [(1, 2.5, "x", b"raw", None, True)],
    }
    value = safe_pickle.load(pickle.dumps(data, 2), "x.pkl")
    assert {
        "od": OrderedDict(a=1),
        "set": {1, 2},
        "frozen": frozenset({3}),
        "args": {"lr": 0.1, "name": "run"},
        "nested": [(1, 2.5, "x", b"raw", None, True)],
    } == value


@pytest.mark.parametrize(
    ("payload", "what"),
    [
        (b"\x80\x02cbuiltins\neval\nX\x04\x00\x00\x001+1q\x00\x85R.", "builtins.eval"),
        (b"\x80\x02csubprocess\nPopen\n)R.", "subprocess.Popen"),
        (b"\x80\x02ctorch.nn.modules.linear\nLinear\n)R.", "torch.nn.modules.linear.Linear"),
    ],
)
def test_any_other_global_is_refused_by_name(payload: bytes, what: str) -> None:
    with pytest.raises(UnsafePickle) as caught:
        safe_pickle.load(payload, "f.pkl")
    assert f"'f.pkl' is a pickle that asks for {what}, which Amber never loads" == str(caught.value)


def test_persistent_ids_other_than_torch_storages_are_refused() -> None:
    payload = b"\x80\x02X\x05\x00\x00\x00otherQ."
    with pytest.raises(UnsafePickle) as caught:
        safe_pickle.load(payload, "f.pkl")
    assert "asks for a persistent object of kind 'str'" in str(caught.value)


@pytest.mark.parametrize("payload", [b"", b"\x80\x04\x95", b"not a pickle", b"\x80\x02]q\x00(K\x01"])
def test_damaged_streams_raise_invalid_input(payload: bytes) -> None:
    with pytest.raises(InvalidInput) as caught:
        safe_pickle.load(payload, "f.pkl")
    assert not isinstance(caught.value, UnsafePickle)
    assert str(caught.value).startswith("'f.pkl' is not a readable pickle")


def test_codecs_encode_is_limited_to_latin1() -> None:
    payload = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R."
    with pytest.raises(InvalidInput):
        safe_pickle.load(payload, "f.pkl")
