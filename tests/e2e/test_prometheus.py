"""A real Prometheus (Debian's `prometheus`) scrapes the running platform with the shipped
alert rules: every /metrics target is up, every metric an alert rule or a dashboard panel
queries is really exported (exporter metrics that cannot run here: an explicit allow-list),
each series is scraped from one target only, and an upstream stopped sets the gateway's 5xx
alert pending."""

from __future__ import annotations

import json
import re
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from streamia_kit.testing import free_port, require_system_tool, wait_for

pytestmark = pytest.mark.e2e

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ALERTS = DEPLOY / "k8s" / "base" / "monitoring" / "alerts.yml"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
ALLOW_LIST = DEPLOY / "prometheus" / "exporter-metrics.txt"
# Each exporter of the allow-list and the prefix of every name it exports.
EXPORTER_PREFIXES = {
    "alertmanager": "alertmanager_",
    "cadvisor": "container_",
    "kube-state-metrics": "kube_",
    "postgres_exporter": "pg_",
    "rabbitmq_prometheus": "rabbitmq_",
}
# Written by Prometheus' own rule evaluation while an alert is pending or firing: checked by
# the test that sets one pending.
RULE_SERIES = {"ALERTS", "ALERTS_FOR_STATE"}
_PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def promql_metric_names(expr: str) -> set[str]:
    """The metric names in a PromQL expression: every identifier that is not a function
    call, a keyword, inside a string, a label matcher (`{...}`), a range (`[5m]`,
    `[$__rate_interval]`) or a grouping (`by (...)`, `on (...)`)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', " ", expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    found = re.findall(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expr)
    return {name for name in found if name.lower() not in _PROMQL_WORDS}


def used_metrics() -> dict[str, set[str]]:
    """Each metric name the alert rules and dashboards query -> the rules and panels using it."""
    used: dict[str, set[str]] = defaultdict(set)
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            for name in promql_metric_names(rule["expr"]):
                used[name].add(f"alert {rule['alert']}")
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                for name in promql_metric_names(target["expr"]):
                    used[name].add(f"{path.stem}: {panel['title']}")
        for variable in dashboard.get("templating", {}).get("list", []):
            for name in re.findall(r"label_values\((\w+)", variable.get("definition", "")):
                used[name].add(f"{path.stem}: ${variable['name']}")
    return used


def allow_list() -> dict[str, str]:
    """The allow-list file: metric name -> its exporter."""
    entries = {}
    for line in ALLOW_LIST.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, exporter = line.split()[:2]
            entries[name] = exporter
    return entries


def test_the_metric_names_of_a_query_are_found_and_nothing_else() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (service, le) (rate(streamia_http_request_duration_"
        'seconds_bucket{service=~"$service", status=~"5.."}[$__rate_interval]))) / on (service)'
        " sum(rate(streamia_http_requests_total[5m] offset 1d)) > 0.5 and up or vector(0)"
    )
    assert promql_metric_names(expr) == {
        "streamia_http_request_duration_seconds_bucket",
        "streamia_http_requests_total",
        "up",
    }


def test_the_exporter_allow_list_is_exact() -> None:
    used, allowed = used_metrics(), allow_list()
    assert set(allowed) <= set(used), f"allow-listed but used nowhere: {set(allowed) - set(used)}"
    for name, exporter in allowed.items():
        assert name.startswith(EXPORTER_PREFIXES[exporter]), f"{name} is not {exporter}'s"
    # The platform's own names are always checked live, never allow-listed.
    exporter_like = {n for n in used if n.startswith(tuple(EXPORTER_PREFIXES.values()))}
    assert exporter_like == set(allowed), exporter_like ^ set(allowed)


def test_the_five_seed_dashboards_are_provisioned() -> None:
    uids = {json.loads(p.read_text())["uid"] for p in DASHBOARDS.glob("*.json")}
    assert uids == {
        "streamia-overview",
        "streamia-service",
        "streamia-rabbitmq",
        "streamia-database",
        "streamia-alerts",
    }
    service = json.loads((DASHBOARDS / "streamia-service.json").read_text())
    assert [v["name"] for v in service["templating"]["list"]] == ["service"]


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


async def _query(client: httpx.AsyncClient, prometheus: str, promql: str) -> list[dict[str, Any]]:
    resp = await client.get(prometheus + "/api/v1/query", params={"query": promql})
    assert resp.status_code == 200, resp.text
    result: list[dict[str, Any]] = resp.json()["data"]["result"]
    return result


@pytest.mark.parametrize("platform", ["embedded"], indirect=True)
async def test_prometheus_scrapes_every_service_and_finds_every_queried_metric(
    platform: Any, prometheus: str
) -> None:
    async with httpx.AsyncClient(timeout=10.0) as client:
        # Traffic: requests for the RED series, a sign-up for events consumed and an email.
        for path in ("/api/movies", "/api/movies/no-such-movie", "/api/nowhere"):
            await client.get(platform.gateway + path)
        await platform.register(client)

        health = await _every_target_up(client, prometheus)
        assert set(health) == set(platform.ports)

        allowed = allow_list()
        wanted = {n for n in used_metrics() if n not in allowed and n not in RULE_SERIES}
        live: set[str] = set()

        async def all_scraped() -> bool:
            resp = await client.get(prometheus + "/api/v1/label/__name__/values")
            live.update(resp.json()["data"])
            return wanted <= live

        try:
            await wait_for(all_scraped, timeout=20, interval=0.5, message="every queried metric")
        except AssertionError:
            missing = {name: sorted(used_metrics()[name]) for name in wanted - live}
            raise AssertionError(f"queried but never scraped: {missing}") from None

        # Per route, as a template: the movie id never becomes a label value.
        series = await _query(client, prometheus, 'streamia_http_requests_total{service="movies"}')
        routes = {s["metric"]["route"] for s in series}
        assert "/api/movies/{movie_id}" in routes
        assert not any("no-such-movie" in route for route in routes)
        # The gateway labels its series with the template of the upstream route that answered.
        series = await _query(
            client, prometheus, 'streamia_gateway_requests_total{upstream="movies"}'
        )
        gateway_routes = {s["metric"]["route"] for s in series}
        assert "/api/movies/{movie_id}" in gateway_routes
        assert not any("no-such-movie" in route for route in gateway_routes)

        # One process, eight /metrics pages: each service's series come from its own page
        # only, and the process-wide ones (process_*, python_*) from the gateway's alone.
        labelled = await _query(client, prometheus, '{__name__=~"streamia_.+", service!=""}')
        assert {s["metric"]["service"] for s in labelled} >= set(platform.ports) - {"gateway"}
        for s in labelled:
            assert s["metric"]["app"] == s["metric"]["service"], s["metric"]
        (cpu,) = await _query(client, prometheus, 'process_cpu_seconds_total{job="streamia"}')
        assert cpu["metric"]["app"] == "gateway"


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
                # The alerts dashboard's query: Prometheus' own ALERTS series.
                return await _query(
                    client,
                    prometheus,
                    'ALERTS{alertname="StreamiaGatewayErrors", upstream="comments"}',
                )

            (alert,) = await wait_for(
                pending, timeout=30, interval=0.3, message="StreamiaGatewayErrors pending"
            )
            # Its `for` (2 minutes) has not passed yet.
            assert alert["metric"]["alertstate"] == "pending"
            assert alert["metric"]["severity"] == "critical"
            since = await _query(client, prometheus, "ALERTS_FOR_STATE")
            assert {s["metric"]["alertname"] for s in since} >= {"StreamiaGatewayErrors"}
        finally:
            platform.start_service("comments")
