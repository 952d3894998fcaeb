"""The `rtmri prepare` run: recordings -> clips -> splits -> header, file lists, report.

Resuming: when a recording's clips are all written, a marker
``OUT/state/<speaker>/<recording>.json`` is written atomically, holding the recording's
result and a fingerprint of its source files (size, mtime) and of the options that shape
its clips (size, crop, clip length, interpolation, trim). A later run into the same OUT
reuses every recording whose marker matches and redoes the others (their old clips are
removed first). Splits, file lists, header and report are always rebuilt from all results,
so they do not depend on which run prepared which recording. Skipped recordings are
tried again on every run.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import re
import shutil
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rtmri import RtmriError
from rtmri.alignment import FPS, SAMPLES_PER_FRAME
from rtmri.audio import SAMPLE_RATE, AudioTooLongError, audio_duration, load_audio
from rtmri.clips import ALL_SPLITS, CLIPS_DIR, IMAGE_SIZE, IMAGE_SIZES, clip_folder, is_complete, write_clip, write_header
from rtmri.files import atomic_write
from rtmri.prepare import PrepareError, RecordingError
from rtmri.prepare import clipping, report, splits
from rtmri.prepare import articulation as articulatory
from rtmri.video import read as video
from rtmri.prepare.layouts import Recording, discover, safe_name
from rtmri.video.frame_rate import INTERPOLATIONS, FrameRateConverter

PIPELINE_VERSION = 2  # bump when the clips written for a recording change
MAX_MISMATCH_S = 0.5
STATE_DIR = "state"


@dataclass
class Options:
    src: Path
    out: Path
    size: int = IMAGE_SIZE
    crop: tuple[int, int, int, int] | None = None
    clip_seconds: float = 5.0
    fractions: tuple[float, float, float] = splits.DEFAULT_FRACTIONS
    seed: int = 0
    heldout: tuple[str, ...] = ()
    speaker_pattern: str | None = None
    trim: bool = False
    strict: bool = False
    workers: int = 2
    interpolation: str = "linear"
    progress: bool = True
    landmarks: Path | None = None  # grid landmarks per speaker (real recordings)

    def __post_init__(self) -> None:
        self.src, self.out = Path(self.src), Path(self.out)

    def validate(self) -> None:
        if self.size not in IMAGE_SIZES:
            raise PrepareError(f"--size {self.size}: choose one of {', '.join(map(str, IMAGE_SIZES))}")
        if not (math.isfinite(self.clip_seconds) and self.clip_seconds >= clipping.MIN_CLIP_SECONDS):
            raise PrepareError(f"--clip-seconds {self.clip_seconds}: must be at least {clipping.MIN_CLIP_SECONDS:g}")
        if self.workers < 1:
            raise PrepareError(f"--workers {self.workers}: must be at least 1")
        if self.interpolation not in INTERPOLATIONS:
            raise PrepareError(f"--interpolation {self.interpolation!r}: choose one of {', '.join(INTERPOLATIONS)}")
        if self.crop is not None and (len(self.crop) != 4 or self.crop[2] <= 0 or self.crop[3] <= 0 or min(self.crop) < 0):
            raise PrepareError(f"--crop {self.crop}: expected x,y,w,h with x, y >= 0 and w, h > 0")
        try:
            self.src.resolve().relative_to(self.out.resolve())
            inside = True
        except ValueError:
            inside = False
        if inside:
            raise PrepareError(f"the output folder {self.out} contains the source {self.src}; choose another output folder")


# ---------------------------------------------------------------- one recording


def effective_crop(rec: Recording, opts: Options) -> tuple[tuple[int, int, int, int] | None, str]:
    if opts.crop is not None:
        return tuple(opts.crop), "--crop"
    if rec.crop is not None:
        return tuple(rec.crop), "metadata"
    return None, "full frame"


def fingerprint(rec: Recording, opts: Options) -> dict:
    files = []
    for path in rec.sources:
        try:
            st = path.stat()
            files.append([path.resolve().as_posix(), st.st_size, st.st_mtime_ns])
        except OSError:
            files.append([path.as_posix(), None, None])
    crop, _ = effective_crop(rec, opts)
    return {
        "version": PIPELINE_VERSION,
        "files": files,
        "size": opts.size,
        "crop": list(crop) if crop else None,
        "clip_seconds": opts.clip_seconds,
        "interpolation": opts.interpolation,
        "trim": opts.trim,
        "speaker": rec.speaker,
        "condition": rec.condition,
    }


def state_path(out: Path, rec: Recording) -> Path:
    return out / STATE_DIR / rec.speaker / f"{rec.name}.json"


def _base_result(rec: Recording) -> dict:
    return {
        "recording": rec.rel,
        "speaker": rec.speaker,
        "name": rec.name,
        "condition": rec.condition,
        "status": "skipped",
        "reason": None,
        "warnings": [],
        "clips": [],
        "seconds": 0.0,
    }


def skipped(rec: Recording, reason: str) -> dict:
    result = _base_result(rec)
    result["reason"] = reason
    return result


def process_recording(rec: Recording, opts: Options) -> dict:
    """Prepare one recording; never raises for a problem of the recording (the result
    says "skipped" and why)."""
    started = time.perf_counter()
    result = _base_result(rec)
    marker = state_path(opts.out, rec)
    try:
        marker.unlink(missing_ok=True)
        _remove_clips(opts.out, rec)
        if rec.problem:
            raise RecordingError(rec.problem)
        _prepare(rec, opts, result)
        result["status"] = "prepared"
    except RtmriError as exc:
        _remove_clips(opts.out, rec)
        result.update(status="skipped", reason=str(exc), clips=[], seconds=0.0)
    except Exception as exc:  # a decoder or file system surprise must not end the run
        _remove_clips(opts.out, rec)
        result.update(status="skipped", reason=f"unexpected {type(exc).__name__}: {exc}", clips=[], seconds=0.0)
        result["traceback"] = traceback.format_exc(limit=8)
    result["elapsed_s"] = round(time.perf_counter() - started, 3)
    if result["status"] == "prepared":
        atomic_write(marker, json.dumps({"fingerprint": fingerprint(rec, opts), "result": result}, indent=1))
    return result


def _clip_folder_pattern(rec: Recording) -> re.Pattern:
    return re.compile(re.escape(rec.name) + r"_c\d+")


def _remove_clips(out: Path, rec: Recording) -> None:
    folder = out / CLIPS_DIR / rec.speaker
    if not folder.is_dir():
        return
    pattern = _clip_folder_pattern(rec)
    for entry in folder.iterdir():
        if entry.is_dir() and pattern.fullmatch(entry.name):
            shutil.rmtree(entry, ignore_errors=True)


def _header_lengths_check(rec: Recording, info: video.VideoInfo) -> float | None:
    """Refuse an obvious length mismatch from the headers, before decoding anything (a 1 h
    WAV beside a 2 s video would otherwise be read whole first). Returns the most audio worth
    reading, in seconds: None when the video's header does not give its length."""
    if info.duration_s is None:
        return None
    slack = MAX_MISMATCH_S + 2.0 / (info.fps or FPS)
    audio_s = audio_duration(rec.audio or rec.video)
    if audio_s and abs(audio_s - info.duration_s) > slack:  # an empty file: load_audio says so
        raise RecordingError(
            f"audio ({audio_s:.3f} s) and video ({info.duration_s:.3f} s by its header) lengths differ by "
            f"{abs(audio_s - info.duration_s):.3f} s, more than {MAX_MISMATCH_S} s"
        )
    return info.duration_s + slack + max(0.0, -info.audio_offset_s)


