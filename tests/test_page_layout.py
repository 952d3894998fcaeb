"""What a learner sees, in a real browser (Debian's Chromium, headless, Playwright), at a laptop's
1280 px and a phone's 390 px, in English and Japanese: the comparison panel's articulator labels
never on each other, nothing wider than its panel, Japanese text in the font the page ships,
and the voice picker choosing each lesson's reference in the chosen voice.

The server is the real one (a tiny bundle: nothing here needs the model's pictures); its
references are made here, the shipped lessons in a male, a female and a child's voice (the
lesson description's "voice" and "lesson" keys) and one reference in a single voice. The
comparison panel shows a payload made here with the shipped bundle's label positions."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest
import soundfile

from rtmri.audio import SAMPLE_RATE
from rtmri.bundle.engine import Engine
from rtmri.bundle.manifest import read_manifest
from rtmri.demo import ASSETS, shipped
from rtmri.lessons.articulators import ARTICULATORS
from rtmri.lessons.grid import bundle_grid
from rtmri.lessons.lesson import read_lessons
from rtmri.lessons.panel import jpeg_data_url, label_positions, wav_data_url
from rtmri.streamer.server.app import RtmriServer, ServerOptions, ServerThread
from rtmri.streamer.server.protocol import DEFAULT_CODEC, DEFAULT_QUALITY, TRACK_RENDERED
from rtmri.streamer.server.references import Reference, track_bytes

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
WIDTHS = ((1280, 900), (390, 844))
FONT_FAMILY = "rtmri Noto Sans JP"
FONT_NAME = "Noto Sans CJK JP"  # the shipped file's own family name
PAGE_FONT = Path(__file__).parents[1] / "tools" / "page_font.py"
VOICES = ("male", "female", "child")
SINGLE = "a single-voice reference"
ONLY_TWO = "08_passage"  # made in two voices only: a child picks the first there is

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")


def wav(seconds: float = 0.4) -> bytes:
    buffer = io.BytesIO()
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    soundfile.write(buffer, 0.2 * np.sin(2 * np.pi * 220 * t), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def voiced_references() -> list[Reference]:
    """Every shipped lesson in three voices (one in two), voice by voice as a lesson set might
    list them, then a reference with no voice."""
    lessons = [lesson for lesson in read_lessons(ASSETS / "lessons") if lesson.voice in ("", "male")]
    images = [np.full((64, 64), 40 * k, np.uint8) for k in range(3)]
    rendered = track_bytes(images, DEFAULT_CODEC, DEFAULT_QUALITY, TRACK_RENDERED)
    described = [{**lesson.describe(), "id": f"{lesson.lesson or lesson.id}.{voice}", "voice": voice,
                  "lesson": lesson.lesson or lesson.id}
                 for voice in VOICES for lesson in lessons if not (voice == "child" and (lesson.lesson or lesson.id) == ONLY_TWO)]
    described.append({"id": "native", "name": SINGLE, "text": "", "romaji": ""})
    return [Reference(id=str(i), name=d["name"], duration_s=0.4, frames=len(images), audio_wav=wav(), rendered=rendered,
                      original=None, lesson=d) for i, d in enumerate(described)]


def panel_payload(n_frames: int = 12) -> dict:
    """A comparison panel's payload with the shipped bundle's label positions."""
    bundle = read_manifest(shipped().bundle)
    keys = [a.key for a in ARTICULATORS]
    times = [round(k / 25, 3) for k in range(n_frames)]
    curve = lambda shift: [round(6 + 4 * np.sin(k / 3 + shift), 2) for k in range(n_frames)]
    frame = jpeg_data_url(np.full((bundle.image_size, bundle.image_size), 90, np.uint8))
    comparison = {
        "score": 61, "times_s": times, "attempt_times_s": times,
        "articulators": [{"key": a.key, "en": a.en, "ja": a.ja} for a in ARTICULATORS],
        "reference": {k: curve(0) for k in keys}, "attempt": {k: curve(1) for k in keys},
        "phones": [{"phone": "s", "start": 0.0, "end": 0.2}, {"phone": "o", "start": 0.2, "end": 0.48}],
        "segments": [{"articulator": "tongue_back", "start_s": 0.12, "end_s": 0.24, "en": "the back of the tongue was lower",
                      "ja": "舌の奥が低くなっていました"}],
    }
    return {"comparison": comparison, "lesson": {"name": "The flap r", "text": "空", "kana": "そら", "romaji": "sora"},
            "labels": label_positions(bundle_grid(bundle), bundle.image_size),
            "frames": {"reference": [frame] * n_frames, "attempt": [frame] * n_frames},
            "audio": {"reference": wav_data_url(np.zeros(1600)), "attempt": wav_data_url(np.zeros(1600))}}


def package_japanese() -> str:
    """Every Japanese character of the package's text (tools/page_font.py's own reading)."""
    spec = importlib.util.spec_from_file_location("page_font", PAGE_FONT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return "".join(sorted(module.package_text()))


@pytest.fixture
def served(make_tiny_bundle):
    engine = Engine(make_tiny_bundle(size=64))
    references = voiced_references()
    thread = ServerThread(RtmriServer(engine, ServerOptions(mode="learner", port=0), references=references)).start()
    yield thread.server, references
    thread.stop()


@pytest.fixture
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


def open_page(browser, url, width=1280, height=900):
    page = browser.new_page(viewport={"width": width, "height": height})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_function("() => window.rtmriStats && window.rtmriStats.state === 'open'", timeout=20000)
    page.wait_for_function("() => document.querySelector('#ref-select option[data-lesson]')", timeout=10000)
    return page, errors


LAYOUT_PROBLEMS = """() => {
    const box = (el) => el.getBoundingClientRect();
    const shown = (el) => el.getClientRects().length > 0 && box(el).width > 0 && box(el).height > 0;
    const inside = (a, b) => a.left >= b.left - 0.5 && a.right <= b.right + 0.5 && a.top >= b.top - 0.5 && a.bottom <= b.bottom + 0.5;
    const apart = (a, b) => a.right <= b.left + 0.5 || b.right <= a.left + 0.5 || a.bottom <= b.top + 0.5 || b.bottom <= a.top + 0.5;
    const name = (el) => el.id || `${el.tagName.toLowerCase()}.${el.className.baseVal ?? el.className}`;
    const found = [];
    for (const panel of document.querySelectorAll("header, footer, main > .panel")) {
        if (!shown(panel)) continue;
        if (panel.scrollWidth > panel.clientWidth) found.push(`${name(panel)} scrolls: ${panel.scrollWidth} > ${panel.clientWidth}`);
        for (const el of panel.querySelectorAll("*")) {
            if (el.tagName === "OPTION" || !shown(el) || el.closest("svg.cmp-leaders")) continue;
            if (!inside(box(el), box(panel))) found.push(`${name(el)} leaves ${name(panel)}`);
        }
    }
    if (document.documentElement.scrollWidth > innerWidth) found.push(`page ${document.documentElement.scrollWidth} px > ${innerWidth}`);
    // the articulators' labels on each picture: inside it, none on another
    for (const layer of document.querySelectorAll(".cmp-label-layer")) {
        const labels = [...layer.querySelectorAll(".cmp-label")].filter(shown);
        if (labels.length !== 6) found.push(`${labels.length} labels shown on a picture`);
        labels.forEach((a, i) => {
            if (!inside(box(a), box(layer))) found.push(`label ${a.textContent} leaves its picture`);
            labels.slice(i + 1).forEach((b) => { if (!apart(box(a), box(b))) found.push(`label ${a.textContent} / ${b.textContent}`); });
        });
    }
    // the curves' names: left of every curve
    const curves = Math.min(...[...document.querySelectorAll(".cmp-curve")].map((c) => box(c).left));
    for (const text of document.querySelectorAll(".cmp-curves .cmp-name")) {
        if (box(text).right > curves) found.push(`curve name ${text.textContent} runs into the curves`);
    }
    return found;
}"""


def mount_panel(page, payload):
    page.evaluate("""async (payload) => {
        const { mountComparison } = await import("/compare.js");
        document.getElementById("comparison-section").hidden = false;
        window.testPanel = mountComparison(document.getElementById("comparison"), payload, { lang: document.documentElement.lang });
        await window.testPanel.ready;
    }""", payload)


def test_labels_and_panels_fit_at_a_laptops_and_a_phones_width(served, browser, tmp_path):
    server, _ = served
    page, errors = open_page(browser, server.url)
    mount_panel(page, panel_payload())
    for width, height in WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        for language in ("en", "ja"):
            page.click(f"#lang-{language}")
            page.evaluate("(language) => window.testPanel.setLang(language)", language)  # app.js tells its own panel only
            page.evaluate("() => document.fonts.ready")
            page.wait_for_timeout(150)  # the labels are placed again on the next frame
            assert page.evaluate(LAYOUT_PROBLEMS) == [], (width, language)
            modes = page.evaluate("() => [...document.querySelectorAll('.cmp-label-layer')].map((l) => l.dataset.mode)")
            assert modes == ["names", "names"], (width, language)  # the names themselves, not numbers
            page.screenshot(path=str(tmp_path / f"page-{width}-{language}.png"), full_page=True)
    # Narrower than any phone: numbers on the picture, the names in a legend below, still apart.
    page.set_viewport_size({"width": 240, "height": 700})
    page.click("#lang-en")
    page.evaluate("() => window.testPanel.setLang('en')")
    page.wait_for_timeout(150)
    assert page.evaluate("() => [...document.querySelectorAll('.cmp-label-layer')].map((l) => l.dataset.mode)") == ["numbers"] * 2
    assert [p for p in page.evaluate(LAYOUT_PROBLEMS) if p.startswith("label")] == []
    assert page.inner_text(".cmp-legend").split("\n")[:2] == ["1 lips", "2 tongue tip"]
    # The labels button hides them.
    page.click(".cmp-labels")
    assert page.is_hidden(".cmp-label-layer") and page.is_hidden(".cmp-legend")
    assert not errors


def used_fonts(page, selector):
    """The fonts Chromium drew an element's own text with: [(family, web font?, glyphs)]."""
    cdp = page.context.new_cdp_session(page)
    document = cdp.send("DOM.getDocument")
    node = cdp.send("DOM.querySelector", {"nodeId": document["root"]["nodeId"], "selector": selector})["nodeId"]
    cdp.send("CSS.enable")
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    return [(f["familyName"], f["isCustomFont"], f["glyphCount"]) for f in fonts]


