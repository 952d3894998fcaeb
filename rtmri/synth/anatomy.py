"""The head around VocalTractLab's vocal tract, as filled shapes with MRI-like intensities.

VocalTractLab draws the airway walls only; a midsagittal MRI slice also shows the face,
brain, skull, spine and nasal cavity. Those are drawn here in VocalTractLab millimetres
(x forward, y down), placed around VocalTractLab's own rest outlines. Fixed shapes
(``static_shapes``) are drawn once per speaker; shapes that follow the tract state
(``tract_shapes``): the airway, tongue, velum, epiglottis, lips and chin (the chin and
mandible move rigidly with the jaw, fitted from the floor of the mouth).

Intensities are proton-density/T1-like: fat brightest, muscle and tongue bright, brain
grey, bone cortex, teeth and air dark.

The polygons below are drawn around JD3's rest tract; a speaker with another tract gets
them carried onto its own rest outlines (``Head.for_tract``, a ``TractWarp``), so its palate
bone, incisors, nasal cavity, face and skull follow its own geometry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtmri.synth.geometry import Rigid
from rtmri.synth.outlines import FLOOR_OF_MOUTH, LOWER_INCISOR, MANDIBLE, VELUM_END, Outlines
from rtmri.synth.tract_warp import TractWarp

AIR = 0.0
SOFT_TISSUE = 0.55
FAT = 0.85
TONGUE = 0.62
VELUM = 0.6
EPIGLOTTIS = 0.58
GREY_MATTER = 0.42
CEREBELLUM = 0.47
WHITE_MATTER_TRACT = 0.62
CSF = 0.1
CORTICAL_BONE = 0.08
MARROW = 0.5
TOOTH = 0.04
DISC = 0.4
SPINAL_CORD = 0.45
NASAL_SEPTUM = 0.3
SINUS = 0.12

# Polygons are lists of (x, y) mm. The face profile, from the upper lip up over the head
# and down the back of the neck to below the image.
FACE_AND_SKULL = [
    (68.5, -8), (67, -14), (64, -18.5), (70, -21), (80, -25), (87, -30), (86, -36), (80, -47), (75, -60),
    (71, -72), (74, -82), (77, -95), (77, -110), (73, -125), (64, -142), (48, -158), (25, -170), (-5, -177),
    (-35, -176), (-65, -166), (-92, -146), (-112, -120), (-124, -92), (-127, -65), (-122, -40), (-112, -20),
    (-103, 5), (-99, 40), (-98, 80), (-100, 120), (-102, 170),
]
NECK_FRONT = [(2, 170), (3, 110), (6, 88), (9, 76)]
# Chin from below the jaw up to the labiomental fold, at rest; it moves with the jaw.
CHIN = [(24, 72), (40, 69), (53, 64), (60, 58), (62.5, 50), (61, 42), (59, 34), (62.5, 28)]
SCALP_FAT_MM = 3.0  # subcutaneous fat under the skin of the face, scalp and neck

BRAIN = [
    (62, -78), (66, -100), (63, -120), (54, -137), (40, -150), (20, -160), (-5, -166), (-33, -165), (-60, -156),
    (-84, -138), (-102, -115), (-112, -90), (-114, -68), (-108, -50), (-92, -38), (-72, -34), (-55, -36),
    (-45, -48), (-36, -58), (-20, -62), (0, -64), (25, -68), (45, -70),
]
VAULT = BRAIN[:15]  # the skull follows the brain from the forehead round to the occiput
SKULL_OFFSET_MM, SKULL_WIDTH_MM, DIPLOE_WIDTH_MM = 4.5, 6.0, 2.5
CEREBELLUM_ELLIPSE = ((-84, -62), (24, 19))
CORPUS_CALLOSUM = [(-48, -98), (-35, -112), (-10, -120), (15, -116), (28, -104), (24, -96)]
VENTRICLE_SHIFT_MM = (0.0, 6.0)
BRAINSTEM = [(-36, -95), (-18, -92), (-28, -60), (-40, -40), (-48, -28), (-60, -30), (-50, -48), (-42, -70)]

SPINAL_CANAL = [(-54, -30), (-44, -24), (-52, 0), (-56, 60), (-60, 170), (-80, 170), (-76, 60), (-72, 0), (-66, -30)]
CORD = [(-52, -28), (-48, -22), (-56, 0), (-60, 60), (-64, 170), (-74, 170), (-70, 60), (-67, 0), (-61, -26)]
VERTEBRA_FRONT_X = -38.0  # anterior surface of the vertebral bodies at y = 0 ...
VERTEBRA_SLOPE = -0.06  # ... moving back this much per mm down
VERTEBRA_DEPTH_MM = 15.0
VERTEBRA_BODIES_Y = [(-2, 24), (28, 42), (46, 60), (64, 78), (82, 96), (100, 114), (118, 132), (136, 150), (154, 168)]
DENS = [(-52, -2), (-41, -2), (-43, -14), (-50, -15)]
ATLAS_ARCH = ((-41, -9), (4.0, 5.0))
SPINOUS_PROCESS = ((-30.0, 6.0), (9.0, 5.0))  # behind the canal, relative to each body's back centre
CORTEX_MM = 1.5

NASAL_CAVITY = [(-6, -20), (-4, -42), (8, -58), (35, -63), (55, -58), (68, -42), (78, -30), (70, -25), (60, -22), (30, -20), (10, -19.5)]
NASAL_FLOOR_AIRWAY = [(-6, -19.5), (-6, -24), (20, -23.5), (50, -25), (66, -29), (76, -30), (70, -25), (60, -22), (30, -20.5), (10, -19.5)]
MIDDLE_MEATUS = [(2, -34), (30, -38), (60, -40)]
SPHENOID_SINUS = ((-14, -54), (6.0, 7.0))
FRONTAL_SINUS = ((68, -92), (4.0, 8.0))
NASOPHARYNX = [(-26.5, 9), (-25.5, -4), (-24.5, -14), (-21, -22), (-12, -26), (-5, -26), (-5, -19.5), (-10, -17), (-16, -10), (-20, 0), (-20, 9)]
HARD_PALATE = [(0, -14), (9, -13.5), (18, -16), (28, -17.8), (35, -16), (41, -9.5), (46, -4), (50, -12), (56, -18),
               (60, -22), (30, -20.5), (10, -19.5), (0, -19.5)]
PALATE_MARROW = [(1, -16.8), (10, -16.5), (20, -18.2), (30, -19.0), (45, -15), (52, -19)]
UPPER_INCISOR = [(47, 0), (53.4, 8), (55.4, 8), (55.4, 0), (54, -12), (50, -17), (47, -10)]
VELUM_THICKNESS_MM = 9.0  # soft palate, oral to nasal surface (adults: about 8-10 mm)

SYMPHYSIS = [(41, 29), (49, 27), (54, 33), (56, 43), (55, 53), (50, 60), (43, 61), (38, 55), (37, 44), (38, 35)]
LOWER_INCISOR_ROOT = [(51, 33), (46, 35)]
HYOID = ((3.0, 3.0), (5.0, 3.0))  # offset from the tongue root's lowest point, radii
TRACHEA_EXTENSION_MM = 90.0  # the airway continues below VocalTractLab's larynx


@dataclass(frozen=True)
class Shape:
    """A filled polygon (or, with width, a stroked polyline) of one intensity."""

    points: np.ndarray
    value: float
    width: float = 0.0  # mm; 0 fills the polygon


def ellipse(centre, radii, n: int = 36) -> np.ndarray:
    angle = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([centre[0] + radii[0] * np.cos(angle), centre[1] + radii[1] * np.sin(angle)], axis=1)


def offset_polyline(points, distance: float) -> np.ndarray:
    """Move each vertex along its averaged normal: a positive distance moves to the left of
    the walking direction as seen on screen (y down), e.g. inward for the face profile."""
    points = np.asarray(points, float)
    tangents = np.gradient(points, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True) + 1e-12
    normals = np.stack([tangents[:, 1], -tangents[:, 0]], axis=1)
    return points + distance * normals


def _with_cortex(outline: np.ndarray, inner_value: float = MARROW) -> list[Shape]:
    """A bone: dark cortex around marrow."""
    centre = outline.mean(axis=0)
    scale = np.maximum(1.0 - CORTEX_MM / (np.linalg.norm(outline - centre, axis=1).mean() + 1e-9), 0.2)
    return [Shape(outline, CORTICAL_BONE), Shape(centre + (outline - centre) * scale, inner_value)]


def _vertebrae() -> list[Shape]:
    shapes: list[Shape] = []
    front = lambda y: VERTEBRA_FRONT_X + VERTEBRA_SLOPE * y  # noqa: E731
    top, bottom = VERTEBRA_BODIES_Y[0][0], VERTEBRA_BODIES_Y[-1][1]
    column = [(front(top), top), (front(bottom), bottom), (front(bottom) - VERTEBRA_DEPTH_MM, bottom), (front(top) - VERTEBRA_DEPTH_MM, top)]
    shapes.append(Shape(np.array(column), DISC))
    for y0, y1 in VERTEBRA_BODIES_Y:
        corners = np.array([(front(y0), y0), (front(y1), y1), (front(y1) - VERTEBRA_DEPTH_MM, y1), (front(y0) - VERTEBRA_DEPTH_MM, y0)])
        shapes += _with_cortex(_rounded(corners))
        back_centre = ((front(y0) + front(y1)) / 2 - VERTEBRA_DEPTH_MM, (y0 + y1) / 2)
        offset, radii = SPINOUS_PROCESS
        shapes += _with_cortex(ellipse((back_centre[0] + offset[0], back_centre[1] + offset[1]), radii, 20))
    shapes += _with_cortex(np.array(DENS, float))
    shapes += _with_cortex(ellipse(*ATLAS_ARCH, 20))
    return shapes


def _rounded(corners: np.ndarray, cut: float = 0.2) -> np.ndarray:
    """Corner-cut a polygon once, so vertebral bodies are not sharp boxes."""
    nxt = np.roll(corners, -1, axis=0)
    return np.concatenate([corners + cut * (nxt - corners), nxt - cut * (nxt - corners)], axis=1).reshape(-1, 2)


def _reference_static_shapes() -> list[Shape]:
    """Everything that does not move with the tract, in drawing order, around JD3."""
    vault = np.array(VAULT, float)
    return [
        Shape(offset_polyline(FACE_AND_SKULL, SCALP_FAT_MM), FAT, width=2.0),
        Shape(offset_polyline(vault, -SKULL_OFFSET_MM), CORTICAL_BONE, width=SKULL_WIDTH_MM),
        Shape(offset_polyline(vault, -SKULL_OFFSET_MM), MARROW, width=DIPLOE_WIDTH_MM),
        Shape(np.array(BRAIN, float), GREY_MATTER),
        Shape(ellipse(*CEREBELLUM_ELLIPSE), CEREBELLUM),
        Shape(np.array(CORPUS_CALLOSUM, float), WHITE_MATTER_TRACT, width=5.0),
        Shape(np.array(CORPUS_CALLOSUM, float) + VENTRICLE_SHIFT_MM, CSF, width=4.0),
        Shape(np.array(BRAINSTEM, float), SPINAL_CORD),
        Shape(np.array(SPINAL_CANAL, float), CSF),
        Shape(np.array(CORD, float), SPINAL_CORD),
        *_vertebrae(),
        Shape(np.array(NASAL_CAVITY, float), NASAL_SEPTUM),
        Shape(np.array(NASAL_FLOOR_AIRWAY, float), AIR),
        Shape(np.array(MIDDLE_MEATUS, float), AIR, width=3.0),
        Shape(ellipse(*SPHENOID_SINUS), SINUS),
        Shape(ellipse(*FRONTAL_SINUS), SINUS),
        Shape(np.array(NASOPHARYNX, float), AIR),
        Shape(np.array(HARD_PALATE, float), CORTICAL_BONE),
        Shape(np.array(PALATE_MARROW, float), MARROW, width=1.5),
        Shape(np.array(UPPER_INCISOR, float), TOOTH),
    ]


@dataclass(frozen=True, eq=False)
class Head:
    """The drawn parts of one speaker's head, in its VocalTractLab mm."""

    warp: TractWarp

    @classmethod
    def reference(cls) -> "Head":
        return cls(TractWarp())

    @classmethod
    def for_tract(cls, reference_rest: Outlines, rest: Outlines) -> "Head":
        return cls(TractWarp(reference_rest, rest))

    def points(self, polygon) -> np.ndarray:
        return self.warp(np.asarray(polygon, float))

    def static_shapes(self) -> list[Shape]:
        return [Shape(self.warp(s.points), s.value, s.width * self.warp.scale) for s in _reference_static_shapes()]