def _load_recording_audio(rec: Recording, info: video.VideoInfo, max_seconds: float | None = None) -> np.ndarray:
    try:
        return _read_recording_audio(rec, info, max_seconds)
    except AudioTooLongError as exc:
        raise RecordingError(f"{exc}, the video {info.duration_s:.3f} s by its header (the lengths may differ by "
                             f"{MAX_MISMATCH_S} s)") from exc


def _read_recording_audio(rec: Recording, info: video.VideoInfo, max_seconds: float | None) -> np.ndarray:
    if rec.audio is not None:
        return load_audio(rec.audio, SAMPLE_RATE, max_seconds)
    if not info.has_audio:
        raise RecordingError(
            f"{rec.video.name}: no audio: no {rec.video.stem}.wav or .flac beside it or in the "
            "layout's audio folder, and no audio stream inside the video"
        )
    wav = load_audio(rec.video, SAMPLE_RATE, max_seconds)
    shift = int(round(info.audio_offset_s * SAMPLE_RATE))
    if shift > 0:  # audio starts after the first frame
        wav = np.concatenate((np.zeros(shift, np.float32), wav))
    elif shift < 0:
        wav = wav[-shift:]
    return wav


def _prepare(rec: Recording, opts: Options, result: dict) -> None:
    crop, crop_source = effective_crop(rec, opts)
    info = video.probe(rec.video)
    if crop is not None:
        problem = video.check_crop(crop, info.width, info.height)
        if problem:
            raise RecordingError(f"{rec.video.name}: {problem} (crop from {crop_source})")
    result["crop"] = list(crop) if crop else [0, 0, info.width, info.height]
    result["crop_source"] = crop_source
    wav = _load_recording_audio(rec, info, _header_lengths_check(rec, info))
    audio_s = len(wav) / SAMPLE_RATE
    n_audio_frames = len(wav) // SAMPLES_PER_FRAME

    stats = video.DecodeStats()
    transform = video.CropResize(crop, opts.size)
    converted = _to_25fps(rec.video, info, transform, n_audio_frames, opts.interpolation, stats)
    repeat = _repeat_frames(rec, info, transform, n_audio_frames, opts, result)
    video_s = stats.duration
    source_fps = stats.fps or info.fps
    geometry = articulatory.clip_geometry(rec.video, result["crop"], opts.size, source_fps, n_audio_frames, opts.interpolation,
                                          result["warnings"])
    pixel_mm = articulatory.clip_pixel_mm(rec.video, opts.landmarks, rec.speaker, result["crop"], opts.size)
    result["video"] = {
        "width": info.width, "height": info.height, "codec": info.codec,
        "fps": round(source_fps, 4) if source_fps else None,
        "frames": stats.decoded, "seconds": round(video_s, 4),
    }
    result["audio_s"] = round(audio_s, 4)

    difference = audio_s - video_s
    if abs(difference) > MAX_MISMATCH_S:
        raise RecordingError(
            f"audio ({audio_s:.3f} s) and video ({video_s:.3f} s) lengths differ by "
            f"{abs(difference):.3f} s, more than {MAX_MISMATCH_S} s"
        )
    one_frame = stats.period or 1.0 / FPS
    n_frames = n_audio_frames
    if abs(difference) > one_frame + 1e-6:
        longer = "audio" if difference > 0 else "video"
        if opts.trim:
            n_frames = min(n_audio_frames, int(math.floor(video_s * FPS + 1e-6)))
            action = f"both trimmed to the shorter ({n_frames / FPS:.2f} s)"
        elif difference > 0:
            action = "audio kept whole, the last video frame held at the end (use --trim to cut instead)"
        else:
            action = "the video's extra end dropped"
        result["warnings"].append(
            f"audio {audio_s:.3f} s, video {video_s:.3f} s: {longer} longer by {abs(difference):.3f} s "
            f"({abs(difference) / one_frame:.1f} source frames); {action}"
        )
    if rec.meta_fps and source_fps and abs(source_fps / rec.meta_fps - 1.0) > 0.01:
        result["warnings"].append(f"video runs at {source_fps:.3f} fps, its metadata says {rec.meta_fps:g} fps (timestamps used)")
    if stats.dropped_timestamps:
        result["warnings"].append(f"{stats.dropped_timestamps} frames with a non-increasing timestamp dropped")
    if n_frames < clipping.MIN_CLIP_SECONDS * FPS:
        raise RecordingError(f"too short: {n_frames / FPS:.2f} s usable, a clip needs at least {clipping.MIN_CLIP_SECONDS:g} s")

    frames = converted[:n_frames]
    if repeat is not None:
        repeat = repeat[:n_frames]
    wav = wav[: n_frames * SAMPLES_PER_FRAME]
    if rec.phones is not None:
        silent, result["pauses_from"] = clipping.silent_from_phones(rec.phones, n_frames), "phones"
    else:
        silent, result["pauses_from"] = clipping.silent_from_audio(wav, n_frames), "audio"
    plan = clipping.plan_clips(n_frames, int(round(opts.clip_seconds * FPS)), clipping.pause_centres(silent))
    result["n_frames"] = n_frames

    width = max(2, len(str(len(plan))))
    for index, (start, end) in enumerate(plan, 1):
        clip_id = f"{rec.speaker}/{rec.name}_c{index:0{width}d}"
        start_s, end_s = start / FPS, end / FPS
        info_json = {
            "speaker": rec.speaker,
            "recording": rec.rel,
            "condition": rec.condition,
            "start_s": round(start_s, 6),
            "n_frames": end - start,
            "fps": FPS,
            "duration_s": round((end - start) / FPS, 6),
            "source_fps": round(source_fps, 4) if source_fps else None,
            "crop": result["crop"],
            "image_size": opts.size,
            "interpolation": opts.interpolation,
        }
        phones = clipping.phones_for_clip(rec.phones, start_s, end_s)
        if phones is not None:
            info_json["phones"] = phones
        if pixel_mm:
            info_json["pixel_mm"] = pixel_mm
        folder = clip_folder(opts.out, clip_id)
        write_clip(folder, frames[start:end], wav[start * SAMPLES_PER_FRAME : end * SAMPLES_PER_FRAME], info_json,
                   None if repeat is None else repeat[start:end])
        if geometry is not None:
            articulatory.write_clip_geometry(folder, geometry, start, end)
        result["clips"].append({"id": clip_id, "speaker": rec.speaker, "condition": rec.condition, "n_frames": end - start, "start_s": round(start_s, 6)})
    result["seconds"] = round(n_frames / FPS, 4)