def test_japanese_text_is_drawn_in_the_shipped_font(served, browser):
    server, _ = served
    page, errors = open_page(browser, server.url)
    page.click("#lang-ja")
    status = page.evaluate(f"""async () => {{
        await document.fonts.load('16px "{FONT_FAMILY}"', 'お手本');
        await document.fonts.ready;
        const face = [...document.fonts].find((f) => f.family.replace(/"/g, '') === '{FONT_FAMILY}');
        return [face && face.status, document.fonts.check('16px "{FONT_FAMILY}"', 'お手本を再生')];
    }}""")
    assert status == ["loaded", True]
    # kana and kanji of the page, drawn with the web font and nothing else
    assert page.inner_text("#ref-play") == "お手本を再生"
    assert used_fonts(page, "#ref-play") == [(FONT_NAME, True, len("お手本を再生"))]
    # every Japanese character of the package (page, lessons, comparison, messages) is in it
    text = package_japanese()
    page.evaluate("(text) => { const p = document.createElement('p'); p.id = 'all-japanese'; p.textContent = text; document.body.append(p); }",
                  text)
    fonts = used_fonts(page, "#all-japanese")
    missing = page.evaluate("""(text) => [...text].filter((c) => !document.fonts.check('16px "rtmri Noto Sans JP"', c))""", text)
    assert fonts == [(FONT_NAME, True, len(text))], f"{fonts}: run python tools/page_font.py ({''.join(missing)})"
    assert not errors


