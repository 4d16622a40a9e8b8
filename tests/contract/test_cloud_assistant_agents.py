"""Which Cloud Assistant agents answer (bot.adapters.cloud_assistant `agents_running`), through the real
SDK against the ECS emulator: an agent seen running is not asked about again for a minute; one that was
not is asked about every time."""

from __future__ import annotations

import pytest

from bot.adapters.cloud_assistant import AGENT_UP_SECONDS, CloudAssistant
from bot.clock import ManualClock
from sandbox.ecs_emulator import EcsEmulator
from tests.contract.test_ecs_adapter import adapter_for, sent_ids


@pytest.fixture
def ecs():
    emu = EcsEmulator().start()
    yield emu
    emu.stop()


def asked(emu) -> list[list[str]]:
    return [sent_ids(c.request.query) for c in emu.calls_named("DescribeCloudAssistantStatus")]


def test_an_agent_seen_running_is_taken_as_running_for_a_minute_and_a_stopped_one_is_asked_each_time(ecs):
    up, down = ecs.add_instance("up"), ecs.add_instance("down")
    ecs.agents[down] = "stopped"
    clock = ManualClock()
    ca = CloudAssistant(adapter_for(ecs), clock)
    assert ca.agents_running([up, down]) == {up: True, down: False}
    clock.advance(AGENT_UP_SECONDS - 1)
    assert ca.agents_running([up, down]) == {up: True, down: False}
    assert asked(ecs) == [[up, down], [down]]  # the running one was not asked about again
    ecs.agents[up] = "stopped"
    clock.advance(1)
    assert ca.agents_running([up]) == {up: False}  # a minute on, it is asked again
    assert ca.agents_running([up]) == {up: False}
    assert asked(ecs)[2:] == [[up], [up]]
