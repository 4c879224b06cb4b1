"""Rendering: tables, sizes, relative times, JSON, errors and progress bars.

rich is imported only when something is rendered through it: text bound for a
terminal (markup becomes colour), tables and progress bars. Text bound for a
pipe or a file is written as plain text, so ``--json`` and scripted use never
pay for rich. Markup is opt-in (``markup=True``) and used for our own styling
only; text from users (labels, paths, messages) is never read as markup.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
import threading
from typing import TYPE_CHECKING, Any, Literal, TextIO

from amber import clock
from amber.types import Usage, Version

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

# rich's markup tag (rich.markup.RE_TAGS): "[bold]", "[/red]", "[@click]"; backslashes escape it
_TAG = re.compile(r"(\\*)\[([a-z#/@][^[]*?)]")


def escape(text: str) -> str:
    """``text`` made safe to put into markup: what looks like a tag is escaped."""
    text = _TAG.sub(lambda m: f"{m.group(1)}{m.group(1)}\\{m.group(0)[len(m.group(1)) :]}", text)
    return text + "\\" if text.endswith("\\") and not text.endswith("\\\\") else text


def plain(markup: str) -> str:
    """``markup`` as rich shows it without a terminal: tags removed, escapes resolved."""
    parts: list[str] = []
    position = 0
    for match in _TAG.finditer(markup):
        start, end = match.span()
        parts.append(markup[position:start].replace("\\[", "["))
        backslashes, escaped = divmod(len(match.group(1)), 2)
        parts.append("\\" * backslashes)
        if escaped:
            parts.append(match.group(0)[len(match.group(1)) :])
        position = end
    parts.append(markup[position:].replace("\\[", "["))
    return "".join(parts)


def _is_terminal(stream: TextIO) -> bool:
    """Whether rich would treat ``stream`` as a terminal (same environment variables)."""
    compatible = os.environ.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        return compatible == "1"
    force = os.environ.get("FORCE_COLOR")
    if force is not None:
        return force != ""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or already closed
        return False


class Stream:
    """stdout or stderr: through a rich Console on a terminal, plain text elsewhere."""

    def __init__(self, *, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    @property
    def file(self) -> TextIO:
        return sys.stderr if self._stderr else sys.stdout  # looked up late: tests swap them

    @property
    def console(self) -> Console:
        """The rich Console for this stream (imports rich on first use)."""
        if self._console is None:
            from rich.console import Console

            width = None if self._stderr or self.file.isatty() else 200
            self._console = Console(stderr=self._stderr, highlight=False, soft_wrap=True, emoji=False, width=width)
        return self._console

    def print(self, text: str = "", *, markup: bool = False) -> None:
        """One line of text; with ``markup``, rich markup tags style it (escape user text!)."""
        if _is_terminal(self.file):
            self.console.print(text, markup=markup)
            return
        self.file.write((plain(text) if markup else text) + "\n")

    def render(self, renderable: Any) -> None:
        """A rich renderable (a table), always through rich."""
        self.console.print(renderable)


out = Stream()
err = Stream(stderr=True)


def size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def ago(stamp: str) -> str:
    seconds = (clock.now() - clock.parse_iso(stamp)).total_seconds()
    if seconds < 0:
        return "just now"
    for limit, div, unit in ((60, 1, "s"), (3600, 60, "min"), (86400, 3600, "h"), (86400 * 60, 86400, "d")):
        if seconds < limit:
            return f"{int(seconds // div)} {unit} ago" if unit != "s" else f"{int(seconds)} s ago"
    return clock.parse_iso(stamp).strftime("%Y-%m-%d")


def metrics_text(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in metrics.items())


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def versions_table(versions: list[Version]) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("ref", "label", "iteration", "metrics", "created", "size", "stored", "aliases"):
        justify: Literal["left", "right"] = "right" if col in ("iteration", "size", "stored") else "left"
        table.add_column(col, justify=justify, no_wrap=col != "label")
    for v in versions:
        label = v.label if v.kind == "manual" else f"{v.label} [{v.kind}]"
        cells = (
            v.ref,
            label,
            "" if v.iteration is None else str(v.iteration),
            metrics_text(v.metrics),
            ago(v.created_at),
            size(v.size_bytes),
            size(v.stored_bytes),
            ", ".join(v.aliases),
        )
        table.add_row(*(Text(c) for c in cells))  # Text: a label's "[...]" is not markup
    return table


def version_details(v: Version, usage: list[dict[str, Any]]) -> None:
    created = clock.parse_iso(v.created_at).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    rows = [
        ("version", f"{v.ref}  ({v.id[:12]})"),
        ("label", v.label),
        ("kind", v.kind),
        ("created", f"{created} ({ago(v.created_at)})"),
        ("iteration", "" if v.iteration is None else str(v.iteration)),
        ("metrics", metrics_text(v.metrics)),
        ("model type", v.model_type or ""),
        ("tags", ", ".join(v.tags)),
        ("aliases", ", ".join(v.aliases)),
        ("parent", v.parent or ""),
        ("notes", v.notes),
        ("size", f"{size(v.size_bytes)} in {v.file_count} files, {size(v.stored_bytes)} stored"),
    ]
    rows += [(f"meta {k}", json.dumps(val) if not isinstance(val, str) else val) for k, val in v.metadata.items()]
    rows += [("used by", f"{u['who'] or '?'} ({u['kind']}, {ago(u['at'])})") for u in usage]
    for key, value in rows:
        if value:
            out.print(f"[bold]{key:>12}[/bold]  {escape(value)}", markup=True)


def confirm_text(v: Version) -> str:
    parts = [f"{v.ref} '{v.label}'", f"created {ago(v.created_at)}"]
    if v.iteration is not None:
        parts.append(f"iteration {v.iteration}")
    if v.metrics:
        parts.append(metrics_text(v.metrics))
    return ", ".join(parts)


class RichProgress:
    """A byte progress bar on stderr; advance() is safe from worker threads."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=err.console,
            transient=True,
        )
        self._task: Any = None
        self._lock = threading.Lock()

    def start(self, description: str, total: int) -> None:
        if total <= 0:
            return
        self._bar.start()
        self._task = self._bar.add_task(description, total=total)

    def advance(self, amount: int) -> None:
        with self._lock:
            if self._task is not None:
                self._bar.update(self._task, advance=amount)

    def finish(self) -> None:
        with self._lock:
            if self._task is not None:
                self._bar.remove_task(self._task)
                self._task = None
                self._bar.stop()


