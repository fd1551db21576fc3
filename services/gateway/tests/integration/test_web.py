"""The web app served by the gateway: index, assets, client routes, headers and traversal."""

from __future__ import annotations

import aiohttp
import pytest

from gateway_harness import RunningGateway
from streamia_web import static_root

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
WEB_DIR = static_root()
NOT_FOUND = {
    "error": "Endpoint not found",
    "message": "Endpoint not found",
    "code": "endpoint_not_found",
}


def _url(gateway: RunningGateway, path: str) -> aiohttp.client.URL:
    return aiohttp.client.URL(gateway.url + path, encoded=True)


def _assert_csp(headers: aiohttp.typedefs.LooseHeaders) -> None:
    csp = headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]  # no inline scripts, no eval
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert set(directives["media-src"]) >= {"'self'", "https:"}
    assert set(directives["img-src"]) >= {"'self'", "https:"}
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


async def test_browsers_get_the_app_at_the_root(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(gateway.url + "/", headers=HTML) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
        assert resp.headers["Cache-Control"] == "no-cache"
        assert "Accept" in resp.headers["Vary"]
        assert resp.headers["ETag"]
        assert resp.headers["X-Request-Id"]
        _assert_csp(resp.headers)
        body = await resp.text()
    assert body == (WEB_DIR / "index.html").read_text()
    assert '<script type="module" src="/assets/app.js"></script>' in body


async def test_api_clients_still_get_the_json_index(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(gateway.url + "/", headers={"Accept": "application/json"}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/json"
        assert "Accept" in resp.headers["Vary"]
        assert (await resp.json())["apis"]["users"] == "/api/users"


async def test_index_html_is_served_whatever_the_accept_header(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(gateway.url + "/index.html") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
        _assert_csp(resp.headers)
        assert "<title>Streamia</title>" in await resp.text()


APP_PAGES = [
    "/login",
    "/register",
    "/forgot-password",
    "/reset-password/abc",
    "/reset-password/Zm9v-YmFy_0123456789abcdef",
    "/movies/42",
    "/favorites",
    "/ratings",
    "/profile",
    "/admin",
    "/admin/movies/42",
]


@pytest.mark.parametrize("path", APP_PAGES)
async def test_browsers_get_the_app_on_each_of_its_pages(
    gateway: RunningGateway, http: aiohttp.ClientSession, path: str
) -> None:
    async with http.get(gateway.url + path, headers=HTML) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "Accept" in resp.headers["Vary"]
        assert resp.headers["Referrer-Policy"] == "no-referrer"  # reset tokens are in the URL
        _assert_csp(resp.headers)
        assert await resp.text() == (WEB_DIR / "index.html").read_text()


@pytest.mark.parametrize("path", APP_PAGES)
async def test_api_clients_get_the_json_404_on_app_pages(
    gateway: RunningGateway, http: aiohttp.ClientSession, path: str
) -> None:
    async with http.get(gateway.url + path, headers={"Accept": "application/json"}) as resp:
        assert resp.status == 404
        assert await resp.json() == NOT_FOUND


@pytest.mark.parametrize("path", ["/nope", "/movies", "/movies/1/x", "/login/x", "/docs/x"])
async def test_browsers_get_the_json_404_off_the_app_pages(
    gateway: RunningGateway, http: aiohttp.ClientSession, path: str
) -> None:
    async with http.get(gateway.url + path, headers=HTML) as resp:
        assert resp.status == 404
        assert await resp.json() == NOT_FOUND


def test_the_gateway_knows_exactly_the_pages_the_app_routes() -> None:
    import re

    from streamia_web import ROUTES

    app_js = (WEB_DIR / "assets" / "app.js").read_text()
    block = app_js[app_js.index("const ROUTES = [") :]
    block = block[: block.index("];")]
    in_js = {p.replace("\\/", "/") for p in re.findall(r"\[/\^(.*?)\$/, \w+\]", block)}
    assert in_js == {route.pattern for route in ROUTES}


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/assets/app.js", "text/javascript; charset=utf-8"),
        ("/assets/api.js", "text/javascript; charset=utf-8"),
        ("/assets/app.css", "text/css; charset=utf-8"),
        ("/assets/favicon.svg", "image/svg+xml"),
        ("/assets/placeholder.svg", "image/svg+xml"),
    ],
)
async def test_assets_are_served_with_their_type(
    gateway: RunningGateway, http: aiohttp.ClientSession, path: str, content_type: str
) -> None:
    async with http.get(gateway.url + path) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == content_type
        assert resp.headers["Cache-Control"] == "no-cache"
        body = await resp.read()
    assert body == (WEB_DIR / path.removeprefix("/")).read_bytes()
    assert int(resp.headers["Content-Length"]) == len(body)


async def test_every_module_the_app_imports_is_served(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    import re

    for script in sorted((WEB_DIR / "assets").glob("*.js")):
        for name in re.findall(r"from '\./([\w-]+\.js)'", script.read_text()):
            async with http.get(f"{gateway.url}/assets/{name}") as resp:
                assert resp.status == 200, (script.name, name)


async def test_etag_revalidation_answers_304(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(gateway.url + "/assets/app.css") as resp:
        etag = resp.headers["ETag"]
        await resp.read()
    async with http.get(gateway.url + "/assets/app.css", headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304
        assert resp.headers["ETag"] == etag
        assert await resp.read() == b""
    async with http.get(gateway.url + "/assets/app.css", headers={"If-None-Match": '"x"'}) as r:
        assert r.status == 200


async def test_head_sends_headers_without_a_body(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.head(gateway.url + "/assets/app.js") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert int(resp.headers["Content-Length"]) == len(
            (WEB_DIR / "assets" / "app.js").read_bytes()
        )
        assert await resp.read() == b""


async def test_writes_to_static_paths_are_refused(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.post(gateway.url + "/assets/app.js", data=b"x") as resp:
        assert resp.status == 405
        assert resp.headers["Allow"] == "GET, HEAD"
        assert (await resp.json())["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    "path",
    [
        "/assets/../app.py",
        "/assets/%2e%2e/app.py",
        "/assets/%2E%2E/%2E%2E/web/__init__.py",
        "/assets/..%2fapp.py",
        "/assets/..%5capp.py",
        "/assets/./app.js",
        "/assets//app.js",
        "/assets/%2e%2e/%2e%2e/%2e%2e/pyproject.toml",
        "/assets/../../../../../../etc/passwd",
        "/assets/",
        "/assets",
        "/assets/missing.js",
        "/index.html/../app.py",
        "/web/index.html",
        "/__init__.py",
        "/app.py",
        "/reset-password/",
        "/reset-password/../app.py",
        "/reset-password/%2e%2e",
        "/reset-password/a/b",
        "/movies/%2e%2e",
        "/nope",
    ],
)
async def test_traversal_and_unknown_paths_get_the_json_404(
    gateway: RunningGateway, http: aiohttp.ClientSession, path: str
) -> None:
    async with http.get(_url(gateway, path), headers=HTML) as resp:
        assert resp.status == 404, path
        assert resp.headers["Content-Type"] == "application/json"
        assert await resp.json() == NOT_FOUND


@pytest.mark.parametrize("path", ["/api/x", "/api/assets/app.js", "/api/reset-password/abc"])
async def test_unknown_api_paths_stay_json_404_even_for_browsers(
    gateway: RunningGateway, http: aiohttp.ClientSession, path: str
) -> None:
    async with http.get(gateway.url + path, headers=HTML) as resp:
        assert resp.status == 404
        assert resp.headers["Content-Type"] == "application/json"
        assert await resp.json() == NOT_FOUND


async def test_api_routes_are_still_proxied(
    upstream, gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(gateway.url + "/api/movies", headers=HTML) as resp:
        assert resp.status == 200
        assert (await resp.json())["path"] == "/api/movies"
        assert "Content-Security-Policy" not in resp.headers


async def test_static_files_do_not_count_against_the_rate_limit(
    start_gateway, http: aiohttp.ClientSession
) -> None:
    gw = await start_gateway(rate_limit_global="2/minute")
    for _ in range(5):
        async with http.get(gw.url + "/assets/app.css") as resp:
            assert resp.status == 200
            assert "RateLimit-Limit" not in resp.headers
            await resp.read()


async def test_an_edited_file_is_served_fresh(tmp_path, gateway: RunningGateway) -> None:
    """Contents are cached by mtime and size, so editing the app needs no restart."""
    import os

    from streamia_gateway.web import WebApp

    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<p>one</p>")
    (tmp_path / "assets" / "a.js").write_text("1")
    (tmp_path / "assets" / ".hidden.js").write_text("secret")
    (tmp_path / "assets" / "notes.py").write_text("print()")
    web = WebApp(tmp_path)
    assert web.match("/assets/a.js", browser=True) == tmp_path / "assets" / "a.js"
    assert web.match("/assets/.hidden.js", browser=True) is None
    assert web.match("/assets/notes.py", browser=True) is None
    first = web._load(tmp_path / "index.html")
    assert first is not None and first.data == b"<p>one</p>"
    (tmp_path / "index.html").write_text("<p>two!</p>")
    os.utime(tmp_path / "index.html", ns=(first.mtime_ns + 10**9, first.mtime_ns + 10**9))
    second = web._load(tmp_path / "index.html")
    assert second is not None and second.data == b"<p>two!</p>" and second.etag != first.etag
