"""No token, key or signing secret in logs, audit records, Slack messages, exception texts or /metrics.

A whole sandbox session (emulators + web + worker, driven by a console script as `chatops sandbox
--script` does) runs with every log record captured at DEBUG, including refusals, bad commands, button
clicks, requests with bad signatures, and a stretch in which every provider rejects the bot's
credentials (so exception texts and error reports are produced). Then everything the session produced
is searched for every configured secret, also URL-, JSON- and base64-encoded: the log output, what the
process printed, every Slack effect (text and blocks), every body the bot sent to Slack and PagerDuty
(messages, notes, uploaded files), the audit trail (changes and reads), /metrics and the console
transcript.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
from contextlib import contextmanager
from urllib.parse import quote, quote_plus

from bot.audit import AUDIT_KEY, READS_KEY
from bot.logs import configure_logging
from sandbox import credentials
from sandbox.console import Console, run_script
from sandbox.stack import BotStack
from tests.support import http, slack_signature

SECRET_NAMES = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "PAGERDUTY_API_KEY",
)

WORK = """
/ecs help
/ecs list
/ecs list tag:env=dev
/ecs frobnicate now
/ecs stop tag:env=
/ecs stop name:dev-web-01
click 1
expect "Stopped 1 of 1" 60
/ecs stop tag:env=dev
click 2
expect Cancelled 10
as carol
/ecs stop tag:env=dev
expect "not allowed" 10
/incident new "Disk full on db-1"
as alice
/incident new "Disk full on db-1" --urgency low
expect "Acknowledge" 30
as carol
click 1
expect "not allowed" 20
as bob
click 1
expect "Acknowledged" 30
as alice
/oncall
inject interruption prod-web-39
expect "removed from SLB vserver group" 40
/ecs history prod-web-39
users
"""

# Alibaba Cloud (ECS, MNS) and PagerDuty reject the bot's credentials for a while (a revoked or rotated
# key); the interruption event makes the MNS consumer's pending long poll return, so its next calls are
# rejected too.
CLOUD_OUTAGE = """
/ecs status tag:env=prod
expect "SignatureDoesNotMatch" 20
/ecs stop name:dev-web-19
inject interruption prod-batch-18
/incident list
expect "Authentication failed" 20
/oncall
wait 3
"""

# Then Slack rejects the bot token: what the bot posts or uploads through the Web API fails.
SLACK_OUTAGE = """
/ecs list
/ecs audit 50 --all
wait 2
"""

AFTER = """
/ecs audit 50 --all
/ecs status tag:env=prod
expect "LAST ACTION" 20
"""


def _variants(secret: str) -> set[str]:
    """The secret as it would look written raw, in a URL or form, in JSON, or base64-encoded."""
    return {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        base64.b64encode(secret.encode()).decode(),
    }


def leaks(corpus: dict[str, str], secrets: dict[str, str]) -> list[tuple[str, str]]:
    """(where, which secret) for every secret found in a part of the corpus."""
    return sorted(
        (where, name)
        for where, text in corpus.items()
        for name, secret in secrets.items()
        if any(v in text for v in _variants(secret))
    )


@contextmanager
def captured_logs(level: str = "DEBUG"):
    """Every log record of this process, formatted as the bot formats them, into a buffer."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    buf = io.StringIO()
    configure_logging(level, stream=buf)
    try:
        yield buf
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])


@contextmanager
def rejected_credentials(bot, *names: str):
    """The emulators `names` refuse the bot's credentials until the block ends."""
    emulators = {name: bot.emulator(name) for name in names}
    ak = credentials.ALIBABA_ACCESS_KEY_ID
    if "slack" in emulators:
        emulators["slack"].token = "xoxb-rotated-elsewhere"
    if "pagerduty" in emulators:
        emulators["pagerduty"].api_key = "rotated-elsewhere"
    for name in ("ecs", "mns"):
        if name in emulators:
            emulators[name].secrets[ak] = "rotated-elsewhere"
    try:
        yield
    finally:
        if "slack" in emulators:
            emulators["slack"].token = credentials.SLACK_BOT_TOKEN
        if "pagerduty" in emulators:
            emulators["pagerduty"].api_key = credentials.PAGERDUTY_API_KEY
        for name in ("ecs", "mns"):
            if name in emulators:
                emulators[name].secrets[ak] = credentials.ALIBABA_ACCESS_KEY_SECRET


def _forged_requests(bot) -> list[str]:
    """Requests with wrong signatures to both webhook endpoints; what the bot answered."""
    answers = []
    body = "command=%2Fecs&text=help&user_id=U_ALICE&channel_id=C_OPS"
    headers = {"Content-Type": "application/x-www-form-urlencoded", **slack_signature(body, secret="not-it")}
    answers.append(http("POST", bot.web_url + "/slack/events", body.encode(), headers))
    event = json.dumps({"event": {"id": "E1", "event_type": "pagey.ping", "data": {"type": "ping"}}})
    sig = "v1=" + hmac.new(b"not-it", event.encode(), hashlib.sha256).hexdigest()
    answers.append(
        http(
            "POST",
            bot.web_url + "/pagerduty/webhook",
            event.encode(),
            {"Content-Type": "application/json", "X-PagerDuty-Signature": sig, "X-Webhook-Id": "W1"},
        )
    )
    assert [a.status for a in answers] == [401, 401]
    return [f"{a.status} {a.headers} {a.text}" for a in answers]


