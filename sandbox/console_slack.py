"""What the console sends: Slack-shaped requests, signed with the sandbox's signing secret.

A slash command is form-encoded as Slack does; a click is a `block_actions` payload. Both are POSTed to
the bot's /slack/events with `X-Slack-Signature`, so the console exercises the real HTTP path.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
from urllib.parse import urlencode

from sandbox import credentials


def signed_post(web_url: str, body: str) -> tuple[int, str, str]:
    """POST `body` to /slack/events, signed; (status, content type, text) of the answer."""
    ts = str(int(time.time()))
    sig = (
        "v0="
        + hmac.new(
            credentials.SLACK_SIGNING_SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256
        ).hexdigest()
    )
    req = urllib.request.Request(
        web_url + "/slack/events",
        data=body.encode(),
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": sig,
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode()


def slash_body(command: str, text: str, channel: str, user: str, user_name: str, response_url: str) -> str:
    return urlencode(
        {
            "token": "legacy-verification-token",
            "team_id": credentials.SLACK_TEAM_ID,
            "team_domain": "sandbox",
            "channel_id": channel,
            "channel_name": credentials.CHANNELS.get(channel, channel),
            "user_id": user,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": "A0SANDBOX",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": secrets.token_hex(8),
        }
    )


def click_body(
    *,
    element: dict,
    block: dict,
    message: dict,
    message_ts: str | None,
    ephemeral: bool,
    channel: str,
    user: str,
    user_name: str | None,
    response_url: str,
) -> str:
    payload = {
        "type": "block_actions",
        "user": {
            "id": user,
            "username": user_name,
            "name": user_name,
            "team_id": credentials.SLACK_TEAM_ID,
        },
        "api_app_id": "A0SANDBOX",
        "token": "legacy-verification-token",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": ephemeral,
        },
        "trigger_id": secrets.token_hex(8),
        "team": {"id": credentials.SLACK_TEAM_ID, "domain": "sandbox"},
        "channel": {"id": channel, "name": credentials.CHANNELS.get(channel, channel)},
        "message": message,
        "response_url": response_url,
        "actions": [_action(element, block)],
    }
    return urlencode({"payload": json.dumps(payload)})


def _action(element: dict, block: dict) -> dict:
    """The action Slack sends for a clicked button, or for an option chosen in a menu."""
    action = {
        "action_id": element.get("action_id"),
        "block_id": block.get("block_id", "b"),
        "type": element.get("type") or "button",
        "action_ts": f"{time.time():.6f}",
    }
    if "selected_option" in element:
        return {**action, "selected_option": element["selected_option"]}
    return {**action, "value": element.get("value", ""), "text": element.get("text")}
