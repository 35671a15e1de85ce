"""The command line: the only Typer module. Each command resolves settings, calls one workflow
and hands the result to ``render`` or ``export``; ``main`` turns failures into exit codes."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .commands.common import (
    AccountOption,
    Context,
    Urgency,
    note_window,
    parse_since,
    parse_when,
    stderr_console,
    stdout_console,
    without_an_account,
)
from .commands.common import get_context as _ctx
from .commands.options import (
    model_problem,
    pick_format,
    print_version,
    quiet_after_the_command,
    readable_metavars,
)
from .errors import ExitCode, SupportCliError, UsageError
from .export import FORMATS

app = typer.Typer(
    name="supportcli",
    help="Triage a small shop's support mailbox: what to answer first, and why.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    add_completion=True,
    rich_markup_mode=None,
)


if TYPE_CHECKING:

    class TriageFormat(StrEnum):
        """The terminal table, then what ``export`` writes."""

        table = "table"

else:
    TriageFormat = StrEnum("TriageFormat", {f: f for f in ("table", *FORMATS)})


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option("--config", help="Config file (TOML).")] = None,
    verbose: Annotated[
        int,
        typer.Option("--verbose", "-v", count=True, help="More detail on stderr (-vv for debug)."),
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=lambda value: print_version(value),
            help="Show the version, the scikit-learn version and the active model, and exit.",
        ),
    ] = False,
) -> None:
    """Triage a small shop's support mailbox: what to answer first, and why."""
    from . import log

    log.setup(verbose, quiet=quiet)
    ctx.obj = Context(config, verbose, quiet)


@app.command()
def triage(
    ctx: typer.Context,
    path: Annotated[
        str | None,
        typer.Argument(help="mbox file, Maildir, folder of .eml files, one .eml, or - for stdin."),
    ] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Triage the bundled demo inbox.")] = False,
    no_store: Annotated[
        bool,
        typer.Option("--no-store", help="Rank PATH without keeping its messages in the store."),
    ] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=1, help="Show the top N.")
    ] = None,
    category: Annotated[str | None, typer.Option("--category", help="Only this category.")] = None,
    min_urgency: Annotated[
        Urgency | None, typer.Option("--min-urgency", help="Only this urgency or higher.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only mail since a date or span (24h, 3d).")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Rank as of this time (default: now).")
    ] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Include answered threads.")] = False,
    offline: Annotated[
        bool, typer.Option("--offline", help="Rank the store as it is, without syncing.")
    ] = False,
    account: AccountOption = None,
    fmt: Annotated[
        TriageFormat | None,
        typer.Option("--format", "-f", help="Output format (default: from -o's extension, "
                     "else table)."),
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file.")] = None,
) -> None:
    """Rank the threads awaiting a reply: what to answer first, and why.

    With a PATH, rank that mailbox; with none, sync the configured IMAP accounts first
    (unless --offline) and rank everything in the store.
    """
    from . import showing, workflows

    settings = _ctx(ctx).settings()
    if category and category not in settings.categories:
        raise UsageError(
            f"unknown category {category!r}", hint="one of " + ", ".join(settings.categories)
        )
    request = workflows.TriageRequest(
        path=path,
        demo=demo,
        no_store=no_store,
        offline=offline,
        accounts=tuple(account or ()),
        interactive=_ctx(ctx).interactive,
        as_of=parse_when(as_of, name="--as-of"),
        since=parse_since(since, name="--since"),
        include_answered=show_all,
        limit=limit,
        category=category,
        min_urgency=min_urgency.value if min_urgency else None,
    )
    fmt = pick_format(TriageFormat, fmt, output, TriageFormat.table)
    with without_an_account("rank a mailbox file: `supportcli triage PATH` (or `--demo`)"):
        result = workflows.triage(settings, request)
    from . import sanitize

    kept = not (demo or no_store) and path is not None
    showing.remember_ranks(settings, result.items, demo=demo, source=None if kept else path)
    if kept and result.ingest.added and not _ctx(ctx).quiet:
        where = sanitize.for_log(sanitize.file_name(str(path)), 200)
        stderr_console().print(
            f"kept {result.ingest.added} new message(s) from {where} in the store: later "
            "triage runs include them (--no-store ranks a mailbox without keeping it)",
            markup=False, soft_wrap=True,
        )
    filters = [f"--{name} {value}" for name, value in (
        ("since", since), ("category", category),
        ("min-urgency", min_urgency.value if min_urgency else None)) if value]  # fmt: skip
    _emit_triage(result, fmt, output, render_notice(result, filters, show_all))
    _report_skipped(result.ingest.failures, _ctx(ctx).quiet)
    note_window(result.window, _ctx(ctx).quiet)


