import json

from rtmri.cli import main


def test_benchmark_latency_reports_every_stage_with_verdicts(make_tiny_bundle, tmp_path):
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
    assert (out / "latency.png").stat().st_size > 1000
