"""Token verification with the signature check remembered; revocation is still asked every time."""

from __future__ import annotations

import time
from collections import OrderedDict

from streamia_kit.auth import INVALID_TOKEN, Identity, RevocationStore, TokenVerifier, bearer_token
from streamia_kit.errors import Unauthorized


class CachedTokenVerifier:
    """Skips the Ed25519 check (most of the gateway's per-request CPU) for recently seen tokens.

    A signature that verified once stays valid, so only the outcome of the kit verifier is
    cached, for at most `ttl` seconds and never past the token's `exp`; the revocation store
    is consulted on every request, so a logout takes effect at once.
    """

    def __init__(
        self,
        verifier: TokenVerifier,
        revocations: RevocationStore,
        ttl: float = 60.0,
        max_entries: int = 10_000,
    ) -> None:
        self._verifier = verifier
        self._revocations = revocations
        self._ttl = ttl
        self._max = max_entries
        self._verified: OrderedDict[str, tuple[Identity, float]] = OrderedDict()

    async def verify_header(self, authorization: str | None) -> Identity:
        """The caller's identity, or Unauthorized with the kit's messages."""
        token = bearer_token(authorization)
        now = time.time()
        cached = self._verified.get(token)
        if cached is not None:
            identity, until = cached
            if now < until:
                if await self._revocations.is_revoked(identity.jti, identity.id, identity.iat):
                    raise Unauthorized(INVALID_TOKEN, code="invalid_token")
                return identity
            del self._verified[token]
        identity = await self._verifier.verify(token)  # signature, expiry and revocation
        if self._ttl > 0:
            if len(self._verified) >= self._max:
                self._verified.popitem(last=False)
            self._verified[token] = (identity, min(identity.exp, now + self._ttl))
        return identity