def render_notice(result: Any, filters: list[str], show_all: bool) -> tuple[str, str]:
    """The table's title, and what to say when nothing is left to show."""
    from . import render

    return render.triage_title(result, show_all), render.nothing_left(result, filters)


def _emit_triage(
    result: Any, fmt: TriageFormat, output: Path | None, notice: tuple[str, str]
) -> None:
    from . import export, render

    title, empty = notice
    if not result.items and fmt is not TriageFormat.table:
        sys.stderr.write(empty + "\n")
    if fmt is TriageFormat.table:
        from rich.text import Text

        table = render.triage_table(result.items, title) if result.items else Text(empty)
        if output is None:
            stdout_console().print(table)
        else:
            with _open_output(output) as handle:
                from rich.console import Console

                Console(file=handle, width=160, no_color=True).print(table)
        return
    if output is None:
        export.write(result.items, fmt.value, sys.stdout)
    else:
        with _open_output(output) as handle:
            export.write(result.items, fmt.value, handle)


def _open_output(path: Path) -> Any:
    try:
        return path.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


def _report_skipped(failures: list[Any], quiet: bool) -> None:
    if failures and not quiet:
        from . import sanitize

        console = stderr_console()
        console.print(f"skipped {len(failures)} message(s) that could not be read:", markup=False)
        for failure in failures[:10]:
            console.print(
                f"  {sanitize.for_log(failure.key, 60)}: {sanitize.for_log(failure.reason, 80)}",
                markup=False,
            )


@app.command()
def classify(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="One message: an .eml file, or - for stdin.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")] = False,
) -> None:
    """Classify one message: category, urgency, confidence and reasons."""
    from . import workflows

    result = workflows.classify_file(_ctx(ctx).settings(), file)
    _print_classification(result, json_out, detailed=False)


def _print_classification(result: Any, json_out: bool, *, detailed: bool) -> None:
    from . import export, render

    if json_out:
        record = export.item_record(result.item)
        record["category_probs"] = result.prediction.category_probs
        record["urgency_probs"] = result.prediction.urgency_probs
        record["explanation"] = result.explanation
        record["terms"] = [
            {"name": t.name, "points": t.points, "reason": t.reason} for t in result.item.terms
        ]
        sys.stdout.write(export.to_json(record, indent=2) + "\n")
        return
    stdout_console().print(
        render.message_panel(
            result.message, result.prediction, result.item, result.explanation, detailed=detailed
        )
    )


class EvalFormat(StrEnum):
    table = "table"
    json = "json"


@app.command()
def evaluate(
    ctx: typer.Context,
    path: Annotated[
        Path,
        typer.Argument(
            help="A folder of .eml files with labels.csv, or a CSV with "
            "subject,body,category,urgency columns."
        ),
    ],
    fmt: Annotated[
        EvalFormat, typer.Option("--format", "-f", help="Output format.")
    ] = EvalFormat.table,
) -> None:
    """Score the active model on a labelled set: accuracy, F1, confusion, calibration."""
    import logging
    import warnings
    from dataclasses import asdict

    from . import export, render, workflows
    from .commands import evaluate_checks

    settings = _ctx(ctx).settings()
    evaluate_checks.check_labels(path, settings)
    log = logging.getLogger("supportcli.cli")
    with warnings.catch_warnings(record=True) as caught:  # scikit-learn's are for developers
        warnings.simplefilter("always")
        result = workflows.evaluate(settings, path)
    for warning in caught:
        log.debug("evaluate: %s", warning.message)
    overlap = evaluate_checks.training_overlap(path, settings, result.model_id)
    if overlap:
        log.warning("%d of the %d messages are in the active model's training data: its "
                    "scores on them say little about new mail", overlap, result.size)
    if fmt is EvalFormat.json:
        sys.stdout.write(export.to_json(asdict(result), indent=2) + "\n")
        return
    console = stdout_console()
    console.print(
        f"{result.size} labelled messages from {result.path}, model {result.model_id}",
        markup=False,
        soft_wrap=True,
    )
    for target in result.targets:
        console.print(render.metrics_table(target.name, asdict(target)))
        console.print(render.confusion_table(target))
        console.print(render.reliability_table(target))


@app.command()
def explain(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="A stored Message-ID, an .eml file, or - for stdin.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show why a message got its category, urgency and rank."""
    from . import workflows

    result = workflows.explain(_ctx(ctx).settings(), ref)
    _print_classification(result, json_out, detailed=True)


@app.command()
def show(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(
            metavar="ID|RANK", help="A Message-ID, or a rank from the last `supportcli triage`."
        ),
    ],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    quoted: Annotated[
        bool, typer.Option("--quoted", help="Unfold the quoted history of each message.")
    ] = False,
    demo: Annotated[bool, typer.Option("--demo", help="Look in the bundled demo inbox.")] = False,
) -> None:
    """Show one thread, newest message first, and the customer's other threads and orders."""
    import json

    from . import render, showing

    result = showing.show(_ctx(ctx).settings(), ref, demo=demo)
    if json_out:
        record = showing.as_record(result)
        sys.stdout.write(json.dumps(record, ensure_ascii=False, indent=2) + "\n")
        return
    stdout_console().print(render.thread_view(result, quoted=quoted))


