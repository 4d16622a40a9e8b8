"""A job that fails for good after being accepted is said in the ops channel, at most once per job name
every ten minutes (bot.queue.report_given_up), and reporting never raises."""

from __future__ import annotations

from types import SimpleNamespace

from bot.clock import ManualClock
from bot.queue import GIVEN_UP_EVERY, report_given_up
from bot.store.sqlite import SQLiteStore


class Slack:
    def __init__(self, fail: bool = False):
        self.posted: list[tuple[str, str]] = []
        self.fail = fail

    def post(self, channel, text, *args, **kwargs):
        if self.fail:
            raise RuntimeError("Slack is down")
        self.posted.append((channel, text))


def services(tmp_path, clock, slack):
    return SimpleNamespace(
        store=SQLiteStore(tmp_path / "s.db", clock=clock),
        slack=slack,
        policy=SimpleNamespace(events=SimpleNamespace(ops_channel="C_OPS", default_channel=None)),
        settings=SimpleNamespace(SLACK_NOTIFY_CHANNEL="C_NOTIFY"),
    )


def test_reported_once_per_job_and_window(tmp_path):
    clock, slack = ManualClock(), Slack()
    s = services(tmp_path, clock, slack)
    report_given_up(s, "pagerduty.webhook_effect", 6, "ref-1")
    report_given_up(s, "pagerduty.webhook_effect", 6, "ref-2")
    report_given_up(s, "pipeline.run", 1, "ref-3")
    assert [c for c, _ in slack.posted] == ["C_OPS", "C_OPS"]
    assert (
        "`pagerduty.webhook_effect` after 6 attempt(s)" in slack.posted[0][1]
        and "ref-1" in slack.posted[0][1]
    )
    clock.advance(GIVEN_UP_EVERY + 1)
    report_given_up(s, "pagerduty.webhook_effect", 6, "ref-4")
    assert len(slack.posted) == 3 and "ref-4" in slack.posted[2][1]


def test_a_report_that_cannot_be_posted_does_not_raise(tmp_path):
    s = services(tmp_path, ManualClock(), Slack(fail=True))
    report_given_up(s, "pipeline.run", 1, "ref-5")  # logged, never raised
    assert s.store.get("queue:given-up:pipeline.run") == "ref-5"
