"""The one Slack message a job keeps: posted once, edited in place at most about once a second, and
replaced by the final report (with a file when the full list does not fit)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.errors import ChatOpsError

if TYPE_CHECKING:
    from bot.pipeline.jobs import JobRecord
    from bot.pipeline.kinds import Report
    from bot.services import Services

log = logging.getLogger(__name__)

EVERY_SECONDS = 1.0


class ProgressMessage:
    def __init__(self, services: Services, record: JobRecord, save: Callable[[], None]):
        self.services = services
        self.record = record  # holds the message's channel and ts, saved with the job
        self._save = save
        self._last_at: float | None = None
        self._last_text = ""

    def _channels(self) -> list[str]:
        notify = self.services.settings.SLACK_NOTIFY_CHANNEL
        return list(dict.fromkeys(c for c in (self.record.plan.channel, notify) if c))

    def show(self, text: str, blocks: list[dict], force: bool = False) -> None:
        """Edit the message (post it the first time). Unforced updates are dropped when the last one
        was less than EVERY_SECONDS ago or said the same."""
        now = self.services.clock.monotonic()
        recent = self._last_at is not None and now - self._last_at < EVERY_SECONDS
        if not force and (recent or text == self._last_text):
            return
        self._last_at, self._last_text = now, text
        slack = self.services.slack
        if self.record.progress_ts:
            try:
                slack.update(self.record.progress_channel, self.record.progress_ts, text, blocks)
                return
            except ChatOpsError as exc:
                log.warning("could not edit progress", extra={"job": self.record.plan.id, "error": str(exc)})
                if not force:
                    return
        # No message yet, or it can no longer be edited: post one (in the notify channel if need be).
        origin = self.record.plan.origin
        for channel in self._channels():
            thread = origin.thread_ts if channel == origin.channel else None
            try:
                posted = slack.post(channel, text, blocks, thread_ts=thread)
            except ChatOpsError as exc:
                log.warning("could not post progress", extra={"channel": channel, "error": str(exc)})
                continue
            self.record.progress_channel, self.record.progress_ts = posted.channel, posted.ts
            self._save()
            return

    def finish(self, report: Report) -> None:
        self.show(report.text, report.blocks, force=True)
        if report.attachment is None:
            return
        channel = self.record.progress_channel or next(iter(self._channels()), None)
        if not channel:
            return
        try:
            self.services.slack.upload_text(
                channel, report.attachment.filename, report.attachment.content, title=report.attachment.title
            )
        except ChatOpsError as exc:
            log.warning("could not attach the report", extra={"job": self.record.plan.id, "error": str(exc)})
