"""Idempotency keys, with no I/O: which keys are acceptable and what makes two requests the same."""

from __future__ import annotations

import hashlib
import json
import re

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


class KeyReusedWithAnotherRequest(Exception):
    """The key was first used with a different body: replaying its answer would be a lie."""


def is_valid_key(key: str) -> bool:
    return _KEY.fullmatch(key) is not None


def fingerprint(body: dict) -> str:
    """SHA-256 of the body's canonical JSON: the same content in any key order or spacing matches."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()
