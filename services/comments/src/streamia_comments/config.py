"""Comments service settings."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from streamia_catalogue_projection import ProjectionSettings

# Flagged for moderation when they appear as whole words (case- and accent-insensitive).
DEFAULT_BLOCKED_WORDS = [
    # English
    "asshole",
    "bastard",
    "bitch",
    "bullshit",
    "cunt",
    "dickhead",
    "faggot",
    "fuck",
    "fucked",
    "fucker",
    "fucking",
    "motherfucker",
    "nigger",
    "retard",
    "shit",
    "slut",
    "whore",
    # Spanish
    "cabron",
    "cabrona",
    "chinga",
    "chingada",
    "culero",
    "gilipollas",
    "hijo de puta",
    "hijoputa",
    "joder",
    "malparido",
    "maricon",
    "mierda",
    "pendejo",
    "pendeja",
    "puta",
    "puto",
    "verga",
    "zorra",
]


class CommentsSettings(ProjectionSettings):
    service_name: ClassVar[str] = "comments"
    blocked_words: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BLOCKED_WORDS),
        description="JSON list of words or phrases that flag a comment for moderation "
        "(whole words, case- and accent-insensitive); replaces the defaults",
    )
    report_threshold: int = Field(
        3,
        ge=1,
        description="distinct reporters that hide a visible comment until a moderator decides "
        "(an admin's report hides it at once)",
    )
    report_min_account_age_seconds: int = Field(
        86400,
        ge=0,
        description="how old an account must be for its reports to count towards the "
        "threshold (younger accounts' reports are kept and counted once they are old enough)",
    )
