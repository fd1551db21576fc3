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
import typing
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import tree_sitter_javascript
from tree_sitter import Language, Parser

pytestmark = pytest.mark.e2e

playwright_api = pytest.importorskip("playwright.async_api")


def _chromium() -> str:
    path = os.environ.get("STREAMIA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.skip("no Chromium binary (set STREAMIA_CHROMIUM)")
    return path


def _is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.hostname in ("127.0.0.1", "localhost")


@pytest.fixture
async def browser_page() -> Any:
    """A fresh page, plus the page errors, CSP violations and requests to another origin it
    makes (Streamia works offline: nothing may be loaded from elsewhere)."""
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=_chromium(),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        # The selectors read English; accounts made through the API default to Spanish.
        await page.add_init_script(
            "localStorage.getItem('streamia.lang') || localStorage.setItem('streamia.lang', 'en')"
        )
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
        page.on(
            "console",
            lambda msg: (
                problems.append(msg.text) if "Content Security Policy" in msg.text else None
            ),
        )
        # A movie's own video may live elsewhere (an admin's choice); nothing else may.
        page.on(
            "request",
            lambda request: (
                None
                if _is_local(request.url) or request.resource_type == "media"
                else problems.append(f"remote {request.resource_type}: {request.url}")
            ),
        )
        page.on("dialog", lambda dialog: dialog.accept())
        page.problems = problems  # type: ignore[attr-defined]
        try:
            yield page
        finally:
            await browser.close()


async def _login(page: Any, gateway: str, email: str, password: str) -> None:
    await page.goto(gateway + "/login")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", password)
    await page.click("form.card-form button[type=submit]")
    await page.wait_for_selector("button:has-text('Log out')")


async def _watched(api: Any, harness: Any, token: str, movie_id: str, position: float) -> None:
    """Report a position in a 90 s movie for the account of `token`, through the gateway."""
    resp = await api.put(
        f"/api/playback/progress/{movie_id}",
        json={"position": position, "duration": 90},
        headers=harness.bearer(token),
    )
    assert resp.status_code == 200, resp.text


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
    await page.goto(f"{platform.gateway}/movies/{movie_id}")
    await page.wait_for_selector(f"h1:has-text('{title}')")
    await page.wait_for_selector(".rating-summary:has-text('Not rated yet')")
    assert await page.get_attribute("video", "aria-label") == f"Video: {title}"

    # Comments are text, never markup.
    nasty = '<img src=x onerror="window.pwned=1"> <b>bold</b>'
    await page.fill(".comment-form textarea", nasty)
    await page.click(".comment-form button[type=submit]")
    await page.wait_for_selector(".comment-list .comment-text")
    assert await page.locator(".comment-list .comment-text").first.inner_text() == nasty
    assert await page.locator(".comment-list img, .comment-list b").count() == 0
    assert await page.evaluate("() => window.pwned") is None

    # Edit, then delete the comment.
    await page.click(".comment-list button:has-text('Edit')")
    await page.fill(".comment-edit textarea", "Second thoughts")
    await page.click(".comment-edit button[type=submit]")
    await page.wait_for_selector(".comment-list .comment-text:has-text('Second thoughts')")
    await page.click(".comment-list button:has-text('Delete')")
    await page.wait_for_selector(".comment-list .comment-text", state="detached")

    # Rating: the summary follows the API.
    await page.click("label[for$='-5']")
    await page.wait_for_selector(".rating-number:has-text('5.0')")

    # Favourites.
    await page.click("button:has-text('Add to my list')")
    await page.wait_for_selector("button[aria-pressed=true]")
    await page.click("a:has-text('My list')")
    await page.wait_for_url(platform.gateway + "/favorites")
    await page.wait_for_selector(f".card-title:has-text('{title}')")
    await page.click("button:has-text('Add note')")  # the prompt is answered with its default
    await page.wait_for_selector(".toast:has-text('Note saved.')")
    await page.click(f".card:has-text('{title}') button:has-text('Remove')")
    await page.wait_for_selector(f".card-title:has-text('{title}')", state="detached")

    # Back restores the page the user came from, in the page (no reload).
    await page.go_back()
    await page.wait_for_selector(f"h1:has-text('{title}')")

    assert page.problems == []


async def test_account_forms_register_log_in_edit_change_password_and_delete(
    platform, api, harness, browser_page
) -> None:
    page = browser_page
    email = f"web-{uuid.uuid4().hex[:10]}@example.com"
    await page.goto(platform.gateway + "/register")
    # The API's own checks show next to their fields: a taken email is a 409 on `email`.
    await page.fill("input[name=firstName]", "Ada")
    await page.fill("input[name=lastName]", "Web")
    await page.fill("input[name=age]", "30")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", "Str0ng!Pass")
    await page.fill("input[name=confirmPassword]", "Str0ng!Pass")
    await page.click("form.card-form button[type=submit]")
    await page.wait_for_selector("button:has-text('Log out')")

    await page.click("button:has-text('Log out')")
    await _login(page, platform.gateway, email, "Str0ng!Pass")

    await page.click("a:has-text('Ada')")
    await page.wait_for_url(platform.gateway + "/profile")
    await page.fill("input[name=firstName]", "Adah")
    await page.select_option("select[name=language]", "en")
    await page.click("form:has(h2:has-text('Details')) button[type=submit]")
    await page.wait_for_selector("form:has(h2:has-text('Details')) .notice.success")
    assert await page.locator("#site-nav a:has-text('Adah')").count() == 1
    stored = await page.evaluate("() => JSON.parse(localStorage.getItem('streamia.user'))")
    assert stored["firstName"] == "Adah" and stored["language"] == "en"

    password_form = "form:has(h2:has-text('Change password'))"
    await page.fill(f"{password_form} input[name=currentPassword]", "wrong-Pass1!")
    await page.fill(f"{password_form} input[name=newPassword]", "N3w!Password")
    await page.fill(f"{password_form} input[name=confirmPassword]", "N3w!Password")
    await page.click(f"{password_form} button[type=submit]")
    await page.wait_for_selector(f"{password_form} .notice.error")
    await page.fill(f"{password_form} input[name=currentPassword]", "Str0ng!Pass")
    await page.fill(f"{password_form} input[name=newPassword]", "N3w!Password")
    await page.fill(f"{password_form} input[name=confirmPassword]", "N3w!Password")
    await page.click(f"{password_form} button[type=submit]")
    await page.wait_for_selector(f"{password_form} .notice.success")

    delete_form = "form.danger-zone"
    await page.fill(f"{delete_form} input[name=password]", "N3w!Password")
    await page.click(f"{delete_form} button[type=submit]")
    assert await page.locator("#delete-confirm-error").inner_text() != ""  # box not ticked
    await page.check("#delete-confirm")
    await page.click(f"{delete_form} button[type=submit]")
    await page.wait_for_selector("a:has-text('Log in')")
    login = await api.post("/api/users/login", json={"email": email, "password": "N3w!Password"})
    assert login.status_code == 401

    await page.goto(platform.gateway + "/forgot-password")
    await page.fill("input[name=email]", email)
    await page.click("form.card-form button[type=submit]")
    await page.wait_for_selector("form.card-form .notice.success")

    # The language switch: the page follows at once, and the choice outlives a reload.
    await page.select_option("#language-switch", "es")
    await page.wait_for_selector("main h1:has-text('¿Olvidaste tu contraseña?')")
    await page.reload()
    await page.wait_for_selector("#site-nav a:has-text('Iniciar sesión')")
    assert await page.evaluate("() => document.documentElement.lang") == "es"
    assert page.problems == []


async def test_every_link_in_every_email_lands_on_a_page(platform, browser_page) -> None:
    from streamia_notifications.config import NotificationsSettings
    from streamia_notifications.emails.renderer import LANGUAGES, EmailRenderer
    from streamia_notifications.emails.schemas import EmailJob, Kind

    page = browser_page
    renderer = EmailRenderer(NotificationsSettings(frontend_url=platform.gateway))
    links: set[str] = set()
    for kind in typing.get_args(Kind):
        job = EmailJob(
            event_id="e2e",
            kind=kind,
            to="someone@example.com",
            first_name="Ada",
            token="a-token",
            expires_at=datetime.now(UTC) + timedelta(hours=1),
        )
        for language in LANGUAGES:
            rendered = renderer.render(job, language)
            for body in (rendered.html, rendered.text):
                links.update(re.findall(r"https?://[^\s\"<>]+", body))
    assert {urlsplit(link).path for link in links} >= {
        "/",
        "/login",
        "/forgot-password",
        "/reset-password/a-token",
    }
    for link in sorted(links):
        assert link.startswith(platform.gateway), link
        response = await page.goto(link)
        assert response is not None and response.status == 200, link
        heading = page.locator("main h1")
        await heading.wait_for()
        assert await heading.inner_text() not in ("Page not found", "Something went wrong"), link
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
    assert "This reset link is invalid or has expired." in await alert.inner_text()

    account = await platform.register(api)
    resp = await api.post("/api/users/forgot-password", json={"email": account.email})
    assert resp.status_code == 200
    token = await _reset_token(platform.data_dir / "outbox", account.email)
    await page.goto(f"{platform.gateway}/reset-password/{token}")
    await page.fill("input[name=newPassword]", "N3w!Password")
    await page.fill("input[name=confirmPassword]", "N3w!Password")
    await page.click("form.card-form button[type=submit]")
    await page.wait_for_selector("h1:has-text('Password changed')")
    await page.click("a:has-text('Log in with your new password')")
    await page.wait_for_url(platform.gateway + "/login")
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


async def test_the_api_docs_render_offline(platform, browser_page) -> None:
    page = browser_page
    await page.goto(platform.gateway + "/docs")
    await page.wait_for_selector(".swagger-ui .info .title:has-text('Streamia API')")
    await page.wait_for_selector(".opblock-summary-path:has-text('/api/users/login')")
    # Open an operation, try it out and run it: the parts Swagger UI styles inline (syntax
    # highlighting, the response) render under the strict policy too.
    explore = ".opblock-get:has(.opblock-summary-path[data-path='/api/movies/explore'])"
    await page.click(f"{explore} .opblock-summary")
    await page.click(f"{explore} button.try-out__btn")
    await page.click(f"{explore} button.execute")
    await page.wait_for_selector(
        f"{explore} .live-responses-table .response-col_status:text('200')"
    )
    assert page.problems == []  # no CSP violation, nothing from another origin


def _png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 96), (200, 40, 40)).save(out, "PNG")
    return out.getvalue()


