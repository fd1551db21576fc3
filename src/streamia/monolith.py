"""`streamia import-monolith`: the monolith's MongoDB data into each service's own database.

Every row goes in through the owning service's import code (its rules, its tables). The
import announces nothing on the bus: replaying 100,000 `user.registered` would mail every
imported user a welcome, and a million rating events would keep the relays busy for an
hour. It writes what those events would have left behind itself, with the same code the
consumers run: the movie projection of favorites, ratings and comments (`MovieProjection.
apply_many`, the `movie.created` consumer's upsert), comment authors' display names (the
`user.registered` upsert, newest version wins), the ratings service's per-movie counters and
the movies service's rating summary (`apply_rating`, the `rating.*` consumer's update).

Idempotent and resumable: every batch commits on its own and a row whose id is already
stored is left alone, so a second run (or a run after a crash) writes only what is missing
and the derived projections are re-synced from the stored rows every time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson
from bson import ObjectId
from bson.json_util import RELAXED_JSON_OPTIONS, dumps
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from streamia import platform
from streamia.mongodump import DumpError, Source, find_sources
from streamia_catalogue_projection import USER
from streamia_kit.bulk import Loaded, all_values
from streamia_kit.config import ServiceSettings
from streamia_kit.db import ensure_database
from streamia_kit.infra import Infrastructure
from streamia_kit.migrations import migrate

COLLECTIONS = ("users", "movies", "favorites", "ratings", "comments")
SERVICES = ("users", "movies", "favorites", "ratings", "comments")
BATCH = 2000


class ImportFailed(Exception):
    """The import cannot go on (unreadable file, unreachable database); one line for people."""


@dataclass
class Tally:
    collection: str
    read: int = 0
    imported: int = 0
    rejected: int = 0
    seconds: float = 0.0

    @property
    def unchanged(self) -> int:
        return self.read - self.imported - self.rejected

    @property
    def rate(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0


# -- from documents to the services' import records ------------------------------------------


def _id(value: Any) -> str | None:
    """An ObjectId (or its 24-hex string, as mongoexport without Extended JSON writes it)."""
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, dict) and isinstance(value.get("$oid"), str):
        value = value["$oid"]
    if isinstance(value, str) and ObjectId.is_valid(value):
        return value.lower()
    return None


def _when(value: Any, doc_id: str) -> datetime:
    """A stored timestamp; without one, the moment the ObjectId was minted (it holds it)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            pass
    return ObjectId(doc_id).generation_time


def _times(doc: dict[str, Any], doc_id: str) -> dict[str, datetime]:
    created = _when(doc.get("createdAt"), doc_id)
    updated = _when(doc.get("updatedAt"), doc_id) if doc.get("updatedAt") else created
    return {"created_at": created, "updated_at": max(created, updated)}


def _user(doc: dict[str, Any], doc_id: str) -> Any:
    from streamia_users.users.imports import MonolithUser

    return MonolithUser(
        id=doc_id,
        first_name=doc.get("firstName"),
        last_name=doc.get("lastName"),
        age=doc.get("age"),
        email=doc.get("email"),
        password_hash=doc.get("password"),
        **_times(doc, doc_id),
    )


def _movie(doc: dict[str, Any], doc_id: str) -> Any:
    from streamia_movies.movies.imports import MonolithMovie, MonolithSubtitle

    tracks = doc.get("subtitles")
    if not isinstance(tracks, list):
        tracks = []
    return MonolithMovie(
        id=doc_id,
        title=doc.get("title"),
        description=doc.get("description"),
        category=doc.get("category"),
        video_url=doc.get("videoUrl"),
        cover_image=doc.get("coverImage"),
        cloudinary_public_id=doc.get("cloudinaryPublicId"),
        duration=doc.get("duration"),
        subtitles=[
            MonolithSubtitle(
                id=_id(t.get("_id")),
                language=t.get("language"),
                label=t.get("label"),
                url=t.get("url"),
            )
            for t in tracks
            if isinstance(t, dict)
        ],
        **_times(doc, doc_id),
    )