def du_table(versions: list[Version], models: list[Usage], total: Usage) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("", "size", "stored", "unique", "ratio"):
        table.add_column(col, justify="left" if not col else "right", no_wrap=True)
    for v in versions:
        ratio = f"{v.stored_bytes / v.size_bytes:.3f}" if v.size_bytes else ""
        table.add_row(Text(v.ref), size(v.size_bytes), size(v.stored_bytes), size(v.unique_bytes), ratio)
    for u in [*models, total]:
        name = f"{u.model} ({u.versions} versions)" if u.model else f"repository ({u.versions} versions)"
        table.add_row(Text(name, style="bold"), size(u.logical_bytes), size(u.stored_bytes), "", f"{u.ratio:.3f}")
    return table


def _line(v: Version) -> str:
    parts = [v.ref, f"'{v.label}'"]
    if v.kind != "manual":
        parts.append(f"[{v.kind}]")
    if v.iteration is not None:
        parts.append(f"it {v.iteration}")
    if v.metrics:
        parts.append(metrics_text(v.metrics))
    if v.aliases:
        parts.append("(" + ", ".join(v.aliases) + ")")
    return "  ".join(parts)


def log_lines(versions: list[Version]) -> list[str]:
    """Newest first, each with its parent."""
    return [f"{_line(v)}  <- {v.parent or 'root'}" for v in sorted(versions, key=lambda v: -v.number)]


def graph_lines(versions: list[Version]) -> list[str]:
    """The version tree, roots first, children in creation order."""
    by_ref = {v.ref: v for v in versions}
    children: dict[str | None, list[Version]] = {}
    for v in sorted(versions, key=lambda v: v.number):
        parent = v.parent if v.parent in by_ref else None
        children.setdefault(parent, []).append(v)
    lines: list[str] = []

    def walk(v: Version, lead: str, tail: str) -> None:
        lines.append(f"{lead}* {_line(v)}")
        kids = children.get(v.ref, [])
        for n, kid in enumerate(kids):
            last = n == len(kids) - 1
            walk(kid, tail + ("└─" if last else "├─"), tail + ("  " if last else "│ "))

    for root in children.get(None, []):
        walk(root, "", "")
    return lines


def diff_lines(d: Any) -> list[str]:
    lines = [f"{d.a} -> {d.b}"]
    for key, (old, new) in d.fields.items():
        lines.append(f"  {key}: {old!r} -> {new!r}")
    marks = {"added": "+", "removed": "-", "changed": "~", "mode": "m"}
    for f in d.files:
        sizes = " -> ".join("" if s is None else size(s) for s in f.size)
        lines.append(f"{marks[f.status]} {f.path}  ({sizes})" + (f"  {f.note}" if f.note else ""))
        for t in f.tensors:
            detail = {
                "added": f"added {t.dtype[1]} {t.shape[1]}",
                "removed": f"removed {t.dtype[0]} {t.shape[0]}",
                "reshaped": f"shape {t.shape[0]} -> {t.shape[1]}",
                "retyped": f"dtype {t.dtype[0]} -> {t.dtype[1]}",
            }.get(t.status)
            if detail is None:
                rel = "n/a" if t.rel_l2 is None else f"{t.rel_l2:.3g}"
                mx = "n/a" if t.max_abs is None else f"{t.max_abs:.3g}"
                detail = f"max |d| {mx}, rel L2 {rel}"
            lines.append(f"    {t.name}: {detail}")
    if len(lines) == 1:
        lines.append("  identical")
    return lines
