"""
The world: a scene, a kinematic robot (base + arm), a camera and task success (no ROS).

``World(scene_seed)`` is what the simulator node, the data engine and closed-loop evaluation
drive: ``reset(seed)``, ``observe()``, ``scene_tokens()``, ``apply(action)``, ``step(dt)`` and
``task_success(task)``.
"""

from dataclasses import dataclass, field
import math

from leo_ros.actions.types import EEDelta, NavGoal, NavStep, PickPlace, wrap_angle
from leo_ros.scene_tokens import DEFAULT_POINTS_PER_OBJECT, SceneTokens
from leo_ros.sim.geometry import point_rectangle_distance, pose_matrix, sample_mesh_surface
from leo_ros.sim.graph import GraphConfig, SceneGraph
from leo_ros.sim.planning import OccupancyGrid
from leo_ros.sim.render import CameraConfig, Frame, Renderer, STRUCTURE_ID
from leo_ros.sim.scene import (CATEGORIES, FLOOR_ID, FURNITURE_CATEGORIES, generate_scene,
                               SceneConfig, SMALL_CATEGORIES, SUPPORT_CATEGORIES)
import numpy as np

TEXT_FAMILIES = ('object_caption', 'scene_caption', 'qa')
ACTION_FAMILIES = ('nav', 'pick_place', 'plan')


@dataclass
class RobotConfig:
    """
    The simulated robot.

    :param radius: base footprint radius [m]
    :param max_linear: top speed [m/s]
    :param max_angular: top turn rate [rad/s]
    :param arm_reach: horizontal reach of the arm from the base centre [m]
    :param camera_xyz: camera position on the base (x forward, z up) [m]
    :param camera_pitch: camera tilt down [rad]
    :param nav_forward: length of a NavStep 'forward' [m]
    :param nav_turn: angle of a NavStep turn [rad]
    :param cmd_vel_timeout: a velocity command stops applying after this long [s]
    """

    radius: float = 0.22
    max_linear: float = 0.6
    max_angular: float = 1.5
    arm_reach: float = 1.3
    camera_xyz: tuple = (0.1, 0.0, 1.25)
    camera_pitch: float = 0.45
    nav_forward: float = 0.25
    nav_turn: float = math.radians(30.0)
    cmd_vel_timeout: float = 0.5

    def __post_init__(self):
        for name in ('radius', 'max_linear', 'max_angular', 'arm_reach', 'nav_forward',
                     'nav_turn', 'cmd_vel_timeout'):
            if getattr(self, name) <= 0:
                raise ValueError(f'RobotConfig.{name} must be > 0, got {getattr(self, name)}')
        if not -math.pi / 2 <= self.camera_pitch <= math.pi / 2:
            raise ValueError(f'RobotConfig.camera_pitch must be in [-pi/2, pi/2], '
                             f'got {self.camera_pitch}')


@dataclass
class SuccessConfig:
    """
    When a task counts as done.

    :param nav_distance: largest gap between the robot's footprint and the target's [m]
    :param nav_facing: largest angle between the heading and the bearing to the target [rad]
    """

    nav_distance: float = 0.5
    nav_facing: float = math.radians(30.0)

    def __post_init__(self):
        if self.nav_distance <= 0 or not 0 < self.nav_facing <= math.pi:
            raise ValueError(f'SuccessConfig needs nav_distance > 0 and nav_facing in (0, pi], '
                             f'got {self.nav_distance}, {self.nav_facing}')


