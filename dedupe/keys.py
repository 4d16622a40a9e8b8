"""Key builders: one place that decides what makes two deliveries "the same"."""

from __future__ import annotations

import hashlib


def dedupe_key(source: str, *parts: object) -> str:
    """`source:part1:part2…`; long or unusual parts are hashed so keys stay short and safe."""
    cleaned = []
    for part in parts:
        text = str(part)
        if len(text) > 80 or any(c.isspace() or c == ":" for c in text):
            text = hashlib.sha256(text.encode()).hexdigest()[:32]
        cleaned.append(text)
    return ":".join([source, *cleaned])
