"""Every bad-input rule of the HTTP app, through real signed requests over loopback."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest

from tests.support import http, post_slack, slack_signature, slash


@pytest.fixture
def bot(make_bot):
    return make_bot(emulators=["slack"])


def _slash_body(text="help", command="/ecs", user="U_CAROL"):
    return urlencode(
        {"command": command, "text": text, "user_id": user, "channel_id": "C_OPS", "team_id": "T0SANDBOX"}
    )


def test_ecs_help_end_to_end_lists_only_what_the_caller_may_run(bot):
    carol = slash(bot, "/ecs", "help", user="U_CAROL")
    alice = slash(bot, "/ecs", "help", user="U_ALICE")
    assert carol.status == 200 and alice.status == 200
    carol_text, alice_text = json.dumps(carol.json()), json.dumps(alice.json())
    assert carol.json()["response_type"] == "ephemeral"
    assert "/ecs audit" in carol_text and "/ecs help" in carol_text
    assert "bootstrap admin" in alice_text and "bootstrap admin" not in carol_text


def test_empty_text_shows_help(bot):
    resp = slash(bot, "/ecs", "", user="U_CAROL")
    assert resp.status == 200 and "/ecs help" in json.dumps(resp.json())


def test_unknown_subcommand_gets_an_ephemeral_usage_message(bot):
    resp = slash(bot, "/ecs", "explode now")
    body = resp.json()
    assert resp.status == 200 and body["response_type"] == "ephemeral"
    assert "Unknown sub-command `explode`" in body["text"]


def test_bad_argument_gets_usage(bot):
    body = slash(bot, "/ecs", "audit lots").json()
    assert "not a count" in body["text"] and "Usage" in body["text"]


def test_unsigned_request_is_401_and_runs_nothing(bot):
    before = bot.services.authz.recent(100)
    resp = http(
        "POST",
        bot.web_url + "/slack/events",
        _slash_body().encode(),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status == 401
    assert bot.services.authz.recent(100) == before


def test_the_signature_is_verified_once_per_request(bot):
    from slack_bolt.middleware.request_verification import RequestVerification

    gateway = bot.app.slack
    calls = []
    verify = gateway.verifier.is_valid
    gateway.verifier.is_valid = lambda **kw: calls.append(kw) or verify(**kw)
    try:
        assert slash(bot, "/ecs", "help").status == 200
    finally:
        gateway.verifier.is_valid = verify
    assert len(calls) == 1  # by the gateway, before Bolt
    assert not any(isinstance(m, RequestVerification) for m in gateway.app._middleware_list)


def test_stale_timestamp_is_401(bot):
    body = _slash_body()
    resp = post_slack(bot, body, ts=str(int(time.time()) - 301))
    assert resp.status == 401


def test_tampered_body_is_401(bot):
    body = _slash_body()
    headers = {"Content-Type": "application/x-www-form-urlencoded", **slack_signature(body)}
    tampered = body.replace("help", "audit")
    resp = http("POST", bot.web_url + "/slack/events", tampered.encode(), headers)
    assert resp.status == 401


def test_wrong_secret_is_401(bot):
    body = _slash_body()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        **slack_signature(body, secret="not-the-secret"),
    }
    assert http("POST", bot.web_url + "/slack/events", body.encode(), headers).status == 401


def test_oversized_body_is_413(bot):
    body = "command=/ecs&text=" + "a" * (1024 * 1024 + 10)
    assert post_slack(bot, body).status == 413


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        ("payload=%7Bnot-json", "application/x-www-form-urlencoded"),
        ("payload=%5B1%2C2%5D", "application/x-www-form-urlencoded"),
        ("just some words", "application/x-www-form-urlencoded"),
        ("{broken json", "application/json"),
        ('{"no": "type"}', "application/json"),
        ("<xml/>", "text/xml"),
        ("command=ecs&text=help", "application/x-www-form-urlencoded"),
    ],
)
def test_malformed_signed_bodies_are_400_never_500(bot, body, ctype):
    resp = post_slack(bot, body, content_type=ctype)
    assert resp.status == 400, (resp.status, resp.body)


def test_invalid_utf8_is_400(bot):
    body = b"command=/ecs&text=\xff\xfe"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    ts = str(int(time.time()))
    import hashlib
    import hmac

    from sandbox import credentials

    sig = (
        "v0="
        + hmac.new(
            credentials.SLACK_SIGNING_SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256
        ).hexdigest()
    )
    headers.update({"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig})
    assert http("POST", bot.web_url + "/slack/events", body, headers).status in (400, 401)


def test_url_verification_challenge(bot):
    body = json.dumps({"type": "url_verification", "challenge": "abc123", "token": "x"})
    resp = post_slack(bot, body, content_type="application/json")
    assert resp.status == 200 and resp.json()["challenge"] == "abc123"


def test_unknown_button_gets_a_clear_answer(bot):
    from tests.support import click

    resp = click(bot, {"action_id": "no.such.button", "value": "x"}, user="U_ALICE")
    assert resp.status == 200
    slack = bot.emulator("slack")
    assert any("no longer supported" in e.text for e in slack.timeline)


def test_healthz_metrics_and_unknown_paths(bot):
    health = http("GET", bot.web_url + "/healthz")
    assert health.status == 200 and health.json()["store"] == "sqlite"
    slash(bot, "/ecs", "help")
    metrics = http("GET", bot.web_url + "/metrics")
    assert metrics.status == 200
    assert 'chatops_http_requests_total{path="/slack/events",status="200"}' in metrics.text
    assert http("GET", bot.web_url + "/nope").status == 404
    assert http("GET", bot.web_url + "/slack/events").status == 405


def test_healthz_is_503_when_redis_is_down(make_bot):
    from sandbox.stack import RedisServer

    server = RedisServer().start()
    bot = make_bot(redis_url=server.url, emulators=["slack"], worker=False)
    assert http("GET", bot.web_url + "/healthz").status == 200
    server.stop()
    assert http("GET", bot.web_url + "/healthz").status == 503
    # a command while the store is down gets an answer, not a 500 or a trace
    resp = slash(bot, "/ecs", "help")
    assert resp.status in (200, 503) and "Traceback" not in resp.text


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Slack-Request-Timestamp": "9" * 400, "X-Slack-Signature": "v0=" + "0" * 64},
        {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=é" + "0" * 63},
    ],
)
def test_malformed_signature_headers_are_401_without_a_trace(bot, caplog, headers):
    import logging

    body = _slash_body().encode()
    with caplog.at_level(logging.WARNING):
        resp = http(
            "POST",
            bot.web_url + "/slack/events",
            body,
            {"Content-Type": "application/x-www-form-urlencoded", **headers},
        )
    assert resp.status == 401
    assert not [r for r in caplog.records if r.exc_info], "no stack trace for a bad header"


def test_a_lying_content_length_is_answered_413_at_once(bot):
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(bot.web_url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(
            b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + b"1" + b"0" * 30 + b"\r\n\r\n{}"
        )
        answer = sock.recv(200)  # a deadline, not a speed check: the socket times out after 10 s
    assert answer.startswith(b"HTTP/1.") and b" 413 " in answer.split(b"\r\n")[0]


def test_slack_retries_of_one_event_have_one_effect(bot):
    event = {
        "type": "event_callback",
        "team_id": "T0SANDBOX",
        "api_app_id": "A0SANDBOX",
        "event_id": "Ev0RETRY01",
        "event_time": int(time.time()),
        "event": {
            "type": "app_mention",
            "user": "U_CAROL",
            "text": "<@UBOT> hi",
            "channel": "C_OPS",
            "ts": "1.000100",
        },
    }
    body = json.dumps(event)
    statuses = []
    for retry in (None, "1", "2", "3"):
        headers = {"Content-Type": "application/json", **slack_signature(body)}
        if retry:
            headers |= {"X-Slack-Retry-Num": retry, "X-Slack-Retry-Reason": "http_timeout"}
        statuses.append(http("POST", bot.web_url + "/slack/events", body.encode(), headers).status)
    assert statuses == [200, 200, 200, 200]
    slack = bot.emulator("slack")
    replies = [m for m in slack.channel_messages("C_OPS") if "Try `/ecs help`" in m.text]
    assert len(replies) == 1
