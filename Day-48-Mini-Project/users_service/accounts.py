"""The user account: what a valid e-mail, name and password are, roles, and the credit view. No I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from chassis.database import as_utc

# Shared with the OpenAPI document so that what the schema allows is exactly what the service accepts.
EMAIL_MAX_LENGTH = 254
EMAIL_PATTERN = (r"^[ \t\r\n]*[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}"
                 r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}[ \t\r\n]*$")
NAME_MAX_LENGTH = 100
NAME_PATTERN = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"  # printable, not only blanks
PASSWORD_MIN_LENGTH, PASSWORD_MAX_LENGTH = 12, 128
_EMAIL, _NAME = re.compile(EMAIL_PATTERN), re.compile(NAME_PATTERN)
_BLANKS = " \t\r\n"


def normalise_email(raw: str) -> str:
    """Trimmed and lower-cased: ``" Ada@Example.COM "`` and ``"ada@example.com"`` are one account."""
    return raw.strip(_BLANKS).lower()


def email_problem(raw: str) -> str | None:
    if len(raw) > EMAIL_MAX_LENGTH:
        return f"must be at most {EMAIL_MAX_LENGTH} characters"
    if not _EMAIL.search(raw):
        return "must be an e-mail address such as ada@example.com"
    return None


def name_problem(raw: str) -> str | None:
    if not 1 <= len(raw) <= NAME_MAX_LENGTH:
        return f"must be 1 to {NAME_MAX_LENGTH} characters"
    if not _NAME.search(raw):
        return "must contain a visible character and no control characters"
    if not _is_encodable(raw):
        return "must be valid Unicode text"
    return None


def _is_encodable(raw: str) -> bool:
    # JSON may carry lone surrogates ("\ud800"); no database can store them as text.
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def password_problem(raw: str) -> str | None:
    if not PASSWORD_MIN_LENGTH <= len(raw) <= PASSWORD_MAX_LENGTH:
        return f"must be {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters"
    return None


def rfc3339(moment: datetime) -> str:
    """UTC, with its offset."""
    return as_utc(moment).isoformat()


@dataclass(frozen=True)
class User:
    id: str
    email: str
    name: str
    is_admin: bool
    created_at: datetime
    credit_limit_cents: int
    reserved_cents: int

    @property
    def roles(self) -> list[str]:
        return ["user", "admin"] if self.is_admin else ["user"]

    @property
    def available_cents(self) -> int:
        return self.credit_limit_cents - self.reserved_cents

    def to_json(self, *, with_credit: bool) -> dict:
        """The public view: never the password hash."""
        view = {"id": self.id, "email": self.email, "name": self.name, "roles": self.roles,
                "created_at": rfc3339(self.created_at)}
        if with_credit:
            view["credit"] = {"limit_cents": self.credit_limit_cents, "reserved_cents": self.reserved_cents,
                              "available_cents": self.available_cents}
        return view