VTT = b"WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHola\n"


async def test_admin_forms_add_upload_edit_and_subtitles(
    platform, api, sample_video, browser_page
) -> None:
    page = browser_page
    title = f"Admin Web {uuid.uuid4().hex[:6]}"
    admin_email, admin_password = platform.admin_credentials()
    await _login(page, platform.gateway, admin_email, admin_password)

    # Add by URL, then upload a file.
    await page.click("a:has-text('Admin')")
    await page.wait_for_url(platform.gateway + "/admin")
    url_form = "form:has(h2:has-text('Add a movie by URL'))"
    await page.fill(f"{url_form} input[name=videoUrl]", "https://videos.example.com/a.mp4")
    await page.fill(f"{url_form} input[name=title]", title)
    await page.fill(f"{url_form} input[name=category]", "Drama")
    await page.click(f"{url_form} button[type=submit]")
    await page.wait_for_selector(f"{url_form} .notice.success")
    upload_form = "form:has(h2:has-text('Upload a movie'))"
    await page.set_input_files(f"{upload_form} input[name=video]", str(sample_video))
    await page.fill(f"{upload_form} input[name=title]", f"{title} upload")
    await page.set_input_files(
        f"{upload_form} input[name=cover]",
        {"name": "cover.png", "mimeType": "image/png", "buffer": _png()},
    )
    await page.click(f"{upload_form} button[type=submit]")
    await page.wait_for_selector(f"{upload_form} .notice.success a:has-text('add subtitles')")
    uploaded = await api.get("/api/movies", params={"search": f"{title} upload", "limit": 10})
    [with_cover] = [m for m in uploaded.json()["data"] if m["title"] == f"{title} upload"]
    assert with_cover["coverImage"]
    cover = await api.get(with_cover["coverImage"])
    assert cover.status_code == 200 and cover.headers["content-type"].startswith("image/")

    found = await api.get("/api/movies", params={"search": title, "limit": 10})
    movie_id = next(m["id"] for m in found.json()["data"] if m["title"] == title)

    # Edit, and add Spanish subtitles.
    await page.goto(f"{platform.gateway}/admin/movies/{movie_id}")
    edit_form = "form:has(h2:has-text('Details'))"
    await page.fill(f"{edit_form} input[name=title]", f"{title} edited")
    await page.click(f"{edit_form} button[type=submit]")
    await page.wait_for_selector(f"{edit_form} .notice.success")
    # A cover from a file replaces the URL one (PUT /api/movies/:id/cover); the form shows it.
    await page.set_input_files(
        f"{edit_form} input[name=cover]",
        {"name": "cover.png", "mimeType": "image/png", "buffer": _png()},
    )
    await page.click(f"{edit_form} button[type=submit]")
    preview = page.locator(f"{edit_form} .cover-preview img[src*='/api/movies/media/']")
    await preview.wait_for()
    await page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=await preview.element_handle()
    )
    covered = (await api.get(f"/api/movies/{movie_id}")).json()["data"]
    assert urlsplit(covered["coverImage"]).path == await preview.get_attribute("src")
    assert covered["title"] == f"{title} edited"
    subtitle_form = "form:has(input[name=subtitle])"
    await page.set_input_files(
        f"{subtitle_form} input[name=subtitle]",
        {"name": "es.vtt", "mimeType": "text/vtt", "buffer": VTT},
    )
    await page.fill(f"{subtitle_form} input[name=language]", "es")
    await page.fill(f"{subtitle_form} input[name=label]", "Español")
    await page.click(f"{subtitle_form} button[type=submit]")
    await page.wait_for_selector(".plain-list .chip:has-text('es')")
    assert page.problems == []


