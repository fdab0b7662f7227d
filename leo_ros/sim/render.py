"""
Headless RGB-D rendering by ray casting (Open3D ``RaycastingScene``, no ROS, no display).

Cameras follow the optical-frame convention (z forward, x right, y down). Depth is the z
coordinate in that frame, so ``points = depth * ((u - cx) / fx, (v - cy) / fy, 1)``.
"""

from dataclasses import dataclass, field
import math

from leo_ros.sim.sensor import apply_sensor, SensorConfig, shiny_instances, Surface
import numpy as np
import open3d as o3d

#: Instance id of pixels that hit the floor or a wall (objects start at 1).
STRUCTURE_ID = 0
#: Instance id of pixels that hit nothing within range.
NO_HIT_ID = -1


@dataclass
class CameraConfig:
    """
    A pinhole RGB-D camera.

    :param width: image width [px]
    :param height: image height [px]
    :param fov_x: horizontal field of view [deg]
    :param min_range: nearer hits are dropped [m]
    :param max_range: farther hits are dropped [m]
    :param depth_noise: std of the depth noise at 1 m [m], growing with depth squared
    :param dropout: share of pixels with no depth (NaN), drawn at random
    :param color_noise: std of the colour noise in [0, 1] units
    :param sensor: the depth-camera model (noise growing with depth squared, quantisation,
        missing returns at edges, in the projector's shadow and on dark, shiny or grazing
        surfaces, per-frame jitter); off by default, see :mod:`leo_ros.sim.sensor`
    """

    width: int = 640
    height: int = 480
    fov_x: float = 69.0
    min_range: float = 0.1
    max_range: float = 10.0
    depth_noise: float = 0.0
    dropout: float = 0.0
    color_noise: float = 0.0
    sensor: SensorConfig = field(default_factory=SensorConfig)

    def __post_init__(self):
        if self.width < 2 or self.height < 2:
            raise ValueError(f'CameraConfig size must be >= 2x2, got {self.width}x{self.height}')
        if not 1.0 <= self.fov_x <= 170.0:
            raise ValueError(f'CameraConfig.fov_x must be in [1, 170] deg, got {self.fov_x}')
        if not 0 < self.min_range < self.max_range:
            raise ValueError(f'CameraConfig ranges must satisfy 0 < min < max, got '
                             f'{self.min_range}, {self.max_range}')
        for name in ('depth_noise', 'color_noise'):
            if getattr(self, name) < 0:
                raise ValueError(f'CameraConfig.{name} must be >= 0, got {getattr(self, name)}')
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f'CameraConfig.dropout must be in [0, 1), got {self.dropout}')
        if not isinstance(self.sensor, SensorConfig):
            raise ValueError(f'CameraConfig.sensor must be a SensorConfig, got {self.sensor!r}')

    @property
    def intrinsics(self) -> np.ndarray:
        """Return the (3, 3) matrix K (square pixels, principal point at the centre)."""
        focal = self.width / 2 / math.tan(math.radians(self.fov_x) / 2)
        return np.array([[focal, 0.0, (self.width - 1) / 2],
                         [0.0, focal, (self.height - 1) / 2], [0.0, 0.0, 1.0]])


@dataclass
class Frame:
    """
    One rendered RGB-D frame.

    The noise-free arrays are shared with the renderer's cache of the last view and are
    read-only; copy one before changing it in place.
    """

    rgb: np.ndarray            # (H, W, 3) uint8
    depth: np.ndarray          # (H, W) float32 [m], NaN where there is no return
    points: np.ndarray         # (H, W, 3) float32 in the optical frame, NaN where invalid
    instance_ids: np.ndarray   # (H, W) int32: object id, 0 floor/walls, -1 nothing
    intrinsics: np.ndarray     # (3, 3)
    camera_pose: np.ndarray    # (4, 4) optical frame in the map
    stamp: float = 0.0

    def points_in_map(self) -> np.ndarray:
        """Return the points in the map frame, (H, W, 3) float32."""
        rotation = self.camera_pose[:3, :3].astype(np.float32)
        return self.points @ rotation.T + self.camera_pose[:3, 3].astype(np.float32)


