"""The short CI variant of the load test (issue 16 point 5): 30 s of Locust viewers
(bench/locustfile.py, run by bench/load.py's `run_locust`) against the distributed platform.

It asserts the error rate (< 1 %, the seed's alert threshold) and that every kind of request
a viewer makes was made, never a latency or a throughput: those depend on the machine and
belong to `bench/load.py`."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.e2e

USERS = 20
SECONDS = 25  # after 5 s of arrivals


def _bench_load() -> ModuleType:
    name = "streamia_bench_load"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).parents[2] / "bench" / "load.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


load = _bench_load()


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    "platform", [pytest.param("distributed", marks=pytest.mark.distributed)], indirect=True
)
async def test_viewers_under_load_see_under_one_percent_errors(
    platform, client, harness, sample_video, tmp_path
) -> None:
    movie_ids = await load.stock(platform, client, harness, sample_video, streamable=3, listed=8)
    # Pauses of 0.5-2 s and sessions of about 8 actions: every kind of request is made
    # many times in the 30 s, the logout and the second login included.
    run = await asyncio.to_thread(
        load.run_locust,
        platform.gateway,
        movie_ids,
        USERS,
        SECONDS,
        tmp_path,
        think_time=0.25,
        session_actions=8,
        spawn_rate=USERS / 5,  # statistics over the whole run, the sign-ups included
    )
    made = {name for name, row in run.routes.items() if row.requests}
    assert made == set(load.ROUTES), (
        f"missing: {set(load.ROUTES) - made}, unexpected: {made - set(load.ROUTES)}"
    )
    assert run.total.requests > 300, run.total
    assert run.total.error_rate < load.ERROR_LIMIT, "\n".join(run.failures)
