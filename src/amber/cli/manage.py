"""Commands that curate versions: alias, model, gc, log, edit, use."""

from __future__ import annotations

import typer

from amber.cli import output
from amber.cli.app import app, open_repo
from amber.cli.commands import JSON, YES, _confirm, _meta
from amber.errors import InvalidInput

alias_app = typer.Typer(help="Name versions: production, baseline, a pinned best.", no_args_is_help=True)
model_app = typer.Typer(help="A model's rules: best metric, protected aliases, retention.", no_args_is_help=True)
app.add_typer(alias_app, name="alias")
app.add_typer(model_app, name="model")


@alias_app.command("set")
def alias_set(ref: str = typer.Argument(..., help="The version."), name: str = typer.Argument(...)) -> None:
    """Point an alias at a version (created, or moved from another version).

    Example: amber alias set face:v7 production
    """
    with open_repo() as repo:
        v = repo.set_alias(ref, name)
    output.out.print(f"{v.model}:{name} -> {v.ref}")


@alias_app.command("rm")
def alias_rm(model: str = typer.Argument(...), name: str = typer.Argument(...)) -> None:
    """Remove an alias (removing 'best' hands it back to the model's metric rule).

    Example: amber alias rm face production
    """
    with open_repo() as repo:
        repo.remove_alias(model, name)
    output.out.print(f"Removed {model}:{name}")


@model_app.command("set")
def model_set(
    model: str = typer.Argument(...),
    best_metric: str | None = typer.Option(None, "--best-metric", help="The metric 'best' follows."),
    mode: str | None = typer.Option(None, "--mode", help="min or max."),
    protect: list[str] = typer.Option([], "--protect", help="An alias whose version cannot be deleted."),
    unprotect: list[str] = typer.Option([], "--unprotect", help="Stop protecting an alias."),
    retention: str | None = typer.Option(None, "--retention", help='Policy applied after each snapshot ("" clears).'),
    as_json: bool = JSON,
) -> None:
    """Set a model's rules.

    Example: amber model set face --best-metric loss_dst --mode min --protect production
    Example: amber model set face --retention "keep-last=5,keep-best=3,keep-aliased"
    """
    with open_repo() as repo:
        s = repo.set_model(
            model, best_metric=best_metric, mode=mode, protect=protect, unprotect=unprotect, retention=retention
        )
    if as_json:
        output.print_json(vars(s))
        return
    output.out.print(
        f"{model}: best follows {s.best_metric or '(nothing)'} ({s.mode}); protected: "
        f"{', '.join(s.protect) or 'none'}; retention: {s.retention or 'none'}"
    )


@model_app.command("show")
def model_show(model: str = typer.Argument(...), as_json: bool = JSON) -> None:
    """Show a model's rules.

    Example: amber model show face
    """
    with open_repo() as repo:
        s = repo.model_settings(model)
    if as_json:
        output.print_json(vars(s))
    else:
        output.out.print(f"best metric: {s.best_metric} ({s.mode})\nprotected: {s.protect}\nretention: {s.retention}")


