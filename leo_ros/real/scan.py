"""
A single scan as the agent sees it: points in a map frame with z up, and object tokens.

A scan file has no pose. Without one, the camera is placed the way the built-in world's
robot carries it, from the scan alone:

- "up" is the normal of the dominant plane the segmentation finds (the largest support
  surface), turned towards the camera;
- that plane is taken to be a table top ``table_height`` (0.75 m, the built-in world's tables
  are 0.7-0.8 m) above the floor when the camera is within ``max_table_distance`` of it, and the
  floor otherwise; this fixes the camera's height;
- the map frame (REP-103: x forward, y left, z up) has its origin on the floor under the
  camera, x along the camera's viewing direction; the agent stands there facing +x.

``--pose x,y,z,qx,qy,qz,qw`` (the camera optical frame in the map) replaces all of it.
"""

from dataclasses import dataclass, field
import math
from pathlib import Path

from leo_ros.perception.segmentation import segment, SegmentationConfig
import numpy as np


class ScanError(ValueError):
    """A scan that cannot be used; the message says why."""


@dataclass
class ScanPoseConfig:
    """
    How the camera is placed when the scan comes without a pose.

    :param table_height: height of the dominant plane when it is a table top [m]
    :param max_table_distance: a dominant plane farther from the camera is the floor [m]
    :param min_plane_fraction: the dominant plane holds at least this share of valid points
    """

    table_height: float = 0.75
    max_table_distance: float = 1.5
    min_plane_fraction: float = 0.1

    def __post_init__(self):
        if not 0.0 <= self.table_height <= 2.0:
            raise ValueError(f'ScanPoseConfig.table_height must be in [0, 2] m, '
                             f'got {self.table_height}')
        if not self.max_table_distance > 0:
            raise ValueError(f'ScanPoseConfig.max_table_distance must be > 0, '
                             f'got {self.max_table_distance}')
        if not 0.0 < self.min_plane_fraction < 1.0:
            raise ValueError(f'ScanPoseConfig.min_plane_fraction must be in (0, 1), '
                             f'got {self.min_plane_fraction}')


@dataclass
class Scan:
    """One point cloud file, in the sensor's frame."""

    xyz: np.ndarray                 # (H, W, 3) organised or (N, 3) [m], NaN invalid
    rgb: np.ndarray = None          # same shape, [0, 1], or None (no colour in the file)
    labels: np.ndarray = None       # per-point 'label' field shaped like xyz[..., 0], or None
    name: str = ''
    notes: list = field(default_factory=list)   # what was odd about the file

    @property
    def organized(self) -> bool:
        """Return True for an image of points."""
        return self.xyz.ndim == 3

    @property
    def valid_points(self) -> int:
        """Return the number of finite points."""
        return int(np.isfinite(self.xyz).all(axis=-1).sum())

    def image(self):
        """Return the colours as an ego-view image, (H, W, 3) uint8, or None."""
        if self.rgb is None or not self.organized:
            return None
        return (np.clip(np.nan_to_num(self.rgb), 0.0, 1.0) * 255).astype(np.uint8)


def load_scan(path) -> Scan:
    """
    Read a PCD file into a :class:`Scan`.

    :raise ScanError: unreadable file, no x/y/z, or no finite point
    """
    from leo_ros.perception.pcd import read_pcd
    path = Path(path)
    try:
        cloud = read_pcd(path)
    except (OSError, ValueError) as error:
        raise ScanError(str(error)) from error
    notes = []
    xyz, rgb = cloud.xyz, cloud.rgb
    labels = cloud.fields.get('label')
    if cloud.organized:
        xyz, rgb = cloud.grid()
        labels = None if labels is None else np.asarray(labels).reshape(xyz.shape[:2])
    else:
        notes.append('not organised: segmented as a set of points, no ego-view image')
    if rgb is None:
        notes.append('no colour: objects are grey to the agent')
    scan = Scan(xyz=np.asarray(xyz, np.float32), rgb=rgb, labels=labels, name=path.stem,
                notes=notes)
    valid = scan.valid_points
    if valid == 0:
        raise ScanError(f'{path} has no finite point')
    invalid = int(np.prod(scan.xyz.shape[:-1])) - valid
    if invalid:
        notes.append(f'{invalid} of {invalid + valid} points are NaN or infinite (ignored)')
    return scan


