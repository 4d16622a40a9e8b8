"""Slack's message and Block Kit limits (sandbox/slack_limits.py), and the bot's builders (bot/blocks.py)
against them: whatever text a builder is given, Slack accepts what it builds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot import blocks
from sandbox.slack_limits import check_message, check_view


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def errors(payload: dict) -> list[str]:
    refused = check_message(payload)
    return list(refused.errors) if refused else []


def test_a_plain_message_and_a_full_one_pass():
    assert check_message({"text": "hello"}) is None
    assert check_message({"text": "x" * 40_000, "blocks": [section("y" * 3000)] * 50}) is None


def test_section_text_length_with_the_pointer_slack_gives():
    refused = check_message({"text": "t", "blocks": [section("ok"), section("x" * 3001)]})
    assert refused.error == "invalid_blocks"
    assert refused.errors == ("must be less than 3001 characters [json-pointer:/blocks/1/text/text]",)
    body = refused.body()
    assert body["ok"] is False and body["response_metadata"]["messages"] == [
        "[ERROR] must be less than 3001 characters [json-pointer:/blocks/1/text/text]"
    ]
    assert errors({"blocks": [section("")]}) == [
        "must be more than 0 characters [json-pointer:/blocks/0/text/text]"
    ]


def test_block_counts_per_message_and_per_view():
    assert errors({"blocks": [section("a")] * 51}) == ["no more than 50 items allowed [json-pointer:/blocks]"]
    home = {"type": "home", "blocks": [section("a")] * 100}
    assert check_view(home) is None
    refused = check_view({**home, "blocks": [section("a")] * 101})
    assert refused.error == "invalid_arguments"
    assert refused.errors == ("no more than 100 items allowed [json-pointer:/view/blocks]",)


def test_fields_header_context_and_actions():
    fields = {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}
    assert errors({"blocks": [fields]}) == ["no more than 10 items allowed [json-pointer:/blocks/0/fields]"]
    long_field = {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}
    assert errors({"blocks": [long_field]}) == [
        "must be less than 2001 characters [json-pointer:/blocks/0/fields/0/text]"
    ]
    header = {"type": "header", "text": {"type": "mrkdwn", "text": "h" * 151}}
    assert errors({"blocks": [header]}) == [
        "must be a valid enum value [json-pointer:/blocks/0/text/type]",
        "must be less than 151 characters [json-pointer:/blocks/0/text/text]",
    ]
    context = {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}
    assert errors({"blocks": [context]}) == [
        "no more than 10 items allowed [json-pointer:/blocks/0/elements]"
    ]
    button = blocks.button("Go", "go")
    assert errors({"blocks": [{"type": "actions", "elements": [button] * 26}]}) == [
        "no more than 25 items allowed [json-pointer:/blocks/0/elements]"
    ]
    assert errors({"blocks": [{**section("a"), "block_id": "b" * 256}]}) == [
        "must be less than 256 characters [json-pointer:/blocks/0/block_id]"
    ]


def test_buttons():
    bad = {
        "type": "button",
        "text": {"type": "plain_text", "text": "x" * 76},
        "action_id": "a" * 256,
        "value": "v" * 2001,
        "style": "green",
    }
    assert errors({"blocks": [{"type": "actions", "elements": [bad]}]}) == [
        "must be less than 256 characters [json-pointer:/blocks/0/elements/0/action_id]",
        "must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]",
        "must be less than 2001 characters [json-pointer:/blocks/0/elements/0/value]",
        "must be a valid enum value [json-pointer:/blocks/0/elements/0/style]",
    ]


def test_message_level_errors():
    assert check_message({}).error == "no_text"
    assert check_message({"text": "", "blocks": []}).error == "no_text"
    assert check_message({"text": "x" * 40_001}).error == "msg_too_long"
    assert check_message({"text": "t", "attachments": [{"text": "a"}] * 101}).error == "too_many_attachments"
    assert check_message({"blocks": "not a list"}).error == "invalid_blocks_format"
    assert errors({"attachments": [{"blocks": [section("")]}]}) == [
        "must be more than 0 characters [json-pointer:/attachments/0/blocks/0/text/text]"
    ]


def test_unknown_block_and_modal_title():
    assert errors({"blocks": [{"type": "banner"}]}) == [
        "must be a valid enum value [json-pointer:/blocks/0/type]"
    ]
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "t" * 25}, "blocks": []}
    assert check_view(modal).errors == ("must be less than 25 characters [json-pointer:/view/title/text]",)


# The builders: Slack takes what they build, whatever they are given -----------------------------------

texts = st.text(max_size=4000) | st.sampled_from(["", " ", "\n", "x" * 3001, "😀" * 3001])


@given(texts, st.lists(texts, max_size=12))
def test_section_is_always_accepted(text, fields):
    assert check_message({"text": "t", "blocks": [blocks.section(text, fields)]}) is None


@given(texts, st.lists(texts, max_size=12))
def test_header_and_context_are_always_accepted(title, notes):
    assert check_message({"text": "t", "blocks": [blocks.header(title), blocks.context(*notes)]}) is None


@given(texts, st.text(min_size=1, max_size=255), st.text(max_size=3000))
def test_buttons_are_always_accepted(label, action_id, value):
    button = blocks.button(label, action_id, value)
    assert check_message({"text": "t", "blocks": [blocks.actions(*[button] * 30)]}) is None


@given(st.lists(st.just(blocks.divider()), max_size=80))
def test_limit_blocks_keeps_a_message_within_fifty(many):
    assert check_message({"text": "t", "blocks": blocks.limit_blocks(many)}) is None


@given(texts)
def test_code_is_always_accepted(text):
    assert check_message({"text": "t", "blocks": [blocks.section(blocks.code(text))]}) is None


def test_long_text_is_cut_with_a_note_and_blocks_beyond_fifty_are_counted():
    text = blocks.section("x" * 5000)["text"]["text"]
    assert len(text) == 3000 and text.endswith(f"… ({5000 - text.index('…')} more characters cut)")
    shown = blocks.limit_blocks([blocks.divider()] * 60)
    assert len(shown) == 50 and shown[-1] == blocks.context("… 11 more blocks not shown")
    assert blocks.section("", ["a", ""]) == {"type": "section", "fields": [{"type": "mrkdwn", "text": "a"}]}
