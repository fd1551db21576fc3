"""`streamia import-monolith` into the running platform, in both modes: a monolith export
(`mongodump` BSON or `mongoexport` Extended JSON) comes across with its ids, its users log
in with their old passwords and find their favorites, ratings and comments through the
gateway, the refused documents are listed with a reason, and a second run changes nothing."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bcrypt
import bson
import orjson
import pytest
from bson import ObjectId
from bson.json_util import CANONICAL_JSON_OPTIONS, dumps

from streamia_kit.testing import wait_for

# Two `streamia import-monolith` processes (each imports every service) on a shared machine.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

OLD_PASSWORD = "monolith-password"  # the monolith had no strength rules


def monolith_export() -> tuple[dict[str, list[dict[str, Any]]], dict[str, ObjectId]]:
    """A small export as the monolith's mongoose models wrote it, with a few bad documents."""
    ids = {name: ObjectId() for name in ("ana", "ben", "dup", "film", "other", "ghost")}
    token = str(ids["ana"])[-8:]
    created = datetime(2023, 5, 1, 12, 0, tzinfo=UTC)
    hashed = bcrypt.hashpw(OLD_PASSWORD.encode(), bcrypt.gensalt(4)).decode()

    def user(key: str, first: str, email: str) -> dict[str, Any]:
        return {
            "_id": ids[key],
            "firstName": first,
            "lastName": "Monolito",
            "age": 30,
            "email": email,
            "password": hashed,
            "createdAt": created,
            "updatedAt": created,
            "__v": 0,
        }

    film = {
        "_id": ids["film"],
        "title": f"El Viaje {token}",
        "description": "Una película del monolito",
        "category": "Drama",
        "videoUrl": f"https://res.cloudinary.com/demo/video/upload/movies/{token}.mp4",
        "coverImage": f"https://res.cloudinary.com/demo/image/upload/covers/{token}.jpg",
        "cloudinaryPublicId": f"movies/{token}",
        "duration": 5400.5,
        "subtitles": [
            {
                "_id": ObjectId(),
                "language": "es",
                "label": "Español",
                "url": f"https://res.cloudinary.com/demo/raw/upload/subs/{token}.es.vtt",
            }
        ],
        "createdAt": created,
        "updatedAt": created,
    }
    other = {**film, "_id": ids["other"], "title": f"Otra {token}", "subtitles": []}
    return {
        "users": [
            user("ana", "Ana", f"ana-{token}@monolith.example"),
            user("ben", "Ben", f"ben-{token}@monolith.example"),
            user("dup", "Dup", f"ANA-{token}@monolith.example"),  # same address, other case
        ],
        "movies": [film, other],
        "favorites": [
            {"_id": ObjectId(), "userId": ids["ana"], "movieId": ids["film"], "note": "ver"},
            {"_id": ObjectId(), "userId": ids["ana"], "movieId": ids["ghost"], "note": ""},
        ],
        "ratings": [
            {"_id": ObjectId(), "userId": ids["ana"], "movieId": ids["film"], "rating": 4.0},
            {"_id": ObjectId(), "userId": ids["ben"], "movieId": ids["film"], "rating": 5},
            {"_id": ObjectId(), "userId": ids["ben"], "movieId": ids["other"], "rating": 4.5},
        ],
        "comments": [
            {
                "_id": ObjectId(),
                "userId": ids["ana"],
                "movieId": ids["film"],
                "text": "¡Qué buena!",
                "createdAt": created,
            },
            {"_id": ObjectId(), "userId": ids["ghost"], "movieId": ids["film"], "text": "hola"},
        ],
    }, ids


def write_export(folder: Path, fmt: str, export: dict[str, list[dict[str, Any]]]) -> Path:
    """`mongodump --out folder` (folder/<db>/<name>.bson) or `mongoexport` JSON lines."""
    if fmt == "bson":
        out = folder / "streamia-monolith"
        out.mkdir(parents=True)
        for name, docs in export.items():
            (out / f"{name}.bson").write_bytes(b"".join(bson.encode(d) for d in docs))
    else:
        folder.mkdir(parents=True)
        for name, docs in export.items():
            lines = [dumps(d, json_options=CANONICAL_JSON_OPTIONS) for d in docs]
            (folder / f"{name}.json").write_text("\n".join(lines) + "\n")
    return folder


def changes(output: str) -> int:
    found = re.search(r"([\d,]+) changes", output)
    assert found, output
    return int(found.group(1).replace(",", ""))


