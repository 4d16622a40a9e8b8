"""The summary table `chatops bench all` ends with: headline figures, targets met / missed, missing keys."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import bench
from bench._table import lookup, render, rows


def test_headline_figures_and_targets_per_benchmark():
    results = [
        (
            "fleet",
            {
                "ours": {"seconds": 1.2345},
                "speedup": 40.0,
                "floor_ratio": 1.3,
                "targets": {"fast": True, "floor": False},
            },
            ("ours.seconds", "speedup", "floor_ratio"),
        ),
        ("events", {"events_per_second": 5000, "targets": {"no_loss": True}}, ("events_per_second",)),
    ]
    text = render(results)
    lines = text.splitlines()
    assert lines[0].split() == ["benchmark", "figure", "/", "target", "value"]
    assert set(lines[1]) <= {"-", " "}
    fleet_rows = [line for line in lines if "ours.seconds" in line]
    assert fleet_rows and fleet_rows[0].startswith("fleet") and fleet_rows[0].endswith("1.234")
    assert [line.split()[-1] for line in lines if "target fast" in line] == ["met"]
    assert [line.split()[-1] for line in lines if "target floor" in line] == ["MISSED"]
    assert [line.split()[-1] for line in lines if "target no_loss" in line] == ["met"]
    # the benchmark's name is written once, on its first row
    assert sum(1 for line in lines if line.startswith("fleet")) == 1
    assert lines[-1] == "targets met: 2/3"


def test_missing_keys_and_figures_that_are_not_booleans():
    got = rows(
        "webhooks",
        {"throughput_ratio": 0.93, "targets": {"ok": True, "limit": 30}},
        ("throughput_ratio", "peer_throughput_ratio", "p99_ratio"),
    )
    assert got == [
        ("webhooks", "throughput_ratio", "0.93"),
        ("webhooks", "peer_throughput_ratio", "-"),
        ("webhooks", "p99_ratio", "-"),
        ("webhooks", "target ok", "met"),
        ("webhooks", "  (limit)", "30"),
    ]
    assert rows("bare", {}, ()) == [("bare", "(no headline figures or targets)", "-")]
    assert lookup({"a": {"b": 2}}, "a.b") == 2
    assert lookup({"a": 1}, "a.b") is None


def test_all_prints_the_table_after_the_json_lines_and_one_benchmark_ends_with_its_json(monkeypatch):
    class Fake:
        HEADLINE = ("rate",)

        @staticmethod
        def run(options):
            return {"rate": 7, "targets": {"fast": True}}

    monkeypatch.setattr(bench, "names", lambda: ["one", "two"])
    monkeypatch.setattr(bench.importlib, "import_module", lambda name: Fake)
    out = io.StringIO()
    with redirect_stdout(out):
        assert bench.run_benchmark("all", as_json=True) == 0
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    assert [json.loads(line) for line in lines[:2]] == [Fake.run({})] * 2
    assert lines[-1] == "targets met: 2/2"
    assert any(line.startswith("two") and line.endswith("7") for line in lines[2:])

    out = io.StringIO()
    with redirect_stdout(out):
        assert bench.run_benchmark("one", as_json=True) == 0
    last = [line for line in out.getvalue().splitlines() if line.strip()][-1]
    assert json.loads(last) == Fake.run({})
