"""The page in a real browser: Debian's Chromium, headless, driven by Playwright.

Broadcast: the page connects, paints frames and measures its latency. Learner: a WAV with
speech and silence is Chromium's fake microphone; the page sends it through its
AudioWorklet, and the frames it gets back change while it speaks and stay still in the
silences. The page counts what it received and painted in window.rtmriStats (with #debug
also a trace of each painted frame's lower-half brightness and of the sent audio's level).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from rtmri.articulation.regions import REGIONS
from rtmri.audio import SAMPLE_RATE
from rtmri.streamer.benchmarks.signals import bursts
from rtmri.bundle.engine import Engine
from rtmri.lessons.live import lesson_references
from rtmri.streamer.server import protocol
from rtmri.streamer.server.app import RtmriServer, ServerOptions, ServerThread
from rtmri.streamer.sources import FileSource

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--autoplay-policy=no-user-gesture-required"]

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")


def speech_and_silence(path: Path) -> Path:
    """About 2.5 s of speech then 2 s of silence (espeak-ng and sox where installed, else
    noise bursts), 16 kHz mono."""
    if shutil.which("espeak-ng") and shutil.which("sox"):
        raw = path.with_name("espeak.wav")
        subprocess.run(["espeak-ng", "-s", "150", "-w", str(raw), "Hello, this is the vocal tract speaking, aiueo."], check=True)
        subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(path), "pad", "0.2", "2.0"], check=True)
        return path
    soundfile.write(path, np.concatenate([bursts(2.5, period_s=0.25), np.zeros(2 * SAMPLE_RATE, np.float32)]), SAMPLE_RATE)
    return path


@pytest.fixture
def server(make_tiny_bundle, make_tiny_articulatory_bundle, tmp_path):
    running = []

    def start(mode, audio=None, references=None, articulatory=False):
        engine = Engine((make_tiny_articulatory_bundle if articulatory else make_tiny_bundle)(size=64))
        engine.warm_up()
        refs = lesson_references(references, engine) if references else ()
        make_source = (lambda: FileSource(audio, realtime=True)) if audio else None
        thread = ServerThread(RtmriServer(engine, ServerOptions(mode=mode, port=0), make_source, refs)).start()
        running.append(thread)
        return thread.server

    yield start
    for thread in running:
        thread.stop()


@pytest.fixture
def browser_page():
    pages = []

    def open_page(url, fake_microphone=None):
        args = list(ARGS)
        if fake_microphone:
            args += ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                     f"--use-file-for-fake-audio-capture={fake_microphone}"]
        playwright = sync_api.sync_playwright().start()
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        pages.append((playwright, browser, page, errors))
        return page, errors

    yield open_page
    for playwright, browser, _, _ in pages:
        browser.close()
        playwright.stop()


def stats(page):
    return page.evaluate("() => window.rtmriStats")


def test_page_paints_broadcast_frames_and_measures_latency(server, browser_page, tmp_path):
    audio = tmp_path / "bursts.wav"
    soundfile.write(audio, bursts(4.0, seed=1), SAMPLE_RATE)
    srv = server("broadcast", audio=audio)
    page, errors = browser_page(srv.url + "#debug")
    page.wait_for_function("() => window.rtmriStats.painted >= 50 && window.rtmriStats.a2p.length >= 10", timeout=30000)
    s = stats(page)
    assert s["state"] == "open" and s["mode"] == "broadcast"
    assert s["received"] >= s["painted"] >= 50
    assert s["offsetMs"] is not None and 0 < s["rttMs"] < 1000
    assert 0 < np.median(s["a2p"]) < 2000 and 0 <= np.median(s["transport"]) < 2000
    lower = [e["lower"] for e in s["trace"]]
    assert max(lower) - min(lower) > 20  # the bursts show in the picture
    page.screenshot(path=str(tmp_path / "broadcast.png"))
    # The page's frame parser reads a message the server's FrameHeader packed, field for field.
    constrictions = (0.0, 1.5, 2.25, 8.5, 12.0, 0.75)
    sent = protocol.FrameHeader("png", protocol.TRACK_ORIGINAL, 70001, 9, 4, 1.25, 2.5, 3.75, constriction_mm=constrictions, closed=3)
    parsed = page.evaluate("""(bytes) => {
        const f = window.rtmriProtocol.parseFrame(new Uint8Array(bytes).buffer);
        return { ...f, image: [f.image.size, f.image.type] }; }""", list(protocol.frame_message(sent, b"PNGDATA", sent_at_ms=5.5)))
    assert parsed == {"kind": protocol.KIND_FRAME, "version": protocol.VERSION, "codec": protocol.CODECS["png"], "track": 2,
                      "index": 70001, "dropped": 9, "epoch": 4, "spoken_at_ms": 1.25, "audio_ready_at_ms": 2.5,
                      "made_at_ms": 3.75, "sent_at_ms": 5.5, **dict(zip(protocol.CONSTRICTION_FIELDS, constrictions)),
                      "closed": 3, "image": [7, "image/png"]}
    # A bundle without a state: its frames carry NaN, and the articulators stay hidden.
    assert page.is_hidden("#articulators") and s["articulation"] is None
    # Japanese and English text.
    page.click("#lang-ja")
    assert page.evaluate("document.documentElement.lang") == "ja"
    assert page.inner_text("#state") == "接続済み" and "再生速度" in page.inner_text("footer")
    page.click("#lang-en")
    assert page.inner_text("#state") == "connected"
    assert not errors


def overlaps(page):
    """Pairs of the page's boxes that overlap (the articulators against the panels, header and
    footer; within each of its rows, name, closure mark, bar and value), and horizontal overflow."""
    return page.evaluate("""() => {
        const box = (el) => el.getBoundingClientRect();
        const shown = (el) => el && !el.hidden && getComputedStyle(el).display !== "none" && box(el).width > 0;
        const apart = (a, b) => a.right <= b.left + 0.5 || b.right <= a.left + 0.5 || a.bottom <= b.top + 0.5 || b.bottom <= a.top + 0.5;
        const inside = (a, b) => a.left >= b.left - 0.5 && a.right <= b.right + 0.5 && a.top >= b.top - 0.5 && a.bottom <= b.bottom + 0.5;
        const panel = document.getElementById("articulators");
        const found = [];
        for (const other of document.querySelectorAll("header, footer, main > :not(#articulators)")) {
            if (shown(other) && !apart(box(panel), box(other))) found.push(`articulators / ${other.id || other.tagName}`);
        }
        for (const li of panel.querySelectorAll("li")) {
            const parts = [...li.children].filter(shown);
            parts.forEach((a, i) => {
                if (!inside(box(a), box(panel))) found.push(`${li.dataset.region} ${a.className} leaves the panel`);
                parts.slice(i + 1).forEach((b) => { if (!apart(box(a), box(b))) found.push(`${li.dataset.region} ${a.className} / ${b.className}`); });
            });
        }
        if (document.documentElement.scrollWidth > innerWidth) found.push(`page ${document.documentElement.scrollWidth} px wide`);
        return found;
    }""")


def articulator_rows(page):
    return page.evaluate("""() => [...document.querySelectorAll('#articulator-rows li')].map((li) => ({
        region: li.dataset.region, name: li.querySelector('.name').textContent, value: li.querySelector('.value').textContent,
        closed: !li.querySelector('.shut').hidden, bar: li.querySelector('.fill').getBoundingClientRect().width }))""")


def test_the_articulators_of_an_articulatory_bundle_show_live_beside_the_picture(server, browser_page, tmp_path):
    audio = tmp_path / "bursts.wav"
    soundfile.write(audio, bursts(4.0, seed=1), SAMPLE_RATE)
    srv = server("broadcast", audio=audio, articulatory=True)
    page, errors = browser_page(srv.url)
    page.wait_for_function("() => window.rtmriStats.painted >= 10", timeout=30000)
    assert page.is_visible("#articulators")
    rows = articulator_rows(page)
    assert [r["region"] for r in rows] == list(REGIONS)
    assert [r["name"] for r in rows] == ["lips", "tongue tip", "tongue body (palatal)", "back of the tongue (velar)",
                                         "tongue root (pharyngeal)", "velum (port opening)"]
    assert all(re.fullmatch(r"\d+\.\d mm", r["value"]) for r in rows), rows
    # The tiny model closes the lips in the bursts' silences and opens them in the noise.
    lips = "document.querySelector('#articulator-rows li[data-region=lips]')"
    # read in the same instant as the mark: the next frame may open them again
    shown = page.wait_for_function(f"() => !{lips}.querySelector('.shut').hidden && {lips}.querySelector('.value').textContent",
                                   timeout=10000)
    assert shown.json_value() == "0.0 mm"
    page.wait_for_function(f"() => {lips}.querySelector('.shut').hidden && parseFloat({lips}.querySelector('.value').textContent) > 5",
                           timeout=10000)
    assert articulator_rows(page)[0]["bar"] > 0
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        for language in ("en", "ja"):
            page.click(f"#lang-{language}")
            page.wait_for_timeout(100)
            assert overlaps(page) == [], (width, language)
            page.screenshot(path=str(tmp_path / f"articulators-{width}-{language}.png"), full_page=True)
        live, panel = (page.locator(selector).bounding_box() for selector in ("#live", "#articulators"))
        beside = panel["x"] >= live["x"] + live["width"] and panel["y"] < live["y"] + live["height"]
        assert beside == (width == 1280), (width, live, panel)  # beside the picture when there is room, else below
    assert page.inner_text("#articulators h2") == "調音器官" and articulator_rows(page)[0]["name"] == "唇"
    assert not errors


def test_learner_microphone_frames_follow_the_speech(server, browser_page, tmp_path):
    references = tmp_path / "refs"
    references.mkdir()
    soundfile.write(references / "native.wav", bursts(1.0, seed=2), SAMPLE_RATE)
    srv = server("learner", references=references)
    page, errors = browser_page(srv.url + "#debug", fake_microphone=speech_and_silence(tmp_path / "speech.wav"))
    page.wait_for_function("() => window.rtmriStats.state === 'open'", timeout=20000)
    page.click("#mic")
    page.wait_for_function("() => window.rtmriStats.painted >= 150", timeout=40000)  # 6 s: the file and more
    s = stats(page)
    assert s["micRunning"] and s["mode"] == "learner"
    epoch = s["trace"][-1]["epoch"]
    rms = {int(k.split(":")[1]): v for k, v in s["audioRms"].items() if k.split(":")[0] == str(epoch)}
    trace = [e for e in s["trace"] if e["epoch"] == epoch]
    # Frame k's window: the 200 ms up to 40 ms past its timestamp (blocks k-4 .. k).
    level, lower = [], []
    for e in trace:
        blocks = [rms[j] for j in range(e["index"] - 4, e["index"] + 1) if j in rms]
        if len(blocks) == 5:
            level.append(np.log10(np.mean(blocks) + 1e-4))
            lower.append(e["lower"])
    level, lower = np.array(level), np.array(lower)
    assert len(level) >= 100
    speaking = level > np.log10(0.01)
    silent = level < np.log10(0.0005)
    assert speaking.sum() >= 20 and silent.sum() >= 10, (speaking.sum(), silent.sum())
    change = np.abs(np.diff(lower, prepend=lower[0]))
    assert change[speaking].mean() > change[silent].mean() + 1.0, (change[speaking].mean(), change[silent].mean())
    assert lower[speaking].mean() > lower[silent].mean() + 10
    assert np.corrcoef(level, lower)[0, 1] > 0.5
    assert len(s["a2p"]) >= 50 and 0 < np.median(s["a2p"]) < 2000  # audio-to-photon, on the page's own clock

    # Record an attempt, replay it, and play it next to the reference.
    page.click("#record")
    page.wait_for_timeout(1500)
    page.click("#record")
    page.wait_for_function("() => !document.getElementById('replay').disabled", timeout=5000)
    page.select_option("#speed", "0.5")
    page.click("#replay")
    page.wait_for_function("() => document.getElementById('live').classList.contains('replaying')", timeout=5000)
    page.wait_for_function("() => !document.getElementById('live').classList.contains('replaying')", timeout=15000)
    assert page.evaluate("document.getElementById('ref-select').options.length") == 1
    page.click("#compare")
    # The reference's frames appear on its canvas (black until then).
    page.wait_for_function("""() => {
        const d = document.getElementById('reference').getContext('2d').getImageData(0, 0, 384, 384).data;
        let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i]; return s / (d.length / 4) > 10; }""", timeout=10000)
    page.screenshot(path=str(tmp_path / "learner.png"))
    page.click("#mic")
    assert not stats(page)["micRunning"]
    assert not errors


def test_worklet_resamples_a_48_khz_microphone_to_16_khz(browser_page):
    """The fallback for browsers whose AudioContext cannot run at 16 kHz: the worklet's own
    resampler, run in the page with a stand-in for the AudioWorklet scope."""
    page, errors = browser_page("about:blank")
    source = (Path(__file__).parents[1] / "rtmri/streamer/server/static/worklet.js").read_text()
    result = page.evaluate("""([source]) => {
        const posted = [];
        class AudioWorkletProcessor { constructor() { this.port = { postMessage: (m) => posted.push(...m) }; } }
        let Capture = null;
        new Function("AudioWorkletProcessor", "registerProcessor", "sampleRate", source)(
            AudioWorkletProcessor, (name, cls) => { Capture = cls; }, 48000);
        const node = new Capture({ processorOptions: { targetRate: 16000, chunk: 320 } });
        const seconds = 1, rate = 48000, tone = 440, alias = 15000;
        for (let start = 0; start < seconds * rate; start += 128) {
            const block = new Float32Array(128);
            for (let i = 0; i < 128; i++) {
                const t = (start + i) / rate;
                block[i] = 0.5 * Math.sin(2 * Math.PI * tone * t) + 0.2 * Math.sin(2 * Math.PI * alias * t);
            }
            node.process([[block]]);
        }
        return posted;
    }""", [source])
    samples = np.array(result, np.float32)
    assert abs(len(samples) - 16000) <= 320  # whole 20 ms chunks of 16 kHz audio
    spectrum = np.abs(np.fft.rfft(samples[:16000] * np.hanning(16000)))
    peak = np.argmax(spectrum)  # 1 Hz bins
    assert abs(peak - 440) <= 2
    # 15 kHz cannot be represented at 16 kHz; the smoothing keeps its alias (1 kHz) well below the tone.
    assert spectrum[990:1010].max() < 0.25 * spectrum[peak]
    assert not errors
