"""The `streamia` command line."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from streamia import platform

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Streamia platform.")
dlq_app = typer.Typer(no_args_is_help=True, help="Inspect and replay dead-lettered events.")
users_app = typer.Typer(no_args_is_help=True, help="Manage accounts.")
app.add_typer(dlq_app, name="dlq")
app.add_typer(users_app, name="users")

ROOT = Path(__file__).resolve().parents[2]


def _run(main: Any) -> Any:
    """Run a server coroutine on uvloop (the event loop uvicorn is configured for)."""
    import uvloop

    return uvloop.run(main)


@app.command()
def up() -> None:
    """Start the whole platform in one process (embedded mode) and print where to open it."""
    try:
        _run(platform.run_embedded(seed=True))
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


async def _with_bus(fn):  # noqa: ANN001, ANN202
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
    letters = asyncio.run(
        _with_bus(lambda bus: bus.dead_letters(queue.removesuffix(".dlq"), limit))
    )
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
    count = asyncio.run(_with_bus(lambda bus: bus.replay(queue.removesuffix(".dlq"), ids or None)))
    typer.echo(f"replayed {count} message(s) to {queue.removesuffix('.dlq')}")


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
    email: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    first_name: str = "Admin",
    last_name: str = "Streamia",
) -> None:
    """Create an admin account (or promote the existing account with that email)."""
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


def main() -> None:
    app()
