"""The bot's Slack client (slack_sdk, with its retry handlers) against the Slack emulator."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError

from bot.adapters.slack import RESPONSE_URL_HOSTS, SlackMessenger, make_web_client
from bot.errors import UpstreamError
from sandbox import credentials
from sandbox.slack_emulator import max_rate_per_second
from tests.contract.conftest import messenger
from tests.support import slack_refusals


def test_post_update_ephemeral_and_delete(slack):
    m = messenger(slack)
    posted = m.post("C_OPS", "hello", [{"type": "section", "text": {"type": "mrkdwn", "text": "hello"}}])
    m.update(posted.channel, posted.ts, "hello again")
    m.post_ephemeral("C_OPS", "U_BOB", "psst")
    msg = slack.message("C_OPS", posted.ts)
    assert msg.text == "hello again" and msg.edits == 1
    kinds = [e.kind for e in slack.timeline]
    assert kinds == ["post", "update", "ephemeral"]
    assert slack.timeline[-1].user == "U_BOB"


def test_bad_token_is_an_upstream_error(slack):
    with pytest.raises(UpstreamError) as info:
        messenger(slack, token="xoxb-wrong").post("C_OPS", "hi")
    assert info.value.code == "invalid_auth"
    assert not info.value.retryable


def test_rate_limit_answers_429_and_the_client_honours_retry_after(slack):
    slack.set_rate_limit(1.0, burst=1)
    m = messenger(slack)
    for i in range(3):
        m.post("C_ALERTS", f"message {i}")
    statuses = [c.status for c in slack.calls_named("chat.postMessage")]
    assert statuses.count(200) == 3 and 429 in statuses
    accepted = slack.post_times["C_ALERTS"]
    assert len(accepted) == 3
    # The retries waited as told: never more than one accepted message per second per channel.
    gaps = [b - a for a, b in zip(accepted, accepted[1:], strict=False)]
    assert all(g >= 0.9 for g in gaps), gaps
    assert max_rate_per_second(accepted, window=2.0) <= 1.0


def test_forced_ratelimit_channel_gives_up_after_bounded_retries(slack):
    slack.force_ratelimit_channels.add("C_DEV")
    m = SlackMessenger(
        make_web_client(credentials.SLACK_BOT_TOKEN, slack.base_url + "/api/", rate_limit_retries=1)
    )
    with pytest.raises(UpstreamError) as info:
        m.post("C_DEV", "never")
    assert info.value.code == "ratelimited"
    assert info.value.retryable
    assert len(slack.calls_named("chat.postMessage")) == 2


def test_file_upload_v2_flow(slack):
    m = messenger(slack)
    m.upload_text("C_OPS", "instances.csv", "id,name\ni-1,web-1\n", title="Instances", comment="full list")
    names = [c.name for c in slack.calls]
    assert (
        names[:1] == ["files.getUploadURLExternal"]
        and "upload" in names
        and "files.completeUploadExternal" in names
    )
    stored = next(iter(slack.files.values()))
    assert stored["content"] == b"id,name\ni-1,web-1\n" and stored["channel"] == "C_OPS"
    assert slack.timeline[-1].kind == "file" and "full list" in slack.timeline[-1].text


def test_response_url_replace_and_ephemeral(slack):
    m = messenger(slack)
    posted = m.post("C_OPS", "original")
    url = slack.new_response_url("C_OPS", "U_ALICE", posted.ts)
    m.respond(url, {"text": "replaced", "replace_original": True})
    assert slack.message("C_OPS", posted.ts).text == "replaced"
    url2 = slack.new_response_url("C_OPS", "U_ALICE")
    m.respond(url2, {"text": "only for alice", "response_type": "ephemeral"})
    assert slack.timeline[-1].kind == "ephemeral" and slack.timeline[-1].user == "U_ALICE"
    for _ in range(4):
        m.respond(url2, {"text": "again"})
    with pytest.raises(UpstreamError):  # a response_url works five times
        m.respond(url2, {"text": "sixth"})


def test_users_info_and_views(slack):
    m = messenger(slack)
    assert m.user_email("U_BOB") == "bob@example.com"
    assert m.user_timezone("U_CAROL") == "America/New_York"
    assert m.user_email("U_NOBODY") is None
    client = make_web_client(credentials.SLACK_BOT_TOKEN, slack.base_url + "/api/")
    assert client.views_publish(user_id="U_BOB", view={"type": "home", "blocks": []})["ok"]
    assert client.conversations_info(channel="C_OPS")["channel"]["name"] == "ops"


def test_conversations_history_shows_what_the_bot_posted_newest_first_in_pages(slack):
    m = messenger(slack)
    for n in range(3):
        m.post("C_OPS", f"message {n}")
    client = make_web_client(credentials.SLACK_BOT_TOKEN, slack.base_url + "/api/")
    first = client.conversations_history(channel="C_OPS", limit=2)
    assert [x["text"] for x in first["messages"]] == ["message 2", "message 1"] and first["has_more"]
    cursor = first["response_metadata"]["next_cursor"]
    rest = client.conversations_history(channel="C_OPS", limit=2, cursor=cursor)
    assert [x["text"] for x in rest["messages"]] == ["message 0"] and not rest["has_more"]
    with pytest.raises(SlackApiError) as info:
        client.conversations_history(channel="C_NOPE")
    assert info.value.response["error"] == "channel_not_found"


def test_response_urls_go_only_to_slack_or_the_api_host_the_bot_uses(slack):
    m = messenger(slack)
    m.respond(slack.new_response_url("C_OPS", "U_BOB"), {"text": "ok", "response_type": "ephemeral"})
    assert slack.timeline[-1].text == "ok"
    with pytest.raises(UpstreamError) as info:
        m.respond("http://127.0.0.1:9/internal", {"text": "leak"})
    assert info.value.code == "bad_url" and slack.timeline[-1].text == "ok"
    host = next(iter(RESPONSE_URL_HOSTS))  # Slack's response URL host (only compared, never called)
    assert m.response_url_allowed(f"https://{host}/actions/T0/1/abc")
    assert not m.response_url_allowed(f"http://{host}/actions/T0/1/abc")
    assert not m.response_url_allowed(f"https://{host}.evil.test/actions")
    assert not m.response_url_allowed(f"https://{host}:8443/actions")


def test_blocks_beyond_slacks_limits_are_refused_with_json_pointers(slack):
    m = messenger(slack)
    long_section = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
    with pytest.raises(UpstreamError) as info:
        m.post("C_OPS", "report", [long_section])
    assert info.value.code == "invalid_blocks" and not info.value.retryable
    assert "must be less than 3001 characters [json-pointer:/blocks/0/text/text]" in str(info.value)
    client = make_web_client(credentials.SLACK_BOT_TOKEN, slack.base_url + "/api/")
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C_OPS", text="t", blocks=[{"type": "divider"}] * 51)
    assert err.value.response["response_metadata"]["messages"] == [
        "[ERROR] no more than 50 items allowed [json-pointer:/blocks]"
    ]
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C_OPS", text="t", attachments=[{"text": "a"}] * 101)
    assert err.value.response["error"] == "too_many_attachments"
    with pytest.raises(SlackApiError) as err, pytest.warns(UserWarning, match="text"):
        client.chat_postEphemeral(channel="C_OPS", user="U_BOB", text="")
    assert err.value.response["error"] == "no_text"
    posted = m.post("C_OPS", "fine")
    with pytest.raises(UpstreamError) as info:
        m.update(posted.channel, posted.ts, "x" * 40_001)
    assert info.value.code == "msg_too_long"
    assert [e.kind for e in slack.timeline] == ["post"]  # nothing refused reached the channel


def test_views_beyond_the_limits_are_invalid_arguments(slack):
    client = make_web_client(credentials.SLACK_BOT_TOKEN, slack.base_url + "/api/")
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "row"}}] * 101
    with pytest.raises(SlackApiError) as err:
        client.views_publish(user_id="U_BOB", view={"type": "home", "blocks": blocks})
    assert err.value.response["error"] == "invalid_arguments"
    assert err.value.response["response_metadata"]["messages"] == [
        "[ERROR] no more than 100 items allowed [json-pointer:/view/blocks]"
    ]
    assert client.views_publish(user_id="U_BOB", view={"type": "home", "blocks": blocks[:100]})["ok"]
    assert len(slack.views) == 1


def test_response_url_refuses_with_http_400_and_the_bare_code(slack):
    m = messenger(slack)
    url = slack.new_response_url("C_OPS", "U_ALICE")
    header = {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}
    with pytest.raises(UpstreamError) as info:
        m.respond(url, {"text": "t", "blocks": [header], "response_type": "ephemeral"})
    assert info.value.code == "400" and "answered 400: invalid_blocks" in str(info.value)
    with pytest.raises(UpstreamError) as info:
        m.respond(url, {"response_type": "ephemeral"})
    assert "answered 400: no_text" in str(info.value)
    assert slack.timeline == []


def test_limits_can_be_turned_off(slack):
    slack.enforce_limits = False
    posted = messenger(slack).post(
        "C_OPS", "t", [{"type": "section", "text": {"type": "mrkdwn", "text": ""}}]
    )
    assert slack.message("C_OPS", posted.ts).blocks[0]["text"]["text"] == ""


def test_the_suite_sees_every_refusal_for_a_limit(slack):
    """tests.support.slack_refusals, which every make_bot test ends with: a refused post, view or
    response_url answer is named; other errors and accepted messages are not."""
    m = messenger(slack)
    m.post("C_OPS", "fine", [{"type": "section", "text": {"type": "mrkdwn", "text": "fine"}}])
    with pytest.raises(UpstreamError):
        m.post("C_OPS", "t", [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}])
    client = make_web_client(credentials.SLACK_BOT_TOKEN, slack.base_url + "/api/")
    with pytest.raises(SlackApiError):
        client.views_publish(user_id="U_BOB", view={"type": "home", "blocks": [{"type": "divider"}] * 101})
    with pytest.raises(SlackApiError):
        client.views_open(trigger_id="", view={"type": "modal", "title": {"type": "plain_text", "text": "t"}})
    with pytest.raises(UpstreamError):
        m.respond(slack.new_response_url("C_OPS", "U_ALICE"), {"response_type": "ephemeral"})
    assert slack_refusals(slack) == [
        "chat.postMessage: invalid_blocks ['must be less than 151 characters [json-pointer:/blocks/0/text/text]']",
        "views.publish: invalid_arguments ['no more than 100 items allowed [json-pointer:/view/blocks]']",
        "response_url: no_text []",
    ]


def test_a_request_whose_client_went_away_before_its_body_arrived_has_no_effect(slack):
    """A worker killed while sending: the headers arrived, the body did not. Slack never sees such a
    request; the emulator neither answers nor records it (it used to take the empty body as a message
    without text)."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(slack.base_url)
    body = b'{"channel": "C_OPS", "text": "hello"}'
    with socket.create_connection((url.hostname, url.port), timeout=5) as conn:
        conn.sendall(
            b"POST /api/chat.postMessage HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer " + credentials.SLACK_BOT_TOKEN.encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body[:10]
        )
        conn.shutdown(socket.SHUT_WR)
        assert conn.recv(1024) == b""  # closed without an answer
    messenger(slack).post("C_OPS", "after")  # a whole request is served as before
    assert [c.name for c in slack.calls] == ["chat.postMessage"]
    assert [m.text for m in slack.channel_messages("C_OPS")] == ["after"]
