"""Cloud Assistant through alibabacloud_ecs20140526: RunCommand, DescribeInvocations,
DescribeInvocationResults, StopInvocation and DescribeCloudAssistantStatus, on the ECS adapter's one call
path (token bucket per API, timeouts, bounded jittered retries, call counts and metrics).

- RunCommand: at most 100 instance ids per call, the content Base64 (ContentEncoding=Base64) and a
  ClientToken, so a request sent again (a worker that died and resumed) answers with the same InvokeId
  instead of running the command twice.
- Progress: DescribeInvocations without output: by InvokeId; looks at small invocations (≤ GROUPED_MAX
  instances) that many runs ask for at once are answered by one listing of the region's newest
  invocations (bot.adapters.grouped_looks).
- Output: DescribeInvocationResults by InvokeId, 50 per page (the API's maximum), Base64-decoded; small
  invocations read at once by many runs share one listing of the newest results, as for progress.
- Agents: DescribeCloudAssistantStatus, 50 ids per call. An agent seen running is taken as running for
  AGENT_UP_SECONDS without asking again (a runbook's steps on the same instances, many runs starting at
  once); one that was not is asked about every time. An agent that stopped meanwhile shows in the run's
  result for that instance (ClientNotRunning), as it would have a second after any check.

Results come out as `InvocationState` / `InstanceRun` values (bot.run_model), no SDK types.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

from alibabacloud_ecs20140526 import models as ecs_models

from bot.adapters.ecs_support import chunked
from bot.adapters.grouped_looks import GroupedLooks
from bot.clock import SYSTEM_CLOCK, Clock
from bot.errors import UpstreamError
from bot.registry import Capability
from bot.run_looks import FinishTimes
from bot.run_model import InstanceRun, InvocationState

capability = Capability("bot.adapters.cloud_assistant")

RUN_BATCH = 100  # RunCommand InstanceId.N
STATUS_BATCH = 50  # DescribeCloudAssistantStatus InstanceId.N, StopInvocation InstanceId.N
RESULTS_PAGE = 50  # DescribeInvocationResults MaxResults
LISTED = 50  # DescribeInvocations MaxResults: the newest invocations one listing reads
GROUPED_MAX = 10  # instances: invocations up to this size are looked at together (many small runs)
MAX_PAGES = 1000
AGENT_UP_SECONDS = 60.0


def _decode(text: str | None) -> str:
    if not text:
        return ""
    try:
        return base64.b64decode(text, validate=False).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return text


def _int(value) -> int | None:
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def _instance_run(row, finish_time: str | None, output: str | None = None) -> InstanceRun:
    """One instance's row of DescribeInvocations or DescribeInvocationResults, as the bot models it."""
    return InstanceRun(
        instance_id=row.instance_id,
        status=row.invocation_status or "",
        exit_code=_int(row.exit_code),
        error_code=row.error_code or "",
        error_info=row.error_info or "",
        dropped=_int(row.dropped) or 0,
        start_time=row.start_time or "",
        finish_time=finish_time or "",
        output=output,
    )


def _state(inv) -> InvocationState:
    rows = inv.invoke_instances.invoke_instance if inv.invoke_instances else None
    return InvocationState(
        invoke_id=inv.invoke_id,
        status=inv.invocation_status or "",
        instances=tuple(_instance_run(r, r.finish_time) for r in rows or []),
    )


def _complete(key: tuple[str, int], listing: dict[str, dict[str, InstanceRun]]):
    """An invocation's results from a listing, when the listing holds a row for each of its instances."""
    invoke_id, instances = key
    rows = listing.get(invoke_id)
    return rows if rows is not None and len(rows) >= instances else None


