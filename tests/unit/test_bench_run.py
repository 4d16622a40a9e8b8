"""`chatops bench run`'s last line (bench/run.py), without running it: its measurements stubbed."""

from __future__ import annotations

import json

import bench
import bench.run as run_bench
import sandbox.stack


def test_the_last_line_has_the_pinned_shape_and_ours_is_the_median_of_five_runs(monkeypatch, capsys):
    lags = iter([0.9, 1.4, 0.5, 2.0, 1.1])

    def ours(spans, latency, redis_url):
        lag = next(lags)
        return {"lag_seconds": lag, "api_calls": int(lag * 100), "seconds": 60.0 + lag}

    monkeypatch.setattr(run_bench, "loopback_only", lambda: None)
    monkeypatch.setattr(sandbox.stack, "redis_url_or_private", lambda: ("redis://127.0.0.1:1/0", None))
    monkeypatch.setattr(run_bench, "run_ours_once", ours)
    monkeypatch.setattr(
        run_bench,
        "run_baseline",
        lambda spans, latency: {"lag_seconds": 40.0, "api_calls": 35, "seconds": 99.0},
    )
    assert bench.run_benchmark("run", as_json=True) == 0
    last = json.loads([ln for ln in capsys.readouterr().out.splitlines() if ln.strip()][-1])
    assert last["instances"] == 500
    for side in ("ours", "baseline"):
        assert {"lag_seconds", "api_calls", "seconds"} <= set(last[side])
    assert (last["ours"]["lag_seconds"], last["ours"]["api_calls"], last["ours"]["seconds"]) == (
        1.1,
        110,
        61.1,
    )
    assert len(last["ours"]["runs"]) == 5 and last["setup"]["batches"] == 5
    assert last["targets"]["lag_at_most_1_5_s"] is True