@app.command()
def gc(
    keep_last: int | None = typer.Option(None, "--keep-last", help="Keep the N newest versions."),
    keep_best: int | None = typer.Option(None, "--keep-best", help="Keep the K best by the model's metric."),
    keep_every: int | None = typer.Option(None, "--keep-every", help="Keep the first version past every N iterations."),
    keep_backups: int | None = typer.Option(None, "--keep-backups", help="Keep only the N newest backups."),
    keep_aliased: bool = typer.Option(False, "--keep-aliased", help="Keep aliased versions (always true)."),
    model: str | None = typer.Option(None, "--model", "-m", help="Only this model."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only print what would be deleted and the bytes freed."),
    yes: bool = YES,
    as_json: bool = JSON,
) -> None:
    """Delete every version no keep rule keeps; versions with an alias always stay.

    Example: amber gc --keep-last 5 --keep-best 3 --keep-aliased --keep-every 10000 --dry-run
    """
    rules = (keep_last, keep_best, keep_every, keep_backups)
    if all(r is None for r in rules) and not keep_aliased:
        raise InvalidInput("gc needs at least one keep rule", hint="e.g. --keep-last 5 --dry-run")
    if any(r is not None and r < 0 for r in rules):
        raise InvalidInput("keep counts cannot be negative")
    from amber.ops.retention import Policy

    policy = Policy(keep_last, keep_best, keep_every, keep_backups)
    policy.check()
    with open_repo() as repo:
        result = repo.gc(policy, model=model, dry_run=True)
        if not dry_run:  # a run with nothing to delete still sweeps orphan objects
            if result.deleted:
                _confirm(f"Delete {len(result.deleted)} versions?", ", ".join(v.ref for v in result.deleted), yes)
            result = repo.gc(policy, model=model, dry_run=False)
    if as_json:
        output.print_json(
            {
                "dry_run": result.dry_run,
                "deleted": [v.ref for v in result.deleted],
                "freed_bytes": result.freed_bytes,
                "kept": result.kept,
            }
        )
        return
    verb = "Would delete" if result.dry_run else "Deleted"
    for v in result.deleted:
        output.out.print(f"{verb} {v.ref} '{v.label}' ({output.size(v.unique_bytes)})")
    output.out.print(f"{verb} {len(result.deleted)} versions, freeing {output.size(result.freed_bytes)}")


@app.command()
def log(
    model: str = typer.Argument(...),
    graph: bool = typer.Option(False, "--graph", help="Draw the version tree."),
    as_json: bool = JSON,
) -> None:
    """The model's versions and how they descend from each other.

    Example: amber log face --graph
    """
    with open_repo() as repo:
        versions = repo.lineage(model)
    if as_json:
        children: dict[str, list[str]] = {v.ref: [] for v in versions}
        for v in versions:
            if v.parent in children:
                children[v.parent].append(v.ref)
        output.print_json([{**v.to_json(), "children": children[v.ref]} for v in versions])
        return
    lines = output.graph_lines(versions) if graph else output.log_lines(versions)
    for line in lines:
        output.out.print(line)


@app.command()
def edit(
    ref: str = typer.Argument(...),
    name: str | None = typer.Option(None, "--name", help="New label."),
    notes: str | None = typer.Option(None, "--notes", help="New notes."),
    add_tag: list[str] = typer.Option([], "--add-tag", help="Add a tag, repeatable."),
    remove_tag: list[str] = typer.Option([], "--remove-tag", help="Remove a tag, repeatable."),
    meta: list[str] = typer.Option([], "--meta", help="Set KEY=VALUE metadata, repeatable."),
    as_json: bool = JSON,
) -> None:
    """Edit a version's label, notes, tags or metadata; its files never change.

    Example: amber edit face:v3 --name "Before lr change" --notes "..." --add-tag milestone
    """
    with open_repo() as repo:
        v = repo.edit(ref, name=name, notes=notes, add_tags=add_tag, remove_tags=remove_tag, metadata=_meta(meta))
    if as_json:
        output.print_json(v.to_json())
    else:
        output.out.print(f"Edited {v.ref}: '{v.label}', tags {', '.join(v.tags) or 'none'}")


@app.command()
def use(
    ref: str = typer.Argument(...),
    by: str | None = typer.Option(None, "--by", help="Who or what uses it (a run, a service)."),
    as_json: bool = JSON,
) -> None:
    """Record that a version is being used (shown by 'amber show' as "used by").

    Example: amber use face:best --by eval-run-12
    """
    with open_repo() as repo:
        v = repo.use(ref, by=by)
    if as_json:
        output.print_json({"version": v.ref, "by": by})
    else:
        output.out.print(f"Recorded: {by or 'someone'} uses {v.ref}")


@app.command()
def diff(
    a: str = typer.Argument(..., help="The older version."),
    b: str = typer.Argument(..., help="The newer version."),
    as_json: bool = JSON,
) -> None:
    """Compare two versions: metadata, files, and each changed tensor (max abs, relative L2).

    Example: amber diff face:v3 face:v5
    """
    import dataclasses

    with open_repo() as repo:
        d = repo.diff(a, b)
    if as_json:
        output.print_json(dataclasses.asdict(d))
        return
    for line in output.diff_lines(d):
        output.out.print(line)
