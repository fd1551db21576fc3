"""The Streamia web app: `static/index.html` and `static/assets/` (plain ES modules and CSS,
no build step), served by the gateway at `/`."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def static_root() -> Path:
    """The folder holding `index.html` and `assets/`, read through `importlib.resources`.

    The gateway watches the files' modification times (editing the app needs no restart), so
    the package must be installed as files on disk, which both the editable workspace install
    and the image's wheel install are.
    """
    root = files(__name__) / "static"
    if not isinstance(root, Path):
        raise RuntimeError(f"streamia_web is not installed as files on disk: {root!r}")
    return root
