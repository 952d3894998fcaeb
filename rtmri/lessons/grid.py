"""The analysis grid (rtmri.articulation) of the frames a bundle draws: where the comparison
reads the constrictions. A bundle carries its reference speaker's grid in its manifest
(``analysis_grid``, in the pixels of the model's frames), written by `rtmri export` from a
prepared dataset that has its speakers' grids."""

from __future__ import annotations

from rtmri.articulation.grid import MANIFEST_KEY, AnalysisGrid, GridError, grid_of_bundle


def bundle_grid(bundle) -> AnalysisGrid:
    grid = grid_of_bundle(bundle.manifest)
    if grid is None:
        raise GridError(f"{bundle.path}: no {MANIFEST_KEY} in the manifest: this bundle has no analysis grid to read the "
                        "constrictions on; export it again with its grid: rtmri export CHECKPOINT OUT --data DATASET "
                        "(a dataset prepared with its speakers' grids)")
    return grid
