"""What the baselines share: the SDK client as the originals built it (static AccessKey, plain http to
the emulator's `http://127.0.0.1:PORT`, the SDK's defaults otherwise: no retries), and their counters."""

from __future__ import annotations

from alibabacloud_ecs20140526.client import Client
from alibabacloud_tea_openapi.models import Config


class NaiveBaseline:
    """`client`, `region`, `api_calls` (every call it made) and `errors` (one line each)."""

    def __init__(self, endpoint: str, access_key_id: str, access_key_secret: str, region: str):
        self.client = Client(
            Config(
                access_key_id=access_key_id,
                access_key_secret=access_key_secret,
                region_id=region,
                endpoint=endpoint.removeprefix("http://"),
                protocol="http",
            )
        )
        self.region = region
        self.api_calls = 0
        self.errors: list[str] = []
