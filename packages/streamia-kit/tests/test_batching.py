"""Batcher: calls that arrive while a batch is in flight share the next one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from streamia_kit.batching import Batcher
from streamia_kit.testing import wait_for


class Remote:
    """A remote side that answers each item doubled once `release` is set (or fails one batch
    with `fail`), and records its batches."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.fail: Exception | None = None

    async def send(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        await self.release.wait()
        fail, self.fail = self.fail, None  # one batch fails, the next finds the remote back
        if fail is not None:
            raise fail
        return [item * 2 for item in items]


async def test_a_lone_call_goes_at_once_and_those_arriving_meanwhile_share_the_next() -> None:
    remote = Remote()
    batcher = Batcher(remote.send)
    first = asyncio.create_task(batcher.submit(1))
    await wait_for(lambda: remote.batches == [[1]], 1, 0.001, "the first batch sent")
    rest = [asyncio.create_task(batcher.submit(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    assert remote.batches == [[1]]  # nothing more while the first is in flight
    remote.release.set()
    assert await first == 2
    assert await asyncio.gather(*rest) == [4, 6, 8]
    assert remote.batches == [[1], [2, 3, 4]]


async def test_batches_hold_at_most_max_batch_calls() -> None:
    remote = Remote()
    remote.release.set()
    batcher = Batcher(remote.send, max_batch=2)
    assert await asyncio.gather(*(batcher.submit(n) for n in range(5))) == [0, 2, 4, 6, 8]
    assert remote.batches == [[0, 1], [2, 3], [4]]


async def test_a_failed_batch_fails_the_calls_queued_behind_it_and_later_calls_go_on() -> None:
    remote = Remote()
    remote.fail = ConnectionError("down")
    batcher = Batcher(remote.send)
    failing = [asyncio.create_task(batcher.submit(n)) for n in (1, 2)]
    await wait_for(lambda: remote.batches == [[1, 2]], 1, 0.001, "the batch sent")
    queued = asyncio.create_task(batcher.submit(3))  # behind the round trip that fails
    await asyncio.sleep(0)
    remote.release.set()
    for task in [*failing, queued]:
        with pytest.raises(ConnectionError):
            await task
    assert remote.batches == [[1, 2]]  # the queued call did not wait for a round trip
    assert await batcher.submit(4) == 8  # a later call: a new batch, the remote side back
    assert remote.batches == [[1, 2], [4]]


async def test_a_cancelled_caller_leaves_its_batch_answering_the_others() -> None:
    remote = Remote()
    batcher = Batcher(remote.send)
    leaving, staying = (asyncio.create_task(batcher.submit(n)) for n in (1, 2))
    await wait_for(lambda: remote.batches == [[1, 2]], 1, 0.001, "the batch sent")
    leaving.cancel()
    remote.release.set()
    assert await staying == 4
    assert leaving.cancelled()


async def test_a_wrong_number_of_answers_is_an_error_for_every_call() -> None:
    async def short(items: Sequence[int]) -> list[int]:
        return [0] * (len(items) - 1)

    batcher = Batcher(short)
    results = await asyncio.gather(*(batcher.submit(n) for n in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)


async def test_close_cancels_the_calls_still_waiting() -> None:
    remote = Remote()
    batcher = Batcher(remote.send)
    waiting = [asyncio.create_task(batcher.submit(n)) for n in (1, 2)]
    await wait_for(lambda: remote.batches == [[1, 2]], 1, 0.001, "the batch sent")
    await batcher.close()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
