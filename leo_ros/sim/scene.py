"""
Procedural indoor scenes: a room with floor and walls, furniture and small objects (no ROS).

The map frame has its origin at one corner of the room, x along its width, y along its depth
and z up. Every object stands upright (rotation about z only); ``z`` is its bottom.
"""

from dataclasses import dataclass, field
import math

from leo_ros.sim.geometry import (point_in_rectangle, point_rectangle_distance, primitive_mesh,
                                  rectangle_corners, rectangles_overlap, rotation_z)
# the world's words (re-exported: sim.scene is where the world's users look for them)
from leo_ros.vocabulary import (CATEGORIES, COLORS, FURNITURE_CATEGORIES,  # noqa: F401
                                FURNITURE_COLORS, SMALL_CATEGORIES, SMALL_COLORS,
                                SUPPORT_CATEGORIES)
import numpy as np


WALL_THICKNESS = 0.1
WALL_HEIGHT = 2.5
FLOOR_ID = 0


class LayoutError(ValueError):
    """A scene configuration whose objects cannot be placed."""


@dataclass
class SceneConfig:
    """
    What a procedural scene may contain; every range is (min, max) inclusive.

    :param room_width: room size along x [m]
    :param room_depth: room size along y [m]
    :param tables: number of tables
    :param chairs: number of chairs
    :param shelves: number of shelves (against a wall)
    :param small_objects: number of small objects on tables, shelves, plates and the floor
    :param small_categories: categories the small objects are drawn from
    :param clearance: free gap kept between furniture [m] so that the robot can pass
    :param floor_fraction: share of small objects put on the floor
    :param max_attempts: placement tries per object before a layout is redrawn
    :param layout_retries: layouts drawn before the configuration is declared impossible
    """

    room_width: tuple = (4.0, 6.5)
    room_depth: tuple = (4.0, 6.0)
    tables: tuple = (1, 3)
    chairs: tuple = (0, 2)
    shelves: tuple = (0, 1)
    small_objects: tuple = (5, 12)
    small_categories: tuple = SMALL_CATEGORIES
    clearance: float = 0.6
    floor_fraction: float = 0.15
    max_attempts: int = 200
    layout_retries: int = 10

    def __post_init__(self):
        for name in ('room_width', 'room_depth', 'tables', 'chairs', 'shelves',
                     'small_objects'):
            low, high = getattr(self, name)
            if low < 0 or high < low:
                raise ValueError(f'SceneConfig.{name} must be a range 0 <= min <= max, '
                                 f'got {getattr(self, name)}')
        if self.room_width[0] < 1.5 or self.room_depth[0] < 1.5:
            raise ValueError(f'SceneConfig room must be at least 1.5 m, got '
                             f'{self.room_width} x {self.room_depth}')
        unknown = [c for c in self.small_categories if c not in SMALL_CATEGORIES]
        if unknown:
            raise ValueError(f'SceneConfig.small_categories has unknown categories {unknown}; '
                             f'known: {list(SMALL_CATEGORIES)}')
        if not self.small_categories:
            raise ValueError('SceneConfig.small_categories must not be empty')
        if not 0.0 <= self.floor_fraction <= 1.0:
            raise ValueError(f'SceneConfig.floor_fraction must be in [0, 1], '
                             f'got {self.floor_fraction}')
        if self.clearance < 0 or self.max_attempts < 1 or self.layout_retries < 1:
            raise ValueError(f'SceneConfig.clearance must be >= 0, max_attempts and '
                             f'layout_retries >= 1, got {self.clearance}, '
                             f'{self.max_attempts}, {self.layout_retries}')


@dataclass
class Part:
    """One primitive of a composite object, in the object's frame (origin: bottom centre)."""

    kind: str                 # 'box', 'cylinder' or 'sphere'
    center: tuple             # (3,) [m]
    size: tuple               # (3,) extents [m]
    color: tuple              # (3,) rgb in [0, 1]


