"""Instance tables and listings for Slack. Pure functions of the instances, written with `bot.render`
(whose `plural` and `table` helpers this module also re-exports for the ECS handlers)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from bot import render
from bot.ecs_model import STATUSES, InstanceInfo
from bot.render import clip, plural

__all__ = [
    "KEY_TAGS",
    "TABLE_ROWS",
    "clip",
    "key_tags",
    "listing_tsv",
    "more_note",
    "plural",
    "status_counts",
    "table",
]

TABLE_ROWS = 20
KEY_TAGS = ("env", "app", "role", "service", "team")


def key_tags(tags: dict[str, str], limit: int = 3) -> str:
    """The most telling tags first (env, app, …), then the rest alphabetically."""
    return render.tag_text(tags, limit, first=KEY_TAGS, sep=" ", more=" +{}")


def table(
    instances: list[InstanceInfo],
    limit: int = TABLE_ROWS,
    note: Callable[[InstanceInfo], str] | None = None,
) -> str:
    """A fixed-width table (id, name, status, type, private IP, key tags) of the first `limit` rows;
    `note` adds a last column (e.g. the last action the bot took)."""
    header = ["ID", "NAME", "STATUS", "TYPE", "PRIVATE IP", "TAGS"] + (["LAST ACTION"] if note else [])
    rows = []
    for inst in instances[:limit]:
        row = [
            inst.instance_id,
            clip(inst.name, 24),
            inst.status,
            inst.instance_type,
            inst.private_ip or "-",
            clip(key_tags(inst.tags), 40),
        ]
        if note:
            row.append(note(inst))
        rows.append(row)
    return render.table(header, rows)


def listing_tsv(instances: list[InstanceInfo]) -> str:
    """The full list as tab-separated text (every tag), for a file upload."""
    header = [
        "instance_id",
        "name",
        "status",
        "type",
        "private_ip",
        "region",
        "zone",
        "spot_strategy",
        "tags",
    ]
    return render.tsv(
        header,
        (
            [
                i.instance_id,
                i.name,
                i.status,
                i.instance_type,
                i.private_ip,
                i.region,
                i.zone,
                i.spot_strategy,
                render.tag_text(i.tags, None, sep=";"),
            ]
            for i in instances
        ),
    )


def status_counts(instances: list[InstanceInfo]) -> str:
    counts = Counter(i.status for i in instances)
    order = [s for s in ("Running", "Stopped", "Starting", "Stopping", "Pending") if counts.get(s)]
    order += sorted(s for s in counts if s not in STATUSES)
    return ", ".join(f"{counts[s]} {s}" for s in order)


def more_note(total: int, shown: int, attached: bool) -> str | None:
    if total <= shown:
        return None
    return f"…and {total - shown} more" + (
        " — the full list is attached to this channel." if attached else "."
    )
