"""``aid2e dashboard``: the report's views (:mod:`aid2e.report_page`), served live from a campaign
directory while its controller runs, redrawn every few seconds.

It only reads: the state files (which the controller replaces atomically) and the jobs' output
files. It never takes the campaign's lock, so it runs next to a controller, or after one. It
listens on 127.0.0.1 unless told otherwise. A job's output file is served only when it is a
regular file inside the campaign directory reached without symbolic links (trial directories
are untrusted), and only its last :data:`TAIL_BYTES`.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .errors import ConfigError

log = logging.getLogger(__name__)

#: How much of a job's output file the dashboard sends: its end, where the error usually is.
TAIL_BYTES = 1024 * 1024


class Dashboard:
    """The data and the files of one campaign directory, as the dashboard serves them; the data
    is built again only when the saved state changed (or a running trial's clock moved)."""

    def __init__(self, directory: str | Path, every: float = 5.0) -> None:
        self.directory = Path(directory).expanduser().resolve()
        if not self.directory.is_dir():
            raise ConfigError(f"{directory} is not a campaign directory (give <job_output_dir>/<experiment name>/)")
        self.every = every
        self._lock = threading.Lock()
        self._cached: tuple[Any, float, bytes] | None = None

    def page(self) -> bytes:
        from .report_page import page

        return page(None, live={"url": "data.json", "every": int(self.every * 1000)}, files_base="files/").encode()

    def data(self) -> bytes:
        """The report's data as JSON (built again when the state files changed, or after
        ``every`` seconds while trials run: their durations grow)."""
        from .report_data import build

        stamp = self._stamp()
        now = time.time()
        with self._lock:
            if self._cached is not None and self._cached[0] == stamp and now - self._cached[1] < self.every:
                return self._cached[2]
        body = json.dumps(build(self.directory, now=now), allow_nan=False, default=str).encode()
        with self._lock:
            self._cached = (stamp, now, body)
        return body

    def _stamp(self) -> Any:
        stamps = []
        for name in ("trials.json", "experiment.json"):
            try:
                info = (self.directory / name).stat()
                stamps.append((info.st_mtime_ns, info.st_size, info.st_ino))
            except OSError:
                stamps.append(None)
        return tuple(stamps)

    def file(self, relative: str) -> bytes | None:
        """The end of a job's output file ``relative`` to the campaign directory, or None when it
        is not a regular file reached inside the directory without symbolic links."""
        parts = [p for p in relative.split("/") if p]
        if not parts or any(p in (".", "..") or "\\" in p or "\0" in p for p in parts):
            return None
        where = self.directory
        for part in parts:
            where = where / part
            try:
                info = os.lstat(where)
            except OSError:
                return None
            if stat.S_ISLNK(info.st_mode):
                return None
        if not stat.S_ISREG(info.st_mode):
            return None
        try:
            fd = os.open(where, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > TAIL_BYTES:
                handle.seek(size - TAIL_BYTES)
            return handle.read(TAIL_BYTES)


def handler_for(dashboard: Dashboard) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "aid2e-dashboard"

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = unquote(urlsplit(self.path).path)
            try:
                if path in ("/", "/index.html"):
                    self._send(HTTPStatus.OK, dashboard.page(), "text/html; charset=utf-8")
                elif path == "/data.json":
                    self._send(HTTPStatus.OK, dashboard.data(), "application/json")
                elif path.startswith("/files/"):
                    body = dashboard.file(path[len("/files/"):])
                    if body is None:
                        self._send(HTTPStatus.NOT_FOUND, b"no such output file\n", "text/plain; charset=utf-8")
                    else:
                        self._send(HTTPStatus.OK, body, "text/plain; charset=utf-8")
                elif path == "/favicon.ico":
                    self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
                else:
                    self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")
            except ConfigError as exc:  # the state cannot be read (yet): the page says why and tries again
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, str(exc).encode(), "text/plain; charset=utf-8")
            except Exception as exc:  # one bad request must not stop the dashboard
                log.debug("serving %s failed", path, exc_info=True)
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}: {exc}".encode(),
                           "text/plain; charset=utf-8")

        def _send(self, status: HTTPStatus, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
            log.debug("%s %s", self.address_string(), format % args)

    return Handler


def serve(directory: str | Path, *, host: str = "127.0.0.1", port: int = 8080,
          every: float = 5.0) -> ThreadingHTTPServer:
    """A server for the dashboard of ``directory`` (not yet serving: call ``serve_forever``); a
    one-line ConfigError when the port is taken or the address cannot be used."""
    dashboard = Dashboard(directory, every)
    try:
        server = ThreadingHTTPServer((host, port), handler_for(dashboard))
    except OSError as exc:
        if exc.errno in (98, 48):  # EADDRINUSE (Linux, macOS)
            raise ConfigError(f"port {port} on {host} is taken (another dashboard?): choose another with "
                              "--port") from exc
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    server.daemon_threads = True
    return server


__all__ = ["TAIL_BYTES", "Dashboard", "handler_for", "serve"]
