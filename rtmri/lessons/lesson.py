"""Reading lessons (the format is described in ``rtmri.lessons``)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from rtmri import RtmriError

LESSON_FILE = "lesson.json"
LESSON_FORMAT = "rtmri-lesson"
LESSON_VERSION = 1
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm")
TEXT_FIELDS = ("text", "kana", "romaji", "gloss")
MISSING_TEXT_NOTE = ("no lesson text: named after its file; add {json} with name, text, kana, romaji, gloss "
                     "and phones to show its words")


class LessonError(RtmriError, ValueError):
    """A lesson folder or lesson file that cannot be used."""


@dataclass(frozen=True)
class Lesson:
    id: str
    name: str
    audio: Path
    video: Path | None = None
    text: str = ""  # Japanese
    kana: str = ""
    romaji: str = ""
    gloss: str = ""  # English
    name_ja: str = ""
    phones: tuple[dict, ...] = ()  # {"phone", "start", "end"} in seconds, SAMPA
    speaker: str = ""
    note: str = ""  # what is missing, for the user
    extra: dict = field(default_factory=dict)
    voice: str = ""  # male, female or child: a lesson comes in several voices, the learner picks the nearest
    lesson: str = ""  # the lesson this recording says, shared by its voices ("" : its id)

    def describe(self) -> dict:
        """What a page or a report shows of it."""
        return {"id": self.id, "name": self.name, "name_ja": self.name_ja or self.name, "text": self.text, "kana": self.kana,
                "romaji": self.romaji, "gloss": self.gloss, "phones": list(self.phones), "speaker": self.speaker,
                "video": self.video is not None, "note": self.note, "voice": self.voice, "lesson": self.lesson or self.id}

    def to_json(self) -> dict:
        return {"format": LESSON_FORMAT, "version": LESSON_VERSION, "name": self.name, "name_ja": self.name_ja,
                "text": self.text, "kana": self.kana, "romaji": self.romaji, "gloss": self.gloss,
                "speaker": self.speaker, "phones": list(self.phones),
                **({"voice": self.voice} if self.voice else {}), **({"lesson": self.lesson} if self.lesson else {}), **self.extra}


def read_lesson(path: str | Path) -> Lesson:
    """A lesson folder, or one recording (its ``.json`` and video beside it, where they exist)."""
    path = Path(path)
    if path.is_dir():
        return _lesson_folder(path)
    if path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES + VIDEO_SUFFIXES:
        return _loose_recording(path)
    if not path.exists():
        raise LessonError(f"{path}: no such lesson folder or recording")
    raise LessonError(f"{path}: not a lesson folder nor a recording ({', '.join(AUDIO_SUFFIXES + VIDEO_SUFFIXES)})")


def read_lessons(folder: str | Path, skip=None) -> list[Lesson]:
    """Every lesson of a set: its lesson folders, then its loose recordings, by name.

    skip(path, error): called for a lesson that cannot be read, which is then left out;
    without it the first such lesson raises its LessonError."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LessonError(f"{folder}: no such folder of lessons")
    found: list[tuple[Path, object]] = [(p, _lesson_folder) for p in sorted(folder.iterdir())
                                        if p.is_dir() and _media_in(p, AUDIO_SUFFIXES + VIDEO_SUFFIXES)]
    stems: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES + VIDEO_SUFFIXES:
            stems.setdefault(path.stem, []).append(path)
    for paths in stems.values():
        found.append((next((p for p in paths if p.suffix.lower() in AUDIO_SUFFIXES), paths[0]), _loose_recording))
    lessons = []
    for path, reader in found:
        try:
            lessons.append(reader(path))
        except LessonError as exc:
            if skip is None:
                raise
            skip(path, exc)
    return lessons


def _media_in(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def _lesson_folder(folder: Path) -> Lesson:
    audio = _media_in(folder, AUDIO_SUFFIXES)
    video = _media_in(folder, VIDEO_SUFFIXES)
    if not audio and not video:
        raise LessonError(f"{folder}: no recording in this lesson folder ({', '.join(AUDIO_SUFFIXES)}, or a video with sound)")
    if len(audio) > 1:
        raise LessonError(f"{folder}: {len(audio)} recordings ({', '.join(p.name for p in audio)}); a lesson holds one")
    text_file = folder / LESSON_FILE
    return _lesson(folder.name, audio[0] if audio else video[0], video[0] if video else None, text_file)


def _loose_recording(path: Path) -> Lesson:
    video = next((p for p in _media_in(path.parent, VIDEO_SUFFIXES) if p.stem == path.stem), None)
    return _lesson(path.stem, path, video, path.with_suffix(".json"))


def _lesson(lesson_id: str, audio: Path, video: Path | None, text_file: Path) -> Lesson:
    if not text_file.is_file():
        return Lesson(lesson_id, lesson_id, audio, video, note=MISSING_TEXT_NOTE.format(json=text_file.name))
    content = _read_json(text_file)
    texts = {key: _text(content, key, text_file) for key in TEXT_FIELDS + ("name", "name_ja", "speaker", "voice", "lesson")}
    missing = [key for key in TEXT_FIELDS if not texts[key]]
    note = f"{text_file.name} has no {', '.join(missing)}" if missing else ""
    known = set(TEXT_FIELDS) | {"name", "name_ja", "speaker", "phones", "format", "version", "voice", "lesson"}
    return Lesson(lesson_id, texts["name"] or lesson_id, audio, video, texts["text"], texts["kana"], texts["romaji"],
                  texts["gloss"], texts["name_ja"], read_phones(content.get("phones", []), text_file), texts["speaker"], note,
                  {k: v for k, v in content.items() if k not in known}, texts["voice"], texts["lesson"])


def _read_json(path: Path) -> dict:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LessonError(f"{path}: cannot read the lesson ({exc})") from exc
    if not isinstance(content, dict):
        raise LessonError(f"{path}: a lesson is a JSON object with name, text, kana, romaji, gloss, phones")
    return content


def _text(content: dict, key: str, where: Path) -> str:
    value = content.get(key, "")
    if not isinstance(value, str):
        raise LessonError(f"{where}: {key} must be a string, not {type(value).__name__}")
    return value.strip()


def read_phones(phones, where: Path) -> tuple[dict, ...]:
    """[{"phone", "start", "end"}] with start < end, in time order."""
    if not isinstance(phones, list):
        raise LessonError(f"{where}: phones must be a list of {{phone, start, end}}")
    out, previous_end = [], 0.0
    for index, entry in enumerate(phones):
        try:
            phone, start, end = str(entry["phone"]), float(entry["start"]), float(entry["end"])
        except (KeyError, TypeError, ValueError) as exc:
            raise LessonError(f"{where}: phone {index + 1} is not {{phone, start, end}} ({exc})") from exc
        if not (math.isfinite(start) and math.isfinite(end) and 0 <= start < end) or start < previous_end - 1e-6:
            raise LessonError(f"{where}: phone {index + 1} ({phone!r}, {start}-{end} s) is not after the one before, "
                              "or does not end after it starts")
        out.append({"phone": phone, "start": start, "end": end})
        previous_end = end
    return tuple(out)
