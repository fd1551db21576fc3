"""The shipped Prometheus and Alertmanager files as their own tools read them: `promtool check
config` (compose's and Kubernetes' configs), `amtool check-config` (both Alertmanager
configs), and the alert rules' unit tests (`deploy/prometheus/tests/*.yml`)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from streamia_kit.testing import require_system_tool

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
MONITORING = DEPLOY / "k8s" / "base" / "monitoring"
ALERTS = MONITORING / "alerts.yml"
ALERTMANAGER_CONFIGS = (
    DEPLOY / "alertmanager" / "alertmanager.yml",
    MONITORING / "alertmanager.yml",
)
SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
# Debian builds Prometheus without Kubernetes service discovery; its promtool refuses the key.
_NO_KUBERNETES_SD = "field kubernetes_sd_configs not found"


def _run(tool: str, package: str, *args: str) -> subprocess.CompletedProcess[str]:
    binary = require_system_tool(tool, package)
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=False)


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return _run("promtool", "prometheus", *args)


def test_promtool_accepts_the_compose_config_and_its_rule_files() -> None:
    result = _promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def _without_kubernetes_discovery(config: dict[str, Any]) -> dict[str, Any]:
    """The config with each job's Kubernetes discovery replaced by an empty target list."""
    jobs = []
    for job in config["scrape_configs"]:
        job = {key: value for key, value in job.items() if key != "kubernetes_sd_configs"}
        job.setdefault("static_configs", [{"targets": []}])
        jobs.append(job)
    return {**config, "scrape_configs": jobs}


def test_promtool_accepts_the_kubernetes_config_and_its_rule_files(tmp_path: Path) -> None:
    # The pod's service-account token and CA exist only in the pod: stand-ins here, the rest
    # of the file as shipped, next to the same rule file.
    account = tmp_path / "serviceaccount"
    account.mkdir()
    for name in ("token", "ca.crt"):
        (account / name).write_text("stand-in\n")
    text = (MONITORING / "prometheus.yml").read_text().replace(SERVICE_ACCOUNT, str(account))
    config = tmp_path / "prometheus.yml"
    config.write_text(text)
    (tmp_path / "alerts.yml").write_text(ALERTS.read_text())
    result = _promtool("check", "config", str(config))
    if result.returncode != 0 and _NO_KUBERNETES_SD in result.stdout + result.stderr:
        # This promtool cannot parse Kubernetes discovery: check everything else of the file
        # (rules, relabelling, Alertmanager, authorization, the other jobs).
        config.write_text(yaml.safe_dump(_without_kubernetes_discovery(yaml.safe_load(text))))
        result = _promtool("check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def test_amtool_accepts_both_alertmanager_configs() -> None:
    result = _run(
        "amtool", "prometheus-alertmanager", "check-config", *map(str, ALERTMANAGER_CONFIGS)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(ALERTMANAGER_CONFIGS)


def test_prometheus_sends_alerts_to_alertmanager_in_compose_and_kubernetes() -> None:
    for config in (PROMETHEUS / "prometheus.yml", MONITORING / "prometheus.yml"):
        alerting = yaml.safe_load(config.read_text())["alerting"]["alertmanagers"]
        targets = [t for am in alerting for group in am["static_configs"] for t in group["targets"]]
        assert targets and all(
            t.startswith("alertmanager") and t.endswith(":9093") for t in targets
        )


def test_every_alert_rule_passes_its_promtool_unit_tests() -> None:
    tests = sorted(str(path) for path in (PROMETHEUS / "tests").glob("*.yml"))
    result = _promtool("test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(tests)


def test_every_alert_rule_has_a_unit_test() -> None:
    rules = yaml.safe_load(ALERTS.read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tested: set[str] = set()
    for path in (PROMETHEUS / "tests").glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            tested |= {check["alertname"] for check in case.get("alert_rule_test", [])}
    assert alerts and alerts == tested, alerts ^ tested