async def test_at_localhost_the_media_of_127_0_0_1_load_and_one_subtitle_language_shows(
    platform, api, admin_headers, sample_video, browser_page
) -> None:
    """`up` prints http://localhost:8080/ while the API writes media URLs on its public address,
    http://127.0.0.1:8080: the same server under another loopback name. A newcomer there saw
    every poster blocked by the CSP and no subtitles (a track loads only from the page's
    origin); then both languages at once, and buttons meant to be hidden."""
    page = browser_page
    title = f"Localhost Web {uuid.uuid4().hex[:6]}"
    made = await api.post(
        "/api/movies/upload",
        data={"title": title},
        files={
            "video": ("clip.mp4", sample_video.read_bytes(), "video/mp4"),
            "cover": ("cover.png", _png(), "image/png"),
        },
        headers=admin_headers,
    )
    assert made.status_code == 201, made.text
    movie = made.json()["data"]
    assert urlsplit(movie["coverImage"]).hostname == "127.0.0.1"
    for language, label in (("en", "English"), ("es", "Español")):
        added = await api.post(
            f"/api/movies/{movie['id']}/subtitles",
            data={"language": language, "label": label},
            files={"subtitle": (f"{language}.vtt", VTT, "text/vtt")},
            headers=admin_headers,
        )
        assert added.status_code == 200, added.text
    site = platform.gateway.replace("127.0.0.1", "localhost")

    await page.goto(f"{site}/?search={title.replace(' ', '+')}")
    poster = page.locator(f".card:has-text('{title}') img")
    await poster.wait_for()
    await page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=await poster.element_handle()
    )
    assert not (await poster.get_attribute("src") or "").endswith("placeholder.svg")

    await page.goto(f"{site}/movies/{movie['id']}")
    loaded = """() => {
        const v = document.querySelector('video');
        const tracks = v ? [...v.querySelectorAll('track')] : [];
        const loaded = tracks.length === 2 && tracks.every((t) => t.readyState === 2);
        return !!v && v.readyState >= 1 && loaded;
    }"""
    await page.wait_for_function(loaded)
    modes = "() => [...document.querySelector('video').textTracks].map((t) => t.mode)"
    assert await page.evaluate(modes) == ["showing", "disabled"]  # the browser's language
    assert (
        await page.evaluate("() => document.querySelector('video').textTracks[0].cues[0].text")
        == "Hola"
    )
    await page.wait_for_selector(".comments :text('No comments yet')")
    assert await page.locator("button:has-text('Show more comments')").is_hidden()

    # Past the last page: the way back to page 1, and no "Page 9999 of 1".
    await page.goto(f"{site}/?page=9999")
    await page.wait_for_selector(".result-count:has-text('No movies on this page')")
    assert await page.locator(".pager").inner_text() == ""
    assert page.problems == []


