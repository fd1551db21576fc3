"""Media benchmarks (issue 10): demo generation and poster extraction per upload, with PyAV.

    .venv/bin/python bench/media.py [--uploads N] [--skip-demo]

Prints:

1. Demo catalogue: wall time of `seed_demo` making the eight 24-second 640×360 movies from
   nothing (encode in child processes, probe + poster + store + subtitles per movie), and the
   CPU seconds it used (this process and its children).
2. Poster extraction per upload (probe + a frame 10 % in, scaled to 640 px, JPEG) of one
   demo movie, N times, p50/p99, two ways: the shipped reader (a child process per upload,
   killable at its time limit, memory-capped) against the same PyAV code in a worker thread
   of this process (what a thread pool would cost, without the kill switch).
3. Encoding the poster picture itself: Pillow JPEG (quality 82, the shipped choice) against
   WebP (quality 80), time per image and bytes.
There is no ffmpeg executable to compare with (none may be required); the old subprocess
approach cannot run here.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import resource
import tempfile
import time
from pathlib import Path

from PIL import Image

from streamia_movies.config import MoviesSettings
from streamia_movies.demo import DEMO_MOVIES, DEMO_SECONDS, make_clip, seed_demo
from streamia_movies.media.probe import read_media
from streamia_movies.media.prober import MediaProber


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


async def bench_demo(work: Path) -> None:
    settings = MoviesSettings(environment="test", data_dir=work / "demo", log_level="WARNING")
    cpu, started = cpu_seconds(), time.perf_counter()
    summary = await seed_demo(settings)
    wall = time.perf_counter() - started
    print(f"1. demo catalogue ({len(DEMO_MOVIES)} × {DEMO_SECONDS} s, {os.cpu_count()} cores)")
    print(f"   {summary}")
    print(f"   wall {wall:.1f} s, CPU {cpu_seconds() - cpu:.1f} s (target: wall < 30 s)")


async def bench_posters(work: Path, uploads: int) -> Path:
    clip = work / "clip.mp4"
    await make_clip(clip, DEMO_MOVIES[0], DEMO_SECONDS)
    prober = MediaProber(concurrency=1)
    child: list[float] = []
    thread: list[float] = []
    for n in range(uploads):
        started = time.perf_counter()
        await prober.read(clip, work / f"child-{n}.jpg")
        child.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        await asyncio.to_thread(read_media, clip, work / f"thread-{n}.jpg")
        thread.append((time.perf_counter() - started) * 1000)
    print(f"2. poster extraction per upload ({uploads} uploads of a {DEMO_SECONDS} s 640×360 mp4)")
    for name, values in (("child process (shipped)", child), ("thread, same process", thread)):
        print(f"   {name:<26} p50 {pct(values, 50):6.0f} ms   p99 {pct(values, 99):6.0f} ms")
    return work / "child-0.jpg"


def bench_encoders(poster: Path, rounds: int = 50) -> None:
    with Image.open(poster) as opened:
        picture = opened.convert("RGB")
    print(f"3. encoding one {picture.width}×{picture.height} poster ({rounds} rounds)")
    for name, options in (
        ("JPEG q82 (shipped)", {"format": "JPEG", "quality": 82, "optimize": True}),
        ("WebP q80", {"format": "WEBP", "quality": 80}),
    ):
        times: list[float] = []
        size = 0
        for _ in range(rounds):
            out = io.BytesIO()
            started = time.perf_counter()
            picture.save(out, **options)
            times.append((time.perf_counter() - started) * 1000)
            size = out.tell()
        p50, p99 = pct(times, 50), pct(times, 99)
        print(f"   {name:<20} p50 {p50:5.1f} ms   p99 {p99:5.1f} ms   {size:>7} bytes")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--skip-demo", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="streamia-bench-media-") as tmp:
        work = Path(tmp)
        if not args.skip_demo:
            await bench_demo(work)
        poster = await bench_posters(work, args.uploads)
        bench_encoders(poster)


if __name__ == "__main__":
    asyncio.run(main())
