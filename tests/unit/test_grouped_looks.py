"""Looks asked for at once share their calls (bot.adapters.grouped_looks): alone by id, together by one
listing, an id the listing lacks by itself, failures told to every waiter, nobody left waiting."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.adapters.grouped_looks import GroupedLooks
from bot.errors import UpstreamError


class FakeInvocations:
    """`listed` ids appear in the newest page; every id exists. The first call blocks until `release`
    so that the others queue behind it."""

    def __init__(self, listed: set[str], block_first: bool = False):
        self.listed = listed
        self.calls: list[tuple[str, str | None]] = []
        self.release = threading.Event()
        if not block_first:
            self.release.set()
        self.entered = threading.Event()
        self.lock = threading.Lock()
        self.fail = False

    def _enter(self, kind: str, invoke_id: str | None) -> None:
        with self.lock:
            self.calls.append((kind, invoke_id))
        self.entered.set()
        self.release.wait(10)
        if self.fail:
            raise UpstreamError("ECS", "DescribeInvocations failed", code="InternalError")

    def one(self, region: str, invoke_id: str):
        self._enter("one", invoke_id)
        return f"{region}/{invoke_id}"

    def newest(self, region: str):
        self._enter("list", None)
        return {i: f"{region}/{i}" for i in self.listed}


def test_a_look_alone_reads_its_invocation_by_id():
    fake = FakeInvocations(listed={"t-1"})
    looks = GroupedLooks(fake.one, fake.newest)
    assert looks.look("cn-hangzhou", "t-1") == "cn-hangzhou/t-1"
    assert fake.calls == [("one", "t-1")]


def test_looks_asked_while_one_is_in_flight_are_answered_by_one_listing():
    fake = FakeInvocations(listed={f"t-{n}" for n in range(10)}, block_first=True)
    looks = GroupedLooks(fake.one, fake.newest)
    with ThreadPoolExecutor(max_workers=12) as pool:
        first = pool.submit(looks.look, "r", "t-0")
        assert fake.entered.wait(5)
        rest = [pool.submit(looks.look, "r", f"t-{n}") for n in range(1, 10)]
        late = pool.submit(looks.look, "r", "t-old")  # not among the newest: read by itself
        while looks.waiting("r") < 10:
            threading.Event().wait(0.01)
        fake.release.set()
        assert first.result(5) == "r/t-0"
        assert [f.result(5) for f in rest] == [f"r/t-{n}" for n in range(1, 10)]
        assert late.result(5) == "r/t-old"
    assert fake.calls == [("one", "t-0"), ("list", None), ("one", "t-old")]
    assert looks.idle()


def test_regions_are_looked_at_apart():
    fake = FakeInvocations(listed=set())
    looks = GroupedLooks(fake.one, fake.newest)
    assert looks.look("a", "t-1") == "a/t-1" and looks.look("b", "t-1") == "b/t-1"


def test_a_failed_read_is_told_to_every_waiter_and_the_next_look_reads_again():
    fake = FakeInvocations(listed={"t-1", "t-2"}, block_first=True)
    fake.fail = True
    looks = GroupedLooks(fake.one, fake.newest)
    with ThreadPoolExecutor(max_workers=3) as pool:
        first = pool.submit(looks.look, "r", "t-0")
        assert fake.entered.wait(5)
        others = [pool.submit(looks.look, "r", i) for i in ("t-1", "t-2")]
        while looks.waiting("r") < 2:
            threading.Event().wait(0.01)
        fake.release.set()
        for future in [first, *others]:
            with pytest.raises(UpstreamError):
                future.result(5)
    fake.fail = False
    assert looks.look("r", "t-1") == "r/t-1"
