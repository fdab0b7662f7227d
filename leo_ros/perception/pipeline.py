"""
The scene tokenizer: cloud in, segmented objects and LEO object tokens out (no ROS).

``PerceptionPipeline.process`` segments one frame, cuts out each object's points, moves them into
the fixed frame (when a camera pose is given), merges them into the scene memory (when enabled)
and returns :class:`~leo_ros.scene_tokens.SceneTokens` of the whole remembered scene.

A category classifier can be plugged in as ``classify(tokens) -> (labels, confidences)``; its
answer is cached per tracked object, so each object is classified once.
"""

from dataclasses import dataclass, field
import time

from leo_ros.perception.memory import SceneMemory, SceneMemoryConfig
from leo_ros.perception.segmentation import (segment, Segmentation,
                                             segmentation_from_instances, SegmentationConfig)
from leo_ros.scene_tokens import DEFAULT_POINTS_PER_OBJECT, SceneTokens
import numpy as np


@dataclass
class PerceptionConfig:
    """Parameters of :class:`PerceptionPipeline`."""

    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    memory: SceneMemoryConfig = field(default_factory=SceneMemoryConfig)
    use_memory: bool = True             # False: tokens of the current frame only
    points_per_object: int = DEFAULT_POINTS_PER_OBJECT
    max_points: int = 4_000_000         # larger clouds are refused (bounded time and memory)
    seed: int = 0

    def __post_init__(self):
        if int(self.points_per_object) < 1:
            raise ValueError('PerceptionConfig.points_per_object must be >= 1, '
                             f'got {self.points_per_object}')
        if int(self.max_points) < 1:
            raise ValueError(f'PerceptionConfig.max_points must be >= 1, got {self.max_points}')


@dataclass
class PerceptionResult:
    """What one frame produced."""

    segmentation: Segmentation
    tokens: SceneTokens                 # the scene (memory) or this frame's objects
    frame_ids: np.ndarray               # (K_frame,) id of each of this frame's objects
    seconds: dict = field(default_factory=dict)     # time per stage


class PerceptionPipeline:
    """
    Segmentation, per-object sampling and scene memory for one camera.

    :param config: :class:`PerceptionConfig`
    :param classify: optional ``classify(tokens) -> (labels, confidences)`` for new objects
    """

    def __init__(self, config=None, classify=None):
        self.config = config or PerceptionConfig()
        self.classify = classify
        self.memory = SceneMemory(self.config.memory, seed=self.config.seed)
        self._rng = np.random.default_rng(self.config.seed)

    def process(self, xyz, rgb=None, camera_to_fixed=None, frame_id='', stamp=0.0,
                instances=None):
        """
        Process one frame.

        :param xyz: (H, W, 3) or (N, 3) points in the camera frame [m], NaN invalid
        :param rgb: same shape, colours in [0, 1], or None
        :param camera_to_fixed: (4, 4) pose of the camera in the fixed frame, or None to keep
            the camera frame
        :param frame_id: frame of the returned tokens
        :param stamp: time of the frame [s]
        :param instances: per-point instance ids shaped like ``xyz[..., 0]`` (> 0 object,
            0 support, < 0 none) to use instead of geometric segmentation, or None
        :return: :class:`PerceptionResult`; raises ValueError on malformed input
        """
        config = self.config
        xyz = np.asarray(xyz)
        if xyz.ndim not in (2, 3) or xyz.shape[-1] != 3:
            raise ValueError(f'xyz must be (H, W, 3) or (N, 3), got {xyz.shape}')
        count = int(np.prod(xyz.shape[:-1]))
        if count > config.max_points:
            raise ValueError(f'cloud has {count} points, more than max_points '
                             f'{config.max_points}')
        if rgb is not None and np.shape(rgb) != xyz.shape:
            raise ValueError(f'rgb shape {np.shape(rgb)} does not match xyz {xyz.shape}')
        seconds = {}
        start = time.perf_counter()
        segmentation = segment(xyz, config.segmentation, rgb=rgb) if instances is None else \
            segmentation_from_instances(instances, xyz, config.segmentation)
        seconds['segment'] = time.perf_counter() - start

        start = time.perf_counter()
        clouds, colors = object_clouds(xyz, rgb, segmentation)
        if camera_to_fixed is not None:
            transform = np.asarray(camera_to_fixed, np.float64)
            clouds = [(c @ transform[:3, :3].T + transform[:3, 3]).astype(np.float32)
                      for c in clouds]
        if config.use_memory:
            frame_ids = np.asarray(self.memory.update(clouds, colors, stamp), np.int64)
            tokens = self._memory_tokens(frame_id, stamp)
        else:
            frame_ids = np.arange(len(clouds), dtype=np.int64)
            tokens = SceneTokens.empty(config.points_per_object, frame_id) if not clouds else \
                SceneTokens.from_object_clouds(clouds, colors, ids=frame_ids,
                                               points_per_object=config.points_per_object,
                                               rng=self._rng, frame_id=frame_id, stamp=stamp)
            if self.classify is not None and len(tokens):
                labels, confidences = self.classify(tokens)
                tokens.labels = list(labels)
                tokens.confidences = np.asarray(confidences, np.float32)
        seconds['tokens'] = time.perf_counter() - start
        return PerceptionResult(segmentation=segmentation, tokens=tokens, frame_ids=frame_ids,
                                seconds=seconds)

    def reset(self):
        """Forget the remembered scene."""
        self.memory.clear()

    def _memory_tokens(self, frame_id, stamp):
        objects = self.memory.objects
        if not objects:
            return SceneTokens.empty(self.config.points_per_object, frame_id)
        tokens = SceneTokens.from_object_clouds(
            [o.xyz for o in objects], [o.rgb for o in objects], ids=[o.object_id for o in objects],
            points_per_object=self.config.points_per_object, rng=self._rng,
            frame_id=frame_id, stamp=stamp)
        if self.classify is not None:
            fresh = [k for k, o in enumerate(objects) if not o.label]
            if fresh:
                subset = select_tokens(tokens, fresh)
                labels, confidences = self.classify(subset)
                for k, label, confidence in zip(fresh, labels, confidences):
                    objects[k].label, objects[k].confidence = str(label), float(confidence)
        tokens.labels = [o.label or 'unknown' for o in objects]
        tokens.confidences = np.array([o.confidence for o in objects], np.float32)
        return tokens


