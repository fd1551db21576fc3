"""Serving stored files with HTTP Range, on top of Starlette's FileResponse.

Starlette 1.10's FileResponse already does the heavy part right: single ranges (206 with
Content-Range and Content-Length), suffix and open-ended ranges, multipart/byteranges,
If-Range against the ETag or Last-Modified it sets (weak validators never match), HEAD, a
bounded read loop instead of loading the file, and `http.response.pathsend` (zero-copy) when
the server offers it for whole-file responses. What it gets wrong for us is the edge of the
grammar: an unknown unit or a syntactically invalid range gets a 400 text/plain (RFC 9110
§14.2 says to ignore the header and send 200), any unsatisfiable part of a multi-range
request fails the whole request, and its 416 has no JSON body. `MediaFileResponse` settles
those cases itself and hands Starlette a canonical Range header for everything else.
"""

from __future__ import annotations

import os
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import FileResponse
from starlette.types import Receive, Scope, Send

from streamia_kit.errors import error_response

IGNORE = "ignore"


def parse_byte_ranges(header: str, size: int) -> list[tuple[int, int]] | str:
    """RFC 9110 ranges as inclusive (first, last) pairs, clamped to the file.

    Returns IGNORE when the header must be ignored (other unit, invalid syntax) and an empty
    list when it is valid but nothing in it is satisfiable (→ 416).
    """
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return IGNORE
    ranges: list[tuple[int, int]] = []
    parts = [p.strip() for p in spec.split(",")]
    if not any(parts):
        return IGNORE
    for part in parts:
        if not part:
            continue  # "bytes=0-1,,5-6": empty list elements are allowed
        first_s, dash, last_s = part.partition("-")
        first_s, last_s = first_s.strip(), last_s.strip()
        if not dash or not (first_s or last_s):
            return IGNORE
        if (first_s and not first_s.isdigit()) or (last_s and not last_s.isdigit()):
            return IGNORE
        if not first_s:  # suffix: the last N bytes
            length = int(last_s)
            if length > 0 and size > 0:
                ranges.append((max(size - length, 0), size - 1))
            continue
        first = int(first_s)
        last = int(last_s) if last_s else size - 1
        if last_s and last < first:
            return IGNORE  # invalid range-spec
        if first < size:
            ranges.append((first, min(last, size - 1)))
    return ranges


def _without_header(scope: Scope, name: bytes, replacement: bytes | None = None) -> Scope:
    headers = [(k, v) for k, v in scope["headers"] if k.lower() != name]
    if replacement is not None:
        headers.append((name, replacement))
    return {**scope, "headers": headers}


class MediaFileResponse(FileResponse):
    """A FileResponse with RFC 9110 edge cases settled and a JSON 416."""

    # Bigger reads than Starlette's 64 KiB: fewer loop iterations per MB, still bounded memory.
    chunk_size = 512 * 1024

    def __init__(
        self,
        path: str | os.PathLike[str],
        stat_result: os.stat_result,
        media_type: str,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            path, media_type=media_type, stat_result=stat_result, headers=headers, **kwargs
        )
        self._size = stat_result.st_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"].upper() in ("GET", "HEAD"):
            request_headers = Headers(scope=scope)
            http_range = request_headers.get("range")
            if_range = request_headers.get("if-range")
            if http_range is not None and (if_range is None or self._should_use_range(if_range)):
                ranges = parse_byte_ranges(http_range, self._size)
                if isinstance(ranges, str):  # IGNORE
                    scope = _without_header(scope, b"range")
                elif not ranges:
                    response = error_response(
                        "Range Not Satisfiable",
                        416,
                        "range_not_satisfiable",
                        headers={
                            "Content-Range": f"bytes */{self._size}",
                            "Accept-Ranges": "bytes",
                        },
                    )
                    await response(scope, receive, send)
                    return
                else:
                    canonical = "bytes=" + ",".join(f"{a}-{b}" for a, b in ranges)
                    scope = _without_header(scope, b"range", canonical.encode("latin-1"))
        await super().__call__(scope, receive, send)
