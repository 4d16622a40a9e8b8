"""The Slack emulator's endpoints outside the Web API: `response_url` hooks and the v2 file upload flow
(files.getUploadURLExternal → POST to the upload URL → files.completeUploadExternal).

A response_url works five times within 30 minutes; what it is sent is checked against Slack's limits
(sandbox/slack_limits.py) and a refusal answers HTTP 400 with the bare error code (`invalid_blocks`,
`no_text`, …), as Slack's hooks do. A mixin of SlackEmulator (sandbox/slack_emulator.py), which owns
the lock, the messages and the timeline.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from sandbox.emulator import Request, Response
from sandbox.slack_limits import check_message

RESPONSE_URL_USES = 5
RESPONSE_URL_SECONDS = 1800


@dataclass
class _ResponseUrl:
    channel: str
    user: str
    message_ts: str | None
    uses: int = 0
    created: float = field(default_factory=time.time)


def _plain(status: int, text: str) -> Response:
    return Response(status, text.encode(), {"Content-Type": "text/plain"})


class SlackHooks:
    """Needs from its host: `_lock`, `messages`, `files`, `base_url`, `enforce_limits`, `record`,
    `_effect`, `_next_ts` and `_keep_message`."""

    def _init_hooks(self) -> None:
        self._response_urls: dict[str, _ResponseUrl] = {}

    def new_response_url(self, channel: str, user: str, message_ts: str | None = None) -> str:
        token = secrets.token_urlsafe(12)
        with self._lock:
            self._response_urls[token] = _ResponseUrl(channel, user, message_ts)
        return f"{self.base_url}/response/{token}"

    def _response_url(self, req: Request) -> Response:
        token = req.path.rsplit("/", 1)[-1]
        with self._lock:
            target = self._response_urls.get(token)
            if target is None or time.time() - target.created > RESPONSE_URL_SECONDS:
                self.record("response_url", req, 404)
                return _plain(404, "no_active_hooks")
            if target.uses >= RESPONSE_URL_USES:
                self.record("response_url", req, 410)
                return _plain(410, "used_up")
            target.uses += 1
            try:
                data = json.loads(req.body or b"{}")
            except ValueError:
                data = None
            if not isinstance(data, dict):
                self.record("response_url", req, 400)
                return _plain(400, "invalid_payload")
            refused = self._refused_hook(data)
            if refused is not None:
                self.record("response_url", req, 400, refused.body())
                return _plain(400, refused.error)
            self._apply_hook(target, data)
        self.record("response_url", req, 200, data)
        return _plain(200, "ok")

    def _refused_hook(self, data: dict[str, Any]):
        if not self.enforce_limits or data.get("delete_original"):
            return None
        return check_message(data)

    def _apply_hook(self, target: _ResponseUrl, data: dict[str, Any]) -> None:
        text, blocks = data.get("text") or "", data.get("blocks") or []
        msg = self.messages.get(target.channel, {}).get(target.message_ts or "")
        if data.get("delete_original") and msg is not None:
            msg.deleted = True
            self._effect("delete", target.channel, msg.ts, msg.text, [])
        elif data.get("replace_original") and msg is not None:
            msg.text, msg.blocks = text, blocks
            msg.edits += 1
            self._effect("update", target.channel, msg.ts, text, blocks)
        elif data.get("response_type") == "in_channel":
            msg = self._keep_message(target.channel, text, blocks)
            self._effect("post", target.channel, msg.ts, text, blocks)
        else:
            self._effect("ephemeral", target.channel, self._next_ts(), text, blocks, user=target.user)

    # files -----------------------------------------------------------------------------------------
    def api_files_getUploadURLExternal(self, args):
        try:
            length = int(args.get("length") or 0)
        except (TypeError, ValueError):
            length = 0
        if not args.get("filename") or length <= 0:
            return {"ok": False, "error": "invalid_arguments"}
        file_id = "F" + secrets.token_hex(5).upper()
        with self._lock:
            self.files[file_id] = {"id": file_id, "name": args["filename"], "length": length, "content": None}
        return {"ok": True, "upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    def api_files_completeUploadExternal(self, args):
        files = args.get("files") or []
        if isinstance(files, str):
            files = json.loads(files)
        channel = args.get("channel_id") or args.get("channels")
        out = []
        with self._lock:
            for f in files:
                stored = self.files.get(f.get("id"))
                if stored is None or stored["content"] is None:
                    return {"ok": False, "error": "file_not_found"}
                stored["title"] = f.get("title") or stored["name"]
                stored["channel"] = channel
                out.append({"id": stored["id"], "name": stored["name"], "title": stored["title"]})
                if channel:
                    ts = self._next_ts()
                    comment = args.get("initial_comment") or ""
                    self._effect(
                        "file",
                        channel,
                        ts,
                        f"{comment}\n[file {stored['name']}: {len(stored['content'])} bytes]".strip(),
                        [],
                    )
        return {"ok": True, "files": out}

    def _upload(self, req: Request) -> Response:
        file_id = req.path.rsplit("/", 1)[-1]
        with self._lock:
            stored = self.files.get(file_id)
            if stored is None:
                return Response(404, b"not found")
            stored["content"] = req.body
        self.record("upload", req, 200)
        return Response(200, b"OK - " + str(len(req.body)).encode(), {"Content-Type": "text/plain"})
