"""The naive original, re-implemented faithfully (with the one fix it needs to finish: it pages).

The original script listed instances with a tag filter through DescribeInstances, then called
StopInstance once per instance, one after the other, with no retry and no report. Here the listing pages
(PageNumber / PageSize, the legacy paging such scripts use) so that it sees every instance; everything
else is as it was: one StopInstance per running instance, sequential, no retry, no rate limiting. To give
both algorithms the same end condition it then polls the same paged listing (once a second) until every
instance it stopped reads Stopped.

Like the original, it talks to the SDK directly (it is not part of the bot).
"""

from __future__ import annotations

import time

from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
from darabonba.exceptions import UnretryableException

from bench.baselines.sdk import NaiveBaseline

PAGE_SIZE = 100  # generous: the originals often left the 10-item default


class NaiveFleet(NaiveBaseline):
    def list_by_tag(self, key: str, value: str) -> list[tuple[str, str]]:
        """(id, status) of every instance with the tag, page by page."""
        out: list[tuple[str, str]] = []
        page = 1
        while True:
            self.api_calls += 1
            body = self.client.describe_instances(
                ecs_models.DescribeInstancesRequest(
                    region_id=self.region,
                    tag=[ecs_models.DescribeInstancesRequestTag(key=key, value=value)],
                    page_number=page,
                    page_size=PAGE_SIZE,
                )
            ).body
            rows = body.instances.instance if body.instances and body.instances.instance else []
            out.extend((i.instance_id, i.status) for i in rows)
            if len(rows) < PAGE_SIZE:
                return out
            page += 1

    def stop_by_tag(self, key: str, value: str, wait_timeout: float = 600.0) -> int:
        """Stop every running instance with the tag, one call each; wait until they read Stopped.
        Returns how many reached Stopped."""
        stopped = []
        for instance_id, status in self.list_by_tag(key, value):
            if status != "Running":
                continue
            self.api_calls += 1
            try:
                self.client.stop_instance(ecs_models.StopInstanceRequest(instance_id=instance_id))
                stopped.append(instance_id)
            except (AlibabaCloudException, UnretryableException) as exc:  # no retry: the instance is lost
                self.errors.append(f"{instance_id}: {getattr(exc, 'code', exc)}")
        deadline = time.monotonic() + wait_timeout
        wanted = set(stopped)
        while True:
            states = dict(self.list_by_tag(key, value))
            done = sum(1 for i in wanted if states.get(i) == "Stopped")
            if done == len(wanted) or time.monotonic() >= deadline:
                return done
            time.sleep(1.0)