@dataclass
class SceneObject:
    """
    An upright object: a category, a colour, extents and a planar pose.

    :param size: extents (x, y, z) in the object's frame [m]
    :param support_id: id of the object it stands on (0: the floor), as placed
    """

    id: int  # noqa: A003 (the object id of the scene graph)
    category: str
    color: str
    x: float
    y: float
    z: float
    yaw: float
    size: tuple
    parts: list = field(default_factory=list)
    support_id: int = FLOOR_ID

    @property
    def rgb(self):
        """Return the object's named colour as rgb in [0, 1]."""
        return COLORS[self.color]

    @property
    def center(self) -> np.ndarray:
        """Return the centre of the object's bounding box in the map frame, (3,)."""
        return np.array([self.x, self.y, self.z + self.size[2] / 2])

    @property
    def top(self) -> float:
        """Return the height of the object's top surface [m]."""
        return self.z + self.size[2]

    @property
    def half_extents(self):
        """Return the half extents (x, y) of the footprint in the object frame."""
        return (self.size[0] / 2, self.size[1] / 2)

    @property
    def footprint(self):
        """Return the footprint as ``(center (2,), half_extents, yaw)``."""
        return (np.array([self.x, self.y]), self.half_extents, self.yaw)

    @property
    def volume(self) -> float:
        """Return the bounding-box volume [m^3]."""
        return float(np.prod(self.size))

    def corners(self) -> np.ndarray:
        """Return the footprint corners, (4, 2)."""
        return rectangle_corners(*self.footprint)

    def aabb(self):
        """Return the axis-aligned bounds (low (3,), high (3,)) in the map frame."""
        corners = self.corners()
        low = np.array([*corners.min(axis=0), self.z])
        high = np.array([*corners.max(axis=0), self.top])
        return low, high

    def contains_xy(self, point, margin=0.0) -> bool:
        """Return whether a 2D point lies over the footprint."""
        return point_in_rectangle(point, (self.x, self.y), self.half_extents, self.yaw, margin)

    def mesh(self, resolution=20):
        """
        Return the object's triangles in the map frame.

        :return: vertices (V, 3) float64, triangles (T, 3) int64, colours (T, 3) float32
        """
        rot = rotation_z(self.yaw)
        origin = np.array([self.x, self.y, self.z])
        all_vertices, all_triangles, all_colors, offset = [], [], [], 0
        for part in self.parts:
            vertices, triangles = primitive_mesh(part.kind, part.size, resolution)
            vertices = (vertices + np.asarray(part.center)) @ rot.T + origin
            all_vertices.append(vertices)
            all_triangles.append(triangles + offset)
            all_colors.append(np.tile(np.asarray(part.color, np.float32), (len(triangles), 1)))
            offset += len(vertices)
        return (np.concatenate(all_vertices), np.concatenate(all_triangles),
                np.concatenate(all_colors))

    def to_dict(self) -> dict:
        """Return a JSON-friendly description (parts left out)."""
        return {'id': self.id, 'category': self.category, 'color': self.color,
                'x': self.x, 'y': self.y, 'z': self.z, 'yaw': self.yaw,
                'size': [float(v) for v in self.size], 'support_id': self.support_id}


@dataclass
class Scene:
    """A room (``width`` x ``depth``) and its objects, keyed by id (ids start at 1)."""

    seed: int
    width: float
    depth: float
    objects: dict
    config: SceneConfig = None

    def object(self, object_id) -> SceneObject:  # noqa: A003
        """Return an object by id; an unknown id raises KeyError naming it."""
        try:
            return self.objects[int(object_id)]
        except KeyError:
            raise KeyError(f'scene {self.seed} has no object {object_id}; '
                           f'ids are {sorted(self.objects)}') from None

    def inside(self, x, y, margin=0.0) -> bool:
        """Return whether (x, y) is inside the room, at least ``margin`` from the walls."""
        return margin <= x <= self.width - margin and margin <= y <= self.depth - margin

    def furniture(self):
        """Return the furniture objects."""
        return [o for o in self.objects.values() if o.category in FURNITURE_CATEGORIES]

    def small_objects(self):
        """Return the small (movable) objects."""
        return [o for o in self.objects.values() if o.category in SMALL_CATEGORIES]

    def structure_meshes(self, tile=0.5):
        """
        Return the floor (a checkerboard of tiles) and the four walls as meshes.

        :return: list of (vertices (V, 3), triangles (T, 3), colours (T, 3))
        """
        meshes = []
        tiles_x = max(1, math.ceil(self.width / tile))
        tiles_y = max(1, math.ceil(self.depth / tile))
        step_x, step_y = self.width / tiles_x, self.depth / tiles_y
        shades = (np.array([0.78, 0.74, 0.66]), np.array([0.68, 0.64, 0.56]))
        vertices, triangles, colors = [], [], []
        for i in range(tiles_x):
            for j in range(tiles_y):
                x0, y0 = i * step_x, j * step_y
                base = len(vertices) * 4
                vertices.append([[x0, y0, 0], [x0 + step_x, y0, 0], [x0 + step_x, y0 + step_y, 0],
                                 [x0, y0 + step_y, 0]])
                triangles += [[base, base + 1, base + 2], [base, base + 2, base + 3]]
                colors += [shades[(i + j) % 2]] * 2
        meshes.append((np.asarray(vertices, float).reshape(-1, 3), np.asarray(triangles),
                       np.asarray(colors, np.float32)))
        t, h = WALL_THICKNESS, WALL_HEIGHT
        walls = [((self.width / 2, -t / 2), (self.width + 2 * t, t)),
                 ((self.width / 2, self.depth + t / 2), (self.width + 2 * t, t)),
                 ((-t / 2, self.depth / 2), (t, self.depth)),
                 ((self.width + t / 2, self.depth / 2), (t, self.depth))]
        for k, ((cx, cy), (sx, sy)) in enumerate(walls):
            vertices, triangles = primitive_mesh('box', (sx, sy, h))
            shade = np.array([0.86, 0.84, 0.78]) if k < 2 else np.array([0.8, 0.82, 0.86])
            meshes.append((vertices + (cx, cy, h / 2), triangles,
                           np.tile(shade.astype(np.float32), (len(triangles), 1))))
        return meshes

    def to_dict(self) -> dict:
        """Return a JSON-friendly description of the scene."""
        return {'seed': self.seed, 'width': self.width, 'depth': self.depth,
                'objects': [o.to_dict() for o in self.objects.values()]}


