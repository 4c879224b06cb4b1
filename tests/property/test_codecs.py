"""Byte grouping and XOR deltas round-trip any float tensor bit for bit."""

from __future__ import annotations

import blake3
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from amber.store import codecs

DTYPES = {
    "float16": (np.float16, 2),
    "bfloat16": (np.uint16, 2),  # numpy has no bfloat16: its bit patterns are what matter
    "float32": (np.float32, 4),
    "float64": (np.float64, 8),
}

floats = st.sampled_from(sorted(DTYPES)).flatmap(
    lambda name: st.tuples(
        st.just(name),
        hnp.arrays(
            DTYPES[name][0],
            st.integers(0, 3000),
            # every bit pattern, NaN payloads, infinities and subnormals included
            elements=st.integers(0, 2 ** (8 * DTYPES[name][1]) - 1).map(
                lambda bits, n=name: np.array([bits], dtype=f"u{DTYPES[n][1]}").view(DTYPES[n][0])[0]
            ),
        ),
        st.integers(0, 7),  # odd tails: bytes past the last whole element
    )
)


def raw_bytes(array: np.ndarray, tail: int) -> bytes:
    return array.tobytes() + bytes(range(tail))


@settings(max_examples=300, deadline=None)
@given(case=floats)
def test_whole_chunks_round_trip(case: tuple[str, np.ndarray, int]) -> None:
    name, array, tail = case
    raw = raw_bytes(array, tail)
    itemsize = DTYPES[name][1]
    assert codecs.ungroup_bytes(codecs.group_bytes(raw, itemsize), itemsize) == raw
    codec, parts = codecs.encode(raw, itemsize)
    assert codecs.decode(b"".join(parts)) == raw
    assert codec in (codecs.RAW, codecs.ZSTD, codecs.GROUPED)


@settings(max_examples=300, deadline=None)
@given(case=floats, flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=50))
def test_deltas_round_trip_against_their_base(
    case: tuple[str, np.ndarray, int], flips: list[tuple[int, int]]
) -> None:
    name, array, tail = case
    base = raw_bytes(array, tail)
    changed = bytearray(base)
    for pos, value in flips:  # a training step: some bytes move, most stay
        if changed:
            changed[pos % len(changed)] ^= value
    itemsize = DTYPES[name][1]
    coded = codecs.encode_delta(bytes(changed), itemsize, blake3.blake3(base).hexdigest(), base)
    if len(base) == 0:
        return
    assert coded is not None
    codec, parts = coded
    blob = b"".join(parts)
    if codec == codecs.DELTA:
        assert codecs.base_of(blob) == blake3.blake3(base).hexdigest()
        assert codecs.decode(blob, base) == bytes(changed)
    else:
        assert codecs.decode(blob) == bytes(changed)


def test_a_delta_is_smaller_than_the_whole_chunk_for_a_small_update() -> None:
    rng = np.random.default_rng(0)
    w = (rng.standard_normal(1 << 18) * 0.02).astype(np.float32)
    step = (w - 1e-5 * rng.standard_normal(w.size).astype(np.float32)).astype(np.float32)
    codec, parts = codecs.encode_delta(step.tobytes(), 4, blake3.blake3(w.tobytes()).hexdigest(), w.tobytes())
    whole = sum(map(len, codecs.encode(step.tobytes(), 4)[1]))
    assert codec == codecs.DELTA
    assert sum(map(len, parts)) < 0.8 * whole
