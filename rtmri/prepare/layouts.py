"""Finding the recordings in a source folder.

Layouts recognised without configuration (tried in this order):

- ``rtmri synth`` corpus (read through ``rtmri.synth.layout``): per speaker its videos,
  audio, meta (crop, condition, phones) and repeat acquisitions (the same articulation
  acquired again: the noise ceiling); its speaker.json holds the speaker's crop when an
  utterance has no meta. Held-out speakers are listed in the corpus manifest under
  "heldout_speakers".
- USC 75-speaker database: ``subNNN/2drt/video/*.mp4`` with ``subNNN/2drt/audio/*.wav``.
- USC-TIMIT: ``<speaker>/avi/*.avi`` with ``<speaker>/wav/*.wav``.
- either of the last two with SRC being one speaker's folder (``SRC/2drt/video``,
  ``SRC/avi``): the speaker is the folder's name.

With ``--speaker-pattern REGEX`` any folder works: every video file under SRC is a
recording and its speaker is what the pattern finds in its path relative to SRC (the
group named ``speaker``, else the first group, else the whole match).

A recording's audio is a file of the same stem (wav or flac; ``X_video`` pairs with
``X_audio`` as well) in the layout's audio folder or next to the video, else the audio
stream inside the video file.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from rtmri.prepare import PrepareError
from rtmri.synth.layout import CORPUS_FILE, CorpusFileError, SpeakerFolder, is_corpus, read_manifest

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mov", ".mkv", ".m4v")
AUDIO_EXTENSIONS = (".wav", ".flac")

LAYOUT_NAMES = {
    "synth": "rtmri synth corpus",
    "usc75": "USC 75-speaker database (subNNN/2drt/video, subNNN/2drt/audio)",
    "usctimit": "USC-TIMIT (<speaker>/avi, <speaker>/wav)",
    "pattern": "folder with --speaker-pattern",
}

_UNSAFE = re.compile(r"[^\w.-]+")  # \w: letters and digits of every script, and "_"
MAX_NAME_BYTES = 120  # UTF-8; a clip folder "<name>_cNN" and its temporaries stay inside the 255-byte limit
HASH_DIGITS = 8


@dataclass
class Recording:
    speaker: str
    name: str  # unique within the speaker; clip ids are "<speaker>/<name>_cNN"
    video: Path
    audio: Path | None  # None: the audio stream of the video file
    rel: str  # the video's path relative to SRC, POSIX style
    condition: str | None = None
    crop: tuple[int, int, int, int] | None = None  # from the corpus metadata
    phones: list[dict] | None = None  # [{"phone", "start", "end"}], seconds
    meta_fps: float | None = None
    sources: tuple[Path, ...] = ()  # every file the result depends on (for resuming)
    repeat: Path | None = None  # a second acquisition of the same articulation (synthetic corpora)
    problem: str | None = None  # known unusable at discovery: skipped with this reason

    @property
    def key(self) -> str:
        return f"{self.speaker}/{self.name}"


@dataclass
class Discovery:
    layout: str
    root: Path
    recordings: list[Recording]
    heldout: list[str] = field(default_factory=list)  # named by the corpus itself

    @property
    def speakers(self) -> list[str]:
        return sorted({r.speaker for r in self.recordings})


def safe_name(text: str) -> str:
    """A name usable as a folder and in a file list line: letters and digits of any script,
    ".", "-" and "_", in Unicode NFC (so a name reads the same from every file system; macOS
    may hand out NFD). Runs of anything else become "_"; an over-long name is cut and given
    a hash of the whole."""
    cleaned = _UNSAFE.sub("_", unicodedata.normalize("NFC", text)).strip("._") or "unnamed"
    if len(cleaned.encode()) <= MAX_NAME_BYTES:
        return cleaned
    cut = cleaned.encode()[: MAX_NAME_BYTES - HASH_DIGITS - 1].decode(errors="ignore")
    return f"{cut}-{short_hash(text)}"


def short_hash(text: str) -> str:
    """A few hex digits that stay the same for the same text on every run and machine."""
    return hashlib.sha256(unicodedata.normalize("NFC", text).encode()).hexdigest()[:HASH_DIGITS]


def discover(src: str | Path, speaker_pattern: str | None = None) -> Discovery:
    root = Path(src)
    if not root.is_dir():
        raise PrepareError(f"{root}: no such folder")
    if speaker_pattern:
        found = _pattern_layout(root, speaker_pattern)
    elif is_corpus(root):
        found = _synth_layout(root)
    elif (root / "2drt" / "video").is_dir():
        found = Discovery("usc75", root, _paired(root.name, root, root / "2drt" / "video", root / "2drt" / "audio"))
    elif any(p.is_dir() for p in root.glob("*/2drt/video")):
        found = Discovery("usc75", root, [
            rec for d in sorted(root.glob("*/2drt/video")) if d.is_dir()
            for rec in _paired(d.parent.parent.name, root, d, d.parent / "audio")
        ])
    elif (root / "avi").is_dir():
        found = Discovery("usctimit", root, _paired(root.name, root, root / "avi", root / "wav"))
    elif any(p.is_dir() for p in root.glob("*/avi")):
        found = Discovery("usctimit", root, [
            rec for d in sorted(root.glob("*/avi")) if d.is_dir() for rec in _paired(d.parent.name, root, d, d.parent / "wav")
        ])
    else:
        raise PrepareError(
            f"{root}: layout not recognised; expected the corpus of `rtmri synth` ({CORPUS_FILE}), "
            "USC-TIMIT (<speaker>/avi/*.avi with <speaker>/wav/*.wav), the USC 75-speaker database "
            "(subNNN/2drt/video/*.mp4 with subNNN/2drt/audio/*.wav), or any folder of videos with "
            "--speaker-pattern REGEX (e.g. '^(sub\\d+)_' or '(?P<speaker>[^/]+)/')"
        )
    if not found.recordings:
        raise PrepareError(f"{root}: no video files ({', '.join(VIDEO_EXTENSIONS)}) found in the {LAYOUT_NAMES[found.layout]} layout")
    _make_names_unique(found.recordings)
    found.recordings.sort(key=lambda r: (r.speaker, r.rel))
    return found


def _videos_in(folder: Path, recursive: bool = False) -> list[Path]:
    if not folder.is_dir():
        return []
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in candidates if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS and not p.name.startswith("."))


def find_audio(video: Path, folders: list[Path]) -> Path | None:
    """A wav/flac of the video's stem (or X_audio for X_video) in one of folders."""
    stems = [video.stem]
    if video.stem.endswith("_video"):
        stems.append(video.stem[: -len("_video")] + "_audio")
    for folder in folders:
        for stem in stems:
            for ext in AUDIO_EXTENSIONS + tuple(e.upper() for e in AUDIO_EXTENSIONS):
                candidate = folder / f"{stem}{ext}"
                if candidate.is_file():
                    return candidate
    return None


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _paired(speaker: str, root: Path, video_dir: Path, audio_dir: Path) -> list[Recording]:
    recordings = []
    for video in _videos_in(video_dir):
        audio = find_audio(video, [audio_dir, video.parent])
        recordings.append(Recording(
            speaker=safe_name(speaker), name=safe_name(video.stem), video=video, audio=audio,
            rel=_relative(video, root), sources=tuple(p for p in (video, audio) if p),
        ))
    return recordings


