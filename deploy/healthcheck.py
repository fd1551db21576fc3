"""Container health check: GET /health on the port `streamia serve <name>` binds; exit 0 or 1."""

from __future__ import annotations

import os
import sys
import urllib.request

# Mirrors ServiceSettings.bind_port: STREAMIA_PORT, else the port of the service's own URL,
# else its default. Kept import-free so a probe costs milliseconds, not an app import.
DEFAULT_PORTS = {
    "gateway": 8080,
    "users": 3001,
    "movies": 3002,
    "favorites": 3003,
    "ratings": 3004,
    "comments": 3005,
    "notifications": 3006,
    "playback": 3007,
}


def service_name(cmdline: list[str]) -> str:
    """The service of a `streamia serve <name>` command line (the image's default: gateway)."""
    if "serve" in cmdline:
        index = cmdline.index("serve") + 1
        if index < len(cmdline):
            return cmdline[index]
    return "gateway"


def port_for(name: str, env: dict[str, str]) -> int:
    """The port that service binds, given its environment."""
    if env.get("STREAMIA_PORT"):
        return int(env["STREAMIA_PORT"])
    url = env.get(f"STREAMIA_{name.upper()}_URL", "")
    tail = url.split("://", 1)[-1].split("/", 1)[0]
    if ":" in tail:
        return int(tail.rsplit(":", 1)[1])
    return DEFAULT_PORTS[name]


def main() -> int:
    # PID 1 is the service (or tini in front of it); its argv names the service.
    with open("/proc/1/cmdline", "rb") as f:
        cmdline = [part.decode() for part in f.read().split(b"\0") if part]
    port = port_for(service_name(cmdline), dict(os.environ))
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=3) as resp:
            return 0 if resp.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
