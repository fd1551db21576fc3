"""The automatic filter: whole words from a configurable list, ignoring case and accents."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable


def fold(text: str) -> str:
    """Lower-case without accents: "Cabrón" and "CABRON" read the same."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class WordFilter:
    def __init__(self, words: Iterable[str]) -> None:
        phrases = sorted({fold(w).strip() for w in words if w and w.strip()}, key=len, reverse=True)
        # Words of a phrase may be separated by any run of spaces; \w-boundaries on both ends.
        alternatives = [r"\s+".join(map(re.escape, p.split())) for p in phrases]
        self._pattern = (
            re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)")
            if alternatives
            else None
        )

    def flags(self, text: str) -> bool:
        return self._pattern is not None and self._pattern.search(fold(text)) is not None
