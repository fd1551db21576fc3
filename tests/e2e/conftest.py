"""The e2e harness as fixtures: the real platform, started as subprocesses, in both modes.

Test modules run with `--import-mode=importlib` and cannot import this file or its
neighbours, so everything they share comes from the fixtures below (`harness` is the
helper module itself: `harness.new_movie()`, `harness.bearer(token)`, `harness.wait_until`).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from streamia_kit.testing import require_infrastructure
from streamia_movies.media.synth import ClipSpec, make_clip


def _load_harness() -> ModuleType:
    name = "streamia_e2e_harness"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("harness.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


_harness = _load_harness()


@pytest.fixture(scope="session")
def harness() -> ModuleType:
    """The helper module (`tests/e2e/harness.py`)."""
    return _harness


@pytest.fixture(scope="session")
def otlp() -> Iterator:
    """The OTLP/HTTP receiver the session's platforms export their spans to (only the traces
    a test starts itself are recorded: `harness.traced_env`)."""
    receiver = _harness.OtlpReceiver()
    try:
        yield receiver
    finally:
        receiver.close()


@pytest.fixture(
    scope="session",
    params=["embedded", pytest.param("distributed", marks=pytest.mark.distributed)],
)
def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, otlp
) -> Iterator:
    """The whole platform, once per mode and session; tests use random users and movies so
    they never see each other's data, and every test leaves it running."""
    if request.param == "distributed":
        require_infrastructure()
    running = _harness.Platform(
        request.param,
        tmp_path_factory.mktemp(f"e2e-{request.param}"),
        extra_env=_harness.traced_env(otlp.endpoint),
    )
    running.start()
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30.0) as value:
        yield value


@pytest.fixture
async def api(platform, client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose base URL is the platform's gateway."""
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=30.0) as value:
        yield value


@pytest.fixture
async def admin_headers(platform, client: httpx.AsyncClient) -> dict[str, str]:
    return _harness.bearer(await platform.admin_token(client))


@pytest.fixture(scope="session")
def sample_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-second H.264/AAC mp4 made with PyAV (with a tone, so it has audio)."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    spec = ClipSpec(
        "Clip", ("#204060", "#000000"), "#ffcc00", 440, seconds=2, width=160, height=120
    )
    make_clip(path, spec)
    return path
