"""Span recorders for the Day 47 tests that need no global state.

`serve` and `release` (real HTTP servers on free ports) come from the course plugin, `lab.pytest_plugin`.
"""

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


class SpanRecorder:
    """One ``InMemorySpanExporter`` fed by a ``TracerProvider`` per service.

    ``provider("orders")`` is that service's provider (its resource says ``service.name=orders``);
    ``spans()`` lists every finished span of every service. OpenTelemetry's global provider is never
    touched: it can be set only once per process, and each test needs a clean one.
    """

    def __init__(self):
        self.exporter = InMemorySpanExporter()
        self._providers: dict[str, TracerProvider] = {}

    def provider(self, service: str = "test") -> TracerProvider:
        if service not in self._providers:
            provider = TracerProvider(resource=Resource.create({"service.name": service}))
            provider.add_span_processor(SimpleSpanProcessor(self.exporter))
            self._providers[service] = provider
        return self._providers[service]

    def tracer(self, service: str = "test"):
        return self.provider(service).get_tracer("lab.tests")

    def spans(self) -> list:
        return list(self.exporter.get_finished_spans())

    def close(self):
        for provider in self._providers.values():
            provider.shutdown()


@pytest.fixture
def recorder():
    """A ``SpanRecorder``: fresh providers and an in-memory exporter for this test."""
    spans = SpanRecorder()
    yield spans
    spans.close()
