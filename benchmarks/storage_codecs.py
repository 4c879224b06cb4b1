"""What the float codecs can achieve on a checkpoint sequence, measured on its tensors.

    python benchmarks/storage_codecs.py SEQUENCE_DIR KIND [--sample-mb N]     (prints JSON)

The tensors of every version are loaded (safetensors, the optimizer's
``exp_avg``/``exp_avg_sq`` from ``optimizer.pt``, DeepFaceLab's pickled
arrays), grouped into classes (weights, Adam moments, RMSprop accumulators),
and the same evenly spaced windows of each class (``--sample-mb`` per version)
are coded with each scheme below, over the whole sequence in order. The
result is each scheme's stored/raw for that class: what a codec achieves on
this data, independent of chunking, catalog and per-object overhead.

Schemes (fp32 elements; "grouped" = 4 byte planes, one zstd frame):

* ``zstd3``: plain zstd -3 of the raw bytes, every version whole.
* ``grouped-z1``: Amber's whole-chunk codec (grouped, zstd -1).
* ``split-z1``: the exponent as its own plane, sign+mantissa as 3 planes,
  each plane its own zstd -1 frame, stored raw when that is not smaller.
* ``star8-z1``: Amber's delta scheme: the first version whole, the next 8
  XOR'd against it (grouped, zstd -1, or whole if smaller), then a new keyframe.
* ``star4-z1``, ``star2-z1``: the same with keyframes every 4 and 2 versions.
* ``chain-z1``, ``chain-z3``: every version XOR'd against its parent
  (unbounded chain, or reverse deltas with the newest whole): the floor of
  XOR coding, at the price of restore cost growing with depth.
* ``chain-split-z1``: chain deltas with the plane-split layout above.
* ``chain-sub-z1``: every version as the integer difference of its bit
  patterns from its parent's (grouped, zstd -1) instead of XOR.
* ``star4-best``, ``chain-best``: per version the smallest of XOR, integer
  difference and whole (what trying both delta kinds per chunk would give).

A version byte-identical to an earlier one costs nothing in every scheme
(dedup). ``entropy`` gives, for the newest pair, the order-0 entropy of each
byte plane of the XOR delta (bits per byte; 8 = incompressible).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import zstandard

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import storage_build  # noqa: E402

WINDOW = 1 << 20
_Z = {level: zstandard.ZstdCompressor(level=level) for level in (1, 3)}


def _z(data: bytes, level: int = 1) -> int:
    return len(_Z[level].compress(data))


def grouped(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a.view(np.uint8).reshape(-1, 4).T).tobytes()


def whole_z1(a: np.ndarray) -> int:
    return min(_z(grouped(a)), a.nbytes)


def split_planes(a: np.ndarray) -> list[bytes]:
    u = a.view(np.uint32)
    exponent = ((u >> 23) & 0xFF).astype(np.uint8)
    rest = ((u >> 31) << 23) | (u & 0x7FFFFF)
    planes = rest.view(np.uint8).reshape(-1, 4).T[:3]
    return [exponent.tobytes(), *(np.ascontiguousarray(p).tobytes() for p in planes)]


def split_z1(a: np.ndarray) -> int:
    return sum(min(_z(p), len(p)) for p in split_planes(a))


def xor(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a.view(np.uint32) ^ b.view(np.uint32)).view(np.float32)


def sub(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a.view(np.int32) - b.view(np.int32)).view(np.float32)


def scheme_sizes(versions: list[np.ndarray]) -> dict[str, int]:
    """Stored bytes of the whole sequence under each scheme."""
    seen: list[np.ndarray] = []
    fresh = []
    for v in versions:
        fresh.append(not any(np.array_equal(v, s) for s in seen))
        seen.append(v)

    def each(cost: Callable[[int], int]) -> int:
        return sum(cost(i) for i in range(len(versions)) if fresh[i])

    def star(k: int) -> Callable[[int], int]:
        def cost(i: int) -> int:
            key = i - i % (k + 1)
            if i == key:
                return whole_z1(versions[i])
            return min(_z(grouped(xor(versions[i], versions[key]))), whole_z1(versions[i]))

        return cost

    def chain(delta: Callable[[np.ndarray, np.ndarray], np.ndarray], level: int = 1, split: bool = False):  # type: ignore[no-untyped-def]
        def cost(i: int) -> int:
            if i == 0:
                return split_z1(versions[0]) if split else whole_z1(versions[0])
            d = delta(versions[i], versions[i - 1])
            return split_z1(d) if split else min(_z(grouped(d), level), versions[i].nbytes)

        return cost

    def best(parent: Callable[[int], int]) -> Callable[[int], int]:
        def cost(i: int) -> int:
            v, whole = versions[i], whole_z1(versions[i])
            p = parent(i)
            if p == i:
                return whole
            b = versions[p]
            return min(whole, _z(grouped(xor(v, b))), _z(grouped(sub(v, b))))

        return cost

    return {
        "zstd3": each(lambda i: min(_z(versions[i].tobytes(), 3), versions[i].nbytes)),
        "grouped-z1": each(lambda i: whole_z1(versions[i])),
        "split-z1": each(lambda i: split_z1(versions[i])),
        "star8-z1": each(star(8)),
        "star4-z1": each(star(4)),
        "star2-z1": each(star(2)),
        "chain-z1": each(chain(xor)),
        "chain-z3": each(chain(xor, 3)),
        "chain-split-z1": each(chain(xor, split=True)),
        "chain-sub-z1": each(chain(sub)),
        "star4-best": each(best(lambda i: i - i % 5)),
        "chain-best": each(best(lambda i: max(0, i - 1))),
    }


def plane_entropy(d: np.ndarray) -> list[float]:
    """Order-0 entropy (bits per byte) of byte planes 0 (lowest) .. 3 of ``d``."""
    out = []
    for plane in d.view(np.uint8).reshape(-1, 4).T:
        counts = np.bincount(plane, minlength=256).astype(np.float64)
        p = counts[counts > 0] / plane.size
        out.append(round(float(-(p * np.log2(p)).sum()), 3))
    return out


def _best_of(fn: Callable[[], object], size: int, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return round(size / best / 1e6, 1)


def speeds(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Single-thread MB/s (best of 3) of Amber's own codec calls on 4 MiB of this class, and of
    the steps inside them; ``ungroup-per-plane`` is an alternative ungrouping."""
    from amber.store import codecs

    raw, base = a[: 1 << 20].tobytes(), b[: 1 << 20].tobytes()
    n = len(raw)
    _, whole = codecs.encode(raw, 4)
    blob = b"".join(whole)
    planes = grouped(a[: 1 << 20])
    out = {
        "amber encode (whole)": _best_of(lambda: codecs.encode(raw, 4), n),
        "amber encode_delta": _best_of(lambda: codecs.encode_delta(raw, 4, "00" * 32, base), n),
        "amber decode (whole)": _best_of(lambda: codecs.decode(blob), n),
        "group_bytes": _best_of(lambda: codecs.group_bytes(raw, 4), n),
        "ungroup_bytes": _best_of(lambda: codecs.ungroup_bytes(planes, 4), n),
        "ungroup-per-plane": _best_of(lambda: ungroup_per_plane(planes, 4), n),
        "zstd-1 of grouped": _best_of(lambda: _z(planes), n),
    }
    assert ungroup_per_plane(planes, 4) == raw
    return out