def _to_25fps(path: Path, info, transform, n_frames: int, interpolation: str, stats=None) -> np.ndarray:
    """Decode, crop, resize and convert to 25 fps in one pass; only the output is kept."""
    converter = FrameRateConverter(n_frames, interpolation, source_fps=info.fps)
    for t, gray in video.frames(path, info, stats):
        converter.push(t, transform(gray))
    return converter.finish()


def _repeat_frames(rec: Recording, info, transform, n_frames: int, opts: Options, result: dict) -> np.ndarray | None:
    """The second acquisition converted exactly like the first, or None (with a warning when
    it exists but cannot be used: the clips are still prepared, without a noise ceiling)."""
    if rec.repeat is None:
        return None
    try:
        repeat_info = video.probe(rec.repeat)
        if (repeat_info.width, repeat_info.height) != (info.width, info.height):
            raise video.VideoError(f"{rec.repeat.name}: {repeat_info.width}x{repeat_info.height}, the recording is {info.width}x{info.height}")
        return _to_25fps(rec.repeat, repeat_info, transform, n_frames, opts.interpolation)
    except RtmriError as exc:
        result["warnings"].append(f"repeat acquisition not used: {exc}")
        return None


# ---------------------------------------------------------------- the run


def _reusable(rec: Recording, opts: Options) -> dict | None:
    path = state_path(opts.out, rec)
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if state.get("fingerprint") != json.loads(json.dumps(fingerprint(rec, opts))):
        return None
    result = state.get("result") or {}
    for clip in result.get("clips", []):
        if not is_complete(clip_folder(opts.out, clip["id"])):
            return None
    return {**result, "status": "reused"}


