"""The selector grammar (bot.selectors): property tests over the whole input space, plus the
refusals an on-call engineer will actually type."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.ecs_model import STATUSES
from bot.selectors import _tag_sort
from handlers.ecs.selectors import (
    GRAMMAR,
    POWER_OPTIONS,
    PowerOptions,
    Selector,
    SelectorError,
    parse_power_args,
    parse_selector,
)

_safe = st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"))
ids = st.from_regex(r"i-[a-z0-9]{4,40}", fullmatch=True)
tag_keys = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), blacklist_characters="=,"),
    min_size=1,
    max_size=20,
)
tag_values = st.none() | st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=20)
regions = st.from_regex(r"[a-z]{2,6}-[a-z0-9]{1,10}(-[a-z0-9]{1,3})?", fullmatch=True)


@st.composite
def selectors(draw) -> Selector:
    chosen_ids = draw(st.lists(ids, max_size=4))
    tags = draw(st.lists(st.tuples(tag_keys, tag_values), max_size=4))
    return Selector(
        ids=tuple(sorted(set(chosen_ids))),
        tags=tuple(sorted(set(tags), key=_tag_sort)),
        name=draw(st.none() | st.text(_safe, min_size=1, max_size=20)),
        status=draw(st.none() | st.sampled_from(STATUSES)),
        region=draw(st.none() | regions),
    )


@settings(max_examples=300)
@given(selectors())
def test_canonical_text_parses_back_to_the_same_selector(sel):
    assert parse_selector(sel.text()) == sel


@settings(max_examples=200)
@given(selectors(), st.randoms(use_true_random=False))
def test_the_order_of_terms_does_not_matter(sel, rnd):
    terms = sel.terms()
    rnd.shuffle(terms)
    from shlex import quote

    assert parse_selector(" ".join(quote(t) for t in terms)) == sel


@settings(max_examples=500)
@given(st.text(max_size=80))
def test_any_text_parses_or_is_refused_with_the_grammar(text):
    try:
        sel = parse_selector(text)
    except SelectorError as exc:
        assert exc.usage == GRAMMAR and exc.message
    else:
        assert isinstance(sel, Selector)


@settings(max_examples=200)
@given(
    selectors(),
    st.booleans(),
    st.sampled_from([None, "keep-charging", "stop-charging"]),
    st.booleans(),
    st.integers(0, 6),
)
def test_power_options_are_found_anywhere_and_leave_the_selector_alone(sel, force, mode, dry_run, at):
    if sel.is_empty:
        sel = Selector(ids=("i-bp1abcdef",), region=sel.region)
    from shlex import quote

    terms = [quote(t) for t in sel.terms()]
    options = (
        (["--force"] if force else [])
        + (["--stop-mode", mode] if mode else [])
        + (["--dry-run"] if dry_run else [])
    )
    position = min(at, len(terms))
    parsed, opts = parse_power_args("stop", " ".join(terms[:position] + options + terms[position:]))
    assert parsed == sel
    expected_mode = {"keep-charging": "KeepCharging", "stop-charging": "StopCharging"}.get(mode or "")
    assert opts == PowerOptions(force=force, stopped_mode=expected_mode, dry_run=dry_run)


def test_tag_terms_are_anded_and_a_bare_key_means_present():
    sel = parse_selector("tag:env=dev tag:team tag:app=web")
    assert sel.tags == (("app", "web"), ("env", "dev"), ("team", None))
    assert sel.tag_filter() == {"app": "web", "env": "dev", "team": None}


def test_ids_are_comma_separated_and_repeatable():
    sel = parse_selector("i-bp1aaaa1111,i-bp1bbbb2222 i-bp1cccc3333 I-BP1AAAA1111")
    assert sel.ids == ("i-bp1aaaa1111", "i-bp1bbbb2222", "i-bp1cccc3333")


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("env=dev", "`env=dev` is not a selector term"),
        ("foo:bar", "`foo:bar` is not a selector term"),
        ("i-", "is not an instance id"),
        ("i-bp1aaaa1111,oops", "`oops` is not an instance id"),
        ("i-BAD!", "is not an instance id"),
        ("status:up", "not an ECS status"),
        ("name:a name:b", "given twice"),
        ("name:", "needs a value"),
        ("tag:=x", "a tag needs a key"),
        ("region:Hangzhou", "not a region id"),
        ('name:"web', "unbalanced quote"),
    ],
)
def test_malformed_selectors_are_refused_with_the_grammar(text, fragment):
    with pytest.raises(SelectorError) as caught:
        parse_selector(text)
    assert fragment in caught.value.message
    assert "SELECTOR is one or more of" in caught.value.usage


@pytest.mark.parametrize(
    "action, text, fragment",
    [
        ("stop", "", "Say which instances to stop"),
        ("stop", "region:cn-shanghai", "a region alone is not enough"),
        ("start", "tag:env=dev --force", "`--force` applies to stop and reboot"),
        ("reboot", "tag:env=dev --stop-mode keep-charging", "applies to stop only"),
        ("stop", "tag:env=dev --stop-mode", "needs keep-charging or stop-charging"),
        ("stop", "tag:env=dev --stop-mode=hibernate", "`hibernate` is not a stop mode"),
        ("stop", "tag:env=dev --now", "`--now` is not an option of `/ecs stop`"),
    ],
)
def test_power_arguments_are_checked(action, text, fragment):
    with pytest.raises(SelectorError) as caught:
        parse_power_args(action, text)
    assert fragment in caught.value.message
    assert caught.value.usage.startswith(f"/ecs {action} SELECTOR {POWER_OPTIONS[action]}")


def test_smart_quotes_from_slack_clients_work():
    assert parse_selector("name:\u201cweb 01\u201d").name == "web 01"


def test_the_canonical_text_reads_as_typed_without_stray_quotes():
    assert parse_selector('name:"web 01" tag:env=dev').text() == 'tag:env=dev name:"web 01"'
    assert parse_selector("tag:team='core ops'").text() == 'tag:team="core ops"'
    assert parse_selector("tag:env=dev name:web-*").text() == "tag:env=dev name:web-*"
