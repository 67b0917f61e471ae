"""Tests of task `traceparent`: the W3C Trace Context header, parsed, validated and formatted.

Run: pytest Day-47-Observability/tasks/test_traceparent.py

Each clause of the contract (the stub's docstring) and the tests that guard it:

- parse_traceparent gives a TraceParent, or None for an absent or invalid header, never raising
  -> test_parses_the_example_from_the_spec, test_invalid_headers_give_none, parse()
- leading and trailing spaces and tabs are ignored (and nothing else)
  -> test_optional_whitespace_around_the_value_is_ignored, test_invalid_headers_give_none (newline)
- every field lower-case hex of its exact length: no upper case, sign, underscore, 0x, whitespace
  or non-ASCII digit (what int(x, 16) lets through) -> test_invalid_headers_give_none, test_hex_means_0_to_9_and_a_to_f_only
- version ff invalid; version 00 is exactly 55 characters -> test_invalid_headers_give_none
- a higher version: the first four fields, then the end or '-' and anything
  -> test_a_higher_version_is_parsed_by_its_first_four_fields, test_invalid_headers_give_none
- all-zero trace-id or parent-id invalid -> test_invalid_headers_give_none
- sampled is bit 0 of the flags -> test_sampled_is_bit_zero_of_the_flags
- format writes version 00, flags as two lower-case hex digits -> test_format_writes_the_header,
  test_format_and_parse_round_trip, test_a_higher_version_is_forwarded_as_version_00
- child: same trace-id and flags, a new random non-zero parent-id
  -> test_child_keeps_the_trace_and_flags_and_makes_a_new_parent_id
- new_trace: random non-zero ids, sampled or not -> test_new_trace_makes_random_valid_ids
- parse_tracestate: members in order, OWS and empty members skipped; [] when absent or any member is
  invalid (key and value grammar, repeated key, over 32 members)
  -> test_tracestate_members_in_order, test_an_invalid_tracestate_is_dropped_whole,
  test_the_tracestate_grammar_at_its_edges, test_the_tracestate_grammar_refuses_just_past_its_edges
"""

import re

import pytest

from lab import load_task

tp = load_task(__file__, "traceparent")

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
VALID = f"00-{TRACE}-{PARENT}-01"


def parse(header):
    try:
        return tp.parse_traceparent(header)
    except NotImplementedError:
        raise
    except Exception as exc:  # a learner-facing message rather than a bare traceback
        pytest.fail(f"parse_traceparent({header!r}) raised {type(exc).__name__}: {exc}; an invalid header "
                    f"must give None (start a new trace), never an exception")


def test_parses_the_example_from_the_spec():
    got = parse(VALID)
    assert got is not None, f"{VALID!r} is the spec's own example and is valid; got None"
    assert (got.trace_id, got.parent_id, got.flags) == (TRACE, PARENT, 1), \
        f"expected trace_id={TRACE}, parent_id={PARENT}, flags=1; got {got.trace_id}, {got.parent_id}, {got.flags}"
    assert got.version == "00", f"version is the first field, '00'; got {got.version!r}"
    assert got.sampled is True, "flags 01: the sampled bit is set"


@pytest.mark.parametrize("flags, sampled", [("00", False), ("01", True), ("02", False), ("03", True), ("09", True), ("ff", True)])
def test_sampled_is_bit_zero_of_the_flags(flags, sampled):
    got = parse(f"00-{TRACE}-{PARENT}-{flags}")
    assert got is not None, f"flags {flags!r} are two lower-case hex digits: valid"
    assert got.flags == int(flags, 16), f"flags {flags!r} is the number {int(flags, 16)}, got {got.flags!r}"
    assert got.sampled is sampled, f"flags {flags!r}: sampled is bit 0 (flags & 1), so {sampled}; got {got.sampled}"


