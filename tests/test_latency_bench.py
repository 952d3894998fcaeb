import json
import os

import numpy as np

from rtmri.cli import main


def test_benchmark_latency_reports_every_stage_with_verdicts(make_tiny_bundle, tmp_path, monkeypatch):
    loads = iter([(0.5, 0.25, 0.1), (2.5, 1.25, 0.75)])  # the machine's load when it starts, then when it ends
    monkeypatch.setattr(os, "getloadavg", lambda: next(loads))
    out = tmp_path / "latency"
    assert main(["benchmark-latency", str(make_tiny_bundle().path), "--seconds", "2", "-o", str(out)]) == 0
    report = json.loads((out / "latency.json").read_text())
    file_path = report["paths"]["file"]
    assert {"capture", "lookahead", "features", "inference", "sink", "queue", "audio_to_frame"} <= set(file_path["stages"])
    assert file_path["stages"]["lookahead"]["p50_ms"] == 40.0  # read from the bundle, not assumed
    for figures in file_path["stages"].values():
        assert figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"]
    assert file_path["frames"] >= 45
    assert set(file_path["verdicts"]["inference"]) == {"budget_p99_ms", "verdict"}
    assert "browser" in report["not_measured"]
    assert "| inference |" in (out / "latency.md").read_text()
    assert report["load_average"] == {"before": [0.5, 0.25, 0.1], "after": [2.5, 1.25, 0.75]}
    assert "[0.5, 0.25, 0.1] before, [2.5, 1.25, 0.75] after" in (out / "latency.md").read_text()
    # The chart: one row per (path, stage), p50 / p95 / p99 bars in matplotlib's first three
    # colours and the 40 ms frame budget as a red line.
    from PIL import Image

    chart = np.asarray(Image.open(out / "latency.png").convert("RGB")).astype(int)
    rows = len(file_path["stages"])
    assert chart.shape == (round((0.35 * rows + 1.2) * 120), 9 * 120, 3)
    for colour in ((31, 119, 180), (255, 127, 14), (44, 160, 44), (255, 0, 0)):
        assert (np.abs(chart - colour).sum(axis=2) < 30).sum() > 50, colour
