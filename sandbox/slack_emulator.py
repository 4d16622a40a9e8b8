"""Slack Web API emulator: the methods the bot uses, `response_url` endpoints, the v2 file upload flow
(those two in sandbox/slack_hooks.py).

Wire format as slack_sdk sends it: `POST /api/<method>` with a JSON or form body (arguments in the
query string are taken too, as Slack does) and `Authorization: Bearer <token>`; answers
`{"ok": ...}`. Every call is recorded, and every visible effect (a post, an edit, an ephemeral
message, a deletion) is appended to `timeline` for the console and for tests. Rate-limit mode answers
429 with `Retry-After` beyond N messages per second per channel. Messages and views are held to
Slack's documented limits (sandbox/slack_limits.py: blocks, text lengths, `no_text`, …) and refused
with Slack's error codes and json-pointer details unless `enforce_limits` is turned off. The
workspace's people, channels and user groups, and the methods that read them, are in
sandbox/slack_directory.py.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sandbox import credentials
from sandbox.emulator import Emulator, EmulatorSpec, Request, Response, register_emulator
from sandbox.slack_directory import SlackDirectory
from sandbox.slack_hooks import SlackHooks
from sandbox.slack_limits import check_message, check_view

# Web API methods whose arguments Slack checks against its limits, and how.
MESSAGE_METHODS = frozenset({"chat.postMessage", "chat.postEphemeral", "chat.update", "chat.scheduleMessage"})
VIEW_METHODS = frozenset({"views.open", "views.publish", "views.update", "views.push"})


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict] = field(default_factory=list)
    user: str = "UBOT"
    thread_ts: str | None = None
    edits: int = 0
    deleted: bool = False


@dataclass
class Effect:
    """Something a person in Slack would see happen."""

    seq: int
    kind: str  # "post" | "update" | "ephemeral" | "delete" | "file"
    channel: str | None
    ts: str | None
    text: str
    blocks: list[dict]
    user: str | None = None  # for ephemeral messages: who sees it
    thread_ts: str | None = None


class _Bucket:
    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self.tokens, self.at = burst, time.monotonic()

    def take(self) -> float:
        """0 when allowed, else seconds to wait."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class SlackEmulator(SlackHooks, SlackDirectory, Emulator):
    name = "slack"

    def __init__(self, port: int = 0, token: str = credentials.SLACK_BOT_TOKEN):
        super().__init__(port)
        self.token = token
        self.messages: dict[str, dict[str, Message]] = {}
        self.timeline: list[Effect] = []
        self.files: dict[str, dict[str, Any]] = {}
        self.views: list[dict] = []
        self._lock = threading.RLock()
        self._init_directory()
        self._ts = itertools.count(1)
        self._seq = itertools.count(1)
        self._init_hooks()
        # knobs
        self.enforce_limits = True  # refuse what real Slack refuses (Block Kit and message limits)
        self.rate_limit_per_channel: float | None = None  # messages per second per channel (postMessage)
        self.rate_limit_burst: float = 1.0
        self.force_ratelimit_channels: set[str] = set()
        self.archived_channels: set[str] = set()  # posts there answer `is_archived`, as Slack does
        self._buckets: dict[str, _Bucket] = {}
        self.post_times: dict[str, list[float]] = {}  # accepted chat.postMessage times per channel

    # knobs -----------------------------------------------------------------------------------------
    def set_rate_limit(self, per_channel_per_second: float | None, burst: float = 1.0) -> None:
        with self._lock:
            self.rate_limit_per_channel = per_channel_per_second
            self.rate_limit_burst = burst
            self._buckets.clear()

    # helpers for the console and tests -------------------------------------------------------------
    def effects_since(self, seq: int) -> list[Effect]:
        with self._lock:
            return [e for e in self.timeline if e.seq > seq]

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self.timeline[-1].seq if self.timeline else 0

    def channel_messages(self, channel: str) -> list[Message]:
        with self._lock:
            return [m for m in self.messages.get(channel, {}).values() if not m.deleted]

    def message(self, channel: str, ts: str) -> Message | None:
        with self._lock:
            return self.messages.get(channel, {}).get(ts)

    # HTTP ------------------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        if req.path.startswith("/response/"):
            return self._response_url(req)
        if req.path.startswith("/upload/"):
            return self._upload(req)
        if not req.path.startswith("/api/"):
            return Response.json({"ok": False, "error": "unknown_method"}, 404)
        method = req.path[len("/api/") :]
        args = self._args(req)
        if args is None:
            out = {"ok": False, "error": "invalid_form_data"}
            self.record(method, req, 200, out)
            return Response.json(out)
        if req.headers.get("authorization") != f"Bearer {self.token}":
            out = {"ok": False, "error": "invalid_auth" if req.headers.get("authorization") else "not_authed"}
            self.record(method, req, 200, out)
            return Response.json(out)
        fn = getattr(self, "api_" + method.replace(".", "_"), None)
        if fn is None:
            out = {"ok": False, "error": "unknown_method"}
            self.record(method, req, 404, out)
            return Response.json(out, 404)
        refused = self._refused(method, args)
        result = refused.body() if refused is not None else fn(args)
        if isinstance(result, Response):
            self.record(method, req, result.status, json.loads(result.body or b"{}"))
            return result
        self.record(method, req, 200, result)
        return Response.json(result, headers={"x-slack-req-id": secrets.token_hex(8)})

    def _refused(self, method: str, args: dict[str, Any]):
        if not self.enforce_limits:
            return None
        if method in MESSAGE_METHODS:
            return check_message(args)
        if method in VIEW_METHODS:
            return check_view(args.get("view"))
        return None

    @staticmethod
    def _args(req: Request) -> dict[str, Any] | None:
        """The method's arguments: the query string overlaid with the body."""
        query: dict[str, Any] = dict(req.query)
        body = SlackEmulator._body_args(req)
        return None if body is None else {**query, **body}

    @staticmethod
    def _body_args(req: Request) -> dict[str, Any] | None:
        ctype = req.headers.get("content-type", "")
        if not req.body:
            return {}
        if ctype.startswith("application/json"):
            try:
                data = json.loads(req.body)
            except ValueError:
                return None
            return data if isinstance(data, dict) else None
        args: dict[str, Any] = dict(req.form())
        for key in ("blocks", "attachments", "view", "files"):
            if isinstance(args.get(key), str):
                try:
                    args[key] = json.loads(args[key])
                except ValueError:
                    return None
        return args

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _keep_message(
        self, channel: str, text: str, blocks: list[dict], thread_ts: str | None = None
    ) -> Message:
        msg = Message(channel, self._next_ts(), text, blocks, thread_ts=thread_ts)
        self.messages.setdefault(channel, {})[msg.ts] = msg
        return msg

    def _effect(self, kind, channel, ts, text, blocks, user=None, thread_ts=None) -> None:
        self.timeline.append(
            Effect(next(self._seq), kind, channel, ts, text or "", blocks or [], user, thread_ts)
        )

    def _ratelimited(self, channel: str) -> Response | None:
        if channel in self.force_ratelimit_channels:
            return Response.json({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": "1"})
        if self.rate_limit_per_channel is None:
            return None
        bucket = self._buckets.setdefault(
            channel, _Bucket(self.rate_limit_per_channel, self.rate_limit_burst)
        )
        wait = bucket.take()
        if wait > 0:
            return Response.json(
                {"ok": False, "error": "ratelimited"}, 429, {"Retry-After": str(max(1, round(wait)))}
            )
        return None

    # Web API methods -------------------------------------------------------------------------------
    def api_auth_test(self, args):
        return {
            "ok": True,
            "url": "https://sandbox.slack.test/",
            "team": "Sandbox",
            "user": "chatops",
            "team_id": credentials.SLACK_TEAM_ID,
            "user_id": "UBOT",
            "bot_id": "BBOT",
        }

    def api_chat_postMessage(self, args):
        channel = str(args.get("channel") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if channel in self.archived_channels:
            return {"ok": False, "error": "is_archived"}
        with self._lock:
            limited = self._ratelimited(channel)
            if limited is not None:
                return limited
            msg = self._keep_message(
                channel, args.get("text") or "", args.get("blocks") or [], thread_ts=args.get("thread_ts")
            )
            ts = msg.ts
            self.post_times.setdefault(channel, []).append(time.time())
            self._effect("post", channel, ts, msg.text, msg.blocks, thread_ts=msg.thread_ts)
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "message": {"text": msg.text, "ts": ts, "user": "UBOT"},
        }

    def api_chat_update(self, args):
        channel, ts = str(args.get("channel") or ""), str(args.get("ts") or "")
        with self._lock:
            msg = self.messages.get(channel, {}).get(ts)
            if msg is None or msg.deleted:
                return {"ok": False, "error": "message_not_found"}
            if "text" in args:
                msg.text = args.get("text") or ""
            if "blocks" in args:
                msg.blocks = args.get("blocks") or []
            msg.edits += 1
            self._effect("update", channel, ts, msg.text, msg.blocks, thread_ts=msg.thread_ts)
        return {"ok": True, "channel": channel, "ts": ts, "text": msg.text}

    def api_chat_delete(self, args):
        channel, ts = str(args.get("channel") or ""), str(args.get("ts") or "")
        with self._lock:
            msg = self.messages.get(channel, {}).get(ts)
            if msg is None or msg.deleted:
                return {"ok": False, "error": "message_not_found"}
            msg.deleted = True
            self._effect("delete", channel, ts, msg.text, [])
        return {"ok": True, "channel": channel, "ts": ts}

    def api_chat_postEphemeral(self, args):
        channel, user = str(args.get("channel") or ""), str(args.get("user") or "")
        if user not in self.users:
            return {"ok": False, "error": "user_not_found"}
        with self._lock:
            ts = self._next_ts()
            self._effect(
                "ephemeral", channel, ts, args.get("text") or "", args.get("blocks") or [], user=user
            )
        return {"ok": True, "message_ts": ts}

    def api_conversations_history(self, args):
        """Newest first, `limit` (default 100, at most 999) per page, `cursor` for the next page."""
        channel = str(args.get("channel") or "")
        if channel not in self.channels and channel not in self.messages:
            return {"ok": False, "error": "channel_not_found"}
        try:
            limit = max(1, min(999, int(args.get("limit") or 100)))
            start = int(str(args.get("cursor") or "0").removeprefix("next:") or 0)
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        with self._lock:
            found = [m for m in self.messages.get(channel, {}).values() if not m.deleted]
        found.sort(key=lambda m: float(m.ts), reverse=True)
        page = found[start : start + limit]
        more = start + limit < len(found)
        return {
            "ok": True,
            "messages": [
                {
                    "type": "message",
                    "user": m.user,
                    "text": m.text,
                    "ts": m.ts,
                    "blocks": m.blocks,
                    **({"thread_ts": m.thread_ts} if m.thread_ts else {}),
                    **({"edited": {"user": m.user, "ts": m.ts}} if m.edits else {}),
                }
                for m in page
            ],
            "has_more": more,
            "response_metadata": {"next_cursor": f"next:{start + limit}" if more else ""},
        }

    def api_views_open(self, args):
        if not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        view = args.get("view") or {}
        with self._lock:
            self.views.append({"kind": "modal", "view": view})
        return {"ok": True, "view": {"id": "V" + secrets.token_hex(4).upper(), **view}}

    def api_views_publish(self, args):
        view = args.get("view") or {}
        with self._lock:
            self.views.append({"kind": "home", "user": args.get("user_id"), "view": view})
        return {"ok": True, "view": {"id": "V" + secrets.token_hex(4).upper(), **view}}


def max_rate_per_second(times: list[float], window: float = 10.0) -> float:
    """Highest average rate over any `window`-second span of `times` (sustained, not instantaneous)."""
    if not times:
        return 0.0
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - window:
            j += 1
        best = max(best, i - j + 1)
    return best / window


register_emulator(
    EmulatorSpec(
        name="slack",
        factory=lambda stack: SlackEmulator(),
        settings=lambda emu: {
            "SLACK_API_URL": f"{emu.base_url}/api/",
            "SLACK_BOT_TOKEN": credentials.SLACK_BOT_TOKEN,
            "SLACK_SIGNING_SECRET": credentials.SLACK_SIGNING_SECRET,
            "SLACK_NOTIFY_CHANNEL": "C_OPS",
        },
        order=10,
    )
)
