"""Benchmarks. Each module `bench/NAME.py` defines `run(options: dict[str, str]) -> dict`; the dict is
printed as one JSON line (the last line of output). `chatops bench all` runs every one of them and
ends with a human-readable table of their headline figures (each module's `HEADLINE` keys) and targets,
met or missed (bench/_table.py), after all the JSON lines. Faithful re-implementations of the naive originals live in `bench/baselines/`."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import sys


def loopback_only() -> None:
    """Every benchmark talks to emulators on 127.0.0.1 only: no proxy (the Alibaba SDK ignores
    NO_PROXY) and no ECS metadata lookup for credentials."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        os.environ.pop(var, None)
    os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")


def start_worker(env: dict[str, str], log_path, threads: int = 1):
    """A `chatops worker` process of its own on `env` (as deployed), its output in `log_path`."""
    import subprocess

    log = open(log_path, "ab")  # noqa: SIM115 - the worker's log for the whole run
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "worker", "--threads", str(threads)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def names() -> list[str]:
    import bench

    return sorted(
        m.name for m in pkgutil.iter_modules(bench.__path__) if not m.ispkg and not m.name.startswith("_")
    )


def run_benchmark(name: str, as_json: bool = False, options: list[str] | None = None) -> int:
    opts = dict(o.split("=", 1) for o in options or [] if "=" in o)
    selected = names() if name == "all" else [name]
    summary = []
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
        summary.append((bench_name, result, getattr(module, "HEADLINE", ())))
    if name == "all":
        from bench._table import render

        print(file=sys.stdout)
        print(render(summary), flush=True)
    return 0
