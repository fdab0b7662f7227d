"""
Questions about labelled real scans and their answers, from the labels alone (no ROS).

Labels follow mOSD: 0 invalid, 1-9 the supporting table, >= 20 objects with ``label // 10``
the object (its parts share it). Everything an answer needs is measured on the labelled
points, in a table frame (z up from the table plane fitted to the table's points, x along the
camera's view, y to its left):

- **count** "How many objects are on the table?": the number of labelled objects (stacked ones
  too: they stand on the table, if on another box).
- **tallest_color** "What color is the tallest object?": the object with the largest height
  extent, asked only when it beats the runner-up by ``tallest_ratio`` (the data engine's rule)
  and when one colour name dominates its pixels (``min_color_share``, ``color_margin``; printed
  packages often have no dominant colour, and then it is not asked).
- **exists** "Is there a box?" / "Is there a cylinder?": shapes from the points' normals
  (:func:`shape_of`); round objects (cans, mugs, bowls, tins: mOSD's "cylindric objects")
  count as cylinders.
- **left_of** "What is left of the {anchor}?": asked where exactly one object lies left of the
  anchor (the data engine's direction rule, with a ``direction_margin`` for table tops) and
  the anchor is named uniquely by shape, or by colour and shape; an answer is right when the
  object it names is of the right shape class ("the mug" for a round one), or, naming no
  object, it gives the right colour.

Colour names are the data engine's ten (red, green, blue, yellow, orange, purple, white, black,
brown, grey), given per pixel from hue, saturation and value (:func:`color_names`) after a
white-patch balance of the scan (:func:`white_balance`: the brightest whites become neutral).
The agent itself sees the scan's colours unbalanced, as a robot's camera gives them.
"""

from dataclasses import dataclass, field
import re

from leo_ros.data.scene_questions import clearly_tallest, TALLEST_RATIO
from leo_ros.perception.scoring import FIRST_OBJECT_LABEL
from leo_ros.real.scan import pose_from_plane
from leo_ros.sim.graph import classify_direction
from leo_ros.sim.scene import CATEGORIES
import numpy as np

#: words that name each shape class in an answer
SHAPE_WORDS = {'box': ('box', 'boxes', 'carton', 'package'),
               'cylinder': ('cylinder', 'cylinders', 'can', 'mug', 'cup', 'bowl', 'tin', 'jar')}
#: every object word an answer may use: the data engine's categories, the floor, shape words
CATEGORY_WORDS = frozenset(CATEGORIES + ('floor', 'wall', 'ball')
                           + SHAPE_WORDS['box'] + SHAPE_WORDS['cylinder'])
NUMBER_WORDS = ('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine',
                'ten', 'eleven', 'twelve')
KINDS = ('count', 'tallest_color', 'exists', 'left_of')


@dataclass
class QuestionConfig:
    """
    Ground-truth rules.

    :param tallest_ratio: the tallest object must be this much taller than the runner-up
    :param min_color_share: an object has a colour when one name covers this share of it...
    :param color_margin: ... and this many times the share of the next name
    :param direction_margin: smallest offset along the dominant axis for left of [m]
    :param min_object_points: labelled objects with fewer points are ignored
    """

    tallest_ratio: float = TALLEST_RATIO      # the data engine's rule
    min_color_share: float = 0.35
    color_margin: float = 1.5
    direction_margin: float = 0.05
    min_object_points: int = 200

    def __post_init__(self):
        if not self.tallest_ratio >= 1.0:
            raise ValueError(f'QuestionConfig.tallest_ratio must be >= 1, '
                             f'got {self.tallest_ratio}')
        if not self.color_margin >= 1.0:
            raise ValueError(f'QuestionConfig.color_margin must be >= 1, got {self.color_margin}')
        if not 0.0 < self.min_color_share <= 1.0:
            raise ValueError(f'QuestionConfig.min_color_share must be in (0, 1], '
                             f'got {self.min_color_share}')
        if not self.direction_margin >= 0:
            raise ValueError(f'QuestionConfig.direction_margin must be >= 0, '
                             f'got {self.direction_margin}')
        if int(self.min_object_points) < 1:
            raise ValueError(f'QuestionConfig.min_object_points must be >= 1, '
                             f'got {self.min_object_points}')


@dataclass
class RealObject:
    """One labelled object, measured in the table frame."""

    object_id: int                  # label // 10
    center: np.ndarray              # (3,) box centre [m], table frame
    height: float                   # height extent [m]
    shape: str                      # 'box' or 'cylinder'
    color: str                      # dominant colour name, '' when none dominates
    color_share: float
    points: int


@dataclass
class RealQuestion:
    """A question, its answer and what counts as right."""

    kind: str                       # one of KINDS
    text: str
    answer: str                     # the expected answer, as words
    accept: tuple = ()              # words any of which makes an answer right
    reject: tuple = ()              # words that make an answer wrong (e.g. 'no' for 'yes')
    target_ids: list = field(default_factory=list)


