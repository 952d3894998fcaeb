"""The comparison for the learner page: the server keeps the last seconds of audio each
learner's microphone sent; when the page asks ``{"type": "compare", "reference": id,
"start": sample, "end": sample}`` (the attempt it recorded, in the microphone's sample
offsets) the attempt is cut from them and compared with that served reference off the event
loop, and the page gets ``{"type": "comparison", "id": ..., ...panel payload}``, or
``{"type": "comparison", "id": ..., "error": "..."}`` (a silent or too-short attempt, an
unknown reference, audio no longer kept) to show instead of a score.

The server knows none of this: the command that starts it (`rtmri serve --references`,
`rtmri demo`) reads the lesson set, hands it over as references (``lesson_references``)
and hands over the comparer (``lesson_comparer``, an rtmri.streamer.server.dispatch.Comparer).
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile

from rtmri import RtmriError
from rtmri.alignment import FPS
from rtmri.audio import SAMPLE_RATE
from rtmri.lessons import rounding
from rtmri.lessons.activity import activity, check_attempt
from rtmri.lessons.articulators import FRAMES_PER_BATCH, Articulation, articulate
from rtmri.lessons.compare import Comparison, compare
from rtmri.lessons.grid import bundle_grid
from rtmri.lessons.lesson import read_lessons
from rtmri.lessons.panel import data_url, jpeg_data_url, panel_payload
from rtmri.streamer.server.protocol import COMPARISON, DEFAULT_CODEC, DEFAULT_QUALITY, control
from rtmri.streamer.server.recent_audio import RecentAudio
from rtmri.streamer.server.recent_frames import MIME, Cut, RecentFrames, frame_at
from rtmri.streamer.server.references import Reference, load_references

log = logging.getLogger(__name__)
MAX_ATTEMPT_S = 15.0


class LessonComparer:
    """Holds the served references' audio and words and the learners' recent audio and live
    frames; one comparison at a time per learner, on one worker thread (the model is shared
    with the live frames). Each reference is drawn and measured once, at its first comparison:
    a class comparing with the same lesson pays for its attempts only. An articulatory
    bundle's attempt is compared on its states and shown in the frames the learner's live
    session already drew (only those it never got are drawn: three quarters of a comparison's
    time was drawing them again)."""

    def __init__(self, engine, references: list[Reference]) -> None:
        self.engine = engine
        self.grid = bundle_grid(engine.bundle)
        self.references = {}
        for reference in references:
            wav, rate = soundfile.read(io.BytesIO(reference.audio_wav), dtype="float32")
            self.references[reference.id] = (wav if rate == SAMPLE_RATE else None, reference.lesson or {"name": reference.name})
        self.recent: dict[object, RecentAudio] = {}
        self.live: dict[object, RecentFrames] = {}
        self.articulated: dict[str, Articulation] = {}  # reference id -> its frames and curves (worker thread only)
        self.pictures: dict[str, list[str]] = {}  # reference id -> its frames' data URLs (worker thread only)
        self.busy: set[object] = set()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rtmri-compare")

    def audio(self, client, offset: int, samples: np.ndarray) -> None:
        self.recent.setdefault(client, RecentAudio()).push(offset, samples)

    def frame(self, client, index: int, codec: str, image: bytes, epoch: int) -> None:
        self.live.setdefault(client, RecentFrames()).push(index, codec, image, epoch)

    def leave(self, client) -> None:
        self.recent.pop(client, None)
        self.live.pop(client, None)

    def request(self, client, request: dict, cut: Cut | None = None) -> None:
        """Answer a compare request later, with client.say (from the event loop). cut: the
        attempt's audio and live frames as a RemoteComparer cut them; else from this comparer's own."""
        ident = request.get("id") if isinstance(request.get("id"), (int, str)) else None
        try:
            attempt, key, (reference, lesson), live = self._inputs(client, request, cut)
        except RtmriError as exc:
            client.say(control(COMPARISON, id=ident, error=str(exc)))
            return
        self.busy.add(client)
        future = asyncio.get_running_loop().run_in_executor(self.executor, self._payload, attempt, key, reference, lesson,
                                                            live)

        def deliver(done) -> None:
            self.busy.discard(client)
            try:
                result = done.result()
                client.say(control(COMPARISON, id=ident, **result))
            except RtmriError as exc:
                client.say(control(COMPARISON, id=ident, error=str(exc)))
            except Exception as exc:  # a gone client, a queue it does not read: nothing to tell
                log.info("comparison not delivered: %s", exc)

        future.add_done_callback(deliver)

    def _inputs(self, client, request: dict, cut: Cut | None = None):
        """(the attempt's audio, the reference's id, (its audio, its lesson), its live frames by the
        attempt's frame number); RtmriError naming what is wrong."""
        if client in self.busy:
            raise RtmriError("a comparison is still running; wait for it")
        key = str(request.get("reference"))
        entry = self.references.get(key)
        if entry is None or entry[0] is None:
            raise RtmriError(f"no reference {key[:20]!r} on this server")
        start, end = request.get("start"), request.get("end")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)) or not 0 <= start < end:
            raise RtmriError("compare needs whole sample offsets 0 <= start < end")
        if end - start > MAX_ATTEMPT_S * SAMPLE_RATE:
            raise RtmriError(f"an attempt may last {MAX_ATTEMPT_S:g} s at most")
        if cut is None:
            cut = Cut.of(self.recent.get(client), self.live.get(client), start, end)
        if cut.audio is None:
            raise RtmriError("the attempt's audio is no longer on the server; record it again")
        first = frame_at(start)
        live = {index - first: (codec, image) for index, codec, image in cut.frames}
        return cut.audio, key, entry, live

    def warm_up(self) -> None:
        """Draw every served reference now and compare one with itself: a class's first burst
        of attempts then pays for the attempts only (the first comparison in a process also
        loads the feature code's compiled kernels: about 1 s here, 0.1 s for every later one)."""
        rounding.warm_up()
        compared = False
        for ident, (wav, lesson) in self.references.items():
            if wav is None:
                continue
            try:
                self._reference_pictures(ident, wav)
                if not compared:
                    self._payload(wav, ident, wav, lesson)
                    compared = True
            except RtmriError as exc:  # said when a learner compares with it; the others are still warmed
                log.warning("reference %s not warmed: %s", ident, exc)

    def _drawn(self, ident: str, reference: np.ndarray) -> Articulation:
        """The reference's articulation, drawn at its first use and kept (worker thread only)."""
        if ident not in self.articulated:
            self.articulated[ident] = read_only(articulate(self.engine, reference, self.grid))
        return self.articulated[ident]

    def _reference_pictures(self, ident: str, reference: np.ndarray) -> list[str]:
        """The reference's frames as the panel's pictures, encoded at their first use and kept (worker thread only)."""
        if ident not in self.pictures:
            self.pictures[ident] = [jpeg_data_url(f) for f in self._drawn(ident, reference).frames]
        return self.pictures[ident]

    def _payload(self, attempt: np.ndarray, ident: str, reference: np.ndarray, lesson: dict, live: dict | None = None) -> dict:
        """live: the attempt's live frames, frame number -> (codec, picture)."""
        check_attempt(attempt, activity(reference))  # before the model runs on it
        by_state = self.engine.bundle.gives_state
        drawn = articulate(self.engine, attempt, self.grid, draw=not by_state)
        comparison = compare(attempt, reference, self.engine, self.grid, tuple(lesson.get("phones") or ()),
                             reference=self._drawn(ident, reference), attempt=drawn)
        pictures = {"reference": self._reference_pictures(ident, reference)}
        if by_state:
            pictures["attempt"] = self._attempt_pictures(comparison, drawn, live or {})
        return panel_payload(comparison, lesson, reference, attempt, self.grid, self.engine.image_size, pictures)

    def _attempt_pictures(self, comparison: Comparison, drawn: Articulation, live: dict) -> list[str]:
        """The attempt's picture at each reference frame: its live frame, else drawn from its state now."""
        shown = np.clip(np.rint(comparison.attempt_times_s * FPS).astype(int), 0, max(len(drawn.states) - 1, 0))
        missing = sorted({int(k) for k in shown if k not in live})
        made = {}
        for at in range(0, len(missing) if len(drawn.states) else 0, FRAMES_PER_BATCH):
            batch = missing[at : at + FRAMES_PER_BATCH]
            made.update(zip(batch, self.engine.render(drawn.states[batch])))
        urls = {k: jpeg_data_url(made[k]) if k in made else data_url(MIME[live[k][0]], live[k][1]) for k in set(map(int, shown))}
        return [urls[int(k)] for k in shown]


def read_only(articulation: Articulation) -> Articulation:
    """The articulation with its arrays made read-only: shared by every later comparison, an
    edit in place would change them all."""
    for array in (articulation.frames, *articulation.curves.values(), *([] if articulation.states is None else [articulation.states])):
        array.flags.writeable = False
    return articulation


def lesson_references(folder: str | Path, engine, codec: str = DEFAULT_CODEC, quality: int = DEFAULT_QUALITY) -> list[Reference]:
    """The lesson set in folder (lesson folders, or recordings with their text beside them)
    as the server's references; a lesson that cannot be read is named on stderr and left out."""
    def skip(path: Path, exc: Exception) -> None:
        print(f"rtmri serve: skipping reference {path}: {exc}", file=sys.stderr)

    return load_references(read_lessons(folder, skip), engine, codec, quality)


def lesson_comparer(engine, references: list[Reference]) -> LessonComparer | None:
    """The comparer for a learner server with these references, or None: no references, or a
    bundle that cannot compare (no analysis grid: said in the log, the page is served all the same)."""
    if not references:
        return None
    try:
        return LessonComparer(engine, references)
    except RtmriError as exc:
        log.warning("attempts will not be compared: %s", exc)
        return None
