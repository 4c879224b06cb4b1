"""regions.layout: cover the file, keep tensors apart, fold small neighbours."""

from __future__ import annotations

import pytest

from amber.formats import PIECE, Region
from amber.formats.regions import SMALL, Malformed, Span, covers, layout, opaque


def test_empty_file_has_no_regions() -> None:
    assert opaque(0) == []
    assert layout([], 0) == []


def test_gaps_become_opaque_regions_and_tensors_keep_their_bytes() -> None:
    big = SMALL * 2
    spans = [Span(100, big, 4), Span(100 + big + 8, big, 2)]
    size = 100 + 2 * big + 8 + 50
    assert [
        Region(0, 100, 0),
        Region(100, big, 4),
        Region(100 + big, 8, 0),
        Region(108 + big, big, 2),
        Region(108 + 2 * big, 50, 0),
    ] == layout(spans, size)


def test_small_runs_fold_but_never_mix_itemsizes() -> None:
    # header, two small f32 tensors, a gap, a small f16 tensor, a small f16 tensor
    spans = [Span(10, 40, 4), Span(50, 40, 4), Span(100, 20, 2), Span(120, 20, 2)]
    assert [Region(0, 100, 4), Region(100, 40, 2)] == layout(spans, 140)  # the gap joins the run before it


def test_non_float_tensor_does_not_join_a_float_run() -> None:
    spans = [Span(0, 40, 4), Span(40, 40, 0), Span(80, 40, 0)]
    assert [Region(0, 40, 4), Region(40, 80, 0)] == layout(spans, 120)


def test_large_opaque_bytes_are_content_defined() -> None:
    spans = [Span(SMALL, SMALL, 4)]
    assert [Region(0, SMALL, 0, cdc=True), Region(SMALL, SMALL, 4)] == layout(spans, 2 * SMALL)


def test_tail_after_the_parsed_part_can_be_content_defined() -> None:
    assert [Region(0, 10, 4), Region(10, 90, 0, cdc=True)] == layout([Span(0, 10, 4)], 100, tail_cdc=True)


def test_a_run_never_grows_past_one_piece() -> None:
    n = PIECE // (SMALL - 1) + 2
    spans = [Span(i * (SMALL - 1), SMALL - 1, 4) for i in range(n)]
    regions = layout(spans, n * (SMALL - 1))
    assert covers(regions, n * (SMALL - 1))
    assert len(regions) == 2
    assert all(r.length <= PIECE for r in regions)


@pytest.mark.parametrize(
    "spans",
    [[Span(0, 10), Span(5, 10)], [Span(0, 101)], [Span(90, 20)]],
    ids=["overlap", "past-end", "straddles-end"],
)
def test_spans_that_overlap_or_leave_the_file_are_malformed(spans: list[Span]) -> None:
    with pytest.raises(Malformed):
        layout(spans, 100)


def test_covers_checks_contiguity_and_total() -> None:
    assert covers([Region(0, 5), Region(5, 5)], 10)
    assert not covers([Region(0, 5), Region(6, 4)], 10)
    assert not covers([Region(0, 5)], 10)
    assert not covers([Region(0, 0), Region(0, 10)], 10)
    assert covers([], 0)