def check_crop_everywhere(recordings: list[Recording], crop) -> None:
    """--crop must fit every recording's frame: refused before any work, naming the size."""
    sizes: dict[tuple[int, int], list[str]] = {}
    for rec in recordings:
        if rec.problem:
            continue
        try:
            info = video.probe(rec.video)
        except RtmriError:
            continue  # unreadable: skipped later, with its own reason
        sizes.setdefault((info.width, info.height), []).append(rec.rel)
    bad = [(size, recs) for size, recs in sizes.items() if video.check_crop(crop, *size)]
    if bad:
        (w, h), recs = bad[0]
        others = sum(len(r) for _, r in bad) - 1
        more = f" (and {others} other recording{'s' if others != 1 else ''})" if others else ""
        all_sizes = ", ".join(f"{a}x{b}" for a, b in sorted(sizes))
        raise PrepareError(f"--crop: {video.check_crop(crop, w, h)} of {recs[0]}{more}; frame sizes in SRC: {all_sizes}")


def _progress(total: int, enabled: bool):
    return tqdm(total=total, desc="prepare", unit="rec", disable=not enabled or total == 0, dynamic_ncols=True)


def _run_pending(pending: list[Recording], opts: Options, on_result) -> None:
    if not pending:
        return
    bar = _progress(len(pending), opts.progress)
    try:
        if opts.workers <= 1 or len(pending) == 1:
            for rec in pending:
                on_result(rec, process_recording(rec, opts))
                bar.update(1)
            return

        # spawn: the workers start clean (no inherited decoder or progress-bar threads)
        pool = ProcessPoolExecutor(max_workers=min(opts.workers, len(pending)), mp_context=multiprocessing.get_context("spawn"))
        try:
            futures = {pool.submit(process_recording, rec, opts): rec for rec in pending}
            for future in as_completed(futures):
                rec = futures[future]
                try:
                    result = future.result()
                except Exception as exc:  # the worker process died (e.g. out of memory)
                    result = skipped(rec, f"worker process failed ({type(exc).__name__}: {exc})")
                on_result(rec, result)
                bar.update(1)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    finally:
        bar.close()


