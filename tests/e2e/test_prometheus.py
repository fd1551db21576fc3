"""A real Prometheus (Debian's `prometheus`) scrapes the running platform: every service's
/metrics is a healthy target, every metric the alert rules query is really exported, and an
upstream stopped sets the gateway's 5xx alert pending."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from streamia_kit.testing import free_port, require_system_tool, wait_for

pytestmark = pytest.mark.e2e

ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
# Scraped by the `rabbitmq` job of the shipped config (RabbitMQ's own plugin), not by the
# platform: the embedded platform has no broker to export them.
BROKER_METRICS = re.compile(r"^rabbitmq_")
_PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "on", "ignoring", "inf", "nan"}


def alert_metric_names() -> set[str]:
    """The metric names in the alert rules' expressions: every identifier that is not a
    function call, a keyword, a label matcher (`{...}`) or a grouping (`by (...)`)."""
    rules = yaml.safe_load(ALERTS.read_text())
    names: set[str] = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            expr = re.sub(r"\{[^}]*\}", " ", rule["expr"])
            expr = re.sub(r"\b(by|without)\s*\([^)]*\)", " ", expr)
            found = re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expr)
            names |= {name for name in found if name.lower() not in _PROMQL_WORDS}
    return names


def _scrape_config(platform: Any, port: int) -> dict[str, Any]:
    services = platform.ports  # every service and the gateway, on this run's ports
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {
                "job_name": "streamia",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{p}"], "labels": {"app": name}}
                    for name, p in services.items()
                ],
            },
            {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]},
        ],
    }


@pytest.fixture
def prometheus(platform: Any, tmp_path: Path) -> Any:
    """Prometheus on a free port with its own storage, scraping this platform every second."""
    binary = require_system_tool("prometheus", "prometheus")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(_scrape_config(platform, port)))
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


async def _every_target_up(client: httpx.AsyncClient, prometheus: str) -> dict[str, str]:
    """Each scraped app's health, once Prometheus reports every one of them up."""

    async def targets() -> dict[str, str] | None:
        try:
            resp = await client.get(prometheus + "/api/v1/targets")
        except httpx.HTTPError:
            return None  # not listening yet
        if resp.status_code != 200:
            return None  # listening, but its storage is still opening: 503 until /-/ready
        active = resp.json()["data"]["activeTargets"]
        health = {t["labels"]["app"]: t["health"] for t in active if "app" in t["labels"]}
        return health if set(health.values()) == {"up"} else None

    found: dict[str, str] = await wait_for(
        targets, timeout=30, interval=0.5, message="every target up"
    )
    return found


def test_the_alert_rules_name_the_metrics_they_query() -> None:
    names = alert_metric_names()
    assert "streamia_gateway_requests_total" in names
    assert "streamia_http_request_duration_seconds_bucket" in names
    assert not names & {"rate", "sum", "histogram_quantile", "service", "upstream", "le", "5m"}


@pytest.mark.parametrize("platform", ["embedded"], indirect=True)
async def test_prometheus_scrapes_every_service_and_finds_every_alerted_metric(
    platform: Any, prometheus: str
) -> None:
    async with httpx.AsyncClient(timeout=5.0) as client:
        # Traffic, so the request counters and histograms have series to scrape.
        for path in ("/api/movies", "/api/movies/no-such-movie", "/api/nowhere"):
            await client.get(platform.gateway + path)

        health = await _every_target_up(client, prometheus)
        assert set(health) == set(platform.ports)

        wanted = {name for name in alert_metric_names() if not BROKER_METRICS.match(name)}

        async def all_scraped() -> bool:
            resp = await client.get(prometheus + "/api/v1/label/__name__/values")
            return wanted <= set(resp.json()["data"])

        await wait_for(all_scraped, timeout=20, interval=0.5, message=f"{sorted(wanted)} scraped")

        # Per route, as a template: the movie id never becomes a label value.
        resp = await client.get(
            prometheus + "/api/v1/series",
            params={"match[]": 'streamia_http_requests_total{service="movies"}'},
        )
        routes = {series["route"] for series in resp.json()["data"]}
        assert "/api/movies/{movie_id}" in routes
        assert not any("no-such-movie" in route for route in routes)


@pytest.mark.parametrize(
    "platform", [pytest.param("distributed", marks=pytest.mark.distributed)], indirect=True
)
async def test_an_upstream_stopped_sets_the_gateway_5xx_alert_pending(
    platform: Any, prometheus: str
) -> None:
    async with httpx.AsyncClient(timeout=5.0) as client:
        await _every_target_up(client, prometheus)
        platform.stop("comments")
        try:

            async def pending() -> list[dict[str, Any]]:
                # The gateway answers 503 for every request to the stopped upstream.
                assert (await client.get(platform.gateway + "/api/comments/m1")).status_code == 503
                resp = await client.get(prometheus + "/api/v1/alerts")
                return [
                    alert
                    for alert in resp.json()["data"]["alerts"]
                    if alert["labels"]["alertname"] == "StreamiaGatewayErrors"
                    and alert["labels"].get("upstream") == "comments"
                ]

            (alert,) = await wait_for(
                pending, timeout=30, interval=0.3, message="StreamiaGatewayErrors pending"
            )
            assert alert["state"] == "pending"  # its `for` (2 minutes) has not passed yet
        finally:
            platform.start_service("comments")
