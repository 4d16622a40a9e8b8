"""A bare word that is an instance name means that instance in every command, and an almost-right
term or sub-command gets the nearest one suggested (signed requests into the running app)."""

from __future__ import annotations

import pytest

from tests.support import find_button, slash


@pytest.fixture
def bot(make_bot):
    return make_bot(emulators=["slack", "ecs"], worker=False)


def _by_name(bot, name: str) -> str:
    ecs = bot.emulator("ecs")
    return next(i for i, x in ecs.instances.items() if x["InstanceName"] == name)


def test_a_bare_name_means_that_instance_in_list_status_and_stop(bot):
    iid = _by_name(bot, "prod-web-21")
    listed = slash(bot, "/ecs", "list prod-web-21").json()
    assert listed["text"].startswith("1 instance") and iid in str(listed["blocks"])
    status = slash(bot, "/ecs", "status prod-web-21").json()
    assert iid in str(status["blocks"]) and "not a selector term" not in status["text"]
    bot.emulator("ecs").set_status(iid, "Running")
    stop = slash(bot, "/ecs", "stop prod-web-21").json()
    assert find_button(stop["blocks"], "plan.confirm")["text"]["text"] == "Confirm: stop 1"
    assert iid in str(stop["blocks"])


def test_an_almost_right_term_or_sub_command_suggests_the_nearest(bot):
    assert "Did you mean `tag:env=dev`?" in slash(bot, "/ecs", "stop env=dev").json()["text"]
    assert "Did you mean `name:web-*`?" in slash(bot, "/ecs", "list nmae:web-*").json()["text"]
    assert "Did you mean `/ecs list`?" in slash(bot, "/ecs", "lsit tag:env=dev").json()["text"]
    assert "Did you mean" not in slash(bot, "/ecs", "frobnicate").json()["text"]


def test_history_of_an_instance_without_events_is_a_neutral_answer(bot):
    iid = _by_name(bot, "prod-web-03")
    answer = slash(bot, "/ecs", "history prod-web-03").json()
    assert answer["text"] == "No ECS events recorded for prod-web-03 in the last 7 days."
    assert f"*prod-web-03* (`{iid}`)" in str(answer["blocks"]) and "Usage" not in str(answer)
    missing = slash(bot, "/ecs", "history prod-web-99").json()
    assert "There is no instance named `prod-web-99`" in missing["text"]


def test_an_unknown_region_is_named_as_such(bot):
    answer = slash(bot, "/ecs", "list region:mars-1").json()["text"]
    assert "`mars-1` is not a region of this account" in answer and "`cn-hangzhou`" in answer
    near = slash(bot, "/ecs", "status region:cn-hangzou").json()["text"]
    assert "Did you mean `region:cn-hangzhou`?" in near
    shanghai = slash(bot, "/ecs", "list region:cn-shanghai").json()
    assert shanghai["text"].startswith("6 instances")


def test_what_was_typed_is_shown_inert_in_answers(bot):
    for command, text in [
        ("/ecs", "list <!channel>=x"),
        ("/ecs", "<!here>"),
        ("/ecs", "audit <!channel>"),
        ("/incident", "ack <!everyone>"),
        ("/ecs", "history <@U_ALICE>x"),
    ]:
        answer = slash(bot, command, text).json()["text"]
        assert "<!" not in answer and "<@U_ALICE>x" not in answer and "&lt;" in answer, answer


def test_oversized_arguments_are_refused_before_any_vendor_call(bot):
    ecs = bot.emulator("ecs")
    before = len(ecs.calls_named("DescribeInstances"))
    answer = slash(bot, "/ecs", "list name:" + "a" * 100_000).json()["text"]
    assert "a command takes at most 4,096" in answer and "Usage" not in answer
    assert len(ecs.calls_named("DescribeInstances")) == before
    assert "at most 4,096" in slash(bot, "/oncall", "x" * 100_000).json()["text"]
