"""The analysis grid (rtmri.articulation) of the frames a bundle draws: where the comparison
reads the constrictions.

A bundle carries its reference speaker's grid in the manifest (``analysis_grid``, in the
pixels of the model's frames; the shipped default's was added with ``synthetic_speaker_grid``). A bundle made before that key existed, from the synthetic
corpus, gets its reference speaker's grid rebuilt from the synthesizer's head pose: the
corpus's speakers are drawn again for the seeds in ``SYNTH_SEEDS`` and the one whose crop is
the manifest's crop for that speaker is taken (needs the ``[synth]`` extra).
"""

from __future__ import annotations

from rtmri.articulation.grid import MANIFEST_KEY, AnalysisGrid, GridError, grid_of_bundle

SYNTH_SEEDS = range(4)


def bundle_grid(bundle) -> AnalysisGrid:
    grid = grid_of_bundle(bundle.manifest)
    return grid if grid is not None else synthetic_speaker_grid(bundle)


def synthetic_speaker_grid(bundle) -> AnalysisGrid:
    manifest = bundle.manifest
    speaker_id = manifest.reference.get("speaker")
    table = manifest.frames.get("crop")
    crops = (table.get("per_speaker") or {}) if isinstance(table, dict) else {}
    speakers, held_out = manifest.training.get("speakers") or [], manifest.training.get("heldout_speakers") or []
    crop = crops.get(speaker_id)
    if not (speaker_id and crop and speakers):
        raise GridError(f"{bundle.path}: no {MANIFEST_KEY} in the manifest, and its reference speaker is not a synthetic "
                        "one whose grid can be rebuilt: export the bundle again with its grid")
    try:
        from rtmri.synth.grid import speaker_grid
        from rtmri.synth.speakers import make_speakers
    except ImportError as exc:
        raise GridError(f"{bundle.path}: no {MANIFEST_KEY} in the manifest; rebuilding the synthetic speaker's grid "
                        f"needs the [synth] extra ({exc})") from exc
    for seed in SYNTH_SEEDS:
        for speaker in make_speakers(len(speakers), len(held_out), seed):
            if speaker.id == speaker_id and list(speaker.crop) == list(crop):
                return speaker_grid(speaker).to_clip(crop, bundle.image_size)
    raise GridError(f"{bundle.path}: no {MANIFEST_KEY} in the manifest, and no synthetic corpus of seed "
                    f"{SYNTH_SEEDS.start}-{SYNTH_SEEDS.stop - 1} has speaker {speaker_id} with crop {crop}")
