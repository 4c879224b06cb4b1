"""DeepFaceLab folders: which models are there, their files, iteration, losses, options."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from tests.unit.formats.builders import SAEHD_OPTIONS, hostile_pickle, write_dfl_model

from amber.errors import InvalidInput, UnsafePickle
from amber.formats import Detected, detect, dfl_files, dfl_models, plan_regions
from amber.formats.regions import covers

HISTORY = [[0.9, 1.1], [0.5, 0.7], [0.31, 0.42]]


def _saehd(folder: Path, name: str = "new", iteration: int = 12000) -> None:
    write_dfl_model(folder, f"{name}_SAEHD", iteration=iteration, history=HISTORY, options=SAEHD_OPTIONS,
                    parts=("encoder", "inter_AB", "decoder", "src_dst_opt"))  # fmt: skip


def _xseg(folder: Path) -> None:
    write_dfl_model(folder, "XSeg", iteration=5000, history=[[0.2], [0.05]],
                    options={"resolution": 256, "batch_size": 4}, parts=("256", "256_opt"))  # fmt: skip


def test_saehd_model_is_detected_with_iteration_losses_and_options(tmp_path: Path) -> None:
    _saehd(tmp_path)
    expected_metadata = {
        "dfl_model": "new_SAEHD",
        "dfl_name": "new",
        "dfl_models": ["new_SAEHD"],
        **SAEHD_OPTIONS,
    }
    expected = Detected("SAEHD", 12000, {"loss_src": 0.31, "loss_dst": 0.42}, expected_metadata)
    assert expected == detect(str(tmp_path))


def test_xseg_has_one_loss_and_no_name(tmp_path: Path) -> None:
    _xseg(tmp_path)
    found = detect(str(tmp_path))
    assert (found.model_type, found.iteration, found.metrics) == ("XSeg", 5000, {"loss": 0.05})
    assert found.metadata == {
        "dfl_model": "XSeg",
        "dfl_name": "XSeg",
        "dfl_models": ["XSeg"],
        "resolution": 256,
        "batch_size": 4,
    }


def test_numpy_scalar_losses_are_read_as_floats(tmp_path: Path) -> None:
    write_dfl_model(tmp_path, "a_AMP", iteration=7, history=[[np.float32(0.5), np.float64(0.25)]], options={})
    assert detect(str(tmp_path)).metrics == {"loss_src": 0.5, "loss_dst": 0.25}


def test_several_models_are_reported_not_mixed(tmp_path: Path) -> None:
    _saehd(tmp_path)
    _saehd(tmp_path, name="old", iteration=3)
    _xseg(tmp_path)
    assert dfl_models(str(tmp_path)) == ["XSeg", "new_SAEHD", "old_SAEHD"]
    assert Detected(None, None, {}, {"dfl_models": ["XSeg", "new_SAEHD", "old_SAEHD"]}) == detect(str(tmp_path))


@pytest.mark.parametrize(("select", "model", "iteration"), [
    ("new_SAEHD", "new_SAEHD", 12000), ("old", "old_SAEHD", 3), ("XSeg", "XSeg", 5000), ("old_SAEHD_*", "old_SAEHD", 3),
])  # fmt: skip
def test_select_picks_one_model(tmp_path: Path, select: str, model: str, iteration: int) -> None:
    _saehd(tmp_path)
    _saehd(tmp_path, name="old", iteration=3)
    _xseg(tmp_path)
    found = detect(str(tmp_path), select=select)
    assert (model, iteration) == (found.metadata["dfl_model"], found.iteration)


def test_ambiguous_select_reports_the_models(tmp_path: Path) -> None:
    _saehd(tmp_path)
    _saehd(tmp_path, name="old", iteration=3)
    assert Detected(None, None, {}, {"dfl_models": ["new_SAEHD", "old_SAEHD"]}) == detect(str(tmp_path), select="SAEHD")


def test_dfl_files_lists_one_models_files(tmp_path: Path) -> None:
    _saehd(tmp_path)
    _xseg(tmp_path)
    (tmp_path / "SAEHD_default_options.dat").write_bytes(pickle.dumps({}))
    expected = [
        "new_SAEHD_data.dat",
        "new_SAEHD_decoder.npy",
        "new_SAEHD_encoder.npy",
        "new_SAEHD_inter_AB.npy",
        "new_SAEHD_src_dst_opt.npy",
        "new_SAEHD_summary.txt",
    ]
    assert expected == dfl_files(str(tmp_path), "new_SAEHD")
    assert expected == dfl_files(str(tmp_path), "new")
    assert dfl_files(str(tmp_path), "XSeg") == ["XSeg_256.npy", "XSeg_256_opt.npy", "XSeg_data.dat", "XSeg_summary.txt"]
    assert dfl_files(str(tmp_path), "new_SAEHD_*coder.npy") == ["new_SAEHD_decoder.npy", "new_SAEHD_encoder.npy"]
    assert dfl_files(str(tmp_path), "SAEHD_") == ["SAEHD_default_options.dat"]


def test_a_file_of_the_model_detects_its_model(tmp_path: Path) -> None:
    _saehd(tmp_path)
    _xseg(tmp_path)
    found = detect(str(tmp_path / "new_SAEHD_encoder.npy"))
    assert (found.model_type, found.iteration) == ("SAEHD", 12000)


def test_hostile_data_dat_raises_unsafe_pickle_naming_it(tmp_path: Path) -> None:
    _saehd(tmp_path)
    marker = tmp_path / "ran"
    data = tmp_path / "new_SAEHD_data.dat"
    data.write_bytes(hostile_pickle(marker))
    with pytest.raises(UnsafePickle) as caught:
        detect(str(tmp_path))
    assert f"'{data}' is a pickle that asks for posix.system, which Amber never loads" == str(caught.value)
    assert covers(plan_regions(str(data), data.stat().st_size), data.stat().st_size)
    assert not marker.exists()


def test_hostile_weights_are_not_read_by_detect(tmp_path: Path) -> None:
    _saehd(tmp_path)
    marker = tmp_path / "ran"
    (tmp_path / "new_SAEHD_encoder.npy").write_bytes(hostile_pickle(marker))
    assert detect(str(tmp_path)).iteration == 12000
    assert not marker.exists()


def test_damaged_data_dat_raises_invalid_input(tmp_path: Path) -> None:
    _saehd(tmp_path)
    (tmp_path / "new_SAEHD_data.dat").write_bytes(b"\x80\x04garbage")
    with pytest.raises(InvalidInput) as caught:
        detect(str(tmp_path))
    assert str(caught.value).startswith(f"'{tmp_path / 'new_SAEHD_data.dat'}' is not a readable pickle")


def test_model_without_data_dat_has_type_only(tmp_path: Path) -> None:
    _saehd(tmp_path)
    (tmp_path / "new_SAEHD_data.dat").unlink()
    found = detect(str(tmp_path))
    assert (found.model_type, found.iteration, found.metrics) == ("SAEHD", None, {})
