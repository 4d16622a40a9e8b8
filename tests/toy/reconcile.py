"""A toy stand-in for the schedules' reconciliation: a periodic job named `schedules.reconcile` that
records the bot's wall time (`services.clock.time()`) it saw on each run, so a test can tell that the
console's `clock` command ran it and that it ran with the moved time."""

from __future__ import annotations

from bot.registry import Capability

capability = Capability("tests.toy.reconcile")
SEEN = "toy:reconcile:seen"  # a list in the store: the bot time of each run


@capability.periodic("schedules.reconcile", minute="*")
def reconcile(services) -> None:
    services.store.list_push(SEEN, repr(services.clock.time()))


def seen(store) -> list[float]:
    return [float(v) for v in store.list_range(SEEN)]
