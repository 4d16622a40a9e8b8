"""The SDK client the baselines build, as the originals did: static AccessKey, plain http to the
emulator's `http://127.0.0.1:PORT`, the SDK's defaults otherwise (no retries)."""

from __future__ import annotations

from alibabacloud_ecs20140526.client import Client
from alibabacloud_tea_openapi.models import Config


def naive_client(endpoint: str, access_key_id: str, access_key_secret: str, region: str) -> Client:
    return Client(
        Config(
            access_key_id=access_key_id,
            access_key_secret=access_key_secret,
            region_id=region,
            endpoint=endpoint.removeprefix("http://"),
            protocol="http",
        )
    )
