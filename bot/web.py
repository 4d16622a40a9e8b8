"""The WSGI app of `chatops web`: /slack/events, /pagerduty/webhook, /healthz, /metrics.

Production: `gunicorn 'bot.web:create_app()'`. Development: `chatops web` (a threaded wsgiref server).
Capabilities add endpoints with `@capability.route("POST", "/path")` (bot.registry); a route receives
(services, HttpRequest).
Bad input gets a 4xx; a bug gets a 500 with a correlation id that is also logged, never a trace.
"""

from __future__ import annotations

import json
import logging
import socketserver
import threading
import time
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from bot.errors import StoreUnavailable, new_correlation_id

log = logging.getLogger(__name__)


@dataclass
class HttpRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class HttpResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})

    @classmethod
    def json(cls, status: int, obj: object) -> HttpResponse:
        return cls(status, json.dumps(obj).encode())


_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


class WebApp:
    def __init__(self, services):
        from bot.adapters.slack_app import SlackGateway

        self.services = services
        self.slack = SlackGateway(services)
        self.max_body = services.settings.CHATOPS_MAX_BODY_BYTES
        self.routes = services.registry.routes

    def __call__(self, environ, start_response):
        started = time.monotonic()
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO", "/") or "/"
        try:
            resp = self._handle(environ, method, path)
        except StoreUnavailable as exc:
            log.warning("store unavailable", extra={"path": path, "error": str(exc)})
            resp = HttpResponse.json(503, {"error": "store unavailable, retry later"})
        except Exception:  # noqa: BLE001 - a bug must become a 500 with a correlation id, not a trace
            cid = new_correlation_id()
            log.exception("bug while serving a request", extra={"path": path, "correlation_id": cid})
            resp = HttpResponse.json(500, {"error": "internal error", "correlation_id": cid})
        label = path if path in _KNOWN_PATHS or (method, path) in self.routes else "other"
        self.services.metrics.requests.labels(label, str(resp.status)).inc()
        self.services.metrics.request_seconds.labels(label).observe(time.monotonic() - started)
        headers = [(k, v) for k, v in resp.headers.items()] + [("Content-Length", str(len(resp.body)))]
        start_response(f"{resp.status} {_REASONS.get(resp.status, 'Status')}", headers)
        return [resp.body]

    def _handle(self, environ, method: str, path: str) -> HttpResponse:
        if path == "/healthz" and method in ("GET", "HEAD"):
            return self._healthz()
        if path == "/metrics" and method == "GET":
            return HttpResponse(
                200, self.services.metrics.render(), {"content-type": self.services.metrics.content_type}
            )
        if path == "/slack/events":
            if method != "POST":
                return HttpResponse.json(405, {"error": "use POST"})
            req = self._read(environ, method, path, self.max_body)
            if isinstance(req, HttpResponse):
                return req
            status, headers, body = self.slack.handle(req.body, req.headers)
            headers.setdefault("content-type", "text/plain; charset=utf-8")
            return HttpResponse(status, body, headers)
        found = self.routes.get((method, path))
        if found is None:
            if any(p == path for (_, p) in self.routes):
                return HttpResponse.json(405, {"error": "method not allowed"})
            return HttpResponse.json(404, {"error": "not found"})
        req = self._read(environ, method, path, found.max_body or self.max_body)
        if isinstance(req, HttpResponse):
            return req
        return found.fn(self.services, req)

    def _healthz(self) -> HttpResponse:
        ok = self.services.store.ping()
        body = {"status": "ok" if ok else "store unreachable", "store": self.services.store.backend}
        return HttpResponse.json(200 if ok else 503, body)

    @staticmethod
    def _read(environ, method: str, path: str, limit: int) -> HttpRequest | HttpResponse:
        raw_length = environ.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw_length)
        except ValueError:
            return HttpResponse.json(400, {"error": "bad Content-Length"})
        if length < 0:
            return HttpResponse.json(400, {"error": "bad Content-Length"})
        if length > limit:
            if length <= 16 * limit:  # read (and drop) a plausible body so the client sees our 413;
                _discard(environ["wsgi.input"], length, cap=16 * limit)  # an absurd one is not waited for
            return HttpResponse.json(413, {"error": f"body larger than {limit} bytes"})
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        return HttpRequest(method, path, environ.get("QUERY_STRING", ""), headers, body)


_KNOWN_PATHS = {"/slack/events", "/healthz", "/metrics"}


def _discard(stream, length: int, cap: int) -> None:
    """Read (and drop) an oversized body so the client sees our 413 instead of a reset connection."""
    remaining = min(length, cap)
    while remaining > 0:
        chunk = stream.read(min(65536, remaining))
        if not chunk:
            break
        remaining -= len(chunk)


def create_app(services=None) -> WebApp:
    """WSGI factory (gunicorn: `bot.web:create_app()`). Reads settings from the environment when not given."""
    if services is None:
        from bot.config import load_settings
        from bot.logs import configure_logging
        from bot.services import Services

        settings = load_settings()
        configure_logging(settings.CHATOPS_LOG_LEVEL)
        services = Services(settings)
    return WebApp(services)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):  # access logs go through our JSON logger instead
        pass

    def handle(self):
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError):
            pass


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def serve(app: WebApp, host: str = "127.0.0.1", port: int = 8080) -> WSGIServer:
    """Start a threaded development server in the background; returns it (server.server_port)."""
    server = make_server(host, port, app, server_class=ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="chatops-web", daemon=True
    ).start()
    return server
