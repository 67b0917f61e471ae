"""The JSON bodies of the HTTP API turned into commands, or a 400 listing every invalid field."""

from __future__ import annotations

from dataclasses import dataclass

from chassis.problems import ValidationFailed

from users_service.accounts import email_problem, name_problem, normalise_email, password_problem

LOGIN_FIELD_MAX_LENGTH = 1024  # bounds the work one login can make scrypt do
REFRESH_TOKEN_MAX_LENGTH = 512


@dataclass(frozen=True)
class Registration:
    email: str  # normalised
    password: str
    name: str


@dataclass(frozen=True)
class Credentials:
    email: str  # normalised
    password: str


def _strings(body: dict, fields: tuple[str, ...], errors: list[dict]) -> dict[str, str]:
    """The named string fields of ``body``; records a missing, mistyped or unknown field in ``errors``."""
    for extra in sorted(set(body) - set(fields)):
        errors.append({"pointer": f"#/{extra}", "detail": "is not a field of this request"})
    found = {}
    for name in fields:
        if name not in body:
            errors.append({"pointer": f"#/{name}", "detail": "is required"})
        elif not isinstance(body[name], str):
            errors.append({"pointer": f"#/{name}", "detail": "must be a string"})
        else:
            found[name] = body[name]
    return found


def _check(errors: list[dict], name: str, problem: str | None) -> None:
    if problem:
        errors.append({"pointer": f"#/{name}", "detail": problem})


def parse_registration(body: dict) -> Registration:
    errors: list[dict] = []
    fields = _strings(body, ("email", "password", "name"), errors)
    if "email" in fields:
        _check(errors, "email", email_problem(fields["email"]))
    if "password" in fields:
        _check(errors, "password", password_problem(fields["password"]))
    if "name" in fields:
        _check(errors, "name", name_problem(fields["name"]))
    if errors:
        raise ValidationFailed(errors)
    return Registration(normalise_email(fields["email"]), fields["password"], fields["name"].strip())


def parse_credentials(body: dict) -> Credentials:
    errors: list[dict] = []
    fields = _strings(body, ("email", "password"), errors)
    for name, value in fields.items():
        if len(value) > LOGIN_FIELD_MAX_LENGTH:
            errors.append({"pointer": f"#/{name}", "detail": f"must be at most {LOGIN_FIELD_MAX_LENGTH} characters"})
    if errors:
        raise ValidationFailed(errors)
    return Credentials(normalise_email(fields["email"]), fields["password"])


def parse_refresh_token(body: dict) -> str:
    errors: list[dict] = []
    fields = _strings(body, ("refresh_token",), errors)
    token = fields.get("refresh_token")
    if token is not None and not 1 <= len(token) <= REFRESH_TOKEN_MAX_LENGTH:
        errors.append({"pointer": "#/refresh_token",
                       "detail": f"must be 1 to {REFRESH_TOKEN_MAX_LENGTH} characters"})
    if errors:
        raise ValidationFailed(errors)
    return token
