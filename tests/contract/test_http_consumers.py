"""Consumer side of the HTTP pacts: the service-to-service calls, run against Pact's mock server.

- the movie projection's catch-up call (`MovieClient`, used by favorites, ratings and comments
  when an event has not arrived yet) → movies `GET /api/movies/{id}`;
- the gateway's token verification (`JwksKeys`) → users `GET /.well-known/jwks.json`.

The real client code makes the calls; the pacts are written to `contracts/pacts/` and must
match the committed files. The providers' tests replay them against the real services.
"""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pact import Pact, match

from streamia_catalogue_projection.client import MovieClient
from streamia_kit.auth import JwksKeys, MemoryRevocationStore, SigningKey, TokenVerifier

PACTS = Path(__file__).resolve().parents[2] / "contracts" / "pacts"
MOVIE_ID = "0b9e8d7c6b5a49384756a1b2c3d4e5f6"
ISO_TIME = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})"
# A fixed key, so the example JWKS (and the pact file) are the same on every run.
EXAMPLE_KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))


def _write_and_compare(pact: Pact, name: str) -> None:
    """Write the pact into the repo; fail when its contract differs from the committed one
    (its `metadata`, the Pact library versions, may change with the lock without failing)."""
    committed = PACTS / name
    before = json.loads(committed.read_text(encoding="utf-8")) if committed.exists() else {}
    pact.write_file(PACTS, overwrite=True)
    after = json.loads(committed.read_text(encoding="utf-8"))
    before.pop("metadata", None)
    after.pop("metadata", None)
    assert before == after, f"contracts/pacts/{name} changed: review the diff and commit it"


async def test_the_projection_catches_up_a_movie_and_learns_an_unknown_one_is_missing() -> None:
    pact = Pact("catalogue-projection", "movies").with_specification("V4")
    (
        pact.upon_receiving("a request for a movie")
        .given("a movie exists", id=MOVIE_ID, title="Nosferatu")
        .with_request("GET", f"/api/movies/{MOVIE_ID}")
        .will_respond_with(200)
        .with_body(
            {
                "data": {
                    "id": MOVIE_ID,
                    "title": "Nosferatu",
                    "coverImage": match.str("https://cdn.example.com/nosferatu.jpg"),
                    "videoUrl": match.str("https://cdn.example.com/nosferatu.mp4"),
                    "duration": match.number(5640.0),
                    "hasAudio": match.bool(True),
                    "category": match.str("horror"),
                    "updatedAt": match.regex("2030-01-01T00:00:00.000001Z", regex=ISO_TIME),
                }
            },
            "application/json",
        )
    )
    (
        pact.upon_receiving("a request for a movie the service does not know")
        .given("no movie has the id", id="ffffffffffffffffffffffffffffffff")
        .with_request("GET", "/api/movies/ffffffffffffffffffffffffffffffff")
        .will_respond_with(404)
    )
    with pact.serve() as server:
        client = MovieClient(str(server.url))
        try:
            found = await client.fetch(MOVIE_ID)
            missing = await client.fetch("ffffffffffffffffffffffffffffffff")
        finally:
            await client.close()

    assert found is not None and missing is None
    assert (found.movie_id, found.title, found.category) == (MOVIE_ID, "Nosferatu", "horror")
    assert found.duration == 5640.0 and found.has_audio is True and found.version > 0
    _write_and_compare(pact, "catalogue-projection-movies.json")


async def test_the_gateway_verifies_a_token_with_the_key_the_users_service_publishes() -> None:
    jwk = EXAMPLE_KEY.jwk()
    pact = Pact("gateway", "users").with_specification("V4")
    (
        pact.upon_receiving("a request for the token signing keys")
        .with_request("GET", "/.well-known/jwks.json")
        .will_respond_with(200)
        .with_body(
            {
                "keys": match.each_like(
                    {
                        "kty": "OKP",
                        "crv": "Ed25519",
                        "alg": "EdDSA",
                        "use": "sig",
                        "x": match.regex(jwk["x"], regex=r"[A-Za-z0-9_-]{43}"),
                        "kid": match.str(jwk["kid"]),
                    }
                )
            },
            "application/json",
        )
    )
    token = EXAMPLE_KEY.issue("u-1", "ana@example.com", "user", 600)
    with pact.serve() as server:
        verifier = TokenVerifier(
            JwksKeys(f"{server.url}/.well-known/jwks.json"), MemoryRevocationStore()
        )
        identity = await verifier.verify(token)

    assert (identity.id, identity.email, identity.role) == ("u-1", "ana@example.com", "user")
    _write_and_compare(pact, "gateway-users.json")
