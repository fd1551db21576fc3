"""Reading the monolith's MongoDB export without a MongoDB server: `mongodump` BSON files
(optionally gzipped) or `mongoexport` JSON (JSON lines or a JSON array, Extended JSON)."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import IO, Any, cast

import bson
from bson.codec_options import CodecOptions
from bson.errors import BSONError
from bson.json_util import JSONOptions
from bson.json_util import loads as json_loads

_BSON_OPTIONS: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True, tzinfo=UTC)
_JSON_OPTIONS = JSONOptions(tz_aware=True, tzinfo=UTC)
_SUFFIXES = (".bson", ".bson.gz", ".json", ".json.gz", ".jsonl", ".jsonl.gz")


class DumpError(Exception):
    """A file of the dump cannot be read; the message names the file and the place."""


@dataclass(frozen=True)
class Source:
    """One collection's file."""

    collection: str
    path: Path

    @property
    def is_bson(self) -> bool:
        return ".bson" in self.path.suffixes

    def _open(self) -> IO[bytes]:
        if self.path.suffix == ".gz":
            return cast(IO[bytes], gzip.open(self.path, "rb"))
        return self.path.open("rb")

    def documents(self) -> Iterator[dict[str, Any]]:
        """Every document in file order; DumpError at the first one that cannot be read."""
        position = 0
        try:
            with self._open() as raw:
                docs = (
                    bson.decode_file_iter(raw, _BSON_OPTIONS)
                    if self.is_bson
                    else _json_documents(raw)
                )
                for doc in docs:
                    yield doc
                    position += 1
        except (BSONError, ValueError, OSError, EOFError) as exc:
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise DumpError(
                f"{self.path.name}: unreadable after document {position}: {reason}"
            ) from None

    def count(self) -> int:
        """Read the whole file once: its size in documents, or DumpError before any write."""
        return sum(1 for _ in self.documents())


def _json_documents(raw: IO[bytes]) -> Iterator[dict[str, Any]]:
    text = io.TextIOWrapper(raw, encoding="utf-8-sig")
    first = ""
    while not first:
        line = text.readline()
        if not line:
            return
        first = line.strip()
    if first.startswith("["):  # mongoexport --jsonArray
        docs = json_loads(first + text.read(), json_options=_JSON_OPTIONS)
        if not isinstance(docs, list):
            raise ValueError("expected a JSON array of documents")
        for doc in docs:
            yield _document(doc)
        return
    yield _document(json_loads(first, json_options=_JSON_OPTIONS))
    for line in text:
        if line.strip():
            yield _document(json_loads(line, json_options=_JSON_OPTIONS))


def _document(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a document, found {type(value).__name__}")
    return value


def find_sources(dump: Path, collections: tuple[str, ...]) -> dict[str, Source]:
    """Each collection's file in `dump` or one folder below it (mongodump writes
    `<out>/<database>/<collection>.bson`); a collection without a file is left out."""
    folders = [dump, *sorted(p for p in dump.iterdir() if p.is_dir())]
    found: dict[str, Source] = {}
    for name in collections:
        for folder in folders:
            candidates = [folder / f"{name}{suffix}" for suffix in _SUFFIXES]
            path = next((c for c in candidates if c.is_file()), None)
            if path is not None:
                found[name] = Source(name, path)
                break
    return found
