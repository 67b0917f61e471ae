"""The HTTP server under every web process: gunicorn's gevent worker, with the edge made for slow
clients and for answers in the contract.

- **Slow clients cost a greenlet, not a thread.** A thread-per-connection worker (gunicorn's
  ``gthread``) is taken offline by as many clients as it has threads, each sending half a request
  and waiting; with gevent every connection waits in a greenlet of its own, and ``keepalive``
  seconds (chassis/gunicorn_config.py) bound how long the headers of a request may take.
  ``READ_SECONDS`` bounds each read after that; chassis/request_body.py bounds the whole body.
- **Every error is problem+json.** gunicorn answers what it cannot parse itself (a request line
  over its limit: 414, too many or too large headers: 431, conflicting framing: 400, an unknown
  transfer coding: 501) with an HTML page. ``Worker`` keeps gunicorn's choice of status and writes
  the answer as RFC 9457 problem details, as the application does.
"""

from __future__ import annotations

import json

from gunicorn import util
from gunicorn.workers.ggevent import GeventWorker

READ_SECONDS = 10.0  # a client silent this long in the middle of a request is dropped


def write_problem(sock, status: int, reason: str, message: str) -> None:
    """gunicorn's ``util.write_error``, in problem+json: the connection closes after it."""
    body = json.dumps({"type": "about:blank", "title": reason, "status": status,
                       "detail": message or reason}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/problem+json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


# --8<-- [start:worker]
class Worker(GeventWorker):
    def init_process(self):
        # gunicorn writes its own error answers through this one function; in this worker process
        # they are problem details.
        util.write_error = write_problem
        super().init_process()

    def handle(self, listener, client, addr):
        client.settimeout(READ_SECONDS)
        super().handle(listener, client, addr)
# --8<-- [end:worker]