def run(opts: Options) -> dict:
    """Prepare the dataset; returns the manifest. Raises PrepareError for a bad option or
    crop, an unknown layout, nothing usable, or (with strict) the first skipped recording."""
    started = time.perf_counter()
    opts.validate()
    articulatory.read_landmark_file(opts.landmarks)  # a bad landmark file stops the run before any work
    found = discover(opts.src, opts.speaker_pattern)
    speakers = found.speakers
    requested = [safe_name(s) for s in opts.heldout]
    unknown = sorted(set(requested) - set(speakers))
    if unknown:
        raise PrepareError(f"--heldout: no speaker {', '.join(unknown)} in {opts.src}; speakers are {', '.join(speakers)}")
    heldout = sorted((set(found.heldout) & set(speakers)) | set(requested))
    if opts.crop is not None:
        check_crop_everywhere(found.recordings, opts.crop)

    opts.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    pending: list[Recording] = []
    for rec in found.recordings:
        if rec.problem:
            results[rec.key] = skipped(rec, rec.problem)
            if opts.strict:
                raise PrepareError(f"{rec.rel}: {rec.problem} (stopped by --strict)")
            continue
        reused = _reusable(rec, opts)
        if reused is not None:
            results[rec.key] = reused
        else:
            pending.append(rec)

    def on_result(rec: Recording, result: dict) -> None:
        results[rec.key] = result
        if opts.strict and result["status"] == "skipped":
            raise PrepareError(f"{rec.rel}: {result['reason']} (stopped by --strict)")

    _run_pending(pending, opts, on_result)

    ordered = [results[rec.key] for rec in found.recordings]
    clips = [clip for r in ordered if r["status"] != "skipped" for clip in r["clips"]]
    assigned = splits.assign(clips, set(heldout), opts.fractions, opts.seed)
    manifest = report.build_manifest(
        opts=_options_for_manifest(opts), layout=found.layout, speakers=speakers, heldout=heldout,
        results=ordered, assigned=assigned, elapsed_s=time.perf_counter() - started,
    )
    report.write(opts.out, manifest)
    if not clips:
        raise PrepareError(
            f"nothing usable in {opts.src}: all {len(ordered)} recordings were skipped; "
            f"the reasons are in {opts.out / report.REPORT_FILE}"
        )
    splits.write_filelists(opts.out, assigned)
    grids = articulatory.write_speaker_grids(opts.out, found.recordings, ordered, opts.landmarks, opts.size)
    header = {**_header(opts, found, speakers, heldout, ordered, assigned, manifest), **grids}
    write_header(opts.out, header)
    states = articulatory.write_clip_states(opts.out, [clip["id"] for clip in clips], opts.progress) if grids else {}
    write_header(opts.out, {**header, **states})
    if grids:  # the image measure against the synthesizer's geometry, the velopharyngeal lines apart
        report.write_geometry_check(opts.out, opts.progress)
    return manifest


def _options_for_manifest(opts: Options) -> dict:
    data = asdict(opts)
    data["src"], data["out"] = str(opts.src), str(opts.out)
    data["src_resolved"] = str(Path(opts.src).resolve())  # for readers in another folder
    data["crop"] = list(opts.crop) if opts.crop else None
    data["fractions"] = list(opts.fractions)
    data["heldout"] = list(opts.heldout)
    data["landmarks"] = str(opts.landmarks) if opts.landmarks else None
    return data


def _header(opts, found, speakers, heldout, results, assigned, manifest) -> dict:
    crops: dict[str, list] = {}
    sources = set()
    for r in results:
        if r["status"] != "skipped":
            crops.setdefault(r["speaker"], [])
            if r.get("crop") not in crops[r["speaker"]]:
                crops[r["speaker"]].append(r.get("crop"))
            sources.add(r.get("crop_source"))
    return {
        "image_size": opts.size,
        "channels": 1,
        "crop": {
            "source": sorted(s for s in sources if s),
            "rect": list(opts.crop) if opts.crop else None,
            "per_speaker": {s: (c[0] if len(c) == 1 else c) for s, c in crops.items()},
            "note": "x, y, w, h in source pixels; the lower half of the crop is the tongue region",
        },
        "frame_rate_conversion": f"{opts.interpolation} by timestamp",
        "clip_seconds": opts.clip_seconds,
        "seed": opts.seed,
        "split_fractions": dict(zip(("train", "val", "test"), opts.fractions)),
        "heldout_speakers": heldout,
        "speakers": speakers,
        "source": {"path": str(opts.src.resolve()), "layout": found.layout},
        "splits": {name: len(assigned[name]) for name in ALL_SPLITS},
        "hours": {name: manifest["splits"][name]["hours"] for name in ALL_SPLITS},
        "trim": opts.trim,
        "prepared_by": f"rtmri prepare (pipeline version {PIPELINE_VERSION})",
    }
