"""The only modules that import vendor SDKs. Each registers a factory under a short name:

    @adapter("ecs")
    def build(services) -> EcsAdapter: ...

and callers use `services.adapter("ecs")` (built once per process, lazily).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

_FACTORIES: dict[str, Callable[[Any], Any]] = {}


def adapter(name: str):
    def register(factory):
        _FACTORIES[name] = factory
        return factory

    return register


def load_all() -> None:
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")


def factory_for(name: str) -> Callable[[Any], Any]:
    load_all()
    try:
        return _FACTORIES[name]
    except KeyError:
        raise KeyError(f"no adapter named {name!r} (known: {', '.join(sorted(_FACTORIES))})") from None
