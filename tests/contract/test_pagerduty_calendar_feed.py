"""Fetching ICS feeds: conditional GET (ETag / Last-Modified → 304), files (mtime validator), errors."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time

import pytest

from bot.adapters.calendar import CalendarFeeds
from bot.errors import UpstreamError
from sandbox.emulator import Emulator, Request, Response
from sandbox.pagerduty_calendar import calendar, vevent

ICS = calendar(
    vevent("feed@x", dt.datetime(2025, 1, 1, 9, tzinfo=dt.UTC), dt.datetime(2025, 1, 1, 10, tzinfo=dt.UTC))
)


class IcsServer(Emulator):
    """A calendar server: `/cal.ics` with an ETag and a Last-Modified date, 304 when they match."""

    name = "ics"
    body = ICS.encode()
    last_modified = "Wed, 01 Jan 2025 00:00:00 GMT"

    def handle(self, req: Request) -> Response:
        if req.path != "/secret-token/basic.ics":
            self.record("missing", req, 404)
            return Response(404, b"not found")
        etag = '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'
        headers = {"ETag": etag, "Last-Modified": self.last_modified, "Content-Type": "text/calendar"}
        if (
            req.headers.get("if-none-match") == etag
            or req.headers.get("if-modified-since") == self.last_modified
        ):
            self.record("get", req, 304)
            return Response(304, b"", headers)
        self.record("get", req, 200)
        return Response(200, self.body, headers)


@pytest.fixture
def server():
    srv = IcsServer().start()
    yield srv
    srv.stop()


def test_conditional_get_over_http(server):
    feeds = CalendarFeeds(timeout=5)
    url = server.base_url + "/secret-token/basic.ics"
    first = feeds.fetch(url)
    assert first.body == ICS.encode() and first.etag and first.last_modified
    again = feeds.fetch(url, first.etag, first.last_modified)
    assert again.not_modified
    calls = server.calls_named("get")
    assert [c.status for c in calls] == [200, 304]
    assert calls[1].request.headers["if-none-match"] == first.etag
    assert calls[1].request.headers["if-modified-since"] == first.last_modified
    server.body = ICS.replace("feed@x", "feed2@x").encode()
    server.last_modified = "Thu, 02 Jan 2025 00:00:00 GMT"
    changed = feeds.fetch(url, first.etag, first.last_modified)
    assert changed.body == server.body and changed.etag != first.etag


def test_errors_name_the_feed_without_its_secret_path(server):
    feeds = CalendarFeeds(timeout=5)
    with pytest.raises(UpstreamError) as err:
        feeds.fetch(server.base_url + "/wrong/basic.ics")
    assert "HTTP 404" in str(err.value) and "wrong" not in str(err.value)
    with pytest.raises(UpstreamError, match="not a valid iCalendar"):
        feeds.occurrences(
            "x",
            b"this is not ics",
            dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
            dt.datetime(2025, 1, 2, tzinfo=dt.UTC),
            dt.UTC,
        )


def test_files_use_their_mtime_as_validator(tmp_path):
    feeds = CalendarFeeds()
    path = tmp_path / "ops.ics"
    path.write_text(ICS)
    first = feeds.fetch(str(path))
    assert first.body == ICS.encode()
    assert feeds.fetch("file://" + str(path), first.etag).not_modified
    path.write_text(ICS.replace("feed@x", "changed@x"))
    later = time.time() + 5
    os.utime(path, (later, later))
    assert b"changed@x" in feeds.fetch(str(path), first.etag).body
    with pytest.raises(UpstreamError, match="cannot read"):
        feeds.fetch(str(tmp_path / "missing.ics"))
