"""What a client may ask for when it places an order, checked with no I/O.

Only ``{"lines": [{"sku", "quantity"}]}`` is accepted: any other field, a price or a total
included, is refused, so a client can never set what it pays.
"""

from __future__ import annotations

from dataclasses import dataclass

from chassis.problems import ValidationFailed

MAX_LINES = 20
MAX_QUANTITY = 100
MAX_SKU_LENGTH = 64


@dataclass(frozen=True)
class RequestedLine:
    sku: str
    quantity: int


def pointer(*parts: str | int) -> str:
    """A JSON Pointer (RFC 6901) fragment: ``pointer("lines", 0, "sku") == "#/lines/0/sku"``."""
    escaped = (str(part).replace("~", "~0").replace("/", "~1") for part in parts)
    return "#/" + "/".join(escaped) if parts else "#"


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # True is an int in Python, not in JSON


def _line_errors(index: int, line: object) -> list[dict]:
    if not isinstance(line, dict):
        return [{"pointer": pointer("lines", index), "detail": "must be an object with 'sku' and 'quantity'"}]
    errors = [{"pointer": pointer("lines", index, name), "detail": "is not a field of an order line"}
              for name in line if name not in ("sku", "quantity")]
    sku = line.get("sku")
    if "sku" not in line:
        errors.append({"pointer": pointer("lines", index, "sku"), "detail": "is required"})
    elif not isinstance(sku, str) or not 1 <= len(sku) <= MAX_SKU_LENGTH:
        errors.append({"pointer": pointer("lines", index, "sku"),
                       "detail": f"must be a string of 1 to {MAX_SKU_LENGTH} characters"})
    quantity = line.get("quantity")
    if "quantity" not in line:
        errors.append({"pointer": pointer("lines", index, "quantity"), "detail": "is required"})
    elif not _is_integer(quantity) or not 1 <= quantity <= MAX_QUANTITY:
        errors.append({"pointer": pointer("lines", index, "quantity"),
                       "detail": f"must be a whole number from 1 to {MAX_QUANTITY}"})
    return errors


def parse_order_request(body: dict) -> tuple[RequestedLine, ...]:
    """The lines of a valid request body, else ``ValidationFailed`` listing every problem."""
    errors = [{"pointer": pointer(name), "detail": "is not a field of an order"}
              for name in body if name != "lines"]
    lines = body.get("lines")
    if "lines" not in body:
        errors.append({"pointer": pointer("lines"), "detail": "is required"})
    elif not isinstance(lines, list) or not 1 <= len(lines) <= MAX_LINES:
        errors.append({"pointer": pointer("lines"), "detail": f"must be a list of 1 to {MAX_LINES} lines"})
    else:
        seen: dict[str, int] = {}
        for index, line in enumerate(lines):
            line_errors = _line_errors(index, line)
            errors.extend(line_errors)
            if line_errors:
                continue
            if line["sku"] in seen:
                errors.append({"pointer": pointer("lines", index, "sku"),
                               "detail": f"repeats the SKU of line {seen[line['sku']]}; "
                                         "order it once with the total quantity"})
            seen.setdefault(line["sku"], index)
    if errors:
        raise ValidationFailed(errors)
    return tuple(RequestedLine(line["sku"], line["quantity"]) for line in lines)
