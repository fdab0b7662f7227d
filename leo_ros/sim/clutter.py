"""
Cluttered tabletop scenes with per-point ground truth, for developing segmentation (no ROS).

:func:`generate_clutter` lays out 8-20 objects on a table: boxes (some printed with a band of
a second colour), cans, mugs with handles, balls, bowls and boards, placed so that they touch
each other, stand in towers two or three high, or lean on one another. :func:`render_clutter`
views the scene from a Kinect-like camera through the sensor model
(:mod:`leo_ros.sim.sensor`) and labels every point in the mOSD layout that
``leo-bench segmentation`` reads: 0 no depth, 1 support (table and floor), :data:`IGNORE`
parts too small to score, ``>= 20`` objects. As in mOSD, the disjoint visible parts of one
object (an object seen on both sides of another) are separate ground-truth objects.

Scene kinds (:data:`KINDS`): ``touching`` (objects against each other), ``stacked`` (towers of
two or three), ``leaning`` (boards leaning on other objects) and ``mixed`` (all of these).
"""

from dataclasses import dataclass, field
import math

# The labels of the mOSD layout, from the scoring that reads them.
from leo_ros.perception.scoring import FIRST_OBJECT_LABEL as FIRST_OBJECT, IGNORE
from leo_ros.sim.render import CameraConfig, Renderer, STRUCTURE_ID
from leo_ros.sim.scene import COLORS
from leo_ros.sim.sensor import SensorConfig
import numpy as np
import open3d as o3d
from scipy import ndimage

#: scene kinds, each with its mix of placements (touch, stack, lean, free)
KINDS = ('touching', 'stacked', 'leaning', 'mixed')
#: placement mix per kind: probabilities of touch, stack, lean, free for each new object
PLACEMENTS = {'touching': (0.85, 0.0, 0.0, 0.15), 'stacked': (0.45, 0.45, 0.0, 0.1),
              'leaning': (0.6, 0.0, 0.3, 0.1), 'mixed': (0.5, 0.25, 0.12, 0.13)}
#: object shapes and how often each is drawn
SHAPES = {'box': 0.45, 'cylinder': 0.25, 'mug': 0.1, 'ball': 0.07, 'bowl': 0.08,
          'board': 0.05}
TABLE = (1.6, 1.2, 0.04)          # table top extents [m], top surface at z = 0
TABLE_HEIGHT = 0.75               # the floor is this far below the table top [m]


def _kinect_sensor():
    return SensorConfig(enabled=True)


@dataclass
class ClutterConfig:
    """
    What cluttered scenes contain and how they are seen.

    :param objects: (min, max) objects per scene
    :param kinds: scene kinds drawn in turn (scene ``seed`` gets ``kinds[seed % len]``)
    :param width: image width [px]
    :param height: image height [px]
    :param fov_x: horizontal field of view [deg] (Kinect v1: 57)
    :param distance: (min, max) camera distance to the middle of the objects [m]
    :param elevation_deg: (min, max) camera angle above the table [deg]
    :param sensor: the depth-camera model the scene is rendered through
    :param color_noise: std of the colour noise in [0, 1] units
    :param min_part_points: a visible part with fewer points is not scored (:data:`IGNORE`)
    :param cluster_radius: free placements fall within this of the table centre [m]
    :param attempts: placement tries per object
    """

    objects: tuple = (8, 20)
    kinds: tuple = KINDS
    width: int = 640
    height: int = 480
    fov_x: float = 57.0
    distance: tuple = (0.8, 1.2)
    elevation_deg: tuple = (35.0, 60.0)
    sensor: SensorConfig = field(default_factory=_kinect_sensor)
    color_noise: float = 0.02
    min_part_points: int = 300
    cluster_radius: float = 0.25
    attempts: int = 40

    def __post_init__(self):
        low, high = self.objects
        if not 1 <= low <= high:
            raise ValueError(f'ClutterConfig.objects must be a range 1 <= min <= max, '
                             f'got {self.objects!r}')
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown or not self.kinds:
            raise ValueError(f'ClutterConfig.kinds must be a non-empty subset of {KINDS}, '
                             f'got {self.kinds!r}')
        for name in ('distance', 'elevation_deg'):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ValueError(f'ClutterConfig.{name} must be a range 0 < min <= max, '
                                 f'got {getattr(self, name)!r}')
        if self.elevation_deg[1] >= 90:
            raise ValueError(f'ClutterConfig.elevation_deg must stay under 90, '
                             f'got {self.elevation_deg!r}')
        for name in ('min_part_points', 'attempts', 'width', 'height'):
            if int(getattr(self, name)) < 1:
                raise ValueError(f'ClutterConfig.{name} must be >= 1, got '
                                 f'{getattr(self, name)!r}')
        if not self.cluster_radius > 0 or not self.color_noise >= 0:
            raise ValueError('ClutterConfig.cluster_radius must be > 0 and color_noise >= 0, '
                             f'got {self.cluster_radius!r}, {self.color_noise!r}')


