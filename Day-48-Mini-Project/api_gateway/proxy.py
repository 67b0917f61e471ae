"""Forwarding one request to an instance of an upstream, and its answer back to the client.

Header hygiene, both ways: hop-by-hop fields (RFC 9110, section 7.6.1: Connection, the fields it
names, Keep-Alive, TE, Transfer-Encoding, Upgrade, Proxy-*) never cross the gateway; the client's
``X-User-*``, ``X-Internal-*``, ``X-Forwarded-*`` and ``Forwarded`` never reach a service, which
could otherwise believe a client's word about who it is or where it comes from. The gateway writes
``X-Forwarded-For/-Proto/-Host`` from the TCP peer, ``X-Request-ID``, ``Via`` and ``traceparent``.
``Authorization`` goes on unchanged: every service verifies the token again.

Failures: a read timeout is a 504 at once; a connection that cannot be made is retried once on
another instance for ``GET``/``HEAD`` (never for a ``POST``: the gateway cannot know it was not
acted on), then a 502 (504 if the connect timed out). Every outcome is reported to the instance's
circuit breaker; when every instance's breaker is open the answer is a 503 with ``Retry-After``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import requests
import urllib3
from chassis.tracing import client_span
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from api_gateway.balancing import RoundRobinBalancer
from api_gateway.circuit_breaker import CircuitBreakers
from api_gateway.discovery import RegistryUnavailable
from api_gateway.gateway_metrics import GatewayMetrics

log = logging.getLogger(__name__)

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer", "trailers",
                        "transfer-encoding", "upgrade", "proxy-authenticate", "proxy-authorization"})
# Set by the HTTP client for the upstream connection, or by the gateway itself below.
REPLACED_ON_REQUEST = frozenset({"host", "content-length", "forwarded", "via", "x-request-id", "expect",
                                 "traceparent", "tracestate", "baggage"})
SPOOFABLE_PREFIXES = ("x-user-", "x-internal-", "x-forwarded-")
# The server in front of the client writes its own; two Date fields would be a protocol error.
REPLACED_ON_RESPONSE = frozenset({"date", "server"})
RETRYABLE_METHODS = frozenset({"GET", "HEAD"})
CHUNK_BYTES = 64 * 1024
VIA = "1.1 api-gateway"


def hop_by_hop(headers: Iterable[tuple[str, str]]) -> set[str]:
    """The lower-case names of the hop-by-hop fields, those that ``Connection`` names included."""
    named = {token.strip().lower() for name, value in headers if name.lower() == "connection"
             for token in value.split(",") if token.strip()}
    return set(HOP_BY_HOP) | named


def upstream_request_headers(incoming: list[tuple[str, str]], *, peer: str, proto: str, host: str,
                             request_id: str) -> list[tuple[str, str]]:
    """The client's headers as an upstream gets them: cleaned, then the gateway's own added."""
    drop = hop_by_hop(incoming) | REPLACED_ON_REQUEST
    kept = [(name, value) for name, value in incoming
            if name.lower() not in drop and not name.lower().startswith(SPOOFABLE_PREFIXES)]
    return kept + [("X-Forwarded-For", peer), ("X-Forwarded-Proto", proto), ("X-Forwarded-Host", host),
                   ("X-Request-ID", request_id), ("Via", VIA)]


def header_dict(headers: list[tuple[str, str]]) -> dict[str, str]:
    """One value per name, as the HTTP client takes them; repeated fields join with commas (RFC 9110, 5.3)."""
    merged: dict[str, str] = {}
    names: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        if key in names:
            merged[names[key]] += f", {value}"
        else:
            names[key] = name
            merged[name] = value
    return merged


def downstream_response_headers(upstream: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The upstream's headers as the client gets them (its Content-Length and -Encoding stay true:
    the body goes on byte for byte)."""
    upstream = list(upstream)
    drop = hop_by_hop(upstream) | REPLACED_ON_RESPONSE
    return [(name, value) for name, value in upstream if name.lower() not in drop]


