"""Server side of Alibaba Cloud's RPC-style OpenAPI, as the V3-signature SDKs speak it (reusable by every
Alibaba emulator: ECS, SLB …).

Wire format (see shared/reference/protocols.md §4.1): `POST /`, every parameter in the query string, empty
body, the action in `x-acs-action`, the API version in `x-acs-version`, an `ACS3-HMAC-SHA256` signature.
Lists arrive flattened (`InstanceId.1`, `Tag.1.Key`), booleans as `True` / `False`. Success is a JSON object
with a `RequestId`; errors are 4xx/5xx with `{"RequestId","HostId","Code","Message","Recommend"}`.

`AcsEmulator` does the common work (signature, version, action routing, latency, per-API throttling,
random 5xx, injected faults, recording); a subclass implements `api_<Action>(query) -> dict` and raises
`AcsError` for API errors.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlsplit

from sandbox.emulator import Emulator, Request, Response


def verify_acs3(
    method: str, raw_path: str, headers: dict[str, str], body: bytes, secrets: dict[str, str]
) -> bool:
    """Check an `Authorization: ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..` header.

    raw_path is the path plus query exactly as received; `+` in the query is a space."""
    h = {k.lower(): v for k, v in headers.items()}
    algo, _, rest = h.get("authorization", "").partition(" ")
    if algo != "ACS3-HMAC-SHA256":
        return False
    try:
        parts = dict(p.split("=", 1) for p in rest.split(","))
    except ValueError:
        return False
    secret = secrets.get(parts.get("Credential", ""))
    signed, signature = parts.get("SignedHeaders", ""), parts.get("Signature", "")
    if secret is None or not signed:
        return False
    payload_hash = hashlib.sha256(body or b"").hexdigest()
    if h.get("x-acs-content-sha256") != payload_hash:
        return False
    url = urlsplit(raw_path)
    query = dict(parse_qsl(url.query, keep_blank_values=True))
    canonical_query = "&".join(f"{k}={quote(query[k], safe='~')}" for k in sorted(query))
    names = signed.split(";")
    canonical_headers = "".join(f"{n}:{h.get(n, '').strip()}\n" for n in names)
    canonical = (
        f"{method}\n{url.path or '/'}\n{canonical_query}\n{canonical_headers}\n{signed}\n{payload_hash}"
    )
    string_to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    expected = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


class AcsError(Exception):
    """An API error: answered as `status` with the standard error body."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def new_request_id() -> str:
    return str(uuid.uuid4()).upper()


def error_body(code: str, message: str, request_id: str, product: str = "Ecs") -> dict:
    return {
        "RequestId": request_id,
        "HostId": "127.0.0.1",
        "Code": code,
        "Message": message,
        "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}&product={product}&requestId={request_id}",
    }


# Query helpers (the SDK flattens lists and objects) ------------------------------------------------------


def flat_list(query: dict[str, str], name: str) -> list[str]:
    """`Name.1`, `Name.2`, … in index order."""
    found: list[tuple[int, str]] = []
    prefix = name + "."
    for key, value in query.items():
        if key.startswith(prefix) and key[len(prefix) :].isdigit():
            found.append((int(key[len(prefix) :]), value))
    return [v for _, v in sorted(found)]


def flat_objects(query: dict[str, str], name: str) -> list[dict[str, str]]:
    """`Name.N.Field` → [{Field: value}, …] in index order."""
    items: dict[int, dict[str, str]] = {}
    prefix = name + "."
    for key, value in query.items():
        if not key.startswith(prefix):
            continue
        index, _, field = key[len(prefix) :].partition(".")
        if index.isdigit() and field:
            items.setdefault(int(index), {})[field] = value
    return [items[i] for i in sorted(items)]


def parse_bool(value: str | None, default: bool = False) -> bool:
    """The SDK sends Python's `True` / `False`; accept any case."""
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise AcsError(400, "InvalidParameter", f"The boolean value {value!r} is invalid.")


def parse_int(query: dict[str, str], name: str, default: int, low: int, high: int | None = None) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise AcsError(400, f"InvalidParameter.{name}", f"The specified {name} is not an integer.") from None
    if value < low or (high is not None and value > high):
        raise AcsError(400, f"InvalidParameter.{name}", f"The specified {name} is out of range.")
    return value


def require(query: dict[str, str], name: str) -> str:
    value = query.get(name)
    if not value:
        raise AcsError(400, f"Missing{name}", f"{name} is mandatory for this action.")
    return value


def encode_token(offset: int) -> str:
    """An opaque NextToken for a list offset."""
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["o"]
    except (ValueError, KeyError, TypeError):
        raise AcsError(400, "InvalidParameter.NextToken", "The specified NextToken is invalid.") from None
    if not isinstance(offset, int) or offset < 0:
        raise AcsError(400, "InvalidParameter.NextToken", "The specified NextToken is invalid.")
    return offset


