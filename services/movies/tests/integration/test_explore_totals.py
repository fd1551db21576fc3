"""/explore totals are cached per catalogue version and the page plan is chosen by
selectivity: totals stay exact across writes, and every plan returns the same page."""

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, text

from streamia_kit.testing import wait_for
from streamia_movies.movies import repository as repository_module
from streamia_movies.movies.models import Movie
from streamia_movies.movies.repository import MoviesRepository
from streamia_movies.movies.search import fold, search_document


async def _explore(client, **params):
    resp = await client.get("/api/movies/explore", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.fixture
def count_calls(monkeypatch):
    """How many times the totals were actually counted in the database."""
    calls = []
    original = MoviesRepository.category_totals

    async def spy(self, search):
        calls.append(search)
        return await original(self, search)

    monkeypatch.setattr(MoviesRepository, "category_totals", spy)
    return calls


async def test_totals_stay_exact_across_create_update_and_delete(client, tokens, new_movie):
    category = f"Cat {uuid.uuid4().hex[:8]}"
    word = f"zq{uuid.uuid4().hex[:6]}"
    first = await new_movie(client, title=f"Primera {word}", category=category)
    assert (await _explore(client, search=word))["total"] == 1
    assert (await _explore(client, search=word, category=category))["total"] == 1

    second = await new_movie(client, title="Segunda", description=f"con {word}", category=category)
    assert (await _explore(client, search=word))["total"] == 2
    assert (await _explore(client, search=word, category=category))["total"] == 2

    other = f"Other {uuid.uuid4().hex[:8]}"
    admin = tokens("admin")
    await client.put(f"/api/movies/{second['id']}", headers=admin, json={"category": other})
    assert (await _explore(client, search=word, category=category))["total"] == 1
    assert (await _explore(client, search=word, category=other))["total"] == 1
    assert (await _explore(client, search=word))["total"] == 2

    await client.put(f"/api/movies/{first['id']}", headers=admin, json={"title": "Renombrada"})
    body = await _explore(client, search=word)
    assert body["total"] == 1 and [m["id"] for m in body["data"]] == [second["id"]]

    await client.delete(f"/api/movies/{second['id']}", headers=tokens("admin"))
    assert (await _explore(client, search=word))["total"] == 0
    assert (await _explore(client, category=category))["total"] == 1


async def test_totals_are_counted_once_per_catalogue_version(client, new_movie, count_calls):
    category = f"Cat {uuid.uuid4().hex[:8]}"
    word = f"zq{uuid.uuid4().hex[:6]}"
    await new_movie(client, title=f"Una {word}", category=category)
    count_calls.clear()

    for params in (
        {"search": word},
        {"search": word, "category": category},
        {"search": word.upper(), "sort": "title", "page": 2},
    ):
        await _explore(client, **params)
    # One count for the search (every category at once), one for the catalogue scope.
    assert sorted(count_calls) == ["", word]

    await new_movie(client, title=f"Otra {word}", category=category)
    assert (await _explore(client, search=word, category=category))["total"] == 2
    assert sorted(count_calls) == ["", "", word, word]


async def test_a_catalogue_change_recounts_recent_searches_in_the_background(
    app, client, new_movie, count_calls
):
    totals = app.state.movies.totals
    totals.warm_delay = 0.01
    category = f"Cat {uuid.uuid4().hex[:8]}"
    word = f"zq{uuid.uuid4().hex[:6]}"
    await new_movie(client, title=f"Una {word}", category=category)
    assert (await _explore(client, search=word))["total"] == 1

    await wait_for(lambda: totals.idle, message="the warmer idle")
    count_calls.clear()
    await new_movie(client, title=f"Otra {word}", category=category)
    # No request needed: the whole catalogue and the recent search are counted again.
    await wait_for(lambda: sorted(count_calls) == ["", word], message="background recount")
    assert (await _explore(client, search=word, category=category))["total"] == 2
    assert (await _explore(client, category=category))["total"] == 2
    assert sorted(count_calls) == ["", word]  # the visitors paid for no count


async def test_the_recent_searches_are_bounded_newest_first(app, client):
    totals = app.state.movies.totals
    totals.warm_searches = 3
    for term in ("uno", "dos", "tres", "dos", "cuatro"):
        await _explore(client, search=term.upper())
    assert list(totals._recent) == ["tres", "dos", "cuatro"]


# -- plans ------------------------------------------------------------------------------------

TERMS = ("sol", "luna", "mar", "rio", "nube")
CATEGORIES = ("Drama", "Comedia", "Terror")


@pytest.fixture
async def catalogue(app, client):
    """1,200 movies written straight to the database: `luna` is common, `eclipse` rare,
    `fin` only in the 60 oldest (it clusters at the end of the newest-first order)."""
    rng = random.Random(11)
    base = datetime.now(UTC) - timedelta(days=400)
    rows = []
    for i in range(1200):
        words = [rng.choice(TERMS) for _ in range(rng.randint(2, 5))]
        if i % 150 == 7:
            words.append("eclipse")
        if i < 60:
            words.append("fin")
        title = " ".join(words).capitalize()
        category = CATEGORIES[i % 3]
        created = base + timedelta(hours=i)
        rows.append(
            dict(
                id=uuid.uuid4().hex,
                title=title,
                description=None,
                category=category,
                provider="external",
                video_url="https://cdn.example.com/v.mp4",
                rating_average=round(rng.uniform(0, 5), 1),
                rating_count=rng.randint(0, 3),
                rating_version=0.0,
                title_key=fold(title),
                category_key=fold(category),
                search_text=search_document(title, None),
                created_at=created,
                updated_at=created,
            )
        )
    async with app.state.service.db.transaction() as session:
        await session.execute(insert(Movie), rows)
    return rows


def _expected(rows, search, category_key, sort, offset, limit):
    """Brute force over the inserted rows (inserted in order: row i has the i-th seq)."""
    matches = [
        (i, r)
        for i, r in enumerate(rows)
        if search in r["search_text"]
        and (category_key is None or r["category_key"] == category_key)
    ]
    if sort == "title":
        matches.sort(key=lambda x: (x[1]["title_key"], x[0]))
    elif sort == "rating":
        matches.sort(key=lambda x: (-x[1]["rating_average"], -x[1]["rating_count"], -x[0]))
    else:
        matches.sort(key=lambda x: (x[1]["created_at"], x[0]), reverse=True)
    matches = [r for _, r in matches]
    return matches, matches[offset : offset + limit]


async def _page(app, *, search, category_key, sort, page, limit=20, match_ms=0.0):
    async with app.state.service.db.sessions() as session:
        repo = MoviesRepository(session)
        totals = await repo.category_totals(search)
        everything = await repo.category_totals("")

        keys = None if category_key is None else [category_key]

        def pick(counts):
            return sum(counts.values()) if keys is None else counts.get(category_key, 0)

        return pick(totals), await repo.page_items(
            page=page,
            limit=limit,
            sort=sort,
            category_keys=keys,
            search=search,
            total=pick(totals),
            scope=pick(everything),
            match_ms=match_ms,
        )


CASES = [
    ("luna", None, 1),
    ("luna", "drama", 3),
    ("luna", None, 30),
    ("eclipse", None, 1),
    ("eclipse", "comedia", 1),
    ("fin", None, 1),
    ("fin", "terror", 2),
    ("fin", None, 4),
    ("su", None, 2),
    ("nada de esto", None, 1),
]


@pytest.mark.parametrize("plan", ["chosen", "walk", "candidates"])
async def test_every_plan_returns_the_same_exact_page(app, catalogue, monkeypatch, plan):
    if plan == "walk":  # always walk the sort order (bounded, falling back when short)
        monkeypatch.setattr(repository_module, "_MIN_WALK_ROWS", 10**9)
        monkeypatch.setattr(repository_module, "_MAX_WALK_ROWS", 10**9)
    elif plan == "candidates":  # always the search index's candidates (terms of 3+ chars)
        monkeypatch.setattr(repository_module, "_MIN_WALK_ROWS", 0)
        monkeypatch.setattr(repository_module, "_FETCH_ROWS", 0)

    for search, category_key, page in CASES:
        for sort in ("newest", "title", "rating"):
            case = (search, category_key, page, sort)
            total, items = await _page(
                app, search=search, category_key=category_key, sort=sort, page=page
            )

            offset = (page - 1) * 20
            matches, expected = _expected(catalogue, search, category_key, sort, offset, 20)
            assert total == len(matches), case
            assert [m.id for m in items] == [r["id"] for r in expected], case


async def test_a_clustered_match_set_falls_back_from_the_bounded_walk(app, catalogue, monkeypatch):
    """`fin` is in the 60 oldest of 1,200: the walk's window from the newest end holds none
    of them, so the page comes back short and the search index's candidates answer."""
    monkeypatch.setattr(repository_module, "_MIN_WALK_ROWS", 10**9)
    monkeypatch.setattr(repository_module, "_MAX_WALK_ROWS", 10**9)
    monkeypatch.setattr(repository_module, "_WINDOW_SLACK", 0)  # a window of 800 rows
    fallbacks = []
    original = MoviesRepository._candidates

    async def spy(self, *args, **kwargs):
        fallbacks.append(args[0])
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(MoviesRepository, "_candidates", spy)

    total, items = await _page(app, search="fin", category_key=None, sort="newest", page=1)

    assert total == 60
    expected = _expected(catalogue, "fin", None, "newest", 0, 20)[1]
    assert [m.id for m in items] == [r["id"] for r in expected]
    assert fallbacks == ["fin"]


async def test_counting_changes_no_planner_setting_for_the_rest_of_the_transaction(app, catalogue):
    async with app.state.service.db.sessions() as session:
        if session.bind.dialect.name != "postgresql":
            pytest.skip("a PostgreSQL planner setting")
        totals = await MoviesRepository(session).category_totals("luna")
        assert sum(totals.values()) == sum("luna" in r["search_text"] for r in catalogue)
        assert await session.scalar(text("SHOW enable_seqscan")) == "on"


async def test_the_catalogue_lists_carry_the_total_and_links_to_their_neighbour_pages(
    client, new_movie
):
    # API.md "Lists": every list, the monolith's envelope too, has X-Total-Count and Links.
    category = f"Cat {uuid.uuid4().hex[:8]}"
    for n in range(3):
        await new_movie(client, title=f"Paged {n}", category=category)

    first = await client.get("/api/movies/explore", params={"category": category, "limit": 2})
    assert first.status_code == 200, first.text
    assert first.headers["x-total-count"] == "3" == str(first.json()["total"])
    assert len(first.json()["data"]) == 2
    assert 'rel="next"' in first.headers["link"] and 'rel="prev"' not in first.headers["link"]
    assert "page=2" in first.headers["link"] and "limit=2" in first.headers["link"]
    assert "category=" in first.headers["link"]

    last = await client.get(
        "/api/movies/explore", params={"category": category, "limit": 2, "page": 2}
    )
    assert len(last.json()["data"]) == 1
    assert 'rel="prev"' in last.headers["link"] and 'rel="next"' not in last.headers["link"]

    everything = await client.get("/api/movies")
    assert everything.headers["x-total-count"] == str(everything.json()["total"])
    assert "link" not in everything.headers or 'rel="prev"' not in everything.headers["link"]