def pose_from_plane(normal, offset, config: ScanPoseConfig = None):
    """
    Return the camera-to-map transform that puts a plane horizontal at a plausible height.

    :param normal: (3,) unit normal of the plane in the camera frame, towards the camera
    :param offset: the plane is ``normal . p + offset = 0``; ``offset`` > 0 is the camera's
        distance to it [m]
    :return: (4, 4) camera optical frame -> map, and the camera's height [m]
    """
    config = config or ScanPoseConfig()
    up = np.asarray(normal, np.float64)
    up /= np.linalg.norm(up)
    distance = float(offset)
    view = np.array([0.0, 0.0, 1.0])              # optical axis
    forward = view - view.dot(up) * up
    if np.linalg.norm(forward) < 1e-3:            # looking straight down: image up is forward
        image_up = np.array([0.0, -1.0, 0.0])
        forward = image_up - image_up.dot(up) * up
    forward /= np.linalg.norm(forward)
    left = np.cross(up, forward)
    height = distance + config.table_height if distance <= config.max_table_distance \
        else distance
    transform = np.eye(4)
    transform[:3, :3] = np.stack([forward, left, up])   # rows: map axes in the camera frame
    transform[:3, 3] = [0.0, 0.0, height]
    return transform, height


def pose_from_text(text: str):
    """
    Parse ``x,y,z,qx,qy,qz,qw`` (the camera optical frame in the map) into a (4, 4) matrix.

    :raise ValueError: naming the text when it is not seven finite numbers with a non-zero
        quaternion
    """
    try:
        values = [float(v) for v in str(text).replace(' ', '').split(',')]
    except ValueError:
        values = []
    if len(values) != 7 or not all(math.isfinite(v) for v in values):
        raise ValueError(f'a pose is x,y,z,qx,qy,qz,qw (7 numbers), got {text!r}')
    x, y, z, qx, qy, qz, qw = values
    norm = math.sqrt(qx * qx + qy * qy + qz * qz + qw * qw)
    if norm < 1e-9:
        raise ValueError(f'the pose quaternion is zero: {text!r}')
    from transforms3d.quaternions import quat2mat
    transform = np.eye(4)
    transform[:3, :3] = quat2mat([qw / norm, qx / norm, qy / norm, qz / norm])
    transform[:3, 3] = [x, y, z]
    return transform


def agent_pose(camera_to_map) -> tuple:
    """Return the agent's (x, y, yaw) under the camera, facing where it looks."""
    camera_to_map = np.asarray(camera_to_map, np.float64)
    view = camera_to_map[:3, 2]                   # optical z in the map
    yaw = math.atan2(view[1], view[0]) if np.linalg.norm(view[:2]) > 1e-6 else 0.0
    return float(camera_to_map[0, 3]), float(camera_to_map[1, 3]), float(yaw)


@dataclass
class PerceivedScan:
    """A scan segmented and placed in the map frame."""

    scan: Scan
    tokens: object                  # SceneTokens in the map frame
    camera_to_map: np.ndarray       # (4, 4)
    agent_pose: tuple               # (x, y, yaw)
    segmentation: object            # leo_ros.perception.segmentation.Segmentation
    pose_source: str                # 'given' or how it was estimated
    up: np.ndarray = None           # (3,) up in the camera frame (estimated), or None


