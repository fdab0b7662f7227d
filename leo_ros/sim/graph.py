"""
Scene graphs: object attributes and relations computed from geometry (no ROS).

Support ("on") and "near" are view-independent; left/right/in front of/behind are taken from
an observer's pose (x, y, yaw), as in situated 3D question answering: "left" is the observer's
left, "in front of" is closer to the observer.
"""

from dataclasses import dataclass
import math

from leo_ros.sim.geometry import rectangle_distance
from leo_ros.sim.scene import CATEGORIES, FLOOR_ID, FURNITURE_CATEGORIES
import numpy as np

DIRECTIONS = ('left of', 'right of', 'in front of', 'behind')
RELATIONS = ('on', 'near') + DIRECTIONS


def classify_direction(forward: float, left: float, margin: float):
    """
    Return where an offset points from the observer (one of DIRECTIONS), or None if unclear.

    :param forward: offset along the observer's view [m] (positive: farther away)
    :param left: offset to the observer's left [m]
    :param margin: offsets within this are unclear [m]
    """
    if abs(left) >= abs(forward):
        if left > margin:
            return 'left of'
        if left < -margin:
            return 'right of'
    elif forward < -margin:
        return 'in front of'
    elif forward > margin:
        return 'behind'
    return None


@dataclass
class GraphConfig:
    """
    Thresholds of the relations.

    :param support_gap: largest gap between an object's bottom and a top surface for "on" [m]
    :param near_distance: largest footprint-to-footprint distance for "near" [m]
    :param direction_margin: smallest offset along the dominant axis for a direction [m]
    :param superlative_ratio: the largest (smallest) must beat the runner-up by this volume ratio
    """

    support_gap: float = 0.015
    near_distance: float = 0.4
    direction_margin: float = 0.15
    superlative_ratio: float = 1.2

    def __post_init__(self):
        for name in ('support_gap', 'near_distance', 'direction_margin'):
            if getattr(self, name) <= 0:
                raise ValueError(f'GraphConfig.{name} must be > 0, got {getattr(self, name)}')
        if self.superlative_ratio < 1:
            raise ValueError(f'GraphConfig.superlative_ratio must be >= 1, '
                             f'got {self.superlative_ratio}')


@dataclass(frozen=True)
class Reference:
    """
    A referring expression: category, optional colour, superlative and relation to an anchor.

    ``Reference('mug', 'red', relation='near', anchor=Reference('shelf'))`` reads
    "the red mug near the shelf".
    """

    category: str
    color: str = None
    superlative: str = None      # 'largest' or 'smallest'
    relation: str = None         # one of RELATIONS
    anchor: 'Reference' = None

    def __post_init__(self):
        if self.category not in CATEGORIES:
            raise ValueError(f'Reference.category {self.category!r} is not one of {CATEGORIES}')
        if self.superlative not in (None, 'largest', 'smallest'):
            raise ValueError(f'Reference.superlative must be largest or smallest, '
                             f'got {self.superlative!r}')
        if (self.relation is None) != (self.anchor is None):
            raise ValueError('Reference.relation and Reference.anchor go together')
        if self.relation is not None and self.relation not in RELATIONS:
            raise ValueError(f'Reference.relation {self.relation!r} is not one of {RELATIONS}')

    def noun_phrase(self) -> str:
        """Return the phrase without article: 'largest red mug near the shelf'."""
        words = [w for w in (self.superlative, self.color, self.category) if w]
        if self.relation:
            words += [self.relation, self.anchor.text()]
        return ' '.join(words)

    def text(self) -> str:
        """Return the phrase with its article: 'the red mug near the shelf'."""
        return 'the ' + self.noun_phrase()


