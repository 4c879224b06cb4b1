"""The ``amber`` command: global options, error handling, exit codes."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass

import typer
from typer._click import exceptions as click_errors  # typer carries its own copy of click

import amber
from amber.cli import exit_codes, output
from amber.errors import AmberError

app = typer.Typer(
    name="amber",
    help="Version trained models: snapshot a model folder, list, restore, delete and export versions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@dataclass
class State:
    repo: str | None = None
    debug: bool = False


state = State()


def _version(value: bool) -> None:
    if value:
        print(f"amber {amber.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    repo: str | None = typer.Option(None, "--repo", help="Repository folder (default: $AMBER_REPO, or found upward)."),
    debug: bool = typer.Option(False, "--debug", help="Print the full traceback on errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    state.repo = repo
    state.debug = debug


def open_repo(progress: bool = False) -> amber.Repo:
    repo = amber.Repo(state.repo)
    if progress and sys.stderr.isatty():
        repo.set_progress(output.RichProgress())
    return repo


def _fail(exc: BaseException, code: int, as_json: bool) -> int:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    hint = getattr(exc, "hint", None)
    if state.debug:
        import traceback

        traceback.print_exception(exc)
    if as_json:
        doc = {"error": {"type": type(exc).__name__, "message": message, "hint": hint, "exit_code": code}}
        sys.stderr.write(json.dumps(doc) + "\n")
    else:
        output.err.print(f"[red]Error:[/red] {output.escape(message)}", markup=True)
        if hint:
            output.err.print(f"[dim]hint: {output.escape(hint)}[/dim]", markup=True)
    return code


def main(argv: list[str] | None = None) -> int:
    from amber.cli import commands, manage, watch_cmd  # noqa: F401  (registers the commands)

    args = sys.argv[1:] if argv is None else argv
    as_json = "--json" in args
    try:
        code = app(args=args, prog_name="amber", standalone_mode=False)
        return code if isinstance(code, int) else exit_codes.OK  # typer.Exit(n) comes back as n
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        return _fail(KeyboardInterrupt("interrupted"), exit_codes.INTERRUPTED, as_json)
    except click_errors.UsageError as exc:
        if as_json:
            return _fail(exc, exit_codes.USAGE, True)
        exc.show()
        return exit_codes.USAGE
    except click_errors.ClickException as exc:
        return _fail(exc, exit_codes.USAGE, as_json)
    except AmberError as exc:
        return _fail(exc, exit_codes.code_for(exc), as_json)
    except KeyboardInterrupt as exc:
        return _fail(exc, exit_codes.INTERRUPTED, as_json)
    except OSError as exc:
        return _fail(exc, exit_codes.FAILURE, as_json)


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    os.environ.setdefault("COLUMNS", "120")
    run()
