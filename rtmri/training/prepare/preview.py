"""``rtmri prepare --preview SRC [OUT_DIR]``: one PNG per speaker to check a crop before a
long run. Left: a frame from the middle of the speaker's first readable recording,
enlarged, with the crop rectangle (red) and the crop's horizontal midline (yellow; the
tongue region lies below it). Right: the crop as the dataset will hold it (--size),
enlarged to the same height."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rtmri import RtmriError
from rtmri.training.prepare import PrepareError
from rtmri.video import read as video
from rtmri.training.prepare.layouts import discover

PANEL = 384  # minimum displayed height of the frame, px


def run_preview(src: Path, out_dir: Path, crop=None, size: int = 96, speaker_pattern: str | None = None) -> list[Path]:
    from PIL import Image, ImageDraw

    found = discover(src, speaker_pattern)
    by_speaker: dict[str, list] = {}
    for rec in found.recordings:
        if not rec.problem:
            by_speaker.setdefault(rec.speaker, []).append(rec)
    if crop is not None:
        from rtmri.training.prepare.pipeline import check_crop_everywhere

        check_crop_everywhere([recs[0] for recs in by_speaker.values()], crop)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, failures = [], []
    for speaker, recordings in sorted(by_speaker.items()):
        for rec in recordings:
            try:
                gray, info = video.read_frame(rec.video, 0.5)
            except RtmriError as exc:
                failures.append(f"{rec.rel}: {exc}")
                continue
            rect = crop if crop is not None else rec.crop
            problem = video.check_crop(rect, info.width, info.height) if rect else None
            if problem:
                failures.append(f"{rec.rel}: {problem}")
                rect = None
            image = _compose(gray, rect or (0, 0, info.width, info.height), size, f"{speaker}  {rec.rel}  {info.width}x{info.height}"
                             f"  {info.fps or 0:.2f} fps  crop {','.join(map(str, rect)) if rect else 'full frame'}", Image, ImageDraw)
            path = out_dir / f"preview_{speaker}.png"
            image.save(path)
            written.append(path)
            break
    if not written:
        raise PrepareError(f"{src}: no frame could be read for a preview: " + "; ".join(failures[:5]))
    return written


def _compose(gray: np.ndarray, rect, size: int, title: str, Image, ImageDraw):
    height, width = gray.shape
    scale = max(1, int(np.ceil(PANEL / height)))
    left = Image.fromarray(gray).convert("RGB").resize((width * scale, height * scale), Image.Resampling.NEAREST)
    x, y, w, h = rect
    draw = ImageDraw.Draw(left)
    draw.rectangle([x * scale, y * scale, (x + w) * scale - 1, (y + h) * scale - 1], outline=(255, 40, 40), width=2)
    mid = int((y + h / 2) * scale)
    draw.line([x * scale, mid, (x + w) * scale - 1, mid], fill=(255, 220, 0), width=1)
    cropped = video.CropResize(tuple(rect), size)(gray)
    right = Image.fromarray(cropped).convert("RGB").resize((left.height, left.height), Image.Resampling.BICUBIC)
    rd = ImageDraw.Draw(right)
    rd.line([0, right.height // 2, right.width - 1, right.height // 2], fill=(255, 220, 0), width=1)
    rd.text((4, right.height // 2 + 4), "tongue region", fill=(255, 220, 0))
    canvas = Image.new("RGB", (left.width + right.width + 8, left.height + 22), (0, 0, 0))
    canvas.paste(left, (0, 22))
    canvas.paste(right, (left.width + 8, 22))
    ImageDraw.Draw(canvas).text((4, 4), f"{title}  -> {size}x{size}", fill=(255, 255, 255))
    return canvas
