"""Input rules shared by every service's schemas."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator


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


def _not_a_boolean(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("Input should be a valid integer")
    return value


# An integer as the monolith's zod coerced it: 4, 4.0 and "4" are accepted; 4.5, "4.5" and
# true are refused (pydantic's lax int, minus booleans). Bounds go in a `Field` beside it.
WholeNumber = Annotated[int, BeforeValidator(_not_a_boolean)]
