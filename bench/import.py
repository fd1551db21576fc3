#!/usr/bin/env python3
"""`streamia import-monolith` throughput, in distributed mode.

    .venv/bin/python bench/import.py [--scale 1.0] [--keep DIR]

Writes a `mongodump` folder with real BSON (`bson`, from pymongo) of --scale × (100,000
users, 10,000 movies, 1,000,000 favorites, 1,000,000 ratings, 1,000,000 comments; a few
per cent of each refused on purpose: dangling ids, invalid ratings, duplicate emails), then
runs `streamia import-monolith` against fresh databases on the local PostgreSQL (and Redis
for the caches), prints its summary table (rows/s per collection) and the wall time, runs
it a second time (it must report 0 changes) and drops the databases.
Target: the full size in under 10 minutes on the 2-core development machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bcrypt
import bson
from bson import ObjectId

ROOT = Path(__file__).resolve().parents[1]
POSTGRES = os.environ.get("STREAMIA_TEST_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432")
REDIS = os.environ.get("STREAMIA_TEST_REDIS", "redis://127.0.0.1:6379/0")
SERVICES = ("users", "movies", "favorites", "ratings", "comments")
TARGET_SECONDS = 600.0
CATEGORIES = ("Drama", "Comedia", "Acción", "Documental", "Terror", "Animación")


def write_dump(folder: Path, scale: float, seed: int = 7) -> dict[str, int]:
    """A mongodump-shaped folder (`<folder>/monolith/<collection>.bson`); returns counts."""
    rnd = random.Random(seed)
    out = folder / "monolith"
    out.mkdir(parents=True, exist_ok=True)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    # One real bcrypt hash (cost 4) for everyone: hashing is not what is measured.
    password = bcrypt.hashpw(b"Monolith!2023", bcrypt.gensalt(4)).decode()
    n_users, n_movies = int(100_000 * scale), int(10_000 * scale)
    n_rows = int(1_000_000 * scale)
    users = [ObjectId() for _ in range(n_users)]
    movies = [ObjectId() for _ in range(n_movies)]
    counts: dict[str, int] = {}

    def dump(name: str, docs: object) -> None:
        n = 0
        with (out / f"{name}.bson").open("wb") as f:
            for doc in docs:  # type: ignore[attr-defined]
                f.write(bson.encode(doc))
                n += 1
        counts[name] = n

    def when(i: int) -> datetime:
        return start + timedelta(seconds=i * 7)

    dump(
        "users",
        (
            {
                "_id": oid,
                "firstName": f"Nombre{i}",
                "lastName": f"Apellido{i}",
                "age": 18 + i % 60,
                # 1 in 200 reuses an earlier address: refused as a duplicate email.
                "email": f"user{i - 1 if i % 200 == 199 else i}@monolith.example",
                "password": password,
                "createdAt": when(i),
                "updatedAt": when(i),
            }
            for i, oid in enumerate(users)
        ),
    )
    dump(
        "movies",
        (
            {
                "_id": oid,
                "title": f"Película {i}",
                "description": f"Descripción de la película número {i}",
                "category": CATEGORIES[i % len(CATEGORIES)],
                "videoUrl": f"https://res.cloudinary.com/demo/video/upload/movies/m{i}.mp4",
                "coverImage": f"https://res.cloudinary.com/demo/image/upload/covers/m{i}.jpg",
                "cloudinaryPublicId": f"movies/m{i}",
                "duration": 60 + i % 7200,
                "subtitles": [
                    {
                        "language": "es",
                        "label": "Español",
                        "url": f"https://res.cloudinary.com/demo/raw/upload/subs/m{i}.es.vtt",
                    }
                ],
                "createdAt": when(i),
                "updatedAt": when(i),
            }
            for i, oid in enumerate(movies)
        ),
    )

    def pairs(salt: int):  # distinct (user, movie) pairs; 1 in 100 names a movie never exported
        seen: set[int] = set()
        while len(seen) < n_rows:
            u, m = rnd.randrange(n_users), rnd.randrange(n_movies)
            key = u * n_movies + m
            if key in seen:
                continue
            seen.add(key)
            movie = ObjectId() if len(seen) % 100 == salt else movies[m]
            yield len(seen), users[u], movie

    dump(
        "favorites",
        (
            {"_id": ObjectId(), "userId": u, "movieId": m, "note": "", "createdAt": when(i)}
            for i, u, m in pairs(1)
        ),
    )
    dump(
        "ratings",
        (
            # 1 in 100 is half a star: refused (whole stars only).
            {
                "_id": ObjectId(),
                "userId": u,
                "movieId": m,
                "rating": 4.5 if i % 100 == 2 else 1 + i % 5,
            }
            for i, u, m in pairs(3)
        ),
    )
    dump(
        "comments",
        (
            {
                "_id": ObjectId(),
                "userId": u,
                "movieId": m,
                "text": f"Comentario {i}",
                "createdAt": when(i),
            }
            for i, u, m in pairs(5)
        ),
    )
    return counts


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_import(dump: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and the importer's CPU seconds (the database's CPU is not in it): on a
    shared machine the wall time follows the load, the CPU time much less."""
    started, cpu = time.perf_counter(), _children_cpu()
    subprocess.run(
        [
            str(Path(sys.executable).with_name("streamia")),
            "import-monolith",
            str(dump),
            "--rejects",
            str(dump / "rejects.jsonl"),
        ],
        env=env,
        check=True,
    )
    return time.perf_counter() - started, _children_cpu() - cpu


async def drop(namespace: str) -> None:
    from streamia_kit.db import drop_database

    for service in (*SERVICES, "gateway", "notifications"):
        await drop_database(f"{POSTGRES}/{namespace}_{service}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = the full size")
    parser.add_argument("--keep", type=Path, help="write the dump here and keep it")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="streamia-import-"))
    started = time.perf_counter()
    counts = write_dump(folder, args.scale)
    print(f"dump written in {time.perf_counter() - started:.0f} s: {counts}", flush=True)
    namespace = f"bench{os.getpid()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMIA_")}
    env.update(
        STREAMIA_DATABASE_URL=f"{POSTGRES}/{namespace}_{{service}}",
        STREAMIA_REDIS_URL=REDIS,
        STREAMIA_NAMESPACE=namespace,
        STREAMIA_DATA_DIR=str(folder / "data"),
        STREAMIA_LOG_LEVEL="WARNING",
    )
    try:
        first, first_cpu = run_import(folder, env)
        second, second_cpu = run_import(folder, env)
    finally:
        asyncio.run(drop(namespace))
    target = TARGET_SECONDS * args.scale
    verdict = "OK" if first < target else "SLOW"
    print(
        f"first run {first:.0f} s (target {target:.0f} s at this scale: {verdict}; importer CPU"
        f" {first_cpu:.0f} s); second run (0 changes) {second:.0f} s (importer CPU"
        f" {second_cpu:.0f} s); load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
