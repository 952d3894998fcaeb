"""A file's audio as 16 kHz mono float32, decoded block by block as it is asked for:
memory stays flat whatever the file's length, and the first samples come at once.

Formats libsndfile reads (wav, flac, ogg, mp3 ...) are read with soundfile in blocks and
resampled by a streaming soxr resampler; anything else (a video's sound track) is decoded
whole by rtmri.audio.load_audio, as before.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile
import soxr

from rtmri.audio import SAMPLE_RATE, AudioError, load_audio, non_finite_error, non_finite_samples, require_finite

READ_BLOCK_S = 0.5  # what one read from the file decodes at least
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")


class FileAudio:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise AudioError(f"{self.path}: no such audio file")
        self._buffer = np.zeros(0, np.float32)  # resampled, not yet handed out
        self._file = None
        self._whole: np.ndarray | None = None
        self._read = 0  # samples read from the file, at its own rate
        try:
            self._file = soundfile.SoundFile(str(self.path))
        except soundfile.LibsndfileError:
            self._whole = load_audio(self.path)
            self.duration_s = len(self._whole) / SAMPLE_RATE
            return
        except RuntimeError as exc:
            raise AudioError(f"{self.path}: cannot read audio ({exc})") from exc
        self.rate = int(self._file.samplerate)
        if self._file.frames == 0:
            self.close()
            raise AudioError(f"{self.path}: audio is empty")
        self.duration_s = self._file.frames / self.rate
        if self._file.subtype in FLOAT_SUBTYPES:
            self._refuse_non_finite()
        self._resampler = None
        if self.rate != SAMPLE_RATE:
            self._resampler = soxr.ResampleStream(self.rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")

    def _refuse_non_finite(self) -> None:
        """Only float files can hold NaN or infinite samples: read all of it once, block by
        block, and refuse it before anything is made of it (as load_audio does)."""
        bad, first, at = 0, None, 0
        for block in self._file.blocks(blocksize=int(READ_BLOCK_S * self.rate), dtype="float32", always_2d=True):
            mono = block.mean(axis=1, dtype=np.float32)
            flags = non_finite_samples(mono)
            if len(flags) and first is None:
                first = at + flags[0]
            bad += len(flags)
            at += len(mono)
        self._file.seek(0)
        if bad:
            self.close()
            raise non_finite_error(self.path, bad, first / self.rate)

    def read(self, n: int) -> np.ndarray | None:
        """The next n samples (fewer only at the end of the file); None after the end."""
        if self._whole is not None:
            chunk, self._whole = self._whole[:n], self._whole[n:]
            return chunk if len(chunk) else None
        while len(self._buffer) < n and self._file is not None:
            self._decode(max(n - len(self._buffer), int(READ_BLOCK_S * SAMPLE_RATE)))
        chunk, self._buffer = self._buffer[:n], self._buffer[n:]
        return chunk if len(chunk) else None

    def _decode(self, n: int) -> None:
        """About n more resampled samples into the buffer; closes the file at its end."""
        want = int(np.ceil(n * self.rate / SAMPLE_RATE))
        try:
            block = self._file.read(frames=want, dtype="float32", always_2d=True)
        except Exception as exc:  # libsndfile on a truncated or damaged file
            raise AudioError(f"{self.path}: cannot read audio ({exc})") from exc
        mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
        require_finite(mono, self.path, self.rate, start_sample=self._read)  # the file changed since it was opened
        self._read += len(mono)
        last = len(block) < want
        if self._resampler is not None:
            mono = self._resampler.resample_chunk(mono, last=last)
        self._buffer = np.concatenate((self._buffer, mono))
        if last:
            self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
