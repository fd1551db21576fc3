"""How a serving process sets up the garbage collector (`streamia serve`, `streamia up`)."""

from __future__ import annotations

import subprocess
import sys

from streamia.platform import GC_YOUNG_THRESHOLD

_PROBE = """
import gc
from streamia.platform import settle_garbage_collector
before = gc.get_threshold()
settle_garbage_collector()
after = gc.get_threshold()
print(before[0], after[0], after[1:] == before[1:], gc.get_freeze_count())
"""


def test_a_serving_process_freezes_its_startup_objects_and_collects_young_ones_less_often():
    # A process of its own: the test runner's collector is left as it is.
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True
    ).stdout.split()
    before, after, older_kept, frozen = int(out[0]), int(out[1]), out[2] == "True", int(out[3])
    assert before == 700  # CPython's default, which the playback service paid ~15 % for
    assert after == GC_YOUNG_THRESHOLD > before
    assert older_kept
    assert frozen > 10_000  # the modules and objects imported so far, out of every walk
