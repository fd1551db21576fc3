"""The style gate: `ruff check`, `ruff format --check` and `mypy` pass on the workspace, and
Biome (lint + format) on the web app's JavaScript and CSS."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # ruff and mypy come with the dev group
WEB = ROOT / "packages" / "streamia-web"
BIOME = WEB / "node_modules" / ".bin" / "biome"  # `python3 run.py test` installs it (npm ci)


@pytest.mark.parametrize(
    "command", [["check", "--output-format", "concise"], ["format", "--check"]]
)
def test_ruff(command):
    result = subprocess.run(
        [str(BIN / "ruff"), *command, "."], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy():
    sources = [
        *sorted(str(p) for p in ROOT.glob("packages/*/src")),
        *sorted(str(p) for p in ROOT.glob("services/*/src")),
        "src",
    ]
    result = subprocess.run(
        [str(BIN / "mypy"), *sources],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_biome():
    if not BIOME.exists():
        reason = "Biome is not installed: it needs Node/npm (`python3 run.py test` runs `npm ci`)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + "; CI must run it")
        pytest.skip(reason)
    result = subprocess.run(
        [str(BIOME), "ci", "--colors=off", "src/streamia_web/static"],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
