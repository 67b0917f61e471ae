"""The request body as every web process reads it: bounded in size however it is framed, bounded in
time however slowly it arrives, and a 400 (not a 500) when the HTTP server cannot parse it.

Flask's ``MAX_CONTENT_LENGTH`` refuses a declared ``Content-Length`` over the limit, but a chunked
body has no length to declare: Werkzeug then stops reading at the limit and hands the application
the first 64 KiB, which a JSON parser refuses as malformed (a 400 where the contract says 413), so
the limit is this module's instead. A
malformed chunk (``-2\\r\\n``) makes gunicorn's body reader raise an exception of its own, which
would reach the application's catch-all as a 500. And a client that sends its body a byte every few
seconds holds a worker for as long as it likes. ``guard_request_body`` wraps the WSGI input stream:
past ``max_bytes`` it raises 413, when the server's reader fails it raises 400, and once the body
has taken more than ``seconds`` it raises 408, each answered as problem+json by the chassis's
handlers, and what is left of the body is never read (``abandon_body``).
"""

from __future__ import annotations

import contextlib
import io
import socket
import time
from collections.abc import Callable

from flask import Flask, Response, request
from gevent import Timeout
from gevent.monkey import is_module_patched
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge, RequestTimeout

CLOSE = "chassis.close_connection"  # set in the WSGI environ when the body was abandoned part-way


class GuardedInput(io.RawIOBase):
    """A WSGI input stream that enforces a size limit and a deadline and names a parse failure."""

    def __init__(self, stream, environ: dict, max_bytes: int, seconds: float,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.stream, self.environ, self.max_bytes = stream, environ, max_bytes
        self.clock = clock
        self.deadline = clock() + seconds
        self.seconds = seconds
        self.taken = 0
        # gunicorn hands the connection's socket over: a read waits at most until the deadline.
        self.sock = environ.get("gunicorn.socket")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        return self._take(lambda: self.stream.read(*self._size(size)))

    def readline(self, size: int = -1) -> bytes:
        return self._take(lambda: self.stream.readline(*self._size(size)))

    def _size(self, size: int | None) -> tuple[int, ...]:
        # Never ask for more than one byte past the limit: going over is all that needs knowing.
        allowed = self.max_bytes - self.taken + 1
        return (allowed if size is None or size < 0 else min(size, allowed),)

    # --8<-- [start:take]
    def _take(self, read: Callable[[], bytes]) -> bytes:
        remaining = self.deadline - self.clock()
        if remaining <= 0:
            self._abandon(RequestTimeout(f"The request body did not arrive within {self.seconds:g} s."))
        previous = self._set_timeout(remaining)
        try:
            with deadline(remaining):
                data = read()
        except TimeoutError:
            self._abandon(RequestTimeout(f"The request body did not arrive within {self.seconds:g} s."))
        except HTTPException:
            raise
        except OSError:
            raise  # the client went away: nothing to answer
        except Exception as error:  # the server's HTTP parser refused the framing (a bad chunk size, ...)
            self._abandon(BadRequest(f"The request body is malformed: {error or type(error).__name__}."))
        finally:
            self._set_timeout(previous)
        self.taken += len(data)
        if self.taken > self.max_bytes:
            self._abandon(RequestEntityTooLarge(f"The request body is larger than {self.max_bytes} bytes."))
        return data
    # --8<-- [end:take]

    def _set_timeout(self, seconds: float | None) -> float | None:
        if self.sock is None:
            return None
        previous = self.sock.gettimeout()
        self.sock.settimeout(seconds)
        return previous

    def _abandon(self, error: HTTPException):
        abandon_body(self.environ)
        raise error


def deadline(seconds: float):
    """A bound on one whole read, however many receives it takes (a trickle passes every per-receive
    timeout): gevent's ``Timeout`` under the gevent worker, where the web processes run; elsewhere
    (tests, other servers) nothing more than the socket's timeout."""
    return Timeout(seconds, TimeoutError) if is_module_patched("socket") else contextlib.nullcontext()


# --8<-- [start:abandon_body]
def abandon_body(environ: dict) -> None:
    """Read no more of this request: the connection closes after the answer. gunicorn ignores a
    ``Connection: close`` from the application and would read the rest of the body before the next
    request (as slowly as the client sends it), so the socket's reading side is shut: the answer
    still goes out, and the next read is the end of the connection."""
    environ[CLOSE] = True
    sock = environ.get("gunicorn.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass  # the client has gone already
# --8<-- [end:abandon_body]


def guard_request_body(app: Flask, max_bytes: int, seconds: float = 10.0) -> None:
    """Every request's body read through ``GuardedInput``; the connection closed after a body abandoned part-way."""
    inner = app.wsgi_app

    def guarded(environ, start_response):
        environ["wsgi.input"] = GuardedInput(environ["wsgi.input"], environ, max_bytes, seconds)
        return inner(environ, start_response)

    app.wsgi_app = guarded

    @app.before_request
    def refuse_a_declared_length_over_the_limit() -> None:
        if request.content_length is not None and request.content_length > max_bytes:
            abandon_body(request.environ)
            raise RequestEntityTooLarge(f"The request body is larger than {max_bytes} bytes.")

    @app.after_request
    def close_after_an_abandoned_body(response: Response) -> Response:
        if request.environ.get(CLOSE):
            response.headers["Connection"] = "close"
        return response