@pytest.mark.parametrize("fmt", ["bson", "json"])
async def test_an_imported_monolith_user_logs_in_with_the_old_password_and_finds_their_data(
    platform, api, harness, tmp_path, fmt
):
    export, ids = monolith_export()
    dump = write_export(tmp_path / "dump", fmt, export)
    rejects = tmp_path / "rejects.jsonl"
    ben = export["users"][1]["email"]
    first = platform.cli(
        "import-monolith", str(dump), "--rejects", str(rejects), "--admin", ben, timeout=120
    )
    # 2 users + 2 movies + 1 favorite + 2 ratings + 1 comment, and one promotion.
    assert changes(first.stdout) == 9, first.stdout

    refused = {
        (line["collection"], line["reason"])
        for line in map(orjson.loads, rejects.read_bytes().splitlines())
    }
    assert refused == {
        ("users", "duplicate email"),
        ("favorites", "dangling movie id"),
        ("ratings", "invalid rating (whole stars 1-5)"),
        ("comments", "dangling user id"),
    }
    assert b"$2b$" not in rejects.read_bytes()  # no password hash leaves in the file

    ana_email, ana, film = export["users"][0]["email"], str(ids["ana"]), str(ids["film"])
    login = await api.post("/api/users/login", json={"email": ana_email, "password": OLD_PASSWORD})
    assert login.status_code == 200, login.text
    assert login.json()["user"]["id"] == ana and login.json()["user"]["role"] == "user"
    (stored,) = await platform.fetch("users", "SELECT password_hash FROM users WHERE id = ?", ana)
    assert stored[0].startswith("$argon2id$")  # rehashed at the first login
    again = await api.post("/api/users/login", json={"email": ana_email, "password": OLD_PASSWORD})
    assert again.status_code == 200, again.text
    headers = harness.bearer(again.json()["token"])
    promoted = await api.post("/api/users/login", json={"email": ben, "password": OLD_PASSWORD})
    assert promoted.json()["user"]["role"] == "admin"

    movie = (await api.get(f"/api/movies/{film}")).json()["data"]
    assert movie["title"] == export["movies"][0]["title"]
    assert movie["provider"] == "cloudinary"
    assert movie["videoUrl"] == export["movies"][0]["videoUrl"]
    assert [s["language"] for s in movie["subtitles"]] == ["es"]
    assert movie["rating"] == {"average": 4.5, "count": 2}
    assert movie["createdAt"].startswith("2023-05-01T12:00:00")

    favorites = (await api.get("/api/favorites", headers=headers)).json()
    assert [(f["movieId"], f["note"], f["title"]) for f in favorites] == [
        (film, "ver", movie["title"])
    ]
    ratings = (await api.get(f"/api/ratings/{ana}", headers=headers)).json()
    assert [(r["movieId"], r["rating"]) for r in ratings] == [(film, 4)]
    summary = (await api.get(f"/api/ratings/movie/{film}")).json()
    assert summary["distribution"] == {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1}
    comments = (await api.get(f"/api/comments/movie/{film}")).json()
    assert [(c["text"], c["user"]["id"], c["user"]["firstName"]) for c in comments] == [
        ("¡Qué buena!", ana, "Ana")
    ]

    second = platform.cli("import-monolith", str(dump), "--rejects", str(rejects), "--admin", ben)
    assert changes(second.stdout) == 0, second.stdout
    assert (await api.get(f"/api/movies/{film}")).json()["data"]["rating"]["count"] == 2

    # Ana deletes her account here; the cut-over's import, run once more, does not bring her
    # (or her old password, or her rating) back.
    deleted = await api.request(
        "DELETE", "/api/users/me", headers=headers, json={"password": OLD_PASSWORD}
    )
    assert deleted.status_code == 204, deleted.text

    async def rating_taken_off() -> bool:
        summary = (await api.get(f"/api/ratings/movie/{film}")).json()
        return summary["count"] == 1

    await wait_for(rating_taken_off, timeout=30, message="Ana's rating taken off")
    third = platform.cli("import-monolith", str(dump), "--rejects", str(rejects))
    # The one change: the monolith's other account with Ana's address in another case was
    # refused as a duplicate while she had the address; it is free now, like for a sign-up.
    assert changes(third.stdout) == 1, third.stdout
    (dup,) = await platform.fetch("users", "SELECT id FROM users WHERE email = ?", ana_email)
    assert dup[0] == str(ids["dup"])
    refused = [orjson.loads(line) for line in rejects.read_bytes().splitlines()]
    assert ("users", ana, "account deleted in Streamia") in {
        (r["collection"], r["id"], r["reason"]) for r in refused
    }
    # Her address (and, in this export, the same password) now opens that other account.
    gone = await api.post("/api/users/login", json={"email": ana_email, "password": OLD_PASSWORD})
    assert gone.json()["user"]["id"] == str(ids["dup"]), gone.text
    assert (await api.get(f"/api/ratings/movie/{film}")).json()["count"] == 1
    assert not await platform.fetch("users", "SELECT id FROM users WHERE id = ?", ana)
