"""GGUF files written by the gguf package (llama.cpp's writer): tensor regions and metadata."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from amber.formats import Detected, Region, detect, plan_regions
from amber.formats.regions import SMALL, covers


def _write(path: Path) -> None:
    rng = np.random.default_rng(0)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-llama")
    writer.add_context_length(64)
    writer.add_block_count(1)
    writer.add_token_list(["<s>", "</s>", "a", "b"])
    writer.add_tensor("token_embd.weight", rng.standard_normal((256, 128)).astype(np.float32))
    writer.add_tensor("blk.0.attn_norm.weight", np.ones(64, np.float32))
    writer.add_tensor("blk.0.ffn_up.weight", rng.standard_normal((512, 128)).astype(np.float16))
    q8 = gguf.quants.quantize(rng.standard_normal((256, 256)).astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor("blk.0.ffn_down.weight", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_gguf_regions_match_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "tiny.gguf"
    _write(path)
    regions = plan_regions(str(path), path.stat().st_size)
    assert covers(regions, path.stat().st_size)
    reader = gguf.GGUFReader(str(path))
    itemsizes = {"token_embd.weight": 4, "blk.0.ffn_up.weight": 2, "blk.0.ffn_down.weight": 0}
    for tensor in reader.tensors:
        if tensor.n_bytes >= SMALL:
            assert Region(tensor.data_offset, tensor.n_bytes, itemsizes[tensor.name]) in regions, tensor.name
    assert {t.name for t in reader.tensors if t.n_bytes >= SMALL} == set(itemsizes)


def test_gguf_is_detected_with_its_architecture(tmp_path: Path) -> None:
    path = tmp_path / "tiny.gguf"
    _write(path)
    expected = {
        "parameters": 256 * 128 + 64 + 512 * 128 + 256 * 256,
        "dtype": "float16",  # the most elements: 512 x 128
        "gguf_version": 3,
        "architecture": "llama",
        "name": "tiny-llama",
    }
    assert detect(str(path)) == Detected("gguf", None, {}, expected)
    assert detect(str(tmp_path)) == Detected("gguf", None, {}, expected)
