"""
A deterministic, deliberately untrustworthy stand-in for the learned policy (pure Python).

Node tests and benchmarks of stop, burst, gating and memory must not depend on a trained
checkpoint. :class:`PointingPolicy` offers the policy's ``act()`` and returns the same
``Decision`` shape, with grounded action tokens decoded by the real
:class:`~leo_ros.actions.grounded.GroundedTokenizer`:

- one named object: ``<nav_goal> <obj_k>``, a navigation goal in front of it;
- two or more named objects ("put the mug on the table"): a plan, ``<nav_goal> <obj_k>``
  then ``<pick_place> <obj_k> <obj_m>`` (the first named object onto the last);
- "turn left", "move forward", "stop": a ``<nav_step>``.

It never refuses and ignores the instruction's form: a question, a description or a name that
matches nothing still gets an action toward the best-matching (or nearest) object, and its
text announces it. That is how the issue's policy misbehaved; whatever keeps the robot still
in a test with this policy is the node's own gates.
"""

from dataclasses import dataclass, field
import math
import re

from leo_ros.actions.grounded import GroundedTokenizer, GroundingContext, object_token
from leo_ros.actions.types import NavStep
from leo_ros.agent.grounding import color_matches, DEFAULT_CATEGORIES, named_objects
import numpy as np

_STEPS = (('turn left', 'turn_left'), ('turn right', 'turn_right'), ('forward', 'forward'),
          ('stop', 'stop'), ('halt', 'stop'))


@dataclass
class PointingDecision:
    """What one call decided (the fields of ``leo_ros.model.policy.Decision`` it needs)."""

    text: str
    action: object
    tokens: list
    kind: str
    token_ids: list = field(default_factory=list)
    error: str = ''
    tokenizer: str = 'grounded'
    actions: list = field(default_factory=list)
    object_ids: list = field(default_factory=list)


class PointingPolicy:
    """
    Point at the objects an instruction names, whatever it asks.

    :param delay: seconds each decision takes (a model's latency, for stop and burst tests)
    """

    device = 'cpu'

    def __init__(self, delay=0.0):
        self.delay = float(delay)
        self.tokenizer = GroundedTokenizer()

    def _match(self, scene, item, exclude=()):
        """Return the index of the object that best fits a named object (or the nearest)."""
        labels = list(scene.labels)
        scores = []
        for k in range(len(scene)):
            score = 2.0 * (labels[k] == item.category) + 1.0 * (
                bool(item.color) and color_matches(scene.colors[k], item.color))
            scores.append(-1.0 if k in exclude else score)
        return int(np.argmax(scores))

    def act(self, scene, image=None, instruction='', agent_pose=(0.0, 0.0, 0.0), situation='',
            is_free=None, **_):
        """Return a PointingDecision for ``instruction`` in ``scene`` (see the module)."""
        import time
        if self.delay:
            time.sleep(self.delay)
        lower = instruction.lower()
        if len(scene) == 0:
            return PointingDecision('I see no objects.', None, [], 'text')
        for words, step in _STEPS:
            if re.search(rf'\b{words}\b', lower) and not named_objects(lower):
                return PointingDecision('', NavStep(step), ['<nav_step>', f'<{step}>'],
                                        'nav_step', actions=[NavStep(step)])
        categories = tuple(DEFAULT_CATEGORIES) + tuple(set(scene.labels))
        named = named_objects(lower, categories) or [None]
        context = GroundingContext.from_scene(scene, agent_pose, is_free)
        ids = np.asarray(scene.ids)
        if named[0] is None:
            pose = np.asarray(agent_pose[:2], np.float64)
            first = int(np.argmin(np.linalg.norm(scene.centers[:, :2] - pose, axis=1)))
        else:
            first = self._match(scene, named[0])
        try:
            if len(named) > 1:          # "put the mug (left of the box) on the table"
                second = self._match(scene, named[-1], exclude=(first,))
                goal = self.tokenizer.decode('nav_goal', [object_token(first)], context,
                                             reach_also=[first, second])
                there = GroundingContext.from_scene(scene, (goal.x, goal.y, goal.yaw), is_free)
                pick = self.tokenizer.decode('pick_place', [object_token(first),
                                                            object_token(second)], there)
                tokens = ['<nav_goal>', object_token(first), '<pick_place>',
                          object_token(first), object_token(second)]
                return PointingDecision(f'Putting object {ids[first]} on object '
                                        f'{ids[second]}.', goal, tokens, 'nav_goal',
                                        actions=[goal, pick],
                                        object_ids=[int(ids[first]), int(ids[second])])
            goal = self.tokenizer.decode('nav_goal', [object_token(first)], context)
        except ValueError as error:
            return PointingDecision('', None, ['<nav_goal>', object_token(first)], 'nav_goal',
                                    error=str(error))
        heading = math.degrees(goal.yaw)
        return PointingDecision(f'Going to object {ids[first]} (facing {heading:.0f} deg).',
                                goal, ['<nav_goal>', object_token(first)], 'nav_goal',
                                actions=[goal], object_ids=[int(ids[first])])


def load_pointing_policy(model_path='', device='cpu', dtype='float32'):
    """Return a :class:`PointingPolicy` (``model_path`` 'pointing:0.2' sets a 0.2 s delay)."""
    delay = 0.0
    if str(model_path).startswith('pointing:'):
        delay = float(str(model_path).split(':', 1)[1] or 0.0)
    return PointingPolicy(delay)