def table_frame(xyz, labels):
    """
    Return the camera-to-table transform (4, 4) from the table's labelled points.

    :raise ValueError: when the scan has fewer than 100 valid table points
    """
    valid = np.isfinite(xyz).all(axis=-1)
    table = xyz[valid & (labels >= 1) & (labels < 10)].astype(np.float64)   # (T, 3)
    if len(table) < 100:
        raise ValueError(f'only {len(table)} labelled table points')
    sample = table[np.linspace(0, len(table) - 1, min(len(table), 20000)).astype(int)]
    center = sample.mean(axis=0)
    up = np.linalg.svd(sample - center, full_matrices=False)[2][2]
    if up.dot(-center) < 0:                      # towards the camera
        up = -up
    # the scan's map axes (x along the view, z up); the origin at the table points' centroid
    transform, _ = pose_from_plane(up, -up.dot(center))
    transform[:3, 3] = -transform[:3, :3] @ center
    return transform


def color_names(rgb) -> np.ndarray:
    """
    Name each colour with one of the data engine's ten words.

    :param rgb: (N, 3) in [0, 1]
    :return: (N,) str
    """
    rgb = np.clip(np.nan_to_num(np.asarray(rgb, np.float64)), 0.0, 1.0)
    high, low = rgb.max(axis=1), rgb.min(axis=1)
    spread = np.maximum(high - low, 1e-9)
    saturation = np.where(high > 0, (high - low) / np.maximum(high, 1e-9), 0.0)
    r, g, b = rgb.T
    hue = np.where(high == r, ((g - b) / spread) % 6,
                   np.where(high == g, (b - r) / spread + 2, (r - g) / spread + 4)) * 60.0
    names = np.full(len(rgb), 'grey', object)
    names[(saturation < 0.2) & (high > 0.65)] = 'white'
    chroma = saturation >= 0.2
    bands = (('red', 0, 15), ('orange', 15, 40), ('yellow', 40, 70), ('green', 70, 170),
             ('blue', 170, 260), ('purple', 260, 330), ('red', 330, 361))
    for name, start, end in bands:
        names[chroma & (hue >= start) & (hue < end)] = name
    names[chroma & (hue >= 15) & (hue < 40) & (high < 0.55)] = 'brown'
    names[high < 0.2] = 'black'
    return names


def white_balance(rgb, valid) -> np.ndarray:
    """
    Balance colours so that the scene's brightest whites are neutral (white patch).

    :param rgb: (H, W, 3) in [0, 1]; ``valid`` (H, W) the pixels to measure on
    :return: (H, W, 3) balanced, clipped to [0, 1]
    """
    rgb = np.nan_to_num(np.asarray(rgb, np.float64))
    reference = np.percentile(rgb[valid], 99, axis=0) if valid.any() else np.ones(3)
    gain = reference.max() / np.maximum(reference, 1e-6)
    return np.clip(rgb * gain, 0.0, 1.0)


def normals(xyz, step=3) -> np.ndarray:
    """Return per-pixel normals of an organised cloud (H, W, 3), NaN at the border."""
    dx = np.full_like(xyz, np.nan)
    dy = np.full_like(xyz, np.nan)
    dx[:, step:-step] = xyz[:, 2 * step:] - xyz[:, :-2 * step]
    dy[step:-step] = xyz[2 * step:] - xyz[:-2 * step]
    cross = np.cross(dx, dy)
    return cross / np.linalg.norm(cross, axis=-1, keepdims=True)


def shape_of(object_normals, up) -> str:
    """
    Tell a box from a round object by its surface normals (camera frame).

    A box's normals are vertical (top) or horizontal (sides) with the sides in at most two
    directions 90 degrees apart; a round object's turn continuously: many tilted normals, or
    side normals spread over more than a quadrant. Checked against the 31 objects of the 13
    mOSD learn scenes by eye (docs/bags.md).

    :param object_normals: (N, 3) unit normals (any sign)
    :param up: (3,) table normal
    :return: 'box' or 'cylinder'
    """
    n = np.asarray(object_normals, np.float64)
    n = n[np.isfinite(n).all(axis=1)]
    if len(n) < 20:
        return 'box'
    tilt = np.degrees(np.arccos(np.clip(np.abs(n @ up), 0.0, 1.0)))
    tilted = float(((tilt > 25) & (tilt < 65)).mean())
    sides = n[tilt > 65]
    if len(sides) < 20:
        return 'box' if tilted < 0.25 else 'cylinder'
    east = np.cross(up, [1.0, 0.0, 0.0])
    east /= np.linalg.norm(east)
    north = np.cross(up, east)
    angle = np.arctan2(sides @ north, sides @ east)
    fourfold = float(np.abs(np.exp(4j * angle).mean()))     # 1: faces 90 degrees apart
    return 'box' if tilted < 0.25 and fourfold > 0.5 else 'cylinder'


