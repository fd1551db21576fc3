"""Accounts brought over from the monolith by `streamia import-monolith`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from streamia_kit.bulk import Loaded, existing, insert_new
from streamia_users.users.models import DeletedAccount, User
from streamia_users.users.schemas import _email
from streamia_users.users.service import is_bcrypt

USERS = User.__table__
DELETED = DeletedAccount.__table__


@dataclass(frozen=True, slots=True)
class MonolithUser:
    id: str
    first_name: object
    last_name: object
    age: object
    email: object
    password_hash: object
    created_at: datetime
    updated_at: datetime


def _name(value: object) -> str | None:
    text = value.strip() if isinstance(value, str) else ""
    return text if 1 <= len(text) <= 50 else None


def _age(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        return None
    return int(value) if 13 <= value <= 150 else None


def _check(user: MonolithUser) -> tuple[dict[str, object] | None, str]:
    """The row to store, or None and why the account is refused."""
    try:
        email = _email(user.email) if isinstance(user.email, str) else None
    except ValueError:
        email = None
    if email is None or len(email) > 254:
        return None, "invalid email"
    first, last = _name(user.first_name), _name(user.last_name)
    if first is None or last is None:
        return None, "invalid name (1-50 characters)"
    age = _age(user.age)
    if age is None:
        return None, "invalid age (a whole number 13-150)"
    if not isinstance(user.password_hash, str) or not is_bcrypt(user.password_hash):
        return None, "password is not a bcrypt hash"
    row = {
        "id": user.id,
        "first_name": first,
        "last_name": last,
        "age": age,
        "email": email,
        "password_hash": user.password_hash,
        # The monolith had no roles; admins are promoted explicitly (`--admin`).
        "role": "user",
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }
    return row, ""


async def import_users(session: AsyncSession, users: Sequence[MonolithUser]) -> Loaded:
    """Store the accounts not imported yet, keeping their bcrypt hashes (argon2 replaces
    each one at its first login). No `user.registered`: the welcome email is not re-sent;
    the comments service gets the display names from the import itself."""
    loaded = Loaded()
    known = await existing(session, USERS.c.id, (u.id for u in users))
    deleted = await existing(session, DELETED.c.id, (u.id for u in users if u.id not in known))
    rows: list[dict[str, object]] = []
    for user in users:
        if user.id in known:
            continue
        if user.id in deleted:
            # Its owner deleted it here after an earlier import: it stays deleted.
            loaded.reject(user.id, "account deleted in Streamia")
            continue
        row, reason = _check(user)
        if row is None:
            loaded.reject(user.id, reason)
        else:
            rows.append(row)
    taken = await existing(session, USERS.c.email, (r["email"] for r in rows))
    fresh: list[dict[str, object]] = []
    for row in rows:
        if row["email"] in taken:
            loaded.reject(str(row["id"]), "duplicate email")
        else:
            taken.add(row["email"])
            fresh.append(row)
    inserted = await insert_new(session, USERS, fresh)
    loaded.changed = len(inserted)
    return loaded
