"""The options of `/ecs start|stop|reboot` beside their selector (the grammar is bot.selectors). Pure."""

from __future__ import annotations

from dataclasses import dataclass

from bot.ecs_model import STOPPED_MODES
from bot.selectors import GRAMMAR, Selector, SelectorError, parse_selector, parse_terms, tokenize

__all__ = [
    "GRAMMAR",
    "POWER_OPTIONS",
    "PowerOptions",
    "Selector",
    "SelectorError",
    "parse_power_args",
    "parse_selector",
    "power_usage",
]

POWER_OPTIONS = {
    "start": "[--dry-run]",
    "stop": "[--force] [--stop-mode keep-charging|stop-charging] [--dry-run]",
    "reboot": "[--force] [--dry-run]",
}


def power_usage(action: str) -> str:
    return f"/ecs {action} SELECTOR {POWER_OPTIONS[action]}\n{GRAMMAR}"


@dataclass(frozen=True)
class PowerOptions:
    force: bool = False
    stopped_mode: str | None = None  # KeepCharging | StopCharging | None (ECS default)
    dry_run: bool = False


def parse_power_args(action: str, text: str) -> tuple[Selector, PowerOptions]:
    """`tag:env=dev --stop-mode stop-charging --dry-run` → (selector, options)."""
    usage = power_usage(action)
    tokens = tokenize(text, usage)
    terms: list[str] = []
    force = dry_run = False
    stopped_mode = None
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if not token.startswith("--"):
            terms.append(token)
            continue
        name, _, inline = token.partition("=")
        if name == "--force" and not inline:
            if action == "start":
                raise SelectorError("`--force` applies to stop and reboot.", usage)
            force = True
        elif name == "--dry-run" and not inline:
            dry_run = True
        elif name == "--stop-mode":
            if action != "stop":
                raise SelectorError("`--stop-mode` applies to stop only.", usage)
            if not inline:
                if i >= len(tokens):
                    raise SelectorError("`--stop-mode` needs keep-charging or stop-charging.", usage)
                inline, i = tokens[i], i + 1
            stopped_mode = STOPPED_MODES.get(inline.lower())
            if stopped_mode is None:
                raise SelectorError(
                    f"`{inline}` is not a stop mode; use keep-charging or stop-charging.", usage
                )
        else:
            raise SelectorError(f"`{token}` is not an option of `/ecs {action}`.", usage)
    selector = parse_terms(terms, usage)
    if selector.is_empty:
        raise SelectorError(
            f"Say which instances to {action}: ids, tags, a name or a status (a region alone is not enough).",
            usage,
        )
    return selector, PowerOptions(force=force, stopped_mode=stopped_mode, dry_run=dry_run)