@dataclass
class Primitive:
    """A box, cylinder (axis z) or sphere of extents ``size`` at ``pose`` (centre, (4, 4))."""

    kind: str
    size: np.ndarray            # (3,) extents [m]
    pose: np.ndarray            # (4, 4) centre and orientation in the table frame

    def inside(self, points, margin=0.0) -> np.ndarray:
        """Return which (N, 3) points lie inside, ``margin`` deeper than the surface, (N,)."""
        local = (points - self.pose[:3, 3]) @ self.pose[:3, :3]         # (N, 3)
        half = self.size / 2 - margin
        if (half <= 0).any():
            return np.zeros(len(points), bool)
        if self.kind == 'box':
            return (np.abs(local) < half).all(axis=1)
        if self.kind == 'cylinder':
            radial = (local[:, 0] / half[0]) ** 2 + (local[:, 1] / half[1]) ** 2
            return (radial < 1.0) & (np.abs(local[:, 2]) < half[2])
        return ((local / half) ** 2).sum(axis=1) < 1.0

    def surface_points(self) -> np.ndarray:
        """Return a fixed set of points on the surface (corners and edges included), (M, 3)."""
        half = self.size / 2
        if self.kind == 'box':
            grid = np.linspace(-1.0, 1.0, 7)
            a, b = np.meshgrid(grid, grid)
            a, b = a.ravel(), b.ravel()
            faces = []
            for axis in range(3):
                for sign in (-1.0, 1.0):
                    face = np.empty((len(a), 3))
                    others = [k for k in range(3) if k != axis]
                    face[:, axis] = sign
                    face[:, others[0]], face[:, others[1]] = a, b
                    faces.append(face)
            local = np.concatenate(faces) * half
        elif self.kind == 'cylinder':
            angle = np.linspace(0, 2 * math.pi, 24, endpoint=False)
            rings = [np.stack([np.cos(angle) * r, np.sin(angle) * r, np.full(24, z)], 1)
                     for z in np.linspace(-1, 1, 7) for r in (1.0,)]
            caps = [np.stack([np.cos(angle) * r, np.sin(angle) * r, np.full(24, z)], 1)
                    for z in (-1.0, 1.0) for r in (0.0, 0.5)]
            local = np.concatenate(rings + caps) * half
        else:
            k = np.arange(200) + 0.5
            polar, azimuth = np.arccos(1 - 2 * k / 200), math.pi * (1 + 5 ** 0.5) * k
            local = np.stack([np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar),
                              np.cos(polar)], 1) * half
        return local @ self.pose[:3, :3].T + self.pose[:3, 3]

    def mesh(self):
        """Return vertices (V, 3) and triangles (T, 3) in the table frame."""
        if self.kind == 'box':
            mesh = o3d.geometry.TriangleMesh.create_box(1.0, 1.0, 1.0)
            mesh = mesh.subdivide_midpoint(2)                         # texture resolution
            vertices = (np.asarray(mesh.vertices) - 0.5) * self.size
        elif self.kind == 'cylinder':
            mesh = o3d.geometry.TriangleMesh.create_cylinder(0.5, 1.0, resolution=32, split=6)
            vertices = np.asarray(mesh.vertices) * self.size
        else:
            mesh = o3d.geometry.TriangleMesh.create_sphere(0.5, resolution=16)
            vertices = np.asarray(mesh.vertices) * self.size
        vertices = vertices @ self.pose[:3, :3].T + self.pose[:3, 3]
        return vertices, np.asarray(mesh.triangles, np.int64)


