"""Aliases, best tracking, retention and gc, lineage, edits and usage records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import cli_json, run_cli, tree_bytes

import amber
from amber.errors import InvalidInput, NotFound, Refused
from amber.ops.retention import Policy


def snap(repo: amber.Repo, folder: Path, n: int, **kw):  # type: ignore[no-untyped-def]
    folder.mkdir(exist_ok=True)
    (folder / "w.bin").write_bytes(np.full(1000, n, dtype=np.float32).tobytes())
    (folder / "step.txt").write_text(str(n))
    return repo.snapshot(folder, model="m", **kw)


@pytest.fixture
def fifty(repo: amber.Repo, work: Path) -> amber.Repo:
    """52 versions: iteration 500·n, loss falling with a bump every 7th, one backup."""
    for n in range(1, 53):
        loss = 1.0 / n + (0.5 if n % 7 == 0 else 0.0)
        snap(repo, work / "model", n, iteration=500 * n, metrics={"loss": round(loss, 6)})
    repo.set_model("m", best_metric="loss", mode="min")
    return repo


def refs(versions: list[amber.Version]) -> list[str]:
    return sorted((v.ref for v in versions), key=lambda r: int(r.split(":v")[1]))


def kept(repo: amber.Repo, policy: str) -> list[str]:
    plan = repo.gc(policy, model="m", dry_run=True)
    return sorted(plan.kept, key=lambda r: int(r.split(":v")[1]))


def test_each_rule_keeps_exactly(fifty: amber.Repo) -> None:
    assert kept(fifty, "keep-last=3") == ["m:v50", "m:v51", "m:v52"]
    # best loss: 1/n falls with n, but multiples of 7 carry a bump; v52 is best and latest
    assert kept(fifty, "keep-best=3") == ["m:v50", "m:v51", "m:v52"]
    every = kept(fifty, "keep-every=5000")
    # milestones 0, 5000, ... 25000: first version at or past each (iteration 500·n)
    assert every == ["m:v1", "m:v10", "m:v20", "m:v30", "m:v40", "m:v50", "m:v52"]
    assert kept(fifty, "keep-aliased") == ["m:v52"]  # latest and best


def test_combined_rules_and_real_run(fifty: amber.Repo, work: Path) -> None:
    fifty.set_alias("m:v13", "baseline")
    fifty.set_alias("m:v2", "production")
    policy = "keep-last=2,keep-best=4,keep-every=10000,keep-aliased"
    # keep-best=4 skips v49 (7·7 carries the bump) and takes v48
    expected_keep = ["m:v1", "m:v2", "m:v13", "m:v20", "m:v40", "m:v48", "m:v50", "m:v51", "m:v52"]
    plan = fifty.gc(policy, model="m", dry_run=True)
    assert sorted(plan.kept, key=lambda r: int(r.split(":v")[1])) == expected_keep
    assert plan.kept["m:v13"] == ["alias baseline"]
    doomed = refs(plan.deleted)
    assert len(doomed) == 52 - len(expected_keep)

    objects = work / ".amber" / "objects"
    before = sum(p.stat().st_size for p in objects.rglob("*") if p.is_file())
    result = fifty.gc(policy, model="m", dry_run=False)
    after = sum(p.stat().st_size for p in objects.rglob("*") if p.is_file())
    assert refs(result.deleted) == doomed
    assert result.freed_bytes == plan.freed_bytes == before - after
    assert refs(fifty.versions("m")) == expected_keep
    assert fifty.verify(data=True).ok


def test_best_follows_the_metric_ties_newest_and_pins(repo: amber.Repo, work: Path) -> None:
    for n, loss in enumerate([0.5, 0.3, 0.3, 0.4], start=1):
        snap(repo, work / "model", n, metrics={"loss": loss})
    with pytest.raises(NotFound):
        repo.get("m:best")
    repo.set_model("m", best_metric="loss", mode="min")
    assert repo.get("m:best").ref == "m:v3"  # tie between v2 and v3: newest wins
    repo.set_model("m", mode="max")
    assert repo.get("m:best").ref == "m:v1"
    repo.set_alias("m:v2", "best")  # pinned by hand
    snap(repo, work / "model", 5, metrics={"loss": 9.0})
    assert repo.get("m:best").ref == "m:v2"
    repo.remove_alias("m", "best")  # back to the rule
    assert repo.get("m:best").ref == "m:v5"
    repo.delete("m:v5")
    assert repo.get("m:best").ref == "m:v1"
    assert repo.get("m:latest").ref == "m:v4"
    assert "best" in repo.get("m:v1").aliases


def test_latest_skips_backups(repo: amber.Repo, work: Path) -> None:
    snap(repo, work / "model", 1)
    snap(repo, work / "model", 2)
    (work / "model" / "extra").write_text("unsaved work")
    result = repo.restore("m:v1")
    assert result.backup is not None and result.backup.ref == "m:v3"
    assert repo.get("m:latest").ref == "m:v2"
    assert repo.get("m:v3").aliases == []


def test_protected_alias_blocks_delete_and_gc_keeps_aliased(repo: amber.Repo, work: Path) -> None:
    for n in range(1, 5):
        snap(repo, work / "model", n)
    repo.set_alias("m:v1", "production")
    repo.set_model("m", protect=["production"])
    with pytest.raises(Refused, match="protected alias production"):
        repo.delete("m:v1")
    assert len(repo.versions()) == 4
    result = repo.gc("keep-last=1", model="m", dry_run=False)
    assert refs(result.deleted) == ["m:v2", "m:v3"]
    assert repo.delete("m:v1", force=True).version.ref == "m:v1"


def test_backups_rotate_only_with_keep_backups(repo: amber.Repo, work: Path) -> None:
    snap(repo, work / "model", 1)
    for n in range(3):
        (work / "model" / "extra").write_text(f"change {n}")
        repo.restore("m:v1")
    backups = [v.ref for v in repo.versions() if v.kind == "backup"]
    assert backups == ["m:v4", "m:v3", "m:v2"]
    assert refs(repo.gc("keep-last=1", dry_run=True).deleted) == []
    assert refs(repo.gc("keep-last=1,keep-backups=1", dry_run=False).deleted) == ["m:v2", "m:v3"]


def test_retention_runs_after_each_snapshot(repo: amber.Repo, work: Path) -> None:
    snap(repo, work / "model", 1)
    repo.set_model("m", retention="keep-last=2")
    for n in range(2, 6):
        snap(repo, work / "model", n)
    assert refs(repo.versions()) == ["m:v4", "m:v5"]
    assert repo.model_settings("m").retention == "keep-last=2,keep-aliased"


def test_branching_lineage_cli(work: Path) -> None:
    assert run_cli("init", cwd=work).returncode == 0
    model = work / "model"
    model.mkdir()
    for n in (1, 2, 3):
        (model / "w").write_text(f"{n}")
        cli_json("snapshot", "model", "--iteration", str(n * 100), "--metric", f"loss={1 / n:.3f}", cwd=work)
    assert run_cli("restore", "model:v2", "--yes", cwd=work).returncode == 0
    for n in (4, 5):
        (model / "w").write_text(f"{n}")
        cli_json("snapshot", "model", "--iteration", str(n * 100), cwd=work)
    doc = cli_json("log", "model", cwd=work)
    assert [(v["ref"], v["parent"], v["children"]) for v in doc] == [
        ("model:v1", None, ["model:v2"]),
        ("model:v2", "model:v1", ["model:v3", "model:v4"]),
        ("model:v3", "model:v2", []),
        ("model:v4", "model:v2", ["model:v5"]),
        ("model:v5", "model:v4", []),
    ]
    graph = run_cli("log", "model", "--graph", cwd=work).stdout.splitlines()
    assert graph == [
        "* model:v1  'v1'  it 100  loss=1",
        "└─* model:v2  'v2'  it 200  loss=0.5",
        "  ├─* model:v3  'v3'  it 300  loss=0.333",
        "  └─* model:v4  'v4'  it 400",
        "    └─* model:v5  'v5'  it 500  (latest)",
    ]


def test_edit_changes_labels_never_content(repo: amber.Repo, work: Path) -> None:
    v = snap(repo, work / "model", 1, tags=["a"], metadata={"lr": 1})
    edited = repo.edit(v.ref, name="Before lr change", notes="n", add_tags=["milestone"], remove_tags=["a"],
                       metadata={"bs": 8})  # fmt: skip
    assert (edited.label, edited.notes, edited.tags, edited.metadata) == (
        "Before lr change", "n", ["milestone"], {"lr": 1, "bs": 8},
    )  # fmt: skip
    assert edited.manifest == v.manifest


def test_usage_records_and_amber_path(repo: amber.Repo, work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v = snap(repo, work / "model", 1, metrics={"loss": 0.2})
    expected = tree_bytes(work / "model")
    repo.use(v.ref, by="eval-run-12")
    path = amber.path("m:latest", used_by="notebook")
    assert expected == tree_bytes(Path(path))
    assert amber.path("m:v1") == path  # materialised once, then reused
    repo.export(v.ref, work / "out")
    usage = repo.usage(v.ref)
    assert [(u["kind"], u["who"]) for u in usage] == [
        ("use", "eval-run-12"), ("path", "notebook"), ("path", None), ("export", str(work / "out")),
    ]  # fmt: skip
    shown = cli_json("show", "m:v1", cwd=work)
    assert [u["who"] for u in shown["used_by"]] == ["eval-run-12", "notebook", None, str(work / "out")]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["alias", "set", "m:v9", "prod"], 4, "no version matches 'm:v9'"),
        (["alias", "set", "m:v1", "my prod"], 2, "not a valid alias name"),
        (["alias", "set", "m:v1", "a/b"], 2, "not a valid alias name"),
        (["alias", "set", "m:v1", "latest"], 2, "'latest' always names the newest version"),
        (["alias", "rm", "m", "nope"], 4, "model 'm' has no alias 'nope'"),
        (["model", "set", "m", "--retention", "keep-lots"], 2, "'keep-lots' is not a retention rule"),
        (["model", "set", "m", "--mode", "median"], 2, "--mode must be 'min' or 'max'"),
        (["model", "set", "m", "--retention", "keep-best=2"], 2, "keep-best needs a best metric"),
        (["gc", "--dry-run"], 2, "gc needs at least one keep rule"),
        (["delete", "m:v1", "--yes"], 5, "carries the protected alias production"),
    ],
)
def test_bad_curation_input(work: Path, args: list[str], code: int, message: str) -> None:
    repo = amber.Repo.init(work)
    snap(repo, work / "model", 1)
    repo.set_alias("m:v1", "production")
    repo.set_model("m", protect=["production"])
    repo.close()
    before = (work / ".amber" / "catalog.db").read_bytes()
    state = json.dumps(cli_json("list", cwd=work), sort_keys=True)
    proc = run_cli(*args, cwd=work)
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr
    assert json.dumps(cli_json("list", cwd=work), sort_keys=True) == state
    assert before  # the catalog still opens and lists the same versions


def test_policy_strings() -> None:
    assert str(Policy.parse("keep-best=3, keep-last=5")) == "keep-last=5,keep-best=3,keep-aliased"
    for bad in ("keep-last", "keep-last=-1", "keep-every=0", "drop-all", ""):
        with pytest.raises(InvalidInput):
            Policy.parse(bad)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    losses=st.lists(st.floats(0, 10, allow_nan=False), min_size=3, max_size=12),
    keep_last=st.integers(0, 4),
    keep_best=st.integers(0, 3),
    edits=st.lists(st.integers(0, 2), min_size=12, max_size=12),
)
def test_gc_never_removes_what_a_kept_version_needs(
    tmp_path_factory: pytest.TempPathFactory, losses: list[float], keep_last: int, keep_best: int, edits: list[int]
) -> None:
    work = tmp_path_factory.mktemp("gc")
    repo = amber.Repo.init(work)
    model = work / "model"
    model.mkdir()
    rng = np.random.default_rng(0)
    base = rng.standard_normal(50_000).astype(np.float32)
    trees = {}
    for n, loss in enumerate(losses, start=1):
        base = base + (edits[n - 1] * 1e-3) * rng.standard_normal(base.size).astype(np.float32)
        (model / "w.npy").write_bytes(base.tobytes())  # float data: deltas against the parent's pieces
        (model / "n.txt").write_text(str(n % 3))
        v = repo.snapshot(model, metrics={"loss": loss})
        trees[v.ref] = tree_bytes(model)
    repo.set_model("model", best_metric="loss")
    policy = Policy(keep_last=keep_last or None, keep_best=keep_best or None)
    repo.gc(policy, dry_run=False)
    assert repo.verify(data=True).ok
    for v in repo.versions():
        out = work / f"out-{v.number}"
        repo.export(v.ref, out)
        assert trees[v.ref] == tree_bytes(out)
    repo.close()


def test_delete_drops_the_path_cache(repo: amber.Repo, work: Path) -> None:
    snap(repo, work / "model", 1)
    snap(repo, work / "model", 2)
    cached = Path(amber.path("m:v1"))
    assert cached.is_dir()
    repo.delete("m:v1")
    assert not cached.exists()