async def test_the_player_comment_reporting_and_moderation(
    platform, api, admin_headers, harness, browser_page
) -> None:
    page = browser_page
    title = f"Player Web {uuid.uuid4().hex[:6]}"
    made = await api.post("/api/movies", json=harness.new_movie(title=title), headers=admin_headers)
    assert made.status_code == 201, made.text
    movie_id = made.json()["data"]["id"]
    subtitles = await api.post(
        f"/api/movies/{movie_id}/subtitles",
        data={"language": "es", "label": "Español"},
        files={"subtitle": ("es.vtt", VTT, "text/vtt")},
        headers=admin_headers,
    )
    assert subtitles.status_code == 200, subtitles.text

    # The player: subtitle menu (remembered), shortcuts, and an error that says what failed.
    await page.goto(f"{platform.gateway}/movies/{movie_id}")
    await page.wait_for_selector("#subtitle-menu option:has-text('Español')", state="attached")
    await page.select_option("#subtitle-menu", "es")
    assert await page.evaluate("() => localStorage.getItem('streamia.subtitles')") == "es"
    showing = "() => [...document.querySelector('video').textTracks].map((t) => t.mode)"
    assert await page.evaluate(showing) == ["showing"]
    await page.locator("main h1").click()  # focus out of the menu: keys go to the player
    await page.keyboard.press("c")
    assert await page.eval_on_selector("#subtitle-menu", "(m) => m.value") == "off"
    await page.keyboard.press("m")
    assert await page.eval_on_selector("video", "(v) => v.muted") is True
    await page.wait_for_selector(".player .notice.error:has-text('another site')")

    # A user reports a comment: the button says so; the admin hides it from the queue.
    author = await platform.register(api)
    posted = await api.post(
        "/api/comments",
        json={"movieId": movie_id, "text": "Spoilers everywhere"},
        headers=harness.bearer(author.token),
    )
    assert posted.status_code == 201, posted.text
    reporter = await platform.register(api)
    await _login(page, platform.gateway, reporter.email, reporter.password)
    await page.goto(f"{platform.gateway}/movies/{movie_id}")
    report = page.locator(".comment:has-text('Spoilers everywhere') button:has-text('Report')")
    await report.click()
    reported = page.locator(".comment:has-text('Spoilers everywhere') button:has-text('Reported')")
    await reported.wait_for()
    assert await reported.is_disabled()
    await page.reload()  # the API remembers who reported what: still "Reported"
    await reported.wait_for()
    assert await reported.is_disabled()
    assert await page.locator(".comment button:text-is('Report')").count() == 0

    # A comment the word filter holds back tells its author it awaits review.
    await page.fill(".comment-form textarea", "esto es una mierda")
    await page.click(".comment-form button[type=submit]")
    await page.wait_for_selector(
        ".comment:has-text('una mierda') .chip:has-text('Awaiting review')"
    )

    await page.click("button:has-text('Log out')")
    admin_email, admin_password = platform.admin_credentials()
    await _login(page, platform.gateway, admin_email, admin_password)
    await page.goto(platform.gateway + "/admin")
    queued = page.locator("#admin-moderation ~ * .comment:has-text('Spoilers everywhere')")
    await queued.locator("button:has-text('Hide')").click()
    await page.wait_for_selector(".toast:has-text('Comment hidden.')")
    assert page.problems == []