# Per-API throttling -----------------------------------------------------------------------------------


class _Window:
    """At most `qps` calls in any sliding one-second window."""

    def __init__(self, qps: float):
        self.qps = qps
        self.times: deque[float] = deque()

    def admit(self, now: float) -> bool:
        while self.times and self.times[0] <= now - 1.0:
            self.times.popleft()
        if len(self.times) >= self.qps:
            return False
        self.times.append(now)
        return True


@dataclass
class Fault:
    status: int
    code: str
    message: str
    headers: dict[str, str]


class AcsEmulator(Emulator):
    """Common request handling for Alibaba Cloud RPC APIs. Knobs (change them at any time):

    latency            seconds added to every call (after the signature check)
    throttle_qps       per-API limit, calls per second (None = unlimited); `throttle_status` 400 or 429;
                       `throttle_retry_after_ms` adds `x-acs-retry-after` (the SDK then raises ThrottlingException)
    error_rate         probability that a call fails with a random 500/503
    inject(...)        make the next N calls of an action fail with a given error
    """

    version = ""
    product = "Ecs"

    def __init__(self, secrets: dict[str, str], port: int = 0, seed: int = 7):
        super().__init__(port)
        self.secrets = dict(secrets)
        self.latency = 0.0
        self.throttle_qps: float | None = None
        self.throttle_status = 400
        self.throttle_retry_after_ms: int | None = None
        self.error_rate = 0.0
        self.rng = random.Random(seed)
        self._faults: dict[str, deque[Fault]] = {}
        self._windows: dict[str, _Window] = {}
        self._knob_lock = threading.Lock()

    # knobs ----------------------------------------------------------------------------------------
    def inject(
        self,
        action: str,
        code: str,
        status: int = 503,
        message: str | None = None,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The next `times` calls of `action` ("*" = any) answer this error instead of running."""
        with self._knob_lock:
            queue = self._faults.setdefault(action, deque())
            for _ in range(times):
                queue.append(Fault(status, code, message or f"Injected {code}.", dict(headers or {})))

    def clear_faults(self) -> None:
        with self._knob_lock:
            self._faults.clear()

    def _next_fault(self, action: str) -> Fault | None:
        with self._knob_lock:
            for key in (action, "*"):
                queue = self._faults.get(key)
                if queue:
                    return queue.popleft()
        return None

    def _throttled(self, action: str) -> bool:
        if self.throttle_qps is None:
            return False
        with self._knob_lock:
            window = self._windows.get(action)
            if window is None or window.qps != self.throttle_qps:
                window = self._windows[action] = _Window(self.throttle_qps)
            return not window.admit(time.monotonic())

    # HTTP ----------------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        request_id = new_request_id()
        action = req.headers.get("x-acs-action", "")
        try:
            self._check_envelope(req, action)
            if self.latency:
                time.sleep(self.latency)
            fault = self._next_fault(action)
            if fault is not None:
                raise AcsError(fault.status, fault.code, fault.message, fault.headers)
            if self._throttled(action):
                headers = {}
                if self.throttle_retry_after_ms:
                    headers["x-acs-retry-after"] = str(self.throttle_retry_after_ms)
                raise AcsError(
                    self.throttle_status,
                    "Throttling.User",
                    "Request was denied due to user flow control.",
                    headers,
                )
            if self.error_rate and self.rng.random() < self.error_rate:
                status, code = self.rng.choice(((500, "InternalError"), (503, "ServiceUnavailable")))
                raise AcsError(status, code, "The request processing has failed due to some unknown error.")
            body = getattr(self, "api_" + action)(req.query)
        except AcsError as exc:
            out = error_body(exc.code, exc.message, request_id, self.product)
            self.record(action or "?", req, exc.status, out)
            return Response.json(out, exc.status, exc.headers)
        body = {"RequestId": request_id, **body}
        self.record(action, req, 200, body)
        return Response.json(body)

    def _check_envelope(self, req: Request, action: str) -> None:
        if req.method != "POST" or req.path != "/":
            raise AcsError(
                404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method."
            )
        if not action or not hasattr(self, "api_" + action):
            raise AcsError(404, "InvalidAction.NotFound", f"Specified api {action!r} is not found.")
        if req.headers.get("x-acs-version") != self.version:
            raise AcsError(
                400, "InvalidVersion", f"Specified parameter Version is not valid (expected {self.version})."
            )
        auth = req.headers.get("authorization", "")
        credential = auth.partition("Credential=")[2].partition(",")[0]
        if credential not in self.secrets:
            raise AcsError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        if not verify_acs3(req.method, req.raw_path, req.headers, req.body, self.secrets):
            raise AcsError(
                400,
                "SignatureDoesNotMatch",
                "Specified signature does not match our calculation.",
            )