class SceneGraph:
    """
    The relations of a scene, computed from object geometry.

    :param scene: a :class:`leo_ros.sim.scene.Scene`
    :param observer: (x, y, yaw) for the view-dependent relations (default: the room's
        centre of the -y wall looking +y)
    """

    def __init__(self, scene, observer=None, config: GraphConfig = None):
        self.scene = scene
        self.config = config or GraphConfig()
        self.observer = tuple(observer) if observer is not None else (
            scene.width / 2, 0.0, math.pi / 2)

    @property
    def ids(self):
        """Return the object ids, sorted."""
        return sorted(self.scene.objects)

    def node(self, object_id) -> dict:
        """Return an object's attributes."""
        obj = self.scene.object(object_id)
        return {'id': obj.id, 'category': obj.category, 'color': obj.color,
                'size': [round(float(v), 3) for v in obj.size], 'volume': obj.volume,
                'center': [round(float(v), 3) for v in obj.center],
                'support': self.support(obj.id)}

    # ---- view-independent relations
    def on(self, a, b) -> bool:
        """Return whether object ``a`` rests on the top of object ``b``."""
        obj, base = self.scene.object(a), self.scene.object(b)
        if a == b:
            return False
        return (abs(obj.z - base.top) <= self.config.support_gap
                and base.contains_xy((obj.x, obj.y)))

    def support(self, object_id) -> int:
        """Return the id the object rests on (0: the floor, -1: nothing, it floats)."""
        obj = self.scene.object(object_id)
        below = [b for b in self.scene.objects.values() if self.on(obj.id, b.id)]
        if below:
            return max(below, key=lambda b: b.top).id
        return FLOOR_ID if obj.z <= self.config.support_gap else -1

    def near(self, a, b) -> bool:
        """Return whether two footprints are within ``near_distance`` of each other."""
        if a == b:
            return False
        obj, other = self.scene.object(a), self.scene.object(b)
        return rectangle_distance(obj.footprint, other.footprint) <= self.config.near_distance

    # ---- view-dependent relations
    def observer_offset(self, a, b) -> np.ndarray:
        """Return the centre of ``a`` minus that of ``b`` in the observer frame (x fwd, y left)."""
        delta = self.scene.object(a).center[:2] - self.scene.object(b).center[:2]
        yaw = self.observer[2]
        c, s = math.cos(yaw), math.sin(yaw)
        return np.array([c * delta[0] + s * delta[1], -s * delta[0] + c * delta[1]])

    def direction(self, a, b):
        """Return where ``a`` is relative to ``b`` (one of DIRECTIONS), or None if unclear."""
        if a == b:
            return None
        forward, left = self.observer_offset(a, b)
        return classify_direction(forward, left, self.config.direction_margin)

    def holds(self, relation, a, b) -> bool:
        """Return whether ``a relation b`` holds."""
        if relation == 'on':
            return self.on(a, b)
        if relation == 'near':
            return self.near(a, b)
        if relation in DIRECTIONS:
            return self.direction(a, b) == relation
        raise ValueError(f'unknown relation {relation!r}; expected one of {RELATIONS}')

    # ---- counts, superlatives, references
    def select(self, category=None, color=None):
        """Return the ids of the objects of a category and/or colour, sorted."""
        return [o.id for o in sorted(self.scene.objects.values(), key=lambda o: o.id)
                if (category is None or o.category == category)
                and (color is None or o.color == color)]

    def count(self, category=None, color=None) -> int:
        """Return how many objects have this category and/or colour."""
        return len(self.select(category, color))

    def extreme(self, ids, which='largest'):
        """
        Return the id with the largest (smallest) volume if it clearly wins, else None.

        :param ids: candidate ids
        """
        ids = list(ids)
        if not ids:
            return None
        if len(ids) == 1:
            return ids[0]
        ranked = sorted(ids, key=lambda i: self.scene.object(i).volume,
                        reverse=which == 'largest')
        first, second = (self.scene.object(i).volume for i in ranked[:2])
        ratio = first / second if which == 'largest' else second / max(first, 1e-12)
        return ranked[0] if ratio >= self.config.superlative_ratio else None

    def resolve(self, reference: Reference):
        """Return the ids a reference can denote (one id: unambiguous), sorted."""
        candidates = self.select(reference.category, reference.color)
        if reference.relation is not None:
            anchors = self.resolve(reference.anchor)
            if len(anchors) != 1:
                return []  # an ambiguous anchor makes the whole phrase ambiguous
            candidates = [c for c in candidates
                          if self.holds(reference.relation, c, anchors[0])]
        if reference.superlative is not None:
            winner = self.extreme(candidates, reference.superlative)
            # Several candidates and no clear winner: ambiguous (two ids stand for "many").
            return [winner] if winner is not None else candidates[:2]
        return candidates

    def is_unique(self, reference: Reference, target: int) -> bool:
        """Return whether the reference denotes exactly the target."""
        return self.resolve(reference) == [int(target)]

    def relations(self):
        """Return every relation that holds as (subject id, relation, object id) triples."""
        triples = []
        for a in self.ids:
            support = self.support(a)
            if support > 0:
                triples.append((a, 'on', support))
            for b in self.ids:
                if a == b:
                    continue
                if self.near(a, b):
                    triples.append((a, 'near', b))
                direction = self.direction(a, b)
                if direction:
                    triples.append((a, direction, b))
        return triples

    def furniture_ids(self):
        """Return the ids of furniture."""
        return [i for i in self.ids if self.scene.object(i).category in FURNITURE_CATEGORIES]

    def to_dict(self) -> dict:
        """Return the graph as JSON-friendly nodes and edges."""
        return {'observer': list(self.observer),
                'nodes': [self.node(i) for i in self.ids],
                'edges': [list(t) for t in self.relations()]}
