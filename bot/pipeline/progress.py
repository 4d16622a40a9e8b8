"""The one Slack message a job keeps: posted once, edited in place at most about once a second, and
replaced by the final report (with a file when the full list does not fit).

Edits go out beside the job, not in its way: the job hands over what the message should say and goes
on; one edit is in flight at a time and the latest text wins (an edit Slack has not answered yet is
not followed by the texts in between). The final report waits for the edit in flight, then replaces
the message itself, so nothing older lands after it."""

from __future__ import annotations

import logging
import threading
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
        self._lock = threading.Condition()
        self._pending: tuple[str, list[dict]] | None = None
        self._editing = False

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
        if self.record.progress_ts:
            self._edit_soon(text, blocks)
            return
        self._post(text, blocks)

    def _edit_soon(self, text: str, blocks: list[dict]) -> None:
        with self._lock:
            self._pending = (text, blocks)
            if self._editing:
                return
            self._editing = True
        threading.Thread(target=self._edits, name=f"progress-{self.record.plan.id}", daemon=True).start()

    def _edits(self) -> None:
        while True:
            with self._lock:
                item, self._pending = self._pending, None
                if item is None:
                    self._editing = False
                    self._lock.notify_all()
                    return
            try:
                self._edit(*item)
            except ChatOpsError as exc:
                log.warning("could not edit progress", extra={"job": self.record.plan.id, "error": str(exc)})
            except Exception:  # noqa: BLE001 - a failed edit must not stop the later ones
                log.exception("progress edit failed", extra={"job": self.record.plan.id})

    def _edit(self, text: str, blocks: list[dict]) -> None:
        self.services.slack.update(self.record.progress_channel, self.record.progress_ts, text, blocks)

    def settle(self) -> None:
        """Wait for the edit in flight (and the latest one handed over) to reach Slack."""
        with self._lock:
            while self._editing:
                self._lock.wait()

    def _post(self, text: str, blocks: list[dict]) -> None:
        # No message yet, or it can no longer be edited: post one (in the notify channel if need be).
        slack = self.services.slack
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
        self.settle()
        self._last_at, self._last_text = self.services.clock.monotonic(), report.text
        try:
            if not self.record.progress_ts:
                raise ChatOpsError("no progress message yet")
            self._edit(report.text, report.blocks)
        except ChatOpsError as exc:
            if self.record.progress_ts:
                log.warning("could not edit progress", extra={"job": self.record.plan.id, "error": str(exc)})
            self._post(report.text, report.blocks)
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
