"""``amber watch``: snapshot a model folder whenever training has written it and gone quiet."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import typer

from amber.cli import output
from amber.cli.app import app, open_repo
from amber.errors import InvalidInput

if TYPE_CHECKING:
    from amber.integrations.watch import Summary


@app.command()
def watch(
    path: str = typer.Argument(..., help="The model folder training writes to."),
    model: str | None = typer.Option(None, "--model", "-m", help="Model name (default: the folder's name)."),
    every: str = typer.Option("30m", "--every", help="At most one snapshot per this long (30s, 10m, 1h)."),
    settle: str = typer.Option("10s", "--settle", help="Snapshot only after the folder was quiet this long."),
    keep: str | None = typer.Option(None, "--keep", help='Retention policy, e.g. "keep-last=10,keep-best=3".'),
    best_metric: str | None = typer.Option(None, "--best-metric", help="The metric 'best' follows (loss_dst)."),
    mode: str = typer.Option("min", "--mode", help="min or max, for --best-metric."),
    poll: str | None = typer.Option(None, "--poll", help="How often to look (default: settle/4, at most 1s)."),
    once: bool = typer.Option(False, "--once", help="Take one snapshot once the folder is quiet, then exit."),
    max_snapshots: int | None = typer.Option(None, "--max-snapshots", help="Exit after this many snapshots."),
    tag: list[str] = typer.Option([], "--tag", help="A tag for every version taken, repeatable."),
    as_json: bool = typer.Option(False, "--json", help="At exit, print a JSON summary on stdout."),
) -> None:
    """Watch a model folder and snapshot it each time it has changed and settled.

    Runs until Ctrl-C (exit 0, with a summary); a second Ctrl-C abandons a running snapshot.

    Example: amber watch ./workspace/model --model face --every 30m --keep "keep-last=10,keep-best=3"
    """
    from amber.integrations.watch import Watcher, parse_duration

    if mode not in ("min", "max"):
        raise InvalidInput(f"--mode must be 'min' or 'max', not '{mode}'")
    name = model or os.path.basename(os.path.abspath(path))
    with open_repo() as repo:
        watcher = Watcher(
            path, model=name, repo=repo, every=parse_duration(every), settle=parse_duration(settle), keep=keep,
            best_metric=best_metric, mode=mode, poll=parse_duration(poll) if poll else None, once=once,
            max_snapshots=max_snapshots, tags=tag, report=_say,
        )  # fmt: skip
        watcher.prepare()  # refuse bad rules before saying anything
        _say(f"watching {watcher.folder} as model '{watcher.model}' (every {every}, settle {settle}); Ctrl-C stops")
        summary = watcher.run()
    if as_json:
        output.print_json(_json(summary))
    else:
        output.out.print(_text(summary))


def _say(line: str) -> None:
    output.err.print(line)
    sys.stderr.flush()


def _text(s: Summary) -> str:
    refs = ", ".join(v.ref for v in s.versions) or "none"
    text = f"Watched for {s.seconds:.0f} s: {len(s.versions)} snapshot(s) ({refs})"
    if s.discarded:
        text += f", {s.discarded} discarded (folder changed while read)"
    if s.failed:
        text += f", {s.failed} failed"
    return text


def _json(s: Summary) -> dict[str, object]:
    return {
        "versions": [v.to_json() for v in s.versions],
        "discarded": s.discarded,
        "failed": s.failed,
        "polls": s.polls,
        "seconds": round(s.seconds, 3),
        "stopped_by": s.stopped_by,
    }
