"""
Object tokens: the scene as LEO's object encoder reads it (pure numpy, no ROS).

Perception fills it from sensor data, the simulator from its ground truth, and the policy reads
it; leo_ros.ros.conversions maps it to and from leo_ros/msg/SceneObjects.
"""

from dataclasses import dataclass, field

import numpy as np

#: LEO samples this many points per object.
DEFAULT_POINTS_PER_OBJECT = 1024
#: LEO reads at most this many objects.
DEFAULT_MAX_OBJECTS = 60
#: x y z r g b
POINT_DIM = 6


@dataclass
class SceneTokens:
    """
    A set of K objects, each with a fixed-size normalised point sample.

    All arrays share the first dimension K; ``points`` holds LEO-normalised samples.
    """

    points: np.ndarray          # (K, P, 6) float32: xyz in the unit sphere, rgb in [-1, 1]
    centers: np.ndarray         # (K, 3) float32: axis-aligned box centres [m], fixed frame
    sizes: np.ndarray           # (K, 3) float32: box extents [m]
    colors: np.ndarray          # (K, 3) float32: mean colour in [0, 1]
    scales: np.ndarray          # (K,) float32: radius divided out of xyz [m]
    point_counts: np.ndarray    # (K,) int64: raw points per object before sampling
    ids: np.ndarray             # (K,) int64: stable object ids
    labels: list = field(default_factory=list)       # K category names ('unknown' if none)
    confidences: np.ndarray = None                   # (K,) float32 label confidence
    frame_id: str = ''
    stamp: float = 0.0          # seconds

    def __post_init__(self):
        count = len(self.points)
        if self.confidences is None:
            self.confidences = np.zeros(count, np.float32)
        if not self.labels:
            self.labels = ['unknown'] * count
        for name in ('centers', 'sizes', 'colors', 'scales', 'point_counts', 'ids',
                     'confidences', 'labels'):
            if len(getattr(self, name)) != count:
                raise ValueError(f'SceneTokens.{name} has {len(getattr(self, name))} entries '
                                 f'for {count} objects')
        if self.points.ndim != 3 or self.points.shape[2] != POINT_DIM:
            raise ValueError(f'SceneTokens.points must be (K, P, {POINT_DIM}), '
                             f'got {self.points.shape}')

    def __len__(self):
        return len(self.points)

    @property
    def locations(self) -> np.ndarray:
        """Return LEO's location features, centre and size, (K, 6)."""
        return np.concatenate([self.centers, self.sizes], axis=1).astype(np.float32)

    @classmethod
    def empty(cls, points_per_object=DEFAULT_POINTS_PER_OBJECT, frame_id=''):
        """Return a scene with no objects."""
        return cls(points=np.zeros((0, points_per_object, POINT_DIM), np.float32),
                   centers=np.zeros((0, 3), np.float32), sizes=np.zeros((0, 3), np.float32),
                   colors=np.zeros((0, 3), np.float32), scales=np.zeros(0, np.float32),
                   point_counts=np.zeros(0, np.int64), ids=np.zeros(0, np.int64),
                   frame_id=frame_id)

    @classmethod
    def from_object_clouds(cls, clouds, colors=None, ids=None, labels=None,
                           points_per_object=DEFAULT_POINTS_PER_OBJECT, rng=None,
                           frame_id='', stamp=0.0):
        """
        Build tokens from raw per-object clouds.

        :param clouds: K arrays (N_k, 3) of xyz [m]
        :param colors: K arrays (N_k, 3) of rgb in [0, 1], or None for grey
        :param ids: K ids (default 0..K-1)
        :param labels: K names
        :param rng: numpy Generator for the sampling (default: seeded 0, deterministic)
        """
        rng = rng if rng is not None else np.random.default_rng(0)
        count = len(clouds)
        points = np.zeros((count, points_per_object, POINT_DIM), np.float32)
        centers = np.zeros((count, 3), np.float32)
        sizes = np.zeros((count, 3), np.float32)
        mean_colors = np.zeros((count, 3), np.float32)
        scales = np.zeros(count, np.float32)
        counts = np.zeros(count, np.int64)
        for k, xyz in enumerate(clouds):
            xyz = np.asarray(xyz, np.float32).reshape(-1, 3)
            if len(xyz) == 0:
                raise ValueError(f'object {k} has no points')
            rgb = (np.full_like(xyz, 0.5) if colors is None or colors[k] is None
                   else np.asarray(colors[k], np.float32).reshape(-1, 3))
            low, high = xyz.min(axis=0), xyz.max(axis=0)
            centers[k], sizes[k] = (low + high) / 2, high - low
            mean_colors[k] = rgb.mean(axis=0)
            counts[k] = len(xyz)
            chosen = sample_indices(len(xyz), points_per_object, rng)
            points[k], scales[k] = normalize_object_points(xyz[chosen], rgb[chosen])
        return cls(points=points, centers=centers, sizes=sizes, colors=mean_colors,
                   scales=scales, point_counts=counts,
                   ids=np.arange(count, dtype=np.int64) if ids is None else np.asarray(ids),
                   labels=list(labels) if labels is not None else [], frame_id=frame_id,
                   stamp=stamp)


def sample_indices(num_points, num_samples, rng) -> np.ndarray:
    """Pick ``num_samples`` indices of ``num_points``, with replacement only when too few."""
    if num_points <= 0:
        raise ValueError(f'cannot sample from {num_points} points')
    return rng.choice(num_points, size=num_samples, replace=num_points < num_samples)


def normalize_object_points(xyz, rgb):
    """
    Normalise one object's points as LEO does.

    xyz is centred on the point mean and divided by the largest distance from it (unit
    sphere); rgb in [0, 1] is mapped to [-1, 1].

    :param xyz: (P, 3) positions [m]
    :param rgb: (P, 3) colours in [0, 1]
    :return: (P, 6) float32 points and the scale [m] that was divided out
    """
    xyz = np.asarray(xyz, np.float32)
    centred = xyz - xyz.mean(axis=0)
    scale = float(np.sqrt((centred ** 2).sum(axis=1)).max()) if len(xyz) else 0.0
    scale = max(scale, 1e-6)
    out = np.empty((len(xyz), POINT_DIM), np.float32)
    out[:, :3] = centred / scale
    out[:, 3:] = np.asarray(rgb, np.float32) * 2.0 - 1.0
    return out, scale
