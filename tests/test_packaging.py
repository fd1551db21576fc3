"""The production image (`uv sync --no-dev`) can import every production module: nothing
shipped needs pytest, httpx or another dev-only package."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# Test support shipped as extras (`streamia-kit[testing]`, ...): they may import what their
# extra declares, and the image does not install that extra.
EXTRAS = {"streamia_kit.testing", "streamia_catalogue_projection.testing"}

# Run in a fresh interpreter: any import of a top-level module that only distributions
# outside the production lock provide fails, as it would in the image.
PROBE = """
import importlib, importlib.abc, importlib.metadata, json, re, sys

allowed, modules = json.loads(sys.stdin.read())
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
blocked = {
    top
    for top, dists in importlib.metadata.packages_distributions().items()
    if not any(norm(d) in allowed for d in dists)
}

class DevOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"{name} is not in the production image", name=name)
        return None

sys.meta_path.insert(0, DevOnly())
failed = {}
for module in modules:
    try:
        importlib.import_module(module)
    except Exception as exc:
        failed[module] = f"{type(exc).__name__}: {exc}"
print(json.dumps(failed))
"""


def production_distributions() -> set[str]:
    """What `uv sync --frozen --no-dev --all-packages` (the Dockerfile) installs."""
    exported = subprocess.run(
        [str(BIN / "uv"), "export", "--frozen", "--no-dev", "--all-packages", "--no-hashes"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    names = {"streamia"}
    for line in exported.splitlines():
        found = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==", line) or re.match(
            r"-e \./(?:packages|services)/([a-z-]+)", line
        )
        if found:
            names.add(re.sub(r"[-_.]+", "-", found.group(1)).lower())
    return names


def production_modules() -> list[str]:
    """Every module under the workspace's `src/` folders (migrations run inside Alembic)."""
    modules = []
    for src in [ROOT / "src", *ROOT.glob("packages/*/src"), *ROOT.glob("services/*/src")]:
        for path in sorted(src.rglob("*.py")):
            relative = path.relative_to(src).with_suffix("")
            if "migrations" in relative.parts:
                continue
            parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
            module = ".".join(parts)
            if module not in EXTRAS:
                modules.append(module)
    return modules


def test_the_production_image_imports_every_production_module():
    allowed = production_distributions()
    assert "pytest" not in allowed and "httpx" not in allowed
    modules = production_modules()
    assert "streamia_kit.service" in modules and "streamia_gateway.app" in modules
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        input=json.dumps([sorted(allowed), modules]),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {}


def test_the_probe_refuses_a_dev_only_package():
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        input=json.dumps([sorted(production_distributions()), ["streamia_kit.testing"]]),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    failed = json.loads(result.stdout)
    assert "not in the production image" in failed["streamia_kit.testing"]
