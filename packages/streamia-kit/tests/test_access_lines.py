"""Access lines: the lines of one loop pass leave in one write, in order, none lost."""

from __future__ import annotations

import asyncio
import io

from streamia_kit.logging import _HOLD_LIMIT, LineBuffer


class _Written(io.BytesIO):
    """A file that remembers each write it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def write(self, data) -> int:  # type: ignore[override]
        self.writes.append(bytes(data))
        return super().write(data)


async def test_the_lines_of_one_loop_pass_are_written_together_after_it() -> None:
    out = _Written()
    lines = LineBuffer(out)
    lines.info(b'{"event":"request","n":1}')
    lines.info(b'{"event":"request","n":2}')
    assert out.writes == []
    await asyncio.sleep(0)  # the loop's pass ends: its callbacks run
    assert out.writes == [b'{"event":"request","n":1}\n{"event":"request","n":2}\n']


async def test_held_lines_are_written_at_once_past_the_limit_and_on_flush() -> None:
    out = _Written()
    lines = LineBuffer(out)
    big = b"x" * (_HOLD_LIMIT // 2 + 1)
    lines.info(big)
    lines.info(big)
    assert out.getvalue() == big + b"\n" + big + b"\n"
    lines.info(b"last")
    lines.flush()  # what the gateway's shutdown does
    assert out.getvalue().endswith(b"\nlast\n")


def test_outside_a_running_loop_a_line_is_written_at_once() -> None:
    out = _Written()
    LineBuffer(out).info(b"alone")
    assert out.getvalue() == b"alone\n"
