"""Request and response bodies of API.md's Users section."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from streamia_kit.db import iso
from streamia_kit.validation import Storable, WholeNumber
from streamia_users.users.models import User

SPECIALS = "!@#$%^&*()_+-=[]{};':\"\\|,.<>/?"


NON_ASCII_EMAIL = (
    "Email addresses with non-ASCII characters before the @ cannot receive our emails; "
    "please use an ASCII address"
)


def _email(value: str) -> str:
    # Non-ASCII local parts need SMTPUTF8, which no mail server is promised to offer: such an
    # account could never get its reset link, so it is refused up front (a clear 400).
    if not value.partition("@")[0].isascii():
        raise ValueError(NON_ASCII_EMAIL)
    try:
        return validate_email(
            value, check_deliverability=False, allow_smtputf8=False
        ).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError("Invalid email address") from exc


def _strong(value: str) -> str:
    problems = []
    if len(value) < 8:
        problems.append("at least 8 characters")
    if not re.search(r"[A-Z]", value):
        problems.append("an uppercase letter")
    if not re.search(r"[a-z]", value):
        problems.append("a lowercase letter")
    if not re.search(r"\d", value):
        problems.append("a digit")
    if not any(c in SPECIALS for c in value):
        problems.append("a special character")
    if problems:
        raise ValueError("Password must contain " + ", ".join(problems))
    return value


Email = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=254), Storable, AfterValidator(_email)
]
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), Storable
]
Age = Annotated[WholeNumber, Field(ge=13, le=150)]
StrongPassword = Annotated[
    str, StringConstraints(max_length=128), Storable, AfterValidator(_strong)
]
Password = Annotated[str, StringConstraints(min_length=1, max_length=128), Storable]


Language = Literal["es", "en"]
LANGUAGES: tuple[Language, ...] = ("es", "en")
DEFAULT_LANGUAGE: Language = "es"


def preferred_language(accept_language: str | None) -> Language:
    """The first of our languages in an `Accept-Language` header (by q), else the default."""
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, index, tag.strip().lower().split("-")[0]))
    for negative_quality, _, primary in sorted(ranked):
        for language in LANGUAGES:
            if negative_quality < 0 and primary == language:  # q=0: "not this one"
                return language
    return DEFAULT_LANGUAGE


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


def _must_match(value: str, info: ValidationInfo, other: str) -> str:
    if info.data.get(other) is not None and value != info.data[other]:
        raise ValueError("Passwords do not match")
    return value


class RegisterIn(_In):
    firstName: Name
    lastName: Name
    age: Age
    email: Email
    password: StrongPassword
    # Unset: taken from the request's Accept-Language.
    language: Language | None = None
    confirmPassword: str

    @field_validator("confirmPassword")
    @classmethod
    def _confirm(cls, value: str, info: ValidationInfo) -> str:
        return _must_match(value, info, "password")


class LoginIn(_In):
    email: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=254), Storable
    ]
    password: Password


class ForgotPasswordIn(_In):
    email: Email


class ResetPasswordIn(_In):
    token: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), Storable
    ]
    newPassword: StrongPassword
    confirmPassword: str

    @field_validator("confirmPassword")
    @classmethod
    def _confirm(cls, value: str, info: ValidationInfo) -> str:
        return _must_match(value, info, "newPassword")


class UpdateMeIn(_In):
    firstName: Name | None = None
    lastName: Name | None = None
    age: Age | None = None
    email: Email | None = None
    language: Language | None = None


class ChangePasswordIn(_In):
    currentPassword: Password
    newPassword: StrongPassword
    confirmPassword: str | None = None  # the monolith's clients may leave it out

    @field_validator("confirmPassword")
    @classmethod
    def _confirm(cls, value: str, info: ValidationInfo) -> str:
        return _must_match(value, info, "newPassword")


class DeleteMeIn(_In):
    password: Password


def user_out(user: User) -> dict[str, Any]:
    """API.md's `user`: never a password hash or reset token."""
    return {
        "id": user.id,
        "_id": user.id,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "age": user.age,
        "email": user.email,
        "role": user.role,
        "language": user.language,
        "createdAt": iso(user.created_at),
        "updatedAt": iso(user.updated_at),
    }
