"""Realistic Streamia viewers for Locust (issue 16 point 5): run by `bench/load.py` (steps the
user count up to the highest this machine sustains) and `tests/e2e/test_load.py` (30 s in CI).

    .venv/bin/locust -f bench/locustfile.py --headless --host http://127.0.0.1:8080 \\
        --users 50 --spawn-rate 5 --run-time 60s --movie-ids ID1,ID2 [--think-time 1]

Each simulated viewer signs up once (its own account), logs in, and then, with pauses like a
person's (2-8 s by default, scaled by --think-time), mostly browses: the catalogue pages and
searches, a movie's page (the movie, its comments, its rating summary), and watching: a few
consecutive 256 KiB Range requests of the video, like a player buffering, and a progress
report. Now and then it favorites (or unfavorites) a movie, rates one, comments. After 20 to
60 actions (--session-actions 40) its session ends: it logs out and logs in again, so
password checks (argon2, the expensive request) stay about one in a hundred requests, as on
a real site.

Every viewer sends its own `X-Forwarded-For` address: behind a gateway that trusts the load
generator as its ingress (STREAMIA_TRUSTED_PROXIES), the per-IP limits count per viewer, as
in production; elsewhere the header is ignored. `--movie-ids` are movies with stored media
(their stream answers 206); the catalogue browsed is whatever the platform holds.

Requests are named by route (`GET /api/movies/:id`), so the statistics have one row per
route; a response with the wrong status or shape counts as a failure. With --steady they
start over once the last viewer has signed up and logged in: the steady state, where password
checks are the occasional returning log-in.
"""

from __future__ import annotations

import itertools
import logging
import random
import uuid
from collections.abc import Callable
from typing import Any

from locust import FastHttpUser, events, task
from locust.argument_parser import LocustArgumentParser

PASSWORD = "Str0ng!Passw0rd"
CHUNK = 256 * 1024  # a player's Range request
SEARCHES = ("the", "movie", "night", "love", "war", "a")
SORTS = ("newest", "title", "rating")
CATEGORIES = ("Drama", "Comedy", "Action", "Documentary")
_addresses = itertools.count(random.randrange(1 << 23))  # runs of bench/load.py differ
_signed_in = itertools.count(1)


@events.init_command_line_parser.add_listener
def _options(parser: LocustArgumentParser) -> None:
    parser.add_argument(
        "--movie-ids",
        default="",
        help="comma-separated ids of movies with stored media (streamed, rated, commented)",
    )
    parser.add_argument(
        "--think-time",
        type=float,
        default=1.0,
        help="scale of the 2-8 s pauses between a viewer's actions",
    )
    parser.add_argument(
        "--session-actions",
        type=int,
        default=40,
        help="mean actions per session (uniform between half and one and a half of it)",
    )
    parser.add_argument(
        "--steady",
        action="store_true",
        help="reset the statistics once every viewer has signed up and logged in",
    )


def _address(n: int) -> str:
    """A distinct private IPv4 address per viewer: 10.x.y.z."""
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


