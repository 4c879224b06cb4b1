"""Hostile input: manifests from a damaged disk or a hostile remote, folders with escaping links, odd names.

The manifest parser must refuse anything that could write outside the folder or
describe an impossible tree, always with InvalidInput and a message naming the
problem; a fuzz run checks it never fails any other way.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import tree_bytes
from tests.fault.faultkit import amber_cli, one_error, write_tree

import amber
from amber.errors import InvalidInput
from amber.ops import manifest

OID = "ab" * 32
OID2 = "cd" * 32


def d(path: str) -> dict[str, Any]:
    return {"path": path, "type": "dir", "mode": 0o755}


def f(path: str, size: int = 10, chunks: Any = None, **extra: Any) -> dict[str, Any]:
    return {
        "path": path,
        "type": "file",
        "mode": 0o644,
        "size": size,
        "chunks": [[OID, size]] if chunks is None else chunks,
        **extra,
    }


def link(path: str, target: Any) -> dict[str, Any]:
    return {"path": path, "type": "symlink", "mode": 0o777, "target": target}


def doc(entries: Any, root: Any = "dir", **top: Any) -> bytes:
    return json.dumps({"format": 1, "root": root, "entries": entries, **top}).encode()


def test_a_sound_manifest_decodes() -> None:
    root, entries = manifest.decode(doc([d("a"), f("a/w.bin"), link("a/cur", "w.bin"), link("up", "a/../a")]))
    assert root == "dir"
    assert [e.path for e in entries] == ["a", "a/w.bin", "a/cur", "up"]
    assert entries[1].chunks == ((OID, 10),)


HOSTILE: list[tuple[str, bytes, str]] = [
    # paths
    ("parent path", doc([f("../evil")]), "'../evil' is not a safe relative path"),
    ("parent inside path", doc([d("a"), f("a/../../evil")]), "'a/../../evil' is not a safe relative path"),
    ("absolute path", doc([f("/etc/passwd")]), "'/etc/passwd' is not a safe relative path"),
    ("dot component", doc([d("a"), f("a/./b")]), "'a/./b' is not a safe relative path"),
    ("empty component", doc([d("a"), f("a//b")]), "'a//b' is not a safe relative path"),
    ("trailing slash", doc([d("a/")]), "'a/' is not a safe relative path"),
    ("empty path", doc([f("")]), "'' is not a safe relative path"),
    ("NUL in path", doc([f("a\0b")]), "is not a safe relative path"),
    ("path too long", doc([f("x" * 5000)]), "is not a safe relative path"),
    ("path not a string", doc([{"path": 7, "type": "file", "mode": 0o644}]), "has a bad path, type or mode"),
    ("lone surrogate path", doc([d("\ud800")]), "manifest path"),
    # links
    ("absolute link", doc([link("l", "/etc")]), "symlink 'l' points outside the folder ('/etc')"),
    ("parent link", doc([link("l", "../outside")]), "symlink 'l' points outside the folder ('../outside')"),
    ("deep parent link", doc([d("a"), link("a/l", "../../x")]), "symlink 'a/l' points outside the folder"),
    ("empty link", doc([link("l", "")]), "symlink 'l' points outside the folder"),
    ("link without target", doc([link("l", None)]), "manifest symlink 'l' has no target"),
    ("link chain escape", doc([link("b", "."), link("a", "b/..")]), "symlink 'a' points outside"),
    ("nested chain escape", doc([d("d"), link("d/b", ".."), link("a", "d/b/..")]), "symlink 'a' points outside"),
    # tree shape
    ("duplicate path", doc([f("w.bin"), f("w.bin")]), "manifest lists 'w.bin' twice"),
    ("duplicate dir", doc([d("a"), d("a")]), "manifest lists 'a' twice"),
    ("under a symlink", doc([d("sub"), link("l", "sub"), f("l/x")]), "'l/x' is not inside a listed folder"),
    ("under a file", doc([f("w"), f("w/x")]), "'w/x' is not inside a listed folder"),
    ("parent not listed", doc([f("nodir/x")]), "'nodir/x' is not inside a listed folder"),
    ("single file with two", doc([f("a"), f("b")], root="file"), "must hold exactly one file"),
    ("single file is a dir", doc([d("a")], root="file"), "must hold exactly one file"),
    # sizes and chunks
    ("negative size", doc([f("w", size=-1, chunks=[])]), "manifest file 'w' has an impossible size -1"),
    ("huge size", doc([f("w", size=1 << 60, chunks=[])]), "has an impossible size"),
    ("bool size", doc([f("w", size=True, chunks=[])]), "has an impossible size True"),
    ("float size", doc([f("w", size=10.0)]), "has an impossible size 10.0"),
    ("chunks short", doc([f("w", size=10, chunks=[[OID, 4]])]), "'w' chunks do not add up to its size"),
    ("chunks long", doc([f("w", size=10, chunks=[[OID, 8], [OID2, 8]])]), "chunks do not add up"),
    ("no chunk list", doc([{"path": "w", "type": "file", "mode": 0o644, "size": 0}]), "has no chunk list"),
    ("chunk id not hex", doc([f("w", chunks=[["zz" * 32, 10]])]), "'w' has a malformed chunk"),
    ("chunk id short", doc([f("w", chunks=[[OID[:10], 10]])]), "has a malformed chunk"),
    ("chunk id newline", doc([f("w", chunks=[[OID + "\n", 10]])]), "has a malformed chunk"),
    ("chunk id upper", doc([f("w", chunks=[[OID.upper(), 10]])]), "has a malformed chunk"),
    ("chunk size zero", doc([f("w", size=0, chunks=[[OID, 0]])]), "has a malformed chunk"),
    ("chunk too big", doc([f("w", size=1 << 30, chunks=[[OID, 1 << 30]])]), "has a malformed chunk"),
    ("chunk not a pair", doc([f("w", chunks=[[OID, 5, 5]])]), "has a malformed chunk"),
    # modes, types, fields
    ("negative mode", doc([{**d("a"), "mode": -1}]), "has an impossible mode -1"),
    ("mode too big", doc([{**d("a"), "mode": 0o17777}]), "has an impossible mode"),
    ("bool mode", doc([{**d("a"), "mode": True}]), "has a bad path, type or mode"),
    ("unknown type", doc([{"path": "p", "type": "fifo", "mode": 0o644}]), "has a bad path, type or mode"),
    ("unknown field", doc([f("w", owner="root")]), "manifest entry 'w' has unknown fields ['owner']"),
    ("target on a file", doc([f("w", target="x")]), "has unknown fields ['target']"),
    # documents
    ("truncated JSON", b'{"format": 1, "root": "dir", "entr', "manifest is not valid JSON"),
    ("not UTF-8", b"\xff\xfe\x00garbage", "manifest is not valid JSON"),
    ("empty", b"", "manifest is not valid JSON"),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, "manifest"),
    ("huge number", b'{"format": 1, "root": "dir", "entries": [], "n": ' + b"9" * 5000 + b"}", "manifest"),
    ("null", b"null", "manifest has an unknown format"),
    ("list", b"[]", "manifest has an unknown format"),
    ("format 2", doc([], format=2), "manifest has an unknown format"),
    ("bad root", doc([], root="tree"), "manifest has a bad root kind or entry list"),
    ("entries a dict", doc({"w": f("w")}), "manifest has a bad root kind or entry list"),
    ("entry a number", doc([1]), "manifest entry is not an object"),
    ("entry a string", doc(["w.bin"]), "manifest entry is not an object"),
    ("entry null", doc([None]), "manifest entry is not an object"),
    ("entry a list", doc([["w.bin", "file"]]), "manifest entry is not an object"),
]


@pytest.mark.parametrize(("data", "message"), [(data, m) for _, data, m in HOSTILE], ids=[c for c, _, _ in HOSTILE])
def test_a_hostile_manifest_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        manifest.decode(data)
    assert message in caught.value.message


# ---- fuzz ------------------------------------------------------------------------------------

PATHS = st.one_of(
    st.sampled_from(
        [
            "a",
            "b",
            "a/b",
            "a/b/c",
            "..",
            "../x",
            "a/..",
            "/abs",
            ".",
            "",
            "l",
            "l/x",
            "a//b",
            "\\x",
            "\udcff",
            "\ud800",
            "a\0",
        ]
    ),
    st.text(alphabet="ab./\\\0", max_size=8),
)
TARGETS = st.one_of(st.sampled_from([".", "..", "a", "b/..", "../a", "/", "a/../..", "l/.."]), st.text(max_size=6))
INTS = st.one_of(st.integers(-3, 3), st.integers(0, 1 << 62), st.sampled_from([0o644, 0o755, 0o7777, 0o10000]))
SCALARS = st.one_of(st.none(), st.booleans(), INTS, st.floats(allow_nan=False), st.text(max_size=6), PATHS)
JSONISH = st.recursive(
    SCALARS,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids, max_size=4),
    max_leaves=12,
)
CHUNK = st.one_of(st.tuples(st.sampled_from([OID, OID2, "zz", OID + "\n"]), INTS).map(list), JSONISH)


@st.composite
def entries(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["file", "dir", "symlink", "fifo", None]))
    item: dict[str, Any] = {"path": draw(PATHS), "type": kind, "mode": draw(INTS)}
    if kind == "file" or draw(st.booleans()):
        item["size"] = draw(INTS)
        item["chunks"] = draw(st.lists(CHUNK, max_size=3))
    if kind == "symlink" or draw(st.integers(0, 9)) == 0:
        item["target"] = draw(TARGETS)
    if draw(st.integers(0, 9)) == 0:
        item[draw(st.text(max_size=4))] = draw(JSONISH)
    return item


LINK_TARGETS = st.lists(st.sampled_from(["a", "b", "d", "x", "..", "..", ".", "."]), min_size=1, max_size=3).map(
    "/".join
)


@st.composite
def link_trees(draw: st.DrawFn) -> Any:
    """Well-formed folders made mostly of links: the parser accepts many, so the escape oracle gets work."""
    items: list[dict[str, Any]] = [d("d")] if draw(st.booleans()) else []
    paths = draw(st.lists(st.sampled_from(["a", "b", "d/x"]), min_size=1, max_size=3, unique=True))
    items += [link(p, draw(LINK_TARGETS)) for p in paths if p != "d" or not items]
    if draw(st.booleans()):
        items.append(f("d/w" if items and items[0]["path"] == "d" else "w"))
    return {"format": 1, "root": "dir", "entries": draw(st.permutations(items))}


DOCS = st.one_of(
    link_trees(),
    st.builds(
        lambda es, root: {"format": 1, "root": root, "entries": es},
        st.lists(st.one_of(entries(), JSONISH), max_size=6),
        st.sampled_from(["dir", "file", "x"]),
    ),
    st.dictionaries(st.sampled_from(["format", "root", "entries"]), JSONISH),
    JSONISH,
).map(lambda value: json.dumps(value).encode())


def _escaping_links(decoded: list[amber.FileEntry]) -> list[str]:
    """Links that leave the folder once written to disk, as the kernel resolves them (the oracle)."""
    with tempfile.TemporaryDirectory() as tmp:
        top = os.path.realpath(os.path.join(tmp, "m"))
        os.mkdir(top)
        for e in sorted(decoded, key=lambda e: e.path.count("/")):
            if e.type == "dir":
                os.mkdir(os.path.join(top, e.path))
            elif e.type == "file":
                open(os.path.join(top, e.path), "wb").close()
        links = [e for e in decoded if e.type == "symlink"]
        for e in links:
            os.symlink(e.target or "", os.path.join(top, e.path))
        resolved = {e.path: os.path.realpath(os.path.join(top, e.path)) for e in links}
        return sorted(p for p, real in resolved.items() if real != top and not real.startswith(top + os.sep))


def _check_decoded(root: str, decoded: list[amber.FileEntry]) -> None:
    assert root in ("dir", "file")
    paths = [e.path for e in decoded]
    assert len(paths) == len(set(paths))
    for e in decoded:
        manifest.check_path(e.path)
        if e.type == "file":
            assert sum(size for _, size in e.chunks) == e.size
    if root == "dir":
        assert _escaping_links(decoded) == []


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(DOCS, st.binary(max_size=200)))
def test_fuzzed_manifests_decode_safely_or_raise_invalid_input(data: bytes) -> None:
    try:
        root, decoded = manifest.decode(data)
    except InvalidInput as exc:
        assert exc.message.startswith(("manifest", "symlink", "a single-file manifest"))
        return
    _check_decoded(root, decoded)


def test_no_pair_of_small_links_escapes() -> None:
    """Exhaustive where fuzzing is thin: two links (and a folder d) with every target of up to two parts."""
    parts = ["a", "b", "d", "x", ".", ".."]
    targets = parts + [f"{p}/{q}" for p in parts for q in parts]
    accepted = 0
    for first, second in (("a", "b"), ("a", "d/x"), ("b", "d/x")):
        for t1, t2 in itertools.product(targets, repeat=2):
            try:
                _, decoded = manifest.decode(doc([d("d"), link(first, t1), link(second, t2)]))
            except InvalidInput:
                continue
            accepted += 1
            assert _escaping_links(decoded) == [], f"{first} -> {t1}, {second} -> {t2}"
    print(f"\nlink pairs: {3 * len(targets) ** 2} tried, {accepted} accepted, none escapes")
    assert accepted > 500


# ---- folders ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "target"),
    [("escape", "/etc"), ("escape", "../outside"), ("deep/escape", "../../outside"), ("hop", "base/..")],
    ids=["absolute", "parent", "deep-parent", "through-another-link"],
)
def test_a_snapshot_refuses_a_link_out_of_the_folder(work: Path, name: str, target: str) -> None:
    amber.Repo.init(work).close()
    folder = work / "m"
    files: dict[str, bytes | tuple[str, str]] = {"w.bin": b"weights", "deep/keep.txt": b"k", "base": ("link", ".")}
    write_tree(folder, {**files, name: ("link", target)})
    proc = amber_cli("snapshot", "m", cwd=work)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"symlink '{name}' points outside the folder" in one_error(proc)
    with amber.Repo(work) as repo:
        assert repo.versions() == []


ODD_NAMES = [
    "x" * 255,
    "é" * 127 + "x",  # 255 bytes of UTF-8
    "line\nbreak",
    " spaced  name ",
    "-rf",
    "--help",
    "tab\there",
    "quote'\"",
    "émoji-🙂",
]


def _round_trip(work: Path, names: list[str]) -> None:
    amber.Repo.init(work).close()
    folder = work / "m"
    files: dict[str, bytes | tuple[str, str]] = {name: name.encode("utf-8", "surrogateescape") * 3 for name in names}
    files.update({f"{names[0][:200]}-dir/{n}": b"nested" for n in names[:3]})
    files["link-to-odd"] = ("link", names[-1])
    tree = write_tree(folder, files)
    snap = amber_cli("snapshot", "m", cwd=work)
    assert snap.returncode == 0, snap.stderr
    out = amber_cli("export", "m:v1", "out", cwd=work)
    assert out.returncode == 0, out.stderr
    assert tree == tree_bytes(work / "out")
    assert sorted(os.listdir(os.fsencode(folder))) == sorted(os.listdir(os.fsencode(work / "out")))


def test_long_and_odd_names_round_trip(work: Path) -> None:
    _round_trip(work, ODD_NAMES)


def test_names_that_are_not_utf8_round_trip(work: Path) -> None:
    names = [os.fsdecode(b"bad-\xff\xfe-bytes"), os.fsdecode(b"\xe9t\xe9-latin1"), "plain"]
    _round_trip(work, names)
