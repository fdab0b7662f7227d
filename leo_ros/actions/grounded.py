"""
Object-grounded action tokens (pure numpy, no ROS).

Instead of regressing coordinates, the policy names objects: ``<nav_goal> <obj_7>`` means
"approach object token 7 and face it", ``<pick_place> <obj_3> <obj_5>`` means "pick object 3 and
put it on object 5". Navigation and manipulation become a choice over the object tokens (what an
LEO-style model is good at); the geometry is then decoded deterministically from the scene
tokens' centres and sizes:

- NavGoal: a free pose a short gap in front of the object's box, the nearest one to the robot
  (or, when a pick-and-place follows, one within arm reach of both objects), facing the object.
- PickPlace: a top-down grasp at the object's top centre, and a free spot on the destination's
  top surface within arm reach, at the destination's top plus the object's height.

``GroundedTokenizer`` follows the ``ActionTokenizer`` shape of ``leo_ros.actions.tokenizers``
(``vocabulary``, ``allowed_tokens``, ``encode``, ``decode``, ``save``/``load``) with one
difference: encoding takes object indices and decoding needs a :class:`GroundingContext`.
"""

from dataclasses import asdict, dataclass
import json
import math
from pathlib import Path

from leo_ros.actions.registry import GROUNDED
from leo_ros.actions.types import NavGoal, PickPlace
import numpy as np


def object_token(index: int) -> str:
    """Return the token that names object token ``index``."""
    return f'<obj_{int(index)}>'


def object_index(token: str) -> int:
    """Return the object index of an ``<obj_k>`` token; anything else raises ValueError."""
    if not (token.startswith('<obj_') and token.endswith('>')):
        raise ValueError(f'{token!r} is not an object token')
    return int(token[len('<obj_'):-1])


@dataclass
class GroundedConfig:
    """
    How grounded tokens become poses.

    :param max_objects: object tokens that can be named (``<obj_0>`` .. ``<obj_{n-1}>``)
    :param robot_radius: base footprint radius [m]
    :param approach_gap: (min, max) gap between the base footprint and the object's box [m]
    :param approach_fallback: largest gap tried when nothing in ``approach_gap`` is free (an
        object in the middle of a table is only reachable from the table's edge) [m]
    :param approach_step: spacing of the candidate approach positions [m]
    :param arm_reach: largest horizontal distance from the base to a grasp or place point [m]
    :param place_margin: clearance kept around a placed object [m]
    :param obstacle_height: without a map, every box whose bottom is below this blocks the base
        (a table seen only from above has no legs in its box, yet still blocks) [m]
    :param clearance: without a map, extra distance kept from those boxes [m]
    """

    max_objects: int = 60
    robot_radius: float = 0.22
    approach_gap: tuple = (0.05, 0.42)
    approach_fallback: float = 0.47
    approach_step: float = 0.05
    arm_reach: float = 1.2
    place_margin: float = 0.01
    obstacle_height: float = 1.2
    clearance: float = 0.1

    def __post_init__(self):
        if self.max_objects < 1:
            raise ValueError(f'GroundedConfig.max_objects must be >= 1, got {self.max_objects}')
        low, high = self.approach_gap
        if not 0 <= low < high:
            raise ValueError(f'GroundedConfig.approach_gap must be 0 <= min < max, '
                             f'got {self.approach_gap}')
        if self.approach_fallback < high:
            raise ValueError(f'GroundedConfig.approach_fallback must be >= approach_gap max '
                             f'{high}, got {self.approach_fallback}')
        for name in ('robot_radius', 'approach_step', 'arm_reach', 'place_margin'):
            if not getattr(self, name) > 0:
                raise ValueError(f'GroundedConfig.{name} must be > 0, got {getattr(self, name)}')


@dataclass
class GroundingContext:
    """
    What decoding needs: the scene the indices point into and where the robot is.

    :param centers: (K, 3) object box centres in the fixed frame [m]
    :param sizes: (K, 3) object box extents [m]
    :param agent_pose: (x, y, yaw) of the base in the fixed frame
    :param is_free: optional ``f(x, y) -> bool``: whether the base fits at (x, y) (a map or the
        simulator); without it, boxes standing on the floor are the only obstacles
    """

    centers: np.ndarray
    sizes: np.ndarray
    agent_pose: tuple
    is_free: object = None

    @classmethod
    def from_scene(cls, tokens, agent_pose, is_free=None):
        """Build a context from ``SceneTokens``."""
        return cls(np.asarray(tokens.centers, float), np.asarray(tokens.sizes, float),
                   tuple(float(v) for v in agent_pose), is_free)