@pytest.mark.parametrize("header, why", [
    (None, "no header at all"),
    ("", "an empty header"),
    (f"ff-{TRACE}-{PARENT}-01", "version ff is forbidden by the spec"),
    (f"00-{'0' * 32}-{PARENT}-01", "an all-zero trace-id is invalid"),
    (f"00-{TRACE}-{'0' * 16}-01", "an all-zero parent-id is invalid"),
    (f"00-{TRACE.upper()}-{PARENT}-01", "upper-case hex in the trace-id is invalid"),
    (f"00-{TRACE}-{PARENT.upper()}-01", "upper-case hex in the parent-id is invalid"),
    (f"00-{TRACE}-{PARENT}-0A", "upper-case hex in the flags is invalid"),
    (f"0A-{TRACE}-{PARENT}-01", "upper-case hex in the version is invalid"),
    (f"00-{TRACE[:-1]}-{PARENT}-01", "a 31-character trace-id"),
    (f"00-{TRACE}0-{PARENT}-01", "a 33-character trace-id"),
    (f"00-{TRACE}-{PARENT[:-1]}-01", "a 15-character parent-id"),
    (f"00-{TRACE}-{PARENT}0-01", "a 17-character parent-id"),
    (f"00-{TRACE}-{PARENT}-1", "one flags digit"),
    (f"00-{TRACE}-{PARENT}-001", "three flags digits"),
    (f"0-{TRACE}-{PARENT}-01", "a one-digit version"),
    (f"000-{TRACE}-{PARENT}-01", "a three-digit version"),
    (f"00-{TRACE[:-1]}g-{PARENT}-01", "a non-hex trace-id"),
    (f"00-{TRACE}-{PARENT[:-1]}z-01", "a non-hex parent-id"),
    (f"00-{TRACE}-{PARENT}-0x", "non-hex flags"),
    (f"0g-{TRACE}-{PARENT}-01", "a non-hex version"),
    (f"00{TRACE}-{PARENT}-01", "the dash after the version is missing"),
    (f"00-{TRACE}{PARENT}-01", "the dash after the trace-id is missing"),
    (f"00-{TRACE}-{PARENT}01", "the dash after the parent-id is missing"),
    (f"00_{TRACE}_{PARENT}_01", "underscores instead of dashes"),
    (f"00-{TRACE}-{PARENT}-01-extra", "version 00 has exactly four fields"),
    (f"00-{TRACE}-{PARENT}-01-", "version 00 has nothing after the flags, not even a dash"),
    (f"00-{TRACE}-{PARENT}-01 x", "junk after the flags"),
    (f"00-{TRACE}-{PARENT}", "the flags are missing"),
    (f"00 -{TRACE}-{PARENT}-01", "a space inside the header"),
    (f"cc-{TRACE}-{PARENT}-01.extra", "a higher version: after the flags comes the end or a dash, not a dot"),
    (f"cc-{TRACE}-{PARENT}-01extra", "a higher version: after the flags comes the end or a dash"),
    (f"cc-{TRACE}-{PARENT}", "a higher version still needs the flags (at least 55 characters)"),
    (f"cc-{'0' * 32}-{PARENT}-01", "a higher version with an all-zero trace-id"),
    ("not a traceparent at all, but long enough to be 55 chars!!", "garbage"),
    (f"00-{TRACE}-{PARENT}-01\n", "a trailing newline (only spaces and tabs around the value are ignored)"),
])
def test_invalid_headers_give_none(header, why):
    got = parse(header)
    assert got is None, f"{header!r} is invalid ({why}): parse_traceparent must return None, got {got!r}"


NOT_HEX = [
    # What int(field, 16) accepts and the spec's HEXDIGLC does not: a sign, an underscore between
    # digits, a 0x prefix, whitespace around the digits, and digits of other scripts.
    ("+1", "version", "a '+' sign in the version"),
    ("-1", "version", "a '-' sign in the version"),
    ("+1", "flags", "a '+' sign in the flags"),
    ("-1", "flags", "a '-' sign in the flags"),
    (" 1", "flags", "a space in the flags"),
    ("\t1", "flags", "a tab in the flags"),
    ("0x" + PARENT[2:], "parent", "a 0x prefix on the parent-id"),
    (PARENT[:4] + "_" + PARENT[5:], "parent", "an underscore in the parent-id"),
    ("+" + PARENT[1:], "parent", "a '+' sign on the parent-id"),
    (" " + PARENT[1:], "parent", "a leading space in the parent-id"),
    ("0x" + TRACE[2:], "trace", "a 0x prefix on the trace-id"),
    (TRACE[:8] + "_" + TRACE[9:], "trace", "an underscore in the trace-id"),
    (TRACE[:-1] + " ", "trace", "a trailing space in the trace-id"),
    (TRACE[:-1] + "\u0663", "trace", "an Arabic-Indic digit three in the trace-id"),
    ("\uff10" + PARENT[1:], "parent", "a full-width digit zero in the parent-id"),
]


