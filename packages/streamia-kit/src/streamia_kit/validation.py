"""Input rules shared by every service's schemas."""

from __future__ import annotations

from pydantic import AfterValidator


def storable(value: str | None) -> str | None:
    """Refuse NUL and lone surrogates: they survive JSON parsing, but no database stores them."""
    if value is None:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("Text contains invalid characters") from None
    if "\x00" in value:
        raise ValueError("Text contains invalid characters")
    return value


Storable = AfterValidator(storable)