def _pattern_layout(root: Path, pattern: str) -> Discovery:
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise PrepareError(f"--speaker-pattern {pattern!r} is not a valid regular expression ({exc})") from exc
    recordings = []
    for video in _videos_in(root, recursive=True):
        rel = _relative(video, root)
        match = regex.search(rel)
        speaker = None
        if match:
            if "speaker" in regex.groupindex:
                speaker = match.group("speaker")
            elif regex.groups:
                speaker = match.group(1)
            else:
                speaker = match.group(0)
        audio = find_audio(video, [video.parent])
        rec = Recording(
            speaker=safe_name(speaker) if speaker else "unmatched", name=safe_name(video.stem), video=video,
            audio=audio, rel=rel, sources=tuple(p for p in (video, audio) if p),
        )
        if not speaker:
            rec.problem = f"its path does not match --speaker-pattern {pattern!r}, so it has no speaker"
        recordings.append(rec)
    return Discovery("pattern", root, recordings)


def _speaker_ids(entries) -> list[str]:
    ids = []
    for entry in entries or []:
        if isinstance(entry, str):
            ids.append(entry)
        elif isinstance(entry, dict):
            for key in ("id", "speaker", "name"):
                if isinstance(entry.get(key), str):
                    ids.append(entry[key])
                    break
    return ids


def _read(read, *args) -> tuple[dict | None, str | None]:
    """What a corpus reader gives, and None for a missing file, or None and why it cannot be read."""
    try:
        return read(*args), None
    except FileNotFoundError:
        return None, None
    except CorpusFileError as exc:
        return None, str(exc)


