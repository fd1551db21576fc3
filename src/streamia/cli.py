"""The `streamia` command line."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer
from typer.core import TyperArgument

from streamia import platform
from streamia_kit.bus import EventBus

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Streamia platform.")
dlq_app = typer.Typer(no_args_is_help=True, help="Inspect and replay dead-lettered events.")
users_app = typer.Typer(no_args_is_help=True, help="Manage accounts.")
app.add_typer(dlq_app, name="dlq")
app.add_typer(users_app, name="users")

ROOT = Path(__file__).resolve().parents[2]


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"streamia {version('streamia')}")
        raise typer.Exit()


@app.callback()
def streamia(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Streamia platform."""


def _run(main: Any) -> Any:
    """Run a server coroutine on uvloop (the event loop uvicorn is configured for)."""
    import uvloop

    return uvloop.run(main)


@app.command()
def up(
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log",
            envvar="STREAMIA_ACCESS_LOG",
            help="log every HTTP request (off by default)",
        ),
    ] = False,
) -> None:
    """Start the whole platform in one process (embedded mode) and print where to open it."""
    from streamia.console import StartupConsole
    from streamia_kit.config import ServiceSettings

    overrides: dict[str, Any] = {}
    # A person at a terminal reads coloured lines; a pipe or a file keeps JSON, and an
    # explicit STREAMIA_LOG_FORMAT always wins.
    if sys.stdout.isatty() and "log_format" not in ServiceSettings().model_fields_set:
        overrides["log_format"] = "console"
    try:
        _run(
            platform.run_embedded(
                overrides, seed=True, console=StartupConsole(), access_log=access_log
            )
        )
    except KeyboardInterrupt:
        pass


@app.command()
def serve(service: Annotated[str, typer.Argument(help=", ".join(platform.ALL_SERVICES))]) -> None:
    """Run one service as its own process, configured by STREAMIA_* URLs (distributed mode)."""
    if service not in platform.ALL_SERVICES:
        raise typer.BadParameter(f"choose one of {', '.join(platform.ALL_SERVICES)}")
    try:
        _run(platform.serve_one(service))
    except KeyboardInterrupt:
        pass


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def test(ctx: typer.Context) -> None:
    """Run the whole test suite (extra arguments go to pytest)."""
    os.chdir(ROOT)
    pytest = Path(sys.executable).with_name("pytest")
    os.execv(str(pytest), [str(pytest), *ctx.args])


def _queues() -> list[str]:
    """Every durable queue of the platform: `<consumer>.<event type>`."""
    return [sub.queue for sub in platform.subscriptions()]


def _known_queue(queue: str) -> str:
    """The queue a `dlq` argument names (with or without `.dlq`); exit 1 on an unknown one,
    before the broker is asked (asking would create it)."""
    name = queue.removesuffix(".dlq")
    if name not in _queues():
        typer.echo(f"unknown queue: {queue} (`streamia dlq list` names them)", err=True)
        raise typer.Exit(1)
    return name


T = TypeVar("T")


async def _with_bus(fn: Callable[[EventBus], Awaitable[T]]) -> T:
    from streamia_kit.config import ServiceSettings
    from streamia_kit.infra import Infrastructure

    infra = Infrastructure.from_settings(ServiceSettings())
    try:
        return await fn(infra.bus)
    finally:
        await infra.close()


@dlq_app.command("list")
def dlq_list() -> None:
    """Dead-letter counts per queue."""
    queues = _queues()
    counts = asyncio.run(_with_bus(lambda bus: bus.dead_letter_counts(queues)))
    width = max((len(q) for q in queues), default=10) + 4
    for queue in queues:
        typer.echo(f"{queue + '.dlq':<{width}} {counts[queue]}")


@dlq_app.command("show")
def dlq_show(queue: str, limit: int = 20) -> None:
    """Print the dead letters of a queue (`favorites.user.deleted`) as JSON lines."""
    name = _known_queue(queue)
    letters = asyncio.run(_with_bus(lambda bus: bus.dead_letters(name, limit)))
    for letter in letters:
        typer.echo(orjson.dumps(letter.as_dict()).decode())
    if not letters:
        typer.echo(f"no dead letters in {queue}", err=True)


@dlq_app.command("replay")
def dlq_replay(
    queue: str,
    ids: Annotated[list[str] | None, typer.Option("--id", help="only these event ids")] = None,
) -> None:
    """Send dead letters back to their queue with a fresh attempt count."""
    name = _known_queue(queue)
    count = asyncio.run(_with_bus(lambda bus: bus.replay(name, ids or None)))
    typer.echo(f"replayed {count} message(s) to {name}")


async def _users_admin(email: str, password: str | None, first: str, last: str) -> str:
    from streamia_kit.errors import StreamiaError
    from streamia_users.app import create_app

    users_app_ = create_app()
    service = users_app_.state.service
    users = users_app_.state.users
    await service.start()
    try:
        async with service.db.transaction() as session:
            if password is None:
                user = await users.promote(session, email)
            else:
                user = await users.create_admin(session, email, password, first, last)
        await service.relay.drain()
        return f"{user.email} is an admin (id {user.id})"
    except (StreamiaError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None
    finally:
        await service.stop()


@users_app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Argument(help="the admin's email address")],
    password: Annotated[
        str | None,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            show_default=False,
            help="asked for (hidden, twice) when not given; "
            "8+ characters with upper, lower, digit and symbol",
        ),
    ] = None,
    first_name: Annotated[str, typer.Option(help="for a new account")] = "Admin",
    last_name: Annotated[str, typer.Option(help="for a new account")] = "Streamia",
) -> None:
    """Create an admin account, asking for its password; an existing account with that email
    is promoted instead (its password is left as it is)."""
    assert password is not None  # prompted for when not given
    typer.echo(asyncio.run(_users_admin(email, password, first_name, last_name)))