@app.command()
def train(
    ctx: typer.Context,
    force: Annotated[
        bool, typer.Option("--force", help="Install the new model even if it scores worse.")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", help="Write a samples-only model to this directory."),
    ] = None,
    default: Annotated[
        bool, typer.Option("--default", help="Rebuild the shipped models/default from samples/.")
    ] = False,
    own_weight: Annotated[
        float | None,
        typer.Option("--own-weight", min=0.1, help="Weight of your own labels (default 3)."),
    ] = None,
) -> None:
    """Train the model on samples/ plus your own labels and print its metrics.

    With no labels of your own (in a checkout), this rebuilds models/default/ from samples/.
    A model trained on your labels replaces the current one only if it is not worse on
    labels neither was trained on (unless --force); earlier models stay for `supportcli
    model use`.
    """
    from . import prioritize, render, resources, retraining
    from .commands.train_progress import train_progress
    from .model import training
    from .store import Store

    settings = _ctx(ctx).settings()
    in_checkout = resources.samples_dir().name == "samples"
    if default and output is None and not in_checkout:
        raise UsageError(
            f"--default rebuilds models/default of a checkout; this supportcli is installed "
            f"({resources.default_model_dir()}) and its shipped model is not rewritten",
            hint="write a samples-only model to a directory of your own with --output DIR",
        )
    with Store(settings.store_path) as store, train_progress(_ctx(ctx).quiet):
        has_labels = bool(store.labels())
        if output is not None or default or (not has_labels and in_checkout and not force):
            result = training.train_default(output, settings=settings,
                                            caught=prioritize.cues_force_urgent)
        else:
            weight = own_weight or settings.own_weight
            result = retraining.train_shop(settings, store, force=force, own_weight=weight)
    console = stdout_console()
    metrics = result.meta["metrics"]
    how = metrics.get("validation", "cross-validation")
    console.print(render.metrics_table(f"category ({how})", metrics["category"]))
    console.print(render.metrics_table(f"urgency ({how})", metrics["urgency"]))
    for name, got in metrics.get("urgency_decision", {}).items():
        console.print(
            f"{name.replace('_', '-')} called recall-first (target recall "
            f"{metrics.get('urgent_recall', 0.9):.2f}): cross-validated recall {got['recall']:.2f}"
            f", precision {got['precision']:.2f} on {got['support']} messages",
            markup=False, soft_wrap=True,
        )
    if result.comparison.get("new"):
        console.print(render.comparison_table(result.comparison))
    if result.comparison.get("how"):
        console.print(
            f"new vs current model compared {result.comparison['how']}",
            markup=False,
            soft_wrap=True,
        )
    if output is not None:
        state = "written there only, not installed"
    else:
        state = "installed and active" if result.installed else "kept but NOT installed (worse)"
    console.print(
        f"model {result.meta['name']} ({result.meta['n_samples']} samples) written to "
        f"{result.directory}: {state}",
        markup=False,
        soft_wrap=True,
    )


class ReportFormat(StrEnum):
    text = "text"
    markdown = "markdown"
    html = "html"


