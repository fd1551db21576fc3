"""The Streamia web app: `static/index.html` and `static/assets/` (plain ES modules and CSS,
no build step), served by the gateway at `/`."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

# The app's own pages (the ROUTES of `static/assets/app.js`; a test keeps the two equal). The
# gateway answers a browser's GET on any of them with `index.html`, so every link in an email
# and every bookmark lands on its page.
ROUTES = tuple(
    re.compile(pattern)
    for pattern in (
        r"/",
        r"/movies/([^/]+)",
        r"/login",
        r"/register",
        r"/forgot-password",
        r"/reset-password/([^/]+)",
        r"/profile",
        r"/favorites",
        r"/ratings",
        r"/history",
        r"/admin",
        r"/admin/movies/([^/]+)",
    )
)


def is_page(path: str) -> bool:
    """Whether `path` is one of the app's pages (a dot segment never is)."""
    if any(segment in (".", "..") for segment in path.split("/")):
        return False
    return any(route.fullmatch(path) for route in ROUTES)


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