@dataclass
class ClutterObject:
    """One object of a cluttered scene: primitives, colours and how it was placed."""

    id: int  # noqa: A003 (instance id in the rendering, >= 1)
    shape: str
    color: str
    parts: list                 # Primitive
    placement: str              # 'touch', 'stack', 'lean' or 'free'
    support_id: int = 0         # 0: the table
    level: int = 1              # 1 on the table, 2 on one object, ...
    stripe: tuple = None        # (low, high, colour name): a printed band in object height

    def points(self) -> np.ndarray:
        """Return the surface points of every part, (M, 3)."""
        return np.concatenate([p.surface_points() for p in self.parts])

    def inside(self, points, margin) -> np.ndarray:
        """Return which (N, 3) points lie inside any part, (N,)."""
        hits = np.zeros(len(points), bool)
        for part in self.parts:
            hits |= part.inside(points, margin)
        return hits

    @property
    def top(self) -> float:
        """Return the highest point [m]."""
        return float(self.points()[:, 2].max())

    @property
    def center(self) -> np.ndarray:
        """Return the centre of the first part (the body), (3,)."""
        return self.parts[0].pose[:3, 3].copy()


@dataclass
class ClutterScene:
    """A cluttered table and the camera that looks at it."""

    seed: int
    kind: str
    objects: list               # ClutterObject
    camera_pose: np.ndarray     # (4, 4) optical frame in the table frame
    table_color: tuple

    @property
    def name(self) -> str:
        """Return the scene's file stem, ``clutter<seed>_<kind>``."""
        return f'clutter{self.seed:03d}_{self.kind}'


@dataclass
class LabelledFrame:
    """An organized cloud with per-point ground truth in the mOSD layout."""

    name: str
    kind: str
    xyz: np.ndarray             # (H, W, 3) float32 optical frame, NaN without depth
    rgb: np.ndarray             # (H, W, 3) float32 in [0, 1]
    labels: np.ndarray          # (H, W) int32: 0 no depth, 1 support, IGNORE, >= 20 objects
    objects: int                # objects in the scene (visible or not)


def _rotation(yaw, tilt=0.0):
    """Return R = Rz(yaw) @ Ry(tilt), (3, 3)."""
    cy, sy, ct, st = math.cos(yaw), math.sin(yaw), math.cos(tilt), math.sin(tilt)
    rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    ry = np.array([[ct, 0.0, st], [0.0, 1.0, 0.0], [-st, 0.0, ct]])
    return rz @ ry


def _pose(rotation, center):
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = rotation, center
    return pose


def _draw_shape(shape, rng):
    """
    Return the parts of a shape at the origin (bottom centre at 0, upright).

    :return: list of (kind, size (3,), centre offset (3,))
    """
    u = rng.uniform
    if shape == 'box':
        size = np.array([u(0.04, 0.18), u(0.04, 0.18), u(0.03, 0.2)])
        return [('box', size, np.array([0, 0, size[2] / 2]))]
    if shape == 'board':
        size = np.array([u(0.015, 0.03), u(0.08, 0.2), u(0.12, 0.26)])
        return [('box', size, np.array([0, 0, size[2] / 2]))]
    if shape == 'cylinder':
        d, h = u(0.05, 0.12), u(0.06, 0.24)
        return [('cylinder', np.array([d, d, h]), np.array([0, 0, h / 2]))]
    if shape == 'mug':
        d, h = u(0.07, 0.095), u(0.08, 0.11)
        handle = np.array([0.03, 0.012, 0.6 * h])
        return [('cylinder', np.array([d, d, h]), np.array([0, 0, h / 2])),
                ('box', handle, np.array([d / 2 + 0.012, 0, h / 2]))]
    if shape == 'ball':
        d = u(0.05, 0.11)
        return [('sphere', np.array([d, d, d]), np.array([0, 0, d / 2]))]
    d, h = u(0.12, 0.2), u(0.05, 0.08)                                 # bowl: foot and body
    return [('cylinder', np.array([0.55 * d, 0.55 * d, 0.3 * h]), np.array([0, 0, 0.15 * h])),
            ('cylinder', np.array([d, d, 0.7 * h]), np.array([0, 0, 0.65 * h]))]


def _squash(template, max_height):
    """Return the template scaled along z to at most ``max_height`` [m]."""
    height = max(offset[2] + size[2] / 2 for _, size, offset in template)
    factor = np.array([1.0, 1.0, min(1.0, max_height / height)])
    return [(kind, size * factor, offset * factor) for kind, size, offset in template]


def _place(template, rotation, bottom_center):
    """Return primitives of ``template`` turned by ``rotation`` about its bottom centre."""
    return [Primitive(kind, size, _pose(rotation, bottom_center + rotation @ offset))
            for kind, size, offset in template]


