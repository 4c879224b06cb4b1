"""A DeepFaceLab folder with several models: --select versions one, restore leaves the others alone."""

from __future__ import annotations

import pickle
from pathlib import Path

from tests.conftest import cli_json, run_cli, tree_bytes
from tests.unit.formats.builders import SAEHD_OPTIONS, hostile_pickle, write_dfl_model


def workspace(root: Path, it: int) -> Path:
    model = root / "workspace" / "model"
    write_dfl_model(model, "new_SAEHD", iteration=it, history=[[0.5, 0.6], [0.41, 0.52]], options=SAEHD_OPTIONS,
                    parts=("encoder", "inter_AB", "decoder"))  # fmt: skip
    write_dfl_model(model, "XSeg", iteration=900 + it, history=[[0.2], [0.1]], options={"resolution": 256},
                    parts=("256",))  # fmt: skip
    return model


def test_select_versions_one_model_and_restore_spares_the_other(work: Path) -> None:
    assert run_cli("init", cwd=work).returncode == 0
    model = workspace(work, 51234)

    proc = run_cli("snapshot", "workspace/model", cwd=work)
    assert proc.returncode == 2
    assert "holds 2 DeepFaceLab models (XSeg, new_SAEHD)" in proc.stderr and "--select" in proc.stderr

    v = cli_json("snapshot", "workspace/model", "--select", "new_SAEHD_*", cwd=work)
    assert (v["model"], v["model_type"], v["iteration"]) == ("new_SAEHD", "SAEHD", 51234)
    assert v["metrics"] == {"loss_src": 0.41, "loss_dst": 0.52}
    assert v["metadata"]["resolution"] == 128 and v["metadata"]["batch_size"] == 8
    shown = cli_json("show", "new_SAEHD:v1", cwd=work)
    assert all(f["path"].startswith("new_SAEHD_") for f in shown["files"])
    assert len(shown["files"]) == 5
    saehd_v1 = {k: x for k, x in tree_bytes(model).items() if k.startswith("new_SAEHD_")}

    # both models train on; then the SAEHD model is rolled back
    workspace(work, 60000)
    (model / "XSeg_256.npy").write_bytes(pickle.dumps({"w": [1, 2, 3]}))
    xseg_now = {k: x for k, x in tree_bytes(model).items() if not k.startswith("new_SAEHD_")}
    xseg_inodes = {p.name: p.stat().st_ino for p in model.iterdir() if not p.name.startswith("new_SAEHD_")}

    proc = run_cli("restore", "new_SAEHD:v1", "--yes", cwd=work)
    assert proc.returncode == 0, proc.stderr
    after = tree_bytes(model)
    assert {k: x for k, x in after.items() if k.startswith("new_SAEHD_")} == saehd_v1
    assert {k: x for k, x in after.items() if not k.startswith("new_SAEHD_")} == xseg_now
    assert {p.name: p.stat().st_ino for p in model.iterdir() if not p.name.startswith("new_SAEHD_")} == xseg_inodes
    backup = cli_json("show", "new_SAEHD:v2", cwd=work)
    assert backup["kind"] == "backup" and backup["iteration"] is None
    assert all(f["path"].startswith("new_SAEHD_") for f in backup["files"])

    # the selection is remembered: a plain snapshot of the model takes only its files again
    again = cli_json("snapshot", "workspace/model", "--model", "new_SAEHD", cwd=work)
    assert again["iteration"] == 51234 and again["ref"] == "new_SAEHD:v3"


def test_hostile_pickle_in_dfl_data_is_refused_and_never_runs(work: Path) -> None:
    assert run_cli("init", cwd=work).returncode == 0
    model = work / "model"
    write_dfl_model(model, "new_SAEHD", iteration=5, history=[[0.5, 0.6]], options=SAEHD_OPTIONS)
    marker = work / "pwned"
    (model / "new_SAEHD_data.dat").write_bytes(hostile_pickle(marker))
    proc = run_cli("snapshot", "model", cwd=work)
    assert proc.returncode == 2
    assert "new_SAEHD_data.dat" in proc.stderr and "never loads" in proc.stderr
    assert not marker.exists()
    assert cli_json("list", cwd=work) == []