def lesson_options(page):
    return page.evaluate("""() => [...document.getElementById('ref-select').options].map((o) => (
        { id: o.value, lesson: o.dataset.lesson, voice: o.dataset.voice, text: o.textContent }))""")


def test_the_voice_picker_gives_each_lesson_in_the_chosen_voice(served, browser):
    server, references = served
    by_name = {(r.lesson.get("lesson"), r.lesson.get("voice")): r.id for r in references}
    page, errors = open_page(browser, server.url)
    lessons = sorted({r.lesson["lesson"] for r in references if "lesson" in r.lesson})
    # each lesson once (and the single-voice reference), in the first voice there is
    options = lesson_options(page)
    assert [o["lesson"] for o in options] == [f"lesson:{lesson}" for lesson in lessons] + ["reference:" + by_name[None, None]]
    assert [o["id"] for o in options[:-1]] == [by_name[lesson, "male"] for lesson in lessons]
    assert page.is_visible("#voice-select")
    assert page.evaluate("() => [...document.getElementById('voice-select').options].map((o) => o.value)") == list(VOICES)
    # a lesson chosen, then a voice: the same lesson in that voice, and it is what plays
    page.select_option("#ref-select", by_name["03_geminate", "male"])
    page.select_option("#voice-select", "female")
    assert page.input_value("#ref-select") == by_name["03_geminate", "female"]
    assert {o["voice"] for o in lesson_options(page)[:-1]} == {"female"}
    assert lesson_options(page)[-1]["id"] == by_name[None, None]  # the single voice stays as it is
    with page.expect_request(lambda r: "/rendered.bin" in r.url) as played:
        page.click("#ref-play")
    assert f"/references/{by_name['03_geminate', 'female']}/rendered.bin" in played.value.url
    # remembered: a new visit starts with it
    assert page.evaluate("() => localStorage.getItem('rtmri-voice')") == "female"
    page.reload()
    page.wait_for_function("() => window.rtmriStats.state === 'open' && document.querySelector('#ref-select option[data-lesson]')")
    assert page.input_value("#voice-select") == "female"
    assert [o["id"] for o in lesson_options(page)[:-1]] == [by_name[lesson, "female"] for lesson in lessons]
    # a lesson without the chosen voice gives the first voice it has
    page.select_option("#voice-select", "child")
    chosen = {o["lesson"]: (o["id"], o["voice"]) for o in lesson_options(page)}
    assert chosen[f"lesson:{ONLY_TWO}"] == (by_name[ONLY_TWO, "male"], "male")
    assert chosen["lesson:01_vowels"] == (by_name["01_vowels", "child"], "child")
    # in Japanese
    page.click("#lang-ja")
    assert page.evaluate("() => [...document.getElementById('voice-select').options].map((o) => o.textContent)") == \
        ["男性の声", "女性の声", "子どもの声"]
    assert not errors
