"""nginx as a reverse proxy in front of one upstream, for the bench's anchor: what a proxy that does
nothing but forward costs on this machine, beside what the gateway costs.

nginx runs in the foreground (``daemon off``) from a config, error log and pid file generated in a
temporary folder, on a free port, and is stopped when the ``with`` block ends.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

NGINX = Path("/usr/sbin/nginx")

CONFIG = """\
worker_processes 1;
error_log {folder}/error.log warn;
pid {folder}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {folder}/client-body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    upstream service {{
        server 127.0.0.1:{upstream_port};
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://service;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def nginx_available() -> bool:
    return NGINX.exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def nginx_proxy(upstream_port: int, start_timeout: float = 10.0) -> Iterator[tuple[str, int]]:
    """(``http://127.0.0.1:<port>``, the master's pid): nginx forwarding every path to
    ``127.0.0.1:<upstream_port>``."""
    folder = Path(tempfile.mkdtemp(prefix="day48-bench-nginx-"))
    port = free_port()
    config = folder / "nginx.conf"
    config.write_text(CONFIG.format(folder=folder, upstream_port=upstream_port, port=port), encoding="utf-8")
    error_log, stderr_log = folder / "error.log", folder / "stderr.log"  # stderr: what it says before its log opens
    with open(stderr_log, "wb") as stderr:
        process = subprocess.Popen([str(NGINX), "-c", str(config), "-p", str(folder), "-g", "daemon off;"],
                                   stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + start_timeout
        while not accepts_connections(port):  # a bounded poll: nginx says nothing once it listens
            if process.poll() is not None or time.monotonic() > deadline:
                said = stderr_log.read_text(errors="replace") + (
                    error_log.read_text(errors="replace") if error_log.exists() else "")
                raise RuntimeError(f"nginx is not listening on port {port} (exit status {process.poll()}): {said}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()  # SIGTERM: nginx's fast shutdown
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)