@users_app.command("promote")
def promote(email: str) -> None:
    """Give an existing account the admin role."""
    typer.echo(asyncio.run(_users_admin(email, None, "", "")))


@app.command("import-monolith")
def import_monolith(
    dump: Annotated[
        Path,
        typer.Argument(
            help="a mongodump folder (BSON) or a folder of mongoexport JSON files",
            show_default=False,
        ),
    ],
    admin: Annotated[
        list[str] | None,
        typer.Option("--admin", help="promote this account to admin (repeatable)"),
    ] = None,
    rejects: Annotated[
        Path, typer.Option(help="refused documents with the reason, one JSON object a line")
    ] = Path("rejects.jsonl"),
) -> None:
    """Load the monolith's users, movies, favorites, ratings and comments (idempotent)."""
    from rich.console import Console

    from streamia.monolith import ImportFailed, MonolithImport, summary_table

    if not dump.is_dir():
        typer.echo(f"import-monolith: {dump}: no such folder", err=True)
        raise typer.Exit(2)
    run = MonolithImport(dump, rejects, admin or [])
    try:
        tallies = asyncio.run(run.run())
    except ImportFailed as exc:
        typer.echo(f"import-monolith: {exc}", err=True)
        raise typer.Exit(1) from None
    console = Console()
    console.print(summary_table(tallies))
    changes = sum(t.imported for t in tallies) + len(run.promoted)
    refused = sum(t.rejected for t in tallies)
    for email in run.promoted:
        console.print(f"{email} is now an admin")
    console.print(f"{changes:,} changes, {refused:,} documents refused (see {rejects})")


@app.command("seed-demo")
def seed_demo() -> None:
    """Create an admin and a handful of demo movies with videos and subtitles."""
    typer.echo(asyncio.run(platform.seed_demo()))
    typer.echo(f"Demo admin password: {platform.DEMO_ADMIN_PASSWORD}")


@app.command()
def env(write_readme: bool = typer.Option(False, help="refresh the table in README.md")) -> None:
    """Print every STREAMIA_* environment variable as a Markdown table."""
    table = platform.env_table()
    if not write_readme:
        typer.echo(table)
        return
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = "<!-- env-table:start -->", "<!-- env-table:end -->"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    readme.write_text(f"{head}{start}\n{table}\n{end}{tail}")
    typer.echo("README.md updated")


@app.command()
def asyncapi(
    output: Annotated[Path, typer.Option(help="where to write it; - for standard output")] = ROOT
    / "docs"
    / "asyncapi.yaml",
) -> None:
    """Write the AsyncAPI 3 document of every exchange, routing key, queue and payload."""
    from streamia.asyncapi import render

    text = render()
    if str(output) == "-":
        typer.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {output}")


@app.command()
def openapi(
    output: Annotated[Path, typer.Option(help="where to write it; - for standard output")] = ROOT
    / "docs"
    / "openapi.json",
) -> None:
    """Write the gateway's merged OpenAPI document (what its `/openapi.json` serves)."""
    text = platform.openapi_json()
    if str(output) == "-":
        typer.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {output}")


@app.command()
def makemigrations(service: str, message: str = "initial") -> None:
    """Autogenerate an Alembic revision for a service against a scratch SQLite database."""
    import tempfile

    from alembic import command

    from streamia_kit.migrations import alembic_config, migrate

    module = platform.load(service)
    if module is None:
        raise typer.BadParameter(f"unknown service {service}")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/scratch.sqlite"
        asyncio.run(migrate(module.app.MIGRATIONS, url))
        command.revision(
            alembic_config(module.app.MIGRATIONS, url), message=message, autogenerate=True
        )


# Typer prints Python's type names (`<int>`, `<str>`, `<bool>` even beside a flag) and
# `{name}` for arguments; people read click's words. Applied to the command tree once.
_TYPE_WORDS = {"int": "INTEGER", "str": "TEXT", "float": "NUMBER", "path": "PATH", "Path": "PATH"}


def _word(param: Any) -> str:
    if getattr(param, "is_bool_flag", False):
        return ""  # a flag takes no value
    bare = param.type_descriptor.path_type if param.type_descriptor.is_path else param.bare_type()
    bare = bare.removeprefix("list[").removesuffix("]")  # a repeatable option: one value each
    word = _TYPE_WORDS.get(bare, bare.upper())
    return f"{word}..." if param.nargs != 1 else word


def _readable_param(param: Any) -> Any:
    word = _word(param)
    param.display_type_rich = lambda ctx: word
    if isinstance(param, TyperArgument):
        name = (param.name or "").upper()
        param._usage_display_name = lambda: name  # type: ignore[method-assign]
    return param


def _readable(command: Any) -> Any:
    for param in command.params:
        _readable_param(param)
    help_option = command.get_help_option
    command.get_help_option = lambda ctx: _readable_param(help_option(ctx))
    for sub in getattr(command, "commands", {}).values():
        _readable(sub)
    return command


def command() -> Any:
    """The `streamia` command tree as people read its help."""
    return _readable(typer.main.get_command(app))


def main() -> None:
    command()()
