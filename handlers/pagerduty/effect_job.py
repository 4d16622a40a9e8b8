"""The task-queue job that carries the Slack effect of one admitted PagerDuty event.

Its name is shared by the endpoint that enqueues it (`webhook.py`, which also registers the job) and by
the effect itself (`effects.py`), which puts an event back on the queue while it waits for its
incident's card — kept here so neither of the two imports the other's module for it."""

from __future__ import annotations

EFFECT_JOB = "pagerduty.webhook_effect"
