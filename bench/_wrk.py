"""wrk, the load generator of the HTTP benchmarks: a C client that costs the machine a few
µs a request, where a Python one (aiohttp) took 150-190 µs of the same two cores."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

WRK = shutil.which("wrk") or "/usr/bin/wrk"

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass
class WrkRun:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    output: str


def ms(text: str) -> float:
    """wrk's latency ("812.00us", "1.20ms", "2.01s") in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run(
    url: str,
    *,
    seconds: float,
    connections: int,
    script: Path | None = None,
    headers: tuple[str, ...] = (),
) -> WrkRun:
    """One `wrk -t1 --latency` run against `url`; raises SystemExit without wrk."""
    if not Path(WRK).exists():
        raise SystemExit("the benchmark needs wrk (apt-get install wrk)")
    argv = [WRK, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    for header in headers:
        argv += ["-H", header]
    if script is not None:
        argv += ["-s", str(script)]
    out = subprocess.run(
        [*argv, url], capture_output=True, text=True, timeout=seconds + 30, check=True
    ).stdout
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkRun(
        requests=int(re.search(r"(\d+) requests in", out).group(1)),
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        p50_ms=ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),
        p99_ms=ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),
        non_2xx=int(bad.group(1)) if bad else 0,
        socket_errors=sum(map(int, sock.groups())) if sock else 0,
        output=out,
    )
