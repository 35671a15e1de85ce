"""IMAP commands: ``init`` (write an account into the config), ``sync`` and ``doctor``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ConfigError, ExitCode, UsageError
from .common import (
    AccountOption,
    Security,
    Urgency,
    get_context,
    note_window,
    stderr_console,
    stdout_console,
)


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(sync)
    app.command()(doctor)
    app.command()(tag)
    app.command()(untag)


def init(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Account name.")] = "shop",
    host: Annotated[str | None, typer.Option("--host", help="IMAP server.")] = None,
    username: Annotated[str | None, typer.Option("--username", help="Login name.")] = None,
    security: Annotated[
        Security, typer.Option("--security", help="How to connect (plain needs --allow-insecure).")
    ] = Security.ssl,
    port: Annotated[
        int | None, typer.Option("--port", min=1, max=65535, help="Default 993 (ssl) or 143.")
    ] = None,
    folder: Annotated[
        list[str] | None, typer.Option("--folder", help="Folder to read (repeatable).")
    ] = None,
    sent_folder: Annotated[
        str | None, typer.Option("--sent-folder", help="Your Sent folder (answered detection).")
    ] = None,
    days: Annotated[
        int, typer.Option("--days", min=1, max=36500, help="How far back the first sync goes.")
    ] = 30,
    password_env: Annotated[
        str | None, typer.Option("--password-env", help="Read the password from this variable.")
    ] = None,
    password_command: Annotated[
        str | None, typer.Option("--password-command", help="A command printing the password.")
    ] = None,
    keyring: Annotated[
        bool, typer.Option("--keyring", help="Use the system keyring (service 'supportcli').")
    ] = False,
    token_command: Annotated[
        str | None,
        typer.Option("--token-command", help="XOAUTH2: a command printing an access token."),
    ] = None,
    ca_file: Annotated[
        Path | None, typer.Option("--ca-file", help="CA certificate for a self-hosted server.")
    ] = None,
    allow_insecure: Annotated[
        bool, typer.Option("--allow-insecure", help="Allow security = plain.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing account.")] = False,
) -> None:
    """Add an IMAP account to the config file (mode 0600), from flags or prompts."""
    from ..accounts import account_from_table, write_account_toml

    context = get_context(ctx)
    prompt = context.interactive
    host = host or _ask(prompt, "IMAP server (host)")
    username = username or _ask(prompt, "Login name")
    if not (password_env or password_command or keyring or token_command):
        if not prompt:
            raise UsageError(
                "say where the password comes from: --password-env, --password-command, "
                "--keyring or --token-command"
            )
        password_env = typer.prompt(
            "Environment variable holding the password", default="SUPPORTCLI_PASSWORD"
        )
    table: dict[str, Any] = {
        "host": host,
        "username": username,
        "security": security.value,
        "folders": list(folder or ["INBOX"]),
        "first_sync_days": days,
        "allow_insecure": allow_insecure,
        "keyring": keyring,
    }
    optional = {
        "port": port,
        "sent_folder": sent_folder,
        "password_env": password_env,
        "password_command": password_command,
        "token_command": token_command,
        "ca_file": str(ca_file) if ca_file else None,
        "auth": "xoauth2" if token_command else None,
    }
    table.update({k: v for k, v in optional.items() if v is not None})
    try:
        account = account_from_table(name, table)
    except ConfigError as exc:  # every value came from an option: a usage error
        raise UsageError(exc.message, exc.hint) from None
    path = context.settings().config_path if context.config is None else context.config
    _write_account(path, name, write_account_toml(account), force)
    if keyring and prompt:
        from ..credentials import store_in_keyring

        store_in_keyring(account, typer.prompt("Password (saved in the keyring)", hide_input=True))
    stderr_console().print(
        f"wrote account {name} to {path} (mode 0600); check it with `supportcli doctor`",
        markup=False,
    )


def _ask(allowed: bool, question: str) -> str:
    if not allowed:
        raise UsageError(f"missing {question.lower()}: give it as an option (see --help)")
    return str(typer.prompt(question))


def _write_account(path: Path, name: str, table: str, force: bool) -> None:
    import tomllib

    existing = path.read_text(encoding="utf-8") if path.is_file() else ""
    try:
        current = tomllib.loads(existing)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    if name in current.get("accounts", {}):
        if not force:
            raise UsageError(f"account {name!r} already exists in {path}", hint="use --force")
        existing = _drop_table(existing, f"accounts.{name}")
    text = (existing.rstrip() + "\n\n" if existing.strip() else "") + table
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _drop_table(text: str, header: str) -> str:
    """Remove one ``[header]`` table (up to the next table) from TOML text."""
    out, skipping = [], False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            skipping = stripped == f"[{header}]"
        if not skipping:
            out.append(line)
    return "\n".join(out) + "\n"


def sync(
    ctx: typer.Context,
    account: AccountOption = None,
) -> None:
    """Fetch new mail from the configured IMAP accounts into the store (read-only)."""
    from .. import sync as sync_workflow
    from ..store import Store

    context = get_context(ctx)
    settings = context.settings()
    with Store(settings.store_path) as store, _progress(context.quiet) as advance:
        results = sync_workflow.sync(
            settings,
            store,
            tuple(account or ()),
            interactive=context.interactive,
            progress=advance,
        )
    if not context.quiet:
        console = stderr_console()
        for r in results:
            skipped = f", {len(r.failures)} unreadable" if r.failures else ""
            answered = f", {r.answered} answered in Sent" if r.answered else ""
            console.print(f"{r.account}: {r.added} new{skipped}{answered}", markup=False)


class _progress:
    """A progress counter on a terminal; nothing at all under cron."""

    def __init__(self, quiet: bool) -> None:
        self.enabled = sys.stderr.isatty() and not quiet and not os.environ.get("NO_COLOR")
        self.progress: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return None
        from rich.progress import Progress, SpinnerColumn, TextColumn

        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.completed} messages"),
            transient=True,
            console=stderr_console(),
        )
        self.progress.start()
        task = self.progress.add_task("sync", total=None)
        return lambda n: self.progress.advance(task, n)

    def __exit__(self, *_: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def doctor(
    ctx: typer.Context,
    account: AccountOption = None,
) -> None:
    """Check config, store and model, then each account's credentials, network, TLS, login and
    folders, one line each. Exit 0 when everything checked works."""
    from .. import doctor as checks
    from ..errors import NoAccountError
    from ..sync import ADD_ACCOUNT, configured_accounts

    context = get_context(ctx)
    settings, found = checks.local_checks(context.config)
    console = stdout_console()
    _print_checks(console, "local use (config, store, model)", found)
    accounts = []
    if settings is not None:
        try:
            accounts = configured_accounts(settings, tuple(account or ()))
        except NoAccountError:
            if account:
                raise
            console.print(f"no IMAP account: {ADD_ACCOUNT}. Without one, `supportcli triage "
                          "PATH` and `supportcli report --demo` work.", markup=False,
                          soft_wrap=True)
    for acct in accounts:
        result = checks.run_checks(acct, interactive=context.interactive)
        _print_checks(console, f"account {acct.name}", result)
        found += result
    if not checks.all_ok(found):
        raise typer.Exit(int(_exit_code(found)))


def _print_checks(console: Any, title: str, found: list[Any]) -> None:
    from .. import sanitize

    console.print(title, markup=False)
    for check in found:
        mark = "✓" if check.ok else "✗"
        hint = f"  (hint: {check.hint})" if check.hint and not check.ok else ""
        # details may quote the server's own words: made safe like any untrusted text
        line = sanitize.one_line(f"{check.name}: {check.detail}{hint}")
        console.print(f"  {mark} {line}", markup=False, soft_wrap=True)


def _exit_code(found: list[Any]) -> ExitCode:
    first = next(c for c in found if not c.ok and not c.skipped)
    if first.name in ("config", "credentials"):
        return ExitCode.CONFIG
    if first.name == "store":
        return ExitCode.STATE
    if first.name == "model":
        return ExitCode.MODEL
    return ExitCode.SOURCE


def tag(
    ctx: typer.Context,
    apply: Annotated[
        bool, typer.Option("--apply", help="Really change the mailbox (default: dry run).")
    ] = False,
    min_urgency: Annotated[
        Urgency | None, typer.Option("--min-urgency", help="Only this urgency or higher.")
    ] = None,
    account: AccountOption = None,
    sync_first: Annotated[
        bool, typer.Option("--sync/--no-sync", help="Sync before tagging.")
    ] = False,
) -> None:
    """Write the triage result back as IMAP keywords ($support_urgent …) or Gmail labels.

    A dry run unless --apply: it lists exactly what would change. Every applied change is
    journaled; `supportcli untag --run ID` removes exactly what that run added.
    """
    from .. import sanitize, tagging
    from ..store import Store

    context = get_context(ctx)
    settings = context.settings()
    with Store(settings.store_path) as store:
        result = tagging.plan(settings, store, accounts=tuple(account or ()),
                              min_urgency=min_urgency.value if min_urgency else None,
                              offline=not sync_first)  # fmt: skip
        if apply and result.changes:
            result = tagging.apply(settings, store, result)
    console = stdout_console()
    verb = "added" if apply else "would add"
    for change in result.changes:
        t = change.target
        where = sanitize.for_terminal(f"{t.account}/{t.folder}")
        console.print(
            f"{verb} {' '.join(change.add)}  {where} UID {t.uid}  "
            f"{sanitize.for_terminal(t.subject, 60)}",
            markup=False,
            soft_wrap=True,
        )
    if not context.quiet:
        _tag_summary(result, apply)
        note_window(result.window, context.quiet)


LEFT_ALONE_SHOWN = 10  # reasons listed; the rest are counted


def _tag_summary(result: Any, apply: bool) -> None:
    from .. import sanitize

    count = f"{len(result.changes)} message(s)"
    if result.run_id:
        lines = [f"run {result.run_id}: tagged {count}"]
    elif apply:
        lines = ["nothing to tag"]
    else:
        lines = [f"would tag {count} (dry run: nothing changed; add --apply)"]
    if result.skipped:
        lines.append(f"left {len(result.skipped)} message(s) alone:")
        lines += [f"  {sanitize.for_log(why, 120)}" for why in result.skipped[:LEFT_ALONE_SHOWN]]
        if len(result.skipped) > LEFT_ALONE_SHOWN:
            lines.append(f"  …and {len(result.skipped) - LEFT_ALONE_SHOWN} more")
    sys.stderr.write("\n".join(lines) + "\n")


def untag(
    ctx: typer.Context,
    run: Annotated[int, typer.Option("--run", help="The run id printed by `tag --apply`.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would go.")] = False,
) -> None:
    """Remove exactly the keywords or labels one `tag --apply` run added, nothing else."""
    from .. import sanitize, tagging
    from ..store import Store

    context = get_context(ctx)
    settings = context.settings()
    with Store(settings.store_path) as store:
        rows = tagging.untag(settings, store, run, dry_run=dry_run)
    console = stdout_console()
    verb = "would remove" if dry_run else "removed"
    for row in rows:
        where = sanitize.for_terminal(f"{row['account']}/{row['folder']}")
        console.print(
            f"{verb} {row['tag']}  {where} UID {row['uid']}",
            markup=False,
            soft_wrap=True,
        )
    if not context.quiet:
        stderr_console().print(f"{len(rows)} tag(s) {verb.split()[-1]}", markup=False)