def object_clouds(xyz, rgb, segmentation):
    """
    Cut out each object's points.

    :param xyz: (H, W, 3) or (N, 3)
    :param rgb: same shape in [0, 1], or None
    :return: K arrays (N_k, 3) float32, and K arrays (N_k, 3) float32 colours (or None each)
    """
    flat_xyz = np.asarray(xyz, np.float32).reshape(-1, 3)
    flat_rgb = None if rgb is None else np.asarray(rgb, np.float32).reshape(-1, 3)
    clouds, colors = [], []
    for indices in segmentation.object_indices():
        clouds.append(flat_xyz[indices])
        colors.append(None if flat_rgb is None else np.clip(flat_rgb[indices], 0.0, 1.0))
    return clouds, colors


def select_tokens(tokens, keep):
    """Return the tokens of the objects at positions ``keep``."""
    keep = np.asarray(keep, np.int64)
    return SceneTokens(points=tokens.points[keep], centers=tokens.centers[keep],
                       sizes=tokens.sizes[keep], colors=tokens.colors[keep],
                       scales=tokens.scales[keep], point_counts=tokens.point_counts[keep],
                       ids=tokens.ids[keep], labels=[tokens.labels[k] for k in keep],
                       confidences=tokens.confidences[keep], frame_id=tokens.frame_id,
                       stamp=tokens.stamp)


#: 20 distinguishable colours (matplotlib's tab20), indexed by object id
PALETTE = np.array([
    [0.122, 0.467, 0.706], [0.682, 0.780, 0.910], [1.000, 0.498, 0.055], [1.000, 0.733, 0.471],
    [0.173, 0.627, 0.173], [0.596, 0.875, 0.541], [0.839, 0.153, 0.157], [1.000, 0.596, 0.588],
    [0.580, 0.404, 0.741], [0.773, 0.690, 0.835], [0.549, 0.337, 0.294], [0.769, 0.612, 0.580],
    [0.890, 0.467, 0.761], [0.969, 0.714, 0.824], [0.498, 0.498, 0.498], [0.780, 0.780, 0.780],
    [0.737, 0.741, 0.133], [0.859, 0.859, 0.553], [0.090, 0.745, 0.812], [0.620, 0.855, 0.898],
], np.float32)


def stable_colors(ids) -> np.ndarray:
    """Return one colour per object id, the same for an id in every frame, (K, 3) in [0, 1]."""
    return PALETTE[np.asarray(ids, np.int64) % len(PALETTE)]


def label_cloud_colors(labels, frame_ids) -> np.ndarray:
    """
    Colour each point by the stable id of its object, support grey, the rest dark.

    :param labels: (...) segmentation labels (object index, -1, -2)
    :param frame_ids: (K,) id of each object index
    :return: (..., 3) float32 in [0, 1]
    """
    labels = np.asarray(labels)
    colors = np.full(labels.shape + (3,), 0.15, np.float32)
    colors[labels == -2] = 0.55
    objects = labels >= 0
    if objects.any() and len(frame_ids):
        colors[objects] = stable_colors(np.asarray(frame_ids)[labels[objects]])
    return colors