def real_objects(xyz, rgb, labels, config: QuestionConfig = None):
    """
    Measure the labelled objects of an organised scan.

    :param xyz: (H, W, 3) camera frame; ``rgb`` the same shape or None; ``labels`` (H, W)
    :return: list of :class:`RealObject` (largest first) and the camera-to-table transform
    """
    config = config or QuestionConfig()
    labels = np.asarray(labels).astype(np.int64)
    transform = table_frame(xyz, labels)
    up = transform[2, :3]
    surface = normals(xyz)
    valid = np.isfinite(xyz).all(axis=-1)
    balanced = None if rgb is None else white_balance(rgb, valid)
    found = []
    for object_id in np.unique(labels[labels >= FIRST_OBJECT_LABEL] // 10):
        mask = valid & (labels >= FIRST_OBJECT_LABEL) & (labels // 10 == object_id)
        if mask.sum() < config.min_object_points:
            continue
        points = xyz[mask] @ transform[:3, :3].T + transform[:3, 3]          # (N, 3)
        low, high = np.percentile(points, 2, axis=0), np.percentile(points, 98, axis=0)
        color, share = '', 0.0
        if balanced is not None:
            words, counts = np.unique(color_names(balanced[mask]), return_counts=True)
            order = np.argsort(-counts)
            share = float(counts[order[0]] / counts.sum())
            second = float(counts[order[1]] / counts.sum()) if len(order) > 1 else 0.0
            if share >= config.min_color_share and share >= config.color_margin * second:
                color = str(words[order[0]])
        found.append(RealObject(object_id=int(object_id), center=(low + high) / 2,
                                height=float(high[2] - low[2]),
                                shape=shape_of(surface[mask], up),
                                color=color, color_share=share, points=int(mask.sum())))
    found.sort(key=lambda o: -o.points)
    return found, transform


def direction(a: RealObject, b: RealObject, margin: float):
    """Return where ``a`` is relative to ``b`` from the camera (the data engine's rule)."""
    forward, left = (a.center - b.center)[:2]
    return classify_direction(forward, left, margin)


def name_of(target: RealObject, objects) -> str:
    """Return a unique name ('the box', 'the red box') for ``target``, or '' if none is."""
    same_shape = [o for o in objects if o.shape == target.shape]
    if len(same_shape) == 1:
        return f'the {target.shape}'
    if target.color and sum(o.color == target.color for o in same_shape) == 1:
        return f'the {target.color} {target.shape}'
    return ''


def questions(objects, config: QuestionConfig = None):
    """Return the :class:`RealQuestion` list a scene's objects support (module docstring)."""
    config = config or QuestionConfig()
    asked = []
    if not objects:
        return asked
    asked.append(RealQuestion('count', 'How many objects are on the table?',
                              str(len(objects)), accept=(str(len(objects)),),
                              target_ids=[o.object_id for o in objects]))
    best = clearly_tallest([o.height for o in objects], config.tallest_ratio)
    if best is not None and objects[best].color:
        top = objects[best]
        asked.append(RealQuestion('tallest_color', 'What color is the tallest object?',
                                  top.color, accept=(top.color,), target_ids=[top.object_id]))
    for shape in ('box', 'cylinder'):
        present = any(o.shape == shape for o in objects)
        asked.append(RealQuestion('exists', f'Is there a {shape}?', 'yes' if present else 'no',
                                  accept=('yes',) if present else ('no',),
                                  reject=('no',) if present else ('yes',),
                                  target_ids=[o.object_id for o in objects if o.shape == shape]))
    for anchor in objects:
        name = name_of(anchor, objects)
        holders = [o for o in objects if o is not anchor and
                   direction(o, anchor, config.direction_margin) == 'left of']
        if not name or len(holders) != 1:
            continue
        target = holders[0]
        accept = SHAPE_WORDS[target.shape] + ((target.color,) if target.color else ())
        answer = f'the {target.color} {target.shape}'.replace('  ', ' ')
        asked.append(RealQuestion('left_of', f'What is left of {name}?', answer, accept=accept,
                                  target_ids=[target.object_id]))
    return asked


def answer_words(text: str):
    """Return the lower-case words of an answer ('gray' read as 'grey', numbers as digits)."""
    words = re.findall(r'[a-z0-9]+', str(text).lower())
    return ['grey' if w == 'gray' else str(NUMBER_WORDS.index(w)) if w in NUMBER_WORDS else w
            for w in words]


def is_right(question: RealQuestion, text: str) -> bool:
    """Score an answer: one accepted word and no rejected one (counts: the first number)."""
    words = answer_words(text)
    if question.kind == 'count':
        numbers = [w for w in words if w.isdigit()]
        return bool(numbers) and numbers[0] == question.answer
    if any(w in question.reject for w in words):
        return False
    if question.kind == 'left_of':      # a named object must be of the right shape class
        named = [w for w in words if w in CATEGORY_WORDS]
        if named:
            return any(w in question.accept for w in named)
    return any(w in question.accept for w in words)
