"""Test helpers that talk to the bot exactly as Slack does: signed HTTP requests on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sandbox import credentials
from sandbox.slack_limits import check_message

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


def http(
    method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None, timeout: float = 30
) -> HttpResult:
    req = urllib.request.Request(
        url, data=body if method != "GET" else None, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return HttpResult(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as exc:
        return HttpResult(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


def slack_signature(
    body: str, ts: str | None = None, secret: str = credentials.SLACK_SIGNING_SECRET
) -> dict[str, str]:
    ts = ts or str(int(time.time()))
    sig = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig}


def post_slack(bot, body: str, content_type: str = "application/x-www-form-urlencoded", **sign) -> HttpResult:
    headers = {"Content-Type": content_type, **slack_signature(body, **sign)}
    return http("POST", bot.web_url + "/slack/events", body.encode(), headers)


def slash(bot, command: str, text: str = "", user: str = "U_ALICE", channel: str = "C_OPS") -> HttpResult:
    """POST a signed slash command; the answer's JSON (text/blocks) is in `.json()`."""
    slack = bot.emulator("slack")
    body = urlencode(
        {
            "token": "legacy",
            "team_id": credentials.SLACK_TEAM_ID,
            "channel_id": channel,
            "user_id": user,
            "user_name": credentials.USERS.get(user, {}).get("name", user),
            "command": command,
            "text": text,
            "response_url": slack.new_response_url(channel, user),
            "trigger_id": secrets.token_hex(6),
            "api_app_id": "A0SANDBOX",
        }
    )
    return slack_accepts_answer(post_slack(bot, body))


def slack_accepts_answer(result: HttpResult) -> HttpResult:
    """A slash command's answer goes back to Slack in the HTTP response, and Slack holds it to the same
    limits as a posted message (a refused answer shows the user an error): check it as Slack would."""
    if result.status == 200 and result.headers.get("content-type", "").startswith("application/json"):
        answer = result.json()
        if isinstance(answer, dict) and ("text" in answer or "blocks" in answer):
            refused = check_message(answer)
            assert refused is None, f"Slack would refuse this answer: {refused.body()}"
    return result


# What the Slack emulator answers when a message or view breaks Slack's limits (sandbox/slack_limits.py).
LIMIT_ERRORS = frozenset(
    {
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_attachments",
        "no_text",
        "msg_too_long",
        "too_many_attachments",
    }
)


def slack_refusals(slack) -> list[str]:
    """Every message, view or response_url post the Slack emulator refused for breaking Slack's limits,
    as `method: error [details]`: what real Slack would not have shown."""
    from sandbox.slack_emulator import MESSAGE_METHODS, VIEW_METHODS

    out = []
    for call in list(slack.calls):
        answer = call.response if isinstance(call.response, dict) else {}
        error = answer.get("error")
        message = (call.name in MESSAGE_METHODS or call.name == "response_url") and error in LIMIT_ERRORS
        view = call.name in VIEW_METHODS and error == "invalid_arguments"
        if message or view:
            out.append(f"{call.name}: {error} {answer.get('errors', [])}")
    return out


def find_button(blocks: list[dict], action_id: str) -> dict:
    el = find_element(blocks, action_id)
    if el.get("type") != "button":
        raise AssertionError(f"{action_id!r} is a {el.get('type')}, not a button")
    return el


def click(
    bot, button: dict, user: str = "U_ALICE", channel: str = "C_OPS", message_ts: str | None = None
) -> HttpResult:
    """Press a button (an element dict from blocks) with a signed block_actions payload."""
    act = {"action_id": button["action_id"], "type": "button", "value": button.get("value", "")}
    return _act(bot, act, user, channel, message_ts)


def _act(bot, act: dict[str, Any], user: str, channel: str, message_ts: str | None) -> HttpResult:
    """A signed block_actions payload for one interactive element, as Slack sends it."""
    slack = bot.emulator("slack")
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user, "team_id": credentials.SLACK_TEAM_ID},
        "api_app_id": "A0SANDBOX",
        "token": "legacy",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": message_ts is None,
        },
        "trigger_id": secrets.token_hex(6),
        "team": {"id": credentials.SLACK_TEAM_ID},
        "channel": {"id": channel},
        "message": {"ts": message_ts},
        "response_url": slack.new_response_url(channel, user, message_ts),
        "actions": [{**act, "block_id": "b", "action_ts": f"{time.time():.6f}"}],
    }
    return post_slack(bot, urlencode({"payload": json.dumps(payload)}))


