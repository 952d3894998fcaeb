"""Torch datasets that follow wav2lip's sampling on the prepared clips (rtmri.clips).

Every sample is a pure function of (seed, index): sample i draws from
``np.random.default_rng([seed, i])``. A run that resumes at step s just continues at index
s * batch_size, so the data order after a resume is the uninterrupted one, whatever the
number of loader workers (no sampler state to save beyond the step).

Generator sample (wav2lip's layout), T = 5 consecutive frames k..k+4 of one clip:
  x      (2C, T, S, S)   masked frames (lower half zeroed), then the reference frames:
                         5 consecutive frames from elsewhere in the same clip. The masked
                         frames are the reference's (``masked_input="reference"``, what a
                         live stream has: no target frame exists there) or the targets'
                         (``"target"``, wav2lip's recipe, which shows the model the true
                         upper half)
  mels   (T, 1, 80, 16)  each frame's mel window (rtmri.alignment, the run's lookahead)
  mel    (1, 80, 16)     the 0.2 s SyncNet window of the 5 frames (``sync_window``)
  y      (C, T, S, S)    the target frames
SyncNet sample: the lower halves of 5 frames stacked frame-major (5C, S/2, S), the 0.2 s
window of frames k..k+4, and label 1 if the frames are k..k+4 (in sync) or 0 if they are
5 frames from elsewhere in the clip (off sync), each with probability 1/2.
Baseline (frame) sample: frame k's mel window (1, 80, 16) and frame k (C, S, S).
Frames are grayscale uint8 scaled to [0, 1] and resized to S (default 96); with C = 3 the
grey is repeated to 3 channels.
With an ``augmentation`` (training samples only), the mel columns a sample reads come from
its clip's audio as the augmentation perturbs it for (seed, index) (rtmri.training.augment).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Sampler

from rtmri.alignment import (DEFAULT_LOOKAHEAD_MS, FPS, SAMPLES_PER_FRAME, SYNC_FRAMES, WINDOW_COLUMNS, first_column,
                             lookahead_samples, mel_window, window_end_sample, window_start)
from rtmri.articulation import regions
from rtmri.articulation import state as articulatory_state
from rtmri.articulation.compare import phone_frames
from rtmri.audio import MEL_COLUMNS_PER_SECOND, SessionNorm, melspectrogram
from rtmri.clips import IMAGE_SIZE, Clip, DatasetError
from rtmri.training.augment import Augmentation, room_tone

VAL_SEED_OFFSET = 1_000_003  # validation samples use seed + this: a fixed set, apart from training's
MASKED_INPUTS = ("reference", "target")


def sync_window(mel: np.ndarray, first_frame: int, lookahead_ms: float = DEFAULT_LOOKAHEAD_MS) -> np.ndarray:
    """The SyncNet's 0.2 s window for frames first_frame .. first_frame + 4: the window of
    the middle frame (rtmri.alignment). With the default lookahead it starts at column
    int(80 * first_frame / 25), wav2lip's SyncNet window: the 16 columns span the 5 frames."""
    return mel_window(mel, first_frame + SYNC_FRAMES // 2, lookahead_ms)


class ClipCache:
    """Per-process cache of clip frames (memory-mapped), whole-clip mels and (for
    augmentation) audio."""

    def __init__(self, clips: list[Clip], max_mels: int = 4096) -> None:
        self.clips = clips
        self.max_mels = max_mels
        self._mels: OrderedDict[int, np.ndarray] = OrderedDict()
        self._audio: OrderedDict[int, np.ndarray] = OrderedDict()
        self._frames: dict[int, np.ndarray] = {}

    def frames(self, i: int) -> np.ndarray:
        if i not in self._frames:
            frames = self.clips[i].frames(mmap=True)
            if frames.ndim != 3 or frames.dtype != np.uint8:
                raise DatasetError(f"{self.clips[i].folder}/frames.npy: expected uint8 (n, H, W), got {frames.dtype} {frames.shape}")
            self._frames[i] = frames
        return self._frames[i]

    def mel(self, i: int) -> np.ndarray:
        return self._cached(self._mels, i, self.clips[i].mel)

    def audio(self, i: int) -> np.ndarray:
        return self._cached(self._audio, i, self.clips[i].audio)

    def _cached(self, cache: OrderedDict, i: int, load) -> np.ndarray:
        value = cache.get(i)
        if value is None:
            value = cache[i] = load()
            if len(cache) > self.max_mels:
                cache.popitem(last=False)
        return value


def usable_clips(clips: list[Clip], split: str, min_frames: int = SYNC_FRAMES + 1) -> list[Clip]:
    """Clips long enough for a 5-frame window and a different reference window."""
    kept = [c for c in clips if c.n_frames >= min_frames]
    if not kept:
        raise DatasetError(f"split {split!r} has no clip of at least {min_frames} frames ({len(clips)} clips)")
    return kept


MAX_SESSION_LEAD_S = 4.0  # how much of a session an inverter sample may have heard before its windows
MAX_SESSION_LEAD_COLUMNS = int(MAX_SESSION_LEAD_S * MEL_COLUMNS_PER_SECOND)
PAUSE_LEAD_S = (0.7, 3.0)  # a pause sample's room noise alone before the clip: longer than any stop's closure
MIN_OPENING_PAUSE_S = 2 / FPS  # a clip whose first phone starts later than this opens with a pause (its first state)
PHONE_BALANCE_CAP = 8.0  # the most a rare phone's frames are drawn more often than a common one's


class _ClipSampling(Dataset):
    """Index -> sample; the index seeds the sample's own RNG. __len__ is nominal (one
    'epoch' = one window per frame of the split), the step sampler is infinite."""

    def __init__(self, clips: list[Clip], *, split: str = "train", seed: int = 0, image_size: int = IMAGE_SIZE,
                 channels: int = 3, lookahead_ms: float = DEFAULT_LOOKAHEAD_MS, augmentation: Augmentation | None = None) -> None:
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        lookahead_samples(lookahead_ms)  # validates
        self.clips = usable_clips(clips, split)
        self.cache = ClipCache(self.clips)
        self.seed = int(seed)
        self.image_size = int(image_size)
        self.channels = channels
        self.lookahead_ms = float(lookahead_ms)
        self.n_frames_total = sum(c.n_frames for c in self.clips)
        self.augmentation = augmentation

    def __len__(self) -> int:
        return self.n_frames_total

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, int(index)])

    def _mel(self, ci: int, index: int, window_starts: list[int], columns: int = WINDOW_COLUMNS) -> np.ndarray:
        """Clip ``ci``'s mel, its columns under the windows of ``columns`` starting at
        ``window_starts`` augmented for sample ``index`` when the dataset augments."""
        mel = self.cache.mel(ci)
        if self.augmentation is None:
            return mel
        first, end = min(window_starts), max(window_starts) + columns
        return self.augmentation.mel(self.cache.audio(ci), mel, first, end, key=(self.seed, index))

    def _pick(self, rng: np.random.Generator) -> tuple[int, int, int, int]:
        """(clip, n usable frames, start k, other start != k)."""
        ci = int(rng.integers(len(self.clips)))
        n = min(self.clips[ci].n_frames, len(self.cache.frames(ci)))
        if n < SYNC_FRAMES + 1:
            raise DatasetError(f"{self.clips[ci].folder}: only {n} frames in frames.npy")
        last = n - SYNC_FRAMES  # starts 0..last
        k = int(rng.integers(last + 1))
        other = int(rng.integers(last))
        if other >= k:
            other += 1
        return ci, n, k, other

    def _window(self, ci: int, start: int) -> torch.Tensor:
        """(C, T, S, S) float frames start..start+4 in [0, 1]."""
        frames = torch.from_numpy(np.array(self.cache.frames(ci)[start : start + SYNC_FRAMES], dtype=np.float32))
        frames = frames.unsqueeze(1) / 255.0  # (T, 1, H, W)
        if frames.shape[-2:] != (self.image_size, self.image_size):
            frames = F.interpolate(frames, size=(self.image_size, self.image_size), mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)
        if self.channels == 3:
            frames = frames.expand(-1, 3, -1, -1)
        return frames.permute(1, 0, 2, 3).contiguous()


