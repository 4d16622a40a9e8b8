"""The seed's way of running a command on a fleet with Cloud Assistant, re-implemented faithfully.

RunCommand once per batch of at most 100 instances (the content in plain text), then, batch after
batch, DescribeInvocations(InvokeId, IncludeOutput=True) after waits of 2, 4, 8, 16 … seconds until the
invocation's InvokeStatus is terminal (Finished, Failed, PartialFailed or Stopped). No retry: a batch
whose RunCommand failed is reported as failed, a poll that failed waits the next (doubled) wait. It
gives up on a batch after `MAX_POLLS` polls (about two hours and a quarter of waiting).

Like the original it talks to the SDK directly (it is not part of the bot).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable

from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
from darabonba.exceptions import UnretryableException

from bench.baselines.sdk import NaiveBaseline

BATCH = 100  # RunCommand takes at most 100 instances
FIRST_WAIT = 2.0
MAX_POLLS = 12  # 2 + 4 + … + 4096 s
TERMINAL = ("Finished", "Failed", "PartialFailed", "Stopped")


def _text(output: str | None) -> str:
    """Output arrives Base64-encoded (DescribeInvocations' default ContentEncoding)."""
    if not output:
        return ""
    try:
        return base64.b64decode(output).decode(errors="replace")
    except (binascii.Error, ValueError):
        return output


def _row(status: str, exit_code: int | None = None, output: str = "", error_code: str = "") -> dict:
    return {"status": status, "exit_code": exit_code, "output": output, "error_code": error_code}


class NaiveRunner(NaiveBaseline):
    """`NaiveRunner(endpoint, access_key_id, access_key_secret, region)`; `run()` as the seed did it.
    `waits` lists every wait it made; `sleep` is how it waits (time.sleep)."""

    def __init__(self, *connection: str, **by_name: str):
        super().__init__(*connection, **by_name)
        self.sleep: Callable[[float], None] = time.sleep
        self.waits: list[float] = []

    def run(
        self, instance_ids: list[str], command: str, type: str = "RunShellScript", timeout: int = 60
    ) -> dict:
        """{"instances": id → {status, exit_code, output, error_code}, "api_calls": calls of this run,
        "finished_at": time.time() when it saw the whole run finished, "invoke_ids": […]}."""
        calls_before = self.api_calls
        results: dict[str, dict] = {}
        started: list[tuple[str, list[str]]] = []
        for start in range(0, len(instance_ids), BATCH):
            batch = instance_ids[start : start + BATCH]
            self.api_calls += 1
            try:
                body = self.client.run_command(
                    ecs_models.RunCommandRequest(
                        region_id=self.region,
                        type=type,
                        command_content=command,
                        content_encoding="PlainText",
                        instance_id=batch,
                        timeout=timeout,
                    )
                ).body
            except (AlibabaCloudException, UnretryableException) as exc:  # no retry: the batch is lost
                code = str(getattr(exc, "code", "") or exc.__class__.__name__)
                self.errors.append(f"RunCommand: {code}")
                results.update({iid: _row("Error", error_code=code) for iid in batch})
                continue
            started.append((body.invoke_id, batch))
        for invoke_id, batch in started:
            rows = self._wait(invoke_id)
            results.update({iid: rows.get(iid, _row("Unknown")) for iid in batch})
        return {
            "instances": results,
            "api_calls": self.api_calls - calls_before,
            "finished_at": time.time(),
            "invoke_ids": [invoke_id for invoke_id, _ in started],
        }

    def _wait(self, invoke_id: str) -> dict[str, dict]:
        """Poll one invocation with doubling waits until it is terminal; its per-instance rows."""
        wait = FIRST_WAIT
        for _ in range(MAX_POLLS):
            self.sleep(wait)
            self.waits.append(wait)
            wait *= 2
            self.api_calls += 1
            try:
                found = self.client.describe_invocations(
                    ecs_models.DescribeInvocationsRequest(
                        region_id=self.region, invoke_id=invoke_id, include_output=True
                    )
                ).body.invocations
            except (AlibabaCloudException, UnretryableException) as exc:
                self.errors.append(f"DescribeInvocations {invoke_id}: {getattr(exc, 'code', exc)}")
                continue
            invocation = found.invocation[0] if found and found.invocation else None
            if invocation is None or invocation.invoke_status not in TERMINAL:
                continue
            return {
                i.instance_id: _row(i.invocation_status, i.exit_code, _text(i.output), i.error_code or "")
                for i in invocation.invoke_instances.invoke_instance
            }
        self.errors.append(f"{invoke_id}: not finished after {MAX_POLLS} polls")
        return {}
