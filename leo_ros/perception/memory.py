"""
Scene memory: objects seen in successive frames, merged by overlap in a fixed frame.

Each tracked object keeps a bounded cloud (xyz + rgb) in the fixed frame and the set of voxels
it occupies. A new detection joins the tracked object whose voxels it overlaps most (overlap =
shared voxels / voxels of the smaller of the two), if that overlap reaches ``merge_overlap``;
otherwise it starts a new object with a new id. Ids are never reused.
"""

from dataclasses import dataclass, field
import math

import numpy as np

# Voxel keys pack three 21-bit signed indices into one int64.
_KEY_BITS = 21
_KEY_OFFSET = 1 << (_KEY_BITS - 1)


@dataclass
class SceneMemoryConfig:
    """Parameters of :class:`SceneMemory`."""

    voxel_size: float = 0.02            # overlap grid [m]
    merge_overlap: float = 0.3          # shared voxels / voxels of the smaller object
    max_points_per_object: int = 8192   # cloud kept per object (random subset beyond)
    max_objects: int = 60               # least recently seen objects are forgotten first
    forget_after: float = 0.0           # seconds unseen before an object is forgotten; 0 never

    def __post_init__(self):
        if not (math.isfinite(self.voxel_size) and self.voxel_size > 0):
            raise ValueError(f'SceneMemoryConfig.voxel_size must be > 0, got {self.voxel_size}')
        if not 0.0 < self.merge_overlap <= 1.0:
            raise ValueError('SceneMemoryConfig.merge_overlap must be in (0, 1], '
                             f'got {self.merge_overlap}')
        for name in ('max_points_per_object', 'max_objects'):
            if int(getattr(self, name)) < 1:
                raise ValueError(f'SceneMemoryConfig.{name} must be >= 1, '
                                 f'got {getattr(self, name)}')
        if not (math.isfinite(self.forget_after) and self.forget_after >= 0):
            raise ValueError('SceneMemoryConfig.forget_after must be >= 0, '
                             f'got {self.forget_after}')


@dataclass
class TrackedObject:
    """One object of the scene memory, in the fixed frame."""

    object_id: int
    xyz: np.ndarray             # (N, 3) float32
    rgb: np.ndarray             # (N, 3) float32 in [0, 1]
    voxels: np.ndarray          # (V,) int64 sorted unique voxel keys
    first_seen: float
    last_seen: float
    observations: int = 1
    label: str = ''             # from the classifier hook; '' until classified
    confidence: float = 0.0
    low: np.ndarray = field(default=None)     # (3,) box corners [m]
    high: np.ndarray = field(default=None)

    def __post_init__(self):
        self.low = self.xyz.min(axis=0)
        self.high = self.xyz.max(axis=0)


def voxel_keys_per_point(xyz, voxel_size) -> np.ndarray:
    """Return the voxel key of every point of (N, 3) ``xyz``, (N,) int64 (not unique)."""
    index = np.floor(np.asarray(xyz, np.float64) / voxel_size).astype(np.int64) + _KEY_OFFSET
    index = np.clip(index, 0, (1 << _KEY_BITS) - 1)
    return (index[:, 0] << (2 * _KEY_BITS)) | (index[:, 1] << _KEY_BITS) | index[:, 2]


def voxel_keys(xyz, voxel_size) -> np.ndarray:
    """Return the sorted unique voxel keys of (N, 3) points, (V,) int64."""
    return np.unique(voxel_keys_per_point(xyz, voxel_size))


