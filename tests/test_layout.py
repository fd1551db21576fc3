"""Every service has the same shape, so knowing one means knowing all of them: the files
`create_app` wiring, settings, dependencies and consumers live in, one folder per feature
with its endpoints, schemas, models, repository and service, and tests in unit/ and
integration/. What a service does not have is written down here, with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").exists())

TOP = ("app.py", "config.py", "dependencies.py", "consumers.py")
FEATURE = ("endpoints.py", "schemas.py", "models.py", "repository.py", "service.py")

# service -> files or folders it does not have, and why.
EXCEPTIONS: dict[str, dict[str, str]] = {
    "gateway": {
        "dependencies.py": "no endpoint takes FastAPI dependencies: `_dispatch` is the pipeline",
        "consumers.py": "it consumes no event (revocations are read from Redis)",
        "<feature>/": "it owns no data: routing, access log, login limiting and operations "
        "are modules of their own (see the gateway's app.py)",
    },
    "notifications": {
        "dependencies.py": "no API endpoint (health, readiness and metrics only)",
        "<feature>/": "its features (emails, jobs, senders) are driven by events, not HTTP: "
        "emails/ has schemas, models, repository and service but no endpoints.py",
    },
    "users": {
        "consumers.py": "it consumes no event: users is where user.* events start",
    },
    "playback": {
        "charts/models.py": "charts read the progress feature's tables; they own none",
    },
}


def _package(service: str) -> Path:
    return ROOT / "services" / service / "src" / f"streamia_{service}"


def _features(service: str) -> list[Path]:
    """Feature folders: the packages of a service that have HTTP endpoints."""
    return sorted(p.parent for p in _package(service).glob("*/endpoints.py"))


def test_the_services_are_the_ones_this_test_knows():
    assert set(EXCEPTIONS) <= set(SERVICES)
    assert {"users", "movies", "favorites", "ratings", "comments"} <= set(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_the_top_level_modules(service):
    excused = EXCEPTIONS.get(service, {})
    missing = [f for f in TOP if f not in excused and not (_package(service) / f).is_file()]
    assert not missing, f"{service} lacks {missing} (or add a written exception here)"
    for name in excused:
        if name in TOP:
            assert not (_package(service) / name).exists(), f"stale exception: {service} {name}"


@pytest.mark.parametrize("service", SERVICES)
def test_every_feature_folder_has_endpoints_schemas_models_repository_and_service(service):
    features = _features(service)
    if "<feature>/" in EXCEPTIONS.get(service, {}):
        assert not features, f"stale exception: {service} has feature folders now"
        return
    assert features, f"{service} has no feature folder with endpoints.py"
    excused = EXCEPTIONS.get(service, {})
    for folder in features:
        missing = [
            f for f in FEATURE if not (folder / f).is_file() and f"{folder.name}/{f}" not in excused
        ]
        assert not missing, f"{service}/{folder.name} lacks {missing}"


@pytest.mark.parametrize("service", SERVICES)
def test_tests_are_split_into_unit_and_integration(service):
    tests = ROOT / "services" / service / "tests"
    flat = sorted(p.name for p in tests.glob("test_*.py"))
    assert not flat, f"{service}: move {flat} into tests/unit/ or tests/integration/"
    tiers = {p.name for p in tests.iterdir() if p.is_dir() and any(p.rglob("test_*.py"))}
    assert tiers and tiers <= {"unit", "integration"}, f"{service}: test folders {tiers}"
