"""Request ids: a caller's sane one is kept, otherwise a random UUID's hex is minted."""

from __future__ import annotations

import uuid

from streamia_kit.logging import new_request_id


def test_a_minted_request_id_is_a_random_uuids_hex_and_never_repeats() -> None:
    minted = {new_request_id(None) for _ in range(10_000)}
    assert len(minted) == 10_000
    for rid in list(minted)[:100]:
        parsed = uuid.UUID(rid)
        assert (parsed.hex, parsed.version, parsed.variant) == (rid, 4, uuid.RFC_4122)


def test_a_callers_request_id_is_kept_only_when_printable_and_short() -> None:
    assert new_request_id("trace-me-42") == "trace-me-42"
    for bad in ("", "x" * 129, "line\nbreak"):
        assert len(new_request_id(bad)) == 32
