"""/ready tells the truth fast: a black-holed database reads as down in under a second."""

from __future__ import annotations

import time

import pytest

from streamia_kit.testing import POSTGRES, TcpProxy, wait_for

pytestmark = pytest.mark.parametrize("stack_name", ["distributed"], indirect=True)


@pytest.fixture
async def db_proxy():
    proxy = await TcpProxy("127.0.0.1", 5432).start()
    yield proxy
    await proxy.close()


@pytest.fixture
def app(make_app, stack, db_proxy):
    host = POSTGRES.rsplit(":", 1)[0]
    return make_app(database_url=f"{host}:{db_proxy.port}/{stack.namespace}_{{service}}")


async def test_ready_answers_within_a_second_that_a_black_holed_database_is_down(client, db_proxy):
    assert (await client.get("/ready")).status_code == 200
    await db_proxy.black_hole()
    started = time.monotonic()
    response = await client.get("/ready")
    assert time.monotonic() - started < 1.0
    assert response.status_code == 503
    assert response.json()["checks"]["database"] is False

    await db_proxy.restore()

    async def ready() -> bool:
        return (await client.get("/ready")).status_code == 200

    await wait_for(ready, timeout=10, message="ready again")


async def test_a_database_that_refuses_connections_answers_503_database_unavailable(
    client, movie, db_proxy
):
    film = await movie()
    await db_proxy.cut()
    response = await client.get(f"/api/ratings/movie/{film.movie_id}")
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "database_unavailable"
    assert response.headers["Retry-After"] == "2"
