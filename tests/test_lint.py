"""The style gate: `ruff check`, `ruff format --check` and `mypy` pass on the workspace."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # ruff and mypy come with the dev group


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
        "packages/streamia-kit/src",
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