class SceneMemory:
    """
    Objects merged across frames with stable ids.

    :param config: :class:`SceneMemoryConfig`
    :param seed: seed of the subsampling that bounds each object's cloud
    """

    def __init__(self, config=None, seed=0):
        self.config = config or SceneMemoryConfig()
        self._rng = np.random.default_rng(seed)
        self._objects = {}          # id -> TrackedObject
        self._next_id = 0

    def __len__(self):
        return len(self._objects)

    @property
    def objects(self):
        """Return the tracked objects, oldest id first."""
        return [self._objects[key] for key in sorted(self._objects)]

    def clear(self):
        """Forget every object (a world reset); ids keep counting up, never naming two."""
        self._objects.clear()

    def update(self, clouds, colors, stamp) -> list:
        """
        Merge one frame's detections.

        :param clouds: K arrays (N_k, 3) in the fixed frame [m]
        :param colors: K arrays (N_k, 3) in [0, 1] (or None entries for grey)
        :param stamp: time of the frame [s]
        :return: K ids, the tracked object each detection now belongs to
        """
        config = self.config
        detections = []
        for xyz, rgb in zip(clouds, colors):
            xyz = np.asarray(xyz, np.float32).reshape(-1, 3)
            rgb = (np.full_like(xyz, 0.5) if rgb is None
                   else np.asarray(rgb, np.float32).reshape(-1, 3))
            xyz, rgb = self._bound(xyz, rgb)     # a random subset still covers its voxels
            detections.append((xyz, rgb, voxel_keys(xyz, config.voxel_size)))
        # Score every (detection, tracked) pair whose boxes touch; match greedily, best first.
        tracked = self.objects
        pairs = []
        for k, (xyz, _, keys) in enumerate(detections):
            low, high = xyz.min(axis=0), xyz.max(axis=0)
            for obj in tracked:
                if (low > obj.high + config.voxel_size).any() or \
                        (high < obj.low - config.voxel_size).any():
                    continue
                shared = np.intersect1d(keys, obj.voxels, assume_unique=True).size
                overlap = shared / max(1, min(len(keys), len(obj.voxels)))
                if overlap >= config.merge_overlap:
                    pairs.append((overlap, k, obj.object_id))
        assigned = [None] * len(detections)
        used = set()
        for _, k, object_id in sorted(pairs, reverse=True):
            if assigned[k] is None and object_id not in used:
                assigned[k] = object_id
                used.add(object_id)
        for k, (xyz, rgb, keys) in enumerate(detections):
            if assigned[k] is None:
                assigned[k] = self._add(xyz, rgb, keys, stamp)
            else:
                self._merge(self._objects[assigned[k]], xyz, rgb, keys, stamp)
        self._forget(stamp)
        return assigned

    def _add(self, xyz, rgb, keys, stamp):
        obj = TrackedObject(object_id=self._next_id, xyz=xyz, rgb=rgb, voxels=keys,
                            first_seen=stamp, last_seen=stamp)
        self._objects[obj.object_id] = obj
        self._next_id += 1
        return obj.object_id

    def _merge(self, obj, xyz, rgb, keys, stamp):
        # The new view replaces the old points in the voxels it covers; the rest is kept.
        old_keys = voxel_keys_per_point(obj.xyz, self.config.voxel_size)
        keep = ~np.isin(old_keys, keys)
        merged_xyz = np.concatenate([xyz, obj.xyz[keep]])
        merged_rgb = np.concatenate([rgb, obj.rgb[keep]])
        obj.xyz, obj.rgb = self._bound(merged_xyz, merged_rgb)
        obj.voxels = np.union1d(keys, old_keys[keep])
        obj.low, obj.high = obj.xyz.min(axis=0), obj.xyz.max(axis=0)
        obj.last_seen = stamp
        obj.observations += 1

    def _bound(self, xyz, rgb):
        limit = self.config.max_points_per_object
        if len(xyz) <= limit:
            return xyz, rgb
        chosen = self._rng.choice(len(xyz), limit, replace=False)
        return xyz[chosen], rgb[chosen]

    def _forget(self, stamp):
        config = self.config
        if config.forget_after > 0:
            for obj in list(self._objects.values()):
                if stamp - obj.last_seen > config.forget_after:
                    del self._objects[obj.object_id]
        if len(self._objects) > config.max_objects:
            by_age = sorted(self._objects.values(), key=lambda o: (o.last_seen, o.object_id))
            for obj in by_age[:len(self._objects) - config.max_objects]:
                del self._objects[obj.object_id]
