"""Articulatory measures (the shared DESIGN.md §5b): the analysis grid, the distance function read from
images, constriction degree and location per region, region-of-interest intensities, and
the comparison of a generated video with the true one. numpy / scipy / scikit-image only:
the evaluator, the learner comparison and the streamer import it without torch."""
