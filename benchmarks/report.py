"""Print the benchmark's results: the table, the goals (PASS/MISS), the machine's limits."""

from __future__ import annotations

import sys
from typing import Any

import limits

MB = 1e6
GOAL_UNCHANGED_SPEEDUP = 20.0  # re-snapshot of an unchanged folder, vs cp -a + sync
GOAL_FIRST_RATIO = 2.0  # first snapshot time / cp time, at most
GOAL_RESTORE_RATIO = 1.0  # restore time / cp time, at most
GOAL_RSS_MB = 300.0


def say(text: str) -> None:
    sys.stdout.flush()
    print(text, file=sys.stderr, flush=True)


def _mb(n: float) -> str:
    return f"{n / MB:,.0f} MB"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def steps_table(res: dict[str, Any]) -> str:
    base = res["baseline"]["seconds"]
    size = res["model"]["bytes"]
    rows = [["step", "seconds", "median", "MB/s", "vs cp -a + sync", "peak RSS", "CPU s", "other load"]]
    rows.append(
        [
            "cp -a + sync (baseline)",
            f"{base:.2f}",
            f"{res['baseline']['median']:.2f}",
            f"{size / base / MB:,.0f}",
            "1.00×",
            "-",
            f"{res['baseline']['cpu_seconds']:.1f}",
            f"{res['baseline']['others_cores']:.2f} cores",
        ]
    )
    names = {
        "snapshot_first": "amber snapshot, first",
        "snapshot_unchanged": "amber snapshot, unchanged",
        "snapshot_changed": "amber snapshot, 1 file changed",
        "restore": "amber restore v1 (force)",
    }
    for key, label in names.items():
        s = res["amber"][key]
        t = s["seconds"]
        ratio = f"{base / t:,.0f}× faster" if key == "snapshot_unchanged" else f"{t / base:.2f}× cp time"
        rows.append(
            [
                label,
                f"{t:.2f}",
                f"{s['median']:.2f}",
                f"{size / t / MB:,.0f}",
                ratio,
                f"{s['peak_rss_mb']:.0f} MB",
                f"{s['cpu_seconds']:.1f}",
                f"{s['others_cores']:.2f} cores",
            ]
        )
    return _table(rows)


def goals(res: dict[str, Any]) -> list[tuple[bool, str]]:
    base = res["baseline"]["seconds"]
    a = res["amber"]
    out = []
    speedup = base / a["snapshot_unchanged"]["seconds"]
    ok = speedup >= GOAL_UNCHANGED_SPEEDUP
    out.append(
        (
            ok,
            f"unchanged re-snapshot ≥ {GOAL_UNCHANGED_SPEEDUP:g}× faster than cp -a + sync: {speedup:,.0f}× "
            + (
                f"({speedup / GOAL_UNCHANGED_SPEEDUP:.1f}× better than the goal)"
                if ok
                else f"(needs {GOAL_UNCHANGED_SPEEDUP / speedup:.2f}× faster)"
            ),
        )
    )
    for key, goal, what in (
        ("snapshot_first", GOAL_FIRST_RATIO, "first snapshot"),
        ("restore", GOAL_RESTORE_RATIO, "restore"),
    ):
        ratio = a[key]["seconds"] / base
        ok = ratio <= goal
        out.append(
            (
                ok,
                f"{what} ≤ {goal:g}× cp time: {ratio:.2f}× "
                + (
                    f"({(goal - ratio) * base:.2f} s to spare)"
                    if ok
                    else f"(needs {ratio / goal:.2f}× faster, {(ratio - goal) * base:.2f} s too slow)"
                ),
            )
        )
    peak_key = max(a, key=lambda k: a[k]["peak_rss_mb"])
    peak = a[peak_key]["peak_rss_mb"]
    ok = peak < GOAL_RSS_MB
    out.append(
        (
            ok,
            f"peak RSS < {GOAL_RSS_MB:g} MB: {peak:.0f} MB in {peak_key} "
            + (f"({GOAL_RSS_MB - peak:.0f} MB headroom)" if ok else f"({peak - GOAL_RSS_MB:.0f} MB over)"),
        )
    )
    return out


def limits_text(res: dict[str, Any]) -> str:
    lim = res["limits"]
    if not lim:
        return "skipped (--skip-limits)"
    rows = [["building block (on a sample of the model)", "1 thread", "2 threads", "ratio", "note"]]
    for name, v in lim["cpu"].items():
        if not v:
            continue
        rows.append(
            [
                name,
                f"{v['mbps_1t']:,.0f} MB/s",
                f"{v['mbps_2t']:,.0f} MB/s" if "mbps_2t" in v else "-",
                f"{v['ratio']:.3f}" if "ratio" in v else "-",
                "",
            ]
        )
    for name, rates in lim["disk"].items():
        runs = f"runs: {', '.join(f'{r:,.0f}' for r in rates)}" if len(rates) > 1 else ""
        rows.append([f"disk write + fsync, {name}", f"{max(rates):,.0f} MB/s", "-", "-", runs])
    return _table(rows)


