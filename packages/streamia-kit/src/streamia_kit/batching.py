"""Round trips shared by the calls that wait for them: what arrives while one batch is in
flight goes out together in the next, one call for all of it.

A lone call goes out at once (a batch of one), and a batch grows only while the previous one
is in flight, so batching adds no delay the remote side was not already imposing. Under load
the cost of a round trip (for redis-py, ~50 µs of CPU in the caller) is shared by every call
in the batch. The gateway's global limit in Redis and playback's per-user write limit judge
their hits this way; playback's group commit does the same for its UPDATEs, with rules of its
own (one report per row per batch, a connection kept between batches).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Answer = TypeVar("Answer")

MAX_BATCH = 500


class Batcher(Generic[Item, Answer]):
    """`await batcher.submit(item)`: the answer `send` gave for it, in the batch it shared.

    `send(items)` answers each item, in order. When it raises, every call of that batch gets
    the exception, and so do the calls queued behind it: they would each wait for a round
    trip of their own to the remote side that just failed (a black-holed Redis: its timeout,
    one batch after another). Calls made after that start a new batch. A call cancelled while
    it waits (its client left) drops its answer; the batch it is in is not cancelled.
    """

    def __init__(
        self,
        send: Callable[[Sequence[Item]], Awaitable[Sequence[Answer]]],
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._send = send
        self._max = max_batch
        self._pending: list[tuple[Item, asyncio.Future[Answer]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Answer:
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_all())
        return await future

    async def _send_all(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[: self._max], self._pending[self._max :]
                try:
                    answers = await self._send([item for item, _ in batch])
                except Exception as exc:
                    queued, self._pending = self._pending, []
                    for _, future in batch + queued:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                except BaseException:  # cancelled (shutdown): nobody waits for an answer
                    for _, future in batch:
                        future.cancel()
                    raise
                if len(answers) != len(batch):
                    error = RuntimeError(f"{len(answers)} answers for {len(batch)} calls")
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), answer in zip(batch, answers, strict=True):
                    if not future.done():
                        future.set_result(answer)
        finally:
            self._sender = None

    async def close(self) -> None:
        """Cancel the batch in flight (at shutdown): its callers are cancelled."""
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        for _, future in self._pending:
            future.cancel()
        self._pending = []
