"""Every string an object holds: how tests prove a secret is stored only as a hash, never in the clear."""

from __future__ import annotations

from collections import deque


def reachable_strings(obj, module_name: str, seen=None, depth=0):
    """Every str and bytes reachable from ``obj`` through containers and the task module's objects."""
    seen = set() if seen is None else seen
    if depth > 12 or id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, str | bytes | bytearray):
        yield obj
    elif isinstance(obj, dict):
        for key, value in list(obj.items()):
            yield from reachable_strings(key, module_name, seen, depth + 1)
            yield from reachable_strings(value, module_name, seen, depth + 1)
    elif isinstance(obj, list | tuple | set | frozenset | deque):
        for item in list(obj):
            yield from reachable_strings(item, module_name, seen, depth + 1)
    elif type(obj).__module__ == module_name:
        values = list(getattr(obj, "__dict__", {}).values())
        values += [getattr(obj, s) for s in getattr(type(obj), "__slots__", ()) if hasattr(obj, s)]
        for value in values:
            yield from reachable_strings(value, module_name, seen, depth + 1)
