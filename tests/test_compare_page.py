"""The comparison panel in a real browser (Debian's Chromium, headless, Playwright): the
compare.html that `rtmri compare` writes, at a phone's width."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from rtmri import cli
from rtmri.demo import ASSETS

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]
FLAP = ASSETS / "lessons" / "07_flap_r.male.flac"

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not (CHROMIUM.exists() and shutil.which("espeak-ng") and shutil.which("sox")),
                                reason="needs Debian's chromium, espeak-ng and sox")


@pytest.fixture
def comparison(tmp_path):
    raw, attempt = tmp_path / "raw.wav", tmp_path / "sori.wav"
    subprocess.run(["espeak-ng", "-v", "ja", "-w", str(raw), "そり"], check=True)  # /i/ for the lesson's /a/
    subprocess.run(["sox", str(raw), "-r", "22050", str(attempt)], check=True)
    out = tmp_path / "out"
    assert cli.main(["compare", str(attempt), str(FLAP), "-o", str(out), "--no-video"]) == 0
    return out, json.loads((out / "compare.json").read_text())


def canvas_mean(page, selector):
    return page.evaluate("""(sel) => { const c = document.querySelector(sel);
        const d = c.getContext('2d').getImageData(0, c.height / 2, c.width, c.height / 2).data;
        let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i]; return s / (d.length / 4); }""", selector)


def test_compare_html_shows_the_panel_on_a_phone(comparison):
    out, report = comparison
    assert report["segments"]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 844})
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto((out / "compare.html").as_uri())
        page.wait_for_function("() => window.rtmriComparison && document.querySelectorAll('.cmp-curve').length === 12")
        page.evaluate("() => window.rtmriComparison.ready")
        state = lambda: page.evaluate("() => ({...window.rtmriComparison.state})")
        # the score, the differences in words and both curves of every articulator
        assert page.inner_text(".cmp-score-value") == str(report["score"])
        assert page.locator(".cmp-segment").all_inner_texts() == [s["en"] for s in report["segments"]]
        drawn = page.evaluate("() => [...document.querySelectorAll('.cmp-curve')].map(p => p.getAttribute('d').split(/[ML]/).length - 1)")
        assert drawn == [len(report["times_s"])] * 12
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390  # fits a phone
        # the reference's phones and the time readout in IPA (the lesson's flap r is ɾ), the score's own rule
        phones = page.evaluate("() => [...document.querySelectorAll('.cmp-phone')].map(t => t.textContent)")
        assert phones == [p["ipa"] for p in report["phones"]] == ["s", "o", "ɾ", "a"]
        flap = report["phones"][2]
        page.evaluate("(t) => window.rtmriComparison.seek(t)", (flap["start"] + flap["end"]) / 2)
        assert page.inner_text(".cmp-time").endswith("/ɾ/")
        assert report["score_rule"] in page.inner_text(".cmp-rule") and "3.5 mm" not in page.inner_text(".cmp-rule")
        # a difference seeks to its time; both pictures show that frame (the attempt's aligned one)
        first = report["segments"][0]
        page.locator(".cmp-segment").first.click()
        frame = round(first["start_s"] * 25)
        assert state()["frame"] == frame
        assert f"{report['attempt_times_s'][frame]:.2f} s" in page.inner_text(".cmp-attempt-picture + figcaption")
        before = canvas_mean(page, ".cmp-reference-picture")
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("ArrowLeft")
        assert state()["frame"] == frame - 3 and canvas_mean(page, ".cmp-reference-picture") != before
        # the scrubber moves the time
        page.locator(".cmp-scrubber").fill("5")
        assert state()["frame"] == 5
        # labels, language, speed by keyboard
        page.keyboard.press("l")
        assert state()["labels"] is False
        page.keyboard.press("j")
        assert page.evaluate("() => document.querySelector('.cmp').lang") == "ja"
        assert page.locator(".cmp-segment").all_inner_texts() == [s["ja"] for s in report["segments"]]
        page.keyboard.press("3")
        assert state()["speed"] == 0.25
        # playing at 0.25x moves a quarter as fast as the clock
        page.evaluate("() => window.rtmriComparison.seek(0)")
        page.keyboard.press(" ")
        page.wait_for_timeout(800)
        moved = state()["t"]
        page.keyboard.press(" ")
        assert 0.05 < moved < 0.5 and state()["playing"] is False
        assert not errors
        browser.close()


def test_learner_page_records_an_attempt_and_shows_the_comparison(tmp_path):
    """Chromium's fake microphone says そら; the page records an attempt, the server compares it
    with the served lesson and the page shows the panel with its curves."""
    from rtmri.bundle.engine import Engine
    from rtmri.demo import shipped
    from rtmri.lessons.live import LessonComparer, lesson_references
    from rtmri.streamer.server.app import RtmriServer, ServerOptions, ServerThread

    raw, speech = tmp_path / "raw.wav", tmp_path / "sora.wav"
    subprocess.run(["espeak-ng", "-v", "ja", "-s", "120", "-w", str(raw), "そら"], check=True)
    subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(speech), "pad", "0.3", "1.5"], check=True)
    references = tmp_path / "refs"
    references.mkdir()
    for suffix in (".flac", ".mp4", ".json"):
        shutil.copy(FLAP.with_suffix(suffix), references / f"sora{suffix}")
    engine = Engine(shipped().bundle)
    engine.warm_up()
    served = lesson_references(references, engine)
    server = RtmriServer(engine, ServerOptions(mode="learner", port=0), references=served, comparer=LessonComparer(engine, served))
    thread = ServerThread(server).start()
    args = ARGS + ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={speech}"]
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(thread.server.url)
            page.wait_for_function("() => window.rtmriStats.state === 'open'", timeout=20000)
            assert "sora" in page.inner_text("#ref-select")  # the lesson's words in the list
            page.click("#mic")
            page.wait_for_function("() => window.rtmriStats.painted >= 25", timeout=20000)
            page.click("#record")
            page.wait_for_timeout(3000)  # the file loops every 2.8 s: one whole そら at least
            page.click("#record")
            page.wait_for_function("() => document.querySelectorAll('#comparison .cmp-curve').length === 12", timeout=30000)
            score = int(page.inner_text("#comparison .cmp-score-value"))
            assert 0 <= score <= 100
            assert page.inner_text("#comparison .cmp-item").startswith("空")
            frames = page.evaluate("() => window.rtmriComparison.state.frame")
            page.keyboard.press("ArrowRight")
            assert page.evaluate("() => window.rtmriComparison.state.frame") == frames + 1
            assert "1: " in page.inner_text("#comparison .cmp-history")  # the first attempt at this item
            page.click("#lang-ja")
            assert page.evaluate("() => window.rtmriComparison.state.lang") == "ja"
            page.screenshot(path=str(tmp_path / "comparison.png"), full_page=True)
            assert not errors, errors
            browser.close()
    finally:
        thread.stop()
