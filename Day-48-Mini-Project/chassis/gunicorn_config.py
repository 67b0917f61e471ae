"""How gunicorn runs every web process (``gunicorn -c python:chassis.gunicorn_config ...``): the
Procfile and the Dockerfile name this module, so the server's settings live in one place.

One worker process per instance (scale by running more instances, each its own process: Day 44's
load balancing and the consumers' competing, not gunicorn's pre-fork), with gevent: up to
``worker_connections`` connections at once, each waiting cheaply (chassis/http_worker.py).
"""

# --8<-- [start:settings]
worker_class = "chassis.http_worker.Worker"
workers = 1
worker_connections = 1000
# The headers of a request, and the wait for the next one on a kept-alive connection, end after this.
keepalive = 5
graceful_timeout = 5
# gunicorn's own limits on what it parses before the application sees anything (its defaults, named
# here because the answers they give are part of the contract: 414 and 431, as problem+json).
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
# --8<-- [end:settings]
