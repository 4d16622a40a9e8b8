"""ECS through alibabacloud_ecs20140526: listing, power actions and waiting, correct at any fleet size.

- Listing: DescribeInstances with MaxResults=100 + NextToken (never the 10-item default). Ids go 100 per
  call through `InstanceIds`, concurrently. A tag filter exposes at most 1,000 instances; when a tag listing
  reaches that cap and `TotalCount` says there are more, the ids come from ListTagResources and the rest
  are described by id.
- Power: Start/Stop/RebootInstances with ≤ 100 ids per call and BatchOptimization=SuccessFirst; per-instance
  results are read from InstanceResponses. Each batch first refreshes its instances (one DescribeInstances
  by id) so instances already in the target state are skipped. Batches run concurrently (`concurrency`).
- Every call goes through a per-API token bucket (`rate_per_second`), has connect/read timeouts, and is
  retried on Throttling* / 5xx / transport errors with bounded exponential backoff and full jitter.
- Waiting (bot.adapters.ecs_wait): the first look comes when the last wait of its kind settled; small
  sets are re-read by id, large tag-scoped sets are watched through status-filtered probes.

Errors surface as `UpstreamError("ECS", message, code, request_id)`. `api_calls` counts every request sent
(retries included); the same counts go to the `chatops_api_calls_total` metric.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ecs20140526.client import Client
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
from darabonba.exceptions import UnretryableException
from darabonba.runtime import RuntimeOptions

from bot.adapters.ecs_support import (
    RetryPolicy,
    Tags,
    TokenBucket,
    chunked,
    classify_failure,
    completed,
    instance_info,
    make_client,
    matches,
    power_results,
    server_name_filter,
    tag_pairs,
)
from bot.adapters.ecs_wait import TAG_FILTER_CAP, SettleTimes, WaitingMixin
from bot.ecs_model import (
    ALREADY_THERE,
    DRY_RUN_OK,
    FAILED,
    STOPPED_MODES,
    InstanceInfo,
    InstanceResult,
    LookupDeadline,
    classify,
    normalize_status,
)
from bot.errors import UpstreamError
from bot.registry import Capability

capability = Capability("bot.adapters.ecs")

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # DescribeInstances MaxResults and InstanceIds limit
BATCH_SIZE = 100  # Start/Stop/RebootInstances InstanceId.N limit
MAX_PAGES = 10_000  # a bound on any paging loop (1,000,000 rows)
POWER_API = {  # action → (API name, SDK method)
    "start": ("StartInstances", "start_instances"),
    "stop": ("StopInstances", "stop_instances"),
    "reboot": ("RebootInstances", "reboot_instances"),
}


class EcsAdapter(WaitingMixin):
    def __init__(
        self,
        client: Client,
        region: str,
        rate_per_second: float = 20.0,
        concurrency: int = 4,
        metrics=None,
        retry: RetryPolicy | None = None,
        positive_check_max: int = 300,
        poll_initial: float = 0.2,
        poll_factor: float = 1.2,
        poll_max: float = 10.0,
        wait_timeout: float = 600.0,
        read_timeout_ms: int = 10_000,
        connect_timeout_ms: int = 5_000,
    ):
        self.client = client
        self.region = region
        self.rate_per_second = rate_per_second
        self.concurrency = max(1, concurrency)
        self.metrics = metrics
        self.retry = retry or RetryPolicy()
        self._regions: tuple[list[str], float] | None = None
        self.positive_check_max = positive_check_max
        self.poll_initial, self.poll_factor, self.poll_max = poll_initial, poll_factor, poll_max
        self.wait_timeout = wait_timeout
        self.settle_times = SettleTimes(poll_initial)
        self.runtime = RuntimeOptions(read_timeout=read_timeout_ms, connect_timeout=connect_timeout_ms)
        self.calls: Counter[str] = Counter()
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()
        self._rng = random.Random()

    # accounting -----------------------------------------------------------------------------------
    @property
    def api_calls(self) -> int:
        with self._lock:
            return sum(self.calls.values())

    def _bucket(self, action: str) -> TokenBucket:
        with self._lock:
            bucket = self._buckets.get(action)
            if bucket is None:
                bucket = self._buckets[action] = TokenBucket(self.rate_per_second)
            return bucket

    def _count(self, action: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.api_calls.labels("ecs", action, outcome).inc()

    # the one call path ----------------------------------------------------------------------------
    def _call(self, action: str, method: str, request, deadline: float | None = None):
        fn = getattr(self.client, method + "_with_options")
        for attempt in range(1, self.retry.attempts + 1):
            self._bucket(action).acquire(deadline)
            runtime = self.runtime
            if deadline is not None:
                left_ms = int((deadline - time.monotonic()) * 1000)
                if left_ms <= 0:
                    raise LookupDeadline(f"{action}: no time left")
                # a call may not outlive the caller's deadline (a timeout is then retried, then deferred)
                runtime = RuntimeOptions(
                    read_timeout=max(200, min(left_ms, self.runtime.read_timeout)),
                    connect_timeout=max(200, min(left_ms, self.runtime.connect_timeout)),
                )
            with self._lock:
                self.calls[action] += 1
            try:
                response = fn(request, runtime)
            except (AlibabaCloudException, UnretryableException) as exc:
                retryable, err = classify_failure(exc)
                self._count(action, err.code or "error")
                if not retryable or attempt == self.retry.attempts:
                    raise err from None
                delay = self._rng.uniform(
                    0, min(self.retry.cap_seconds, self.retry.base_seconds * 2 ** (attempt - 1))
                )
                retry_after = getattr(exc, "retry_after", None)
                if retry_after:
                    delay = max(delay, retry_after / 1000.0)
                if deadline is not None and time.monotonic() + delay > deadline:
                    raise LookupDeadline(f"{action} retry would pass the deadline") from None
                if self.metrics is not None:
                    self.metrics.retries.labels("ecs", action).inc()
                log.info("ECS call retried", extra={"action": action, "code": err.code, "attempt": attempt})
                time.sleep(delay)
                continue
            self._count(action, "ok")
            return response.body
        raise AssertionError("unreachable")  # pragma: no cover

    # listing --------------------------------------------------------------------------------------
    def regions(self) -> list[str]:
        """The regions this account can use (DescribeRegions), remembered for an hour."""
        now = time.monotonic()
        if self._regions is None or self._regions[1] < now:
            body = self._call("DescribeRegions", "describe_regions", ecs_models.DescribeRegionsRequest())
            found = body.regions.region if body.regions and body.regions.region else []
            self._regions = (sorted(r.region_id for r in found if r.region_id), now + 3600)
        return self._regions[0]

    def describe_instances(
        self,
        region: str | None = None,
        instance_ids: Iterable[str] | None = None,
        tags: Tags | None = None,
        status: str | None = None,
        name: str | None = None,
        deadline: float | None = None,
    ) -> list[InstanceInfo]:
        """Every instance matching all the given filters. `tags`: {key: value or None (key present)} or
        pairs; `status`: any case; `name`: a glob (`*`, `?`, `[..]`). `deadline` (monotonic) raises
        LookupDeadline when the listing cannot finish in time."""
        region = region or self.region
        pairs = tag_pairs(tags)
        status = normalize_status(status) if status else None
        if instance_ids is not None:
            ids = list(dict.fromkeys(instance_ids))
            found = self._describe_ids(region, ids, pairs, status, deadline)
        else:
            found = self._list(region, pairs, status, server_name_filter(name), deadline)
        return [i for i in found if matches(i, pairs, status, name)]

    def count_instances(
        self, region: str | None = None, tags: Tags | None = None, status: str | None = None
    ) -> int:
        """How many instances match the tags and status: one call whatever the number (TotalCount of a
        one-row page; it is meaningful with PageNumber/PageSize, not with MaxResults/NextToken)."""
        status = normalize_status(status) if status else None
        request = self._request(region or self.region, tag_pairs(tags), status, page_number=1, page_size=1)
        return self._call("DescribeInstances", "describe_instances", request).total_count or 0

    def _request(
        self, region: str, pairs, status, name_filter=None, **extra
    ) -> ecs_models.DescribeInstancesRequest:
        return ecs_models.DescribeInstancesRequest(
            region_id=region,
            tag=[ecs_models.DescribeInstancesRequestTag(key=k, value=v) for k, v in pairs] or None,
            status=status,
            instance_name=name_filter,
            **extra,
        )

    def _pages(self, request: ecs_models.DescribeInstancesRequest, deadline: float | None = None):
        """Yield pages (lists of InstanceInfo) following NextToken; MaxResults is always 100."""
        request.max_results = PAGE_SIZE
        seen_tokens: set[str] = set()
        for _ in range(MAX_PAGES):
            body = self._call("DescribeInstances", "describe_instances", request, deadline)
            yield [
                instance_info(i)
                for i in (body.instances.instance if body.instances and body.instances.instance else [])
            ]
            token = body.next_token
            if not token:
                return
            if token in seen_tokens:
                raise UpstreamError("ECS", "DescribeInstances repeated a NextToken", code="PagingLoop")
            seen_tokens.add(token)
            request.next_token = token
        raise UpstreamError(
            "ECS", f"DescribeInstances returned more than {MAX_PAGES} pages", code="PagingLimit"
        )

    def _list(self, region, pairs, status, name_filter, deadline) -> list[InstanceInfo]:
        found: list[InstanceInfo] = []
        for page in self._pages(self._request(region, pairs, status, name_filter), deadline):
            found.extend(page)
        if pairs and len(found) >= TAG_FILTER_CAP:
            probe = self._request(region, pairs, status, name_filter, page_number=1, page_size=1)
            total = self._call("DescribeInstances", "describe_instances", probe, deadline).total_count or 0
            if total > len(found):
                log.info("tag filter capped; listing through ListTagResources", extra={"total": total})
                seen = {i.instance_id for i in found}
                missing = [i for i in self._ids_by_tags(region, pairs, deadline) if i not in seen]
                found.extend(self._describe_ids(region, missing, pairs, status, deadline))
        return found

    def _ids_by_tags(self, region: str, pairs, deadline) -> list[str]:
        request = ecs_models.ListTagResourcesRequest(
            region_id=region,
            resource_type="instance",
            tag=[ecs_models.ListTagResourcesRequestTag(key=k, value=v) for k, v in pairs],
        )
        ids: dict[str, None] = {}
        for _ in range(MAX_PAGES):
            body = self._call("ListTagResources", "list_tag_resources", request, deadline)
            entries = (
                body.tag_resources.tag_resource
                if body.tag_resources and body.tag_resources.tag_resource
                else []
            )
            for entry in entries:
                ids.setdefault(entry.resource_id, None)
            if not body.next_token:
                return list(ids)
            request.next_token = body.next_token
        raise UpstreamError(
            "ECS", f"ListTagResources returned more than {MAX_PAGES} pages", code="PagingLimit"
        )

    def _describe_ids(
        self, region, ids: list[str], pairs=(), status=None, deadline=None
    ) -> list[InstanceInfo]:
        chunks = chunked(ids, PAGE_SIZE)
        if len(chunks) <= 1:
            return [i for c in chunks for i in self._describe_chunk(region, c, pairs, status, deadline)]
        with ThreadPoolExecutor(
            max_workers=min(self.concurrency, len(chunks)), thread_name_prefix="ecs-describe"
        ) as pool:
            parts = list(pool.map(lambda c: self._describe_chunk(region, c, pairs, status, deadline), chunks))
        return [i for part in parts for i in part]

    def _describe_chunk(
        self, region, ids: list[str], pairs=(), status=None, deadline=None
    ) -> list[InstanceInfo]:
        request = self._request(region, pairs, status, instance_ids=json.dumps(ids))
        return [i for page in self._pages(request, deadline) for i in page]

    # power ----------------------------------------------------------------------------------------
    def power(
        self,
        action: str,
        instance_ids: Iterable[str],
        region: str | None = None,
        force: bool = False,
        stopped_mode: str | None = None,
        dry_run: bool = False,
        skip_in_target: bool = True,
        on_progress: Callable[[list[InstanceResult]], None] | None = None,
    ) -> list[InstanceResult]:
        """Send `action` ("start" | "stop" | "reboot") to the instances, ≤ 100 per call, SuccessFirst.

        With `skip_in_target`, each batch re-reads its instances first: those already in (or on their way
        to) the target state are ALREADY_THERE, those in a state the action cannot leave are FAILED
        (IncorrectInstanceStatus), the rest are sent. `dry_run` sends DryRun with AllTogether (under
        SuccessFirst a DryRun always passes): DRY_RUN_OK, or FAILED with ECS's verdict, per batch.
        `stopped_mode`: KeepCharging / StopCharging (or keep-charging / stop-charging). Returns one
        result per id, in input order; `on_progress(results so far)` runs after each batch."""
        if action not in POWER_API:
            raise ValueError(f"unknown power action {action!r}")
        region = region or self.region
        stopped_mode = STOPPED_MODES.get(stopped_mode or "", stopped_mode) or None
        ids = list(dict.fromkeys(instance_ids))
        chunks = chunked(ids, BATCH_SIZE)
        done: dict[str, InstanceResult] = {}

        def run(chunk: list[str]) -> list[InstanceResult]:
            return self._power_chunk(action, region, chunk, force, stopped_mode, dry_run, skip_in_target)

        if chunks:
            with ThreadPoolExecutor(
                max_workers=min(self.concurrency, len(chunks)), thread_name_prefix="ecs-power"
            ) as pool:
                for results in completed(pool, run, chunks):
                    done.update((r.instance_id, r) for r in results)
                    if on_progress is not None:
                        on_progress(list(done.values()))
        return [done[i] for i in ids]

    def _power_chunk(
        self, action, region, ids, force, stopped_mode, dry_run, skip_in_target
    ) -> list[InstanceResult]:
        results: dict[str, InstanceResult] = {}
        to_send = list(ids)
        if skip_in_target:
            try:
                current = {i.instance_id: i for i in self._describe_chunk(region, ids)}
            except UpstreamError as exc:
                return [
                    InstanceResult(
                        i, FAILED, exc.code or "Error", f"could not read its status: {exc.message}"
                    )
                    for i in ids
                ]
            to_send = []
            for iid in ids:
                info = current.get(iid)
                if info is None:
                    results[iid] = InstanceResult(
                        iid, FAILED, "InvalidInstanceId.NotFound", f"not found in {region}"
                    )
                    continue
                kind = classify(action, info.status)
                if kind == "act":
                    to_send.append(iid)
                elif kind == "already":
                    results[iid] = InstanceResult(iid, ALREADY_THERE, "", "", info.status, info.status)
                else:
                    results[iid] = InstanceResult(
                        iid,
                        FAILED,
                        "IncorrectInstanceStatus",
                        f"it is {info.status}; cannot {action} it now",
                        info.status,
                        info.status,
                    )
        if to_send:
            results.update(self._send(action, region, to_send, force, stopped_mode, dry_run))
        return [results[i] for i in ids]

    def _send(self, action, region, ids, force, stopped_mode, dry_run) -> dict[str, InstanceResult]:
        common = {
            "region_id": region,
            "instance_id": ids,
            "batch_optimization": "AllTogether" if dry_run else "SuccessFirst",
            "dry_run": True if dry_run else None,
        }
        if action == "start":
            request = ecs_models.StartInstancesRequest(**common)
        elif action == "stop":
            request = ecs_models.StopInstancesRequest(
                **common, force_stop=force or None, stopped_mode=stopped_mode
            )
        else:
            request = ecs_models.RebootInstancesRequest(**common, force_reboot=force or None)
        try:
            body = self._call(*POWER_API[action], request)
        except UpstreamError as exc:
            if dry_run and exc.code == "DRYRUN.SUCCESS":
                return {i: InstanceResult(i, DRY_RUN_OK, exc.code, "ECS's checks passed") for i in ids}
            prefix = "DryRun: " if dry_run else ""
            return {
                i: InstanceResult(
                    i, FAILED, exc.code or "Error", prefix + exc.message, request_id=exc.request_id or ""
                )
                for i in ids
            }
        if dry_run:
            return {i: InstanceResult(i, DRY_RUN_OK, "", "ECS's checks passed") for i in ids}
        return power_results(body, ids)


def build_adapter(settings, ecs_policy, metrics=None, **overrides) -> EcsAdapter:
    options = {
        "rate_per_second": ecs_policy.api_rate_per_second,
        "concurrency": ecs_policy.batch_concurrency,
        "wait_timeout": float(ecs_policy.wait_timeout_seconds),
    }
    options.update(overrides)
    return EcsAdapter(make_client(settings), settings.ALIBABA_CLOUD_REGION_ID, metrics=metrics, **options)


@capability.adapter("ecs")
def build(services) -> EcsAdapter:
    return build_adapter(services.settings, services.policy.ecs, services.metrics)