@dataclass(frozen=True)
class OutgoingRequest:
    method: str
    path: str  # percent-encoded upstream path
    query: str  # raw query string, without '?'
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class UpstreamAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: Iterable[bytes]
    close: Callable[[], None]

    @property
    def sheds_load(self) -> bool:
        """A 503 with ``Retry-After``: the upstream is alive and turning work away until then."""
        return self.status == 503 and any(name.lower() == "retry-after" for name, _ in self.headers)


class UpstreamFailure(Exception):
    """No usable answer from the upstream: the gateway answers ``status`` as a problem."""

    def __init__(self, status: int, detail: str, retry_after: float | None = None):
        super().__init__(detail)
        self.status, self.detail, self.retry_after = status, detail, retry_after


class BadOutgoingHeader(ValueError):
    """The client sent a header value no HTTP client will send on (a 400, not a 500)."""


def connection_pool(connections_per_instance: int = 32) -> urllib3.PoolManager:
    """Kept-alive connections to the upstreams, through urllib3 itself: a proxy needs no cookie jar,
    no proxy settings from the environment and no redirects of its own, and urllib3 alone costs a
    fraction of the CPU that building a ``requests`` request does on every call. No retries either:
    the gateway decides what may be tried again (``Forwarder.forward``)."""
    return urllib3.PoolManager(num_pools=16, maxsize=connections_per_instance, block=False, retries=False)


