"""The articulatory measures (the shared DESIGN.md §5b) on images with known answers: the canonical grid
placed in a 96-px frame, tissue everywhere, air drawn where the test says (at 8x, then
averaged, blurred and noisy like a scan)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from skimage.draw import polygon as fill

from rtmri.articulation import compare
from rtmri.articulation import grid as G
from rtmri.articulation import regions as R
from rtmri.articulation.measure import measure
from rtmri.articulation.outlines import first_gap_along, in_time, to_clip

SIZE = 96
MM_PER_PX = 1.25
OFFSET_PX = np.array([40.0, 45.0])  # where the canonical origin lands: the whole grid inside the frame
SUPERSAMPLE = 8
TISSUE, AIR = 0.6, 0.04
OUTSIDE_AIR_ROWS = 12  # a strip of air at the top of every frame, away from the grid (as in a scan)


def clip_grid():
    marks = G.CANONICAL_LANDMARKS_MM / MM_PER_PX + OFFSET_PX
    return G.grid_from_landmarks(dict(zip(G.LANDMARKS, marks)), MM_PER_PX, "test")


def px(points_mm) -> np.ndarray:
    return np.asarray(points_mm, float) / MM_PER_PX + OFFSET_PX


def scan(air_polygons_px=(), air_mask_fine=None, seed: int = 0) -> np.ndarray:
    """uint8 frame: tissue with air in the polygons (x, y px) and in the fine mask."""
    fine = np.full((SIZE * SUPERSAMPLE,) * 2, TISSUE)
    fine[: OUTSIDE_AIR_ROWS * SUPERSAMPLE] = AIR
    for polygon in air_polygons_px:
        points = (np.asarray(polygon, float) + 0.5) * SUPERSAMPLE - 0.5
        rows, cols = fill(points[:, 1], points[:, 0], fine.shape)
        fine[rows, cols] = AIR
    if air_mask_fine is not None:
        fine[air_mask_fine] = AIR
    image = fine.reshape(SIZE, SUPERSAMPLE, SIZE, SUPERSAMPLE).mean(axis=(1, 3))
    image = gaussian_filter(image, 0.7) + np.random.default_rng(seed).normal(0, 0.015, image.shape)
    return np.clip(np.round(image * 255), 0, 255).astype(np.uint8)


def lip_opening(top_mm: float, bottom_mm: float) -> np.ndarray:
    """The air between the lips: a band across the lip gridlines (x 54 to 66 mm)."""
    return px([(54, top_mm), (66, top_mm), (66, bottom_mm), (54, bottom_mm)])


def test_closed_lips_measure_zero_and_open_lips_their_gap():
    grid = clip_grid()
    closed = measure(scan(), grid)
    opened = measure(scan([lip_opening(5.0, 13.75)]), grid)
    assert closed.degree_mm[R.LIPS][0] == 0.0 and closed.closed(R.LIPS)[0]
    assert opened.degree_mm[R.LIPS][0] == pytest.approx(8.75, abs=0.4 * MM_PER_PX)
    assert not opened.closed(R.LIPS)[0]
    lips = grid.lines_of(R.LIPS)
    assert np.allclose(opened.distance_mm[0, lips], 8.75, atol=0.4 * MM_PER_PX)


def tongue_and_palate(grid: G.AnalysisGrid, tongue_px: float, palate_px: float) -> np.ndarray:
    """Fine air mask: the ring between a round tongue (radius tongue_px around the radial
    lines' centre) and a round palate (palate_px), above the centre."""
    centre = grid.inner[grid.lines_of(R.PALATAL)[0]]
    y, x = (np.mgrid[0 : SIZE * SUPERSAMPLE, 0 : SIZE * SUPERSAMPLE] + 0.5) / SUPERSAMPLE - 0.5
    distance = np.hypot(x - centre[0], y - centre[1])
    return (distance > tongue_px) & (distance < palate_px) & (y < centre[1])


@pytest.mark.parametrize("shift_px", [1, 2, 3])
def test_moving_the_tongue_by_n_pixels_moves_the_constriction_by_n_pixels(shift_px):
    grid = clip_grid()
    before = measure(scan(air_mask_fine=tongue_and_palate(grid, 18.0, 27.0)), grid)
    after = measure(scan(air_mask_fine=tongue_and_palate(grid, 18.0 + shift_px, 27.0), seed=1), grid)
    assert before.degree_mm[R.PALATAL][0] == pytest.approx(9.0 * MM_PER_PX, abs=0.3 * MM_PER_PX)
    change = before.degree_mm[R.PALATAL][0] - after.degree_mm[R.PALATAL][0]
    assert change == pytest.approx(shift_px * MM_PER_PX, abs=0.25 * MM_PER_PX)


def test_a_gap_beyond_a_lines_reach_is_a_closure():
    """The tongue touching the velum: the next air (the nasopharynx above) is not the gap."""
    grid = clip_grid()
    line = grid.lines_of(R.VELAR)[3]
    beyond = grid.inner[line] + grid.direction[line] * (grid.reach[line] + 5.0)
    far_air = [beyond + d for d in ((-3, -3), (3, -3), (3, 3), (-3, 3))]
    assert measure(scan([far_air]), grid).distance_mm[0, line] == 0.0


def test_fixed_wall_ends_the_gap_where_bone_is_as_dark_as_air():
    grid = clip_grid()
    walled = grid.lines_of(R.ALVEOLAR)[0]
    with_wall = G.AnalysisGrid(grid.inner, grid.outer, grid.reach, np.where(np.arange(len(grid)) == walled, 30.0, np.nan),
                               grid.regions, grid.mm_per_px)
    start = grid.inner[walled] + grid.direction[walled] * 20.0
    end = grid.inner[walled] + grid.direction[walled] * 36.0
    normal = np.array([-grid.direction[walled][1], grid.direction[walled][0]]) * 2.0
    dark = [start - normal, end - normal, end + normal, start + normal]  # air then bone: one dark run
    assert measure(scan([dark]), grid).distance_mm[0, walled] == pytest.approx(36.0 * MM_PER_PX - 20.0 * MM_PER_PX, abs=0.6)
    assert measure(scan([dark]), with_wall).distance_mm[0, walled] == pytest.approx(10.0 * MM_PER_PX, abs=0.5)


def test_geometry_truth_counts_the_first_air_after_tissue():
    """The exact-crossing truth: head, then an air shape, then a tissue shape over part of it."""
    grid = G.AnalysisGrid(np.array([[0.0, 10.0]]), np.array([[40.0, 10.0]]), np.array([30.0]), np.array([np.nan]), (R.LIPS,), 1.0)
    head = np.array([[-5, 0], [60, 0], [60, 20], [-5, 20]], float)
    air = np.array([[5, 5], [35, 5], [35, 15], [5, 15]], float)
    tongue = np.array([[0, 5], [12.5, 5], [12.5, 15], [0, 15]], float)
    shapes = [(head, False), (air, True), (tongue, False)]
    assert first_gap_along(shapes, grid)[0] == pytest.approx(22.5)
    walled = G.AnalysisGrid(grid.inner, grid.outer, grid.reach, np.array([20.0]), grid.regions, 1.0)
    assert first_gap_along(shapes, walled)[0] == pytest.approx(7.5)
    short = G.AnalysisGrid(grid.inner, grid.outer, np.array([10.0]), grid.wall, grid.regions, 1.0)
    assert first_gap_along(shapes, short)[0] == 0.0  # the air begins past the reach


def test_landmarks_give_the_canonical_grid_scaled_and_moved():
    grid = clip_grid()
    inner, outer, names = G.canonical_lines()
    assert np.allclose(grid.inner, px(inner)) and np.allclose(grid.outer, px(outer))
    assert np.allclose(grid.reach, np.array(G.CANONICAL_REACH_MM) / MM_PER_PX)
    assert grid.regions == names and np.isnan(grid.wall).all()  # a real speaker's palate is not the canonical one
    assert len(grid.tract_lines) >= 25 and set(names) == set(R.REGIONS)
    again = G.AnalysisGrid.from_json(json.loads(json.dumps(grid.to_json())))
    assert np.allclose(again.inner, grid.inner, atol=1e-3) and again.mm_per_px == grid.mm_per_px


def test_a_missing_landmark_is_named():
    marks = dict(zip(G.LANDMARKS, G.CANONICAL_LANDMARKS_MM))
    del marks["palate"]
    with pytest.raises(G.GridError, match="palate"):
        G.grid_from_landmarks(marks, 1.0, "speaker X")


def test_grid_and_outlines_take_the_same_crop_and_resize():
    """A point on the grid and the same point among the outlines land on the same clip pixel."""
    grid = G.AnalysisGrid(np.array([[130.0, 150.0]]), np.array([[130.0, 100.0]]), np.array([40.0]), np.array([np.nan]), (R.LIPS,), 1.0)
    crop, size = (100, 80, 120, 120), 96
    clip_grid = grid.to_clip(crop, size)
    clip_points = to_clip({"outline_tongue": np.array([[[130.0, 150.0]]])}, crop, size)["outline_tongue"][0, 0]
    assert np.allclose(clip_grid.inner[0], clip_points)
    assert clip_grid.mm_per_px == pytest.approx(120 / 96) and clip_grid.reach[0] == pytest.approx(40 * 96 / 120)
    # a source pixel centre maps on the clip pixel centre that covers it: (u - x + 0.5) * size / w - 0.5
    assert np.allclose(clip_points, [(30 + 0.5) * 0.8 - 0.5, (70 + 0.5) * 0.8 - 0.5])


def test_outlines_follow_the_frames_conversion_weights():
    from rtmri.video.frame_rate import weight_matrix

    points = np.arange(14, dtype=float)[:, None, None] * np.ones((1, 3, 2))  # moves 1 px per source frame, 14 fps
    weights = weight_matrix(np.arange(14) / 14.0, 25, "linear", 25.0, 14.0)
    converted = in_time({"outline_tongue": points, "static_bone_0": np.zeros((1, 3, 2))}, weights)
    expected = np.minimum(np.arange(25) / 25.0 * 14.0, 13.0)  # linear in time, held after the last frame
    assert np.allclose(converted["outline_tongue"][:, 0, 0], expected, atol=1e-5)
    assert converted["static_bone_0"].shape == (1, 3, 2)


def test_comparison_measures():
    truth = np.array([3.0, 1.0, 0.0, 0.0, 2.0, 4.0])
    assert compare.pearson(truth, truth * 0.5 + 1) == pytest.approx(1.0)
    assert compare.pearson(truth, np.full(6, 2.0)) == 0.0  # a still picture follows nothing
    assert compare.amplitude_ratio(truth, truth * 0.5) == pytest.approx(0.5)
    assert compare.rmse(truth, truth + 1.0) == pytest.approx(1.0)
    assert compare.precision_recall({"tp": 3, "fn": 2, "shut": 4, "fp": 1}) == pytest.approx((0.75, 0.6))


def test_closures_are_counted_during_stops_and_nasals_at_their_place():
    grid = clip_grid()
    frames = np.stack([scan(), scan([lip_opening(5.0, 13.75)]), scan(), scan([lip_opening(5.0, 13.75)])])
    truth = measure(frames, grid)
    still_open = measure(np.repeat(frames[1:2], 4, axis=0), grid)
    phones = [{"phone": "m", "start": 0.0, "end": 0.08}, {"phone": "a", "start": 0.08, "end": 0.16}]
    counts = compare.closure_counts(truth, truth, phones)[R.LIPS]
    # frame 0 closed, frame 1 open, both in /m/; frame 2 closed, frame 3 open in /a/
    assert counts == {"tp": 1, "fn": 0, "frames": 2, "shut": 2, "fp": 0, "quiet": 0, "quiet_fp": 0}
    assert compare.closure_counts(truth, still_open, phones)[R.LIPS] == {"tp": 0, "fn": 1, "frames": 2, "shut": 0, "fp": 0,
                                                                         "quiet": 0, "quiet_fp": 0}
    errors = compare.phone_errors(truth, still_open, [{"phone": "m", "start": 0.0, "end": 0.16}])
    assert errors[0][:2] == ("m", R.LIPS) and errors[0][2] > 4.0
    # lips kept shut into the vowel: right at the /m/, and a frame late is timing; two frames late is wrong
    phones = [{"phone": "m", "start": 0.0, "end": 0.04}, {"phone": "a", "start": 0.04, "end": 0.2}]
    truth = measure(np.stack([frames[0]] + [frames[1]] * 4), grid)
    shut_on = measure(np.stack([frames[0]] * 3 + [frames[1]] * 2), grid)
    assert compare.precision_recall(compare.closure_counts(truth, shut_on, phones)[R.LIPS]) == pytest.approx((2 / 3, 1.0))


def test_a_closure_held_through_a_pause_is_counted_apart_from_the_speech():
    grid = clip_grid()
    shut, open_ = scan(), scan([lip_opening(5.0, 13.75)])
    phones = [{"phone": "m", "start": 0.0, "end": 0.04}, {"phone": "a", "start": 0.04, "end": 0.08}]  # frames 0, 1; 2-5 quiet
    truth = measure(np.stack([shut] + [open_] * 5), grid)
    held = measure(np.stack([shut] * 5 + [open_]), grid)  # shut on through frame 4
    counts = compare.closure_counts(truth, held, phones)[R.LIPS]
    # frame 1 is a frame late (timing); of the quiet frames 2-5, 2-4 are shut where the truth is open
    assert (counts["fp"], counts["quiet"], counts["quiet_fp"]) == (0, 4, 3)
    assert compare.precision_recall(counts) == (1.0, 1.0)  # what the speech alone says


def test_sampled_truth_of_every_frame_equals_the_exact_crossings():
    from rtmri.articulation.outlines import TRUTH_STEP_PX, _shapes_in_order, true_gaps

    grid = clip_grid()
    head = px([(-60, -60), (90, -60), (90, 60), (-60, 60)])
    lips = lip_opening(5.0, 13.75)
    arrays = {"shape_head": np.stack([head, head]), "shape_airway": np.stack([lips, lips + [0, 1.5]])}
    sampled = true_gaps(arrays, grid, (SIZE, SIZE))
    exact = np.array([first_gap_along(_shapes_in_order(arrays, frame), grid) for frame in range(2)])
    assert np.allclose(sampled, exact, atol=2 * TRUTH_STEP_PX)
    assert np.allclose(sampled[:, grid.lines_of(R.LIPS)], 8.75 / MM_PER_PX, atol=2 * TRUTH_STEP_PX)


def tip_touch(grid: G.AnalysisGrid, upper_px, touch_deg: float, lowered_mm: float = 0.0, bone_mm: float = 0.0) -> np.ndarray:
    """Fine air mask: the mouth in the tongue tip's sector (angles 10-60 degrees up from forward,
    around the radial lines' centre) between the tongue and the upper outline at upper_px(angle
    in radians) from the centre. The tongue touches the outline at touch_deg and falls away 0.5 mm
    per degree on either side (1 degree flat), at most 4 mm, lowered by lowered_mm; bone_mm of
    bone (as dark as air) above the outline."""
    centre = grid.inner[grid.lines_of(R.ALVEOLAR)[0]]
    y, x = (np.mgrid[0 : SIZE * SUPERSAMPLE, 0 : SIZE * SUPERSAMPLE] + 0.5) / SUPERSAMPLE - 0.5
    angle = np.arctan2(centre[1] - y, x - centre[0])
    radius = np.hypot(x - centre[0], y - centre[1])
    upper = upper_px(angle)
    gap_mm = np.clip(0.5 * (np.abs(np.rad2deg(angle) - touch_deg) - 1.0), 0.0, 4.0) + lowered_mm
    sector = (angle > np.deg2rad(10.0)) & (angle < np.deg2rad(60.0))
    return sector & (radius > upper - gap_mm / MM_PER_PX) & (radius < upper + bone_mm / MM_PER_PX)


def gridline_gaps_mm(frames: np.ndarray, grid: G.AnalysisGrid) -> np.ndarray:
    """The gaps the gridlines alone read (no probes)."""
    from rtmri.articulation.measure import AIR_PERCENTILE, air_gaps, profiles, sample_positions

    s, _ = sample_positions(grid)
    air = np.percentile(frames.reshape(len(frames), -1), AIR_PERCENTILE, axis=1).astype(np.float32) / 255.0
    return air_gaps(profiles(frames, grid), s, air, grid.reach, grid.wall) * grid.mm_per_px


def test_the_tongue_tip_touching_between_the_gridlines_is_a_closure():
    """The tongue touches the upper outline only below the last alveolar line (28 degrees), behind
    the incisors where the synthesizer closes /t d n/: the gridlines there read it 3 mm open, the
    probe lines between them closed, and the measure shows it as a state shows a closure (no gap
    on the tongue tip's narrowest line); lowered 3 mm it is open and every gap the gridlines'."""
    grid = clip_grid()  # a real speaker's: no fixed walls, the upper outline is tissue
    alveolar = grid.lines_of(R.ALVEOLAR)
    palate = lambda angle: np.full_like(angle, 45.0 / MM_PER_PX)  # noqa: E731
    frames = np.stack([scan(air_mask_fine=tip_touch(grid, palate, 21.0, lowered), seed=k) for k, lowered in enumerate((0.0, 3.0))])
    measures = measure(frames, grid)
    gridlines = gridline_gaps_mm(frames, grid)
    assert np.nanmin(gridlines[0, alveolar]) >= 2.5  # no gridline reads the contact
    assert measures.closed(R.ALVEOLAR).tolist() == [True, False]
    narrowest = alveolar[np.nanargmin(gridlines[0, alveolar])]
    expected = gridlines.copy()
    expected[0, narrowest] = 0.0
    assert np.array_equal(measures.distance_mm, expected, equal_nan=True)


def test_the_tongue_tip_touching_the_dark_incisors_between_the_gridlines_is_a_closure():
    """With the speaker's fixed walls (a synthetic speaker's): the incisors, as dark as air, go on
    from the last two alveolar lines' walls (their chord); the tongue touching them between the
    last alveolar line and the first lip line is a closure, 3 mm lowered it is not."""
    import dataclasses

    grid = dataclasses.replace(clip_grid(), wall=np.array(G.CANONICAL_WALL_MM) / MM_PER_PX)
    alveolar = grid.lines_of(R.ALVEOLAR)
    centre = grid.inner[alveolar[0]]
    ends = [grid.inner[k] + grid.direction[k] * grid.wall[k] for k in alveolar[-2:]]
    chord = ends[1] - ends[0]

    def incisors(angle):  # distance from the centre to the chord's line along each angle
        direction = np.stack([np.cos(angle), -np.sin(angle)], axis=-1)
        cross = lambda u, v: u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]  # noqa: E731
        return cross(ends[0] - centre, chord) / cross(direction, chord)

    frames = np.stack([scan(air_mask_fine=tip_touch(grid, incisors, 21.0, lowered, bone_mm=6.0), seed=k)
                       for k, lowered in enumerate((0.0, 3.0))])
    measures = measure(frames, grid)
    assert np.nanmin(gridline_gaps_mm(frames, grid)[0, alveolar]) >= 2.0
    assert measures.closed(R.ALVEOLAR).tolist() == [True, False]
    no_walls = measure(frames, dataclasses.replace(grid, wall=np.full(len(grid), np.nan)))
    assert not no_walls.closed(R.ALVEOLAR)[0]  # the dark bone read as air: the wall makes the contact
