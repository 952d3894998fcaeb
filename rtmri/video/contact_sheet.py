"""``rtmri contact-sheet VIDEO``: a PNG grid of a video's frames, each labelled with its
frame number, time and (when the corpus meta json is found) the phone being spoken."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from rtmri import RtmriError
from rtmri.synth.layout import SpeakerFolder

DEFAULT_MAX_TILES = 64
DEFAULT_COLUMNS = 8
LABEL_HEIGHT = 14  # px below each tile
GAP = 2  # px between tiles
BACKGROUND = (24, 24, 24)
LABEL_COLOUR = (230, 230, 230)
PHONE_COLOUR = (255, 210, 60)
CROP_COLOUR = (80, 200, 255)
NO_PHONE = "-"


class ContactSheetError(RtmriError):
    """A video or meta file that cannot be read."""


@dataclass(frozen=True)
class Tile:
    frame: np.ndarray  # uint8 (H, W)
    label: str
    phone: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", type=Path, metavar="VIDEO", help="video file (e.g. OUT/spk01/video/utt0001.mp4)")
    parser.add_argument("-o", "--output", type=Path, help="PNG to write (default: <video name>_sheet.png here)")
    parser.add_argument("--meta", type=Path, help="meta json with phones (default: found beside the video or in ../meta/)")
    parser.add_argument("--columns", type=int, default=DEFAULT_COLUMNS, help=f"tiles per row (default {DEFAULT_COLUMNS})")
    parser.add_argument("--every", type=int, help="take every N-th frame (default: evenly spaced, at most --max-tiles)")
    parser.add_argument("--max-tiles", type=int, default=DEFAULT_MAX_TILES, help=f"at most this many tiles (default {DEFAULT_MAX_TILES})")
    parser.add_argument("--tile-size", type=int, help="tile width and height in px (default: the video's size)")
    parser.add_argument("--show-crop", action="store_true", help="outline the crop rectangle from the meta json")


def main(args: argparse.Namespace) -> int:
    for name in ("columns", "max_tiles", "every", "tile_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ContactSheetError(f"--{name.replace('_', '-')} must be at least 1, not {value}")
    frames, fps = read_gray_frames(args.video)
    meta_path = args.meta or find_meta(args.video)
    meta = read_meta(meta_path) if meta_path else None
    indices = pick_frames(len(frames), args.every, args.max_tiles)
    tiles = [make_tile(frames[k], k, fps, meta) for k in indices]
    crop = meta.get("crop") if (meta and args.show_crop) else None
    sheet = draw_sheet(tiles, args.columns, args.tile_size, crop)
    output = args.output or Path(f"{args.video.stem}_sheet.png")
    output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(output)
    source = f", phones from {meta_path}" if meta_path else ""
    print(f"wrote {output}: {len(tiles)} of {len(frames)} frames{source}")
    return 0


def read_gray_frames(path: Path) -> tuple[np.ndarray, float]:
    """uint8 (n, H, W) frames and the video's frame rate."""
    if not path.is_file():
        raise ContactSheetError(f"{path}: no such video file")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            frames = [frame.to_ndarray(format="gray") for frame in container.decode(stream)]
    except (av.FFmpegError, IndexError) as exc:
        raise ContactSheetError(f"{path}: cannot read video ({exc})") from exc
    if not frames or fps <= 0:
        raise ContactSheetError(f"{path}: no frames or no frame rate")
    return np.stack(frames), fps


def find_meta(video: Path) -> Path | None:
    """The corpus meta json of a video: beside it, or in the speaker's meta/ folder."""
    for candidate in (video.with_suffix(".json"), SpeakerFolder.of_video(video).meta(video.stem)):
        if candidate.is_file():
            return candidate
    return None


def read_meta(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        phones = meta.get("phones", [])
        if not all({"phone", "start", "end"} <= set(p) for p in phones):
            raise ValueError("phones need phone, start and end")
    except (OSError, ValueError, AttributeError) as exc:
        raise ContactSheetError(f"{path}: not a usable meta json ({exc})") from exc
    return meta


def pick_frames(n_frames: int, every: int | None, max_tiles: int) -> list[int]:
    step = every or max(1, math.ceil(n_frames / max_tiles))
    return list(range(0, n_frames, step))[:max_tiles]


def phone_at(meta: dict | None, time: float) -> str:
    for phone in (meta or {}).get("phones", []):
        if phone["start"] <= time < phone["end"]:
            return phone["phone"]
    return NO_PHONE


def make_tile(frame: np.ndarray, index: int, fps: float, meta: dict | None) -> Tile:
    time = index / fps
    return Tile(frame, f"{index} {time:.2f}s", phone_at(meta, time) if meta else "")


def draw_sheet(tiles: list[Tile], columns: int, tile_size: int | None, crop: list[int] | None):
    height, width = tiles[0].frame.shape
    size = (tile_size, tile_size) if tile_size else (width, height)
    columns = min(columns, len(tiles))
    rows = math.ceil(len(tiles) / columns)
    cell_w, cell_h = size[0] + GAP, size[1] + LABEL_HEIGHT + GAP
    sheet = Image.new("RGB", (columns * cell_w + GAP, rows * cell_h + GAP), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for n, tile in enumerate(tiles):
        x, y = GAP + (n % columns) * cell_w, GAP + (n // columns) * cell_h
        image = Image.fromarray(tile.frame).convert("RGB").resize(size, Image.BILINEAR)
        if crop:
            _outline_crop(ImageDraw.Draw(image), crop, size[0] / width, size[1] / height)
        sheet.paste(image, (x, y))
        draw.text((x + 2, y + size[1] + 1), tile.label, fill=LABEL_COLOUR, font=font)
        if tile.phone:
            colour = LABEL_COLOUR if tile.phone == NO_PHONE else PHONE_COLOUR
            draw.text((x + size[0] - 8 * len(tile.phone) - 2, y + size[1] + 1), tile.phone, fill=colour, font=font)
    return sheet


def _outline_crop(draw, crop: list[int], sx: float, sy: float) -> None:
    x, y, w, h = crop
    draw.rectangle([x * sx, y * sy, (x + w) * sx - 1, (y + h) * sy - 1], outline=CROP_COLOUR)
    draw.line([x * sx, (y + h / 2) * sy, (x + w) * sx - 1, (y + h / 2) * sy], fill=CROP_COLOUR)
