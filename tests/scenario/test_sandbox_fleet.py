"""The sandbox's sample fleet has office machines that opt in to its office-hours schedules (tag
Schedule=<name>), kept apart from the dev / staging / prod instances by their own env tag."""

from __future__ import annotations

from collections import Counter

from sandbox import credentials
from tests.support import slash


def test_office_machines_opt_in_to_the_tokyo_and_berlin_schedules(make_bot):
    bot = make_bot(emulators=["slack", "ecs"])
    ecs = bot.emulator("ecs")
    home = [x for x in ecs.instances.values() if x["RegionId"] == credentials.REGION_ID]
    schedules = Counter(x["Tags"].get("Schedule") for x in home if "Schedule" in x["Tags"])
    assert schedules == {"office-hours-tokyo": 8, "office-hours-berlin": 6, "no-such-schedule": 1}
    assert all(x["Tags"]["env"] == "office" for x in home if "Schedule" in x["Tags"])
    assert Counter(x["Tags"]["env"] for x in home) == {
        "dev": 14,
        "staging": 14,
        "prod": 14,
        "office": 15,
        "batch": 3,
    }
    answer = slash(bot, "/ecs", "list tag:Schedule=office-hours-berlin").json()
    assert "6 instances" in answer["text"] and "office-berlin-01" in str(answer["blocks"])
