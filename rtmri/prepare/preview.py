"""``rtmri prepare --preview SRC [OUT_DIR]``: one PNG per speaker to check a crop and the
analysis grid before a long run. Left: the mean image of the speaker's first readable
recording, enlarged, with the crop rectangle (red), the crop's horizontal midline (yellow;
the tongue region lies below it) and, where the speaker has one (a synthetic corpus, or
--landmarks), the analysis grid: each gridline over its measuring window, coloured by
region (the shared DESIGN.md §5b). Right: the crop as the dataset will hold it (--size), enlarged to the
same height."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from rtmri import RtmriError
from rtmri.clips import IMAGE_SIZE
from rtmri.prepare import PrepareError
from rtmri.prepare.articulation import read_landmark_file, source_grid
from rtmri.prepare.layouts import discover
from rtmri.prepare.pipeline import check_crop_everywhere
from rtmri.synth.layout import SpeakerFolder
from rtmri.video import read as video

PANEL = 384  # minimum displayed height of the frame, px
MEAN_FRAMES = 200  # at most this many frames make the mean image
REGION_COLOURS = {"pharyngeal": (80, 160, 255), "velar": (170, 90, 255), "palatal": (60, 220, 120),
                  "alveolar": (255, 150, 40), "lips": (255, 70, 160), "velopharyngeal": (0, 230, 230)}


def run_preview(src: Path, out_dir: Path, crop=None, size: int = IMAGE_SIZE, speaker_pattern: str | None = None,
                landmarks: Path | None = None) -> list[Path]:
    marks = read_landmark_file(landmarks)

    found = discover(src, speaker_pattern)
    by_speaker: dict[str, list] = {}
    for rec in found.recordings:
        if not rec.problem:
            by_speaker.setdefault(rec.speaker, []).append(rec)
    if crop is not None:
        check_crop_everywhere([recs[0] for recs in by_speaker.values()], crop)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, failures = [], []
    for speaker, recordings in sorted(by_speaker.items()):
        for rec in recordings:
            try:
                gray, info = mean_image(rec.video)
            except RtmriError as exc:
                failures.append(f"{rec.rel}: {exc}")
                continue
            rect = crop if crop is not None else rec.crop
            problem = video.check_crop(rect, info.width, info.height) if rect else None
            if problem:
                failures.append(f"{rec.rel}: {problem}")
                rect = None
            grid = source_grid(SpeakerFolder.of_video(rec.video).path, speaker, marks, str(landmarks))
            image = _compose(gray, rect or (0, 0, info.width, info.height), size, f"{speaker}  {rec.rel}  {info.width}x{info.height}"
                             f"  {info.fps or 0:.2f} fps  crop {','.join(map(str, rect)) if rect else 'full frame'}"
                             f"  grid {'yes' if grid is not None else 'none'}", Image, ImageDraw, grid)
            path = out_dir / f"preview_{speaker}.png"
            image.save(path)
            written.append(path)
            break
    if not written:
        raise PrepareError(f"{src}: no frame could be read for a preview: " + "; ".join(failures[:5]))
    return written


def mean_image(path: Path) -> tuple[np.ndarray, video.VideoInfo]:
    """uint8 mean of (at most MEAN_FRAMES evenly spaced) frames of the video: the still anatomy."""
    info = video.probe(path)
    every = max(1, (info.declared_frames or MEAN_FRAMES) // MEAN_FRAMES)
    total, count = None, 0
    for index, (_, gray) in enumerate(video.frames(path, info)):
        if index % every == 0:
            total = gray.astype(np.float64) if total is None else total + gray
            count += 1
    if total is None:
        raise video.VideoError(f"{path.name}: no frames")
    return np.round(total / count).astype(np.uint8), info


def draw_grid(draw, grid, scale: float, offset=(0.0, 0.0)) -> None:
    """Each gridline from its inner end over its measuring window, in its region's colour."""
    ends = grid.inner + grid.direction * grid.reach[:, None]
    for start, end, region in zip(grid.inner, ends, grid.regions):
        points = [tuple((p + 0.5) * scale + np.asarray(offset)) for p in (start, end)]
        draw.line(points, fill=REGION_COLOURS.get(region, (255, 255, 255)), width=1)


def _compose(gray: np.ndarray, rect, size: int, title: str, Image, ImageDraw, grid=None):
    height, width = gray.shape
    scale = max(1, int(np.ceil(PANEL / height)))
    left = Image.fromarray(gray).convert("RGB").resize((width * scale, height * scale), Image.Resampling.NEAREST)
    x, y, w, h = rect
    draw = ImageDraw.Draw(left)
    draw.rectangle([x * scale, y * scale, (x + w) * scale - 1, (y + h) * scale - 1], outline=(255, 40, 40), width=2)
    mid = int((y + h / 2) * scale)
    if grid is not None:
        draw_grid(draw, grid, scale)
    draw.line([x * scale, mid, (x + w) * scale - 1, mid], fill=(255, 220, 0), width=1)
    cropped = video.CropResize(tuple(rect), size)(gray)
    right = Image.fromarray(cropped).convert("RGB").resize((left.height, left.height), Image.Resampling.BICUBIC)
    rd = ImageDraw.Draw(right)
    rd.line([0, right.height // 2, right.width - 1, right.height // 2], fill=(255, 220, 0), width=1)
    rd.text((4, right.height // 2 + 4), "tongue region", fill=(255, 220, 0))
    if grid is not None and rect[2] == rect[3]:
        draw_grid(rd, grid.to_clip(rect, size), right.height / size)
    canvas = Image.new("RGB", (left.width + right.width + 8, left.height + 22), (0, 0, 0))
    canvas.paste(left, (0, 22))
    canvas.paste(right, (left.width + 8, 22))
    ImageDraw.Draw(canvas).text((4, 4), f"{title}  -> {size}x{size}", fill=(255, 255, 255))
    return canvas
