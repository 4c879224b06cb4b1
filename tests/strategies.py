"""Hypothesis strategies shared by the property tests."""

from __future__ import annotations

from hypothesis import strategies as st

# names that exercise encodings and shells, but are valid on Linux filesystems
names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"),
    min_size=1,
    max_size=40,
).filter(lambda n: n not in (".", "..", ".amber") and len(n.encode()) <= 200)

contents = st.one_of(
    st.binary(max_size=2000),
    st.builds(lambda n, b: bytes([b]) * n, st.integers(0, 3_000_000), st.integers(0, 255)),
)

modes = st.sampled_from([0o644, 0o600, 0o755, 0o700, 0o444])


@st.composite
def trees(draw: st.DrawFn, depth: int = 3) -> dict[str, object]:
    """A folder as a dict: name -> bytes (file, with mode) | dict (folder) | ("link", target)."""
    out: dict[str, object] = {}
    for name in draw(st.lists(names, max_size=6, unique_by=lambda n: n.lower())):
        kind = draw(st.sampled_from(["file", "file", "dir", "link"] if depth else ["file"]))
        if kind == "file":
            out[name] = (draw(contents), draw(modes))
        elif kind == "dir":
            out[name] = draw(trees(depth=depth - 1))
        else:
            out[name] = ("link", draw(st.sampled_from([".", "x", "../" * 0 + "sibling"])))
    return out
