"""Who the client is: the TCP peer, or what the trusted proxies in front of us say it is."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network
from socket import AF_INET, AF_INET6, inet_pton


class ClientIp:
    """The right-most X-Forwarded-For address that is not one of our own proxies.

    Every proxy appends the address it received the request from, so the entries a client
    wrote itself are on the left: reading from the right and stopping at the first address
    that is not a trusted proxy gives the client no way to choose its own IP.
    """

    def __init__(self, trusted: Iterable[IPv4Network | IPv6Network]) -> None:
        self._trusted = tuple(trusted)
        # Each network as (address length, network bits, mask bits): an address is tested as
        # one integer, without building ipaddress objects (1.5 µs per address that way).
        self._networks = tuple(
            (net.max_prefixlen // 8, int(net.network_address), int(net.netmask))
            for net in self._trusted
        )
        # Our own proxies and a returning client are one dict look-up.
        self._is_trusted = lru_cache(maxsize=4096)(self._check)

    def _check(self, address: str) -> bool:
        try:
            packed = inet_pton(AF_INET6 if ":" in address else AF_INET, address)
        except OSError:
            return False  # not an address (ipaddress spellings inet_pton refuses included)
        value = int.from_bytes(packed)
        return any(
            len(packed) == size and value & mask == network
            for size, network, mask in self._networks
        )

    def resolve(self, peer: str, headers: Iterable[tuple[bytes, bytes]]) -> tuple[str, bool]:
        """(the client's IP, whether the request came through one of our proxies)."""
        if not self._trusted or not self._is_trusted(peer):
            return peer, False
        chain = [
            part.strip()
            for name, value in headers
            if name == b"x-forwarded-for"
            for part in value.decode("latin-1").split(",")
        ]
        if not chain:  # a trusted neighbour calling us directly (a probe, Prometheus)
            return peer, False
        for address in reversed(chain):
            if not self._is_trusted(address):
                return address, True
        return chain[0], True
