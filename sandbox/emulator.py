"""Base of the wire-level emulators: a threaded HTTP(S) server on 127.0.0.1 that records every call.

An emulator subclasses `Emulator` and implements `handle(request) -> Response`. It registers itself
for the sandbox with `register_emulator(EmulatorSpec(...))`, saying which settings (environment
variables of the bot) point at it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import shutil
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Request:
    method: str
    raw_path: str  # path + query exactly as received (signatures need it verbatim)
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    received_at: float = field(default_factory=time.time)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return cls(status, json.dumps(obj).encode(), h)


@dataclass
class Call:
    """One recorded request and what the emulator answered."""

    name: str  # the API method / action
    request: Request
    status: int
    response: Any = None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        # Headers and body go out as two writes; without TCP_NODELAY, Nagle + the client's delayed ACK
        # add ~40 ms to every call, which would swamp the latencies the emulators are meant to model.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) < length:  # the client went away mid-request (killed): a service never sees it
            self.close_connection = True
            return
        parts = urlsplit(self.path)
        req = Request(
            method=self.command,
            raw_path=self.path,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            resp = self.server.emulator.handle(req)
        except Exception as exc:  # noqa: BLE001 - an emulator bug answers 500 like a broken server would
            resp = Response.json({"error": f"emulator error: {exc!r}"}, status=500)
        try:
            self.send_response(resp.status)
            for k, v in resp.headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(resp.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(resp.body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    emulator: Emulator


class Emulator:
    """Subclass and implement `handle`. `start()` binds 127.0.0.1 on a free port (or `port`)."""

    name = "emulator"

    def __init__(self, port: int = 0, tls: bool = False):
        self._port = port
        self.tls = tls
        self.calls: list[Call] = []
        self._calls_lock = threading.Lock()
        self._server: _Server | None = None
        self.ca_file: Path | None = None
        self._tls_dir: str | None = None

    # lifecycle -------------------------------------------------------------------------------------
    def start(self) -> Emulator:
        server = _Server(("127.0.0.1", self._port), _Handler)
        server.emulator = self
        if self.tls:
            # The certificate and key live in a directory of their own, removed again by stop().
            self._tls_dir = tempfile.mkdtemp(prefix="chatops-tls-")
            cert, key = make_self_signed_cert(self._tls_dir)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
            self.ca_file = cert
        self._server = server
        threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"emulator-{self.name}",
            daemon=True,
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._tls_dir is not None:
            shutil.rmtree(self._tls_dir, ignore_errors=True)
            self._tls_dir = None

    @property
    def port(self) -> int:
        assert self._server is not None, "emulator not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    # recording -------------------------------------------------------------------------------------
    def record(self, name: str, request: Request, status: int, response: Any = None) -> None:
        with self._calls_lock:
            self.calls.append(Call(name, request, status, response))

    def calls_named(self, name: str) -> list[Call]:
        with self._calls_lock:
            return [c for c in self.calls if c.name == name]

    def reset_calls(self) -> None:
        with self._calls_lock:
            self.calls.clear()

    def handle(self, request: Request) -> Response:  # pragma: no cover - abstract
        raise NotImplementedError


def make_self_signed_cert(directory: str | None = None) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 / localhost made at start; returns (cert_path, key_path)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    d = Path(directory or tempfile.mkdtemp(prefix="chatops-tls-"))
    cert_path, key_path = d / "cert.pem", d / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


# Registry used by the sandbox and `chatops emulators` -------------------------------------------------


@dataclass(frozen=True)
class EmulatorSpec:
    """`factory(stack)` builds the (unstarted) emulator; `settings(emulator)` returns the bot's environment
    variables that point at it. Lower `order` starts first (e.g. MNS before the ECS that feeds it)."""

    name: str
    factory: Callable[[Any], Emulator]
    settings: Callable[[Emulator], dict[str, str]]
    order: int = 50


_SPECS: dict[str, EmulatorSpec] = {}


def register_emulator(spec: EmulatorSpec) -> EmulatorSpec:
    _SPECS[spec.name] = spec
    return spec


def registered_emulators() -> list[EmulatorSpec]:
    import importlib
    import pkgutil

    import sandbox

    for mod in pkgutil.iter_modules(sandbox.__path__):
        if mod.name.endswith("_emulator"):
            importlib.import_module(f"sandbox.{mod.name}")
    return sorted(_SPECS.values(), key=lambda s: (s.order, s.name))
