"""Parts of the sandbox's sample ECS fleet beyond `EcsEmulator.seed_fleet`'s dev / staging / prod."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandbox.ecs_emulator import EcsEmulator

# Office machines of the sample fleet that opt in to the sandbox's office-hours schedules (tag Schedule):
# (name, Schedule tag value, team). One names a schedule the policy does not have.
OFFICE_FLEET = (
    *((f"office-tokyo-{n:02d}", "office-hours-tokyo", "tokyo") for n in range(1, 9)),
    *((f"office-berlin-{n:02d}", "office-hours-berlin", "berlin") for n in range(1, 7)),
    ("office-lab-01", "no-such-schedule", "berlin"),
)


def seed_office_fleet(emulator: EcsEmulator) -> list[str]:
    """The office machines (env=office, every one Running): 8 on the Tokyo schedule, 6 on the Berlin one
    and one whose Schedule tag names no schedule. Their own env keeps them out of every dev / staging /
    prod selector."""
    return [
        emulator.add_instance(
            name=name,
            tags={"env": "office", "app": "desktop", "team": team, "Schedule": schedule},
            instance_type="ecs.g7.large",
        )
        for name, schedule, team in OFFICE_FLEET
    ]


# The batch machines the sample `nightly-batch` runbook starts, runs the batch on and stops again.
BATCH_FLEET = ("batch-01", "batch-02", "batch-03")


def seed_batch_fleet(emulator: EcsEmulator) -> list[str]:
    """Three stopped Linux machines tagged role=batch; their own env (batch) keeps them out of every
    dev / staging / prod / office selector."""
    return [
        emulator.add_instance(
            name=name, status="Stopped", tags={"env": "batch", "role": "batch"}, instance_type="ecs.c7.xlarge"
        )
        for name in BATCH_FLEET
    ]


# Dev machines of the sample fleet whose Cloud Assistant agent is not running (all Running Linux).
AGENT_STATES = {"dev-worker-07": "stopped", "dev-db-10": "stopped", "dev-cache-13": "not-installed"}


def seed_agent_states(emulator: EcsEmulator) -> dict[str, str]:
    """Two dev machines with a stopped Cloud Assistant agent and one without it; returns id → state."""
    by_name = {i["InstanceName"]: iid for iid, i in emulator.instances.items()}
    states = {by_name[name]: state for name, state in AGENT_STATES.items() if name in by_name}
    emulator.agents.update(states)
    return states