class Renderer:
    """
    Ray-cast a list of coloured triangle meshes, each with an instance id.

    :param config: the camera
    """

    LIGHT = np.array([0.3, 0.5, 0.81]) / np.linalg.norm([0.3, 0.5, 0.81])
    BACKGROUND = (0.05, 0.05, 0.07)

    def __init__(self, config: CameraConfig = None, seed: int = 0):
        self.config = config or CameraConfig()
        self.rng = np.random.default_rng(seed)
        k = self.config.intrinsics
        u = (np.arange(self.config.width) - k[0, 2]) / k[0, 0]
        v = (np.arange(self.config.height) - k[1, 2]) / k[1, 1]
        uu, vv = np.meshgrid(u, v)
        self._directions = np.stack([uu, vv, np.ones_like(uu)], -1).astype(np.float32)  # (H, W, 3)
        self._scene = None
        self._colors = np.zeros((0, 3), np.float32)
        self._offsets = np.zeros(0, np.int64)
        self._instance_of_geometry = np.zeros(0, np.int32)
        self._cache = None  # (pose bytes, noise-free arrays) of the last ray cast

    def set_meshes(self, meshes):
        """
        Replace the geometry.

        :param meshes: list of (instance id, vertices (V, 3), triangles (T, 3), colours (T, 3))
        """
        scene = o3d.t.geometry.RaycastingScene()
        colors, offsets, instances, offset = [], [], [], 0
        for instance_id, vertices, triangles, triangle_colors in meshes:
            geometry_id = scene.add_triangles(
                o3d.core.Tensor(np.asarray(vertices, np.float32)),
                o3d.core.Tensor(np.asarray(triangles, np.uint32)))
            assert geometry_id == len(offsets)  # ids are handed out in order
            offsets.append(offset)
            colors.append(np.asarray(triangle_colors, np.float32))
            instances.append(instance_id)
            offset += len(triangles)
        self._scene = scene
        self._cache = None
        self._colors = np.concatenate(colors) if colors else np.zeros((0, 3), np.float32)
        self._offsets = np.asarray(offsets, np.int64)
        self._instance_of_geometry = np.asarray(instances, np.int32)
        # The extra last rows stand for "no hit": background colour, instance -1.
        self._offsets_ext = np.append(self._offsets, len(self._colors)).astype(np.intp)
        self._colors_ext = np.concatenate([self._colors, [self.BACKGROUND]]).astype(np.float32)
        self._instances_ext = np.append(self._instance_of_geometry, NO_HIT_ID).astype(np.int32)
        # Flat shading: every triangle has one normal, so its lit colour is fixed per scene.
        shaded = self._colors_ext.copy()
        normals = np.zeros((len(self._colors) + 1, 3), np.float32)       # no hit: zero normal
        if len(self._colors):
            normals[:-1] = np.concatenate([_triangle_normals(v, t) for _, v, t, _ in meshes])
            shade = 0.45 + 0.55 * np.abs(normals[:-1] @ self.LIGHT)  # both faces lit
            shaded[:-1] *= shade[:, None]
        self._normals_ext = normals                                      # (T + 1, 3)
        # Brightness of the unlit colour (Rec. 601 luma): what the depth sensor's IR sees.
        self._albedo_ext = (self._colors_ext @ np.array([0.299, 0.587, 0.114], np.float32)
                            ).astype(np.float32)                         # (T + 1,)
        self._rgb_ext = (np.clip(shaded, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)

    def render(self, camera_pose, stamp=0.0) -> Frame:
        """
        Render the view of a camera.

        :param camera_pose: (4, 4) pose of the optical frame in the map
        """
        if self._scene is None:
            raise RuntimeError('Renderer.render called before set_meshes')
        cfg = self.config
        pose = np.asarray(camera_pose, np.float64)
        key = pose.tobytes()
        if self._cache is not None and self._cache[0] == key:
            # Same geometry, same pose: the noise-free image is the same; skip the ray cast.
            rgb, depth, instance_ids, clean_points, surface = self._cache[1]
        else:
            rgb, depth, instance_ids, index = self._cast(pose)
            clean_points = self._directions * depth[..., None]  # (H, W, 3), NaN: no depth
            surface = self._surface(pose, depth, instance_ids, index) if cfg.sensor.enabled \
                else None
            for array in (rgb, depth, instance_ids, clean_points):
                array.flags.writeable = False  # shared by cached frames
            self._cache = (key, (rgb, depth, instance_ids, clean_points, surface))
        points = clean_points
        if surface is not None:
            depth = apply_sensor(depth, surface, cfg.sensor, self.rng)
            depth = np.where((depth >= cfg.min_range) & (depth <= cfg.max_range), depth,
                             np.float32(np.nan))
        if cfg.depth_noise > 0:
            depth = depth + self.rng.normal(0.0, 1.0, depth.shape).astype(np.float32) \
                * np.float32(cfg.depth_noise) * depth ** 2
        if cfg.dropout > 0:
            depth = np.where(self.rng.random(depth.shape) < cfg.dropout, np.float32(np.nan),
                             depth)
        if cfg.color_noise > 0:
            noise = self.rng.normal(0.0, cfg.color_noise * 255.0, rgb.shape)
            rgb = np.clip(rgb + noise, 0, 255).astype(np.uint8)
        if cfg.depth_noise > 0 or cfg.dropout > 0 or surface is not None:
            points = self._directions * depth[..., None]
        return Frame(rgb=rgb, depth=depth, points=points, instance_ids=instance_ids,
                     intrinsics=cfg.intrinsics, camera_pose=pose, stamp=stamp)

    def _cast(self, pose):
        """
        Ray-cast the camera's view.

        :return: noise-free rgb (H, W, 3) uint8, depth (H, W) float32, instance ids (H, W)
            int32 and the triangle row of each pixel (H, W) (the last row: no hit)
        """
        cfg = self.config
        # (H, W, 6) rays built in C++: origin and direction (optical z = 1) in the map frame.
        # Open3D puts pixel u at u + 0.5, so the principal point moves by half a pixel.
        shifted = cfg.intrinsics + np.array([[0, 0, 0.5], [0, 0, 0.5], [0, 0, 0]])
        rays = o3d.t.geometry.RaycastingScene.create_rays_pinhole(
            o3d.core.Tensor(shifted), o3d.core.Tensor(np.linalg.inv(pose)),
            cfg.width, cfg.height)
        hits = self._scene.cast_rays(rays)
        depth = hits['t_hit'].numpy()  # (H, W): ray parameter = optical z since dir z is 1
        geometry = hits['geometry_ids'].numpy()    # (H, W) uint32, INVALID_ID on a miss
        primitive = hits['primitive_ids'].numpy()  # (H, W) uint32
        valid = (geometry != o3d.t.geometry.RaycastingScene.INVALID_ID) \
            & (depth >= cfg.min_range) & (depth <= cfg.max_range)
        # Whole-image table look-ups: a miss reads the extra last row (background, id -1).
        missing = len(self._offsets)
        geometry = np.where(valid, geometry, missing).astype(np.intp)
        index = self._offsets_ext[geometry] + np.where(valid, primitive, 0).astype(np.intp)
        rgb = self._rgb_ext[index]  # (H, W, 3) uint8, flat-shaded per triangle
        index = np.where(valid, index, len(self._colors))
        return rgb, np.where(valid, depth, np.nan).astype(np.float32), \
            self._instances_ext[geometry], index

    def _surface(self, pose, depth, instance_ids, index) -> Surface:
        """
        Return what the sensor model needs per pixel: brightness, incidence, shininess, shadow.

        The shadow is a second ray cast, from the projector (``sensor.baseline`` along the
        camera's x axis) to every hit point: a point the projector does not see gets no depth.
        """
        sensor = self.config.sensor
        rotation = pose[:3, :3].astype(np.float32)
        # Written out per component: BLAS matrix products stall when the cores are shared.
        directions = np.moveaxis(self._directions, -1, 0)                  # (3, H, W) optical
        normals = self._normals_ext[index]                                 # (H, W, 3) in the map
        facing = sum((normals[..., 0] * rotation[0, k] + normals[..., 1] * rotation[1, k]
                      + normals[..., 2] * rotation[2, k]) * directions[k] for k in range(3))
        cos_incidence = np.abs(facing) / np.sqrt(sum(d * d for d in directions))
        hit = np.isfinite(depth)
        shadow = np.zeros(depth.shape, bool)
        if sensor.baseline != 0 and hit.any():
            # From the projector, at sensor.baseline on the optical x axis, to each hit point.
            offset = directions[:, hit] * depth[hit]                       # (3, N) optical
            offset[0] -= np.float32(sensor.baseline)
            distance = np.sqrt(offset[0] ** 2 + offset[1] ** 2 + offset[2] ** 2)   # (N,)
            rays = np.empty((len(distance), 6), np.float32)                # (N, 6) in the map
            rays[:, :3] = pose[:3, 3] + sensor.baseline * pose[:3, 0]
            for k in range(3):
                rays[:, 3 + k] = (rotation[k, 0] * offset[0] + rotation[k, 1] * offset[1]
                                  + rotation[k, 2] * offset[2]) / distance
            t_hit = self._scene.cast_rays(o3d.core.Tensor(rays))['t_hit'].numpy()
            shadow[hit] = t_hit < distance - np.maximum(0.004, 0.004 * distance)
        return Surface(albedo=self._albedo_ext[index], cos_incidence=cos_incidence,
                       shiny=shiny_instances(instance_ids, sensor), shadow=shadow)


def _triangle_normals(vertices, triangles):
    """Return unit normals of triangles, (T, 3)."""
    corners = np.asarray(vertices, float)[np.asarray(triangles)]  # (T, 3, 3)
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
