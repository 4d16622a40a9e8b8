"""Benchmarks. Each module `bench/NAME.py` defines `run(options: dict[str, str]) -> dict`; the dict is
printed as one JSON line (the last line of output). `chatops bench all` runs every one of them.
Faithful re-implementations of the naive originals live in `bench/baselines/`."""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys


def names() -> list[str]:
    import bench

    return sorted(
        m.name for m in pkgutil.iter_modules(bench.__path__) if not m.ispkg and not m.name.startswith("_")
    )


def run_benchmark(name: str, as_json: bool = False, options: list[str] | None = None) -> int:
    opts = dict(o.split("=", 1) for o in options or [] if "=" in o)
    selected = names() if name == "all" else [name]
    for bench_name in selected:
        if bench_name not in names():
            print(
                f"unknown benchmark {bench_name!r}; known: {', '.join(names()) or '(none)'}", file=sys.stderr
            )
            return 2
        module = importlib.import_module(f"bench.{bench_name}")
        if not as_json:
            print(f"running benchmark {bench_name}…", file=sys.stderr)
        result = module.run(opts)
        print(json.dumps(result), flush=True)
    return 0
