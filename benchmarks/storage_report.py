"""The storage benchmark's verdicts and tables: goals of issue 4, PASS or MISS and by how much."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

MB = 1e6
RESTORES = ("newest", "previous", "oldest")  # the previous (second newest) version is Amber's deepest delta
RATIO_GOALS = {"gpt2": 0.78, "lora": 0.145, "dfl": 0.60}
SNAPSHOT_MBS, SKIP_MBS, RESTORE_MBS, RSS_MB, BORG_FACTOR = 300.0, 1000.0, 250.0, 300.0, 2.0
CODEC_NAMES = {"0": "raw", "1": "zstd", "2": "grouped-zstd", "3": "xor-delta", "4": "sub-delta"}
SCHEMES = ("zstd3", "grouped-z1", "split-z1", "star8-z1", "star4-z1", "star2-z1", "star4-best", "chain-z1",
           "chain-z3", "chain-split-z1", "chain-sub-z1", "chain-best")  # fmt: skip


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def machine(fs: str) -> dict[str, Any]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cores": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem, 1), "filesystem": fs,
            "python": platform.python_version(), "kernel": platform.release()}  # fmt: skip


# ---- figures derived from a tool's run --------------------------------------------------------


def snapshot_mbs(run: dict[str, Any], key: str = "seconds") -> float:
    snaps = run["snapshots"]
    return float(sum(s["bytes"] for s in snaps) / sum(s[key] for s in snaps) / MB)


def mbs(step: dict[str, Any], key: str = "seconds") -> float:
    return float(step["bytes"] / step[key] / MB)


def peak_rss(run: dict[str, Any]) -> float:
    steps = [*run["snapshots"], *(run[f"restore_{w}"] for w in RESTORES)]
    steps += [run[k] for k in ("unchanged", "rewritten") if k in run]
    return float(max(s["peak_rss_mb"] for s in steps))


def busy(run: dict[str, Any]) -> float:
    steps = [*run["snapshots"], *(run[f"restore_{w}"] for w in RESTORES)]
    return float(sum(s["others_busy"] * s["seconds"] for s in steps) / sum(s["seconds"] for s in steps))


# ---- goals ------------------------------------------------------------------------------------


def _goal(goal: str, seq: str, value: float, target: float, unit: str, at_most: bool) -> dict[str, Any]:
    ok = value <= target if at_most else value >= target
    gap = (value - target) / target
    by = f"{gap:+.1%} over" if at_most else f"{-gap:.1%} short"
    if ok:
        by = f"{-gap:.1%} to spare" if at_most else f"{gap:.1%} to spare"
    return {"goal": goal, "sequence": seq, "value": value, "target": target, "unit": unit,
            "verdict": "PASS" if ok else "MISS", "by": by}  # fmt: skip


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    rss = []
    for kind, seq in results["sequences"].items():
        amber = seq["tools"].get("amber")
        if amber is None:
            continue
        if kind in RATIO_GOALS:
            out.append(_goal("stored/raw", kind, amber["stored_bytes"] / seq["raw_bytes"], RATIO_GOALS[kind], "",
                             True))  # fmt: skip
        out.append(_goal("snapshot MB/s (process)", kind, snapshot_mbs(amber), SNAPSHOT_MBS, "MB/s", False))
        out.append(_goal("snapshot MB/s (API call)", kind, snapshot_mbs(amber, "api_seconds"), SNAPSHOT_MBS, "MB/s",
                         False))  # fmt: skip
        borg = seq["tools"].get("borg")
        if borg is not None:
            out.append(_goal("snapshot vs borg (process)", kind, snapshot_mbs(amber) / snapshot_mbs(borg),
                             BORG_FACTOR, "x", False))  # fmt: skip
        for key, label in (("seconds", "process"), ("api_seconds", "API call")):
            out.append(_goal(f"unchanged skip MB/s ({label})", kind, mbs(amber["unchanged"], key), SKIP_MBS, "MB/s",
                             False))  # fmt: skip
        for which in RESTORES:
            for key, label in (("seconds", "process"), ("api_seconds", "API call")):
                out.append(_goal(f"restore {which} MB/s ({label})", kind, mbs(amber[f"restore_{which}"], key),
                                 RESTORE_MBS, "MB/s", False))  # fmt: skip
        rss.append(peak_rss(amber))
    if rss:
        out.append(_goal("peak RSS MB (any step)", "all", max(rss), RSS_MB, "MB", True))
    return out


# ---- rendering --------------------------------------------------------------------------------


def _fmt(value: float, unit: str) -> str:
    if unit == "":
        return f"{value:.3f}"
    if unit == "x":
        return f"{value:.2f}x"
    return f"{value:.0f}"


def render(results: dict[str, Any]) -> None:
    m = results["machine"]
    print(f"\nmachine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, {m['filesystem']}; "
          f"MB = 10^6 bytes; times include process start; restores end with every file fsynced")  # fmt: skip
    a = results["amber"]
    dirty = f" + uncommitted {', '.join(a['uncommitted'])}" if a.get("uncommitted") else ""
    print(f"amber measured: {a['path']}" + (f" (commit {a['commit']}{dirty})" if "commit" in a else ""))
    for kind, seq in results["sequences"].items():
        print()
        print(sequence_table(kind, seq))
        if "amber" in seq["tools"]:
            print(amber_detail(seq))
        if "codecs" in seq:
            print(codec_table(seq["codecs"]))
        if seq.get("what_if"):
            print(what_if_table(seq["what_if"]))
    print()
    print(goal_table(results["goals"]))
    if results.get("quick"):
        print(
            "  --quick: small models and six versions; the goals are set for ten versions of full-size models,\n"
            "  so these verdicts (LoRA's ratio above all: its base is shared by fewer versions) only smoke-test."
        )


def sequence_table(kind: str, seq: dict[str, Any]) -> str:
    raw = seq["raw_bytes"]
    lines = [f"{seq['title']} [{kind}]: {seq['checkpoints']} checkpoints, {raw / MB:.0f} MB raw",
             f"{'tool':<9} {'stored/raw':>10} {'stored MB':>9} {'snap MB/s':>9} {'snap cpu s':>10} "
             + "".join(f"{w + ' s':>11} {'MB/s':>5}" for w in RESTORES)
             + f" {'RSS MB':>6} {'busy':>4}"]  # fmt: skip
    for name, run in seq["tools"].items():
        rs = [run[f"restore_{w}"] for w in RESTORES]
        ok = "" if all(r["identical"] for r in rs) else "  RESTORE DIFFERS"
        cpu = sum(s["cpu_seconds"] for s in run["snapshots"])
        cells = "".join(f"{r['seconds']:>11.2f} {mbs(r):>5.0f}" for r in rs)
        stored = run["stored_bytes"]
        lines.append(f"{name:<9} {stored / raw:>10.3f} {stored / MB:>9.0f} {snapshot_mbs(run):>9.0f} {cpu:>10.1f}"
                     f"{cells} {peak_rss(run):>6.0f} {busy(run):>4.0%}{ok}")  # fmt: skip
    return "\n".join(lines)


def amber_detail(seq: dict[str, Any]) -> str:
    a = seq["tools"]["amber"]
    u, r = a["unchanged"], a["rewritten"]
    restores = ", ".join(f"{w} {mbs(a[f'restore_{w}'], 'api_seconds'):.0f}" for w in RESTORES)
    lines = [
        f"amber API call only: snapshot {snapshot_mbs(a, 'api_seconds'):.0f} MB/s, restore MB/s {restores}; "
        f"interpreter+imports {a['snapshots'][0]['import_rss_mb']:.0f} MB RSS",
        f"amber CPU seconds, API call / whole process: snapshots {_cpu(a['snapshots'])}; restores "
        + ", ".join(f"{w} {_cpu([a[f'restore_{w}']])}" for w in RESTORES),
        f"amber unchanged re-snapshot: {u['seconds']:.2f} s = {mbs(u):.0f} MB/s "
        f"(API {mbs(u, 'api_seconds'):.0f} MB/s); equal-content copy: {mbs(r):.0f} MB/s "
        f"(API {mbs(r, 'api_seconds'):.0f}), {r['added_bytes'] / MB:.2f} MB added",
        "amber stored bytes by file (all versions):",
    ]  # fmt: skip
    files = a["attribution"]["files"]
    total = sum(f["stored"] for f in files.values()) or 1
    for path, f in sorted(files.items(), key=lambda kv: -kv[1]["stored"])[:6]:
        lines.append(f"  {path:<28} raw {f['raw'] / MB:>7.1f} MB  stored {f['stored'] / MB:>7.1f} MB  "
                     f"({f['stored'] / max(1, f['raw']):.3f} of raw, {f['stored'] / total:.0%} of stored)")  # fmt: skip
    mix = ", ".join(f"{CODEC_NAMES.get(c, c)} {v['chunks']} chunks {v['stored'] / max(1, v['raw']):.3f}"
                    for c, v in sorted(a["attribution"]["codecs"].items()))  # fmt: skip
    lines.append(f"amber codecs (stored/raw of new chunks): {mix}")
    return "\n".join(lines)


def _cpu(steps: list[dict[str, Any]]) -> str:
    """CPU seconds of the API calls / of the whole processes (raw MB per API CPU-second)."""
    api = sum(s.get("api_cpu_seconds", 0.0) for s in steps)
    proc = sum(s["cpu_seconds"] for s in steps)
    size = sum(s["bytes"] for s in steps)
    return f"{api:.2f} / {proc:.2f} ({size / MB / max(api, 1e-9):.0f} MB per cpu-s)"


def codec_table(c: dict[str, Any]) -> str:
    head = "".join(f"{s.replace('chain', 'ch').replace('-z1', ''):>8}" for s in SCHEMES)
    lines = ["codec floor on the tensors (stored/raw over the sequence; storage_codecs.py):",
             f"  {'class':<22}{'share':>6}{head}"]  # fmt: skip
    for name, cls in c["classes"].items():
        cells = "".join(f"{cls['ratio'][s]:>8.3f}" for s in SCHEMES)
        lines.append(f"  {name:<22}{cls['share']:>6.2f}{cells}")
    lines.append(f"  {'whole sequence (est.)':<22}{'':>6}" + "".join(f"{c['estimate'][s]:>8.3f}" for s in SCHEMES))
    for name, cls in c["classes"].items():
        lines.append(f"  {name}: order-0 entropy per byte plane (low..high) {cls['entropy_bits']} bits, of its XOR to "
                     f"the parent {cls['xor_entropy_bits']}; "
                     f"median relative change {cls['median_relative_change']:.2g}")  # fmt: skip
        speeds = ", ".join(f"{k} {v:.0f}" for k, v in cls["mb_per_s_one_thread"].items())
        lines.append(f"    one-thread MB/s: {speeds}")
    for n, r in c.get("iterations_per_save", {}).items():
        cells = ", ".join(f"{k} {r['all'][k]:.3f} (weights alone {r['weights'][k]:.3f})" for k in r["all"])
        lines.append(f"  if each save held {n:>4} iterations: {cells}")
    return "\n".join(lines)


def what_if_table(runs: list[dict[str, Any]]) -> str:
    """Per variant the median over its runs (CPU seconds are the steadier figure on a shared machine)."""
    lines = ["what-if: Amber with one change patched in (storage_whatif.py; median of runs):",
             f"  {'variant':<13}{'stored/raw':>11}{'snap cpu s':>11}{'snap MB/s':>10}{'prev restore cpu s':>19}"
             f"{'MB/s':>6}{'runs':>5}"]  # fmt: skip
    for variant in dict.fromkeys(r["variant"] for r in runs):
        rs = [r for r in runs if r["variant"] == variant]

        def med(key: str, rs: list[dict[str, Any]] = rs) -> float:
            values = sorted(r[key] for r in rs)
            return float(values[len(values) // 2])

        lines.append(f"  {variant:<13}{med('ratio'):>11.4f}{med('snapshot_cpu_seconds'):>11.2f}"
                     f"{med('snapshot_mbs'):>10.0f}{med('restore_previous_cpu_seconds'):>19.2f}"
                     f"{med('restore_previous_mbs'):>6.0f}{len(rs):>5}")  # fmt: skip
    return "\n".join(lines)


def goal_table(rows: list[dict[str, Any]]) -> str:
    seqs = sorted({r["sequence"] for r in rows}, key=lambda s: list(RATIO_GOALS).index(s) if s in RATIO_GOALS else 9)
    names = list(dict.fromkeys(r["goal"] for r in rows))
    lines = ["goals (issue 4)", f"  {'goal':<32}{'target':>8}  " + "".join(f"{s:<30}" for s in seqs)]
    for name in names:
        target = next(r for r in rows if r["goal"] == name)
        cells = []
        for s in seqs:
            r = next((r for r in rows if r["goal"] == name and r["sequence"] == s), None)
            cells.append("" if r is None else f"{r['verdict']} {_fmt(r['value'], r['unit'])} ({r['by']})")
        op = "<=" if name.startswith(("stored", "peak")) else ">="
        limit = op + _fmt(target["target"], target["unit"])
        lines.append(f"  {name:<32}{limit:>8}  " + "".join(f"{c:<30}" for c in cells))
    return "\n".join(lines)
