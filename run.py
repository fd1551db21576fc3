#!/usr/bin/env python3
"""Bootstrap Streamia on a machine that has only Python 3.11+ and pip.

    python3 run.py up      # the whole platform in one process (embedded mode)
    python3 run.py test    # the whole test suite

Creates .venv on first use, installs the pinned uv, syncs uv.lock into it, then hands over
to the `streamia` command line (any other arguments are passed straight to it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
UV_VERSION = "0.13.8"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
WEB = ROOT / "packages" / "streamia-web"
CONTRACTS = ROOT / "contracts"


def _stamp() -> str:
    digest = hashlib.sha256()
    for name in ("uv.lock", "pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def ensure_environment() -> None:
    """Create and sync the virtual environment when uv.lock changed since the last sync."""
    if sys.version_info < (3, 11):
        sys.exit("Streamia needs Python 3.11 or newer")
    marker = VENV / ".streamia-synced"
    if marker.exists() and marker.read_text() == _stamp():
        return
    if not (BIN / "python").exists():
        print("Creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    uv = BIN / "uv"
    if not uv.exists():
        subprocess.check_call(
            [str(BIN / "python"), "-m", "pip", "install", "-q", f"uv=={UV_VERSION}"]
        )
    print("Installing pinned dependencies from uv.lock ...", flush=True)
    env = dict(os.environ, UV_PROJECT_ENVIRONMENT=str(VENV), VIRTUAL_ENV=str(VENV))
    # Bytecode compiled once here (~8 s): where PYTHONDONTWRITEBYTECODE is set (CI images,
    # some shells) every process would otherwise compile its imports again at each start,
    # e.g. `streamia dlq list` 2.7 s -> 0.5 s.
    subprocess.check_call(
        [
            str(uv),
            "sync",
            "--frozen",
            "--all-packages",
            "--compile-bytecode",
            "--python",
            str(BIN / "python"),
        ],
        cwd=ROOT,
        env=env,
    )
    marker.write_text(_stamp())


def ensure_node_tools() -> None:
    """Install the test-only Node tooling (pinned in each package-lock.json) when npm is present:
    the web app's linter (Biome) and the AsyncAPI JSON schemas the event contract is checked
    against. Without Node the checks that need them say they skipped.
    """
    npm = shutil.which("npm")
    if npm is None:
        return
    for folder, what in ((WEB, "the web app's linter"), (CONTRACTS, "the AsyncAPI schemas")):
        marker = folder / "node_modules" / ".streamia-installed"
        stamp = hashlib.sha256((folder / "package-lock.json").read_bytes()).hexdigest()
        if marker.exists() and marker.read_text() == stamp:
            continue
        print(f"Installing {what} (npm ci) ...", flush=True)
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder, check=False
        )
        if done.returncode == 0:
            marker.write_text(stamp)
        else:
            print(f"warning: npm ci failed; the checks that need {what} will skip", flush=True)


def main() -> None:
    ensure_environment()
    args = sys.argv[1:] or ["up"]
    if args[0] == "test":
        ensure_node_tools()
    os.execv(str(BIN / "streamia"), [str(BIN / "streamia"), *args])


if __name__ == "__main__":
    main()
