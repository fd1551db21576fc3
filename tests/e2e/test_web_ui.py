"""The web app at `/` in a real (headless) Chromium against the real platform.

Playwright for Python is a dev dependency (in the lock); the browser is the system's Chromium
(`apt-get install chromium`, or the path in STREAMIA_CHROMIUM), which `.ci/run` installs.
Without one this test is skipped (Playwright's own browser download needs the internet).
"""

from __future__ import annotations

import asyncio
import email as email_lib
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

playwright_api = pytest.importorskip("playwright.async_api")


def _chromium() -> str:
    path = os.environ.get("STREAMIA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.skip("no Chromium binary (set STREAMIA_CHROMIUM)")
    return path


@pytest.fixture
async def browser_page() -> Any:
    """A fresh page, plus the page errors and CSP violations it logs."""
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=_chromium(),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
        page.on(
            "console",
            lambda msg: (
                problems.append(msg.text) if "Content Security Policy" in msg.text else None
            ),
        )
        page.on("dialog", lambda dialog: dialog.accept())
        page.problems = problems  # type: ignore[attr-defined]
        try:
            yield page
        finally:
            await browser.close()


async def _login(page: Any, gateway: str, email: str, password: str) -> None:
    await page.goto(gateway + "/#/login")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", password)
    await page.click("form.card-form button[type=submit]")
    await page.wait_for_selector("button:has-text('Log out')")


async def test_browsing_rating_commenting_and_favourites(
    platform, api, admin_headers, harness, browser_page
) -> None:
    page = browser_page
    title = f"Café Web {uuid.uuid4().hex[:6]}"
    resp = await api.post("/api/movies", json=harness.new_movie(title=title), headers=admin_headers)
    assert resp.status_code == 201, resp.text
    movie_id = resp.json()["data"]["id"]
    account = await platform.register(api)

    await page.goto(platform.gateway + "/")
    await page.wait_for_selector(".grid")
    # Accent-insensitive search through the explore endpoint.
    await page.fill("#catalogue-search", title.replace("é", "e").lower())
    await page.wait_for_selector(f".card-title:has-text('{title}')")

    await _login(page, platform.gateway, account.email, account.password)
    await page.goto(f"{platform.gateway}/#/movie/{movie_id}")
    await page.wait_for_selector(f"h1:has-text('{title}')")
    assert await page.get_attribute("video", "aria-label") == f"Video: {title}"

    # Comments are text, never markup.
    nasty = '<img src=x onerror="window.pwned=1"> <b>bold</b>'
    await page.fill(".comment-form textarea", nasty)
    await page.click(".comment-form button[type=submit]")
    await page.wait_for_selector(".comment-list .comment-text")
    assert await page.locator(".comment-list .comment-text").first.inner_text() == nasty
    assert await page.locator(".comment-list img, .comment-list b").count() == 0
    assert await page.evaluate("() => window.pwned") is None

    # Rating: the summary follows the API.
    await page.click("label[for$='-5']")
    await page.wait_for_selector(".rating-number:has-text('5.0')")

    # Favourites.
    await page.click("button:has-text('Add to my list')")
    await page.wait_for_selector("button[aria-pressed=true]")
    await page.goto(platform.gateway + "/#/favorites")
    await page.wait_for_selector(f".card-title:has-text('{title}')")

    assert page.problems == []


async def test_the_reset_link_of_the_email_opens_the_reset_form(
    platform, api, browser_page
) -> None:
    page = browser_page
    await page.goto(platform.gateway + "/reset-password/not-a-real-token")
    await page.fill("input[name=newPassword]", "N3w!Password")
    await page.fill("input[name=confirmPassword]", "N3w!Password")
    await page.click("form.card-form button[type=submit]")
    alert = page.locator("form.card-form .notice.error")
    await alert.wait_for()
    assert "Expired or invalid token" in await alert.inner_text()

    account = await platform.register(api)
    resp = await api.post("/api/users/forgot-password", json={"email": account.email})
    assert resp.status_code == 200
    token = await _reset_token(platform.data_dir / "outbox", account.email)
    await page.goto(f"{platform.gateway}/reset-password/{token}")
    await page.fill("input[name=newPassword]", "N3w!Password")
    await page.fill("input[name=confirmPassword]", "N3w!Password")
    await page.click("form.card-form button[type=submit]")
    await page.wait_for_selector("h1:has-text('Password changed')")
    login = await api.post(
        "/api/users/login", json={"email": account.email, "password": "N3w!Password"}
    )
    assert login.status_code == 200
    assert page.problems == []


def _find_token(outbox: Path, email: str) -> str | None:
    for path in sorted(outbox.glob(f"*password-reset*{email}*.eml"), reverse=True):
        message = email_lib.message_from_bytes(path.read_bytes())
        for part in message.walk():
            if part.get_content_maintype() == "text":
                text = part.get_payload(decode=True).decode("utf-8", "replace")
                found = re.search(r"/reset-password/([A-Za-z0-9_\-]+)", text)
                if found:
                    return found.group(1)
    return None


async def _reset_token(outbox: Path, email: str) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        token = await asyncio.to_thread(_find_token, outbox, email)
        if token:
            return token
        await asyncio.sleep(0.1)
    raise AssertionError(f"no reset email for {email} in {outbox}")
