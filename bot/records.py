"""The one way to persist a record in the store (or a queue payload): JSON through pydantic.

A record is a `Record` (a pydantic model: frozen, unknown keys ignored, so an older or newer writer's
records still load) or a dataclass (validated through a cached `TypeAdapter`, so domain dataclasses
such as `bot.ecs_model.InstanceInfo` need no pydantic base class).

    dump(record) -> str                  compact JSON text (what `Store.set` takes)
    to_dict(record) -> dict              the same as plain JSON-ready data (`Store.set_json`, job kwargs)
    load(cls, raw) -> cls                from JSON text / bytes or already-decoded data (`Store.get_json`);
                                         raises RecordError (a ValueError) when it does not fit
    load_or_none(cls, raw) -> cls|None   None for a missing (None / empty) or unreadable record

Example::

    class Intent(Record):
        action: str
        at: float

    store.set(key, dump(Intent(action="stop", at=time.time())), ttl)
    intent = load_or_none(Intent, store.get(key))
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

T = TypeVar("T")

__all__ = ["Record", "RecordError", "dump", "load", "load_or_none", "to_dict"]


class Record(BaseModel):
    """Base of persisted records: immutable, extra keys ignored (forward and backward compatible)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class RecordError(ValueError):
    """Stored data that is not a valid record of the asked type."""


@functools.cache
def _adapter(cls: Any) -> TypeAdapter:
    return TypeAdapter(cls)


def dump(record: Any) -> str:
    """Compact JSON text of a Record or a dataclass instance."""
    if isinstance(record, BaseModel):
        return record.model_dump_json()
    return _adapter(type(record)).dump_json(record).decode()


def to_dict(record: Any) -> dict[str, Any]:
    """The record as JSON-ready data (strings, numbers, lists, dicts)."""
    if isinstance(record, BaseModel):
        return record.model_dump(mode="json")
    return _adapter(type(record)).dump_python(record, mode="json")


def load(cls: type[T], raw: Any) -> T:
    """A `cls` from JSON text (str / bytes) or from decoded data (a dict). Raises RecordError."""
    try:
        if isinstance(raw, (str, bytes, bytearray)):
            if isinstance(cls, type) and issubclass(cls, BaseModel):
                return cls.model_validate_json(raw)  # type: ignore[return-value]
            return _adapter(cls).validate_json(raw)
        if isinstance(cls, type) and issubclass(cls, BaseModel):
            return cls.model_validate(raw)  # type: ignore[return-value]
        return _adapter(cls).validate_python(raw)
    except ValidationError as exc:
        name = getattr(cls, "__name__", str(cls))
        raise RecordError(f"not a valid {name} record: {exc.error_count()} error(s)") from exc


def load_or_none(cls: type[T], raw: Any) -> T | None:
    """Like `load`, but None for a missing record (None or empty) and for one that does not fit."""
    if raw is None or raw in ("", b""):
        return None
    try:
        return load(cls, raw)
    except RecordError:
        return None
