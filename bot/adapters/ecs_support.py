"""The parts of the ECS adapter that are not its calls: the SDK client built from the settings, the
per-API token bucket, the retry policy and how an SDK exception becomes an `UpstreamError`, and the
mapping of DescribeInstances rows to `InstanceInfo` (with the filters ECS cannot apply itself)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from fnmatch import fnmatchcase

from alibabacloud_ecs20140526.client import Client
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException, ServerException, ThrottlingException
from alibabacloud_tea_openapi.models import Config
from darabonba.exceptions import UnretryableException

from bot.adapters.slb import endpoint_config
from bot.ecs_model import ACCEPTED, FAILED, InstanceInfo, InstanceResult, LookupDeadline
from bot.errors import UpstreamError

Tags = Mapping[str, str | None] | Iterable[tuple[str, str | None]]


def tag_pairs(tags: Tags | None) -> list[tuple[str, str | None]]:
    if not tags:
        return []
    items = tags.items() if isinstance(tags, Mapping) else tags
    return [(str(k), None if v is None else str(v)) for k, v in items]


def chunked(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class TokenBucket:
    """`rate` tokens per second, bursts up to `burst`; `acquire` blocks (bounded by a deadline)."""

    def __init__(self, rate: float, burst: float | None = None):
        self.rate = float(rate)
        self.burst = max(1.0, float(burst if burst is not None else rate))
        self.tokens = self.burst
        self.at = time.monotonic()
        self.lock = threading.Lock()

    def acquire(self, deadline: float | None = None) -> None:
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
                self.at = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                wait = (1 - self.tokens) / self.rate
            if deadline is not None and time.monotonic() + wait > deadline:
                raise LookupDeadline("rate limit wait would pass the deadline")
            time.sleep(wait)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # including the first try
    base_seconds: float = 0.2
    cap_seconds: float = 5.0


def classify_failure(exc: Exception) -> tuple[bool, UpstreamError]:
    """(retryable, the UpstreamError to raise) for an SDK exception."""
    if isinstance(exc, AlibabaCloudException):
        data = exc.data if isinstance(exc.data, dict) else {}
        code = str(exc.code or "")
        retryable = (
            isinstance(exc, (ThrottlingException, ServerException))
            or code.startswith("Throttling")
            or (exc.status_code or 0) >= 500
        )
        err = UpstreamError(
            "ECS",
            str(data.get("Message") or exc.message or code),
            code=code,
            request_id=exc.request_id,
            retryable=retryable,
        )
        return retryable, err
    if isinstance(exc, UnretryableException):  # transport: refused, reset, timed out
        return True, UpstreamError("ECS", f"request failed: {exc}", code="NetworkError", retryable=True)
    raise exc


def completed(pool: ThreadPoolExecutor, fn, items):
    futures = [pool.submit(fn, item) for item in items]
    for future in as_completed(futures):
        yield future.result()


def server_name_filter(glob: str | None) -> str | None:
    """ECS's InstanceName filter understands `*` only; other globs are filtered here."""
    if glob and not any(c in glob for c in "?[]"):
        return glob
    return None


def matches(info: InstanceInfo, pairs, status: str | None, name: str | None) -> bool:
    if status and info.status != status:
        return False
    if name and not fnmatchcase(info.name, name):
        return False
    for key, value in pairs:
        if key not in info.tags or (value is not None and info.tags[key] != value):
            return False
    return True


def instance_info(i) -> InstanceInfo:
    tags = {t.tag_key: t.tag_value or "" for t in (i.tags.tag or [])} if i.tags else {}
    ip = ""
    vpc = i.vpc_attributes
    if vpc and vpc.private_ip_address and vpc.private_ip_address.ip_address:
        ip = vpc.private_ip_address.ip_address[0]
    elif i.inner_ip_address and i.inner_ip_address.ip_address:
        ip = i.inner_ip_address.ip_address[0]
    return InstanceInfo(
        instance_id=i.instance_id or "",
        name=i.instance_name or "",
        status=i.status or "",
        instance_type=i.instance_type or "",
        private_ip=ip,
        tags=tags,
        region=i.region_id or "",
        zone=i.zone_id or "",
        spot_strategy=i.spot_strategy or "NoSpot",
        os_type=i.ostype or "",
        start_time=i.start_time or "",
    )


def power_results(body, ids: list[str]) -> dict[str, InstanceResult]:
    """Per-instance results of a Start/Stop/RebootInstances answer (its InstanceResponses); an id ECS
    did not report on is a failure, never silently accepted."""
    out: dict[str, InstanceResult] = {}
    request_id = str(getattr(body, "request_id", "") or "")
    responses = body.instance_responses.instance_response if body.instance_responses else None
    for r in responses or []:
        code = str(r.code or "")
        if code == "200":
            out[r.instance_id] = InstanceResult(
                r.instance_id,
                ACCEPTED,
                code,
                r.message or "",
                r.previous_status or "",
                r.current_status or "",
                request_id,
            )
        else:
            out[r.instance_id] = InstanceResult(
                r.instance_id, FAILED, code, r.message or "", request_id=request_id
            )
    for iid in ids:
        out.setdefault(iid, InstanceResult(iid, FAILED, "NoResponse", "ECS did not report on this instance"))
    return out


def make_client(settings) -> Client:
    """An SDK client from the settings: static AccessKey when given, else the default credential chain."""
    config = Config(region_id=settings.ALIBABA_CLOUD_REGION_ID, **endpoint_config(settings.ECS_ENDPOINT))
    access_key = settings.secret("ALIBABA_CLOUD_ACCESS_KEY_ID")
    if access_key:
        config.access_key_id = access_key
        config.access_key_secret = settings.secret("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    else:
        from alibabacloud_credentials.client import Client as CredentialClient

        config.credential = CredentialClient()
    return Client(config)
