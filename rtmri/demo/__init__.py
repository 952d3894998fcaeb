"""The shipped default (``rtmri demo``): a trained bundle, an example recording with its
true rtMRI video, and native reference utterances for the learner page.

    rtmri/demo/assets/model/model.onnx (+ model.onnx.json)   the default bundle (an articulatory one: + model.renderer.onnx)
    rtmri/demo/assets/class/model.onnx (+ .json, .renderer.onnx)  the default's inverter with a renderer of half its
                                                              width, distilled from the default's: for a class of
                                                              learners on a small server (the same states, cheaper pictures)
    rtmri/demo/assets/wav2lip/model.onnx (+ .json)            the published method's generator (the previous default),
                                                              for comparison and for researchers reproducing the study
    rtmri/demo/assets/example/example.flac, example.mp4       speech and its true rtMRI (25 fps, cropped)
    rtmri/demo/assets/example/example.json                    where it comes from (clip, speaker, phones)
    rtmri/demo/assets/references/<name>.flac, <name>.mp4      native utterances for the learner page
    rtmri/demo/assets/lessons/<lesson>.<voice>.flac, .mp4, .json  lessons in a male, a female and a child voice, with their words (rtmri make-lessons)
    rtmri/demo/assets/checkpoint/<kind>.pt                    weights to fine-tune from: the default's inverter.pt and
                                                              renderer.pt, the wav2lip generator.pt it was started from

``rtmri package-demo`` writes them from a prepared dataset and a bundle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rtmri import RtmriError

ASSETS = Path(__file__).parent / "assets"
AUDIO_SUFFIX, VIDEO_SUFFIX = ".flac", ".mp4"


@dataclass(frozen=True)
class DemoAssets:
    root: Path

    @property
    def bundle(self) -> Path:
        return self.root / "model"

    @property
    def class_bundle(self) -> Path:
        """The default's inverter with a narrower renderer (`rtmri serve --mode learner` for a class), where shipped."""
        return self.root / "class"

    @property
    def wav2lip_bundle(self) -> Path:
        """The wav2lip generator's bundle (the previous default), where shipped."""
        return self.root / "wav2lip"

    @property
    def example_audio(self) -> Path:
        return self.root / "example" / f"example{AUDIO_SUFFIX}"

    @property
    def example_video(self) -> Path:
        return self.root / "example" / f"example{VIDEO_SUFFIX}"

    @property
    def example_info(self) -> Path:
        return self.root / "example" / "example.json"

    @property
    def checkpoint(self) -> Path:
        """The wav2lip generator's weights (to fine-tune from), where shipped."""
        return self.checkpoint_of("generator")

    def checkpoint_of(self, kind: str) -> Path:
        """Weights of a network of this kind (generator, inverter, renderer), where shipped."""
        return self.root / "checkpoint" / f"{kind}.pt"

    @property
    def references(self) -> Path:
        return self.root / "references"

    @property
    def lessons(self) -> Path:
        """The lesson set (rtmri.lessons; `rtmri make-lessons`), where shipped: served instead of the references."""
        return self.root / "lessons"

    def check(self) -> "DemoAssets":
        needed = [self.bundle / "model.onnx", self.bundle / "model.onnx.json", self.example_audio, self.example_video, self.references]
        missing = [str(p) for p in needed if not p.exists()]
        if missing:
            raise RtmriError(f"the demo's files are missing: {', '.join(missing)} (reinstall rtmri-live, or write them "
                             "with `rtmri package-demo`)")
        return self


def shipped() -> DemoAssets:
    return DemoAssets(ASSETS)
