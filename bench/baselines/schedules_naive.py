"""The seed's office-hours scheduler, re-implemented faithfully: two UTC cron triggers per schedule.

Each trigger (a timer-triggered function in the original) lists the schedule's instances with
DescribeInstances and a tag filter, then sends StartInstance / StopInstance — the singular APIs — once per
instance, one after the other: no retry, no waiting, no report. Instances the listing shows in a state
the call cannot leave (already running for a start, already stopped for a stop) are skipped, the most
economical reading of the seed (it can only lower the baseline's call count).

- faithful (`paged=False`): one DescribeInstances call without PageNumber / PageSize, so ECS answers its
  first page: 10 instances (the documented default page size).
- paging fixed (`paged=True`): the minimal fix. The same request, PageSize still unset (10 per page, the
  seed's page size), in a PageNumber loop until `TotalCount` instances have been read or a page comes
  back short. Raising the page size to the documented maximum of 100 would be a second fix on top.

The cron expressions are the seed's too: each local start / stop time is converted to UTC with the
zone's offset on the day the triggers were deployed (so they drift an hour when the zone changes to or
from daylight saving time), and the weekday field is shifted when the conversion crosses midnight.

Like the original it talks to the SDK directly (it is not part of the bot).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
from darabonba.exceptions import UnretryableException

from bench.baselines.sdk import NaiveBaseline

DEFAULT_PAGE_SIZE = 10  # what DescribeInstances answers when PageSize is not set
MAX_PAGES = 1000  # the loop's bound (10,000 instances at the default page size)
_CRON_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class CronTrigger:
    """One timer: `minute hour * * weekdays` in UTC, acting on one schedule."""

    schedule: str
    action: str  # "start" | "stop"
    hour: int
    minute: int
    weekdays: frozenset[int]  # 0 = Monday (UTC)

    @property
    def expression(self) -> str:
        days = ",".join(_CRON_DAYS[d] for d in sorted(self.weekdays))
        return f"{self.minute} {self.hour} * * {days}"

    def fires_on(self, day: dt.date) -> bool:
        return day.weekday() in self.weekdays

    def at(self, day: dt.date) -> dt.datetime:
        """When it fires on `day` (UTC)."""
        return dt.datetime.combine(day, dt.time(self.hour, self.minute), tzinfo=dt.UTC)


def cron_triggers(
    schedule: str,
    zone: str,
    weekdays: frozenset[int],
    start: dt.time,
    stop: dt.time,
    deployed: dt.date,
) -> list[CronTrigger]:
    """The schedule's two UTC triggers, computed with the zone's offset on `deployed`."""
    out = []
    for action, local in (("start", start), ("stop", stop)):
        offset = ZoneInfo(zone).utcoffset(dt.datetime.combine(deployed, local))
        minutes = local.hour * 60 + local.minute - int(offset.total_seconds() // 60)
        shift, minutes = divmod(minutes, 24 * 60)
        days = frozenset((d + shift) % 7 for d in weekdays)
        out.append(CronTrigger(schedule, action, minutes // 60, minutes % 60, days))
    return out


class NaiveScheduler(NaiveBaseline):
    """What one trigger invocation does. Not thread-safe: one instance per invocation (as each function
    invocation built its own client)."""

    def __init__(
        self,
        endpoint: str,
        access_key_id: str,
        access_key_secret: str,
        region: str,
        tag_key: str = "Schedule",
        paged: bool = False,
    ):
        super().__init__(endpoint, access_key_id, access_key_secret, region)
        self.tag_key = tag_key
        self.paged = paged

    def list_by_tag(self, value: str) -> list[tuple[str, str]]:
        """(id, status) of the instances tagged `tag_key=value`: the first page, or every page."""
        out: list[tuple[str, str]] = []
        for page in range(1, MAX_PAGES + 1):
            self.api_calls += 1
            body = self.client.describe_instances(
                ecs_models.DescribeInstancesRequest(
                    region_id=self.region,
                    tag=[ecs_models.DescribeInstancesRequestTag(key=self.tag_key, value=value)],
                    page_number=page if self.paged else None,
                )
            ).body
            rows = body.instances.instance if body.instances and body.instances.instance else []
            out.extend((i.instance_id, i.status) for i in rows)
            if not self.paged or len(rows) < DEFAULT_PAGE_SIZE or len(out) >= (body.total_count or 0):
                break
        return out

    def fire(self, trigger: CronTrigger) -> int:
        """List the schedule's instances and start / stop them one by one; returns how many calls were
        accepted. A failed call is recorded and not tried again."""
        source = "Stopped" if trigger.action == "start" else "Running"
        sent = 0
        for instance_id, status in self.list_by_tag(trigger.schedule):
            if status != source:
                continue
            self.api_calls += 1
            try:
                if trigger.action == "start":
                    self.client.start_instance(ecs_models.StartInstanceRequest(instance_id=instance_id))
                else:
                    self.client.stop_instance(ecs_models.StopInstanceRequest(instance_id=instance_id))
                sent += 1
            except (AlibabaCloudException, UnretryableException) as exc:
                self.errors.append(f"{instance_id}: {getattr(exc, 'code', exc)}")
        return sent
