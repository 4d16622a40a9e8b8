"""bot/render.py: times in zones (across DST), spans, tags, tables, rows and plurals."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bot import render

ZONES = [
    ZoneInfo(z)
    for z in (
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "America/Sao_Paulo",
        "Asia/Tokyo",
        "Asia/Kolkata",
        "Australia/Lord_Howe",  # a 30-minute DST shift
        "Pacific/Chatham",  # +12:45 / +13:45
    )
]
BERLIN = ZoneInfo("Europe/Berlin")
zones = st.sampled_from(ZONES)
# instants between 1971 and 2100, to the second, as aware UTC datetimes
instants = st.integers(min_value=31_536_000, max_value=4_102_444_800).map(
    lambda s: dt.datetime.fromtimestamp(s, dt.UTC)
)


# times -----------------------------------------------------------------------------------------------
def test_local_time_reads_in_the_zone_around_a_dst_change():
    before = dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.UTC)  # Berlin springs forward at 01:00 UTC
    after = before + dt.timedelta(hours=1)
    assert render.local_time(before, BERLIN) == "2026-03-29 01:30:00 CET"
    assert render.local_time(after, BERLIN) == "2026-03-29 03:30:00 CEST"
    assert render.local_time(after.timestamp(), BERLIN, render.SECONDS) == "2026-03-29 03:30:00"
    assert render.local_time(None, BERLIN) == "time unknown"
    assert render.local_time(None, BERLIN, unknown="?") == "?"


def test_a_naive_datetime_is_utc():
    assert render.local_time(dt.datetime(2026, 1, 1, 12), BERLIN, render.CLOCK) == "13:00:00"


@settings(deadline=None)
@given(instants, zones)
def test_epoch_seconds_and_datetimes_name_the_same_local_time(when, tz):
    assert render.local_time(when.timestamp(), tz) == render.local_time(when, tz)
    assert render.in_zone(when, tz) == when  # the same instant …
    assert render.in_zone(when, tz).utcoffset() == tz.utcoffset(when.astimezone(tz).replace(tzinfo=None))


@settings(deadline=None)
@given(instants, zones)
def test_the_local_wall_time_leads_back_to_the_instant_across_dst(when, tz):
    local = render.in_zone(when, tz)
    wall = dt.datetime.strptime(render.local_time(when, tz, render.SECONDS), render.SECONDS)
    # a time that a DST change repeats is told apart by `fold`; every shown time is a real one
    assert wall.replace(tzinfo=tz, fold=local.fold).astimezone(dt.UTC) == when


@settings(deadline=None)
@given(instants, st.integers(min_value=0, max_value=40 * 86400), zones)
def test_spans_start_with_the_start_and_end_with_the_end_zone(start, seconds, tz):
    end = start + dt.timedelta(seconds=seconds)
    text = render.time_span(start, end, tz)
    s, e = render.in_zone(start, tz), render.in_zone(end, tz)
    assert text.startswith(s.strftime("%a %d %b %H:%M"))
    assert text.endswith(e.strftime("%H:%M %Z"))
    assert ("–" in text) == (s.date() == e.date()) and ("→" in text) == (s.date() != e.date())
    with_year = render.time_span(start, end, tz, year=True)
    assert with_year.startswith(s.strftime("%a %d %b %Y %H:%M"))


def test_spans_read_as_people_write_them():
    start = dt.datetime(2026, 3, 24, 9, 0, tzinfo=dt.UTC)
    assert render.time_span(start, start + dt.timedelta(minutes=30), BERLIN) == "Tue 24 Mar 10:00–10:30 CET"
    assert (
        render.time_span(start, start + dt.timedelta(days=1), BERLIN)
        == "Tue 24 Mar 10:00 → Wed 25 Mar 10:00 CET"
    )
    assert render.time_span(start, None, BERLIN) == "Tue 24 Mar 10:00 CET"
    # across the spring-forward night the zone name at the end is the summer one
    overnight = dt.datetime(2026, 3, 28, 21, 0, tzinfo=dt.UTC)
    assert render.time_span(overnight, overnight + dt.timedelta(hours=8), BERLIN) == (
        "Sat 28 Mar 22:00 → Sun 29 Mar 07:00 CEST"
    )


def test_all_day_spans_end_the_day_before_their_exclusive_end():
    day = dt.datetime(2026, 12, 31, tzinfo=BERLIN)
    assert (
        render.time_span(day, day + dt.timedelta(days=1), BERLIN, all_day=True) == "Thu 31 Dec 2026 (all day)"
    )
    assert (
        render.time_span(day, day + dt.timedelta(days=3), BERLIN, all_day=True)
        == "Thu 31 Dec → Sat 02 Jan 2027 (all day)"
    )
    assert render.time_span(day, None, BERLIN, all_day=True) == "Thu 31 Dec 2026 (all day)"


def test_clock_spans_and_ages():
    t = dt.datetime(2026, 7, 1, 8, 0, 1, tzinfo=dt.UTC).timestamp()
    assert render.clock_span(t, t + 298, BERLIN) == "10:00:01–10:04:59 CEST"
    assert [render.ago(s) for s in (5, 89, 90, 5399, 5400)] == [
        "5s ago",
        "89s ago",
        "1m ago",
        "89m ago",
        "1h ago",
    ]


def test_parse_time_reads_vendor_stamps():
    assert render.parse_time("2026-03-25T10:00:00Z") == dt.datetime(2026, 3, 25, 10, tzinfo=dt.UTC)
    assert render.parse_time("2026-03-25T10:00:00") == dt.datetime(2026, 3, 25, 10, tzinfo=dt.UTC)
    assert render.parse_time("2026-03-25T10:00:00+09:00").utcoffset() == dt.timedelta(hours=9)
    assert (
        render.parse_time("soon") is None
        and render.parse_time("") is None
        and render.parse_time(None) is None
    )


def test_zone_names():
    assert render.zone_name(BERLIN) == "Europe/Berlin"
    assert render.zone_name(dt.UTC) == "UTC"


# tags --------------------------------------------------------------------------------------------------
def test_tags_read_sorted_with_a_count_of_the_rest():
    tags = {"team": "a", "env": "prod", "app": "web", "zz": "1"}
    assert render.tag_text(tags) == "app=web, env=prod, team=a, zz=1"
    assert render.tag_text(tags, 2) == "app=web, env=prod (+2)"
    assert render.tag_text(tags, 2, first=("env",), sep=" ", more=" +{}") == "env=prod app=web +2"
    assert render.tag_text(tags, None, sep=";") == "app=web;env=prod;team=a;zz=1"
    assert render.tag_text(tags, 0, more=" (+{})") == "(+4)"
    assert render.tag_text({}) == ""


@settings(deadline=None)
@given(
    st.dictionaries(st.text("abcxyz", min_size=1, max_size=4), st.text("abc=-. ", max_size=4), max_size=12),
    st.integers(min_value=0, max_value=15),
)
def test_tag_text_shows_at_most_limit_pairs_and_counts_the_rest(tags, limit):
    text = render.tag_text(tags, limit, sep="|", more="#{}")
    shown = min(limit, len(tags))
    hidden = len(tags) - shown
    assert text.endswith(f"#{hidden}") if hidden else "#" not in text
    body = text[: len(text) - len(f"#{hidden}")] if hidden else text
    pairs = body.split("|") if body else []
    assert len(pairs) == shown
    assert pairs == [f"{k}={tags[k]}" for k in sorted(tags)[:shown]]


# tables, rows, plurals ---------------------------------------------------------------------------------
def test_a_table_lines_its_columns_up():
    text = render.table(["ID", "NAME"], [["i-1", "web"], ["i-22", ""]])
    assert text.splitlines() == ["ID    NAME", "i-1   web", "i-22"]


cells = st.text("abc-xyz", min_size=1, max_size=8)


@settings(deadline=None)
@given(
    st.integers(min_value=1, max_value=5).flatmap(
        lambda n: st.tuples(
            st.lists(cells, min_size=n, max_size=n),
            st.lists(st.lists(cells, min_size=n, max_size=n), max_size=6),
        )
    )
)
def test_every_column_starts_where_its_header_does(shape):
    header, rows = shape
    lines = render.table(header, rows).splitlines()
    assert len(lines) == len(rows) + 1
    assert all(line == line.rstrip() for line in lines)
    starts = [0]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    for w in widths[:-1]:
        starts.append(starts[-1] + w + 2)
    for line, cells_ in zip(lines, [header, *rows], strict=True):
        for start, cell in zip(starts, cells_, strict=True):
            assert line[start : start + len(cell)] == cell


def test_tsv_rows_and_clip():
    assert render.tsv(["a", "b"], [["1", "2"]]) == "a\tb\n1\t2\n"
    assert render.row("2026-01-01 10:00:00", "", "web", "→ Stopped") == "2026-01-01 10:00:00  web  → Stopped"
    assert render.clip("abcdef", 4) == "abc…" and render.clip("abc", 4) == "abc"


@settings(deadline=None)
@given(st.text(max_size=60), st.integers(min_value=1, max_value=40))
def test_clip_never_exceeds_the_width(text, width):
    out = render.clip(text, width)
    assert len(out) <= width and (out == text or out.endswith("…"))


def test_plurals():
    assert render.plural(1, "instance") == "1 instance"
    assert render.plural(0, "instance") == "0 instances"
    assert render.plural(3, "policy", "policies") == "3 policies"


def test_event_messages_escape_what_came_from_outside_the_bot():
    from bot.ecs_model import InstanceInfo
    from handlers.events.render import label, plain_label

    hostile = InstanceInfo(
        "i-bp1abcd1234", name="x<!channel> <https://evil.example|login>", tags={"a": "<!here>"}
    )
    for text in (label(hostile.instance_id, hostile), plain_label(hostile.instance_id, hostile)):
        assert "<!channel>" not in text and "<https://" not in text
        assert "x&lt;!channel&gt; &lt;https://evil.example|login&gt;" in text
    assert label(None, None, "<!everyone>") == "&lt;!everyone&gt;"
