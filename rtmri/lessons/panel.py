"""What the comparison panel (``rtmri/streamer/server/static/compare.js``) shows, as one JSON
object: the comparison, the lesson's words, both pictures per reference frame (JPEG data
URLs), both sounds on the reference's clock (WAV data URLs: the reference, the time-warped
attempt) and where to put each articulator's label on the pictures.

`rtmri compare` writes it into ``compare.html`` with the panel's script; the learner page
gets the same object from the server after an attempt.
"""

from __future__ import annotations

import base64
import io
import json
from html import escape
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image

from rtmri.alignment import FPS
from rtmri.audio import SAMPLE_RATE
from rtmri.lessons.articulators import ARTICULATORS
from rtmri.lessons.outputs import warp_audio

PANEL_STATIC = Path(__file__).resolve().parent.parent / "streamer" / "server" / "static"
PANEL_SCRIPT, PANEL_STYLE = PANEL_STATIC / "compare.js", PANEL_STATIC / "compare.css"
JPEG_QUALITY = 85
# How far along its gridlines' measuring window (inner end 0, reach 1) each label sits: in the
# air gap near the articulator it names, apart from its neighbours (the port's lines end in the
# velum, the radial lines start in the tongue).
LABEL_DEPTH = {"lips": 0.8, "tongue_tip": 0.55, "tongue_body": 0.55, "tongue_back": 0.45, "velum": 1.0, "tongue_root": 0.35}


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def jpeg_data_url(image: np.ndarray, quality: int = JPEG_QUALITY) -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="JPEG", quality=quality)
    return data_url("image/jpeg", buffer.getvalue())


def wav_data_url(samples: np.ndarray) -> str:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(np.asarray(samples, np.float32), -1, 1), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return data_url("audio/wav", buffer.getvalue())


def label_positions(grid, image_size: int) -> dict[str, list[float]]:
    """articulator -> [x, y] of its label as fractions of the picture's width and height."""
    out = {}
    for articulator in ARTICULATORS:
        lines = np.flatnonzero(np.isin(np.array(grid.regions), articulator.regions))
        depth = LABEL_DEPTH[articulator.key] * np.minimum(grid.reach, grid.length)[lines, None]
        points = grid.inner[lines] + grid.direction[lines] * depth
        x, y = (points.mean(axis=0) + 0.5) / image_size
        out[articulator.key] = [round(float(np.clip(x, 0, 1)), 4), round(float(np.clip(y, 0, 1)), 4)]
    return out


def panel_payload(comparison, lesson: dict, reference_wav: np.ndarray, attempt_wav: np.ndarray, grid, image_size: int,
                  pictures: dict[str, list[str]] | None = None) -> dict:
    """pictures: "reference" and/or "attempt" -> their pictures' data URLs as made already (the
    reference's kept, the attempt's from the learner's live frames), else encoded here from the
    comparison's frames."""
    pictures = pictures or {}
    n_samples = len(comparison.reference_frames) * SAMPLE_RATE // FPS
    reference = np.pad(np.asarray(reference_wav, np.float32), (0, max(0, n_samples - len(reference_wav))))[:n_samples]
    attempt = warp_audio(attempt_wav, comparison.alignment.attempt_time, n_samples)
    return {
        "comparison": comparison.to_json(),
        "lesson": lesson,
        "labels": label_positions(grid, image_size),
        "frames": {"reference": pictures.get("reference") or [jpeg_data_url(f) for f in comparison.reference_frames],
                   "attempt": pictures.get("attempt") or [jpeg_data_url(f) for f in comparison.attempt_frames]},
        "audio": {"reference": wav_data_url(reference), "attempt": wav_data_url(attempt)},
    }


HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rtmri compare: {title}</title>
<link rel="icon" href="data:,">
<style>body {{ font-family: system-ui, sans-serif; margin: 0.6rem; background: #111; color: #eee; }}
{style}</style>
</head>
<body>
<div id="comparison"></div>
<script type="application/json" id="payload">{payload}</script>
<script type="module">
{script}
const payload = JSON.parse(document.getElementById("payload").textContent);
const lang = (localStorage.getItem("rtmri-lang") || navigator.language || "en").startsWith("ja") ? "ja" : "en";
window.rtmriComparison = mountComparison(document.getElementById("comparison"), payload, {{ lang }});
</script>
</body>
</html>
"""


def panel_html(payload: dict, title: str) -> str:
    """A page that shows the panel with no server (file://)."""
    data = json.dumps(payload, ensure_ascii=False).replace("</", "<\\/")
    return HTML.format(title=escape(title), payload=data, script=PANEL_SCRIPT.read_text(encoding="utf-8"),
                       style=PANEL_STYLE.read_text(encoding="utf-8"))