@app.command()
def report(
    ctx: typer.Context,
    path: Annotated[
        str | None,
        typer.Argument(
            help="Report on this mailbox (mbox, Maildir, .eml folder) instead of the store."
        ),
    ] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Report on the bundled demo inbox.")
    ] = False,
    fmt: Annotated[
        ReportFormat | None,
        typer.Option("--format", "-f", help="Report format (default: from -o's extension, "
                     "else text)."),
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file.")] = None,
    mail_to: Annotated[
        list[str] | None,
        typer.Option("--mail-to", help="Mail the report (text + HTML) via [smtp] (repeatable)."),
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Report on the store as it is, without syncing.")
    ] = False,
    account: AccountOption = None,
    fail_on: Annotated[
        Urgency | None,
        typer.Option("--fail-on", help="Exit 10 when items of this urgency or higher wait."),
    ] = None,
    log_file: Annotated[
        Path | None, typer.Option("--log-file", help="Append a one-line summary per run.")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Report as of this time (default: now).")
    ] = None,
) -> None:
    """The morning report, for cron: sync, rank, write or mail; never prompts.

    Only a report that is written (-o) or mailed counts as "the last report"; with a PATH or
    --demo it reports on that mailbox and leaves the store alone.
    """
    from datetime import UTC, datetime

    from . import render, reporting

    started = datetime.now(UTC)
    fmt = pick_format(ReportFormat, fmt, output, ReportFormat.text)
    request = reporting.ReportRequest(
        fmt=fmt.value,
        offline=offline,
        accounts=tuple(account or ()),
        mail_to=tuple(mail_to or ()),
        as_of=parse_when(as_of, name="--as-of"),
        path=path,
        demo=demo,
        output=output,
    )
    with without_an_account("report on a mailbox file: `supportcli report PATH` (or `--demo`)"):
        result = reporting.run_report(_ctx(ctx).settings(), request)
    if output is None and not result.mailed_to:
        sys.stdout.write(result.text)
    if log_file is not None:
        try:
            with log_file.open("a", encoding="utf-8") as handle:
                handle.write(reporting.log_line(result, started))
        except OSError as exc:
            raise UsageError(f"cannot append to {log_file}: {exc.strerror}") from None
    if not _ctx(ctx).quiet and result.mailed_to:
        stderr_console().print(f"report mailed to {', '.join(result.mailed_to)}", markup=False)
    if fail_on is not None and reporting.fail_on(result.items, fail_on.value):
        if not _ctx(ctx).quiet:
            sys.stderr.write(render.waiting_line(result.items, fail_on.value) + "\n")
        raise typer.Exit(int(ExitCode.ITEMS_WAITING))


def _register_subcommands() -> None:
    from .commands import imap
    from .commands.label import label_app

    imap.register(app)
    app.add_typer(label_app, name="label")


_register_subcommands()

model_app = typer.Typer(help="List model versions and roll back.", no_args_is_help=True)
app.add_typer(model_app, name="model")


@model_app.command("list")
def model_list(ctx: typer.Context) -> None:
    """List model versions: date, data size, metrics, which is active."""
    from . import render
    from .model import registry

    versions = registry.list_versions(_ctx(ctx).settings())
    problems = {v.name: model_problem(v) for v in versions}
    stdout_console().print(render.versions_table(versions, problems))


@model_app.command("use")
def model_use(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="A name from `supportcli model list`.")],
) -> None:
    """Make a model version the active one (roll back, or back to `default`)."""
    from .errors import ModelError
    from .model import registry

    settings = _ctx(ctx).settings()
    found = next((v for v in registry.list_versions(settings) if v.name == version), None)
    if found is not None and (problem := model_problem(found)):
        raise ModelError(f"model {version} cannot be used: {problem}")
    chosen = registry.use_version(settings, version)
    stderr_console().print(f"active model: {chosen.name}", markup=False)


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the app and maps every failure to its documented exit code."""
    from typer._click.exceptions import NoArgsIsHelpError

    from . import log

    command = typer.main.get_command(app)
    readable_metavars(command)
    quiet_after_the_command(command)
    try:
        result = command.main(args=argv, prog_name="supportcli", standalone_mode=False)
        code = int(result) if isinstance(result, int) else 0
    except NoArgsIsHelpError as exc:  # bare `supportcli` or `supportcli model`: the help
        sys.stdout.write(exc.ctx.get_help() + "\n")
        code = 0
    except SupportCliError as exc:
        _error(exc.message, _model_way_out(exc))
        code = int(exc.exit_code)
    except typer.Exit as exc:
        code = int(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        _error("interrupted", None)
        code = int(ExitCode.INTERRUPTED)
    except typer.TyperException as exc:  # usage errors from the command-line parser
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        _error(message, "see --help")
        code = int(getattr(exc, "exit_code", ExitCode.USAGE))
    except BrokenPipeError:
        _quiet_broken_pipe()
        code = 0
    except Exception as exc:  # the one place that catches everything
        import logging

        logging.getLogger("supportcli").debug("unexpected error", exc_info=True)
        _error(
            f"unexpected error: {type(exc).__name__}: {log.redact(str(exc))[:200]}",
            "run again with -vv for details; please report it",
        )
        code = int(ExitCode.UNEXPECTED)
    if argv is None:
        sys.exit(code)
    return code


def _model_way_out(exc: SupportCliError) -> str | None:
    """A model that cannot be loaded always names the way back to the shipped one."""
    from .errors import ModelError

    if not isinstance(exc, ModelError) or "model use default" in (exc.hint or ""):
        return exc.hint
    way_out = "`supportcli model use default` goes back to the shipped model"
    return f"{exc.hint}; {way_out}" if exc.hint else way_out


def _error(message: str, hint: str | None) -> None:
    from . import log, sanitize

    text = log.redact(sanitize.one_line(message))
    sys.stderr.write(f"supportcli: error: {text}\n")
    if hint:
        sys.stderr.write(f"  hint: {log.redact(sanitize.one_line(hint))}\n")


def _quiet_broken_pipe() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
