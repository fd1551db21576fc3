"""API.md "Lists": every item by default (up to a hard cap), a page only when asked, and
always the total, so a list is never cut silently."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

# The monolith returned whole lists; past this many a client must page (`Link` says how).
LIST_CAP = 1000
# The page size when a client gives `page` without `limit`.
DEFAULT_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Page:
    """Which slice of a list the client asked for; `paged` is False when it asked for none."""

    page: int
    limit: int
    paged: bool

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


async def _page(
    page: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
    limit: Annotated[int | None, Query(ge=1, le=LIST_CAP)] = None,
) -> Page:
    if page is None and limit is None:
        return Page(1, LIST_CAP, paged=False)
    return Page(page or 1, limit or DEFAULT_LIMIT, paged=True)


PageDep = Annotated[Page, Depends(_page)]


async def count_rows(session: AsyncSession, query: Select[*tuple[Any, ...]]) -> int:
    """How many rows `query` selects, whatever its order, offset and limit."""
    whole = query.order_by(None).offset(None).limit(None).subquery()
    return int(await session.scalar(select(func.count()).select_from(whole)) or 0)


def list_headers(request: Request, shown: int, total: int, page: Page) -> dict[str, str]:
    """`X-Total-Count`, and RFC 8288 `Link`s (on the public URL) when paged or when the cap
    cut the list; `shown` is how many items this answer holds."""
    headers = {"X-Total-Count": str(total)}
    links = []
    # Headers are latin-1: the path goes back percent-encoded, as the client sent it.
    base = request.app.state.service.settings.public_base + quote(request.url.path, safe="/")
    others = [(k, v) for k, v in request.query_params.multi_items() if k not in ("page", "limit")]

    def link(number: int, rel: str) -> str:
        query = urlencode([*others, ("page", number), ("limit", page.limit)])
        return f'<{base}?{query}>; rel="{rel}"'

    if page.offset + shown < total and shown:
        links.append(link(page.page + 1, "next"))
    if page.page > 1:
        links.append(link(page.page - 1, "prev"))
    if links:
        headers["Link"] = ", ".join(links)
    return headers


def list_response(request: Request, items: Sequence[Any], total: int, page: Page) -> JSONResponse:
    """The bare array with `list_headers`."""
    return JSONResponse(list(items), headers=list_headers(request, len(items), total, page))