def _slack_corpus(slack) -> dict[str, str]:
    effects = [
        json.dumps({"kind": e.kind, "channel": e.channel, "text": e.text, "blocks": e.blocks})
        for e in slack.effects_since(0)
    ]
    files = [(f.get("content") or b"").decode("utf-8", "replace") for f in slack.files.values()]
    sent = [c.request.body.decode("utf-8", "replace") for c in slack.calls]  # what the bot sent to Slack
    return {
        "slack effects": "\n".join(effects),
        "slack files": "\n".join(files),
        "slack request bodies": "\n".join(sent),
        "slack views": json.dumps(slack.views),
    }


def test_a_whole_sandbox_session_shows_no_secret_anywhere(tmp_path, capfd):
    transcript = io.StringIO()
    with captured_logs() as logs, BotStack(data_dir=tmp_path / "data") as bot:
        configured = {name: bot.settings.secret(name) for name in SECRET_NAMES}
        for i, secret in enumerate(bot.settings.PAGERDUTY_WEBHOOK_SECRETS):
            configured[f"PAGERDUTY_WEBHOOK_SECRETS[{i}]"] = secret.get_secret_value()
        assert configured == {
            "SLACK_BOT_TOKEN": credentials.SLACK_BOT_TOKEN,
            "SLACK_SIGNING_SECRET": credentials.SLACK_SIGNING_SECRET,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": credentials.ALIBABA_ACCESS_KEY_SECRET,
            "PAGERDUTY_API_KEY": credentials.PAGERDUTY_API_KEY,
            "PAGERDUTY_WEBHOOK_SECRETS[0]": credentials.PAGERDUTY_WEBHOOK_SECRET,
        }
        console = Console(bot, transcript)
        failed = run_script(console, WORK.splitlines())
        forged = _forged_requests(bot)
        with rejected_credentials(bot, "ecs", "mns", "pagerduty"):
            failed += run_script(console, CLOUD_OUTAGE.splitlines())
        with rejected_credentials(bot, "slack"):
            failed += run_script(console, SLACK_OUTAGE.splitlines())
        failed += run_script(console, AFTER.splitlines())
        metrics = http("GET", bot.web_url + "/metrics")
        assert metrics.status == 200
        store = bot.services.store
        audit = {
            "audit (changes)": "\n".join(store.list_range(AUDIT_KEY)),
            "audit (reads)": "\n".join(store.list_range(READS_KEY)),
        }
        corpus = {
            "console transcript": transcript.getvalue(),
            "forged requests' answers": "\n".join(forged),
            "/metrics": metrics.text,
            **_slack_corpus(bot.emulator("slack")),
            **audit,
            "pagerduty request bodies": "\n".join(
                c.request.body.decode("utf-8", "replace") for c in bot.emulator("pagerduty").calls
            ),
        }
    printed = capfd.readouterr()
    corpus["logs"] = logs.getvalue()
    corpus["stdout"], corpus["stderr"] = printed.out, printed.err

    # The session did what it was meant to, so there is something to search.
    text = corpus["console transcript"]
    assert failed == 0, text[-4000:]
    assert "You are not allowed to run `ecs.stop`" in text and "Unknown sub-command `frobnicate`" in text
    assert "SignatureDoesNotMatch" in text and "Authentication failed" in text
    assert "Stopped 1 of 1" in corpus["slack effects"] and "Disk full on db-1" in corpus["slack effects"]
    assert "dev-web-01" in corpus["slack files"]
    changes = [json.loads(r) for r in corpus["audit (changes)"].splitlines()]
    assert any(r["who"] == "U_CAROL" and r["decision"] == "deny" for r in changes)
    assert any(r["what"] == "incident.ack" and r["result"] == "ok" for r in changes)
    assert '"what":"ecs.list"' in corpus["audit (reads)"]
    assert "chatops_" in corpus["/metrics"]
    log_lines = corpus["logs"].splitlines()
    assert len(log_lines) > 50 and all(line.startswith("{") for line in log_lines)
    for logged in ("request refused", "SignatureDoesNotMatch", "MNS receive failed", "invalid_auth"):
        assert logged in corpus["logs"], logged

    # The search finds a secret wherever it hides, encoded or not …
    for name, secret in configured.items():
        for variant in _variants(secret):
            assert leaks({"probe": f"x{variant}x"}, configured) == [("probe", name)]
    # … and there is none.
    assert leaks(corpus, configured) == []
