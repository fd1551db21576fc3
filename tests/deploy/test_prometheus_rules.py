"""The shipped Prometheus files as Prometheus itself reads them: `promtool check config` and
the alert rules' unit tests (`deploy/prometheus/tests/*.yml`), one test file per rule file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from streamia_kit.testing import require_system_tool

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = require_system_tool("promtool", "prometheus")
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_accepts_the_shipped_config_and_its_rule_files() -> None:
    result = _promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_rule_passes_its_promtool_unit_tests() -> None:
    tests = sorted(str(path) for path in (PROMETHEUS / "tests").glob("*.yml"))
    result = _promtool("test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_rule_has_a_unit_test() -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tested: set[str] = set()
    for path in (PROMETHEUS / "tests").glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            tested |= {check["alertname"] for check in case.get("alert_rule_test", [])}
    assert alerts and alerts == tested, alerts ^ tested