def static_shapes(head: Head | None = None) -> list[Shape]:
    """Everything that does not move with the tract, in drawing order."""
    return (head or Head.reference()).static_shapes()


def jaw_motion(outlines: Outlines, rest: Outlines) -> Rigid:
    return Rigid.fit(rest["lower"][MANDIBLE], outlines["lower"][MANDIBLE])


def head_outline(outlines: Outlines, jaw: Rigid, head: Head) -> np.ndarray:
    """The skin: neck front, the chin (moved with the jaw), the lips, the fixed face and skull."""
    chin = jaw.apply(head.points(CHIN))
    return np.concatenate([head.points(NECK_FRONT), chin, outlines["lower"][-1:], outlines["upper"][-1:], head.points(FACE_AND_SKULL)])


def airway(outlines: Outlines) -> np.ndarray:
    """Pharynx, mouth and the space between the lips, continued down the trachea."""
    wall, larynx = outlines["pharynx_wall"], outlines["larynx"]
    down = np.array([0.0, TRACHEA_EXTENSION_MM])
    return np.concatenate([wall[:1] + down, wall, outlines["uvula"], outlines["upper"], outlines["lower"][::-1], larynx[::-1], larynx[:1] + down])


def tongue(outlines: Outlines) -> np.ndarray:
    """The tongue at the midline, closed underneath by the floor of the mouth."""
    return np.concatenate([outlines["tongue"], outlines["lower"][FLOOR_OF_MOUTH][::-1]])