def camera_mount(robot_config):
    """
    Return the static transforms (base -> camera_link, camera_link -> optical) as (4, 4).

    camera_link sits at ``camera_xyz`` on the base, pitched down by ``camera_pitch`` (x forward,
    z up, REP-103); the optical frame turns it to z forward, x right, y down.
    """
    c, s = math.cos(robot_config.camera_pitch), math.sin(robot_config.camera_pitch)
    link = np.eye(4)
    link[:3, :3] = [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]
    link[:3, 3] = robot_config.camera_xyz
    optical = np.eye(4)
    optical[:3, :3] = [[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]
    return link, optical


@dataclass
class WorldConfig:
    """Everything a world is made of."""

    scene: SceneConfig = field(default_factory=SceneConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    robot: RobotConfig = field(default_factory=RobotConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    success: SuccessConfig = field(default_factory=SuccessConfig)
    grid_resolution: float = 0.1

    def __post_init__(self):
        if not 0.01 <= self.grid_resolution <= 0.5:
            raise ValueError(f'WorldConfig.grid_resolution must be in [0.01, 0.5] m, '
                             f'got {self.grid_resolution}')


@dataclass
class ActionResult:
    """What became of an action: ``ok`` and a sentence saying why not."""

    ok: bool
    message: str = ''


@dataclass
class Task:
    """
    An episode: an instruction, its targets and (for text families) the expected answer.

    :param family: 'nav', 'pick_place', 'plan' or a text family ('qa', 'object_caption', ...)
    :param target_ids: nav: (object,); pick_place/plan: (object, destination support)
    :param actions: the expert's typed actions
    :param situation: the robot's start pose (x, y, yaw)
    :param kind: the data engine's task kind ('qa_size', 'nav', ...; '' when not known)
    """

    family: str
    instruction: str
    scene_seed: int
    target_ids: tuple = ()
    answer: str = ''
    actions: list = field(default_factory=list)
    situation: tuple = None
    kind: str = ''


class World:
    """
    A procedural scene with a robot in it.

    :param scene_seed: the scene to build
    :param config: world configuration
    :param robot_pose: start pose (x, y, yaw); default: a free pose drawn from the seed
    """

    def __init__(self, scene_seed: int = 0, config: WorldConfig = None, robot_pose=None):
        self.config = config or WorldConfig()
        self.renderer = Renderer(self.config.camera, seed=scene_seed)
        #: how many worlds this one has been (1 after construction, +1 per reset); object
        #: ids belong to one world: consumers forget them when it changes
        self.world_id = 0
        self.reset(scene_seed, robot_pose)

    # ---- set-up
    def reset(self, seed: int = None, robot_pose=None):
        """Rebuild the scene of ``seed`` (default: the current one) and place the robot."""
        seed = self.scene_seed if seed is None else int(seed)
        self.scene_seed = seed
        self.scene = generate_scene(seed, self.config.scene)
        self.world_id += 1
        self.time = 0.0
        self.held_id = None
        self.goal = None
        self.path = None
        self.velocity = (0.0, 0.0)
        self._velocity_until = -1.0
        self.status = 'idle'
        self._meshes_dirty = True
        self.grid = OccupancyGrid(lambda points: self.free_mask(points, margin=0.08),
                                  self.scene.width, self.scene.depth,
                                  self.config.grid_resolution)
        if robot_pose is None:
            robot_pose = self.sample_free_pose(np.random.default_rng(seed + 7919))
        self.set_robot_pose(*robot_pose)
        return self

    def occupancy(self) -> tuple:
        """
        Return the map as a robot would have it: (resolution [m], origin (x, y, yaw), grid).

        ``grid`` is (rows, cols) int8, row = y: 0 where the base's centre keeps the robot's
        radius (and a small margin) clear of walls and furniture, 100 elsewhere; an inflated
        map, so every free cell is a pose the base fits in.
        """
        grid = np.where(self.grid.free, 0, 100).astype(np.int8)
        return self.grid.resolution, (0.0, 0.0, 0.0), grid

    def sample_free_pose(self, rng, tries=500):
        """Return a collision-free (x, y, yaw) in the largest free region of the map."""
        free = np.argwhere(self.grid.free)
        if len(free) == 0:
            raise ValueError(f'scene {self.scene_seed} has no free space for the robot')
        # The component reachable from most cells: the one around the free cell nearest the
        # room centre is a good, cheap stand-in.
        centre = np.array(self.grid.cell(self.scene.width / 2, self.scene.depth / 2))
        anchor = free[np.argmin(((free - centre) ** 2).sum(1))]
        dist, _ = self.grid.distances_from(*self.grid.center(*anchor))
        reachable = np.argwhere(np.isfinite(dist))
        for _ in range(tries):
            row, col = reachable[int(rng.integers(len(reachable)))]
            x, y = self.grid.center(row, col)
            if self.base_is_free(x, y):
                return (x, y, float(rng.uniform(-math.pi, math.pi)))
        raise ValueError(f'scene {self.scene_seed}: no free robot pose found in {tries} tries')

    def set_robot_pose(self, x, y, yaw):
        """Teleport the robot; a pose in collision raises ValueError."""
        if not self.base_is_free(x, y):
            raise ValueError(f'robot pose ({x:.2f}, {y:.2f}) is in collision or outside the '
                             f'{self.scene.width:.1f} x {self.scene.depth:.1f} m map')
        self.robot = np.array([x, y, wrap_angle(yaw)], float)
        self.gripper = np.array([0.3, 0.0, 0.9])  # carry pose in the base frame
        self._carry()

    def snapshot(self) -> dict:
        """Return the mutable state (robot, arm, object poses) for :meth:`restore`."""
        return {'robot': self.robot.copy(), 'gripper': self.gripper.copy(),
                'held_id': self.held_id, 'time': self.time, 'goal': self.goal,
                'path': self.path, 'status': self.status,
                'objects': {i: (o.x, o.y, o.z, o.yaw, o.support_id)
                            for i, o in self.scene.objects.items()}}

    def restore(self, snapshot: dict):
        """Put back a state taken with :meth:`snapshot` (same scene)."""
        self.robot, self.gripper = snapshot['robot'].copy(), snapshot['gripper'].copy()
        self.held_id, self.time = snapshot['held_id'], snapshot['time']
        self.goal, self.path, self.status = snapshot['goal'], snapshot['path'], snapshot['status']
        for object_id, (x, y, z, yaw, support) in snapshot['objects'].items():
            obj = self.scene.objects[object_id]
            if (obj.x, obj.y, obj.z, obj.yaw) != (x, y, z, yaw):
                self._meshes_dirty = True
            obj.x, obj.y, obj.z, obj.yaw, obj.support_id = x, y, z, yaw, support

    @property
    def robot_pose(self):
        """Return the base pose (x, y, yaw)."""
        return tuple(float(v) for v in self.robot)

    @property
    def graph(self) -> SceneGraph:
        """Return the scene graph seen from the robot (view-dependent relations)."""
        return SceneGraph(self.scene, observer=self.robot_pose, config=self.config.graph)

    # ---- collision
    def obstacles(self):
        """Return what the base can hit: furniture and objects standing on the floor."""
        return [o for o in self.scene.objects.values()
                if o.id != self.held_id
                and (o.category in FURNITURE_CATEGORIES or o.z < 0.05)]

    def base_is_free(self, x, y, margin=0.0) -> bool:
        """Return whether the round base fits at (x, y)."""
        return bool(self.free_mask(np.array([[x, y]], float), margin)[0])

    def free_mask(self, points, margin=0.0) -> np.ndarray:
        """
        Return for each point whether the round base fits there.

        :param points: (N, 2) positions [m]
        :return: (N,) bool
        """
        radius = self.config.robot.radius + margin
        points = np.asarray(points, float).reshape(-1, 2)
        free = ((points[:, 0] >= radius) & (points[:, 0] <= self.scene.width - radius)
                & (points[:, 1] >= radius) & (points[:, 1] <= self.scene.depth - radius))
        for obj in self.obstacles():
            free &= point_rectangle_distance(points, (obj.x, obj.y), obj.half_extents,
                                             obj.yaw) >= radius
        return free

    # ---- sensing
    def camera_pose(self) -> np.ndarray:
        """Return the (4, 4) pose of the camera optical frame in the map."""
        link, optical = camera_mount(self.config.robot)
        x, y, yaw = self.robot
        return pose_matrix(x, y, 0.0, yaw) @ link @ optical

    def _meshes(self):
        meshes = [(STRUCTURE_ID, *mesh) for mesh in self.scene.structure_meshes()]
        meshes += [(o.id, *o.mesh()) for o in self.scene.objects.values()]
        return meshes

    def observe(self, renderer: Renderer = None) -> Frame:
        """Render the robot's camera at the current state."""
        renderer = renderer or self.renderer
        if self._meshes_dirty or getattr(renderer, '_world_version', None) != id(self.scene):
            renderer.set_meshes(self._meshes())
            renderer._world_version = id(self.scene)
            self._meshes_dirty = False
        return renderer.render(self.camera_pose(), stamp=self.time)

    def ego_image(self, width=224, height=168) -> np.ndarray:
        """Return a small ego-view colour image, (height, width, 3) uint8, noise-free."""
        key = (width, height)
        small = getattr(self, '_ego_renderers', {}).get(key)
        if small is None:
            cam = self.config.camera
            small = Renderer(CameraConfig(width=width, height=height, fov_x=cam.fov_x))
            self._ego_renderers = {**getattr(self, '_ego_renderers', {}), key: small}
        small.set_meshes(self._meshes())
        return small.render(self.camera_pose()).rgb.copy()

    def scene_tokens(self, points_per_object=DEFAULT_POINTS_PER_OBJECT, seed=None,
                     include_furniture=True) -> SceneTokens:
        """
        Return ground-truth object tokens from points sampled on each object's surface.

        :param seed: sampling seed (default: the scene seed, so tokens are reproducible)
        """
        rng = np.random.default_rng(self.scene_seed if seed is None else seed)
        objects = [o for o in sorted(self.scene.objects.values(), key=lambda o: o.id)
                   if include_furniture or o.category in SMALL_CATEGORIES]
        clouds, colors = [], []
        for obj in objects:
            vertices, triangles, triangle_colors = obj.mesh()
            xyz, rgb = sample_mesh_surface(vertices, triangles, triangle_colors,
                                           points_per_object, rng)
            clouds.append(xyz)
            colors.append(rgb)
        if not objects:
            return SceneTokens.empty(points_per_object, frame_id='map')
        tokens = SceneTokens.from_object_clouds(
            clouds, colors, ids=[o.id for o in objects], labels=[o.category for o in objects],
            points_per_object=points_per_object, rng=rng, frame_id='map', stamp=self.time)
        tokens.confidences[:] = 1.0
        return tokens

    # ---- acting
    def apply(self, action) -> ActionResult:
        """Apply a typed action (NavGoal, NavStep, PickPlace, EEDelta)."""
        if isinstance(action, NavGoal):
            return self.set_goal(action.x, action.y, action.yaw)
        if isinstance(action, NavStep):
            return self.nav_step(action.step)
        if isinstance(action, PickPlace):
            result = self.pick_at(action.pick_x, action.pick_y, action.pick_z)
            if not result.ok:
                return result
            return self.place_at(action.place_x, action.place_y, action.place_z,
                                 action.place_yaw - action.pick_yaw)
        if isinstance(action, EEDelta):
            return self.ee_delta(action)
        return ActionResult(False, f'unknown action {action!r}')

    def set_goal(self, x, y, yaw) -> ActionResult:
        """Plan a path to (x, y, yaw) that the base then follows in ``step``."""
        if not self.scene.inside(x, y):
            return ActionResult(False, f'goal ({x:.2f}, {y:.2f}) is outside the map [0, '
                                       f'{self.scene.width:.2f}] x [0, {self.scene.depth:.2f}]')
        if not self.base_is_free(x, y):
            return ActionResult(False, f'goal ({x:.2f}, {y:.2f}) is in collision')
        path = self.grid.path(self.robot[:2], (x, y))
        if path is None:
            return ActionResult(False, f'goal ({x:.2f}, {y:.2f}) cannot be reached')
        self.goal, self.path = (float(x), float(y), float(yaw)), path
        self.velocity, self.status = (0.0, 0.0), 'moving'
        return ActionResult(True, f'driving to ({x:.2f}, {y:.2f}) along {len(path)} waypoints')

    def set_velocity(self, linear, angular) -> ActionResult:
        """Drive with a velocity command (cancels a goal) for ``cmd_vel_timeout`` seconds."""
        cfg = self.config.robot
        self.goal, self.path = None, None
        self.velocity = (float(np.clip(linear, -cfg.max_linear, cfg.max_linear)),
                         float(np.clip(angular, -cfg.max_angular, cfg.max_angular)))
        self._velocity_until = self.time + cfg.cmd_vel_timeout
        self.status = 'velocity'
        return ActionResult(True)

    def stop(self):
        """Stop the base."""
        self.goal, self.path, self.velocity, self.status = None, None, (0.0, 0.0), 'idle'

    def nav_step(self, step) -> ActionResult:
        """Take one discrete step: forward, turn_left, turn_right or stop."""
        cfg = self.config.robot
        x, y, yaw = self.robot
        if step == 'turn_left':
            self.robot[2] = wrap_angle(yaw + cfg.nav_turn)
        elif step == 'turn_right':
            self.robot[2] = wrap_angle(yaw - cfg.nav_turn)
        elif step == 'forward':
            nx, ny = x + cfg.nav_forward * math.cos(yaw), y + cfg.nav_forward * math.sin(yaw)
            if not self._segment_free((x, y), (nx, ny)):
                return ActionResult(False, 'forward step blocked')
            self.robot[:2] = (nx, ny)
        elif step != 'stop':
            return ActionResult(False, f'unknown step {step!r}')
        self._carry()
        return ActionResult(True)

    def _segment_free(self, start, end, spacing=0.05):
        count = max(2, int(math.ceil(math.dist(start, end) / spacing)) + 1)
        return bool(self.free_mask(np.linspace(start, end, count)).all())

    def step(self, dt: float):
        """Advance the base by ``dt`` seconds (goal following or velocity command)."""
        self.time += dt
        x, y, yaw = self.robot
        linear = angular = 0.0
        if self.goal is not None:
            linear, angular = self._follow(dt)
        elif self.status == 'velocity':
            if self.time > self._velocity_until:
                self.stop()
            else:
                linear, angular = self.velocity
        if linear or angular:
            nyaw = wrap_angle(yaw + angular * dt)
            mid = yaw + angular * dt / 2
            nx, ny = x + linear * dt * math.cos(mid), y + linear * dt * math.sin(mid)
            if self._segment_free((x, y), (nx, ny)):
                self.robot[:] = (nx, ny, nyaw)
            else:
                self.robot[2] = nyaw if not linear else yaw
                self.goal, self.path, self.status = None, None, 'blocked'
        self.velocity_now = (linear, angular) if self.status != 'blocked' else (0.0, 0.0)
        self._carry()

    def _follow(self, dt):
        cfg = self.config.robot
        x, y, yaw = self.robot
        gx, gy, gyaw = self.goal
        # Drop waypoints already reached; aim at the next one.
        while len(self.path) > 1 and math.dist(self.path[0], (x, y)) < 0.15:
            self.path = self.path[1:]
        tx, ty = self.path[0]
        distance = math.dist((x, y), (gx, gy))
        if distance < 0.03 or (len(self.path) == 1 and math.dist((x, y), (tx, ty)) < 0.03):
            error = wrap_angle(gyaw - yaw)
            if abs(error) < 0.02:
                self.stop()
                self.status = 'arrived'
                return 0.0, 0.0
            return 0.0, float(np.clip(error / max(dt, 1e-3), -cfg.max_angular, cfg.max_angular))
        error = wrap_angle(math.atan2(ty - y, tx - x) - yaw)
        angular = float(np.clip(2.5 * error, -cfg.max_angular, cfg.max_angular))
        if abs(error) > 0.6:
            return 0.0, angular
        linear = min(cfg.max_linear, math.dist((x, y), (tx, ty)) / max(dt, 1e-3),
                     distance / max(dt, 1e-3))
        return linear * math.cos(error), angular

    # ---- arm
    def _reachable(self, x, y):
        return math.dist(self.robot[:2], (x, y)) <= self.config.robot.arm_reach

    def object_at(self, x, y, z, tolerance=0.06):
        """Return the small object whose top is at (x, y, z) (top-down grasp), or None."""
        hits = [o for o in self.scene.small_objects()
                if o.id != self.held_id and o.contains_xy((x, y), margin=0.02)
                and abs(o.top - z) <= tolerance]
        return max(hits, key=lambda o: o.top) if hits else None

    def pick(self, object_id) -> ActionResult:
        """Grasp a small object by id."""
        try:
            obj = self.scene.object(object_id)
        except KeyError as exc:
            return ActionResult(False, str(exc.args[0]))
        if obj.category not in SMALL_CATEGORIES:
            return ActionResult(False, f'object {object_id} is a {obj.category}; '
                                       f'only {SMALL_CATEGORIES} can be picked')
        if self.held_id is not None:
            return ActionResult(False, f'already holding object {self.held_id}')
        if not self._reachable(obj.x, obj.y):
            return ActionResult(False, f'object {object_id} is out of reach '
                                       f'({math.dist(self.robot[:2], (obj.x, obj.y)):.2f} m > '
                                       f'{self.config.robot.arm_reach} m)')
        carried = [o.id for o in self.scene.objects.values() if o.support_id == obj.id
                   and self.graph.on(o.id, obj.id)]
        if carried:
            return ActionResult(False, f'object {object_id} carries {carried}; clear it first')
        self.held_id = obj.id
        self._carry()
        self._meshes_dirty = True
        return ActionResult(True, f'picked object {obj.id} ({obj.color} {obj.category})')

    def pick_at(self, x, y, z) -> ActionResult:
        """Grasp the object whose top is at (x, y, z)."""
        obj = self.object_at(x, y, z)
        if obj is None:
            return ActionResult(False, f'no graspable object at ({x:.2f}, {y:.2f}, {z:.2f})')
        return self.pick(obj.id)

    def surface_below(self, x, y, z, exclude=()):
        """Return (height, id) of the highest support top under (x, y) not above ``z``."""
        best = (0.0, FLOOR_ID)
        for obj in self.scene.objects.values():
            if obj.id in exclude or obj.id == self.held_id:
                continue
            if obj.category in SUPPORT_CATEGORIES + ('chair',) and obj.contains_xy((x, y)) \
                    and obj.top <= z + 1e-6 and obj.top > best[0]:
                best = (obj.top, obj.id)
        return best

    def place_at(self, x, y, z, dyaw=0.0) -> ActionResult:
        """
        Release the held object over (x, y); it comes to rest on the surface below.

        :param z: gripper height = where the object's top is while held [m]
        """
        if self.held_id is None:
            return ActionResult(False, 'not holding anything')
        obj = self.scene.object(self.held_id)
        if not self.scene.inside(x, y):
            return ActionResult(False, f'place ({x:.2f}, {y:.2f}) is outside the map')
        if not self._reachable(x, y):
            return ActionResult(False, f'place ({x:.2f}, {y:.2f}) is out of reach')
        bottom = z - obj.size[2]
        height, support = self.surface_below(x, y, bottom + 0.06)
        blocked = self._place_blocked(obj, x, y, height)
        if blocked:
            return ActionResult(False, f'place ({x:.2f}, {y:.2f}) is blocked by object {blocked}')
        obj.x, obj.y, obj.z = float(x), float(y), float(height)
        obj.yaw = float(wrap_angle(obj.yaw + dyaw))
        obj.support_id = support
        self.held_id = None
        self._meshes_dirty = True
        return ActionResult(True, f'placed object {obj.id} on '
                                  f'{"the floor" if support == FLOOR_ID else f"object {support}"}')

    def _place_blocked(self, obj, x, y, z):
        radius = math.hypot(*obj.half_extents)
        for other in self.scene.objects.values():
            if other.id == obj.id or other.category in FURNITURE_CATEGORIES:
                continue
            overlap_z = z < other.top - 1e-3 and other.z < z + obj.size[2] - 1e-3
            if overlap_z and math.dist((x, y), (other.x, other.y)) < radius + math.hypot(
                    *other.half_extents):
                return other.id
        for other in self.obstacles():
            if other.category in FURNITURE_CATEGORIES and z < other.top - 0.01 and \
                    point_rectangle_distance(np.array([x, y]), (other.x, other.y),
                                             other.half_extents, other.yaw) < radius:
                return other.id
        return None

    def ee_delta(self, action: EEDelta) -> ActionResult:
        """Move the gripper in the base frame; gripper >= 0.5 opens (releases), < 0.5 grasps."""
        self.gripper = self.gripper + (action.dx, action.dy, action.dz)
        reach = math.hypot(*self.gripper[:2])
        if reach > self.config.robot.arm_reach:
            self.gripper[:2] *= self.config.robot.arm_reach / reach
        self.gripper[2] = float(np.clip(self.gripper[2], 0.0, 1.8))
        x, y, z = self._gripper_in_map()
        if action.gripper >= 0.5 and self.held_id is not None:
            return self.place_at(x, y, z, action.dyaw)
        if action.gripper < 0.5 and self.held_id is None:
            obj = self.object_at(x, y, z, tolerance=0.03)
            if obj is not None:
                return self.pick(obj.id)
        self._carry()
        return ActionResult(True)

    def _gripper_in_map(self):
        x, y, yaw = self.robot
        gx, gy, gz = self.gripper
        c, s = math.cos(yaw), math.sin(yaw)
        return (x + c * gx - s * gy, y + s * gx + c * gy, gz)

    def _carry(self):
        """Keep the held object hanging under the gripper."""
        if self.held_id is None:
            return
        obj = self.scene.object(self.held_id)
        gx, gy, gz = self._gripper_in_map()
        obj.x, obj.y, obj.z = gx, gy, gz - obj.size[2]
        self._meshes_dirty = True

    # ---- success
    def nav_error(self, object_id):
        """Return (gap between robot and object footprints [m], heading error [rad])."""
        obj = self.scene.object(object_id)
        x, y, yaw = self.robot
        gap = point_rectangle_distance(np.array([x, y]), (obj.x, obj.y), obj.half_extents,
                                       obj.yaw) - self.config.robot.radius
        bearing = math.atan2(obj.y - y, obj.x - x)
        return max(gap, 0.0), abs(wrap_angle(bearing - yaw))

    def nav_success(self, object_id) -> bool:
        """Return whether the robot is within reach of an object and faces it."""
        gap, heading = self.nav_error(object_id)
        cfg = self.config.success
        return gap <= cfg.nav_distance and heading <= cfg.nav_facing

    def task_success(self, task: Task, answer: str = None) -> bool:
        """
        Return whether a task is done in the current state.

        Navigation: robot within ``nav_distance`` of the target and facing it. Pick-and-place
        and plans: the object rests on the destination and is not held. Captions: the answer
        states the facts the reference states, whatever its wording (``caption_states_facts``).
        Other text families: the given answer matches the expected one (case and punctuation
        ignored).
        """
        if task.family == 'nav':
            return self.nav_success(task.target_ids[0])
        if task.family in ('pick_place', 'plan'):
            obj, destination = task.target_ids[:2]
            if self.held_id == obj:
                return False
            if destination == FLOOR_ID:
                return self.graph.support(obj) == FLOOR_ID
            return self.graph.on(obj, destination)
        if answer is None:
            return False
        if task.family in ('object_caption', 'scene_caption'):
            return self.caption_states_facts(task, answer)
        return normalize_answer(answer) == normalize_answer(task.answer)

    def caption_states_facts(self, task: Task, answer: str) -> bool:
        """
        Return whether a caption states what its reference states.

        An object caption names the object's colour and category and what it stands on (the
        support's colour and category, or the floor). A scene caption names every category the
        room holds and none it does not.
        """
        words = set(normalize_answer(answer).split())
        plurals = {c: {c, c + 's', c + 'es', c[:-1] + 'ves'} for c in CATEGORIES}
        if task.family == 'object_caption':
            obj = self.scene.object(task.target_ids[0])
            support = self.graph.support(obj.id)
            needed = {obj.color, obj.category}
            needed |= {'floor'} if support == FLOOR_ID else {
                self.scene.object(support).color, self.scene.object(support).category}
            return needed <= words
        present = {o.category for o in self.scene.objects.values()}
        named = {c for c in CATEGORIES if plurals[c] & words}
        return named == present


def normalize_answer(text: str) -> str:
    """Lower-case, strip punctuation and articles: the form answers are compared in."""
    words = ''.join(c if c.isalnum() or c.isspace() else ' ' for c in text.lower()).split()
    return ' '.join(w for w in words if w not in ('a', 'an', 'the'))
