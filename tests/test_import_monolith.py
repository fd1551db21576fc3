"""`streamia import-monolith` on files it cannot use: one line, exit 1 or 2, nothing written;
and the dump reader on every shape mongodump and mongoexport write."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import bson
from bson import ObjectId
from bson.json_util import RELAXED_JSON_OPTIONS, dumps
from typer.testing import CliRunner

from streamia.cli import app
from streamia.mongodump import Source, find_sources

DOCS = [
    {"_id": ObjectId(), "title": "Uno", "createdAt": datetime(2023, 1, 2, tzinfo=UTC)},
    {"_id": ObjectId(), "title": "Dos", "duration": 12.5},
]


def run(tmp_path: Path, *args: str):
    env = {"STREAMIA_DATA_DIR": str(tmp_path / "data"), "STREAMIA_ENVIRONMENT": "test"}
    return CliRunner().invoke(app, ["import-monolith", *args], env=env)


def test_a_missing_dump_folder_is_a_usage_error(tmp_path):
    result = run(tmp_path, str(tmp_path / "nowhere"))
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "no such folder" in result.output


def test_a_folder_without_any_collection_file_is_refused(tmp_path):
    (tmp_path / "dump").mkdir()
    (tmp_path / "dump" / "notes.txt").write_text("hello")
    result = run(tmp_path, str(tmp_path / "dump"))
    assert result.exit_code == 1
    assert "no users, movies, favorites, ratings, comments files" in result.output


def test_a_truncated_bson_file_stops_the_import_before_anything_is_written(tmp_path):
    dump = tmp_path / "dump" / "monolith"
    dump.mkdir(parents=True)
    user = {"_id": ObjectId(), "email": "a@example.com", "firstName": "A", "lastName": "B"}
    (dump / "users.bson").write_bytes(bson.encode(user))
    good = b"".join(bson.encode(d) for d in DOCS)
    (dump / "movies.bson").write_bytes(good + bson.encode(DOCS[0])[:-3])
    result = run(tmp_path, str(tmp_path / "dump"))
    assert result.exit_code == 1
    line = result.output.strip()
    assert "\n" not in line
    assert line.startswith("import-monolith: movies.bson: unreadable after document 2")
    assert not (tmp_path / "data" / "users.sqlite").exists()  # not even the good users


def test_invalid_json_names_the_file_and_the_document(tmp_path):
    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / "ratings.json").write_text('{"_id": {"$oid": "5f1d7e9a2b34c1d7e9a2b34c"}}\n{oops\n')
    result = run(tmp_path, str(dump))
    assert result.exit_code == 1
    assert "ratings.json: unreadable after document 1" in result.output


def test_every_export_shape_reads_the_same_documents(tmp_path):
    shapes = {
        "bson": b"".join(bson.encode(d) for d in DOCS),
        "jsonl": "\n".join(dumps(d, json_options=RELAXED_JSON_OPTIONS) for d in DOCS).encode(),
        "array": ("[" + ",\n".join(dumps(d) for d in DOCS) + "]").encode(),
    }
    names = {"bson": "movies.bson.gz", "jsonl": "movies.json", "array": "movies.json"}
    for shape, data in shapes.items():
        folder = tmp_path / shape / "db"
        folder.mkdir(parents=True)
        path = folder / names[shape]
        path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
        sources = find_sources(tmp_path / shape, ("users", "movies"))
        assert list(sources) == ["movies"]
        docs = list(sources["movies"].documents())
        assert [d["_id"] for d in docs] == [d["_id"] for d in DOCS], shape
        assert docs[0]["createdAt"] == DOCS[0]["createdAt"], shape
        assert docs[1]["duration"] == 12.5, shape
        assert Source("movies", path).count() == 2