def ungroup_per_plane(data: bytes, k: int) -> bytes:
    """Elements from byte planes, one strided copy per plane (vs one transposing copy)."""
    n = len(data) // k
    src = np.frombuffer(data, np.uint8, count=n * k).reshape(k, n)
    out = np.empty((n, k), np.uint8)
    for i in range(k):
        out[:, i] = src[i]
    return out.tobytes() + data[n * k :]


# ---- reading the tensors of one version, by class --------------------------------------------


def _flat(arrays: list[np.ndarray]) -> np.ndarray:
    parts = [np.ascontiguousarray(a, dtype=np.float32).reshape(-1) for a in arrays if a.dtype == np.float32]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def _safetensors(path: str) -> list[np.ndarray]:
    from safetensors.numpy import load_file

    return list(load_file(path).values())


def _adam(path: str) -> dict[str, list[np.ndarray]]:
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)["state"]
    out: dict[str, list[np.ndarray]] = {"adam exp_avg": [], "adam exp_avg_sq": []}
    for key in sorted(state):
        out["adam exp_avg"].append(state[key]["exp_avg"].numpy())
        out["adam exp_avg_sq"].append(state[key]["exp_avg_sq"].numpy())
    return out


def _dfl(folder: str) -> dict[str, list[np.ndarray]]:
    out: dict[str, list[np.ndarray]] = {"weights": [], "rmsprop ms": []}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".npy"):
            with open(os.path.join(folder, name), "rb") as fh:
                arrays = pickle.load(fh)  # files this benchmark wrote itself
            out["rmsprop ms" if name.endswith("_opt.npy") else "weights"].extend(arrays.values())
    return out


def classes(folder: str, kind: str) -> dict[str, list[np.ndarray]]:
    if kind == "dfl":
        return _dfl(folder)
    weights = "weights" if kind == "gpt2" else "base weights (frozen)"
    out = {weights: _safetensors(os.path.join(folder, "model.safetensors"))}
    if kind == "lora":
        out["adapter"] = _safetensors(os.path.join(folder, "adapter_model.safetensors"))
    out.update(_adam(os.path.join(folder, "optimizer.pt")))
    return out


