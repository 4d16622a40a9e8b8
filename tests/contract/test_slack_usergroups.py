"""Slack user groups: the bot's Slack adapter (slack_sdk) and GroupMembership against the Slack emulator."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError

from bot.adapters.slack import SlackMessenger, make_web_client
from bot.clock import ManualClock
from bot.errors import UpstreamError
from bot.groups import GroupMembership
from sandbox import credentials
from tests.contract.conftest import messenger


def test_the_members_of_a_group_are_listed(slack):
    m = messenger(slack)
    assert m.usergroup_members("S_SRE") == {"U_BOB", "U_ERIN"}
    assert m.usergroup_members("S_DEVS") == {"U_DAVE"}
    [call, _] = slack.calls_named("usergroups.users.list")
    assert call.request.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert call.request.form() == {"usergroup": "S_SRE"}  # the method takes no JSON body
    assert call.status == 200 and call.response == {"ok": True, "users": ["U_BOB", "U_ERIN"]}


def test_an_unknown_group_and_a_bad_token_are_upstream_errors(slack):
    with pytest.raises(UpstreamError) as unknown:
        messenger(slack).usergroup_members("S_NOPE")
    assert unknown.value.code == "no_such_subteam" and not unknown.value.retryable
    with pytest.raises(UpstreamError) as bad_token:
        messenger(slack, token="xoxb-wrong").usergroup_members("S_SRE")
    assert bad_token.value.code == "invalid_auth"
    assert credentials.SLACK_BOT_TOKEN not in str(bad_token.value)


def test_the_usergroup_argument_is_required(slack):
    client = make_web_client(credentials.SLACK_BOT_TOKEN, slack.base_url + "/api/")
    with pytest.raises(SlackApiError) as info:
        client.api_call("usergroups.users.list", http_verb="GET", params={})
    assert info.value.response["error"] == "invalid_arguments"


def test_an_unreachable_slack_is_a_retryable_upstream_error_and_not_a_member(slack):
    m = SlackMessenger(make_web_client(credentials.SLACK_BOT_TOKEN, slack.base_url + "/api/", timeout=2))
    slack.stop()
    with pytest.raises(UpstreamError) as info:
        m.usergroup_members("S_SRE")
    assert info.value.retryable
    assert not GroupMembership(m.usergroup_members, ManualClock()).contains("S_SRE", "U_BOB")


def test_a_member_added_in_slack_is_recognised_after_a_miss_refresh(slack):
    clock = ManualClock()
    groups = GroupMembership(
        messenger(slack).usergroup_members, clock, ttl_seconds=60, miss_refresh_seconds=10
    )
    assert groups.contains("S_DEVS", "U_DAVE")
    assert not groups.contains("S_DEVS", "U_CAROL")
    slack.set_group_members("S_DEVS", ["U_DAVE", "U_CAROL"])
    clock.advance(3)
    assert not groups.contains("S_DEVS", "U_CAROL")  # asked a moment ago: not asked again yet
    assert len(slack.calls_named("usergroups.users.list")) == 1
    clock.advance(7)
    assert groups.contains("S_DEVS", "U_CAROL")
    assert len(slack.calls_named("usergroups.users.list")) == 2
    slack.set_group_members("S_DEVS", ["U_CAROL"])  # dave leaves: noticed when the set expires
    clock.advance(59)
    assert groups.contains("S_DEVS", "U_DAVE")
    clock.advance(1)
    assert not groups.contains("S_DEVS", "U_DAVE") and groups.contains("S_DEVS", "U_CAROL")
    assert len(slack.calls_named("usergroups.users.list")) == 3


def test_the_new_sandbox_people_have_profiles(slack):
    m = messenger(slack)
    assert m.user_email("U_DAVE") == "dave@example.com" and m.user_timezone("U_DAVE") == "Europe/London"
    assert m.user_email("U_ERIN") == "erin@example.com" and m.user_timezone("U_ERIN") == "Asia/Tokyo"
    client = make_web_client(credentials.SLACK_BOT_TOKEN, slack.base_url + "/api/")
    assert client.users_lookupByEmail(email="erin@example.com")["user"]["real_name"] == "Erin SRE"
    assert client.users_info(user="U_DAVE")["user"]["name"] == "dave"
