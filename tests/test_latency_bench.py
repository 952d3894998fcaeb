import json
import os

import numpy as np
import pytest

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


def test_window_path_times_the_paint_of_every_frame(make_tiny_bundle, tmp_path, monkeypatch):
    """The wiring only, on SDL's dummy driver (it paints nothing, so the benchmark itself
    refuses it; the test lets it through): every frame streamed into the window reports
    its flip, and the window path gets the paint and sound-to-paint rows."""
    from rtmri.streamer import display
    from rtmri.streamer.benchmarks import latency

    monkeypatch.setattr(latency, "PAINTLESS_DRIVERS", ())
    monkeypatch.setattr(display, "PAINTLESS_DRIVERS", ())
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("DISPLAY", ":wiring-test")
    out = tmp_path / "latency"
    assert main(["benchmark-latency", str(make_tiny_bundle().path), "--seconds", "1", "--window", "-o", str(out)]) == 0
    report = json.loads((out / "latency.json").read_text())
    window = report["paths"]["window"]
    assert "pygame window (dummy on display :wiring-test)" in window["source"]
    assert window["frames"] >= 20 and window["painted"] == window["frames"]
    for stage in ("window_paint", "audio_to_photon"):
        assert window["stages"][stage]["n"] == window["frames"]
    assert "audio_to_frame" not in window["stages"]  # taken after the sinks: the paint again
    assert {"capture", "lookahead", "features", "inference", "queue"} <= set(window["stages"])
    text = (out / "latency.md").read_text()
    window_table = text.split("## window:")[1]
    assert "| window_paint |" in window_table and "| audio_to_photon |" in window_table
    assert "window" not in report["not_measured"]


def test_window_path_without_a_display_is_said_and_skipped(make_tiny_bundle, tmp_path, monkeypatch):
    from rtmri.streamer.benchmarks import latency

    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(latency.shutil, "which", lambda name: None)  # no Xvfb to start
    out = tmp_path / "latency"
    assert main(["benchmark-latency", str(make_tiny_bundle().path), "--seconds", "1", "--window", "-o", str(out)]) == 0
    report = json.loads((out / "latency.json").read_text())
    assert set(report["paths"]) == {"file"}
    assert report["not_measured"]["window"].startswith("no display: DISPLAY is not set and Xvfb is not installed")
    assert "- window: not measured (no display:" in (out / "latency.md").read_text()


@pytest.mark.parametrize("driver", ["dummy", "offscreen"])
def test_window_path_refuses_drivers_that_paint_nothing(make_tiny_bundle, tmp_path, monkeypatch, driver):
    """Asked for by name, or fallen back to by SDL when DISPLAY names no X server."""
    from rtmri.bundle.engine import Engine
    from rtmri.streamer.benchmarks import latency

    monkeypatch.setenv("SDL_VIDEODRIVER", driver)
    with pytest.raises(latency.NoDisplay, match=f"SDL_VIDEODRIVER={driver} paints nothing"):
        with latency.window_display():
            pass
    engine = Engine(make_tiny_bundle().path)
    with pytest.raises(latency.NoDisplay, match=f"opened on SDL's {driver} driver, which paints nothing"):
        latency.measure_window(engine, tmp_path / "never-read.wav", 1.0, "display :test")


def test_a_window_on_a_display_that_is_not_running_is_said_to_show_nothing(monkeypatch, capsys):
    """SDL falls back to its offscreen driver when DISPLAY names no running server: the
    window "opens" and shows nothing; `rtmri live` says so instead of going on silently."""
    from rtmri.streamer.live_cli import open_window

    monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":77")
    window = open_window(False, "gray", prog="rtmri live")
    try:
        err = capsys.readouterr().err
        if window is None:  # an SDL without the offscreen fallback refuses outright, and says so
            assert "cannot open a window" in err
        else:
            assert not window.paints and "shows nothing" in err and ":77" in err
    finally:
        if window is not None:
            window.close()
