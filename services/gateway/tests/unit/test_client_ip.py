"""Who the client is: the right-most X-Forwarded-For address that is not one of our proxies."""

from __future__ import annotations

from ipaddress import ip_network

from streamia_gateway.client_ip import ClientIp

PROXIES = ClientIp([ip_network("10.0.0.0/8"), ip_network("fd00::/8")])


def _forwarded(chain: str) -> list[tuple[bytes, bytes]]:
    return [(b"host", b"streamia.example"), (b"x-forwarded-for", chain.encode())]


def test_the_right_most_address_that_is_not_our_proxy_is_the_client() -> None:
    chain = _forwarded("198.51.100.7, 203.0.113.9, 10.1.2.3")
    assert PROXIES.resolve("10.0.0.1", chain) == ("203.0.113.9", True)


def test_a_peer_that_is_not_our_proxy_is_the_client_whatever_it_forwards() -> None:
    assert PROXIES.resolve("203.0.113.9", _forwarded("10.9.9.9")) == ("203.0.113.9", False)
    assert PROXIES.resolve("fd00::1", _forwarded("2001:db8::5")) == ("2001:db8::5", True)


def test_addresses_only_match_networks_of_their_own_family_and_spelling() -> None:
    # An IPv4-mapped IPv6 address is not in an IPv4 network (as ipaddress has it); a spelling
    # that is not an address (leading zeros, a name) is never one of our proxies.
    for address in ("::ffff:10.0.0.1", "10.0.0.01", "proxy.internal", "", "11.0.0.1"):
        assert PROXIES.resolve("10.0.0.1", _forwarded(f"{address}, 10.0.0.2"))[0] == address
    assert PROXIES.resolve("fd12::7", []) == ("fd12::7", False)  # a neighbour calling directly
