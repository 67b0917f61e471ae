"""Show the traces in a file of exported spans as waterfalls in the terminal: Jaeger's view, offline.

The examples of Day 47 (and your own services, with the exporter of ``examples/03_tracing_http.py``)
write one JSON object per finished span to a file ("JSON lines")::

    {"trace_id": "4bf9...", "span_id": "00f0...", "parent_span_id": "a3ce..." or null,
     "name": "GET /stock/<sku>", "kind": "SERVER", "service.name": "inventory",
     "start_ns": 1700000000000000000, "end_ns": 1700000000002000000,
     "status": {"code": "OK" | "ERROR" | "UNSET", "description": null},
     "attributes": {...}, "events": [{"name": "...", "time_ns": ..., "attributes": {...}}]}

Usage, from the repository root:

    python Day-47-Observability/trace_viewer.py spans.jsonl               # list the traces
    python Day-47-Observability/trace_viewer.py spans.jsonl --trace 4bf9  # one trace (an ID prefix will do)

A waterfall has one row per span, children under their parent and indented, in start order: when
the span started (milliseconds after the trace's first span), how long it took, its status, its
service and name, and a bar on a timeline scaled to the whole trace. Events (an exception, a
retry, a cache miss) are listed under their span. A span whose parent is not in the file (the
parent's service exports elsewhere, or never exported) is shown at the top level and marked.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

BAR = "█" if (sys.stdout.encoding or "").lower().replace("-", "").startswith("utf") else "#"


def load_spans(path: Path) -> list[dict]:
    """Every span in a JSON-lines file; blank lines are skipped, a malformed line is an error."""
    spans = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            span = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}, line {number}: not JSON ({error.msg})") from None
        missing = {"trace_id", "span_id", "name", "start_ns", "end_ns"} - span.keys()
        if missing:
            raise ValueError(f"{path}, line {number}: a span needs {sorted(missing)}")
        spans.append(span)
    return spans


def group_by_trace(spans: list[dict]) -> dict[str, list[dict]]:
    traces: dict[str, list[dict]] = defaultdict(list)
    for span in spans:
        traces[span["trace_id"]].append(span)
    return dict(sorted(traces.items(), key=lambda item: min(s["start_ns"] for s in item[1])))


def status_of(span: dict) -> str:
    return (span.get("status") or {}).get("code", "UNSET")


def root_of(trace: list[dict]) -> dict:
    ids = {span["span_id"] for span in trace}
    roots = [span for span in trace if span.get("parent_span_id") not in ids]
    return min(roots or trace, key=lambda span: span["start_ns"])


def list_traces(traces: dict[str, list[dict]]) -> list[str]:
    lines = [f"{'trace id':32}  {'spans':>5}  {'ms':>9}  {'errors':>6}  root span (services)"]
    for trace_id, trace in traces.items():
        root = root_of(trace)
        start, end = min(s["start_ns"] for s in trace), max(s["end_ns"] for s in trace)
        errors = sum(status_of(s) == "ERROR" for s in trace)
        services = ", ".join(sorted({s.get("service.name", "?") for s in trace}))
        lines.append(
            f"{trace_id:32}  {len(trace):>5}  {(end - start) / 1e6:>9.2f}  {errors:>6}  "
            f"{root.get('service.name', '?')}: {root['name']} ({services})"
        )
    return lines


def waterfall(trace: list[dict], width: int = 40) -> list[str]:
    """The rows of one trace: parents before children, siblings in start order, bars to scale."""
    t0 = min(span["start_ns"] for span in trace)
    total = max(max(span["end_ns"] for span in trace) - t0, 1)
    ids = {span["span_id"] for span in trace}
    children: dict[str | None, list[dict]] = defaultdict(list)
    for span in trace:
        parent = span.get("parent_span_id")
        children[parent if parent in ids else None].append(span)
    services = sorted({span.get("service.name", "?") for span in trace})
    lines = [
        f"trace {trace[0]['trace_id']}: {len(trace)} spans, {len(services)} services "
        f"({', '.join(services)}), {total / 1e6:.2f} ms",
        f"{'start ms':>9} {'dur ms':>8}  {'status':6} {'service':14} {'span':40} timeline",
    ]

    def row(span: dict, depth: int) -> None:
        start, duration = span["start_ns"] - t0, span["end_ns"] - span["start_ns"]
        left = min(int(start / total * width), width - 1)
        length = max(1, round(duration / total * width))
        bar = " " * left + BAR * min(length, width - left)
        orphan = " (parent not in file)" if depth == 0 and span.get("parent_span_id") else ""
        label = ("  " * depth + span["name"] + orphan)[:40]
        lines.append(
            f"{start / 1e6:>9.2f} {duration / 1e6:>8.2f}  {status_of(span):6} "
            f"{span.get('service.name', '?')[:14]:14} {label:40} |{bar:{width}}|"
        )
        for event in span.get("events", []):
            detail = event.get("attributes", {}).get("exception.message", "")
            at = (event["time_ns"] - t0) / 1e6
            note = f"{event['name']}: {detail}" if detail else event["name"]
            lines.append(f"{'':42}{'  ' * depth}  · {at:.2f} ms {note}")
        for child in sorted(children.get(span["span_id"], []), key=lambda s: s["start_ns"]):
            row(child, depth + 1)

    for root in sorted(children[None], key=lambda s: s["start_ns"]):
        row(root, 0)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Show file-exported spans as terminal waterfalls.")
    parser.add_argument("spans", type=Path, help="a JSON-lines file of spans")
    parser.add_argument("--trace", help="the trace to show (a unique prefix of its ID will do)")
    parser.add_argument("--width", type=int, default=40, help="columns of the timeline (default 40)")
    args = parser.parse_args(argv)
    try:
        traces = group_by_trace(load_spans(args.spans))
    except (OSError, ValueError) as error:
        print(f"trace_viewer: {error}", file=sys.stderr)
        return 1
    if not args.trace:
        print("\n".join(list_traces(traces)))
        print(f"{len(traces)} traces; show one with --trace ID")
        return 0
    matches = [trace_id for trace_id in traces if trace_id.startswith(args.trace.lower())]
    if len(matches) != 1:
        found = "no trace" if not matches else f"{len(matches)} traces"
        print(f"trace_viewer: {found} in {args.spans} with an ID starting {args.trace!r}", file=sys.stderr)
        return 1
    print("\n".join(waterfall(traces[matches[0]], max(args.width, 10))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
