"""Which Slack channels an ECS event goes to — pure.

Every route of the policy that matches adds its channel (in policy order, without repeats); when none
matches, the event goes to the default channel. A route matches when all of its conditions hold:
  events   glob patterns on the event name (`Instance:StateChange`, `Instance:SystemMaintenance*`)
  states   the new state of a state change (case-insensitive); a route with states never matches other events
  tags     every key equals the instance's tag value (`*` = the tag is present with any value)
  regions  the event's region
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping

from bot.policy import Route
from handlers.events.envelope import EcsEvent


def route_matches(route: Route, event: EcsEvent, tags: Mapping[str, str]) -> bool:
    if route.events and not any(fnmatch.fnmatchcase(event.name, pattern) for pattern in route.events):
        return False
    if route.states:
        if not event.state or event.state.lower() not in {s.lower() for s in route.states}:
            return False
    for key, wanted in route.tags.items():
        if key not in tags or (wanted != "*" and tags[key] != wanted):
            return False
    if route.regions and event.region not in route.regions:
        return False
    return True


def channels_for(
    event: EcsEvent, tags: Mapping[str, str], routes: Iterable[Route], default_channel: str | None
) -> tuple[str, ...]:
    found: list[str] = []
    for route in routes:
        if route.channel not in found and route_matches(route, event, tags):
            found.append(route.channel)
    if not found and default_channel:
        found.append(default_channel)
    return tuple(found)


def selector_matches(selector: Mapping[str, str], tags: Mapping[str, str]) -> bool:
    """All selector tags present with equal values (`*` = any value); an empty selector matches nothing."""
    if not selector:
        return False
    return all(k in tags and (v == "*" or tags[k] == v) for k, v in selector.items())
