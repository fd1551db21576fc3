"""Text folding shared by stored search columns and queries: case- and accent-insensitive."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")


def fold(text: str | None) -> str:
    """Lower-case, strip accents and collapse whitespace: "  Acción\\tFINAL " -> "accion final"."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SPACES.sub(" ", bare.casefold()).strip()


def search_document(title: str, description: str | None) -> str:
    """What /explore searches: the folded title and description, on separate lines so a
    query never matches across the boundary."""
    return f"{fold(title)}\n{fold(description)}"
