"""The event contracts: one JSON Schema (draft 2020-12) per event type describes its ``data``.

The schemas in ``contracts/events/<type>.json`` are the source of truth; CONTRACTS.md is their
summary. A producer calls ``validate`` before it adds an event to its outbox, a consumer before it
acts on one, so a broken event is refused where it is made or dead-lettered where it arrives.

The schemas are found next to the chassis: ``<root>/chassis/event_contracts.py`` reads
``<root>/contracts/events/``, in the repository and in a service image alike (the image copies
``contracts/`` beside ``chassis/``). Nothing is read at import time; the first call loads and
caches them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError, ValidationError, best_match

_MAX_SHOWN = 60  # characters of an offending value repeated in a message


class ContractViolation(ValueError):
    """An event's data breaks its type's contract: raised so the producer fails, or the consumer
    retries and then dead-letters the delivery."""

    def __init__(self, event_type: str, pointer: str, expected: str, got: str, more: int = 0):
        self.event_type, self.pointer, self.expected, self.got = event_type, pointer, expected, got
        others = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        super().__init__(f"{event_type} event data at {pointer}: expected {expected}, got {got}{others}")


class UnknownEventType(ContractViolation):
    """An event type with no schema: nobody may publish it, so receiving one is a violation too."""

    def __init__(self, event_type: str, known: tuple[str, ...]):
        super().__init__(event_type, "#", f"one of the types with a contract: {', '.join(known)}",
                         json.dumps(event_type))
        self.args = (f"no contract for event type {event_type!r}: contracts/events/ has {', '.join(known)}",)


def _is_whole_number(checker, instance: object) -> bool:
    # JSON Schema calls 2.0 an integer and Python calls True one; an amount in cents is neither.
    return isinstance(instance, int) and not isinstance(instance, bool)


EventDataValidator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_whole_number))


def contracts_directory() -> Path:
    """``contracts/events/`` beside the ``chassis`` package, where the repository and the images keep it."""
    return Path(__file__).resolve().parent.parent / "contracts" / "events"


@cache
def _validators(directory: Path) -> dict[str, Any]:
    """One validator per ``<event type>.json`` in ``directory``, each schema checked against draft 2020-12."""
    if not directory.is_dir():
        raise FileNotFoundError(f"no event contracts at {directory}: copy contracts/ next to chassis/")
    found = {}
    for path in sorted(directory.glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        try:
            EventDataValidator.check_schema(schema)
        except SchemaError as exc:
            exc.add_note(f"in the event contract {path}")
            raise
        found[path.name.removesuffix(".json")] = EventDataValidator(
            schema, format_checker=EventDataValidator.FORMAT_CHECKER)
    return found


def known_event_types() -> tuple[str, ...]:
    """The event types that have a contract, sorted."""
    return tuple(_validators(contracts_directory()))


def schema_for(event_type: str) -> Mapping[str, Any]:
    """The JSON Schema of ``event_type``'s data (read-only: it is shared); ``UnknownEventType`` if none."""
    return _validator_for(event_type).schema


def _validator_for(event_type: str):
    found = _validators(contracts_directory())
    if event_type not in found:
        raise UnknownEventType(event_type, tuple(found))
    return found[event_type]


def validate(event_type: str, data: object) -> None:
    """Check ``data`` against ``event_type``'s contract; ``ContractViolation`` naming the first problem.

    Fields the contract does not declare are accepted (tolerant reader); an event type without a
    contract raises ``UnknownEventType``, a ``ContractViolation``: consumers that ignore types they
    do not handle should check ``known_event_types()`` or their own bindings first.
    """
    errors = list(_validator_for(event_type).iter_errors(data))
    if errors:
        worst = best_match(errors)
        raise ContractViolation(event_type, _pointer(worst), _expected(worst), _got(worst), len(errors) - 1)


def _escape(part: str | int) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def _missing_field(error: ValidationError) -> str | None:
    if error.validator != "required" or not isinstance(error.instance, Mapping):
        return None
    return next((name for name in error.validator_value if name not in error.instance), None)


def _pointer(error: ValidationError) -> str:
    """Where the problem is, as a JSON Pointer fragment like the APIs' errors: ``#/lines/0/quantity``."""
    parts = [*error.absolute_path]
    missing = _missing_field(error)
    if missing is not None:
        parts.append(missing)
    return "#" + "".join(f"/{_escape(part)}" for part in parts)


def _expected(error: ValidationError) -> str:
    keyword, value = error.validator, error.validator_value
    missing = _missing_field(error)
    if missing is not None:
        field = error.schema.get("properties", {}).get(missing, {})
        return "this required field" + (f" ({field['description'].rstrip('.')})" if "description" in field else "")
    wording = {
        "type": lambda: "a whole number (not a boolean or a float)" if value == "integer" else f"a JSON {value}",
        "minimum": lambda: f"a number of at least {value}",
        "maximum": lambda: f"a number of at most {value}",
        "minLength": lambda: f"at least {value} characters",
        "maxLength": lambda: f"at most {value} characters",
        "pattern": lambda: f"text matching {value}",
        "format": lambda: f"a valid {value}",
        "minItems": lambda: f"at least {value} items",
        "maxItems": lambda: f"at most {value} items",
        "enum": lambda: f"one of {value}",
        "const": lambda: f"exactly {value!r}",
    }.get(keyword)
    expected = wording() if wording else error.message
    description = error.schema.get("description") if isinstance(error.schema, Mapping) else None
    return f"{expected} ({description.rstrip('.')})" if description and error.absolute_path else expected


def _got(error: ValidationError) -> str:
    if _missing_field(error) is not None:
        return "nothing"
    shown = json.dumps(error.instance, ensure_ascii=False, default=repr)
    if error.validator in ("maxLength", "minLength") and isinstance(error.instance, str):
        shown = f"{len(error.instance)} characters: {shown}"
    return shown if len(shown) <= _MAX_SHOWN else shown[:_MAX_SHOWN - 1] + "…"
