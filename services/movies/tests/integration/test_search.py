"""/explore: literal, case- and accent-insensitive search over title and description."""

import uuid

import pytest


@pytest.fixture
async def catalogue(client, new_movie):
    """A few movies in a category of their own, so other tests' movies never interfere."""
    category = f"Cat {uuid.uuid4().hex[:8]}"
    movies = {
        "accion": await new_movie(
            client, title="Acción en la ciudad", category=category, description="Persecuciones"
        ),
        "regex": await new_movie(client, title="Symbols .*( and 100% _real_", category=category),
        "desc": await new_movie(
            client,
            title="Silencio",
            category=category,
            description="Una historia de ACCIÓN y misterio",
        ),
        "other": await new_movie(client, title="Comedia romántica", category=category),
    }
    return category, movies


async def _explore(client, **params):
    resp = await client.get("/api/movies/explore", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _ids(body):
    return {m["id"] for m in body["data"]}


@pytest.mark.parametrize("term", ["accion", "ACCION", "Acción", "acción", "aCcIóN"])
async def test_accents_and_case_do_not_matter(client, catalogue, term):
    category, movies = catalogue

    body = await _explore(client, category=category, search=term)

    assert _ids(body) == {movies["accion"]["id"], movies["desc"]["id"]}
    assert body["total"] == 2
    assert body["filters"] == {"category": category, "search": term}
    assert body["source"] == "local"


async def test_the_description_is_searched_as_well_as_the_title(client, catalogue):
    category, movies = catalogue

    assert _ids(await _explore(client, category=category, search="misterio")) == {
        movies["desc"]["id"]
    }


@pytest.mark.parametrize("term", [".*(", "100%", "_real_", "%", "_", "(", "\\"])
async def test_regex_and_like_metacharacters_are_plain_text(client, catalogue, term):
    category, movies = catalogue

    body = await _explore(client, category=category, search=term)

    expected = {movies["regex"]["id"]} if term != "\\" else set()
    assert _ids(body) == expected


@pytest.mark.parametrize("term", ["zzzz-no-such-film", "xq", '"quoted"', "acción romántica"])
async def test_no_results_is_an_empty_page(client, catalogue, term):
    category, _ = catalogue

    body = await _explore(client, category=category, search=term)

    assert (body["data"], body["total"]) == ([], 0)


async def test_short_queries_still_match_substrings(client, catalogue):
    category, movies = catalogue

    assert _ids(await _explore(client, category=category, search="ió")) >= {movies["accion"]["id"]}


async def test_category_matches_case_and_accent_insensitively(client, catalogue):
    category, movies = catalogue

    body = await _explore(client, category=category.upper())

    assert body["total"] == 4


async def test_pagination_boundaries(client, catalogue):
    category, _ = catalogue

    first = await _explore(client, category=category, limit=3, page=1, sort="title")
    second = await _explore(client, category=category, limit=3, page=2, sort="title")
    past = await _explore(client, category=category, limit=3, page=3, sort="title")
    exact = await _explore(client, category=category, limit=4, page=1)

    assert (len(first["data"]), len(second["data"]), len(past["data"])) == (3, 1, 0)
    assert first["total"] == second["total"] == past["total"] == 4
    assert _ids(first).isdisjoint(_ids(second))
    assert len(exact["data"]) == 4


async def test_sorting_by_title_ignores_case_and_accents(client, catalogue):
    category, movies = catalogue

    body = await _explore(client, category=category, sort="title")

    assert [m["title"] for m in body["data"]] == [
        "Acción en la ciudad",
        "Comedia romántica",
        "Silencio",
        "Symbols .*( and 100% _real_",
    ]


async def test_newest_first_is_the_default(client, catalogue):
    category, movies = catalogue

    body = await _explore(client, category=category)

    assert [m["id"] for m in body["data"]] == [
        movies[k]["id"] for k in ("other", "desc", "regex", "accion")
    ]


async def test_a_renamed_movie_is_found_by_its_new_title_only(client, tokens, catalogue):
    category, movies = catalogue
    await client.put(
        f"/api/movies/{movies['other']['id']}",
        headers=tokens("admin"),
        json={"title": "Ñandú veloz"},
    )

    assert _ids(await _explore(client, category=category, search="nandu")) == {
        movies["other"]["id"]
    }
    assert _ids(await _explore(client, category=category, search="comedia")) == set()


async def test_a_deleted_movie_is_no_longer_found(client, tokens, catalogue):
    category, movies = catalogue
    await client.delete(f"/api/movies/{movies['regex']['id']}", headers=tokens("admin"))

    assert (await _explore(client, category=category, search="symbols"))["total"] == 0


@pytest.mark.parametrize("param", ["search", "category"])
async def test_a_nul_in_a_filter_is_a_400_not_a_database_error(client, param):
    resp = await client.get("/api/movies/explore", params={param: "ac\x00cion"})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "Validation error"