def perceive(scan: Scan, camera_to_map=None, classify=None, pose_config=None,
             segmentation_config=None, points_per_object=None, seed=0,
             instances=None) -> PerceivedScan:
    """
    Segment a scan into objects and turn them into tokens in the map frame.

    :param camera_to_map: (4, 4) camera pose, or None to estimate it (module docstring)
    :param classify: optional ``classify(tokens) -> (labels, confidences)``
    :param instances: per-point object ids shaped like ``xyz[..., 0]`` (> 0 object, 0
        support, < 0 none) to take the objects from instead of the segmentation (the pose is
        still estimated from the scan); None: segment by geometry, as on the robot
    :raise ScanError: no pose given and no dominant plane to estimate one from
    """
    from leo_ros.perception.pipeline import object_clouds
    from leo_ros.scene_tokens import DEFAULT_POINTS_PER_OBJECT, SceneTokens
    pose_config = pose_config or ScanPoseConfig()
    segmentation = segment(scan.xyz, segmentation_config or SegmentationConfig(),
                           rgb=scan.rgb)
    up = None
    if camera_to_map is None:
        plane = dominant_plane(segmentation, scan.xyz, pose_config)
        camera_to_map, height = pose_from_plane(plane.normal, plane.offset, pose_config)
        up = np.asarray(plane.normal, np.float64)
        kind = 'a table top' if plane.offset <= pose_config.max_table_distance else 'the floor'
        source = (f'estimated: dominant plane {plane.offset:.2f} m from the camera taken as '
                  f'{kind}, camera {height:.2f} m above the floor')
    else:
        camera_to_map = np.asarray(camera_to_map, np.float64)
        source = 'given'
    if instances is not None:
        from leo_ros.perception.segmentation import segmentation_from_instances
        planes = segmentation.planes
        segmentation = segmentation_from_instances(instances, scan.xyz, segmentation_config)
        segmentation.planes = planes
    clouds, colors = object_clouds(scan.xyz, scan.rgb, segmentation)
    clouds = [(c @ camera_to_map[:3, :3].T + camera_to_map[:3, 3]).astype(np.float32)
              for c in clouds]
    count = points_per_object or DEFAULT_POINTS_PER_OBJECT
    if clouds:
        tokens = SceneTokens.from_object_clouds(clouds, colors, points_per_object=count,
                                                rng=np.random.default_rng(seed),
                                                frame_id='map')
        if classify is not None:
            labels, confidences = classify(tokens)
            tokens.labels = list(labels)
            tokens.confidences = np.asarray(confidences, np.float32)
    else:
        tokens = SceneTokens.empty(count, 'map')
    return PerceivedScan(scan=scan, tokens=tokens, camera_to_map=camera_to_map,
                         agent_pose=agent_pose(camera_to_map), segmentation=segmentation,
                         pose_source=source, up=up)


def dominant_plane(segmentation, xyz, config: ScanPoseConfig):
    """
    Return the largest support plane, or raise :class:`ScanError` when there is none.

    :param xyz: the scan's points (the plane's share of the finite ones is checked)
    """
    planes = sorted(segmentation.planes, key=lambda p: -p.inliers)
    if not planes:
        raise ScanError('no dominant plane in the scan (no table or floor found): give the '
                        'camera pose with --pose x,y,z,qx,qy,qz,qw')
    plane = planes[0]
    points = np.asarray(xyz, np.float32).reshape(-1, 3)
    points = points[np.isfinite(points).all(axis=1)]                     # (N, 3)
    distance = np.abs(points @ np.asarray(plane.normal, np.float32) + plane.offset)
    tolerance = 0.01 + 0.01 * (points ** 2).sum(axis=1)                 # Kinect-like noise
    share = float((distance < tolerance).mean()) if len(points) else 0.0
    if share < config.min_plane_fraction:
        raise ScanError(f'the largest plane holds only {share:.1%} of the points '
                        f'(< {config.min_plane_fraction:.0%}): too small to tell up; give the '
                        'camera pose with --pose')
    return plane
