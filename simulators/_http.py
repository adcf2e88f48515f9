"""A small threaded HTTP server that the simulators share.

The simulators stand in for Concourse, GitHub and the Slack Web API on loopback. They use the
standard library's threading server: no event loop to share with the code under test, and a
blocking SSE response simply occupies its own thread, as a real server's connection would.
"""

from __future__ import annotations

import gzip
import json
import re
import select
import socket
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

# Concourse's gzhttp compresses bodies from about 1 KB up; small bodies go out plain.
GZIP_MIN_BYTES = 1024


@dataclass
class Request:
    """What a route handler sees of one HTTP request."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    connection: socket.socket | None = field(default=None, repr=False)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def client_gone(self) -> bool:
        """True once the client has closed the connection (without reading from it).

        A stream that waits for the client to hang up, as Concourse's event stream does after
        `end`, polls this; otherwise it would only notice on its next write.
        """
        if self.connection is None:
            return False
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            # Readable with nothing to peek at = end of file: the peer closed its side.
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True


@dataclass
class Response:
    """A response; `stream` (an iterator of byte chunks) is sent instead of `body` when set."""

    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    stream: Iterator[bytes] | None = None
    compress: bool = True

    @classmethod
    def json(
        cls, payload: Any, status: int = 200, headers: list[tuple[str, str]] | None = None
    ) -> Response:
        return cls(
            status=status,
            body=json.dumps(payload).encode(),
            headers=[("Content-Type", "application/json"), *(headers or [])],
        )

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        return cls(status=status, body=text.encode(), headers=[("Content-Type", "text/plain")])


Handler = Callable[[Request], Response]


class _Server(ThreadingHTTPServer):
    # The stdlib's listen backlog is 5: a burst of concurrent clients (bot, workers, tests)
    # overflows it and the extra connections stall about 1 s in SYN retransmission.
    request_queue_size = 128


class SimulatorServer:
    """Routes requests to handlers; subclasses register routes in `__init__` with `route()`."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.lock = threading.RLock()
        self.requests: list[
            tuple[str, str, int]
        ] = []  # (method, path?query, status), for assertions

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """Register `handler` for `method` and a path regex with named groups."""
        self._routes.append((method, re.compile(f"^{pattern}$"), handler))

    @property
    def url(self) -> str:
        assert self._server is not None, "simulator not started"
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1 (`port` 0 = any free port) from a daemon thread; returns the URL."""
        simulator = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle on, a keep-alive client's
            # delayed ACK stalls every response by ~40 ms.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def _dispatch(self) -> None:
                simulator._handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.daemon_threads = True
        # serve_forever's default 0.5 s poll made every stop() (so every test) wait 0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        request = Request(
            method=h.command,
            path=split.path,
            query=parse_qs(split.query),
            headers={k.lower(): v for k, v in h.headers.items()},
            body=body,
            connection=h.connection,
        )
        response = self._respond(request)
        with self.lock:
            self.requests.append((request.method, h.path, response.status))
        gzip_ok = "gzip" in (request.header("accept-encoding") or "")
        h.send_response(response.status)
        for name, value in response.headers:
            h.send_header(name, value)
        if response.stream is not None:
            self._send_stream(h, response, gzip_ok)
            return
        payload = response.body
        if gzip_ok and response.compress and len(payload) >= GZIP_MIN_BYTES:
            payload = gzip.compress(payload)
            h.send_header("Content-Encoding", "gzip")
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)

    def _send_stream(self, h: BaseHTTPRequestHandler, response: Response, gzip_ok: bool) -> None:
        # Chunked transfer; gzip-compressed with a flush per chunk, as Concourse sends events.
        h.send_header("Transfer-Encoding", "chunked")
        compressor = None
        if gzip_ok and response.compress:
            compressor = zlib.compressobj(wbits=31)
            h.send_header("Content-Encoding", "gzip")
        h.end_headers()
        assert response.stream is not None
        try:
            for chunk in response.stream:
                data = chunk
                if compressor is not None:
                    data = compressor.compress(chunk) + compressor.flush(zlib.Z_SYNC_FLUSH)
                if data:
                    h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    h.wfile.flush()
            if compressor is not None:
                tail = compressor.flush()
                if tail:
                    h.wfile.write(f"{len(tail):x}\r\n".encode() + tail + b"\r\n")
            h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            # The client closed the stream (it saw `end`): exactly what a well-behaved client does.
            return

    def _respond(self, request: Request) -> Response:
        for method, pattern, handler in self._routes:
            if method != request.method:
                continue
            match = pattern.match(request.path)
            if match:
                request.params = match.groupdict()
                try:
                    return handler(request)
                except Exception as exc:  # a simulator bug must show up as a 500, not a hang
                    return Response.text(f"simulator error: {exc!r}", status=500)
        return Response.text("404 page not found", status=404)


def link_header(url: str, rel: str) -> tuple[str, str]:
    """One RFC 5988 `Link` header line, as Concourse and GitHub send them (one per relation)."""
    return ("Link", f'<{url}>; rel="{rel}"')