def make_parts(category: str, size, rgb):
    """
    Return the primitives of a category at the given extents (origin: bottom centre).

    :param size: extents (x, y, z) [m]
    """
    sx, sy, sz = size
    rgb = tuple(rgb)
    dark = tuple(0.6 * c for c in rgb)
    if category == 'box':
        return [Part('box', (0, 0, sz / 2), size, rgb)]
    if category == 'cylinder':
        return [Part('cylinder', (0, 0, sz / 2), size, rgb)]
    if category == 'sphere':
        return [Part('sphere', (0, 0, sz / 2), size, rgb)]
    if category == 'plate':
        return [Part('cylinder', (0, 0, sz / 2), size, rgb)]
    if category == 'mug':
        body = sx * 0.75  # the handle takes the rest of the x extent
        return [Part('cylinder', (-(sx - body) / 2, 0, sz / 2), (body, sy, sz), rgb),
                Part('box', (sx / 2 - (sx - body) / 2, 0, sz / 2),
                     (sx - body, sy * 0.15, sz * 0.6), dark)]
    if category == 'bowl':
        return [Part('cylinder', (0, 0, sz * 0.15), (sx * 0.55, sy * 0.55, sz * 0.3), dark),
                Part('cylinder', (0, 0, sz * 0.65), (sx, sy, sz * 0.7), rgb)]
    if category == 'table':
        top, leg = 0.04, 0.05
        parts = [Part('box', (0, 0, sz - top / 2), (sx, sy, top), rgb)]
        for ex in (-1, 1):
            for ey in (-1, 1):
                parts.append(Part('box', (ex * (sx / 2 - leg), ey * (sy / 2 - leg),
                                          (sz - top) / 2), (leg, leg, sz - top), dark))
        return parts
    if category == 'chair':
        seat_h, leg, board = 0.45, 0.04, 0.05
        parts = [Part('box', (0, 0, seat_h - board / 2), (sx, sy, board), rgb),
                 Part('box', (-sx / 2 + board / 2, 0, (seat_h + sz) / 2),
                      (board, sy, sz - seat_h), rgb)]
        for ex in (-1, 1):
            for ey in (-1, 1):
                parts.append(Part('box', (ex * (sx / 2 - leg), ey * (sy / 2 - leg),
                                          (seat_h - board) / 2), (leg, leg, seat_h - board),
                                  dark))
        return parts
    if category == 'shelf':
        side, board = 0.03, 0.03
        parts = [Part('box', (0, ey * (sy / 2 - side / 2), sz / 2), (sx, side, sz), dark)
                 for ey in (-1, 1)]
        parts.append(Part('box', (-sx / 2 + side / 2, 0, sz / 2), (side, sy, sz), dark))
        for level in (0.0, 0.5, 1.0):
            zc = board / 2 + level * (sz - board)
            parts.append(Part('box', (0, 0, zc), (sx, sy, board), rgb))
        return parts
    raise ValueError(f'unknown category {category!r}; known: {list(CATEGORIES)}')


