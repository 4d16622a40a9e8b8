"""Instance tables and listings for Slack. Pure functions of the instances."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from bot.ecs_model import STATUSES, InstanceInfo

TABLE_ROWS = 20
KEY_TAGS = ("env", "app", "role", "service", "team")


def key_tags(tags: dict[str, str], limit: int = 3) -> str:
    """The most telling tags first (env, app, …), then the rest alphabetically."""
    keys = [k for k in KEY_TAGS if k in tags] + sorted(k for k in tags if k not in KEY_TAGS)
    shown = [f"{k}={tags[k]}" for k in keys[:limit]]
    if len(keys) > limit:
        shown.append(f"+{len(keys) - limit}")
    return " ".join(shown)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def table(
    instances: list[InstanceInfo],
    limit: int = TABLE_ROWS,
    note: Callable[[InstanceInfo], str] | None = None,
) -> str:
    """A fixed-width table (id, name, status, type, private IP, key tags) of the first `limit` rows;
    `note` adds a last column (e.g. the last action the bot took)."""
    header = ["ID", "NAME", "STATUS", "TYPE", "PRIVATE IP", "TAGS"] + (["LAST ACTION"] if note else [])
    rows = [header]
    for inst in instances[:limit]:
        row = [
            inst.instance_id,
            _clip(inst.name, 24),
            inst.status,
            inst.instance_type,
            inst.private_ip or "-",
            _clip(key_tags(inst.tags), 40),
        ]
        if note:
            row.append(note(inst))
        rows.append(row)
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    return "\n".join("  ".join(cell.ljust(widths[c]) for c, cell in enumerate(r)).rstrip() for r in rows)


def listing_tsv(instances: list[InstanceInfo]) -> str:
    """The full list as tab-separated text (every tag), for a file upload."""
    lines = ["instance_id\tname\tstatus\ttype\tprivate_ip\tregion\tzone\tspot_strategy\ttags"]
    for i in instances:
        tags = ";".join(f"{k}={v}" for k, v in sorted(i.tags.items()))
        lines.append(
            "\t".join(
                [
                    i.instance_id,
                    i.name,
                    i.status,
                    i.instance_type,
                    i.private_ip,
                    i.region,
                    i.zone,
                    i.spot_strategy,
                    tags,
                ]
            )
        )
    return "\n".join(lines) + "\n"


def status_counts(instances: list[InstanceInfo]) -> str:
    counts = Counter(i.status for i in instances)
    order = [s for s in ("Running", "Stopped", "Starting", "Stopping", "Pending") if counts.get(s)]
    order += sorted(s for s in counts if s not in STATUSES)
    return ", ".join(f"{counts[s]} {s}" for s in order)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def more_note(total: int, shown: int, attached: bool) -> str | None:
    if total <= shown:
        return None
    return f"…and {total - shown} more" + (
        " — the full list is attached to this channel." if attached else "."
    )