class GeneratorSamples(_ClipSampling):
    """wav2lip generator samples: (x, mels, mel, y); see the module docstring."""

    def __init__(self, clips, *, split="train", seed=0, image_size=IMAGE_SIZE, channels=3,
                 lookahead_ms=DEFAULT_LOOKAHEAD_MS, sync_lookahead_ms=DEFAULT_LOOKAHEAD_MS, masked_input="reference",
                 augmentation=None) -> None:
        super().__init__(clips, split=split, seed=seed, image_size=image_size, channels=channels, lookahead_ms=lookahead_ms,
                         augmentation=augmentation)
        lookahead_samples(sync_lookahead_ms)
        if masked_input not in MASKED_INPUTS:
            raise ValueError(f"masked_input {masked_input!r}, expected one of {', '.join(MASKED_INPUTS)}")
        self.sync_lookahead_ms = float(sync_lookahead_ms)
        self.masked_input = masked_input

    def __getitem__(self, index: int):
        ci, _, k, other = self._pick(self._rng(index))
        target = self._window(ci, k)
        reference = self._window(ci, other)
        masked = (reference if self.masked_input == "reference" else target).clone()
        masked[:, :, self.image_size // 2 :] = 0
        x = torch.cat([masked, reference], dim=0)
        starts = [window_start(k + t, self.lookahead_ms) for t in range(SYNC_FRAMES)]
        mel = self._mel(ci, index, starts + [window_start(k + SYNC_FRAMES // 2, self.sync_lookahead_ms)])
        mels = np.stack([mel_window(mel, k + t, self.lookahead_ms) for t in range(SYNC_FRAMES)])[:, None]
        sync = sync_window(mel, k, self.sync_lookahead_ms)[None]
        return x, torch.from_numpy(mels), torch.from_numpy(sync), target


class SyncNetSamples(_ClipSampling):
    """wav2lip SyncNet samples: (lower halves (5C, S/2, S), window (1, 80, 16), label (1,))."""

    def __getitem__(self, index: int):
        rng = self._rng(index)
        ci, _, k, other = self._pick(rng)
        in_sync = bool(rng.random() < 0.5)
        frames = self._window(ci, k if in_sync else other)  # (C, T, S, S)
        lower = frames[:, :, self.image_size // 2 :]
        x = lower.permute(1, 0, 2, 3).reshape(-1, *lower.shape[2:])  # frame-major channels
        mel = self._mel(ci, index, [window_start(k + SYNC_FRAMES // 2, self.lookahead_ms)])
        window = sync_window(mel, k, self.lookahead_ms)[None]
        return x, torch.from_numpy(window), torch.tensor([1.0 if in_sync else 0.0])


class FrameSamples(_ClipSampling):
    """The FC-LSTM baseline's samples: (mel window (1, 80, 16), frame (C, S, S) in [0, 1])
    of a frame drawn uniformly from the split's clips."""

    def __getitem__(self, index: int):
        rng = self._rng(index)
        ci = int(rng.integers(len(self.clips)))
        k = int(rng.integers(min(self.clips[ci].n_frames, len(self.cache.frames(ci)))))
        frame = self._window(ci, k)[:, 0]  # frame k, resized and channel-repeated as the generator's targets
        window = mel_window(self._mel(ci, index, [window_start(k, self.lookahead_ms)]), k, self.lookahead_ms)[None]
        return torch.from_numpy(window), frame


class _StateSampling(_ClipSampling):
    """Samples that need each clip's articulatory state (``state.npz``, written by ``rtmri prepare``)."""

    def __init__(self, clips, **options) -> None:
        super().__init__(clips, **options)
        self._states: dict[int, np.ndarray] = {}

    def state(self, ci: int) -> np.ndarray:
        """(n_frames, STATE_SIZE) state vectors of clip ``ci``."""
        if ci not in self._states:
            path = self.clips[ci].folder / articulatory_state.STATE_FILE
            if not path.is_file():
                raise DatasetError(f"{path}: no articulatory state; re-run `rtmri prepare` on a corpus with geometry "
                                   "(it writes state.npz beside each clip)")
            self._states[ci] = articulatory_state.load(path).to_vector()
        return self._states[ci]


# The phones an inverter's auxiliary head tells apart (VocalTractLab's and the Japanese the
# corpora speak), then one class for frames outside every phone (silence).
PHONE_CLASSES = (*sorted(set(regions.PLACE) | regions.JAPANESE_PHONES), "")
PHONE_INDEX = {p: i for i, p in enumerate(PHONE_CLASSES)}
NO_PHONE = -100  # a phone of no class: left out of the loss (torch's ignore_index)


def frame_phone_classes(phones, frames) -> np.ndarray:
    """The class of the phone at each frame (frame k at k / FPS s, as every measure places it:
    ``rtmri.articulation.compare.phone_frames``); ``PHONE_INDEX[""]`` outside the phones."""
    frames = np.asarray(frames, np.int64)
    by_frame = np.full(int(frames.max(initial=-1)) + 1, PHONE_INDEX[""], np.int64)
    for phone, inside in phone_frames(phones, len(by_frame)):
        by_frame[inside] = PHONE_INDEX.get(phone, NO_PHONE)
    return by_frame[frames]


class StateSamples(_StateSampling):
    """The inverter's samples: ``steps`` consecutive frames of a clip, their mel windows with
    past context (steps, 1, 80, columns) and their states (steps, STATE_SIZE); NaN where a
    line leaves the image. With ``with_phones``, also each frame's phone class (steps,)."""

    def __init__(self, clips, *, columns: int, steps: int = 3, **options) -> None:
        super().__init__(clips, **options)
        self.columns, self.steps = int(columns), int(steps)
        self.session_norm: SessionNorm | None = None  # the inverter's input normalisation, set by its run
        self.with_phones = False  # set by a run that trains a phone head
        self.pause_share = 0.0  # the share of pause samples (_pause_sample), set by a run that asks for them
        self.phone_balance = 0.0  # how much rarer phones' frames are drawn more often (balanced_starts), set by a run
        self._opening_pauses: list[int] | None = None
        self._balanced: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def __getitem__(self, index: int):
        rng = self._rng(index)
        if self.pause_share and rng.random() < self.pause_share:
            return self._pause_sample(index, rng)
        ci, k = self._balanced_start(rng) if self.phone_balance else (int(rng.integers(len(self.clips))), None)
        states = self.state(ci)
        n = min(self.clips[ci].n_frames, len(states))
        k = int(rng.integers(max(n - self.steps, 0) + 1)) if k is None else min(k, max(n - self.steps, 0))
        frames = range(k, k + self.steps)
        starts = [first_column(f, self.lookahead_ms, self.columns) for f in frames]
        if self.session_norm is None:
            mel = self._mel(ci, index, starts, self.columns)
        else:
            mel = self._session_mel(ci, index, starts, rng)
        mels = np.stack([mel_window(mel, f, self.lookahead_ms, self.columns) for f in frames])[:, None]
        sample = (torch.from_numpy(mels), torch.from_numpy(states[np.minimum(list(frames), n - 1)]))
        if self.with_phones:
            sample += (torch.from_numpy(frame_phone_classes(self.clips[ci].info.get("phones"), frames)),)
        return sample

    def balanced_starts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(clip, first frame, cumulative weight) of every sample's start, each frame weighted
        by its phone's rarity in these clips: (an even share among the phones they name / its
        share) ** phone_balance, between 1 and PHONE_BALANCE_CAP (silence and unnamed phones 1); a start
        weighs its frames' mean. So a sound the corpora hold for seconds among minutes of
        Japanese (German [l]) is learnt from more often than its share of them; clips without
        phones weigh every frame alike."""
        if self._balanced is None:
            labels = [frame_phone_classes(clip.info.get("phones"), range(max(clip.n_frames, 1))) for clip in self.clips]
            classes, counts = np.unique(np.concatenate(labels), return_counts=True)
            named = (classes != PHONE_INDEX[""]) & (classes != NO_PHONE)
            share = counts / counts[named].sum() if named.any() else counts / counts.sum()
            even = 1.0 / max(int(named.sum()), 1)
            weight = np.where(named, np.clip((even / share) ** self.phone_balance, 1.0, PHONE_BALANCE_CAP), 1.0)
            clips, starts, weights = [], [], []
            for ci, frame_classes in enumerate(labels):
                frame_weight = weight[np.searchsorted(classes, frame_classes)]  # classes: np.unique's, sorted
                width = min(self.steps, len(frame_weight))  # a clip shorter than a sample: its one start
                start_weight = np.convolve(frame_weight, np.full(width, 1.0 / width), mode="valid")
                clips.append(np.full(len(start_weight), ci))
                starts.append(np.arange(len(start_weight)))
                weights.append(start_weight)
            self._balanced = np.concatenate(clips), np.concatenate(starts), np.cumsum(np.concatenate(weights))
        return self._balanced

    def _balanced_start(self, rng: np.random.Generator) -> tuple[int, int]:
        clips, starts, cumulative = self.balanced_starts()
        i = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
        i = min(i, len(clips) - 1)
        return int(clips[i]), int(starts[i])

    def _pause_sample(self, index: int, rng: np.random.Generator):
        """A session that begins before anyone speaks: PAUSE_LEAD_S of a room's noise alone
        (``augment.room_tone``, then the sample's augmentation) before a clip that opens with a
        pause, the room's noise going on under it; frames of the lead (the first ones with the
        silence before the session in their past, as the streamer gives), labelled with the clip's
        opening state (the tract at rest). Acoustically a pause is a stop's
        closure held long: without these the closure heads say "closed" in a quiet room."""
        ci = int(rng.choice(self.opening_pauses()))
        lead = int(rng.integers(round(PAUSE_LEAD_S[0] * FPS), round(PAUSE_LEAD_S[1] * FPS) + 1))
        first = int(rng.integers(lead - self.steps + 1))
        frames = range(first, first + self.steps)
        starts = [first_column(f, self.lookahead_ms, self.columns) for f in frames]
        heard = window_end_sample(max(starts) + self.columns - WINDOW_COLUMNS)  # what the last window reads
        silence = np.zeros(lead * SAMPLES_PER_FRAME, np.float32)
        audio = np.concatenate([silence, self.cache.audio(ci)[: max(heard - len(silence), 0)]])[:heard]
        audio += room_tone(len(audio), rng)
        mel = melspectrogram(audio)
        if self.augmentation is not None:
            mel = self.augmentation.mel(audio, mel, min(starts), max(starts) + self.columns, key=(self.seed, index))
        if self.session_norm is not None:  # the session begins with the lead, as a live one in a quiet room
            end = max(starts) + self.columns
            mel = mel.copy()
            mel[:, :end] = self.session_norm.normalise(mel[:, :end])
        mels = np.stack([mel_window(mel, f, self.lookahead_ms, self.columns) for f in frames])[:, None]
        states = np.repeat(self.state(ci)[:1], self.steps, axis=0)
        sample = (torch.from_numpy(mels), torch.from_numpy(states))
        if self.with_phones:
            sample += (torch.full((self.steps,), PHONE_INDEX[""], dtype=torch.int64),)
        return sample

    def opening_pauses(self) -> list[int]:
        """The clips whose first phone starts after MIN_OPENING_PAUSE_S (their first state a pause)."""
        if self._opening_pauses is None:
            self._opening_pauses = [i for i, clip in enumerate(self.clips)
                                    if (clip.info.get("phones") or [{"start": 0.0}])[0]["start"] > MIN_OPENING_PAUSE_S]
            if not self._opening_pauses:
                raise DatasetError("no clip opens with a pause (a first phone after "
                                   f"{MIN_OPENING_PAUSE_S:.2f} s): pause samples need one")
        return self._opening_pauses

    def _session_mel(self, ci: int, index: int, starts: list[int], rng: np.random.Generator) -> np.ndarray:
        """The clip's mel with the sample's columns normalised as a session that began up to
        MAX_SESSION_LEAD_S before its first window (at the clip's start at the earliest) would
        have them: what the streamer gives the model at every point of a session."""
        session_start = max(0, min(starts) - int(rng.integers(MAX_SESSION_LEAD_COLUMNS + 1)))
        mel = self._mel(ci, index, [session_start, *starts], self.columns)
        end = min(max(starts) + self.columns, mel.shape[1])
        if end <= session_start:
            return mel
        out = mel.copy()
        out[:, session_start:end] = self.session_norm.normalise(mel[:, session_start:end])
        return out


class RenderSamples(_StateSampling):
    """The renderer's samples: the face input (2, S, S) = [the frame's true state drawn on
    its speaker's grid, a reference frame from elsewhere in the clip], the state vector
    (STATE_SIZE,), the frame (1, S, S) and the frame's closure pixels (1, S, S): 1 where a
    pixel is drawn for a gridline of a place closed in the frame, else 0 (the renderer's loss
    may weigh them: a closure is a few pixels of a few frames, which a plain L1 averages away).
    Training states get noise (``state_noise_mm``) so that the renderer draws an inverter's
    imperfect states sensibly too."""

    def __init__(self, clips, *, grids: dict, state_noise_mm: float = 0.0, **options) -> None:
        super().__init__(clips, **options)
        self.grids = grids  # speaker -> AnalysisGrid at image_size
        self.state_noise_mm = float(state_noise_mm)
        self._rasters: dict[str, articulatory_state.StateRaster] = {}
        self._place_bands: dict[str, np.ndarray] = {}

    def raster(self, speaker: str) -> articulatory_state.StateRaster:
        if speaker not in self._rasters:
            self._rasters[speaker] = articulatory_state.StateRaster(self.grids[speaker], self.image_size)
        return self._rasters[speaker]

    def place_bands(self, speaker: str) -> np.ndarray:
        """bool (closure places, S, S): the pixels of each closure place's gridlines."""
        if speaker not in self._place_bands:
            raster, grid = self.raster(speaker), self.grids[speaker]
            self._place_bands[speaker] = np.stack([raster.band(grid.lines_of(p)) for p in articulatory_state.CLOSURE_PLACES])
        return self._place_bands[speaker]

    def closure_pixels(self, speaker: str, state: np.ndarray) -> torch.Tensor:
        """float32 (1, S, S): 1 on the pixels of the places closed in state, else 0."""
        closed = state[articulatory_state.CLOSED] > articulatory_state.CLOSED_AT
        return torch.from_numpy(self.place_bands(speaker)[closed].any(axis=0)[None].astype(np.float32))

    def __getitem__(self, index: int):
        rng = self._rng(index)
        ci, _, k, other = self._pick(rng)
        states = self.state(ci)
        state = states[min(k, len(states) - 1)].copy()
        if self.state_noise_mm:
            mm = slice(0, 2 * articulatory_state.N_LINES)
            state[mm] += rng.normal(0.0, self.state_noise_mm, state[mm].shape).astype(np.float32)
            state[articulatory_state.GAP] = np.maximum(state[articulatory_state.GAP], 0.0)
        speaker = self.clips[ci].speaker
        # drawn as the engine draws a state: a closed place is a contact (a measured closure may keep 1 px)
        state = articulatory_state.with_closures(state[None], self.grids[speaker])[0]
        drawn = self.raster(speaker).draw(state[None])  # (1, S, S)
        reference = self._window(ci, other)[:, 0]  # (1, S, S)
        face = torch.cat([torch.from_numpy(drawn), reference], dim=0)
        return (face, torch.from_numpy(np.nan_to_num(state, nan=0.0)), self._window(ci, k)[:, 0],
                self.closure_pixels(speaker, state))


class StepBatchSampler(Sampler):
    """Infinite batches of sample indices from step ``start_step`` on: global batch b of
    step s holds indices s*b .. s*b+b-1; rank r of w takes its contiguous b/w share."""

    def __init__(self, batch_size: int, start_step: int = 0, rank: int = 0, world_size: int = 1) -> None:
        if batch_size % world_size:
            raise ValueError(f"batch size {batch_size} is not a multiple of {world_size} processes")
        self.batch_size = batch_size
        self.per_rank = batch_size // world_size
        self.start_step = start_step
        self.rank = rank

    def __iter__(self):
        step = self.start_step
        while True:
            base = step * self.batch_size + self.rank * self.per_rank
            yield list(range(base, base + self.per_rank))
            step += 1