def sample_size(category: str, rng) -> tuple:
    """Draw extents (x, y, z) [m] for a category."""
    u = rng.uniform
    if category == 'box':
        return (u(0.08, 0.2), u(0.08, 0.2), u(0.06, 0.2))
    if category == 'cylinder':
        d = u(0.06, 0.14)
        return (d, d, u(0.1, 0.25))
    if category == 'sphere':
        d = u(0.08, 0.16)
        return (d, d, d)
    if category == 'mug':
        d = u(0.07, 0.1)
        return (d / 0.75, d, u(0.08, 0.12))
    if category == 'bowl':
        d = u(0.12, 0.2)
        return (d, d, u(0.05, 0.08))
    if category == 'plate':
        d = u(0.18, 0.26)
        return (d, d, 0.02)
    if category == 'table':
        return (u(0.8, 1.4), u(0.6, 0.9), u(0.7, 0.8))
    if category == 'chair':
        return (0.45, 0.45, u(0.85, 1.0))
    if category == 'shelf':
        return (u(0.3, 0.4), u(0.6, 1.0), u(0.9, 1.3))
    raise ValueError(f'unknown category {category!r}; known: {list(CATEGORIES)}')


def make_object(object_id, category, color, x, y, z, yaw, size, support_id=FLOOR_ID):
    """Build a :class:`SceneObject` with its parts; unknown category or colour raise."""
    if category not in CATEGORIES:
        raise ValueError(f'unknown category {category!r}; known: {list(CATEGORIES)}')
    if color not in COLORS:
        raise ValueError(f'unknown colour {color!r}; known: {list(COLORS)}')
    size = tuple(float(v) for v in size)
    return SceneObject(id=int(object_id), category=category, color=color, x=float(x),
                       y=float(y), z=float(z), yaw=float(yaw), size=size,
                       parts=make_parts(category, size, COLORS[color]), support_id=support_id)


def generate_scene(seed: int, config: SceneConfig = None) -> Scene:
    """
    Build the scene of a seed: the same seed and config always give the same scene.

    :raises LayoutError: when the furniture or objects do not fit after ``max_attempts`` tries
    """
    config = config or SceneConfig()
    rng = np.random.default_rng(int(seed))
    width = float(rng.uniform(*config.room_width))
    depth = float(rng.uniform(*config.room_depth))
    error = None
    for _ in range(config.layout_retries):
        # A crowded draw is redrawn from the same generator, so a seed stays reproducible.
        try:
            return _layout(int(seed), width, depth, config, rng)
        except LayoutError as exc:
            error = exc
    raise LayoutError(f'{error} (and in {config.layout_retries} fresh layouts)')


def _layout(seed, width, depth, config, rng):
    scene = Scene(seed=seed, width=width, depth=depth, objects={}, config=config)
    counts = {name: int(rng.integers(getattr(config, attr)[0], getattr(config, attr)[1] + 1))
              for name, attr in (('shelf', 'shelves'), ('table', 'tables'),
                                 ('chair', 'chairs'))}
    for category in ('shelf', 'table', 'chair'):
        for _ in range(counts[category]):
            _place_furniture(scene, category, rng)
    small = int(rng.integers(config.small_objects[0], config.small_objects[1] + 1))
    for _ in range(small):
        _place_small(scene, str(rng.choice(list(config.small_categories))), rng)
    return scene


def _next_id(scene):
    return max(scene.objects, default=0) + 1


