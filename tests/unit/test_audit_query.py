"""`/ecs audit` without Slack: the query words, the pages of changes, the lines and the CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.audit import AuditRecord
from bot.errors import ConfigError, UserError
from bot.policy import load_policy
from bot.registry import Registry
from handlers import audit as audit_handler
from handlers.audit import MAX_COUNT, MAX_PAGE, AuditQuery, page_of, parse_query
from handlers.audit_render import CSV_COLUMNS, audit_line, csv_text, iso_utc

NOW = 1_800_000_000.0
UTC = dt.UTC


def parse(text: str) -> AuditQuery:
    return parse_query(text, NOW, UTC)


def test_words_become_a_query():
    q = parse("50 page:3 --all user:<@U_BOB|bob> action:ecs.st* instance:I-BP1AAA since:7d")
    assert (q.count, q.page, q.reads, q.csv) == (50, 3, True, False)
    assert (q.user, q.action, q.instance, q.since) == ("U_BOB", "ecs.st*", "i-bp1aaa", NOW - 7 * 86400)
    assert q.command(4) == "/ecs audit 50 --all user:U_BOB action:ecs.st* instance:i-bp1aaa since:7d page:4"
    assert parse("--csv since:2026-12-01").csv and parse("").command(2) == "/ecs audit page:2"
    assert parse("since:2026-12-01").since == dt.datetime(2026, 12, 1, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("0", "between 1 and 500"),
        (f"{MAX_COUNT + 1}", "between 1 and 500"),
        ("page:0", "between 1 and 100,000"),
        ("page:two", "page: needs a value"),
        ("page:", "page: needs a value"),
        ("user:bob", "user: needs a value"),
        ("since:yesterday", "is not a time"),
        ("--json", "is not a count, an option or a filter"),
        ("¹", "is not a count"),
        ("page:²", "page: needs a value"),
    ],
)
def test_wrong_words_are_refused_with_the_usage(text, says):
    with pytest.raises(UserError, match=says) as caught:
        parse(text)
    assert "page:N" in caught.value.usage and "--csv" in caught.value.usage


queries = st.builds(
    AuditQuery,
    count=st.integers(1, MAX_COUNT),
    page=st.integers(1, MAX_PAGE - 1),
    reads=st.booleans(),
    user=st.none() | st.from_regex(r"U[A-Z0-9]{2,10}", fullmatch=True),
    action=st.none() | st.sampled_from(["ecs.stop", "ecs.*", "incident.ack", "*"]),
    instance=st.none() | st.from_regex(r"i-[a-z0-9]{4,12}", fullmatch=True),
)


def words_of(q: AuditQuery) -> str:
    words = [str(q.count), f"page:{q.page}"] + (["--all"] if q.reads else [])
    words += [f"{k}:{v}" for k, v in (("user", q.user), ("action", q.action), ("instance", q.instance)) if v]
    return " ".join(words)


@given(queries)
def test_a_query_and_the_command_for_its_next_page_parse_back(q):
    parsed = parse(words_of(q))
    assert (parsed.count, parsed.page, parsed.reads, parsed.user, parsed.action, parsed.instance) == (
        q.count,
        q.page,
        q.reads,
        q.user,
        q.action,
        q.instance,
    )
    again = parse(parsed.command(q.page + 1).removeprefix("/ecs audit "))
    assert again.page == q.page + 1 and again.words == parsed.words


@given(st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60))
def test_any_text_is_a_query_or_a_user_error(text):
    try:
        parse(text)
    except UserError:
        pass


def rec(n: int, who: str = "U_ONE", **more) -> AuditRecord:
    fields = {"what": "ecs.stop", "targets": [f"i-{n}"], "decision": "allow", "time": NOW - n, "id": f"r{n}"}
    return AuditRecord(who, "C_OPS", **{**fields, **more})


class FakeScan(list):
    capped = False


def test_user_matches_the_requester_or_the_approver():
    q = parse("user:U_TWO")
    assert q.accepts(rec(1, who="U_TWO")) and q.accepts(rec(2, approver="U_TWO")) and not q.accepts(rec(3))


changes = st.lists(
    st.tuples(st.integers(0, 30), st.sampled_from(["U_ONE", "U_TWO"]), st.sampled_from([None, "ok"])),
    max_size=60,
)


@given(changes, st.integers(1, 7), st.sampled_from(["", "user:U_TWO"]))
def test_pages_cover_every_matching_change_once_and_count_them(items, count, filters):
    found = FakeScan(rec(i, who=who, result=result, id=f"c{n}") for i, (n, who, result) in enumerate(items))
    query = parse(f"{count} {filters}")
    expected, seen = [], set()
    for r in found:
        if r.id not in seen:
            seen.add(r.id)
            if query.accepts(r):
                expected.append(r)
    pages, page = [], 1
    while True:
        shown = page_of(found, parse(f"{count} page:{page} {filters}"))
        assert shown.total == len(expected) and not shown.capped
        if not shown.records:
            break
        assert shown.first == (page - 1) * count + 1 and len(shown.records) <= count
        pages += shown.records
        page += 1
    assert pages == expected


def test_a_line_names_the_approver_and_the_rule_and_escapes_what_people_typed():
    r = rec(1, who="U_ONE", result="ok", approver="U_TWO", rule="role devs", detail="stop <!channel> & co")
    line = audit_line(r, UTC)
    assert line.startswith(
        "2027-01-15 07:59:59  <@U_ONE>  ecs.stop i-1  → ok (approved by <@U_TWO>)  [role devs]"
    )
    assert line.endswith("(stop &lt;!channel&gt; &amp; co)")
    many = audit_line(rec(2, targets=["i-1", "i-2"], origin="schedule <office>"), UTC)
    assert "schedule &lt;office&gt;  ecs.stop on 2 targets  → allow" in many


def test_the_csv_has_one_row_per_record_in_utc_and_defuses_formulas():
    rows = [
        rec(1, result="ok", approver="U_TWO", rule="admin", request_ids=["R-1", "R-2"], seconds=12.5),
        rec(2, targets=["i-a", "i-b"], detail='=HYPERLINK("x") , "quoted"\nnext line'),
    ]
    parsed = list(csv.DictReader(io.StringIO(csv_text(rows))))
    assert list(parsed[0]) == list(CSV_COLUMNS) and len(parsed) == 2
    first, second = parsed
    assert first["time"] == iso_utc(NOW - 1) == "2027-01-15T07:59:59.000Z"
    assert (first["approver"], first["rule"], first["seconds"], first["request_ids"]) == (
        "U_TWO",
        "admin",
        "12.500",
        "R-1 R-2",
    )
    assert (first["action"], first["result"], first["id"], first["origin"]) == ("ecs.stop", "ok", "r1", "")
    assert (
        second["targets"] == "i-a i-b" and second["detail"] == "'" + '=HYPERLINK("x") , "quoted"\nnext line'
    )


def test_the_policy_section_has_a_default_and_refuses_a_retention_under_a_day(tmp_path):
    registry = Registry().include(audit_handler.capability)
    assert load_policy(None, registry).audit.retention_days == 90
    path = tmp_path / "policy.yaml"
    path.write_text("audit:\n  retention_days: 0\n")
    with pytest.raises(ConfigError, match="audit.retention_days"):
        load_policy(path, registry)


def test_the_example_policy_documents_the_audit_section():
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "policy.example.yaml"
    assert load_policy(example, Registry.discover()).audit.retention_days == 90
