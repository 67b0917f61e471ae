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

import re  # noqa: F401 - re.fullmatch(r"[0-9a-f]{32}", text) checks lower-case hex
import secrets  # noqa: F401 - secrets.token_hex(8) is 16 random hex digits
from dataclasses import dataclass

SAMPLED = 0x01
MAX_TRACESTATE_MEMBERS = 32


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
        raise NotImplementedError("TODO: True when bit 0 (SAMPLED) of self.flags is set")

    def format(self) -> str:
        """The header value, version 00: ``00-<trace_id>-<parent_id>-<flags as 2 hex>``."""
        raise NotImplementedError("TODO: always version 00; the flags as two lower-case hex digits (f\"{flags:02x}\")")

    def child(self) -> TraceParent:
        """The context for a new span in this trace: same trace-id and flags, a new parent-id."""
        raise NotImplementedError("TODO: same trace_id and flags, a new random non-zero 16-hex parent_id")


def new_trace(sampled: bool = True) -> TraceParent:
    """The ``TraceParent`` of a new trace's first span."""
    raise NotImplementedError("TODO: random non-zero trace_id (32 hex) and parent_id (16 hex); flags SAMPLED or 0")


def parse_traceparent(header: str | None) -> TraceParent | None:
    """The ``TraceParent`` in ``header``, or ``None`` if it is absent or invalid."""
    raise NotImplementedError(
        "TODO: strip spaces and tabs; check the version (2 lower-case hex, not ff), the dashes at "
        "positions 2, 35 and 52, each field's length and hex; version 00 ends after the flags, a higher "
        "version may go on after a '-'; reject all-zero ids. Return None for anything invalid, never raise"
    )


def parse_tracestate(header: str | None) -> list[tuple[str, str]]:
    """The ``(key, value)`` list-members of a ``tracestate`` header, or ``[]`` if it is invalid."""
    raise NotImplementedError(
        "TODO: split on ',', strip spaces and tabs, skip empty members; each member is key=value with the "
        "spec's key and value grammar (section 3.3.1); at most 32 members, keys unique; anything wrong -> []"
    )