def choose(
    bot,
    element: dict,
    value: str,
    user: str = "U_ALICE",
    channel: str = "C_OPS",
    message_ts: str | None = None,
) -> HttpResult:
    """Pick the option `value` of a menu (an overflow or static_select element dict from blocks), or
    the user `value` of a users_select, with a signed block_actions payload."""
    act: dict[str, Any] = {"action_id": element["action_id"], "type": element["type"]}
    if element["type"] == "users_select":
        act["selected_user"] = value
    else:
        [option] = [o for o in element.get("options") or [] if o["value"] == value]
        act["selected_option"] = option
    return _act(bot, act, user, channel, message_ts)


def find_element(blocks: list[dict], action_id: str) -> dict:
    """The interactive element (button, menu, picker) with this action_id in message blocks."""
    for block in blocks or []:
        for el in [*(block.get("elements") or []), block.get("accessory") or {}]:
            if isinstance(el, dict) and el.get("action_id") == action_id:
                return el
    raise AssertionError(f"no element {action_id!r} in {json.dumps(blocks)[:500]}")


def submit_view(bot, view: dict, values: dict[str, str], user: str = "U_ALICE") -> HttpResult:
    """Submit a modal (a view the bot opened, from the Slack emulator's `views`) with `values` for its
    inputs by action_id, as Slack's view_submission payload carries them."""
    state: dict[str, dict[str, Any]] = {}
    for block in view.get("blocks") or []:
        if block.get("type") != "input":
            continue
        element = block["element"]
        entered = values.get(element["action_id"])
        if element["type"] == "plain_text_input":
            got: dict[str, Any] = {"type": "plain_text_input", "value": entered}
        elif element["type"] == "users_select":
            got = {"type": "users_select", "selected_user": entered}
        else:
            chosen = [o for o in element.get("options") or [] if o["value"] == entered]
            got = {"type": element["type"], "selected_option": chosen[0] if chosen else None}
        state[block["block_id"]] = {element["action_id"]: got}
    payload = {
        "type": "view_submission",
        "team": {"id": credentials.SLACK_TEAM_ID},
        "user": {"id": user, "username": user, "team_id": credentials.SLACK_TEAM_ID},
        "api_app_id": "A0SANDBOX",
        "trigger_id": secrets.token_hex(6),
        "view": {
            "id": "V" + secrets.token_hex(4).upper(),
            "type": "modal",
            "callback_id": view.get("callback_id"),
            "private_metadata": view.get("private_metadata", ""),
            "state": {"values": state},
        },
    }
    return post_slack(bot, urlencode({"payload": json.dumps(payload)}))


def answers_since(bot, seq: int, channel: str) -> list[str]:
    """What the bot answered to clicks after `seq`: ephemeral replies and edits of the clicked message."""
    effects = bot.emulator("slack").effects_since(seq)
    return [e.text for e in effects if e.channel == channel and e.kind in ("ephemeral", "update", "post")]


def press_for_answer(
    bot, button: dict, user: str, channel: str = "C_OPS", message_ts: str | None = None
) -> str:
    """Click and return the bot's answer (it comes through the click's response_url)."""
    seq = bot.emulator("slack").last_seq
    assert click(bot, button, user=user, channel=channel, message_ts=message_ts).status == 200
    return wait_for(lambda: answers_since(bot, seq, channel), 10, message=f"the answer to {user}'s click")[0]


