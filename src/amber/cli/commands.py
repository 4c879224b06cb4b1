"""Commands on versions: init, snapshot, list, show, restore, delete, export."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import typer

import amber
from amber.cli import output
from amber.cli.app import app, open_repo, state
from amber.errors import ConfirmationRequired, InvalidInput
from amber.types import Version

JSON = typer.Option(False, "--json", help="Print one JSON document on stdout (see docs/cli.md).")
YES = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")


def _pairs(items: list[str], what: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--{what} expects NAME=VALUE, got '{item}'")
        out.append((key.strip(), value.strip()))
    return out


def _metrics(items: list[str]) -> dict[str, float]:
    metrics = {}
    for key, value in _pairs(items, "metric"):
        try:
            metrics[key] = float(value)
        except ValueError:
            raise InvalidInput(f"--metric {key} needs a number, got '{value}'") from None
    return metrics


def _meta(items: list[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for key, value in _pairs(items, "meta"):
        try:
            meta[key] = json.loads(value)
        except ValueError:
            meta[key] = value
    return meta


def _confirm(question: str, details: str, yes: bool, flag: str = "--yes") -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise ConfirmationRequired(
            f"{question.rstrip('?')}: confirmation needed and there is no terminal to ask", hint=f"pass {flag}"
        )
    output.err.print(details)
    if not typer.confirm(question, default=False, err=True):
        raise ConfirmationRequired("cancelled; nothing was changed")


@app.command()
def init(path: str = typer.Argument(".", help="Folder to create the repository in.")) -> None:
    """Create an Amber repository (.amber/) in PATH.

    Example: amber init
    """
    repo = amber.Repo.init(path)
    output.out.print(f"Created an Amber repository in {os.path.join(repo.root, '.amber')}")


@app.command()
def snapshot(
    path: str = typer.Argument(..., help="The model folder (or single file) to snapshot."),
    model: str | None = typer.Option(None, "--model", "-m", help="Model name (default: the folder's name)."),
    name: str | None = typer.Option(None, "--name", "-n", help="A label for this version."),
    notes: str = typer.Option("", "--notes", help="Free text notes."),
    iteration: int | None = typer.Option(None, "--iteration", "-i", help="Training iteration or step."),
    metric: list[str] = typer.Option([], "--metric", help="NAME=NUMBER, repeatable (loss_src=0.21)."),
    tag: list[str] = typer.Option([], "--tag", help="A tag, repeatable."),
    meta: list[str] = typer.Option([], "--meta", help="KEY=VALUE metadata, repeatable; VALUE may be JSON."),
    model_type: str | None = typer.Option(None, "--type", help="Model type (SAEHD, hf-transformers, ...)."),
    select: str | None = typer.Option(
        None, "--select", help="In a DeepFaceLab folder with several models: a glob or model prefix to version."
    ),
    as_json: bool = JSON,
) -> None:
    """Snapshot a model folder as a new version.

    Iteration, losses, model type and settings are read from the model's own files
    (DeepFaceLab, Hugging Face, PEFT, Lightning, safetensors...); what you pass wins.

    Example: amber snapshot ./model --model face --name "Best face detail" --iteration 50000 --metric loss_src=0.21
    """
    with open_repo(progress=not as_json) as repo:
        v = repo.snapshot(
            path, model=model, name=name, notes=notes, iteration=iteration, metrics=_metrics(metric),
            tags=tag, metadata=_meta(meta), model_type=model_type, select=select,
        )  # fmt: skip
    for name, refused in (v.metadata.get("unsafe_pickles") or {}).items():
        output.err.print(f"warning: '{name}' pickles {', '.join(refused)}; Amber stored it but never ran it")
    if as_json:
        output.print_json(v.to_json())
        return
    output.out.print(
        f"Snapshot {v.ref} '{v.label}': {v.file_count} files, {output.size(v.size_bytes)} "
        f"({output.size(v.stored_bytes)} stored)"
    )


@app.command("list")
def list_(
    model: str | None = typer.Option(None, "--model", "-m", help="Only this model's versions."),
    as_json: bool = JSON,
) -> None:
    """List versions, newest first.

    Example: amber list --model face
    """
    with open_repo() as repo:
        versions = repo.versions(model)
    if as_json:
        output.print_json([v.to_json() for v in versions])
    elif not versions:
        output.out.print("No versions yet. Create one with: amber snapshot PATH")
    else:
        output.out.render(output.versions_table(versions))


@app.command()
def show(ref: str = typer.Argument(..., help="MODEL:vN, MODEL:ALIAS or an id prefix."), as_json: bool = JSON) -> None:
    """Show everything about one version, files included.

    Example: amber show face:v3
    """
    with open_repo() as repo:
        v = repo.get(ref, files=True)
        usage = repo.usage(ref)
    if as_json:
        doc = v.to_json(with_files=True)
        doc["used_by"] = usage
        output.print_json(doc)
        return
    output.version_details(v, usage)
    output.out.print("[bold]       files[/bold]", markup=True)
    for f in v.files or ():
        kind = {"dir": "/", "symlink": f" -> {f.target}"}.get(f.type, "")
        output.out.print(f"  {f.mode:04o}  {output.size(f.size):>9}  {f.path}{kind}")


@app.command()
def restore(
    ref: str = typer.Argument(..., help="The version to restore."),
    yes: bool = YES,
    force: bool = typer.Option(False, "--force", help="Restore even if the folder is in use or was just written."),
    as_json: bool = JSON,
) -> None:
    """Restore a version into its model folder, after backing up the current state.

    Example: amber restore face:v3 --yes
    """
    with open_repo(progress=not as_json) as repo:
        v = repo.get(ref)
        folder = repo.model_folder(v.model)
        _confirm(f"Restore {v.ref} into {folder}?", f"Restoring {output.confirm_text(v)}", yes)
        result = repo.restore(ref, force=force)
    if as_json:
        doc = result.version.to_json()
        doc["backup"] = result.backup.to_json() if result.backup else None
        doc["equal_to"] = result.equal_to.ref if result.equal_to else None
        output.print_json(doc)
        return
    if result.backup:
        output.out.print(f"Backed up the current state as {result.backup.ref} '{result.backup.label}'")
    elif result.equal_to:
        output.out.print(f"The current state equals {result.equal_to.ref}; no backup needed")
    output.out.print(f"Restored {result.version.ref} into {result.path}")


@app.command()
def delete(
    ref: str = typer.Argument(..., help="The version to delete."),
    yes: bool = YES,
    force: bool = typer.Option(False, "--force", help="Delete even if the version carries an alias."),
    as_json: bool = JSON,
) -> None:
    """Delete a version and every chunk no other version needs.

    Example: amber delete face:v2 --yes
    """
    with open_repo() as repo:
        v = repo.get(ref)
        _confirm(f"Delete {v.ref}?", f"Deleting {output.confirm_text(v)}", yes)
        result = repo.delete(ref, force=force)
    if as_json:
        output.print_json({"deleted": result.version.to_json(), "freed_bytes": result.freed_bytes})
        return
    output.out.print(f"Deleted {result.version.ref}; freed {output.size(result.freed_bytes)}")


@app.command()
def export(
    ref: str = typer.Argument(..., help="The version to export."),
    dest: str = typer.Argument(..., help="A new folder (or file) to write it to."),
    as_json: bool = JSON,
) -> None:
    """Write a version to a new place; the model folder is untouched.

    Example: amber export face:v3 ./out
    """
    with open_repo(progress=not as_json) as repo:
        path = repo.export(ref, dest)
        v: Version = repo.get(ref)
    if as_json:
        output.print_json({"version": v.ref, "path": path})
        return
    output.out.print(f"Exported {v.ref} to {path}")


_ = state


@app.command()
def verify(
    data: bool = typer.Option(False, "--data", help="Also re-read and re-hash every chunk."),
    as_json: bool = JSON,
) -> None:
    """Check that every version is whole; with --data, re-hash every chunk.

    Exit code 3 when damage is found; the report names the versions it breaks.
    Example: amber verify --data
    """
    with open_repo() as repo:
        report = repo.verify(data=data)
    if as_json:
        output.print_json(
            {
                "ok": report.ok,
                "versions": report.versions,
                "chunks": report.chunks,
                "bytes_checked": report.bytes_checked,
                "orphans": report.orphans,
                "problems": [vars(p) for p in report.problems],
            }
        )
    else:
        for p in report.problems:
            broken = f" (breaks {', '.join(p.versions)})" if p.versions else ""
            output.out.print(f"{p.kind}: {p.object[:16]} {p.message}{broken}")
        what = "chunks re-hashed" if data else "chunk files present"
        status = "OK" if report.ok else f"{len(report.problems)} problem(s)"
        output.out.print(
            f"{status}: {report.versions} versions, {report.chunks} {what}, {report.orphans} orphan objects"
        )
    if not report.ok:
        raise typer.Exit(3)


@app.command()
def du(
    model: str | None = typer.Option(None, "--model", "-m", help="Only this model."),
    as_json: bool = JSON,
) -> None:
    """Disk use: per version its size, stored size and unique bytes (what deleting it frees).

    Example: amber du --model face
    """
    with open_repo() as repo:
        versions = repo.versions(model)
        names = [model] if model else [m.name for m in repo.models()]
        per_model = [repo.du(name) for name in names]
        total = repo.du(model) if model else repo.du()
    if as_json:
        output.print_json(
            {
                "versions": [
                    {k: v.to_json()[k] for k in ("ref", "size_bytes", "stored_bytes", "unique_bytes")} for v in versions
                ],
                "models": [u.to_json() for u in per_model],
                "total": total.to_json(),
            }
        )
        return
    output.out.render(output.du_table(versions, per_model, total))
