#!/usr/bin/env python3
"""Recovery times after broker, database and Redis outages (issue 12), in distributed mode.

    .venv/bin/python bench/faults.py [--seconds 5 30] [--targets broker database redis]
                                     [--modes cut black_hole] [--strict]

Starts one platform the way tests/e2e/test_faults.py does (tests/e2e/harness.py: one
`streamia serve` process per service, a proxy in front of RabbitMQ, Redis and the favorites
service's PostgreSQL) and runs the same scenario (`harness.fault_scenario`) for each target,
mode and length: the dependency is cut (connections refused) or black-holed (accepted, nothing
passes) while accounts are deleted, users register and ask for password resets. Per scenario:

- recovery: seconds from the restore to the end of the first successful client request
  (a request is started every 50 ms from the restore on). Target: < 2 s.
- settled: seconds from the restore until every cascade ended and every email was sent.
- what went wrong, if anything: rows left, dead letters, emails not sent exactly once,
  ratings not taken off once, operations answered with an error but done anyway.

Everything it creates (databases, queues, Redis keys, data dir) is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
RECOVERY_TARGET = 2.0


from _harness import harness  # noqa: E402


def problems(outcome) -> list[str]:
    found = []
    for name in ("leftovers", "dead_letters", "wrong_emails", "wrong_ratings", "late_commits"):
        if getattr(outcome, name):
            found.append(f"{name}={getattr(outcome, name)}")
    if outcome.settled == float("inf"):
        found.append(f"not settled within {harness.SETTLE_TIMEOUT:.0f}s")
    if outcome.recovery >= RECOVERY_TARGET:
        found.append(f"recovery {outcome.recovery:.2f}s >= {RECOVERY_TARGET:.0f}s")
    return found


async def bench(args: argparse.Namespace, platform) -> int:
    outcomes = []
    async with httpx.AsyncClient(timeout=30.0) as client:
        for seconds in args.seconds:
            for target in args.targets:
                for mode in args.modes:
                    outcome = await harness.fault_scenario(platform, client, target, mode, seconds)
                    print(f"  {outcome.summary()}", flush=True)
                    outcomes.append(outcome)
    print()
    print(f"{'scenario':<28} {'recovery':>9} {'settled':>9}  result")
    failed = 0
    for outcome in outcomes:
        found = problems(outcome)
        failed += bool(found)
        print(
            f"{outcome.name:<28} {outcome.recovery:8.2f}s {outcome.settled:8.1f}s  "
            + ("; ".join(found) if found else "ok")
        )
    print(f"target: first successful request < {RECOVERY_TARGET:.0f} s after the restore")
    print(
        f"(machine load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    return 1 if failed and args.strict else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[5.0, 30.0])
    parser.add_argument(
        "--targets", nargs="+", choices=harness.FAULT_TARGETS, default=list(harness.FAULT_TARGETS)
    )
    parser.add_argument(
        "--modes", nargs="+", choices=harness.FAULT_MODES, default=list(harness.FAULT_MODES)
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a scenario fails")
    args = parser.parse_args()

    from streamia_kit.testing import infrastructure_status

    down = [name for name, ok in infrastructure_status().items() if not ok]
    if down:
        raise SystemExit(f"distributed mode needs {', '.join(down)} on 127.0.0.1")
    with tempfile.TemporaryDirectory(prefix="streamia-bench-faults-") as tmp:
        platform = harness.Platform(
            "distributed", Path(tmp), proxy_redis=True, proxy_database=harness.FAULT_DATABASE
        )
        print(f"starting the platform (namespace {platform.namespace}) ...", flush=True)
        started = time.monotonic()
        try:
            platform.start()
            print(f"  up in {time.monotonic() - started:.1f} s", flush=True)
            return asyncio.run(bench(args, platform))
        except BaseException:
            for name in harness.ALL_SERVICES:
                print(platform.log_tail(name, 10), file=sys.stderr)
            raise
        finally:
            platform.close()


if __name__ == "__main__":
    sys.exit(main())