def kill_worker_when(bot, log_path: Path, ready, message: str, timeout: float = 90) -> None:
    """Run `chatops worker` in a process of its own against the bot's settings until `ready()` holds,
    then SIGKILL it (its job's lease stays until it expires)."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(bot.env, PYTHONPATH=str(ROOT), CHATOPS_LOG_LEVEL="WARNING")
    with open(log_path, "w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "worker", "--threads", "1"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            wait_for(ready, timeout, message=message)
        finally:
            worker.kill()
            worker.wait(10)


def resume_as_stale(bot, job_id: str) -> None:
    """What happens once a killed worker's lease has expired: the resume sweep, a minute on, re-enqueues
    the job."""
    from bot.clock import ManualClock
    from bot.pipeline.jobs import LEASE_TTL, STALE_AFTER, resume_stale_jobs
    from bot.services import Services

    stale = Services(bot.settings, clock=ManualClock(time.time() + STALE_AFTER + LEASE_TTL + 1))
    try:
        key = f"job:{job_id}"
        holder = stale.store.lease_holder(key)
        assert holder and stale.store.release_lease(key, holder)  # what the lease's TTL does
        resume_stale_jobs(stale)
    finally:
        stale.close()


def finish_on_a_new_worker(bot, job_id: str, timeout: float = 60.0):
    """After a worker was killed mid-job: the resume sweep re-enqueues the job, and a new worker (one
    thread) runs it to its end. The finished job record."""
    from bot.pipeline.jobs import load_job
    from bot.worker import Worker

    resume_as_stale(bot, job_id)
    worker = Worker(bot.services, workers=1)
    worker.start()
    try:
        return wait_for(
            lambda: (r := load_job(bot.services.store, job_id)) and r.finished and r,
            timeout,
            message="the resumed job's end",
        )
    finally:
        worker.stop(timeout=10)


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05, message: str = "condition"):
    """Poll until predicate() is truthy; returns its value. Fails the test on timeout (a deadline, not a speed check)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(interval)


def cards(slack, channel: str = "C_OPS") -> list:
    """The channel's messages that are not thread replies (incident cards, reports)."""
    return [m for m in slack.channel_messages(channel) if not m.thread_ts]


def replies(slack, channel: str = "C_OPS", thread_ts: str | None = None) -> list:
    """The channel's thread replies (of one thread, when `thread_ts` is given)."""
    return [m for m in slack.channel_messages(channel) if m.thread_ts and thread_ts in (None, m.thread_ts)]


def ephemerals(slack, user: str) -> list[str]:
    """The texts of the ephemeral messages `user` was shown."""
    return [e.text for e in slack.timeline if e.kind == "ephemeral" and e.user == user]


def run_sandbox_script(
    data_dir, script: str | Path, timeout: float = 180, env: dict | None = None, keep_redis: bool = True
) -> subprocess.CompletedProcess:
    """`chatops sandbox --script` in a process of its own (no proxy settings): `script` is a file, or the
    script's text (fed on stdin). With `keep_redis` off, the sandbox uses its embedded store."""
    base = _no_proxy_env()
    if not keep_redis:
        base.pop("REDIS_URL", None)
    source, text = (str(script), None) if isinstance(script, Path) else ("-", script)
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "sandbox", "--script", source, "--data-dir", str(data_dir)],
        input=text,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**base, **(env or {})},
    )


def _no_proxy_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


@contextmanager
def emulators_command(*args: str) -> Iterator[tuple[subprocess.Popen, dict[str, str]]]:
    """`chatops emulators ARGS` in a process of its own: (the process, the base URLs it printed).
    Its stderr (the bot's environment, the hints) is left to be read; the process is ended after."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "emulators", *args],
        cwd=Path(__file__).resolve().parents[1],
        env=_no_proxy_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line, (
            f"chatops emulators printed no URLs: {proc.stderr.read()[-2000:] if proc.poll() is not None else ''}"
        )
        yield proc, json.loads(line)
    finally:
        proc.terminate()
        proc.wait(20)


@contextmanager
def worker_process(env: dict[str, str]) -> Iterator[str]:
    """`chatops worker --threads 1 --metrics-port 0` in a process of its own: yields its metrics URL;
    the worker is stopped (SIGTERM) after."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "worker", "--threads", "1", "--metrics-port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line, "chatops worker stopped before serving its metrics"
        yield json.loads(line)["metrics"]
    finally:
        proc.terminate()
        proc.wait(30)