def _place_furniture(scene, category, rng):
    config = scene.config
    size = sample_size(category, rng)
    color = str(rng.choice(FURNITURE_COLORS))
    half = (size[0] / 2, size[1] / 2)
    for _ in range(config.max_attempts):
        if category == 'shelf':
            # Back against a wall: the shelf's local -x side faces the wall.
            wall = int(rng.integers(4))
            yaw = (0.0, math.pi, math.pi / 2, -math.pi / 2)[wall]
            along = rng.uniform(half[1] + 0.05, (scene.depth if wall < 2 else scene.width)
                                - half[1] - 0.05) if (scene.depth if wall < 2 else scene.width) \
                > 2 * half[1] + 0.1 else None
            if along is None:
                continue
            off = half[0] + 0.01
            x, y = ((off, along), (scene.width - off, along), (along, off),
                    (along, scene.depth - off))[wall]
        else:
            yaw = float(rng.choice([0.0, math.pi / 2])) if category == 'table' \
                else float(rng.uniform(-math.pi, math.pi))
            x = rng.uniform(0, scene.width)
            y = rng.uniform(0, scene.depth)
        corners = rectangle_corners((x, y), half, yaw)
        margin = 0.01 if category == 'shelf' else config.clearance / 2
        if (corners.min(axis=0) < margin).any() or corners[:, 0].max() > scene.width - margin \
                or corners[:, 1].max() > scene.depth - margin:
            continue
        grown = rectangle_corners((x, y), (half[0] + config.clearance / 2,
                                           half[1] + config.clearance / 2), yaw)
        if any(rectangles_overlap(grown, rectangle_corners(
                (o.x, o.y), (o.half_extents[0] + config.clearance / 2,
                             o.half_extents[1] + config.clearance / 2), o.yaw))
               for o in scene.furniture()):
            continue
        object_id = _next_id(scene)
        scene.objects[object_id] = make_object(object_id, category, color, x, y, 0.0, yaw, size)
        return
    raise LayoutError(f'scene {scene.seed}: cannot place a {category} of size '
                      f'{tuple(round(v, 2) for v in size)} in a {scene.width:.1f} x '
                      f'{scene.depth:.1f} m room with {len(scene.furniture())} furniture '
                      f'and clearance {config.clearance} m after {config.max_attempts} tries')


def support_surfaces(scene, exclude=()):
    """Return the objects whose top carries others (tables, shelves, plates)."""
    return [o for o in scene.objects.values()
            if o.category in SUPPORT_CATEGORIES and o.id not in exclude]


def _place_small(scene, category, rng):
    config = scene.config
    size = sample_size(category, rng)
    color = str(rng.choice(SMALL_COLORS))
    radius = math.hypot(size[0], size[1]) / 2
    for attempt in range(config.max_attempts):
        supports = [o for o in support_surfaces(scene)
                    if o.category != 'plate' or category not in ('plate', 'bowl')]
        # Surfaces full: the second half of the tries goes to the floor.
        on_floor = (rng.random() < config.floor_fraction or not supports
                    or attempt >= config.max_attempts // 2)
        if on_floor:
            if category == 'plate' and attempt < config.max_attempts // 2:
                continue
            support = None
            x = rng.uniform(radius + 0.05, scene.width - radius - 0.05)
            y = rng.uniform(radius + 0.05, scene.depth - radius - 0.05)
        else:
            support = supports[int(rng.integers(len(supports)))]
            hx, hy = support.half_extents
            if support.category == 'plate':
                if any(o.support_id == support.id for o in scene.objects.values()) \
                        or radius > max(hx, hy):
                    continue
                local = np.zeros(2)
            else:
                if hx - radius - 0.03 <= 0 or hy - radius - 0.03 <= 0:
                    continue
                local = rng.uniform([-hx + radius + 0.03, -hy + radius + 0.03],
                                    [hx - radius - 0.03, hy - radius - 0.03])
            x, y = (rotation_z(support.yaw)[:2, :2] @ local) + (support.x, support.y)
        z = support.top if support else 0.0
        if not _small_fits(scene, x, y, z, size[2], radius, support):
            continue
        object_id = _next_id(scene)
        scene.objects[object_id] = make_object(
            object_id, category, color, x, y, z, float(rng.uniform(-math.pi, math.pi)), size,
            support.id if support else FLOOR_ID)
        return
    raise LayoutError(f'scene {scene.seed}: cannot place a {category} (radius {radius:.2f} m) '
                      f'on any free surface after {config.max_attempts} tries; '
                      f'ask for fewer small objects or more tables')


def _small_fits(scene, x, y, z, height, radius, support):
    """Return whether a small object (a circle of ``radius``) at (x, y, z) hits nothing."""
    for other in scene.objects.values():
        if support is not None and other.id == support.id:
            continue
        if other.category in FURNITURE_CATEGORIES:
            if z < other.top - 0.01 and point_rectangle_distance(
                    np.array([x, y]), (other.x, other.y), other.half_extents,
                    other.yaw) < radius + 0.02:
                return False
            continue
        overlap_z = z < other.top - 1e-3 and other.z < z + height - 1e-3
        gap = math.hypot(other.x - x, other.y - y)
        if overlap_z and gap < radius + math.hypot(*other.half_extents) + 0.02:
            return False
    return True
