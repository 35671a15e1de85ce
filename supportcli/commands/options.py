"""How the command line reads and shows its options, beside the commands themselves:
placeholders a user knows in --help, ``--quiet`` after the command, ``--version``, the output
format from the ``-o`` file's name, and whether a model version can be loaded."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import typer

from ..errors import SupportCliError
from .common import get_context

F = TypeVar("F", bound=StrEnum)
# What an output file's extension asks for; the first the command has wins.
SUFFIX_FORMATS = {
    ".csv": ("csv",), ".json": ("json",), ".jsonl": ("jsonl",), ".ndjson": ("jsonl",),
    ".md": ("markdown",), ".markdown": ("markdown",), ".html": ("html",), ".htm": ("html",),
    ".txt": ("text", "table"),
}  # fmt: skip


def pick_format(kind: type[F], given: F | None, output: Path | None, default: F) -> F:
    """``--format`` if given, else the one ``-o``'s extension names, else ``default``; a
    mismatch between the two is a warning, not an error."""
    import logging

    wanted = SUFFIX_FORMATS.get(output.suffix.lower(), ()) if output is not None else ()
    known = [kind(w) for w in wanted if w in {k.value for k in kind}]
    warn = logging.getLogger("supportcli.cli").warning
    if given is None:
        if wanted and not known:
            warn("%s: this command has no %s output; writing %s", output, wanted[0],
                 default.value)  # fmt: skip
        return known[0] if known else default
    if wanted and given not in known:
        warn("%s: writing %s, though the file name says %s", output, given.value, wanted[0])
    return given


def model_problem(version: Any) -> str:
    """Why a listed model version cannot be loaded ("" when it can), without unpickling it."""
    from importlib.metadata import version as installed

    from ..errors import ModelError
    from ..model import artifacts

    try:
        meta = artifacts.read_meta(version.directory)
    except ModelError as exc:
        return exc.message
    model_file = version.directory / artifacts.MODEL_FILE
    if not model_file.is_file():
        return "its model file is missing"
    if artifacts.sha256_file(model_file) != meta.get("sha256"):
        return "its model file does not match its meta.json"
    built_with = meta.get("versions", {}).get("scikit-learn")
    if version.name != "default" and built_with != installed("scikit-learn"):
        return f"built with scikit-learn {built_with}: retrain it with `supportcli train`"
    return ""


def print_version(value: bool) -> None:
    if not value:
        return
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("supportcli", "scikit-learn"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:  # run from a checkout that was never installed
            found[package] = "(not installed)"
    own, sklearn = found["supportcli"], found["scikit-learn"]
    sys.stdout.write(f"supportcli {own}\nscikit-learn {sklearn}\nmodel {_active_model_id()}\n")
    raise typer.Exit(0)


def _active_model_id() -> str:
    """The active model's id from its meta.json (nothing is unpickled), or why there is none."""
    import json

    from ..config import Settings, default_config_path, default_state_dir, load_settings
    from ..model import registry

    try:
        settings = load_settings()
    except SupportCliError:  # --version works with a broken config too
        settings = Settings(state_dir=default_state_dir(), config_path=default_config_path())
    directory = registry.active_dir(settings)
    try:
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
        return f"{meta.get('name', directory.name)}-{str(meta['sha256'])[:10]}"
    except (OSError, ValueError, KeyError, TypeError):
        return f"unreadable ({directory})"


# Placeholders in --help that say what to type, instead of a type name (<str>, <list[str]>).
METAVARS = {
    "--config": "FILE", "--output": "FILE", "--log-file": "FILE", "--ca-file": "FILE",
    "--limit": "N", "--category": "CATEGORY", "--urgency": "URGENCY", "--since": "24h|3d|DATE",
    "--as-of": "TIME", "--account": "NAME", "--name": "NAME", "--mail-to": "ADDRESS",
    "--own-weight": "WEIGHT", "--host": "HOST", "--username": "LOGIN", "--port": "PORT",
    "--folder": "FOLDER", "--sent-folder": "FOLDER", "--days": "DAYS", "--eml": "FOLDER",
    "--password-env": "VARIABLE", "--password-command": "COMMAND",
    "--token-command": "COMMAND", "--run": "RUN_ID", "--source": "PATH",
    "--min-confidence": "0-1",
    "path": "PATH", "file": "FILE", "ref": "ID|FILE", "message_id": "MESSAGE_ID",
    "version": "VERSION",
}  # fmt: skip


def readable_metavars(command: Any) -> None:
    """Give every option and argument of the command tree a placeholder a user knows."""
    import enum

    for param in command.params:
        if param.param_type_name == "argument":  # the placeholder says it: no "<str>" after it
            param.display_type_rich = lambda ctx: None
        if getattr(param, "min", None) is not None or getattr(param, "max", None) is not None:
            param._get_number_range_help_str = lambda p=param: _range_words(p.min, p.max)
        if param.metavar is not None or getattr(param, "is_flag", False) or getattr(
            param, "count", False
        ):
            continue
        kind = param.type_descriptor.annotation
        choices = isinstance(kind, type) and issubclass(kind, enum.Enum)
        name = next((o for o in getattr(param, "opts", ()) if o in METAVARS), param.name)
        if choices:
            param.metavar = "|".join(str(c.value) for c in kind)
        else:
            param.metavar = METAVARS.get(name, "TEXT")
    for sub in getattr(command, "commands", {}).values():
        readable_metavars(sub)


def quiet_after_the_command(root: Any) -> None:
    """``supportcli report --quiet`` works like ``supportcli --quiet report``: every command
    gets the root's ``--quiet/-q`` too."""
    import copy

    from .. import log

    def quiet(ctx: Any, _param: Any, value: bool) -> None:
        context = get_context(ctx)
        if value and not context.quiet:
            context.quiet = True
            log.setup(context.verbose, quiet=True)

    template = next(p for p in root.params if p.name == "quiet")

    def add(command: Any) -> None:
        for sub in getattr(command, "commands", {}).values():
            if not any(p.name == "quiet" for p in sub.params):
                late = copy.copy(template)
                late.expose_value, late.callback = False, quiet
                sub.params.append(late)
            add(sub)

    add(root)


def _range_words(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{low:g} to {high:g}"
    return f"at least {low:g}" if low is not None else f"at most {high:g}"


