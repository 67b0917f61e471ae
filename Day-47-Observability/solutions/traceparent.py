"""W3C Trace Context: parse and format the ``traceparent`` header, make child spans, read ``tracestate``.

Specification: https://www.w3.org/TR/trace-context/ (section 3.2 for ``traceparent``, 3.3 for
``tracestate``). ``traceparent`` is ``version-traceid-parentid-flags``, all lower-case hex:

    00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
    ^^ ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ ^^^^^^^^^^^^^^^^ ^^
    version (2)   trace-id (32)         parent-id (16)   flags (2; bit 0 = sampled)

Contract:

- ``parse_traceparent(header)`` returns a ``TraceParent`` or ``None`` when the header is absent or
  invalid (the receiver then starts a new trace; it never raises). Leading and trailing spaces and
  tabs (HTTP's optional whitespace) are ignored.
- Every field is lower-case hex of its exact length: the characters ``0-9`` and ``a-f`` only, so
  upper-case hex, a sign, ``_``, a ``0x`` prefix, whitespace or another script's digits are invalid
  (``int(field, 16)`` accepts all of those but upper case).
- Version ``ff`` is invalid. Version ``00`` is exactly the four fields (55 characters), nothing more.
- A higher version (``01`` to ``fe``) is parsed by its first four fields: after the flags comes
  either the end of the header or a ``-`` followed by anything (fields a later version may add).
- A trace-id of 32 zeros or a parent-id of 16 zeros is invalid.
- ``TraceParent.format()`` writes version ``00`` whatever version was parsed (this code speaks
  version 00; the spec says to send the version you implement).
- ``TraceParent.child()`` is the context to send downstream for a new span: same trace-id and
  flags, a new random non-zero parent-id.
- ``new_trace(sampled=True)`` starts a trace: random non-zero trace-id and parent-id.
- ``parse_tracestate(header)`` returns the list-members as ``(key, value)`` pairs in order, or
  ``[]`` when the header is absent or any member is invalid (the whole header is then dropped).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

SAMPLED = 0x01

_HEX = re.compile(r"[0-9a-f]+")
_TRACESTATE_KEY = re.compile(r"[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13}")
_TRACESTATE_VALUE = re.compile(r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]")
MAX_TRACESTATE_MEMBERS = 32


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and _HEX.fullmatch(text) is not None


@dataclass(frozen=True)
class TraceParent:
    """One parsed ``traceparent``: ``trace_id`` (32 hex), ``parent_id`` (16 hex), ``flags`` (0-255)."""

    trace_id: str
    parent_id: str
    flags: int = 0
    version: str = "00"

    @property
    def sampled(self) -> bool:
        """Bit 0 of the flags: the caller may have recorded this trace."""
        return bool(self.flags & SAMPLED)

    def format(self) -> str:
        """The header value, version 00: ``00-<trace_id>-<parent_id>-<flags as 2 hex>``."""
        return f"00-{self.trace_id}-{self.parent_id}-{self.flags:02x}"

    def child(self) -> TraceParent:
        """The context for a new span in this trace: same trace-id and flags, a new parent-id."""
        return TraceParent(self.trace_id, _random_hex(8, avoid=self.parent_id), self.flags)


def _random_hex(nbytes: int, avoid: str = "") -> str:
    while True:
        value = secrets.token_hex(nbytes)
        if value.strip("0") and value != avoid:
            return value


def new_trace(sampled: bool = True) -> TraceParent:
    """The ``TraceParent`` of a new trace's first span."""
    return TraceParent(_random_hex(16), _random_hex(8), SAMPLED if sampled else 0)


def parse_traceparent(header: str | None) -> TraceParent | None:
    """The ``TraceParent`` in ``header``, or ``None`` if it is absent or invalid."""
    if header is None:
        return None
    value = header.strip(" \t")
    if len(value) < 55:
        return None
    version, trace_id, parent_id, flags = value[0:2], value[3:35], value[36:52], value[53:55]
    if not _is_hex(version, 2) or version == "ff":
        return None
    if value[2] != "-" or value[35] != "-" or value[52] != "-":
        return None
    if not (_is_hex(trace_id, 32) and _is_hex(parent_id, 16) and _is_hex(flags, 2)):
        return None
    rest = value[55:]
    if version == "00" and rest:
        return None
    if rest and not rest.startswith("-"):
        return None
    if not trace_id.strip("0") or not parent_id.strip("0"):
        return None
    return TraceParent(trace_id, parent_id, int(flags, 16), version)


def parse_tracestate(header: str | None) -> list[tuple[str, str]]:
    """The ``(key, value)`` list-members of a ``tracestate`` header, or ``[]`` if it is invalid."""
    if not header:
        return []
    members = []
    for part in header.split(","):
        member = part.strip(" \t")
        if not member:
            continue  # empty list-members are allowed and ignored
        key, sep, value = member.partition("=")
        if not sep or not _TRACESTATE_KEY.fullmatch(key) or not _TRACESTATE_VALUE.fullmatch(value):
            return []
        members.append((key, value))
    keys = [key for key, _ in members]
    if len(members) > MAX_TRACESTATE_MEMBERS or len(set(keys)) != len(keys):
        return []
    return members