@pytest.mark.parametrize("value, field, why", NOT_HEX, ids=[why for _, _, why in NOT_HEX])
def test_hex_means_0_to_9_and_a_to_f_only(value, field, why):
    parts = {"version": "00", "trace": TRACE, "parent": PARENT, "flags": "01", field: value}
    header = f"{parts['version']}-{parts['trace']}-{parts['parent']}-{parts['flags']}"
    got = parse(header)
    assert got is None, (
        f"{header!r} is invalid ({why}): each field is lower-case hex, the characters 0-9 and a-f only. "
        f"int(field, 16) is no check: it accepts a sign, '_', '0x', spaces and other scripts' digits. Use "
        f"re.fullmatch(r'[0-9a-f]{{n}}', field); got {got!r}")


@pytest.mark.parametrize("header", [
    f"01-{TRACE}-{PARENT}-01",
    f"cc-{TRACE}-{PARENT}-01",
    f"cc-{TRACE}-{PARENT}-01-what-the-future-will-be-like",
    f"fe-{TRACE}-{PARENT}-01-",
])
def test_a_higher_version_is_parsed_by_its_first_four_fields(header):
    got = parse(header)
    assert got is not None, (f"{header!r}: a version above 00 (not ff) is parsed by its first four fields, "
                             f"with anything after a '-' ignored; got None")
    assert (got.trace_id, got.parent_id, got.sampled) == (TRACE, PARENT, True), \
        f"{header!r}: expected trace_id={TRACE}, parent_id={PARENT}, sampled; got {got!r}"
    assert got.version == header[:2], f"version is {header[:2]!r}, got {got.version!r}"


@pytest.mark.parametrize("padding", [" ", "\t", "  \t "])
def test_optional_whitespace_around_the_value_is_ignored(padding):
    got = parse(f"{padding}{VALID}{padding}")
    assert got is not None and got.trace_id == TRACE, \
        f"HTTP allows spaces and tabs around a header value: {padding + VALID + padding!r} is valid; got {got!r}"


def test_format_writes_the_header():
    header = tp.TraceParent(TRACE, PARENT, 1).format()
    assert header == VALID, f"TraceParent({TRACE!r}, {PARENT!r}, 1).format() is {VALID!r}, got {header!r}"
    unsampled = tp.TraceParent(TRACE, PARENT, 0).format()
    assert unsampled == f"00-{TRACE}-{PARENT}-00", f"flags 0 are written as two digits '00', got {unsampled!r}"
    other = tp.TraceParent(TRACE, PARENT, 0x0b).format()
    assert other.endswith("-0b"), f"flags 11 are written as two lower-case hex digits '0b', got {other!r}"


@pytest.mark.parametrize("header", [VALID, f"00-{TRACE}-{PARENT}-00", f"00-{'0' * 31}1-{'0' * 15}1-01"])
def test_format_and_parse_round_trip(header):
    got = parse(header)
    assert got is not None and got.format() == header, \
        f"parse then format must give the header back: {header!r} -> {got.format() if got else None!r}"


def test_a_higher_version_is_forwarded_as_version_00():
    got = parse(f"cc-{TRACE}-{PARENT}-01-future-fields")
    assert got is not None, "a higher version is parsed"
    assert got.format() == VALID, (f"a service that implements version 00 sends version 00 with the four fields "
                                   f"it understands: expected {VALID!r}, got {got.format()!r}")


def test_child_keeps_the_trace_and_flags_and_makes_a_new_parent_id():
    parent = tp.TraceParent(TRACE, PARENT, 1)
    children = [parent.child() for _ in range(200)]
    for child in children:
        assert child.trace_id == TRACE, f"a child span stays in its trace: trace_id {TRACE}, got {child.trace_id}"
        assert child.flags == 1, f"the child keeps the flags (sampled stays sampled), got {child.flags}"
        assert re.fullmatch(r"[0-9a-f]{16}", child.parent_id), \
            f"the new parent_id is 16 lower-case hex digits, got {child.parent_id!r}"
        assert child.parent_id.strip("0"), "the new parent_id must not be all zeros"
        assert child.parent_id != PARENT, "the child needs a NEW parent_id: the id of the span being started"
        assert parse(child.format()) == tp.TraceParent(TRACE, child.parent_id, 1), \
            f"the child's header must parse back: {child.format()!r}"
    distinct = len({c.parent_id for c in children})
    assert distinct == 200, f"200 children need 200 different random parent ids, got {distinct}"
    unsampled = tp.TraceParent(TRACE, PARENT, 0).child()
    assert unsampled.sampled is False, "an unsampled parent has unsampled children"


