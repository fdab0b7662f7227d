"""
Object tokens as the robot's perception sees a scene (no ROS).

Training tokens sampled on the world's meshes are whole objects in their true colours; on the
robot, perception_node builds them from camera frames: partial views, shaded colours, objects
hidden behind others missing. :func:`look_around` renders the camera while the robot turns once
on the spot (what ``leo-agent`` clients do after a reset) and runs the same
:class:`~leo_ros.perception.pipeline.PerceptionPipeline` perception_node runs, with the camera's
instance masks (``instance_field: instance`` in the simulator). Each tracked object gets the
world id most of its pixels carry, so samples' targets can be looked up in it.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass
import math

from leo_ros.perception.pipeline import PerceptionConfig, PerceptionPipeline, select_tokens
from leo_ros.perception.segmentation import SegmentationConfig
from leo_ros.scene_tokens import DEFAULT_POINTS_PER_OBJECT
import numpy as np

#: pixels of the simulated robot camera (sim_node) the perception thresholds are tuned for
ROBOT_CAMERA_PIXELS = 640 * 480


@dataclass
class LookAroundConfig:
    """
    How :func:`look_around` observes a scene.

    :param views: frames rendered over one turn on the spot
    :param width: rendered image width [px]
    :param height: rendered image height [px]
    :param min_object_points: perception's smallest object at 640x480 [points]; scaled to the
        rendered size so the same objects are kept
    :param sensor: render depth through the Kinect-like sensor model
        (:mod:`leo_ros.sim.sensor`: noise, quantisation, missing returns) instead of exact depth
    """

    views: int = 12
    width: int = 320
    height: int = 240
    min_object_points: int = 300
    sensor: bool = False

    def __post_init__(self):
        for name in ('views', 'min_object_points'):
            if getattr(self, name) < 1:
                raise ValueError(f'LookAroundConfig.{name} must be >= 1, got '
                                 f'{getattr(self, name)}')
        if not isinstance(self.sensor, bool):
            raise ValueError(f'LookAroundConfig.sensor must be a bool, got {self.sensor!r}')
        if self.width < 16 or self.height < 12:
            raise ValueError(f'LookAroundConfig size must be >= 16x12, got '
                             f'{self.width}x{self.height}')

    @property
    def scaled_min_points(self) -> int:
        """Return ``min_object_points`` for this image size."""
        share = self.width * self.height / ROBOT_CAMERA_PIXELS
        return max(1, int(round(self.min_object_points * share)))


def look_around(world, pose=None, config: LookAroundConfig = None,
                points_per_object=DEFAULT_POINTS_PER_OBJECT, classify=None, seed=0):
    """
    Turn once on the spot at ``pose`` and return the tokens perception remembers.

    The world's robot pose is restored afterwards.

    :param world: a :class:`~leo_ros.sim.world.World`
    :param pose: (x, y, yaw) to look around from (default: the robot's pose)
    :param classify: perception's ``classify(tokens) -> (labels, confidences)``; None labels
        each object with its world category (for training)
    :return: ``SceneTokens`` in the map frame whose ``ids`` are world object ids
    """
    from leo_ros.sim.render import CameraConfig, Renderer
    from leo_ros.sim.sensor import SensorConfig
    config = config or LookAroundConfig()
    camera = CameraConfig(width=config.width, height=config.height,
                          fov_x=world.config.camera.fov_x,
                          sensor=SensorConfig(enabled=config.sensor, seed=seed))
    renderer = Renderer(camera)
    pipeline = PerceptionPipeline(
        PerceptionConfig(segmentation=SegmentationConfig(
            min_object_points=config.scaled_min_points), points_per_object=points_per_object,
            seed=seed), classify=classify)
    home = tuple(world.robot_pose)
    x, y, yaw = home if pose is None else pose
    votes = defaultdict(Counter)          # memory id -> world id -> pixels
    result = None
    for view in range(config.views):
        world.set_robot_pose(x, y, yaw + 2.0 * math.pi * view / config.views)
        frame = world.observe(renderer)
        rgb = frame.rgb.astype(np.float32) / 255.0                 # (H, W, 3)
        result = pipeline.process(frame.points, rgb, frame.camera_pose, 'map', 0.1 * view,
                                  instances=frame.instance_ids)
        labels = result.segmentation.labels                        # (H, W)
        for index, memory_id in enumerate(result.frame_ids):
            ids, counts = np.unique(frame.instance_ids[labels == index], return_counts=True)
            for world_id, count in zip(ids, counts):
                votes[int(memory_id)][int(world_id)] += int(count)
    world.set_robot_pose(*home)
    tokens = result.tokens
    world_ids = np.array([votes[int(i)].most_common(1)[0][0] for i in tokens.ids], np.int64)
    # A world object split over two tracks keeps the larger one, so ids stay unique.
    largest = {}
    for k in np.argsort(-tokens.point_counts, kind='stable'):
        largest.setdefault(int(world_ids[k]), int(k))
    keep = sorted(largest.values())
    tokens = select_tokens(tokens, keep)
    tokens.ids = world_ids[keep]
    if classify is None:
        tokens.labels = [world.scene.object(int(i)).category for i in tokens.ids]
        tokens.confidences = np.ones(len(tokens), np.float32)
    return tokens