# Muted, so the browser's autoplay policy lets a script start it.
PLAY = "() => { const v = document.querySelector('video'); v.muted = true; v.play(); }"


@pytest.fixture(scope="session")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40-second clip: a few seconds played stay short of "finished"."""
    from streamia_movies.media.synth import ClipSpec, make_clip

    path = tmp_path_factory.mktemp("long-video") / "long.mp4"
    make_clip(path, ClipSpec("Long", ("#203040", "#000000"), "#ffcc00", 440, 40, 160, 120, 8))
    return path


async def test_watch_progress_resume_continue_watching_and_history(
    platform, api, admin_headers, harness, long_video, browser_page
) -> None:
    page = browser_page
    title = f"Resume Web {uuid.uuid4().hex[:6]}"
    made = await api.post(
        "/api/movies/upload",
        data={"title": title},
        files={"video": ("long.mp4", long_video.read_bytes(), "video/mp4")},
        headers=admin_headers,
    )
    assert made.status_code == 201, made.text
    movie_id = made.json()["data"]["id"]
    other = await api.post("/api/movies", json=harness.new_movie(), headers=admin_headers)
    assert other.status_code == 201, other.text
    other_title = other.json()["data"]["title"]
    account = await platform.register(api)
    await _watched(api, harness, account.token, other.json()["data"]["id"], 10)

    await _login(page, platform.gateway, account.email, account.password)
    await page.goto(f"{platform.gateway}/movies/{movie_id}")
    await page.wait_for_selector(f"h1:has-text('{title}')")
    assert await page.locator(".resume-prompt button").count() == 0  # never watched
    await page.evaluate(PLAY)
    await page.wait_for_function("() => document.querySelector('video').currentTime > 3.5")

    # Leaving the page reports where the user stopped; the home page's first row has it.
    await page.click("#site-nav a:has-text('Browse')")
    card = page.locator(f"#continue-watching .row-card:has-text('{title}')")
    await card.wait_for()
    percent = float(await card.locator("progress").get_attribute("value") or 0)
    assert 8 <= percent < 50, percent

    # Back on the movie: resume where it stopped.
    await card.click()
    resume = page.locator(".resume-prompt button:has-text('Resume from 0:0')")
    await resume.wait_for()
    assert await page.locator(".resume-prompt button:has-text('Start over')").count() == 1
    await resume.click()
    await page.wait_for_function("() => document.querySelector('video').currentTime >= 3.5")
    assert await page.locator(".resume-prompt").is_hidden()

    # History: both movies, most recent first; remove one, then clear the rest.
    await page.click("#site-nav a:has-text('History')")
    await page.wait_for_url(platform.gateway + "/history")
    items = page.locator(".history-item h3")
    await items.first.wait_for()
    assert await items.all_inner_texts() == [title, other_title]
    await page.click(f".history-item:has-text('{title}') button:has-text('Remove')")
    await page.wait_for_selector(f".history-item:has-text('{title}')", state="detached")
    await page.click("button:has-text('Clear history')")  # the confirm is accepted
    await page.wait_for_selector(".empty:has-text('Nothing watched yet')")
    left = await api.get("/api/playback/history", headers=harness.bearer(account.token))
    assert left.status_code == 200 and left.json() == []
    assert page.problems == []


async def test_an_anonymous_visitor_sees_the_public_rows_and_makes_no_progress_calls(
    platform, api, admin_headers, harness, long_video, browser_page
) -> None:
    page = browser_page
    title = f"Trend Web {uuid.uuid4().hex[:6]}"
    made = await api.post(
        "/api/movies/upload",
        data={"title": title},
        files={"video": ("long.mp4", long_video.read_bytes(), "video/mp4")},
        headers=admin_headers,
    )
    assert made.status_code == 201, made.text
    movie_id = made.json()["data"]["id"]
    # Eight viewers put it above anything earlier tests of this shared platform watched (the saga
    # tests give 40 movies two viewers and two ratings each: a score of about 4), so it is on the
    # home page's rows of 20.
    for _ in range(8):
        viewer = await platform.register(api)
        await _watched(api, harness, viewer.token, movie_id, 5)

    # The very requests the home page makes: charts are cached for a few seconds per query, so
    # a page loaded before its cached answer includes the movie would show an older chart.
    async def charted() -> bool:
        trending = await api.get("/api/playback/trending", params={"limit": 20})
        popular = await api.get("/api/playback/popular", params={"window": "7d", "limit": 20})
        return all(
            any(item["movieId"] == movie_id for item in chart.json())
            for chart in (trending, popular)
        )

    await harness.wait_until(charted, 30, 0.2, "the movie in both charts")

    console: list[str] = []
    page.on(
        "console",
        lambda msg: console.append(msg.text) if msg.type in ("error", "warning") else None,
    )
    private = re.compile(r"/api/playback/(progress|continue|history)")
    calls: list[str] = []
    page.on(
        "request",
        lambda request: calls.append(request.url) if private.search(request.url) else None,
    )

    await page.goto(platform.gateway + "/")
    await page.wait_for_selector(f"#trending .row-card:has-text('{title}')")
    await page.wait_for_selector(f"#most-watched .row-card:has-text('{title}')")
    assert await page.locator("#continue-watching").count() == 0
    assert await page.locator("#site-nav a:has-text('History')").count() == 0
    await page.click(f"#trending .row-card:has-text('{title}')")
    await page.wait_for_selector(f"h1:has-text('{title}')")
    await page.evaluate(PLAY)
    await page.wait_for_function("() => document.querySelector('video').currentTime > 1")
    await page.click("#site-nav a:has-text('Browse')")
    await page.wait_for_selector(".grid .card")
    assert calls == []
    assert console == [], console
    assert page.problems == []


# -- Spanish everywhere ------------------------------------------------------------------------

I18N = Path(__file__).parents[2] / "packages/streamia-web/src/streamia_web/static/assets/i18n.js"


def _english_of_the_table() -> list[dict[str, str]]:
    """Each English text of i18n.js whose Spanish differs, with a pattern that matches it as
    shown (its `{placeholders}` filled in): parsed, as test_translations does."""
    root = Parser(Language(tree_sitter_javascript.language())).parse(I18N.read_bytes()).root_node

    def text(node: Any) -> str:
        if node.type == "string":  # quotes dropped, the table's only escape (\') decoded
            return node.text.decode()[1:-1].replace("\\'", "'")
        return node.text.decode()

    stack, table = [root], None
    while stack and table is None:
        node = stack.pop()
        name = node.child_by_field_name("name")
        if node.type == "variable_declarator" and name is not None and name.text == b"ES":
            table = node.child_by_field_name("value")
        stack.extend(node.children)
    assert table is not None
    found = []
    for pair in table.named_children:
        if pair.type != "pair":
            continue
        english = text(pair.child_by_field_name("key")).strip()
        spanish = text(pair.child_by_field_name("value")).strip()
        parts = re.split(r"\{\w+\}", english)
        pattern = "^" + "[\\s\\S]+?".join(re.escape(part) for part in parts) + "$"
        if english != spanish and not re.match(pattern, spanish):
            found.append({"english": english, "pattern": pattern})
    assert len(found) > 300  # the table was read
    return found


# Every text of the page a user reads or hears: text nodes (not <noscript>'s, shown without
# the app, in both languages), labels, titles, placeholders, alternative texts, the tab title.
ENGLISH_SHOWN = """(texts) => {
  const shown = [document.title];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    if (!walker.currentNode.parentElement.closest('noscript, script, style')) {
      shown.push(walker.currentNode.nodeValue);
    }
  }
  for (const el of document.querySelectorAll('[aria-label], [title], [placeholder], [alt]')) {
    for (const name of ['aria-label', 'title', 'placeholder', 'alt']) {
      if (el.hasAttribute(name)) shown.push(el.getAttribute(name));
    }
  }
  const patterns = texts.map(({ english, pattern }) => [english, new RegExp(pattern)]);
  const found = [];
  for (const value of shown.map((s) => s.trim()).filter(Boolean)) {
    for (const [english, pattern] of patterns) {
      if (pattern.test(value)) found.push(`${location.pathname}: "${value}" is "${english}"`);
    }
  }
  return found;
}"""


FIRST_VISIBLE_CARD = """() => {
    const cards = [...document.querySelectorAll('.grid .card')];
    const card = cards.find((c) => c.getBoundingClientRect().top >= 0);
    return card ? card.querySelector('.card-title').innerText : null;
}"""


async def test_back_from_a_movie_shows_the_same_cards_when_the_rows_come_late(
    platform, api, admin_headers, harness, browser_page
) -> None:
    """The rows above the grid (Trending, Most watched) load on their own; when they came
    after the grid, the restored scroll was applied without them and the rows then pushed
    the list down: back from a movie showed other cards than the ones left."""
    page = browser_page
    for _ in range(12):  # a catalogue taller than the window
        made = await api.post("/api/movies", json=harness.new_movie(), headers=admin_headers)
        assert made.status_code == 201, made.text
    viewer = await platform.register(api)
    await _watched(api, harness, viewer.token, made.json()["data"]["id"], 3)

    async def trending() -> bool:  # the score follows playback.started through the bus
        listed = await api.get("/api/playback/trending")
        return listed.status_code == 200 and bool(listed.json())

    await harness.wait_until(trending, 30, 0.2, "a trending movie")
    await page.set_viewport_size({"width": 800, "height": 500})
    await page.goto(platform.gateway + "/")
    await page.wait_for_selector("#trending")
    await page.wait_for_selector(".grid .card")
    await page.mouse.wheel(0, 900)
    await page.wait_for_function("() => window.scrollY > 0")
    left = await page.evaluate(FIRST_VISIBLE_CARD)
    scrolled = await page.evaluate("() => window.scrollY")

    async def late(route: Any) -> None:  # the rows' requests answer after the grid's
        await asyncio.sleep(1.5)
        await route.continue_()

    await page.route("**/api/playback/**", late)
    await page.locator(".grid .card", has_text=left).locator("a").first.click()
    await page.wait_for_selector("video")
    await page.go_back()
    await page.wait_for_selector("#trending")
    await page.wait_for_function(
        f"() => window.scrollY === {scrolled} && ({FIRST_VISIBLE_CARD})() === {left!r}"
    )
    assert page.problems == []


async def test_without_a_choice_in_the_browser_the_account_language_applies_at_log_in(
    platform, api, browser_page
) -> None:
    """The language is the one chosen in this browser, else the account's, else the
    browser's. The account's applied only on the next page load: after logging in as the
    demo admin (a Spanish account) in an English browser, the app was English until a reload
    turned it Spanish."""
    account = await platform.register(api)  # no Accept-Language: a Spanish account
    # A context of its own: the fixture's pages have English chosen for them.
    context = await browser_page.context.browser.new_context(locale="en-US")
    try:
        page = await context.new_page()
        await page.goto(platform.gateway + "/login")
        await page.wait_for_selector("form.card-form button:has-text('Log in')")
        await page.fill("input[name=email]", account.email)
        await page.fill("input[name=password]", account.password)
        await page.click("form.card-form button[type=submit]")
        await page.wait_for_selector("#site-nav button:has-text('Cerrar sesión')")
        assert await page.evaluate("() => document.documentElement.lang") == "es"
        assert await page.eval_on_selector("#language-switch", "(s) => s.value") == "es"
        await page.reload()
        await page.wait_for_selector("#site-nav button:has-text('Cerrar sesión')")
        # Logged out, the browser's language again, at once.
        await page.click("#site-nav button:has-text('Cerrar sesión')")
        await page.wait_for_selector("#site-nav a:has-text('Log in')")
        assert await page.evaluate("() => document.documentElement.lang") == "en"
    finally:
        await context.close()


async def test_in_spanish_no_page_shows_an_english_text_of_the_table(
    platform, api, admin_headers, harness, browser_page
) -> None:
    page = browser_page
    english = _english_of_the_table()
    found: list[str] = []

    async def scan() -> None:
        found.extend(await page.evaluate(ENGLISH_SHOWN, english))

    await page.add_init_script("localStorage.setItem('streamia.lang', 'es')")
    title = f"Película {uuid.uuid4().hex[:6]}"
    made = await api.post("/api/movies", json=harness.new_movie(title=title), headers=admin_headers)
    assert made.status_code == 201, made.text
    movie_id = made.json()["data"]["id"]
    taken = await platform.register(api)
    account = await platform.register(api)

    # Home, anonymous: navigation, search bar, cards ("Sin valoraciones"), footer.
    await page.goto(platform.gateway + "/")
    await page.wait_for_selector(".grid .card")
    await page.wait_for_selector(".result-count:has-text('película')")
    assert await page.evaluate("() => document.documentElement.lang") == "es"
    await scan()

    # Register: the form's own checks, then the API's 409 on a taken email (by its code).
    await page.goto(platform.gateway + "/register")
    await page.click("form.card-form button[type=submit]")
    await page.wait_for_selector(".field-error:has-text('Obligatorio.')")
    await page.fill("input[name=password]", "short")
    await page.click("form.card-form button[type=submit]")
    await page.wait_for_selector(".field-error:has-text('Falta: ')")
    await scan()
    for name, value in [
        ("firstName", "Ana"),
        ("lastName", "Prueba"),
        ("age", "30"),
        ("email", taken.email),
        ("password", "Str0ng!Pass"),
        ("confirmPassword", "Str0ng!Pass"),
    ]:
        await page.fill(f"input[name={name}]", value)
    await page.click("form.card-form button[type=submit]")
    await page.wait_for_selector(".field-error:has-text('Ya existe una cuenta con este correo.')")
    await scan()
    # The API's 400 validation error: its English field messages become the app's texts.
    await page.fill("input[name=email]", "no-es-un-correo")
    await page.click("form.card-form button[type=submit]")
    await page.wait_for_selector(".notice.error:has-text('Algunos campos no son válidos.')")
    await page.wait_for_selector(".field-error:has-text('Escribe un correo electrónico válido.')")
    await scan()

    # Log in: a wrong password is the API's 401 invalid_credentials, in Spanish.
    await page.goto(platform.gateway + "/login")
    await page.fill("input[name=email]", account.email)
    await page.fill("input[name=password]", "Wrong!Pass1")
    await page.click("form.card-form button[type=submit]")
    await page.wait_for_selector(".notice.error:has-text('Correo o contraseña incorrectos.')")
    await scan()
    await page.fill("input[name=password]", account.password)
    await page.click("form.card-form button[type=submit]")
    await page.wait_for_selector("button:has-text('Cerrar sesión')")
    await page.wait_for_selector(".toast:has-text('¡Hola')")  # with its "Cerrar" button
    await scan()

    # A movie: player (its error for an unreachable host), ratings, list button, comments.
    await page.goto(f"{platform.gateway}/movies/{movie_id}")
    await page.wait_for_selector(".rating-summary:has-text('Sin valoraciones')")
    await page.click("label[for$='-4']")
    await page.wait_for_selector(".toast:has-text('Valoración guardada.')")
    await page.wait_for_selector(".rating-number")
    await page.fill(".comment-form textarea", "Muy buena")
    await page.click(".comment-form button[type=submit]")
    await page.wait_for_selector(".comment-list .comment-text:has-text('Muy buena')")
    await page.click("button:has-text('Añadir a mi lista')")
    await page.wait_for_selector("button[aria-pressed=true]:has-text('En mi lista')")
    await page.wait_for_selector(".player .notice.error:has-text('otro sitio')")
    await scan()

    # The user's own pages.
    for path, ready in [
        ("/favorites", f".card-title:has-text('{title}')"),
        ("/ratings", f".rating-row a:has-text('{title}')"),
        ("/history", "main h1:has-text('Historial')"),
    ]:
        await page.goto(platform.gateway + path)
        await page.wait_for_selector(ready)
        await page.wait_for_selector("main .loading", state="detached")
        await scan()

    # Account: the profile, and the API's 400 for a wrong current password.
    await page.goto(platform.gateway + "/profile")
    password_form = "form:has(input[name=currentPassword])"
    await page.wait_for_selector(password_form)
    await page.fill(f"{password_form} input[name=currentPassword]", "Wrong!Pass1")
    await page.fill(f"{password_form} input[name=newPassword]", "N3w!Password")
    await page.fill(f"{password_form} input[name=confirmPassword]", "N3w!Password")
    await page.click(f"{password_form} button[type=submit]")
    await page.wait_for_selector(
        f"{password_form} .notice.error:has-text('La contraseña no es correcta.')"
    )
    await scan()

    # The administration pages, for an admin whose name is no English word ("Admin" is).
    admin = await platform.register(api, firstName="Ana", lastName="Gestora")
    platform.cli("users", "promote", admin.email)
    await page.click("button:has-text('Cerrar sesión')")
    await page.wait_for_selector(".toast:has-text('Has cerrado la sesión.')")
    await page.goto(platform.gateway + "/login")
    await page.fill("input[name=email]", admin.email)
    await page.fill("input[name=password]", admin.password)
    await page.click("form.card-form button[type=submit]")
    await page.wait_for_selector("button:has-text('Cerrar sesión')")
    await page.goto(platform.gateway + "/admin")
    await page.wait_for_selector(f"#admin-movies ~ * a:has-text('{title}')")
    await page.wait_for_selector("#admin-moderation ~ * .loading", state="detached")
    await scan()
    await page.goto(f"{platform.gateway}/admin/movies/{movie_id}")
    await page.wait_for_selector("#subs-heading ~ ul li")
    await scan()

    assert found == []
    assert page.problems == []