def _collides(parts, objects, margin=0.0005) -> bool:
    """Return whether primitives overlap any object (deeper than ``margin``) or the table."""
    probe = ClutterObject(0, '', '', parts, '')
    points = probe.points()
    if points[:, 2].min() < -margin:
        return True
    half = np.array(TABLE[:2]) / 2 - 0.03
    if (np.abs(points[:, :2]) > half).any():
        return True
    for other in objects:
        if other.inside(points, margin).any() or probe.inside(other.points(), margin).any():
            return True
    return False


def _slide(template, rotation, anchor_xy, direction, objects, base_z, reach):
    """
    Move a shape towards ``anchor_xy`` along ``-direction`` until it touches something.

    :return: primitives in contact (gap under 2 mm), or None when the start is not free
    """
    def parts_at(distance):
        center = np.array([*(anchor_xy + direction * distance), base_z])
        return _place(template, rotation, center)

    if _collides(parts_at(reach), objects):
        return None
    near, far = 0.0, reach
    for _ in range(14):
        middle = (near + far) / 2
        if _collides(parts_at(middle), objects):
            near = middle
        else:
            far = middle
    return parts_at(far)


def _radius(template):
    return max(math.hypot(*size[:2]) / 2 + math.hypot(*offset[:2])
               for _, size, offset in template)


def _try_touch(template, objects, rng, lean=False):
    """Place a shape against an object on the table (leaning on it when ``lean``)."""
    anchors = [o for o in objects if o.level == 1 and (not lean or o.top > 0.08)]
    if not anchors:
        return None
    anchor = anchors[int(rng.integers(len(anchors)))]
    theta = rng.uniform(-math.pi, math.pi)
    direction = np.array([math.cos(theta), math.sin(theta)])
    if lean:
        # The board's thickness axis points at the anchor; its top tilts towards it.
        rotation = _rotation(theta + math.pi, math.radians(rng.uniform(12.0, 35.0)))
        corners = _place(template, rotation, np.zeros(3))[0].surface_points()
        base_z = -corners[:, 2].min()
    else:
        aligned = rng.random() < 0.4 and anchor.shape == 'box'
        yaw = _yaw(anchor) + rng.integers(4) * math.pi / 2 if aligned \
            else rng.uniform(-math.pi, math.pi)
        rotation, base_z = _rotation(yaw), 0.0
    anchor_radius = float(np.linalg.norm(anchor.points()[:, :2] - anchor.center[:2],
                                         axis=1).max())
    reach = _radius(template) + anchor_radius + 0.05
    return _slide(template, rotation, anchor.center[:2], direction, objects, base_z, reach)


def _yaw(obj):
    rotation = obj.parts[0].pose[:3, :3]
    return math.atan2(rotation[1, 0], rotation[0, 0])


def _try_stack(template, objects, rng):
    """Put a shape on the flat top of an upright box or cylinder, up to three high."""
    supports = [o for o in objects if o.shape in ('box', 'cylinder') and o.level < 3
                and o.placement != 'lean']
    if not supports:
        return None, None
    support = supports[int(rng.integers(len(supports)))]
    body = support.parts[0]
    half = body.size[:2] / 2
    template = _squash(template, 0.12)                                 # towers of small things
    kind, size, offset = template[0]
    if rng.random() < 0.3 and support.shape == 'box' and kind == 'box':
        size = np.array([*body.size[:2], size[2]])                   # the same footprint
        template = [(kind, size, offset)]
        yaw, local = _yaw(support), np.zeros(2)
    else:
        yaw = _yaw(support) if rng.random() < 0.5 else rng.uniform(-math.pi, math.pi)
        room = np.maximum(half - _radius(template) * 0.5, 0.0)
        local = rng.uniform(-room, room)
    center = support.center[:2] + _rotation(_yaw(support))[:2, :2] @ local
    parts = _place(template, _rotation(yaw), np.array([*center, support.top]))
    if _collides(parts, objects):
        return None, None
    return parts, support


def _try_free(template, objects, rng, radius):
    center = np.array([*rng.uniform(-radius, radius, 2), 0.0])
    parts = _place(template, _rotation(rng.uniform(-math.pi, math.pi)), center)
    return None if _collides(parts, objects) else parts