def _favorite(doc: dict[str, Any], doc_id: str) -> Any:
    from streamia_favorites.favorites.imports import MonolithFavorite

    return MonolithFavorite(
        id=doc_id,
        user_id=_id(doc.get("userId")),
        movie_id=_id(doc.get("movieId")),
        note=doc.get("note"),
        **_times(doc, doc_id),
    )


def _rating(doc: dict[str, Any], doc_id: str) -> Any:
    from streamia_ratings.ratings.imports import MonolithRating

    return MonolithRating(
        id=doc_id,
        user_id=_id(doc.get("userId")),
        movie_id=_id(doc.get("movieId")),
        rating=doc.get("rating"),
        **_times(doc, doc_id),
    )


def _comment(doc: dict[str, Any], doc_id: str) -> Any:
    from streamia_comments.comments.imports import MonolithComment

    return MonolithComment(
        id=doc_id,
        user_id=_id(doc.get("userId")),
        movie_id=_id(doc.get("movieId")),
        text=doc.get("text"),
        **_times(doc, doc_id),
    )


RECORDS: dict[str, Callable[[dict[str, Any], str], Any]] = {
    "users": _user,
    "movies": _movie,
    "favorites": _favorite,
    "ratings": _rating,
    "comments": _comment,
}


class Rejects:
    """`rejects.jsonl`: one refused document per line with its collection and the reason."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def __enter__(self) -> Rejects:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("wb")
        return self

    def __exit__(self, *_: object) -> None:
        if self._file is not None:
            self._file.close()

    def write(self, collection: str, doc_id: str, reason: str, doc: dict[str, Any] | None) -> None:
        assert self._file is not None
        shown = None
        if doc is not None:
            # Never a password hash in a file meant to be passed around.
            shown = {k: v for k, v in doc.items() if k != "password"}
            shown = orjson.loads(dumps(shown, json_options=RELAXED_JSON_OPTIONS))
        line = {"collection": collection, "id": doc_id, "reason": reason, "document": shown}
        self._file.write(orjson.dumps(line) + b"\n")


# -- the run ----------------------------------------------------------------------------------


class MonolithImport:
    """One run: opens each service's database (creating and migrating it as `serve` would),
    loads the collections in dependency order and keeps the tallies."""

    def __init__(
        self,
        dump: Path,
        rejects: Path,
        admins: Sequence[str] = (),
        overrides: dict[str, Any] | None = None,
        console: Console | None = None,
    ) -> None:
        self.dump = dump
        self.rejects_path = rejects
        self.admins = list(admins)
        self.overrides = overrides or {}
        self.console = console or Console(stderr=True)
        self.apps: dict[str, Any] = {}
        self.tallies: dict[str, Tally] = {}
        self.promoted: list[str] = []

    # -- plumbing

    def _build(self) -> Infrastructure:
        infra = Infrastructure.from_settings(ServiceSettings(**self.overrides))
        for name in SERVICES:
            module = platform.load(name)
            if module is None:
                raise ImportFailed(f"the {name} service is not installed")
            # A batch of thousands of rows is not a request: no statement timeout for it.
            settings = module.settings_cls(
                **{"database_statement_timeout_seconds": 0, **self.overrides}
            )
            self.apps[name] = module.app.create_app(settings, infra=infra, manage_lifecycle=False)
        return infra

    async def _open_databases(self) -> None:
        for name, app in self.apps.items():
            service = app.state.service
            url = service.settings.resolved_database_url()
            try:
                if service.settings.create_database:
                    await ensure_database(url)
                await migrate(service.migrations, url)
            except Exception as exc:
                raise ImportFailed(f"{name} database unusable: {_reason(exc)}") from exc

    def _db(self, name: str) -> Any:
        return self.apps[name].state.service.db

    # -- the steps

    def check(self) -> dict[str, tuple[Source, int]]:
        """Find and read every file once before writing anything: a bad file stops the
        import here, with nothing half-imported."""
        if not self.dump.is_dir():
            raise ImportFailed(f"{self.dump}: not a folder (give the mongodump/mongoexport folder)")
        sources = find_sources(self.dump, COLLECTIONS)
        if not sources:
            names = ", ".join(COLLECTIONS)
            raise ImportFailed(f"{self.dump}: no {names} files (.bson, .json) in it")
        checked = {}
        with self.console.status("Checking the dump files…"):
            for name, source in sources.items():
                try:
                    checked[name] = (source, source.count())
                except DumpError as exc:
                    raise ImportFailed(str(exc)) from None
        return checked

    async def run(self) -> list[Tally]:
        checked = self.check()
        infra = self._build()
        try:
            await self._open_databases()
            with Rejects(self.rejects_path) as rejects, self._progress() as progress:
                await self._load(checked, rejects, progress)
        finally:
            for app in self.apps.values():
                await app.state.service.db.dispose()
            await infra.close()
        return [self.tallies[c] for c in COLLECTIONS if c in self.tallies]

    def _progress(self) -> Progress:
        return Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>9} rows/s"),
            TimeRemainingColumn(),
            console=self.console,
        )

    async def _load(
        self, checked: dict[str, tuple[Source, int]], rejects: Rejects, progress: Progress
    ) -> None:
        from streamia_comments.comments.imports import import_authors, import_comments
        from streamia_favorites.favorites.imports import import_favorites
        from streamia_movies.movies.imports import import_movies
        from streamia_ratings.ratings.imports import import_ratings
        from streamia_users.users.imports import import_users

        async def users(session: Any, batch: list[Any]) -> Loaded:
            return await import_users(session, batch)

        async def movies(session: Any, batch: list[Any]) -> Loaded:
            return await import_movies(session, batch)

        await self._collection("users", checked, rejects, progress, users)
        await self._collection("movies", checked, rejects, progress, movies)
        await self._promote()

        user_ids, authors = await self._users()
        known_movies = await self._project_movies()
        comments_service = self.apps["comments"].state.comments
        ratings_service = self.apps["ratings"].state.ratings
        buried: dict[str, set[str]] = {}
        for name in ("favorites", "ratings", "comments"):
            buried[name] = await self._buried_users(name)
        async with self._db("comments").transaction() as session:
            await import_authors(session, authors, buried["comments"])

        async def favorites(session: Any, batch: list[Any]) -> Loaded:
            return await import_favorites(
                session, batch, user_ids, known_movies["favorites"], buried["favorites"]
            )

        async def ratings(session: Any, batch: list[Any]) -> Loaded:
            return await import_ratings(
                session,
                batch,
                user_ids,
                known_movies["ratings"],
                buried["ratings"],
                ratings_service,
            )

        async def comments(session: Any, batch: list[Any]) -> Loaded:
            return await import_comments(
                session,
                batch,
                user_ids,
                known_movies["comments"],
                buried["comments"],
                comments_service,
            )

        await self._collection("favorites", checked, rejects, progress, favorites)
        await self._collection("ratings", checked, rejects, progress, ratings)
        await self._collection("comments", checked, rejects, progress, comments)
        await self._sync_rating_summaries()

    async def _collection(
        self,
        name: str,
        checked: dict[str, tuple[Source, int]],
        rejects: Rejects,
        progress: Progress,
        load: Callable[[Any, list[Any]], Any],
    ) -> None:
        if name not in checked:
            return
        source, total = checked[name]
        tally = self.tallies[name] = Tally(name)
        task = progress.add_task(name, total=total, rate="")
        started = time.perf_counter()
        db = self._db(name)  # each collection lands in the service of the same name
        for docs in _batches(source.documents(), BATCH):
            by_id: dict[str, dict[str, Any]] = {}
            records = []
            for doc in docs:
                doc_id = _id(doc.get("_id"))
                if doc_id is None:
                    tally.rejected += 1
                    rejects.write(name, repr(doc.get("_id"))[:80], "invalid _id", doc)
                    continue
                by_id[doc_id] = doc
                records.append(RECORDS[name](doc, doc_id))
            try:
                async with db.transaction() as session:
                    loaded: Loaded = await load(session, records)
            except Exception as exc:
                raise ImportFailed(f"{name}: {_reason(exc)} (run again to resume)") from exc
            tally.imported += loaded.changed
            # "<movie id>/subtitles/<n>" refuses one track; the movie itself is imported.
            tally.rejected += sum(1 for row_id, _ in loaded.rejects if "/" not in row_id)
            for row_id, reason in loaded.rejects:
                rejects.write(name, row_id, reason, by_id.get(row_id.split("/")[0]))
            tally.read += len(docs)
            tally.seconds = time.perf_counter() - started
            progress.update(task, advance=len(docs), rate=f"{tally.rate:,.0f}")
        tally.seconds = time.perf_counter() - started

    async def _promote(self) -> None:
        from streamia_kit.errors import StreamiaError

        users = self.apps["users"].state.users
        for email in self.admins:
            try:
                async with self._db("users").transaction() as session:
                    before = await _role(session, email)
                    user = await users.promote(session, email)
            except StreamiaError as exc:
                raise ImportFailed(f"--admin {email}: {exc}") from None
            if before != "admin":
                self.promoted.append(user.email)

    async def _users(self) -> tuple[set[str], list[tuple[str, str, str, float]]]:
        """Every account's id, and the display names comments shows."""
        from streamia_users.users.imports import USERS

        c = USERS.c
        async with self._db("users").sessions() as session:
            rows = await all_values(session, c.id, c.first_name, c.last_name, c.updated_at)
        return {r[0] for r in rows}, [(r[0], r[1], r[2], r[3].timestamp()) for r in rows]

    async def _project_movies(self) -> dict[str, dict[str, Any]]:
        """Each dependent service's movie projection brought up to date with every movie, as
        `movie.created` would have; returns what each projection now knows."""
        from streamia_movies.movies.imports import snapshots

        async with self._db("movies").sessions() as session:
            movies = await snapshots(session)
        known: dict[str, dict[str, Any]] = {}
        for name in ("favorites", "ratings", "comments"):
            projection = getattr(self.apps[name].state, name).movies
            for start in range(0, len(movies), 500):
                async with self._db(name).transaction() as session:
                    await projection.apply_many(session, movies[start : start + 500])
            async with self._db(name).sessions() as session:
                known[name] = await projection.get_many(session, [m.movie_id for m in movies])
        return known

    async def _buried_users(self, name: str) -> set[str]:
        tombstones = getattr(self.apps[name].state, name).tombstones.table
        async with self._db(name).sessions() as session:
            rows = await all_values(
                session, tombstones.c.subject_id, where=tombstones.c.kind == USER
            )
        return {r[0] for r in rows}

    async def _sync_rating_summaries(self) -> None:
        """The movies service's rating summary from the ratings service's counters."""
        from streamia_movies.movies.imports import apply_rating_summaries
        from streamia_ratings.ratings.imports import summaries

        async with self._db("ratings").sessions() as session:
            stored = await summaries(session)
        async with self._db("movies").transaction() as session:
            changed = await apply_rating_summaries(session, stored)
        movies = self.apps["movies"].state.movies
        try:
            for movie_id in changed:
                await movies.cache.invalidate(movie_id)
            if self.tallies.get("movies", Tally("movies")).imported:
                await movies.totals.changed()
                await movies.totals.stop()
        except Exception as exc:  # the data is committed; only cached copies may lag
            self.console.print(
                f"[yellow]warning:[/yellow] cache not refreshed ({_reason(exc)}): cached movies"
                " and catalogue totals catch up when they expire (60 s / 5 min)"
            )


async def _role(session: Any, email: str) -> str | None:
    from streamia_users.users.repository import UsersRepository

    user = await UsersRepository(session).get_by_email(email.strip().lower())
    return user.role if user else None


def _batches(docs: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]


def summary_table(tallies: Sequence[Tally]) -> Table:
    table = Table(title="import-monolith")
    for column in ("collection", "in dump", "imported", "already there", "refused", "rows/s"):
        table.add_column(column, justify="left" if column == "collection" else "right")
    for t in tallies:
        table.add_row(
            t.collection,
            f"{t.read:,}",
            f"{t.imported:,}",
            f"{t.unchanged:,}",
            f"{t.rejected:,}",
            f"{t.rate:,.0f}",
        )
    return table