def velum(outlines: Outlines, head: Head) -> np.ndarray:
    """Uvula and soft palate as one body: the uvula and oral surface VocalTractLab draws (back
    to the hard palate), then back along the nasal surface, VELUM_THICKNESS_MM above the oral
    one on its convex side (it cannot cross it), to the back of the uvula. Its front end lies
    under the hard palate's nasal surface; a fixed point there (the warped head's) could
    fall behind it and cross the body."""
    uvula, oral = outlines["uvula"], outlines["upper"][:VELUM_END]  # oral: from the uvula to the hard palate
    nasal = offset_polyline(oral, VELUM_THICKNESS_MM * head.warp.scale)  # to the left of back -> front: up
    return np.concatenate([uvula, oral, nasal[::-1]])


def tract_shapes(outlines: Outlines, rest: Outlines, head: Head | None = None) -> tuple[np.ndarray, list[Shape]]:
    """(skin outline, shapes drawn over the static head) for one tract state; rest is the
    speaker's rest tract, head its drawn parts (None: JD3's)."""
    head = head or Head.reference()
    jaw = jaw_motion(outlines, rest)
    lower = outlines["lower"]
    lower_incisor = np.concatenate([lower[LOWER_INCISOR], jaw.apply(head.points(LOWER_INCISOR_ROOT))])
    hyoid_offset, hyoid_radii = HYOID
    shapes = [
        *_with_cortex(jaw.apply(head.points(SYMPHYSIS))),
        *_with_cortex(ellipse(lower[0] + np.array(hyoid_offset), hyoid_radii, 16)),
        Shape(velum(outlines, head), VELUM),
        Shape(airway(outlines), AIR),
        Shape(tongue(outlines), TONGUE),
        Shape(outlines["epiglottis"], EPIGLOTTIS),
        Shape(lower_incisor, TOOTH),
    ]
    return head_outline(outlines, jaw, head), shapes