def generate_clutter(seed: int, config: ClutterConfig = None) -> ClutterScene:
    """
    Lay out the cluttered scene of a seed (the same seed and config give the same scene).

    :return: a :class:`ClutterScene` with at least ``objects[0]`` objects where they fit
    """
    config = config or ClutterConfig()
    rng = np.random.default_rng([int(seed), 20])
    kind = config.kinds[int(seed) % len(config.kinds)]
    count = int(rng.integers(config.objects[0], config.objects[1] + 1))
    names, weights = list(SHAPES), np.array(list(SHAPES.values()))
    colors = list(COLORS)
    objects = []
    for _ in range(config.attempts * count):
        if len(objects) >= count:
            break
        mode = ('touch', 'stack', 'lean', 'free')[
            int(rng.choice(4, p=PLACEMENTS[kind])) if objects else 3]
        shape = 'board' if mode == 'lean' else str(rng.choice(names, p=weights / weights.sum()))
        if mode == 'stack' and shape in ('board', 'bowl'):
            shape = 'box'
        template = _draw_shape(shape, rng)
        support = None
        if mode == 'stack':
            parts, support = _try_stack(template, objects, rng)
        elif mode in ('touch', 'lean'):
            parts = _try_touch(template, objects, rng, lean=mode == 'lean')
        else:
            parts = _try_free(template, objects, rng, config.cluster_radius)
        if parts is None:
            continue
        color = colors[int(rng.integers(len(colors)))]
        stripe = None
        if shape in ('box', 'cylinder') and rng.random() < 0.5:
            low = rng.uniform(0.1, 0.6)
            others = [c for c in colors if c != color]
            stripe = (low, low + rng.uniform(0.15, 0.35), others[int(rng.integers(len(others)))])
        objects.append(ClutterObject(
            id=len(objects) + 1, shape=shape, color=color, parts=parts, placement=mode,
            support_id=support.id if support else 0, level=support.level + 1 if support else 1,
            stripe=stripe))
    return ClutterScene(seed=int(seed), kind=kind, objects=objects,
                        camera_pose=_camera_pose(objects, config, rng),
                        table_color=tuple(rng.uniform([0.55, 0.42, 0.3], [0.8, 0.68, 0.55])))


def _camera_pose(objects, config, rng) -> np.ndarray:
    """Return a camera (optical frame, (4, 4)) that looks at the objects from above the table."""
    centers = np.array([o.center for o in objects]) if objects else np.zeros((1, 3))
    target = centers.mean(axis=0)
    spread = float(np.linalg.norm(centers[:, :2] - target[:2], axis=1).max(initial=0.0)) + 0.1
    fit = spread / math.tan(math.radians(config.fov_x) / 2) * 1.1
    distance = max(rng.uniform(*config.distance), fit)
    elevation = math.radians(rng.uniform(*config.elevation_deg))
    azimuth = rng.uniform(-math.pi, math.pi)
    eye = target + distance * np.array([math.cos(elevation) * math.cos(azimuth),
                                        math.cos(elevation) * math.sin(azimuth),
                                        math.sin(elevation)])
    forward = (target - eye) / distance
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    roll = math.radians(rng.uniform(-5.0, 5.0))
    right, down = (math.cos(roll) * right + math.sin(roll) * down,
                   -math.sin(roll) * right + math.cos(roll) * down)
    return _pose(np.stack([right, down, forward], axis=1), eye)


def scene_meshes(scene: ClutterScene, rng=None):
    """
    Return the renderer's meshes: table and floor (support, id 0), then every object.

    :return: list of (instance id, vertices (V, 3), triangles (T, 3), colours (T, 3))
    """
    rng = rng or np.random.default_rng(scene.seed)
    meshes = []
    top = Primitive('box', np.array(TABLE), _pose(np.eye(3), (0.0, 0.0, -TABLE[2] / 2)))
    vertices, triangles = top.mesh()
    meshes.append((STRUCTURE_ID, vertices, triangles,
                   np.tile(np.asarray(scene.table_color, np.float32), (len(triangles), 1))))
    floor = np.array([[-4, -4, -TABLE_HEIGHT], [4, -4, -TABLE_HEIGHT], [4, 4, -TABLE_HEIGHT],
                      [-4, 4, -TABLE_HEIGHT]], float)
    meshes.append((STRUCTURE_ID, floor, np.array([[0, 1, 2], [0, 2, 3]]),
                   np.full((2, 3), 0.45, np.float32)))
    for obj in scene.objects:
        base = np.asarray(COLORS[obj.color], np.float32)
        bottom = min(p.surface_points()[:, 2].min() for p in obj.parts)
        height = max(obj.top - bottom, 1e-6)
        for index, part in enumerate(obj.parts):
            vertices, triangles = part.mesh()
            colors = np.tile(base * (1.0 if index == 0 else 0.7), (len(triangles), 1))
            if obj.stripe is not None and index == 0:
                z = (vertices[triangles].mean(axis=1)[:, 2] - bottom) / height   # (T,)
                band = (z > obj.stripe[0]) & (z < obj.stripe[1])
                colors[band] = COLORS[obj.stripe[2]]
            # Slight per-triangle shading differences, as real surfaces have.
            colors = colors * rng.uniform(0.94, 1.06, (len(triangles), 1))
            meshes.append((obj.id, vertices, triangles,
                           np.clip(colors, 0.0, 1.0).astype(np.float32)))
    return meshes


