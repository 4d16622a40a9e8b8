"""The human-readable summary `chatops bench all` prints after its JSON lines: per benchmark, its headline
figures (the module's `HEADLINE` keys; a dotted key reads a nested value, e.g. `ours.lag_seconds`) and
each of its `targets` — a boolean one as met / missed, any other as a figure beside them. Keys a result
does not have show as `-`, so a benchmark may add or drop figures without breaking the table. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MISSING = "-"


def lookup(result: Mapping[str, Any], key: str) -> Any:
    value: Any = result
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _figure(value: Any) -> str:
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.3e}"
    if isinstance(value, Mapping | list | tuple):
        return f"({len(value)} items)"
    return str(value)


def rows(name: str, result: Mapping[str, Any], headline: Iterable[str]) -> list[tuple[str, str, str]]:
    """(benchmark, what, value) for one result: headline figures first, then its targets."""
    out = [(name, key, _figure(lookup(result, key))) for key in headline]
    targets = result.get("targets")
    if isinstance(targets, Mapping):
        for key, value in targets.items():
            if isinstance(value, bool):
                out.append((name, f"target {key}", "met" if value else "MISSED"))
            else:
                out.append((name, f"  ({key})", _figure(value)))
    if not out:
        out.append((name, "(no headline figures or targets)", MISSING))
    return out


def render(results: Iterable[tuple[str, Mapping[str, Any], Iterable[str]]]) -> str:
    """The table for (benchmark name, its result, its HEADLINE keys) in order, with a last line counting
    the boolean targets met."""
    table = [("benchmark", "figure / target", "value")]
    met = total = 0
    for name, result, headline in results:
        for row in rows(name, result, headline):
            table.append(row)
            if row[1].startswith("target "):
                total += 1
                met += row[2] == "met"
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    lines = []
    previous = None
    for n, row in enumerate(table):
        shown = (row[0] if row[0] != previous else "", row[1], row[2])
        previous = row[0]
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(shown, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append(f"targets met: {met}/{total}")
    return "\n".join(lines)