def sample(a: np.ndarray, cap: int) -> np.ndarray:
    """Evenly spaced 1 MiB windows of ``a`` totalling at most ``cap`` bytes (same positions for equal sizes)."""
    if a.nbytes <= cap:
        return a
    per = WINDOW // 4
    n = cap // WINDOW
    starts = np.linspace(0, a.size - per, n).astype(np.int64)
    return np.concatenate([a[s : s + per] for s in starts])


def analyse(seq_dir: str, kind: str, cap: int) -> dict[str, Any]:
    folders = storage_build.checkpoints(seq_dir)
    per_class: dict[str, list[np.ndarray]] = {}
    full_bytes: dict[str, int] = {}
    file_bytes = 0
    for folder in folders:
        file_bytes += sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
        for name, arrays in classes(folder, kind).items():
            flat = _flat(arrays)
            full_bytes[name] = full_bytes.get(name, 0) + flat.nbytes
            per_class.setdefault(name, []).append(sample(flat, cap))
    out: dict[str, Any] = {"raw_bytes": file_bytes, "classes": {}}
    for name, versions in per_class.items():
        raw = sum(v.nbytes for v in versions)
        sizes = scheme_sizes(versions)
        newest, parent = versions[-1], versions[-2]
        out["classes"][name] = {
            "bytes": full_bytes[name],
            "share": round(full_bytes[name] / file_bytes, 4),
            "sampled_bytes": raw,
            "ratio": {k: round(v / raw, 4) for k, v in sizes.items()},
            "xor_entropy_bits": plane_entropy(xor(newest, parent)),
            "entropy_bits": plane_entropy(newest),
            "changed_elements": round(float(np.mean(newest.view(np.uint32) != parent.view(np.uint32))), 4),
            "median_relative_change": _relative_change(newest, parent),
            "mb_per_s_one_thread": speeds(newest, parent),
        }
    out["estimate"] = _estimate(out)
    return out


def _relative_change(a: np.ndarray, b: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.abs(a - b) / np.abs(b)
    r = r[np.isfinite(r) & (a != b)]
    return float(np.median(r)) if r.size else 0.0


def _estimate(result: dict[str, Any]) -> dict[str, float]:
    """Whole-sequence stored/raw per scheme: tensor classes at their ratio, other bytes whole."""
    raw = result["raw_bytes"]
    tensor = sum(c["bytes"] for c in result["classes"].values())
    other = max(0, raw - tensor)
    schemes = next(iter(result["classes"].values()))["ratio"].keys()
    return {s: round((other + sum(c["bytes"] * c["ratio"][s] for c in result["classes"].values())) / raw, 4)
            for s in schemes}  # fmt: skip


def dfl_sensitivity(seq_dir: str, cap: int, iters: tuple[int, ...] = (1, 5, 25, 100, 1000)) -> dict[str, Any]:
    """Sequence stored/raw (weights + RMSprop accumulators) if each save held ``iters`` iterations.

    Starts from windows of the sequence's first save and applies storage_build's
    update model, so only the amount of training between saves differs.
    """
    first = _dfl(storage_build.checkpoints(seq_dir)[0])
    w0 = sample(_flat(first["weights"]), cap // 2)
    ms0 = sample(_flat(first["rmsprop ms"]), cap // 2)
    step = storage_build.DFL_STEP
    out: dict[str, Any] = {}
    for n in iters:
        rng = np.random.default_rng(1)
        w, ms = w0.copy(), ms0.copy()
        ws, mss = [w.copy()], [ms.copy()]
        keep = np.float32(step["rho"] ** n)
        for _ in range(len(storage_build.checkpoints(seq_dir)) - 1):
            g = rng.standard_normal(w.shape, dtype=np.float32) * np.float32(0.01)
            ms = ms * keep + (np.float32(1) - keep) * g * g
            w = w - np.float32(step["lr"] * np.sqrt(n)) * rng.standard_normal(w.shape, dtype=np.float32)
            ws.append(w.copy())
            mss.append(ms.copy())
        sw, sm = scheme_sizes(ws), scheme_sizes(mss)
        raw = sum(v.nbytes for v in ws) + sum(v.nbytes for v in mss)
        wraw = sum(v.nbytes for v in ws)
        keys = ("grouped-z1", "star8-z1", "star4-best", "chain-best")
        out[str(n)] = {"all": {k: round((sw[k] + sm[k]) / raw, 4) for k in keys},
                       "weights": {k: round(sw[k] / wraw, 4) for k in keys}}  # fmt: skip
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sequence")
    ap.add_argument("kind", choices=["gpt2", "lora", "dfl"])
    ap.add_argument("--sample-mb", type=float, default=8)
    a = ap.parse_args(argv)
    cap = max(WINDOW, int(a.sample_mb * WINDOW))
    result = analyse(a.sequence, a.kind, cap)
    if a.kind == "dfl":
        result["iterations_per_save"] = dfl_sensitivity(a.sequence, cap)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