class Forwarder:
    def __init__(self, registry, balancer: RoundRobinBalancer, breakers: CircuitBreakers,
                 metrics: GatewayMetrics, *, connect_timeout: float, read_timeout: float,
                 pool: urllib3.PoolManager | None = None):
        self.registry, self.balancer, self.breakers, self.metrics = registry, balancer, breakers, metrics
        self.timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self.pool = pool or connection_pool()

    def forward(self, service: str, outgoing: OutgoingRequest) -> UpstreamAnswer:
        try:
            instances = self.registry.instances(service)
        except RegistryUnavailable as error:
            log.error("no instances of %s: %s", service, error)
            self.metrics.upstream_requests.labels(service, "no_instance").inc()
            raise UpstreamFailure(503, f"The {service} cannot be found right now.", retry_after=5) from None
        if not instances:
            self.metrics.upstream_requests.labels(service, "no_instance").inc()
            raise UpstreamFailure(503, f"No instance of the {service} is available.", retry_after=5)
        for header in outgoing.headers:
            try:
                requests.utils.check_header_validity(header)
            except requests.exceptions.InvalidHeader as error:
                raise BadOutgoingHeader(str(error)) from None
        attempts = 2 if outgoing.method in RETRYABLE_METHODS else 1
        failure: UpstreamFailure | None = None
        for url in self.balancer.candidates(service, instances):
            breaker = self.breakers.for_instance(service, url)
            if not breaker.allow():
                continue
            attempts -= 1
            try:
                answer = self._send(service, url, outgoing)
            except _Retryable as error:
                breaker.record_failure()
                failure = error.failure
                if attempts:
                    log.warning("retrying %s %s on another instance: %s", outgoing.method, service, error.failure.detail)
                    continue
                raise failure from None
            except UpstreamFailure:
                breaker.record_failure()
                raise
            except BadOutgoingHeader:
                breaker.cancel()
                raise
            if answer.sheds_load:
                breaker.cancel()  # shedding load (a login storm): alive and quick, so no verdict either way
            elif answer.status >= 500:
                breaker.record_failure()
            else:
                breaker.record_success()
            return answer
        if failure is not None:
            raise failure
        self.metrics.upstream_requests.labels(service, "circuit_open").inc()
        wait = min((self.breakers.for_instance(service, url).retry_after() for url in instances), default=1.0)
        raise UpstreamFailure(503, f"The {service} is failing; the gateway is giving it a rest.",
                              retry_after=max(1, math.ceil(wait)))

    def _send(self, service: str, base_url: str, outgoing: OutgoingRequest) -> UpstreamAnswer:
        url = base_url + outgoing.path + (f"?{outgoing.query}" if outgoing.query else "")
        started = time.perf_counter()
        outcome = "ok"
        try:
            with client_span(outgoing.method, url, name=f"{outgoing.method} {service}") as trace_headers:
                span = trace.get_current_span()
                span.set_attribute("server.address", base_url)
                headers = header_dict(outgoing.headers + list(trace_headers.items()))
                sent = {name.lower() for name in headers}
                # urllib3 would add its own when the client sent none: the upstream gets the client's only.
                headers.update({name: urllib3.util.SKIP_HEADER for name in ("User-Agent", "Accept-Encoding")
                                if name.lower() not in sent})
                try:
                    response = self.pool.request(
                        outgoing.method, url, headers=headers, body=outgoing.body or None, timeout=self.timeout, redirect=False,
                        preload_content=False, decode_content=False)
                except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ProtocolError) as error:
                    # Refused, reset or closed before an answer (checked first: a NewConnectionError is
                    # also a ConnectTimeoutError).
                    outcome = "connection_error"
                    span.set_status(Status(StatusCode.ERROR, outcome))
                    raise _Retryable(UpstreamFailure(502, f"The {service} could not be reached.")) from error
                except urllib3.exceptions.ConnectTimeoutError as error:
                    outcome = "connect_timeout"
                    span.set_status(Status(StatusCode.ERROR, outcome))
                    raise _Retryable(UpstreamFailure(504, f"The {service} did not accept a connection "
                                                          f"within {self.timeout.connect_timeout:g} s.")) from error
                except urllib3.exceptions.ReadTimeoutError:
                    outcome = "timeout"
                    span.set_status(Status(StatusCode.ERROR, outcome))
                    raise UpstreamFailure(504, f"The {service} did not answer within "
                                               f"{self.timeout.read_timeout:g} s.") from None
                except urllib3.exceptions.HTTPError as error:
                    outcome = "error"
                    span.set_status(Status(StatusCode.ERROR, outcome))
                    raise UpstreamFailure(502, f"The {service} sent no valid HTTP answer.") from error
                except ValueError as error:  # http.client refuses a header value it cannot send
                    outcome = "bad_request"
                    raise BadOutgoingHeader(str(error)) from None
                span.set_attribute("http.response.status_code", response.status)
                if response.status >= 500:
                    outcome = "server_error"
                    span.set_status(Status(StatusCode.ERROR))
        finally:
            self.metrics.upstream_requests.labels(service, outcome).inc()
            self.metrics.upstream_duration.labels(service).observe(time.perf_counter() - started)
        body = StreamedBody(response, service)
        return UpstreamAnswer(response.status, downstream_response_headers(response.headers.items()), body, body.close)


class _Retryable(Exception):
    """The request never reached the upstream: a safe method may go to another instance."""

    def __init__(self, failure: UpstreamFailure):
        super().__init__(failure.detail)
        self.failure = failure


class StreamedBody:
    """The upstream's body in chunks, as it arrives, still encoded as the upstream sent it. Its
    connection goes back to the pool once the body has been read to the end, and is closed when it
    has not (a client that went away): bytes left unread would be taken for the next answer on it."""

    def __init__(self, response: urllib3.BaseHTTPResponse, service: str):
        self.response, self.service, self.read_to_the_end = response, service, False

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self.response.stream(CHUNK_BYTES, decode_content=False)
            self.read_to_the_end = True
        except (urllib3.exceptions.HTTPError, OSError) as error:
            # The status line is already on its way to the client: all that is left is to cut it short.
            log.warning("the %s broke off its answer: %s", self.service, error)
        finally:
            self.close()

    def close(self) -> None:
        if not self.read_to_the_end:
            self.response.close()
        self.response.release_conn()