class CloudAssistant:
    def __init__(self, ecs, clock: Clock = SYSTEM_CLOCK):
        self.ecs = ecs  # the EcsAdapter whose call path (rate limit, retries, counts) is used
        self.clock = clock
        self._agents_up: dict[tuple[str, str], float] = {}  # (region, id) → when seen running
        self.finish_times = FinishTimes()  # this process's runs, for the next run's looks
        self.looks: GroupedLooks[InvocationState] = GroupedLooks(self._one, self._newest)
        self.result_reads: GroupedLooks[dict[str, InstanceRun]] = GroupedLooks(
            lambda region, key: self._results_of(region, key[0]), self._newest_results, _complete
        )

    def _call(self, action: str, method: str, request):
        return self.ecs._call(action, method, request)

    def agents_running(self, instance_ids: Iterable[str], region: str | None = None) -> dict[str, bool]:
        """id → whether its Cloud Assistant agent answers (False also for one not installed)."""
        region = region or self.ecs.region
        now = self.clock.monotonic()
        out: dict[str, bool] = {}
        ask = []
        for i in dict.fromkeys(instance_ids):
            seen = self._agents_up.get((region, i))
            if seen is not None and now - seen < AGENT_UP_SECONDS:
                out[i] = True
            else:
                ask.append(i)
        for chunk in chunked(ask, STATUS_BATCH):
            request = ecs_models.DescribeCloudAssistantStatusRequest(region_id=region, instance_id=chunk)
            body = self._call("DescribeCloudAssistantStatus", "describe_cloud_assistant_status", request)
            found = body.instance_cloud_assistant_status_set
            for s in (found.instance_cloud_assistant_status if found else None) or []:
                out[s.instance_id] = up = str(s.cloud_assistant_status).lower() == "true"
                if up:
                    self._agents_up[(region, s.instance_id)] = now
                else:
                    self._agents_up.pop((region, s.instance_id), None)
        return out

    def run_command(
        self,
        instance_ids: list[str],
        command_type: str,
        content: str,
        client_token: str,
        timeout: int = 60,
        region: str | None = None,
        username: str | None = None,
        working_dir: str | None = None,
        name: str | None = None,
    ) -> str:
        """Start the command on ≤ 100 instances; returns the InvokeId (the same one for the same token)."""
        if not 1 <= len(instance_ids) <= RUN_BATCH:
            raise ValueError(f"RunCommand takes 1 to {RUN_BATCH} instances, not {len(instance_ids)}")
        request = ecs_models.RunCommandRequest(
            region_id=region or self.ecs.region,
            type=command_type,
            command_content=base64.b64encode(content.encode()).decode(),
            content_encoding="Base64",
            instance_id=list(instance_ids),
            timeout=timeout,
            username=username or None,
            working_dir=working_dir or None,
            name=name,
            client_token=client_token,
        )
        body = self._call("RunCommand", "run_command", request)
        if not body.invoke_id:
            raise UpstreamError("ECS", "RunCommand answered without an InvokeId", code="NoInvokeId")
        return body.invoke_id

    def invocation(
        self, invoke_id: str, region: str | None = None, instances: int | None = None
    ) -> InvocationState | None:
        """The invocation's overall and per-instance statuses, without output. `instances`: how many it
        ran on; up to GROUPED_MAX, looks that many runs ask for at once share their calls
        (bot.adapters.grouped_looks). A larger invocation is read by itself: a listing of large
        invocations costs more to read than the calls it saves."""
        region = region or self.ecs.region
        if instances is None or instances > GROUPED_MAX:
            return self._one(region, invoke_id)
        return self.looks.look(region, invoke_id)

    def _one(self, region: str, invoke_id: str) -> InvocationState | None:
        request = ecs_models.DescribeInvocationsRequest(
            region_id=region, invoke_id=invoke_id, include_output=False, max_results=1
        )
        body = self._call("DescribeInvocations", "describe_invocations", request)
        found = body.invocations.invocation if body.invocations and body.invocations.invocation else []
        inv = next((i for i in found if i.invoke_id == invoke_id), None)
        return None if inv is None else _state(inv)

    def _newest(self, region: str) -> dict[str, InvocationState]:
        """The region's newest invocations (one page), by InvokeId."""
        request = ecs_models.DescribeInvocationsRequest(
            region_id=region, include_output=False, max_results=LISTED
        )
        body = self._call("DescribeInvocations", "describe_invocations", request)
        found = body.invocations.invocation if body.invocations and body.invocations.invocation else []
        return {inv.invoke_id: _state(inv) for inv in found if inv.invoke_id}

    def results(
        self, invoke_id: str, region: str | None = None, instances: int | None = None
    ) -> dict[str, InstanceRun]:
        """Every instance's result with its output (decoded). `instances`: how many it ran on; up to
        GROUPED_MAX, reads that many runs ask for at once share one listing of the newest results (as
        the looks do), else it pages by InvokeId, 50 at a time."""
        region = region or self.ecs.region
        if instances is None or instances > GROUPED_MAX:
            return self._results_of(region, invoke_id)
        return self.result_reads.look(region, (invoke_id, instances)) or {}

    def _results_of(self, region: str, invoke_id: str) -> dict[str, InstanceRun]:
        request = ecs_models.DescribeInvocationResultsRequest(
            region_id=region, invoke_id=invoke_id, content_encoding="Base64", max_results=RESULTS_PAGE
        )
        out: dict[str, InstanceRun] = {}
        for _ in range(MAX_PAGES):
            token = self._result_rows(request, lambda _invoke_id, run: out.__setitem__(run.instance_id, run))
            if not token:
                return out
            request.next_token = token
        raise UpstreamError("ECS", "DescribeInvocationResults returned too many pages", code="PagingLimit")

    def _newest_results(self, region: str) -> dict[str, dict[str, InstanceRun]]:
        """The region's newest results (one page), by InvokeId."""
        request = ecs_models.DescribeInvocationResultsRequest(
            region_id=region, content_encoding="Base64", max_results=RESULTS_PAGE
        )
        out: dict[str, dict[str, InstanceRun]] = {}
        self._result_rows(
            request, lambda invoke_id, run: out.setdefault(invoke_id, {}).__setitem__(run.instance_id, run)
        )
        return out

    def _result_rows(self, request, keep) -> str | None:
        body = self._call("DescribeInvocationResults", "describe_invocation_results", request)
        inv = body.invocation
        rows = inv.invocation_results.invocation_result if inv and inv.invocation_results else None
        for r in rows or []:
            # (the finish time is `FinishedTime` here, `FinishTime` in DescribeInvocations)
            keep(r.invoke_id, _instance_run(r, r.finished_time, _decode(r.output)))
        return inv.next_token if inv else None

    def stop(self, invoke_id: str, instance_ids: list[str] | None = None, region: str | None = None) -> None:
        """StopInvocation: the whole invocation, or those instances (50 per call)."""
        region = region or self.ecs.region
        for chunk in chunked(list(instance_ids), STATUS_BATCH) if instance_ids else [None]:
            request = ecs_models.StopInvocationRequest(
                region_id=region, invoke_id=invoke_id, instance_id=chunk
            )
            self._call("StopInvocation", "stop_invocation", request)


@capability.adapter("cloud_assistant")
def build(services) -> CloudAssistant:
    return CloudAssistant(services.adapter("ecs"), services.clock)