def floors(res: dict[str, Any]) -> dict[str, float]:
    """Lower bounds on this machine for snapshot and restore, from the measured building blocks."""
    lim = res["limits"]
    if not lim:
        return {}
    cpu, cores = lim["cpu"], res["machine"]["cores"] or 1
    size = res["model"]["bytes"]
    cp_rate = size / res["baseline"]["seconds"] / MB  # cp -a + sync wrote the folder durably too
    disk = max(cp_rate, *(max(r) for r in lim["disk"].values())) * MB
    mix = res["repository"]["codecs"]
    rate = {
        "grouped-zstd": cpu.get(limits.AMBER_CODEC, cpu["grouping + zstd-1"])["mbps_1t"],
        "zstd": cpu["zstd-3"]["mbps_1t"],
        "raw": cpu["zstd-3"]["mbps_1t"],
    }
    chunk_raw = sum(v["raw"] for v in mix.values()) or size
    stored = sum(v["stored"] for v in mix.values()) or size
    compress = (
        sum(v["raw"] / (rate.get(k, rate["grouped-zstd"]) * MB) for k, v in mix.items())
        if mix
        else size / (rate["zstd"] * MB)
    )
    hash_s = chunk_raw / (cpu["blake3"]["mbps_1t"] * MB)
    snap = max((hash_s + compress) / cores, stored / disk)
    unpack = size / (cpu["zstd decompress"]["mbps_1t"] * MB) + size / (cpu["blake3"]["mbps_1t"] * MB)
    restore = max(unpack / cores, size / disk)
    return {"snapshot_first": snap, "restore": restore, "cp": size / (max(lim["disk"]["one file, one fsync"]) * MB)}


def render(res: dict[str, Any]) -> int:
    """Print everything; return the number of missed goals."""
    m, model, repo = res["machine"], res["model"], res["repository"]
    fs = m["filesystem"]
    print(f"\nAmber core benchmark, {res['when']}, Amber at {res.get('amber_source', '?')}")
    print(
        f"machine: {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB RAM, {fs['type']} on {fs['device']} "
        f"({fs['kind']}), Python {m['python']}, kernel {m['kernel']}"
    )
    print(
        f"model:   {_mb(model['bytes'])} in {len(model['files'])} files; changed file: {model['changed_file']} "
        f"({_mb(res['amber']['snapshot_changed']['changed_bytes'])})\n"
    )
    print(steps_table(res))
    print("\nevery run, in seconds (seconds above = the fastest; ratios use it):")
    for key, s in (("cp -a + sync", res["baseline"]), *res["amber"].items()):
        print(f"  {key:<20} {', '.join(f'{t:.2f}' for t in s['runs'])}")
    print(f"restore gave back identical bytes: {'yes' if res['restored_identical'] else 'NO'}")
    print(
        f"repository: {_mb(repo['bytes'])} for a {_mb(model['bytes'])} folder holding 3 versions "
        f"({repo['bytes'] / model['bytes']:.3f}× the folder; on disk, as du counts: {_mb(repo['allocated'])}"
        f" vs {_mb(model['allocated'])})"
    )
    for codec, v in repo["codecs"].items():
        print(
            f"  {codec:>13}: {v['chunks']:>5} chunks, {_mb(v['raw'])} -> {_mb(v['stored'])}"
            f" ({v['stored'] / max(1, v['raw']):.3f})"
        )
    small = res.get("small")
    if small:
        rows = [["peak RSS vs folder size", "first snapshot", "restore"]]
        for size, run in (
            (small["size_bytes"], small),
            (model["bytes"], {"snapshot": res["amber"]["snapshot_first"], "restore": res["amber"]["restore"]}),
        ):
            rows.append(
                [_mb(size), f"{run['snapshot']['peak_rss_mb']:.0f} MB", f"{run['restore']['peak_rss_mb']:.0f} MB"]
            )
        print("\n" + _table(rows))
    print("\nmachine limits\n" + limits_text(res))
    fl = floors(res)
    if fl:
        a = res["amber"]
        print(f"\nfloors from the blocks above ({m['cores']} cores; best write rate seen, cp's included):")
        for key, label in (("snapshot_first", "first snapshot"), ("restore", "restore")):
            t = a[key]["seconds"]
            print(f"  {label:<15} ≥ {fl[key]:5.2f} s   Amber {t:5.2f} s = {fl[key] / t:.0%} of the machine's limit")
        print(
            f"  (the one-file write + fsync test would copy the folder in {fl['cp']:.2f} s;"
            f" cp -a + sync took {res['baseline']['seconds']:.2f} s)"
        )
    print("\ngoals")
    results = goals(res)
    for ok, text in results:
        print(f"  [{'PASS' if ok else 'MISS'}] {text}")
    steps = [res["baseline"], *res["amber"].values()]
    busy = max(s["others_cores"] for s in steps)
    if busy >= 0.25:
        print(f"\nwarning: other processes kept up to {busy:.2f} cores busy during a step; figures may be noisy")
    return sum(1 for ok, _ in results if not ok)