def test_new_trace_makes_random_valid_ids():
    traces = [tp.new_trace() for _ in range(200)]
    for t in traces:
        assert re.fullmatch(r"[0-9a-f]{32}", t.trace_id) and t.trace_id.strip("0"), \
            f"trace_id: 32 lower-case hex digits, not all zero; got {t.trace_id!r}"
        assert re.fullmatch(r"[0-9a-f]{16}", t.parent_id) and t.parent_id.strip("0"), \
            f"parent_id: 16 lower-case hex digits, not all zero; got {t.parent_id!r}"
        assert t.sampled, "new_trace() is sampled by default"
        assert parse(t.format()) is not None, f"a new trace's header must be valid: {t.format()!r}"
    assert len({t.trace_id for t in traces}) == 200, "every new trace needs its own random trace_id"
    assert tp.new_trace(sampled=False).flags == 0, "new_trace(sampled=False) has flags 0"


def test_tracestate_members_in_order():
    header = "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7 ,\tvendor@tenant=x:y"
    got = tp.parse_tracestate(header)
    expected = [("congo", "t61rcWkgMzE"), ("rojo", "00f067aa0ba902b7"), ("vendor@tenant", "x:y")]
    assert got == expected, f"parse_tracestate({header!r}) is {expected}, in order, spaces around members ignored; got {got}"
    assert tp.parse_tracestate("a=1,,b=2, ,") == [("a", "1"), ("b", "2")], \
        "empty list-members are allowed and skipped"
    assert tp.parse_tracestate(None) == [] and tp.parse_tracestate("") == [], "no tracestate: []"


@pytest.mark.parametrize("header, why", [
    ("Congo=1", "keys are lower case"),
    ("congo", "a member without '='"),
    ("congo=", "an empty value"),
    ("congo=a,b c=2", "a space in a key"),
    ("congo=has,comma", "the second member 'comma' has no '='"),
    ("congo=a=b", "'=' inside a value"),
    ("congo=1,congo=2", "a key repeated"),
    (",".join(f"k{n}=v" for n in range(33)), "33 members, more than the 32 allowed"),
])
def test_an_invalid_tracestate_is_dropped_whole(header, why):
    got = tp.parse_tracestate(header)
    assert got == [], f"tracestate {header[:60]!r} is invalid ({why}): drop it all, return []; got {got}"


@pytest.mark.parametrize("header, expected", [
    (",".join(f"k{n}=v" for n in range(32)), [(f"k{n}", "v") for n in range(32)]),
    ("a" * 256 + "=1", [("a" * 256, "1")]),
    ("1abc@sys=x", [("1abc@sys", "x")]),
    ("tenant_1@vendor-x=ok", [("tenant_1@vendor-x", "ok")]),
    ("congo=a b", [("congo", "a b")]),
    ("congo=" + "v" * 256, [("congo", "v" * 256)]),
], ids=["exactly 32 members", "a 256-character key", "a multi-tenant key starting with a digit",
        "tenant@system", "a space inside a value", "a 256-character value"])
def test_the_tracestate_grammar_at_its_edges(header, expected):
    got = tp.parse_tracestate(header)
    assert got == expected, (f"tracestate {header[:50]!r} is valid (W3C Trace Context 3.3.1): expected "
                             f"{expected[:3]}{'...' if len(expected) > 3 else ''}, got {got[:3]}")


@pytest.mark.parametrize("header, why", [
    ("a" * 257 + "=1", "a key of 257 characters"),
    ("1abc=x", "a simple key starting with a digit"),
    ("congo=" + "v" * 257, "a value of 257 characters"),
    ("congo=a\x7fb", "a control character in a value"),
    ("con go=1", "a space in a key"),
    ("tenant@Vendor=1", "an upper-case system id"),
], ids=["257-character key", "digit-first simple key", "257-character value", "DEL in a value",
        "space in a key", "upper-case system"])
def test_the_tracestate_grammar_refuses_just_past_its_edges(header, why):
    got = tp.parse_tracestate(header)
    assert got == [], f"tracestate {header[:50]!r} is invalid ({why}): drop it all, return []; got {got[:3]}"
