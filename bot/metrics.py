"""Prometheus metrics on a registry of our own (one per process, never the global default).

Capabilities create their metrics through `metrics.counter(...)` / `histogram(...)` / `gauge(...)`;
the same name returns the same collector, so modules need not coordinate.
"""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._lock = threading.Lock()
        self._collectors: dict[str, object] = {}
        self.requests = self.counter("chatops_http_requests_total", "HTTP requests", ["path", "status"])
        self.request_seconds = self.histogram(
            "chatops_http_request_seconds", "HTTP request latency", ["path"]
        )
        self.jobs = self.counter("chatops_jobs_total", "Task-queue jobs", ["job", "outcome"])
        self.api_calls = self.counter(
            "chatops_api_calls_total", "Vendor API calls", ["provider", "action", "outcome"]
        )
        self.retries = self.counter("chatops_api_retries_total", "Vendor API retries", ["provider", "action"])
        self.dedupe_hits = self.counter("chatops_dedupe_total", "Dedupe claims", ["source", "status"])

    def _get(self, kind, name, doc, labels, **kw):
        with self._lock:
            found = self._collectors.get(name)
            if found is None:
                found = kind(name, doc, labels or (), registry=self.registry, **kw)
                self._collectors[name] = found
            return found

    def counter(self, name: str, doc: str, labels: list[str] | None = None) -> Counter:
        return self._get(Counter, name, doc, labels)

    def gauge(self, name: str, doc: str, labels: list[str] | None = None) -> Gauge:
        return self._get(Gauge, name, doc, labels)

    def histogram(self, name: str, doc: str, labels: list[str] | None = None, buckets=None) -> Histogram:
        kw = {"buckets": buckets} if buckets else {}
        return self._get(Histogram, name, doc, labels, **kw)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve `GET /metrics` of this registry in the background (a process without the web app,
        e.g. `chatops worker --metrics-port`). Returns the port (a free one for 0)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server.server_port
