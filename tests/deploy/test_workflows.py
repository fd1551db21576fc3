"""The GitHub Actions workflows as GitHub reads them: valid against the workflow JSON schema
(check-jsonschema's bundled copy, offline), actions pinned to exact releases, and doing what
deploy/README.md says: the suite against real data stores, the image built with cache, SBOM
and provenance and pushed from main, every overlay rendered and validated."""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
# actionlint as a wheel (the maintained kjanat/actionlint fork: rhysd's own PyPI wrapper builds
# from source and downloads the binary, which an offline machine cannot). It checks what the
# schema cannot: expressions and their contexts, `needs`, runner labels, action inputs, and the
# `run:` scripts through ShellCheck when it is on PATH (.ci/run installs it).
ACTIONLINT = Path(sys.executable).parent / "actionlint"


def _workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


@cache
def workflow(name: str) -> dict[str, Any]:
    # PyYAML reads a bare `on:` key as True (YAML 1.1); GitHub reads it as "on".
    loaded = yaml.safe_load((WORKFLOWS / f"{name}.yml").read_text())
    return {("on" if key is True else key): value for key, value in loaded.items()}


def _steps(name: str) -> list[dict[str, Any]]:
    return [step for job in workflow(name)["jobs"].values() for step in job["steps"]]


def _uses(name: str, action: str) -> dict[str, Any]:
    (step,) = [s for s in _steps(name) if s.get("uses", "").split("@")[0] == action]
    return step


def _check_workflows(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_three_workflows_exist():
    assert {p.stem for p in _workflow_files()} == {"ci", "images", "manifests"}


def test_every_workflow_is_valid_against_the_github_workflow_schema():
    result = _check_workflows(*_workflow_files())
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path):
    broken = dict(workflow("ci"))
    broken["jobs"] = {"test": {"steps": [{"run": "true"}]}}  # no runs-on
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(broken))
    assert _check_workflows(tmp_path / "broken.yml").returncode == 1


def _actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ACTIONLINT), "-no-color", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_actionlint_finds_nothing_in_the_workflows():
    result = _actionlint(*_workflow_files())
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_rejects_what_the_schema_accepts(tmp_path):
    """A typo in an expression context and a `needs` on a job that does not exist are valid
    YAML and valid against the schema; actionlint must catch both."""
    broken = dict(workflow("ci"))
    name, job = next(iter(broken["jobs"].items()))
    job = dict(job, needs=["no-such-job"])
    job["steps"] = [*job["steps"], {"run": "echo ${{ github.evnt_name }}"}]
    broken["jobs"] = {name: job}
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken))
    assert _check_workflows(path).returncode == 0
    result = _actionlint(path)
    assert result.returncode == 1, result.stdout
    assert "no-such-job" in result.stdout
    assert "evnt_name" in result.stdout


# A release tag (v4.2.2) or a commit; never a moving major (v4) or a branch.
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@(v\d+\.\d+\.\d+|[0-9a-f]{40})$")


@pytest.mark.parametrize("path", _workflow_files(), ids=lambda p: p.name)
def test_every_action_is_pinned_to_an_exact_release(path):
    steps = _steps(path.stem)
    assert steps
    for step in steps:
        if "uses" in step:
            assert PINNED.match(step["uses"]), step["uses"]


@pytest.mark.parametrize("path", _workflow_files(), ids=lambda p: p.name)
def test_every_workflow_reads_the_repository_only_unless_it_must_write(path):
    permissions = workflow(path.stem)["permissions"]
    assert permissions["contents"] == "read"
    writes = {scope for scope, level in permissions.items() if level == "write"}
    assert writes == ({"packages"} if path.stem == "images" else set())


def test_ci_runs_the_suite_against_real_postgres_rabbitmq_and_redis():
    (job,) = workflow("ci")["jobs"].values()
    services = job["services"]
    ports = {name: svc["ports"] for name, svc in services.items()}
    assert ports == {
        "postgres": ["5432:5432"],
        "rabbitmq": ["5672:5672"],
        "redis": ["6379:6379"],
    }
    assert all("--health-cmd" in svc["options"] for svc in services.values())
    assert job["env"]["STREAMIA_REQUIRE_INFRA"] == "1" and job["env"]["CI"] == "true"
    # The browser test needs a Chromium-family browser; .ci/run is the one test entry point.
    assert job["env"]["STREAMIA_CHROMIUM"]
    assert any(step.get("run") == "bash .ci/run" for step in job["steps"])
    # The suite's own defaults (guest, trust): no variable redirects it elsewhere.
    assert not {"STREAMIA_TEST_AMQP", "STREAMIA_TEST_POSTGRES", "STREAMIA_TEST_REDIS"} & set(
        job["env"]
    )
    assert services["postgres"]["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"


def test_ci_uses_the_data_store_images_the_deployment_runs():
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())["services"]
    (job,) = workflow("ci")["jobs"].values()
    for name, svc in job["services"].items():
        assert svc["image"] == compose[name]["image"], name


def test_images_builds_with_cache_sbom_and_provenance_and_pushes_from_main_only():
    on = workflow("images")["on"]
    assert on["push"]["branches"] == ["main"]
    build = _uses("images", "docker/build-push-action")["with"]
    assert build["file"] == "deploy/Dockerfile" and (ROOT / build["file"]).is_file()
    assert build["cache-from"] == "type=gha" and build["cache-to"] == "type=gha,mode=max"
    assert build["sbom"] is True and build["provenance"] == "mode=max"
    assert build["push"] == "${{ github.event_name != 'pull_request' }}"
    assert build["tags"] == "${{ steps.meta.outputs.tags }}"
    login = _uses("images", "docker/login-action")
    assert login["with"]["registry"] == "ghcr.io" and login["if"]
    _uses("images", "docker/setup-buildx-action")
    meta = _uses("images", "docker/metadata-action")["with"]
    assert meta["images"].startswith("ghcr.io/")
    # Only immutable tags: the overlays pin one of them (tests/deploy/test_manifests.py).
    assert "latest" not in meta["tags"] and "type=sha" in meta["tags"]


def test_the_image_workflow_pushes_where_the_overlays_pull_from():
    for overlay in ("dev", "prod"):
        kustomization = ROOT / "deploy" / "k8s" / "overlays" / overlay / "kustomization.yaml"
        (image,) = yaml.safe_load(kustomization.read_text())["images"]
        assert image["newName"].startswith("ghcr.io/") and image["newName"].endswith("/streamia")


def test_manifests_renders_and_strictly_validates_every_overlay():
    script = "\n".join(step.get("run", "") for step in _steps("manifests"))
    assert "deploy/k8s/overlays/*/" in script and ".venv/bin/kubectl kustomize" in script
    assert "kubernetes-validate --strict" in script
    assert "--builtin-schema vendor.github-workflows" in script
    assert "pytest tests/deploy" in script
    assert list((ROOT / "deploy" / "k8s" / "overlays").glob("*/kustomization.yaml"))