def empty_table(seed=0, config: ClutterConfig = None) -> ClutterScene:
    """Return a scene with no objects (the table and floor only), a camera as for clutter."""
    config = config or ClutterConfig()
    rng = np.random.default_rng([int(seed), 21])
    return ClutterScene(seed=int(seed), kind='empty', objects=[],
                        camera_pose=_camera_pose([], config, rng), table_color=(0.7, 0.6, 0.5))


def object_grid(rows=10, cols=20, size=0.05, spacing=0.07, height=1.0, seed=0):
    """
    Return a scene of ``rows`` x ``cols`` small boxes on the table, seen from straight above.

    A stress input for segmentation (many objects at once); boxes are ``size`` wide, of
    random heights, ``spacing`` apart, the camera ``height`` above the table.
    """
    rng = np.random.default_rng(seed)
    objects = []
    for row in range(rows):
        for col in range(cols):
            box = np.array([size, size, rng.uniform(0.03, 0.25)])
            center = np.array([(col - (cols - 1) / 2) * spacing, (row - (rows - 1) / 2) * spacing,
                               box[2] / 2])
            objects.append(ClutterObject(
                id=len(objects) + 1, shape='box', color=list(COLORS)[len(objects) % len(COLORS)],
                parts=[Primitive('box', box, _pose(np.eye(3), center))], placement='free'))
    down = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])   # optical z down
    return ClutterScene(seed=seed, kind='grid', objects=objects,
                        camera_pose=_pose(down, (0.0, 0.0, height)), table_color=(0.7, 0.6, 0.5))


def render_clutter(scene: ClutterScene, config: ClutterConfig = None) -> LabelledFrame:
    """
    Render a cluttered scene through the sensor model and label every point.

    :return: a :class:`LabelledFrame`; labels follow the mOSD layout (see the module docstring)
    """
    config = config or ClutterConfig()
    camera = CameraConfig(width=config.width, height=config.height, fov_x=config.fov_x,
                          min_range=0.3, max_range=5.0, color_noise=config.color_noise,
                          sensor=config.sensor)
    renderer = Renderer(camera, seed=scene.seed)
    renderer.set_meshes(scene_meshes(scene))
    frame = renderer.render(scene.camera_pose)
    labels = ground_truth(frame.instance_ids, np.isfinite(frame.depth), config.min_part_points)
    rgb = frame.rgb.astype(np.float32) / 255.0                             # (H, W, 3)
    return LabelledFrame(name=scene.name, kind=scene.kind, xyz=np.array(frame.points),
                         rgb=rgb, labels=labels, objects=len(scene.objects))


def ground_truth(instance_ids, measured, min_part_points) -> np.ndarray:
    """
    Label pixels in the mOSD layout from the ray caster's instance ids.

    Each object's visible pixels (exact, before the sensor drops any) are split into
    8-connected parts; a part with at least ``min_part_points`` measured points is an object
    (labels 20, 21, ... in order of object id and part size), smaller ones are :data:`IGNORE`.

    :param instance_ids: (H, W) int: object id, 0 support, -1 nothing
    :param measured: (H, W) bool pixels with depth
    :return: (H, W) int32
    """
    labels = np.where(instance_ids == STRUCTURE_ID, 1, 0).astype(np.int32)
    next_label = FIRST_OBJECT
    for object_id in np.unique(instance_ids[instance_ids > 0]):
        parts, count = ndimage.label(instance_ids == object_id, structure=np.ones((3, 3)))
        sizes = np.bincount(parts[measured], minlength=count + 1)[1:]     # measured points
        for part in np.argsort(-sizes, kind='stable') + 1:
            pixels = parts == part
            if sizes[part - 1] >= min_part_points:
                labels[pixels] = next_label
                next_label += 1
            else:
                labels[pixels] = IGNORE
    return np.where(measured, labels, 0).astype(np.int32)