class GroundedTokenizer:
    """Object-grounded action tokens: ``<obj_k>`` payloads decoded against the scene."""

    name = 'grounded'
    kinds = tuple(GROUNDED)

    def __init__(self, config: GroundedConfig = None):
        self.config = config or GroundedConfig()

    def vocabulary(self) -> list:
        """Return every payload token (one per object slot)."""
        return [object_token(k) for k in range(self.config.max_objects)]

    def allowed_tokens(self, kind: str, object_count: int = None) -> list:
        """Return, per payload position, the tokens allowed there (objects present only)."""
        if kind not in GROUNDED:
            raise ValueError(f'grounded tokenizer does not handle kind {kind!r}')
        count = self.config.max_objects if object_count is None else \
            min(object_count, self.config.max_objects)
        return [[object_token(k) for k in range(count)]] * GROUNDED[kind]

    def tokens_per_action(self, kind: str) -> int:
        return GROUNDED[kind]

    def encode(self, kind: str, object_indices) -> list:
        """Return the payload tokens naming ``object_indices`` (one per payload position)."""
        if kind not in GROUNDED:
            raise ValueError(f'grounded tokenizer does not handle kind {kind!r}')
        indices = [int(i) for i in object_indices]
        if len(indices) != GROUNDED[kind]:
            raise ValueError(f'{kind} names {GROUNDED[kind]} objects, got {len(indices)}')
        for index in indices:
            if not 0 <= index < self.config.max_objects:
                raise ValueError(f'object index {index} outside [0, {self.config.max_objects})')
        return [object_token(i) for i in indices]

    def decode(self, kind: str, tokens, context: GroundingContext, reach_also=None):
        """
        Return the typed action for a payload, or raise ValueError when it has no solution.

        :param reach_also: for ``nav_goal``: indices of objects the arm must reach from the
            goal (a pick-and-place that follows); default none
        """
        indices = [object_index(t) for t in tokens]
        if kind not in GROUNDED or len(indices) != GROUNDED[kind]:
            raise ValueError(f'bad grounded payload for {kind!r}: {list(tokens)}')
        for index in indices:
            if not 0 <= index < len(context.centers):
                raise ValueError(f'object index {index} is not in the scene '
                                 f'({len(context.centers)} objects)')
        if kind == 'nav_goal':
            return self.approach_pose(indices[0], context, reach_also)
        return self.pick_place(indices[0], indices[1], context)

    # ---- geometry
    def _is_free(self, context, points):
        """Return (N,) whether the base fits at each of the (N, 2) points."""
        if context.is_free is not None:
            return np.array([bool(context.is_free(x, y)) for x, y in points], bool)
        # No map: the object boxes are the map. Perception sees furniture partly (a table
        # top without its legs), so anything low enough to touch blocks the base.
        free = np.ones(len(points), bool)
        bottoms = context.centers[:, 2] - context.sizes[:, 2] / 2
        keep_out = self.config.robot_radius + self.config.clearance
        for center, size, bottom in zip(context.centers, context.sizes, bottoms):
            if bottom < self.config.obstacle_height:
                free &= _box_gap(points, center, size) >= keep_out
        return free

    def approach_pose(self, index, context, reach_also=None) -> NavGoal:
        """
        Return a free pose in front of object ``index`` that faces it.

        Candidates lie in gap bands around the object's box, the near band first, then the
        fallback band; within a band the one nearest the robot wins. With ``reach_also`` the
        pose must instead have every listed object within arm reach, and it faces their middle.
        """
        cfg = self.config
        center, size = context.centers[index], context.sizes[index]
        low, high = cfg.approach_gap
        bands = [(low, (low + high) / 2), ((low + high) / 2, high)]
        if cfg.approach_fallback > high:
            bands.append((high, cfg.approach_fallback))
        if reach_also:
            bands = [(low, cfg.arm_reach)]
        agent = np.asarray(context.agent_pose[:2], float)
        for band_low, band_high in bands:
            half = size[:2] / 2 + cfg.robot_radius + band_high
            axis_x = np.arange(center[0] - half[0], center[0] + half[0] + 1e-9, cfg.approach_step)
            axis_y = np.arange(center[1] - half[1], center[1] + half[1] + 1e-9, cfg.approach_step)
            grid = np.stack(np.meshgrid(axis_x, axis_y), -1).reshape(-1, 2)   # (N, 2)
            gaps = _box_gap(grid, center, size) - cfg.robot_radius
            grid = grid[(gaps >= band_low) & (gaps <= band_high)]
            for other in reach_also or ():
                other_c, other_s = context.centers[other], context.sizes[other]
                if max(other_s[:2]) < 0.3:  # small: its centre must be in reach
                    grid = grid[np.hypot(*(grid - other_c[:2]).T) <= cfg.arm_reach - 0.05]
                else:  # a support: some of its top, well inside the edge, must be
                    grid = grid[_box_gap(grid, other_c, other_s) <= cfg.arm_reach - 0.3]
            grid = grid[np.argsort(np.hypot(*(grid - agent).T), kind='stable')]
            # Test the nearest candidates first: the free check can be a costly callback.
            for start in range(0, len(grid), 64):
                chunk = grid[start:start + 64]
                free = np.flatnonzero(self._is_free(context, chunk))
                if len(free):
                    x, y = chunk[free[0]]
                    look = center[:2] if not reach_also else np.mean(
                        [context.centers[k][:2] for k in reach_also], axis=0)
                    return NavGoal(x=float(x), y=float(y),
                                   yaw=float(math.atan2(look[1] - y, look[0] - x)))
        raise ValueError(f'no free approach position around object {index}')

    def within_reach(self, pick, place, context) -> bool:
        """Return whether the arm reaches object ``pick`` and a free spot on ``place``."""
        agent = np.asarray(context.agent_pose[:2], float)
        if np.hypot(*(np.asarray(context.centers[pick][:2]) - agent)) > self.config.arm_reach:
            return False
        try:
            self.pick_place(pick, place, context)
        except ValueError:
            return False
        return True

    def pick_place(self, pick, place, context) -> PickPlace:
        """Return a top-down grasp of object ``pick`` and a free spot on top of ``place``."""
        cfg = self.config
        if pick == place:
            raise ValueError(f'cannot put object {pick} on itself')
        centers, sizes = context.centers, context.sizes
        obj_c, obj_s = centers[pick], sizes[pick]
        dest_c, dest_s = centers[place], sizes[place]
        dest_top = dest_c[2] + dest_s[2] / 2
        radius = float(np.hypot(*obj_s[:2])) / 2
        # Objects already resting on the destination block their footprint.
        bottoms = centers[:, 2] - sizes[:, 2] / 2
        resting = [k for k in range(len(centers)) if k not in (pick, place)
                   and abs(bottoms[k] - dest_top) < 0.05
                   and _box_gap(centers[k:k + 1, :2], dest_c, dest_s)[0] <= 0.0]
        inset = dest_s[:2] / 2 - radius - cfg.place_margin
        if np.any(inset < 0):  # too small to hold it inside (a plate): use its centre
            candidates = dest_c[None, :2]
        else:
            axis_x = np.linspace(dest_c[0] - inset[0], dest_c[0] + inset[0],
                                 max(2, int(inset[0] / 0.02) + 1))
            axis_y = np.linspace(dest_c[1] - inset[1], dest_c[1] + inset[1],
                                 max(2, int(inset[1] / 0.02) + 1))
            candidates = np.stack(np.meshgrid(axis_x, axis_y), -1).reshape(-1, 2)
        ok = np.ones(len(candidates), bool)
        for k in resting:  # footprints as circles around the boxes: what the arm must clear
            keep_out = radius + float(np.hypot(*sizes[k][:2])) / 2 + cfg.place_margin
            ok &= np.hypot(*(candidates - centers[k][:2]).T) >= keep_out
        agent = np.asarray(context.agent_pose[:2], float)
        distance = np.hypot(*(candidates - agent).T)
        ok &= distance <= cfg.arm_reach
        if not ok.any():
            raise ValueError(f'no free, reachable spot on object {place} for object {pick}')
        # Prefer the middle of the free area that is nearest the robot: clear of edges.
        choice = np.flatnonzero(ok)
        spread = np.hypot(*(candidates[choice] - dest_c[:2]).T)
        best = choice[np.argmin(spread + 0.5 * distance[choice])]
        top = obj_c[2] + obj_s[2] / 2
        return PickPlace(pick_x=float(obj_c[0]), pick_y=float(obj_c[1]), pick_z=float(top),
                         pick_yaw=0.0, place_x=float(candidates[best][0]),
                         place_y=float(candidates[best][1]),
                         place_z=float(dest_top + obj_s[2]), place_yaw=0.0)

    # ---- persistence
    def save(self, directory):
        """Write ``grounded.json`` into ``directory``."""
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / 'grounded.json').write_text(
            json.dumps({'config': asdict(self.config)}, indent=2))

    @classmethod
    def load(cls, directory):
        """Read ``grounded.json`` from ``directory``."""
        state = json.loads((Path(directory) / 'grounded.json').read_text())
        config = state['config']
        config['approach_gap'] = tuple(config['approach_gap'])
        return cls(GroundedConfig(**config))


def _box_gap(points, center, size) -> np.ndarray:
    """
    Return the distance of 2D points to an axis-aligned box footprint (0 inside).

    :param points: (N, 2)
    :return: (N,)
    """
    delta = np.abs(np.asarray(points, float) - np.asarray(center, float)[:2]) \
        - np.asarray(size, float)[:2] / 2
    return np.hypot(*np.maximum(delta, 0.0).T)
