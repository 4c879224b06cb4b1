"""Random folder trees survive snapshot → scramble → restore, and export, bit for bit."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from tests.conftest import tree_bytes
from tests.strategies import trees

import amber


def build(folder: Path, tree: dict[str, object]) -> None:
    folder.mkdir()
    for name, node in tree.items():
        path = folder / name
        if isinstance(node, dict):
            build(path, node)
        elif node[0] == "link":
            os.symlink(node[1], path)
        else:
            data, mode = node
            path.write_bytes(data)
            path.chmod(mode)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=trees(), after=trees())
def test_any_tree_round_trips(before: dict[str, object], after: dict[str, object]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        repo = amber.Repo.init(root)
        try:
            model = root / "model"
            build(model, before)
            expected = tree_bytes(model)
            v = repo.snapshot(model)

            shutil.rmtree(model)
            build(model, after)
            scrambled = tree_bytes(model)
            result = repo.restore(v.ref, force=True)
            assert expected == tree_bytes(model)

            repo.export(v.ref, root / "exported")
            assert expected == tree_bytes(root / "exported")

            if result.backup is not None:
                repo.restore(result.backup.ref, force=True)
                assert scrambled == tree_bytes(model)
            else:
                assert scrambled == expected
            assert repo.verify(data=True).ok
        finally:
            repo.close()
