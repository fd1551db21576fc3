"""A connection's writes of one loop step leave in one write, in order, before it closes."""

from __future__ import annotations

import asyncio
import socket

from streamia_kit.http_protocol import _HOLD_LIMIT, _CoalescingTransport


async def _pair() -> tuple[asyncio.Transport, socket.socket, list[int]]:
    """A real uvloop/asyncio transport over a socket pair, counting the chunks handed to it."""
    ours, theirs = socket.socketpair()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
    sizes: list[int] = []
    writelines = transport.writelines

    def counted(chunks):
        chunks = list(chunks)
        sizes.append(sum(map(len, chunks)))
        writelines(chunks)

    transport.writelines = counted  # type: ignore[method-assign]
    theirs.setblocking(False)
    return transport, theirs, sizes


async def _read(peer: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    data = b""
    while len(data) < size:
        data += await asyncio.wait_for(loop.sock_recv(peer, size - len(data)), 5)
    return data


async def test_the_writes_of_one_step_leave_together_after_it() -> None:
    transport, peer, sizes = await _pair()
    coalescing = _CoalescingTransport(transport, asyncio.get_running_loop())
    coalescing.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    coalescing.write(b"{}")
    assert sizes == []  # nothing sent inside the step
    data = await _read(peer, 40)
    assert data == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"
    assert sizes == [40]
    coalescing.close()
    peer.close()


async def test_closing_sends_what_is_held_first() -> None:
    transport, peer, sizes = await _pair()
    coalescing = _CoalescingTransport(transport, asyncio.get_running_loop())
    coalescing.write(b"last words")
    coalescing.close()
    assert await _read(peer, 10) == b"last words"
    assert sizes == [10]
    peer.close()


async def test_a_large_body_is_not_held_past_the_limit() -> None:
    transport, peer, sizes = await _pair()
    coalescing = _CoalescingTransport(transport, asyncio.get_running_loop())
    chunk = b"x" * (_HOLD_LIMIT // 2 + 1)
    coalescing.write(chunk)
    coalescing.write(chunk)
    assert sizes == [2 * len(chunk)]  # sent at once, under the transport's flow control
    assert await _read(peer, 2 * len(chunk)) == chunk * 2
    coalescing.close()
    peer.close()