class Viewer(FastHttpUser):
    """One person on the site: signs up once, then browses and watches."""

    def wait_time(self) -> float:
        return float(self.environment.parsed_options.think_time) * random.uniform(2.0, 8.0)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.movies: list[str] = [m for m in options.movie_ids.split(",") if m]
        if not self.movies:
            raise ValueError("--movie-ids: at least one movie with stored media is needed")
        self.sizes: dict[str, int] = {}
        self.favorites: set[str] = set()
        self.headers = {"X-Forwarded-For": _address(next(_addresses))}
        self.email = f"load-{uuid.uuid4().hex[:12]}@example.com"
        self.auth = dict(self.headers)
        self.signed_up = False
        self._sign_up()
        options = self.environment.parsed_options
        if options.steady and next(_signed_in) == options.num_users and self.environment.runner:
            for error in self.environment.runner.stats.errors.values():
                logging.warning("while signing up: %s x %s", error.occurrences, error.to_name())
            self.environment.runner.stats.reset_all()

    def _try_again_later(self) -> None:
        """After a failed sign-up or log-in a person tries again a few actions later."""
        self.actions_left = random.randint(3, 6)

    def _sign_up(self) -> None:
        with self.client.post(
            "/api/users/register",
            json={
                "firstName": "Load",
                "lastName": "Viewer",
                "age": 30,
                "email": self.email,
                "password": PASSWORD,
                "confirmPassword": PASSWORD,
            },
            headers=self.headers,
            name="POST /api/users/register",
            catch_response=True,
        ) as resp:
            if resp.status_code != 201:
                resp.failure(f"register -> {resp.status_code} {resp.text[:200]}")
                self._try_again_later()
                return
        self.signed_up = True
        self._log_in()

    def _log_in(self) -> None:
        self.auth = dict(self.headers)
        with self.client.post(
            "/api/users/login",
            json={"email": self.email, "password": PASSWORD},
            headers=self.headers,
            name="POST /api/users/login",
            catch_response=True,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"login -> {resp.status_code} {resp.text[:200]}")
                self._try_again_later()
                return
            self.auth["Authorization"] = f"Bearer {resp.json()['token']}"
        mean = self.environment.parsed_options.session_actions
        self.actions_left = random.randint(max(1, mean // 2), max(1, mean * 3 // 2))

    @property
    def logged_in(self) -> bool:
        return "Authorization" in self.auth

    def _session(self) -> None:
        """Count one action; at the session's end log out and back in (a returning visit)."""
        self.actions_left -= 1
        if self.actions_left > 0:
            return
        if not self.signed_up:
            self._sign_up()
            return
        if self.logged_in:
            with self.client.post(
                "/api/users/logout", headers=self.auth, name="POST /api/users/logout"
            ):
                pass
        self._log_in()

    def _movie(self) -> str:
        return random.choice(self.movies)

    def _json(
        self,
        method: str,
        path: str,
        name: str,
        expect: int = 200,
        check: Callable[[Any], bool] | None = None,
        **kwargs: Any,
    ) -> Any:
        """One request; a failure unless it answers `expect` with a JSON body (that passes
        `check`, when given)."""
        kwargs.setdefault("headers", self.auth)
        with self.client.request(method, path, name=name, catch_response=True, **kwargs) as resp:
            if resp.status_code != expect:
                resp.failure(f"{name} -> {resp.status_code} {resp.text[:200]}")
                return None
            try:
                body = resp.json()
            except ValueError:
                resp.failure(f"{name}: not JSON")
                return None
            if check is not None and not check(body):
                resp.failure(f"{name}: unexpected body {resp.text[:200]}")
                return None
            return body

    # -- browsing (most of the traffic) ------------------------------------------------

    @task(20)
    def browse(self) -> None:
        self._session()
        params = {"page": random.randint(1, 3), "limit": 20, "sort": random.choice(SORTS)}
        self._json(
            "GET", "/api/movies", "GET /api/movies", params=params, check=lambda b: "data" in b
        )

    @task(8)
    def search(self) -> None:
        self._session()
        params: dict[str, Any] = {"limit": 20}
        if random.random() < 0.5:
            params["search"] = random.choice(SEARCHES)
        else:
            params["category"] = random.choice(CATEGORIES)
        self._json("GET", "/api/movies/explore", "GET /api/movies/explore", params=params)

    @task(15)
    def open_movie(self) -> None:
        self._session()
        movie = self._movie()
        self._json(
            "GET",
            f"/api/movies/{movie}",
            "GET /api/movies/:id",
            check=lambda body: body["data"]["id"] == movie,
        )
        self._json("GET", f"/api/comments/movie/{movie}", "GET /api/comments/movie/:id")
        self._json("GET", f"/api/ratings/movie/{movie}", "GET /api/ratings/movie/:id")

    # -- watching ------------------------------------------------------------------------

    @task(10)
    def watch(self) -> None:
        """Three consecutive 256 KiB ranges from a random point, then a progress report."""
        self._session()
        movie = self._movie()
        size = self.sizes.get(movie)
        if not self.logged_in:  # the player asks to log in first
            return
        start = random.randrange(0, max(1, size - CHUNK)) if size else 0
        for _ in range(3):
            end = start + CHUNK - 1
            with self.client.get(
                f"/api/movies/{movie}/stream",
                headers={**self.auth, "Range": f"bytes={start}-{end}"},
                name="GET /api/movies/:id/stream",
                catch_response=True,
            ) as resp:
                content_range = resp.headers.get("Content-Range") or ""
                total = content_range.rpartition("/")[2]
                if resp.status_code != 206 or not total.isdigit():
                    resp.failure(
                        f"stream -> {resp.status_code} {content_range!r}"
                        f" {resp.headers.get('Content-Type')!r} {resp.text[:200]!r}"
                    )
                    return
                size = self.sizes[movie] = int(total)
                if len(resp.content or b"") != min(end, size - 1) - start + 1:
                    resp.failure(f"stream: {len(resp.content or b'')} bytes for {start}-{end}")
                    return
            start = end + 1
            if start >= size:
                break
        position = round(random.uniform(0, 599), 1)
        self._json(
            "PUT",
            f"/api/playback/progress/{movie}",
            "PUT /api/playback/progress/:id",
            json={"position": position, "duration": 600.0},
        )

    # -- writes (a few per session) ------------------------------------------------------

    @task(3)
    def favorite(self) -> None:
        """Toggle a favorite, as the heart button does."""
        self._session()
        if not self.logged_in:
            return
        # Half the time a movie already on the list comes off it (people tidy their list),
        # so removals happen in every run, not only when a random pick repeats.
        if self.favorites and random.random() < 0.5:
            movie = random.choice(sorted(self.favorites))
        else:
            movie = self._movie()
        if movie in self.favorites:
            if self._json("DELETE", f"/api/favorites/{movie}", "DELETE /api/favorites/:movieId"):
                self.favorites.discard(movie)
        else:
            body = {"movieId": movie, "note": "to watch"}
            if self._json("POST", "/api/favorites", "POST /api/favorites", 201, json=body):
                self.favorites.add(movie)
        self._json("GET", "/api/favorites", "GET /api/favorites")

    @task(3)
    def rate(self) -> None:
        self._session()
        if not self.logged_in:
            return
        body = {"movieId": self._movie(), "rating": random.randint(1, 5)}
        with self.client.post(
            "/api/ratings",
            json=body,
            headers=self.auth,
            name="POST /api/ratings",
            catch_response=True,
        ) as resp:
            if resp.status_code not in (200, 201):  # updated or created
                resp.failure(f"rate -> {resp.status_code} {resp.text[:200]}")

    @task(2)
    def comment(self) -> None:
        self._session()
        if not self.logged_in:
            return
        body = {"movieId": self._movie(), "text": f"Loved it ({uuid.uuid4().hex[:6]})"}
        self._json("POST", "/api/comments", "POST /api/comments", 201, json=body)