def parse_crop(value, where: str) -> tuple[int, int, int, int]:
    """[x, y, w, h] from metadata -> a tuple of 4 ints, w and h positive."""
    try:
        x, y, w, h = (int(round(float(v))) for v in value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: crop {value!r} is not [x, y, w, h]") from exc
    if w <= 0 or h <= 0:
        raise ValueError(f"{where}: crop {value!r} has no area")
    return x, y, w, h


def _synth_layout(root: Path) -> Discovery:
    corpus = read_manifest(root)
    listed = _speaker_ids(corpus.get("speakers"))
    heldout = _speaker_ids(corpus.get("heldout_speakers"))
    on_disk = sorted(p.name for p in root.iterdir() if p.is_dir() and SpeakerFolder(p).video_dir.is_dir())
    # the corpus's own list (held-out speakers included, listed there or not), else the folders
    speakers = list(dict.fromkeys(listed + heldout)) if listed else on_disk
    recordings: list[Recording] = []
    for speaker in speakers:
        folder = SpeakerFolder.of(root, speaker)
        speaker_info, speaker_problem = _read(folder.read_speaker)
        speaker_crop = None
        if speaker_info and speaker_info.get("crop") is not None:
            try:
                speaker_crop = parse_crop(speaker_info["crop"], _relative(folder.speaker_file, root))
            except ValueError as exc:
                speaker_problem = str(exc)
        videos = _videos_in(folder.video_dir)
        if not videos:
            # A listed speaker without recordings is reported, not silently dropped.
            recordings.append(Recording(
                speaker=safe_name(speaker), name="(none)", video=folder.video_dir, audio=None,
                rel=_relative(folder.video_dir, root), problem=f"speaker {speaker}: no videos in {_relative(folder.video_dir, root)}",
            ))
            continue
        for video in videos:
            meta_path = folder.meta(video.stem)
            meta, problem = _read(folder.read_meta, video.stem)
            problem = problem or speaker_problem
            meta = meta or {}
            where = _relative(meta_path, folder.path)
            crop = speaker_crop
            if meta.get("crop") is not None:
                try:
                    crop = parse_crop(meta["crop"], where)
                except ValueError as exc:
                    problem = problem or str(exc)
            phones = meta.get("phones")
            if phones is not None and not _valid_phones(phones):
                problem = problem or f"{where}: phones are not a list of {{phone, start, end}}"
                phones = None
            fps = meta.get("fps", (speaker_info or {}).get("fps"))
            audio = find_audio(video, [folder.audio_dir, video.parent])
            repeat = folder.repeat_dir / video.name
            repeat = repeat if repeat.is_file() else None
            recordings.append(Recording(
                speaker=safe_name(speaker), name=safe_name(video.stem), video=video, audio=audio,
                rel=_relative(video, root), condition=meta.get("condition"), crop=crop, phones=phones,
                meta_fps=float(fps) if isinstance(fps, (int, float)) else None,
                sources=tuple(p for p in (video, audio, meta_path, folder.speaker_file, repeat) if p and p.is_file()),
                problem=problem, repeat=repeat,
            ))
    return Discovery("synth", root, recordings, heldout=[safe_name(s) for s in heldout])


def _valid_phones(phones) -> bool:
    if not isinstance(phones, list):
        return False
    for p in phones:
        if not isinstance(p, dict) or not isinstance(p.get("start"), (int, float)) or not isinstance(p.get("end"), (int, float)):
            return False
    return True


def _make_names_unique(recordings: list[Recording]) -> None:
    """Recordings whose keys collide (compared without case, as on case-insensitive file
    systems) are named by their relative path instead: two videos of one speaker with the
    same stem (possible with --speaker-pattern over sub-folders). Those still colliding (names
    that differ only in characters safe_name replaces) get a hash of their relative path."""
    renames = (lambda rec: safe_name(rec.rel.rsplit(".", 1)[0].replace("/", "__")),
               lambda rec: f"{safe_name(rec.video.stem)}-{short_hash(rec.rel)}")
    for rename in renames:
        for group in _colliding(recordings):
            for rec in group:
                rec.name = rename(rec)
    for group in _colliding(recordings):  # two relative paths with one hash: not seen in practice
        raise PrepareError(f"recordings {', '.join(r.rel for r in group)} cannot be given distinct clip ids")


def _colliding(recordings: list[Recording]) -> list[list[Recording]]:
    groups: dict[str, list[Recording]] = {}
    for rec in recordings:
        groups.setdefault(rec.key.casefold(), []).append(rec)
    return [group for group in groups.values() if len(group) > 1]
