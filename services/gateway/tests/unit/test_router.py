"""Prefix routing on whole path segments."""

from __future__ import annotations

import pytest

from streamia_gateway.config import GatewaySettings
from streamia_gateway.routing import Router


@pytest.fixture
def router() -> Router:
    return Router(
        GatewaySettings(
            users_url="http://users:1",
            movies_url="http://movies:2/",
            favorites_url="http://favorites:3",
            ratings_url="http://ratings:4",
            comments_url="http://comments:5",
            playback_url="http://playback:7",
        )
    )


@pytest.mark.parametrize(
    ("path", "name", "base"),
    [
        ("/api/users", "users", "http://users:1"),
        ("/api/users/me", "users", "http://users:1"),
        ("/.well-known/jwks.json", "users", "http://users:1"),
        ("/api/movies/1/stream", "movies", "http://movies:2"),
        ("/api/favorites/", "favorites", "http://favorites:3"),
        ("/api/ratings/movie/1", "ratings", "http://ratings:4"),
        ("/api/comments/moderation", "comments", "http://comments:5"),
        ("/api/playback/continue", "playback", "http://playback:7"),
    ],
)
def test_known_prefixes_map_to_their_upstream(
    router: Router, path: str, name: str, base: str
) -> None:
    upstream = router.match(path)
    assert upstream is not None
    assert (upstream.name, upstream.base_url) == (name, base)


@pytest.mark.parametrize(
    "path",
    [
        "/api/usersx",
        "/api/user",
        "/api/notifications",
        "/.well-known/other",
        "/api/users/../internal",
        "/api/users/./me",
        "/api/movies/..",
        "/",
    ],
)
def test_anything_else_has_no_upstream(router: Router, path: str) -> None:
    assert router.match(path) is None
