"""GroupMembership: the cached members of Slack user groups, on a ManualClock with a counting fetch."""

from __future__ import annotations

import logging
import threading

import pytest

from bot.clock import ManualClock
from bot.errors import UpstreamError
from bot.groups import GroupMembership


class FakeSlack:
    """The user groups of a workspace; counts the fetches; can be made to fail."""

    def __init__(self, groups: dict[str, set[str]]):
        self.groups = groups
        self.calls: list[str] = []
        self.failing: BaseException | None = None
        self._lock = threading.Lock()

    def fetch(self, group_id: str) -> frozenset[str]:
        with self._lock:
            self.calls.append(group_id)
        if self.failing is not None:
            raise self.failing
        if group_id not in self.groups:
            raise UpstreamError("Slack", "no_such_subteam", code="no_such_subteam")
        return frozenset(self.groups[group_id])


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def slack():
    return FakeSlack({"S_DEVS": {"U_DAVE"}, "S_SRE": {"U_BOB", "U_ERIN"}})


@pytest.fixture
def groups(slack, clock):
    return GroupMembership(slack.fetch, clock, ttl_seconds=60, miss_refresh_seconds=10)


def test_members_answer_from_the_cache_until_the_ttl_runs_out(groups, slack, clock):
    assert groups.contains("S_SRE", "U_BOB") and groups.contains("S_SRE", "U_ERIN")
    clock.advance(59)
    assert groups.contains("S_SRE", "U_BOB")
    assert slack.calls == ["S_SRE"]
    slack.groups["S_SRE"] = {"U_ERIN"}  # bob left the group
    clock.advance(1)  # 60 s: expired
    assert not groups.contains("S_SRE", "U_BOB")
    assert groups.contains("S_SRE", "U_ERIN")
    assert slack.calls == ["S_SRE", "S_SRE"]


def test_groups_are_cached_separately(groups, slack):
    assert groups.contains("S_DEVS", "U_DAVE")
    assert not groups.contains("S_DEVS", "U_ERIN")  # a miss, but S_DEVS was fetched a moment ago
    assert groups.contains("S_SRE", "U_ERIN")
    assert slack.calls == ["S_DEVS", "S_SRE"]


def test_a_miss_fetches_again_so_a_new_member_is_recognised_within_seconds(groups, slack, clock):
    assert not groups.contains("S_DEVS", "U_CAROL")
    slack.groups["S_DEVS"].add("U_CAROL")  # added in Slack just now
    clock.advance(5)
    assert not groups.contains("S_DEVS", "U_CAROL")  # within miss_refresh_seconds: not asked again
    clock.advance(5)
    assert groups.contains("S_DEVS", "U_CAROL")  # 10 s after the last fetch: asked, and she is in
    assert slack.calls == ["S_DEVS", "S_DEVS"]
    clock.advance(5)
    assert groups.contains("S_DEVS", "U_CAROL") and groups.contains("S_DEVS", "U_DAVE")
    assert len(slack.calls) == 2  # members answer from the refreshed set


def test_a_stream_of_non_members_fetches_at_most_once_per_miss_refresh_interval(groups, slack, clock):
    for second in range(120):
        assert not groups.contains("S_DEVS", f"U_STRANGER{second}")
        assert groups.contains("S_DEVS", "U_DAVE")
        clock.advance(1)
    assert len(slack.calls) == 12  # one per 10 s, not one per question


def test_an_unknown_group_answers_false_and_is_not_asked_about_on_every_question(
    groups, slack, clock, caplog
):
    with caplog.at_level(logging.WARNING, logger="bot.groups"):
        for _ in range(5):
            assert not groups.contains("S_NOPE", "U_DAVE")
    assert slack.calls == ["S_NOPE"]
    [record] = [r for r in caplog.records if r.name == "bot.groups"]
    assert record.group == "S_NOPE" and record.error == "Slack: no_such_subteam"
    assert record.cached_members_used is False
    clock.advance(10)
    assert not groups.contains("S_NOPE", "U_DAVE")
    assert slack.calls == ["S_NOPE", "S_NOPE"]


@pytest.mark.parametrize(
    "failure",
    [UpstreamError("Slack", "fatal_error", code="fatal_error", retryable=True), ConnectionRefusedError()],
)
def test_a_failing_fetch_with_nothing_cached_answers_false(groups, slack, failure):
    slack.failing = failure
    assert not groups.contains("S_SRE", "U_BOB")
    slack.failing = None
    assert not groups.contains("S_SRE", "U_BOB")  # the failed attempt a moment ago counts
    assert len(slack.calls) == 1


def test_a_cached_set_still_answers_while_slack_fails_for_up_to_ten_ttls(groups, slack, clock, caplog):
    assert groups.contains("S_SRE", "U_BOB")
    slack.failing = UpstreamError("Slack", "service_unavailable", code="service_unavailable")
    clock.advance(60)  # expired: asks again, fails, answers from the cached set
    with caplog.at_level(logging.WARNING, logger="bot.groups"):
        assert groups.contains("S_SRE", "U_BOB")
    assert [r.cached_members_used for r in caplog.records if r.name == "bot.groups"] == [True]
    assert not groups.contains("S_SRE", "U_CAROL")  # never a member: still no
    clock.advance(599 - 60)  # 599 s after the fetch that worked
    assert groups.contains("S_SRE", "U_BOB")
    clock.advance(1)  # 600 s = 10 × TTL: the set is too old to answer from
    assert not groups.contains("S_SRE", "U_BOB")
    attempts = len(slack.calls)
    assert 2 <= attempts <= 2 + 600 // 10  # every attempt after the first failure is throttled
    slack.failing = None
    clock.advance(10)
    assert groups.contains("S_SRE", "U_BOB")  # Slack is back


def test_the_stale_limit_can_be_set(slack, clock):
    groups = GroupMembership(
        slack.fetch, clock, ttl_seconds=60, miss_refresh_seconds=10, max_stale_seconds=90
    )
    assert groups.contains("S_SRE", "U_BOB")
    slack.failing = OSError("unreachable")
    clock.advance(89)
    assert groups.contains("S_SRE", "U_BOB")
    clock.advance(1)
    assert not groups.contains("S_SRE", "U_BOB")


def test_a_bug_in_the_fetch_is_not_taken_for_a_non_member(groups, slack):
    slack.failing = TypeError("a bug")
    with pytest.raises(TypeError):
        groups.contains("S_SRE", "U_BOB")


def test_concurrent_questions_share_one_fetch_and_agree(groups, slack):
    start = threading.Barrier(16)
    wrong: list[tuple[str, str, bool]] = []
    expected = {("S_SRE", "U_BOB"): True, ("S_SRE", "U_DAVE"): False, ("S_DEVS", "U_DAVE"): True}

    def ask():
        start.wait()
        for _ in range(200):
            for (group, user), member in expected.items():
                if groups.contains(group, user) is not member:
                    wrong.append((group, user, member))

    threads = [threading.Thread(target=ask, daemon=True) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert wrong == []
    assert sorted(slack.calls) == ["S_DEVS", "S_SRE"]  # the clock stood still: one fetch per group
