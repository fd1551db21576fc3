"""The `streamia` command line."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import orjson
import typer
from typer.core import TyperArgument

from streamia import ALL_SERVICES, HTTP_SERVICES

if TYPE_CHECKING:
    from streamia_kit.bus import EventBus, Selection

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


def _for_a_person() -> dict[str, Any]:
    """Settings overrides for a person at a terminal: coloured lines, not JSON, and none of
    alembic's and uvicorn's start-up lines (the command's own lines say it). A pipe or a file
    keeps JSON, and an explicit STREAMIA_LOG_FORMAT always wins."""
    from streamia_kit.config import ServiceSettings

    if not sys.stdout.isatty() or "log_format" in ServiceSettings().model_fields_set:
        return {}
    for chatty in ("alembic", "uvicorn.error"):  # warnings and errors still show
        logging.getLogger(chatty).setLevel(logging.WARNING)
    return {"log_format": "console"}


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
    from streamia import platform
    from streamia.console import StartupConsole

    overrides = _for_a_person()
    try:
        _run(
            platform.run_embedded(
                overrides, seed=True, console=StartupConsole(), access_log=access_log
            )
        )
    except KeyboardInterrupt:
        pass


@app.command()
def serve(service: Annotated[str, typer.Argument(help=", ".join(ALL_SERVICES))]) -> None:
    """Run one service as its own process, configured by STREAMIA_* URLs (distributed mode)."""
    from streamia import platform

    if service not in ALL_SERVICES:
        raise typer.BadParameter(f"choose one of {', '.join(ALL_SERVICES)}")
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
    """Every queue the platform's services could consume: `<consumer>.<event type>` (the
    broker says which exist; no service is imported, which took seconds)."""
    from streamia_kit.events import EVENT_TYPES, queue_name

    return [queue_name(consumer, kind) for consumer in HTTP_SERVICES for kind in EVENT_TYPES]


def _known_queue(queue: str) -> str:
    """The queue a `dlq` argument names (with or without `.dlq`); exit 1 on a name no
    service could consume, before the broker is asked (which declares passively anyway)."""
    name = queue.removesuffix(".dlq")
    if name not in _queues():
        _unknown(queue)
    return name


def _unknown(queue: str, why: str = "`streamia dlq list` names them") -> NoReturn:
    typer.echo(f"unknown queue: {queue} ({why})", err=True)
    raise typer.Exit(1)


T = TypeVar("T")


def _with_bus(queue: str | None, fn: Callable[[EventBus], Awaitable[T]]) -> T:
    """Run `fn` with the bus the STREAMIA_* settings select (RabbitMQ, or the embedded one's
    file); a dead-letter queue the broker does not have is an unknown queue (exit 1)."""
    from streamia_kit.bus import UnknownQueue
    from streamia_kit.config import ServiceSettings
    from streamia_kit.infra import bus_from_settings

    async def run() -> T:
        bus = bus_from_settings(ServiceSettings())
        try:
            return await fn(bus)
        finally:
            await bus.close()

    try:
        return asyncio.run(run())
    except UnknownQueue:
        _unknown(queue or "?", "its dead-letter queue does not exist: has its service run?")


_FILTER = re.compile(r"(?P<path>[A-Za-z_][\w.]*)(?P<op>[=~])(?P<value>.*)", re.DOTALL)
_FILTER_FIELDS = ("queue", "id", "type", "attempts", "error", "message")
FilterOption = Annotated[
    list[str] | None,
    typer.Option(
        "--filter",
        help="PATH=VALUE (equal) or PATH~TEXT (contains), PATH a dotted path in what "
        "`dlq show` prints: type=user.deleted, message.data.user_id=42, error~timeout; "
        "repeatable, all must match",
        show_default=False,
    ),
]
IdsOption = Annotated[
    list[str] | None, typer.Option("--id", help="only these event ids", show_default=False)
]


def _field(letter: dict[str, Any], path: list[str]) -> Any:
    value: Any = letter
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


_MISSING = object()


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _selection(ids: list[str] | None, filters: list[str] | None) -> Selection:
    """The dead letters `--id` and `--filter` pick (all must hold); None: every one."""
    tests: list[Callable[[dict[str, Any]], bool]] = []
    if ids:
        wanted = set(ids)
        tests.append(lambda letter: letter["id"] in wanted)
    for text in filters or []:
        match = _FILTER.fullmatch(text)
        if match is None:
            raise typer.BadParameter(
                f"{text!r}: write PATH=VALUE or PATH~TEXT", param_hint="'--filter'"
            )
        path, op, value = match["path"].split("."), match["op"], match["value"]
        if path[0] not in _FILTER_FIELDS:
            raise typer.BadParameter(
                f"{text!r}: PATH starts with one of {', '.join(_FILTER_FIELDS)}",
                param_hint="'--filter'",
            )

        def test(
            letter: dict[str, Any], path: list[str] = path, op: str = op, value: str = value
        ) -> bool:
            found = _field(letter, path)
            if found is _MISSING:
                return False
            return _as_text(found) == value if op == "=" else value in _as_text(found)

        tests.append(test)
    if not tests:
        return None
    return lambda dead: all(test(dead.as_dict()) for test in tests)


@dlq_app.command("list")
def dlq_list() -> None:
    """Dead-letter counts per queue (read from the broker, nothing consumed)."""
    queues = _queues()
    counts = _with_bus(None, lambda bus: bus.dead_letter_counts(queues))
    found = sorted(queue for queue in queues if counts[queue] is not None)
    if not found:
        typer.echo("no dead-letter queues yet: has the platform run?", err=True)
    width = max((len(q) for q in found), default=10) + 4
    for queue in found:
        typer.echo(f"{queue + '.dlq':<{width}} {counts[queue]}")


@dlq_app.command("show")
def dlq_show(
    queue: str,
    limit: Annotated[int, typer.Option(min=1, help="at most this many")] = 20,
    filters: FilterOption = None,
) -> None:
    """Print the dead letters of a queue (`favorites.user.deleted`) as JSON lines."""
    name = _known_queue(queue)
    select = _selection(None, filters)
    letters = _with_bus(
        queue, lambda bus: bus.dead_letters(name, limit if select is None else _ALL)
    )
    shown = [letter for letter in letters if select is None or select(letter)][:limit]
    for letter in shown:
        typer.echo(orjson.dumps(letter.as_dict()).decode())
    if not shown:
        typer.echo(f"no dead letters in {queue}" + (" match" if select else ""), err=True)


@dlq_app.command("replay")
def dlq_replay(queue: str, ids: IdsOption = None, filters: FilterOption = None) -> None:
    """Send dead letters (all, or those --id/--filter pick) back to their queue.

    Each goes back with a fresh attempt count."""
    name = _known_queue(queue)
    select = _selection(ids, filters)
    count = _with_bus(queue, lambda bus: bus.replay(name, select))
    typer.echo(f"replayed {count} message(s) to {name}")


@dlq_app.command("purge")
def dlq_purge(
    queue: str,
    ids: IdsOption = None,
    filters: FilterOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
) -> None:
    """Delete dead letters (all, or those --id/--filter pick) for good, after confirmation."""
    name = _known_queue(queue)
    select = _selection(ids, filters)
    if not yes:
        if select is None:
            count = _with_bus(queue, lambda bus: bus.dead_letter_counts([name]))[name] or 0
        else:
            letters = _with_bus(queue, lambda bus: bus.dead_letters(name, _ALL))
            count = sum(1 for letter in letters if select(letter))
        if count == 0:
            typer.echo(f"no dead letters in {name}.dlq" + (" match" if select else ""))
            return
        typer.confirm(f"Delete {count} dead letter(s) from {name}.dlq for good?", abort=True)
    purged = _with_bus(queue, lambda bus: bus.purge(name, select))
    typer.echo(f"purged {purged} message(s) from {name}.dlq")


_ALL = 1_000_000


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
    """Create an admin account, asking for its password (an existing one is promoted).

    An existing account with that email is promoted instead; its password is left as it is."""
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
    """Create the demo admin and every demo movie that is missing (eight, with subtitles)."""
    from streamia import platform

    typer.echo(asyncio.run(platform.seed_demo(_for_a_person())))
    typer.echo(f"Demo admin password: {platform.DEMO_ADMIN_PASSWORD}")


@app.command()
def env(write_readme: bool = typer.Option(False, help="refresh the table in README.md")) -> None:
    """Print every STREAMIA_* environment variable as a Markdown table."""
    from streamia import platform

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
    from streamia import platform

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

    from streamia import platform
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
