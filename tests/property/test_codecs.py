"""Byte grouping and both delta kinds round-trip any float tensor bit for bit."""

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
    if codec in codecs.DELTAS:
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
    assert codec == codecs.XOR_DELTA
    assert sum(map(len, parts)) < 0.8 * whole


@settings(max_examples=150, deadline=None)
@given(case=floats, other=st.binary(min_size=0, max_size=8 * 3001))
def test_subtract_and_add_are_inverse_for_any_bit_patterns(case: tuple[str, np.ndarray, int], other: bytes) -> None:
    name, array, tail = case
    raw = raw_bytes(array, tail)
    base = (other * (len(raw) // max(1, len(other)) + 1))[: len(raw)] if other else bytes(len(raw))
    itemsize = DTYPES[name][1]
    diff = codecs.subtract(raw, base, itemsize)
    assert len(diff) == len(raw)
    assert codecs.add(diff, base, itemsize) == raw


@settings(max_examples=100, deadline=None)
@given(case=floats, seed=st.integers(0, 2**32 - 1))
def test_a_sub_delta_decodes_to_its_raw_bytes(case: tuple[str, np.ndarray, int], seed: int) -> None:
    name, array, tail = case
    raw = raw_bytes(array, tail)
    noise = np.random.default_rng(seed).integers(0, 3, len(raw), dtype=np.uint8).tobytes()
    base = codecs.subtract(raw, noise, DTYPES[name][1])  # raw = base + small integers
    payload = codecs._float_payload(codecs.subtract(raw, base, DTYPES[name][1]), DTYPES[name][1])
    blob = b"".join(codecs._delta_parts(codecs.SUB_DELTA, DTYPES[name][1], len(raw), "00" * 32, payload))
    assert codecs.decode(blob, base) == raw


def test_a_second_moment_is_coded_as_a_difference_and_weights_as_an_xor() -> None:
    rng = np.random.default_rng(1)
    v = (rng.standard_normal(1 << 20) * 1e-4).astype(np.float32) ** 2  # Adam exp_avg_sq: positive, spread
    grown = (v * (1 + 0.04 * np.abs(rng.standard_normal(v.size)))).astype(np.float32)  # a few percent up
    w = (rng.standard_normal(1 << 20) * 0.02).astype(np.float32)
    nudged = (w - 5e-6 * rng.standard_normal(w.size).astype(np.float32)).astype(np.float32)
    v_codec, v_parts = codecs.encode_delta(grown.tobytes(), 4, "00" * 32, v.tobytes())
    w_codec, w_parts = codecs.encode_delta(nudged.tobytes(), 4, "00" * 32, w.tobytes())
    assert (v_codec, w_codec) == (codecs.SUB_DELTA, codecs.XOR_DELTA)
    assert codecs.decode(b"".join(v_parts), v.tobytes()) == grown.tobytes()
    assert codecs.decode(b"".join(w_parts), w.tobytes()) == nudged.tobytes()
    xor_size = len(codecs._float_payload(codecs.xor(grown.tobytes(), v.tobytes()), 4))
    assert sum(map(len, v_parts)) < xor_size  # the choice was worth making


def test_a_delta_that_cannot_win_is_coded_whole_without_a_second_encode() -> None:
    rng = np.random.default_rng(2)
    m = rng.standard_normal(1 << 20).astype(np.float32)  # Adam exp_avg: new numbers at every save
    fresh = rng.standard_normal(1 << 20).astype(np.float32)
    codec, parts = codecs.encode_delta(fresh.tobytes(), 4, "00" * 32, m.tobytes())
    assert codec == codecs.GROUPED
    assert codecs.decode(b"".join(parts)) == fresh.tobytes()
