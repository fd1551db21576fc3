"""/explore totals: counted once per catalogue version and search, kept warm in the background.

`<_TOTALS_KEY>:<catalogue version>:<hash of the folded search>` holds {"counts":
{category_key: count}, "ms": counting time}; a new version (any create, update or delete)
orphans them all. Rating changes move no total, so they keep the version.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from typing import Any

import structlog

from streamia_kit.cache import Cache, SingleFlight
from streamia_kit.db import Database, new_id
from streamia_kit.faults import Supervisor, is_transient
from streamia_movies.movies.repository import MoviesRepository

log = structlog.get_logger("streamia.movies.totals")

_TOTALS_KEY = "movies:explore:totals"
_VERSION_KEY = "movies:catalogue:version"
_VERSION_TTL = 7 * 24 * 3600.0


def total(counts: dict[str, int], category_keys: list[str] | None) -> int:
    if category_keys is None:
        return sum(counts.values())
    return sum(counts.get(key, 0) for key in category_keys)


class ExploreTotals:
    """The counts per category of a search, cached; owns the task that recounts them after
    a catalogue change (debounced by `warm_delay`) and at start, for the whole catalogue and
    the `warm_searches` most recent searches, so the next visitor does not pay for a count.
    The task runs under a `Supervisor` (`explore-warmer`)."""

    def __init__(
        self,
        cache: Cache,
        db: Database,
        ttl: float = 300.0,
        warm_delay: float = 1.0,
        warm_searches: int = 32,
    ) -> None:
        self.cache = cache
        self.db = db
        self.ttl = ttl
        self.warm_delay = warm_delay
        self.warm_searches = warm_searches
        self._flight = SingleFlight()
        self._recent: OrderedDict[str, None] = OrderedDict()  # folded searches, newest last
        self._due = asyncio.Event()  # a pass is wanted
        self._next_delay = warm_delay
        self._warming = False
        self.warmer = Supervisor("explore-warmer", self._warm_loop, service="movies")

    async def version(self) -> str:
        version = await self.cache.get(_VERSION_KEY)
        if version is None:  # first use, or expired/evicted: any fresh token will do
            version = new_id()
            await self.cache.set(_VERSION_KEY, version, _VERSION_TTL)
        return str(version)

    def remember(self, search: str) -> None:
        """Note a search a visitor made, so the warmer counts it again after a change."""
        if search and self.warm_searches > 0:
            self._recent[search] = None
            self._recent.move_to_end(search)
            if len(self._recent) > self.warm_searches:
                self._recent.popitem(last=False)

    async def counts(self, repo: MoviesRepository, version: str, search: str) -> dict[str, Any]:
        """{"counts": {category_key: count}, "ms": how long counting took}, cached."""
        digest = hashlib.sha256(search.encode()).hexdigest()[:32]
        key = f"{_TOTALS_KEY}:{version}:{digest}"
        cached = await self.cache.get(key)
        if cached is not None:
            return cached

        async def load() -> dict[str, Any]:
            started = time.perf_counter()
            counts = await repo.category_totals(search)
            # The time of the index pass that found the matches prices the plan that
            # fetches them all again (SQLite); the walk is priced per row.
            totals = {"counts": counts, "ms": (time.perf_counter() - started) * 1000}
            await self.cache.set(key, totals, self.ttl)
            return totals

        return await self._flight.do(key, load)

    async def changed(self) -> None:
        """After a committed create, update or delete: cached totals are stale.

        Called once the transaction has committed (a count that read the old rows under
        the old version can then only be stored under that version, never read again)."""
        await self.cache.set(_VERSION_KEY, new_id(), _VERSION_TTL)
        self.schedule_warm()

    def schedule_warm(self, delay: float | None = None) -> None:
        """Count the totals of the current version in the background: the whole catalogue's
        (every list and category filter needs them) and the recent searches'. Changes
        arriving meanwhile are coalesced into one more pass."""
        if not self._due.is_set():
            self._next_delay = self.warm_delay if delay is None else delay
        self._due.set()

    async def _warm_loop(self) -> None:
        while True:
            await self._due.wait()
            await asyncio.sleep(self._next_delay)  # changes arriving meanwhile: one pass
            self._due.clear()
            self._next_delay = self.warm_delay
            self._warming = True
            try:
                await self.warm()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                # The cache or the database is away: a cold count later is the only cost.
                log.warning("explore_warm_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            finally:
                self._warming = False

    @property
    def idle(self) -> bool:
        """No warm pass running or wanted."""
        return not self._due.is_set() and not self._warming

    async def warm(self) -> int:
        """Count (or find cached) the totals of "" and of each recent search, newest first;
        stops early once the catalogue changes again. Returns how many it went through."""
        version = await self.version()
        done = 0
        for search in ["", *reversed(self._recent)]:
            if await self.version() != version:
                break
            async with self.db.sessions() as session:
                await self.counts(MoviesRepository(session), version, search)
            done += 1
        return done

    async def start(self) -> None:
        self.schedule_warm(delay=0.0)
        self.warmer.start()

    async def stop(self) -> None:
        await self.warmer.stop()
