"""Classic Load Balancer (SLB 2014-05-15) vserver groups through alibabacloud_slb20140515.

Used to take a preemptible instance out of its vserver groups before it is released. Every call has
connect/read timeouts and a bounded retry on throttling and 5xx; failures surface as
UpstreamError("SLB", message, code, request_id). `SLB_ENDPOINT` overrides the regional endpoint
(`host:port` or a URL; an `http://` URL means plain HTTP).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from alibabacloud_slb20140515 import models as slb_models
from alibabacloud_slb20140515.client import Client
from alibabacloud_tea_openapi.exceptions import ServerException, ThrottlingException
from alibabacloud_tea_openapi.models import Config
from darabonba.exceptions import DaraException, UnretryableException
from darabonba.policy.retry import RetryCondition, RetryOptions

from bot.errors import UpstreamError
from bot.registry import Capability

capability = Capability("bot.adapters.slb")

log = logging.getLogger(__name__)

MAX_BACKENDS_PER_CALL = 20  # documented limit of BackendServers


@dataclass(frozen=True)
class Backend:
    server_id: str
    port: int
    weight: int = 100
    type: str = "ecs"

    def as_request(self) -> dict:
        return {"ServerId": self.server_id, "Port": str(self.port), "Type": self.type}


@dataclass(frozen=True)
class VServerGroup:
    group_id: str
    name: str
    load_balancer_id: str
    backends: tuple[Backend, ...]

    def backends_of(self, instance_id: str) -> list[Backend]:
        return [b for b in self.backends if b.server_id == instance_id]


def endpoint_config(endpoint: str | None) -> dict:
    """`host:port` → https; `http://host:port` → plain http; `https://…` → https."""
    if not endpoint:
        return {}
    if endpoint.startswith("http://"):
        return {"endpoint": endpoint[len("http://") :].rstrip("/"), "protocol": "http"}
    if endpoint.startswith("https://"):
        return {"endpoint": endpoint[len("https://") :].rstrip("/"), "protocol": "https"}
    return {"endpoint": endpoint.rstrip("/"), "protocol": "https"}


def _retry_options(attempts: int = 3) -> RetryOptions:
    return RetryOptions(
        {
            "retryable": True,
            "retryCondition": [
                RetryCondition(
                    {
                        "maxAttempts": attempts,
                        "exception": ["ServerException", "ThrottlingException"],
                        "errorCode": [
                            "Throttling",
                            "Throttling.User",
                            "Throttling.Api",
                            "ServiceUnavailable",
                        ],
                        "backoff": {"policy": "Exponential", "period": 200, "cap": 2000},
                        "maxDelay": 3000,
                    }
                )
            ],
        }
    )


def _upstream(exc: Exception, action: str) -> UpstreamError:
    """The UpstreamError of an SDK failure (the SDK's own retries are spent): transport failures,
    throttling and 5xx are retryable later, refusals are not."""
    if isinstance(exc, UnretryableException):  # transport: refused, reset, timed out
        return UpstreamError("SLB", f"{action}: {exc}", code="NetworkError", retryable=True)
    code = getattr(exc, "code", None)
    request_id = getattr(exc, "request_id", None)
    data = getattr(exc, "data", None) or {}
    message = data.get("Message") if isinstance(data, dict) else None
    status = getattr(exc, "status_code", None) or 0
    retryable = (
        isinstance(exc, (ServerException, ThrottlingException))
        or str(code or "").startswith("Throttling")
        or code == "ServiceUnavailable"
        or status >= 500
        or status == 429
    )
    return UpstreamError(
        "SLB", f"{action}: {message or exc}", code=code, request_id=request_id, retryable=retryable
    )


def _group(body) -> VServerGroup:
    servers = (body.backend_servers.backend_server or []) if body.backend_servers else []
    return VServerGroup(
        group_id=body.vserver_group_id or "",
        name=getattr(body, "vserver_group_name", None) or "",
        load_balancer_id=getattr(body, "load_balancer_id", None) or "",
        backends=tuple(
            Backend(s.server_id, int(s.port or 0), int(s.weight or 0), s.type or "ecs") for s in servers
        ),
    )


class SlbAdapter:
    def __init__(self, client: Client, default_region: str):
        self.client = client
        self.default_region = default_region

    def describe_vserver_group(self, group_id: str, region: str | None = None) -> VServerGroup:
        req = slb_models.DescribeVServerGroupAttributeRequest(
            region_id=region or self.default_region, vserver_group_id=group_id
        )
        try:
            return _group(self.client.describe_vserver_group_attribute(req).body)
        except (DaraException, UnretryableException) as exc:
            raise _upstream(exc, "DescribeVServerGroupAttribute") from exc

    def remove_backends(
        self, group_id: str, backends: list[Backend], region: str | None = None
    ) -> VServerGroup:
        """Remove backends (20 per call); returns the group as it is afterwards."""
        after = None
        for start in range(0, len(backends), MAX_BACKENDS_PER_CALL):
            chunk = backends[start : start + MAX_BACKENDS_PER_CALL]
            req = slb_models.RemoveVServerGroupBackendServersRequest(
                region_id=region or self.default_region,
                vserver_group_id=group_id,
                backend_servers=json.dumps([b.as_request() for b in chunk]),
            )
            try:
                after = _group(self.client.remove_vserver_group_backend_servers(req).body)
            except (DaraException, UnretryableException) as exc:
                raise _upstream(exc, "RemoveVServerGroupBackendServers") from exc
        return after if after is not None else self.describe_vserver_group(group_id, region)

    def add_backends(self, group_id: str, backends: list[Backend], region: str | None = None) -> VServerGroup:
        after = None
        for start in range(0, len(backends), MAX_BACKENDS_PER_CALL):
            chunk = backends[start : start + MAX_BACKENDS_PER_CALL]
            payload = [{**b.as_request(), "Weight": str(b.weight)} for b in chunk]
            req = slb_models.AddVServerGroupBackendServersRequest(
                region_id=region or self.default_region,
                vserver_group_id=group_id,
                backend_servers=json.dumps(payload),
            )
            try:
                after = _group(self.client.add_vserver_group_backend_servers(req).body)
            except (DaraException, UnretryableException) as exc:
                raise _upstream(exc, "AddVServerGroupBackendServers") from exc
        return after if after is not None else self.describe_vserver_group(group_id, region)


def make_client(settings, retries: int = 3) -> Client:
    ak = settings.secret("ALIBABA_CLOUD_ACCESS_KEY_ID")
    secret = settings.secret("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    kwargs: dict = {
        "region_id": settings.ALIBABA_CLOUD_REGION_ID,
        "connect_timeout": 5000,
        "read_timeout": 10000,
        "retry_options": _retry_options(retries),
        **endpoint_config(settings.SLB_ENDPOINT),
    }
    if ak and secret:
        kwargs.update(access_key_id=ak, access_key_secret=secret)
    else:  # the default credential chain (RAM role, STS, profile)
        from alibabacloud_credentials.client import Client as CredentialClient

        kwargs["credential"] = CredentialClient()
    return Client(Config(**kwargs))


@capability.adapter("slb")
def build(services) -> SlbAdapter:
    return SlbAdapter(make_client(services.settings), services.settings.ALIBABA_CLOUD_REGION_ID)
