"""The verified-signature cache (`CachedTokenVerifier`) in front of the kit's TokenVerifier."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from streamia_kit.auth import (
    CachedTokenVerifier,
    MemoryRevocationStore,
    SigningKey,
    StaticKeys,
    TokenVerifier,
)
from streamia_kit.errors import Unauthorized


class CountingKeys(StaticKeys):
    """Static keys that count lookups, i.e. full verifications."""

    def __init__(self, key: SigningKey) -> None:
        super().__init__(key)
        self.lookups = 0

    async def key_for(self, kid: str):
        self.lookups += 1
        return await super().key_for(kid)


@pytest.fixture
def key() -> SigningKey:
    return SigningKey(Ed25519PrivateKey.generate())


def make(
    key: SigningKey, ttl: float = 60.0
) -> tuple[CachedTokenVerifier, CountingKeys, MemoryRevocationStore]:
    keys = CountingKeys(key)
    revocations = MemoryRevocationStore()
    return (
        CachedTokenVerifier(TokenVerifier(keys, revocations), revocations, ttl=ttl),
        keys,
        revocations,
    )


async def test_a_token_seen_before_skips_the_signature_check(key: SigningKey) -> None:
    verifier, keys, _ = make(key)
    token = key.issue("u1", "a@example.com", "user", 3600)
    first = await verifier.verify_header(f"Bearer {token}")
    second = await verifier.verify_header(f"Bearer {token}")
    assert first == second
    assert first.id == "u1"
    assert keys.lookups == 1


async def test_a_cached_token_is_still_refused_once_revoked(key: SigningKey) -> None:
    verifier, _, revocations = make(key)
    token = key.issue("u1", "a@example.com", "user", 3600)
    await verifier.verify_header(f"Bearer {token}")
    claims = jwt.decode(token, options={"verify_signature": False})
    await revocations.revoke_token(claims["jti"], claims["exp"])
    with pytest.raises(Unauthorized):
        await verifier.verify_header(f"Bearer {token}")


async def test_the_cache_never_outlives_the_token(
    key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier, keys, _ = make(key, ttl=3600)
    token = key.issue("u1", "a@example.com", "user", 30)
    await verifier.verify_header(f"Bearer {token}")
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    monkeypatch.setattr("streamia_kit.auth.time.time", lambda: exp + 1.0)
    # Past `exp` the entry is dropped and the kit's full check (expiry included) runs again.
    await verifier.verify_header(f"Bearer {token}")
    assert keys.lookups == 2


async def test_a_bad_token_is_never_cached(key: SigningKey) -> None:
    verifier, keys, _ = make(key)
    token = key.issue("u1", "a@example.com", "user", 3600)[:-4] + "AAAA"
    for _ in range(2):
        with pytest.raises(Unauthorized):
            await verifier.verify_header(f"Bearer {token}")
    assert keys.lookups == 2


async def test_a_zero_ttl_turns_the_cache_off(key: SigningKey) -> None:
    verifier, keys, _ = make(key, ttl=0)
    token = key.issue("u1", "a@example.com", "user", 3600)
    await verifier.verify_header(f"Bearer {token}")
    await verifier.verify_header(f"Bearer {token}")
    assert keys.lookups == 2
