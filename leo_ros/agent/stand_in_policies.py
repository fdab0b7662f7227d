"""
Deterministic stand-ins for the learned policy (pure Python), for node tests and benchmarks.

Tests of the ROS interfaces, stop, burst, gating and memory must not depend on a trained
checkpoint. Both stand-ins offer the policy's ``act()`` and return its
:class:`~leo_ros.model.decision.Decision`.

:class:`ScriptedPolicy` answers a few fixed instructions with one action of each kind, so that
a test can ask for a kind and see where it goes out.

:class:`PointingPolicy` is deliberately untrustworthy, with grounded action tokens decoded by
the real :class:`~leo_ros.actions.grounded.GroundedTokenizer`:

- one named object: ``<nav_goal> <obj_k>``, a navigation goal in front of it;
- two or more named objects ("put the mug on the table"): a plan, ``<nav_goal> <obj_k>``
  then ``<pick_place> <obj_k> <obj_m>`` (the first named object onto the last);
- "turn left", "move forward", "stop": a ``<nav_step>``.

It never refuses and ignores the instruction's form: a question, a description or a name that
matches nothing still gets an action toward the best-matching (or nearest) object, and its
text announces it. That is how the issue's policy misbehaved; whatever keeps the robot still
in a test with this policy is the node's own gates.
"""

import math
import re

from leo_ros.actions.grounded import GroundedTokenizer, GroundingContext, object_token
from leo_ros.actions.types import EEDelta, NavGoal, NavStep, PickPlace
from leo_ros.agent.grounding import color_matches, DEFAULT_CATEGORIES, named_objects
from leo_ros.model.decision import Decision
import numpy as np

_STEPS = (('turn left', 'turn_left'), ('turn right', 'turn_right'), ('forward', 'forward'),
          ('stop', 'stop'), ('halt', 'stop'))


class ScriptedPolicy:
    """
    Fixed answers per instruction, for the objects of the scene it is given.

    ``go to the LABEL`` -> NavGoal to that object's centre; ``step forward`` -> NavStep;
    ``grab it`` -> EEDelta (5 cm forward, 2 cm up, gripper closed); ``release`` -> EEDelta
    (2 cm up, gripper open); ``pick up the LABEL`` -> PickPlace of that
    object, placed 10 cm to its left; anything else -> a text answer with the object count, the
    first object's centre, the scene's frame and the pose the node gave.
    """

    device = 'cpu'
    dtype = 'float32'

    def act(self, scene, image, instruction, pose):
        text = instruction.lower().strip().rstrip('.')
        label = text.split()[-1] if text else ''
        where = {name: scene.centers[k] for k, name in enumerate(scene.labels)}
        if text.startswith('go to the ') and label in where:
            x, y, _ = where[label]
            return self._action(NavGoal(float(x), float(y), 0.0))
        if text == 'step forward':
            return self._action(NavStep('forward'))
        if text == 'grab it':
            return self._action(EEDelta(0.05, 0.0, 0.02, 0.0, 0.0))
        if text == 'release':
            return self._action(EEDelta(0.0, 0.0, 0.02, 0.0, 1.0))
        if text.startswith('pick up the ') and label in where:
            x, y, z = (float(v) for v in where[label])
            return self._action(PickPlace(x, y, z, 0.0, x, y + 0.1, z + 0.05, 0.0))
        first = ' '.join(f'{v:.3f}' for v in scene.centers[0]) if len(scene) else 'none'
        return Decision(action=None, tokens=[], kind='text',
                        text=f'objects {len(scene)} first {first} frame {scene.frame_id} '
                             f'pose {pose[0]:.3f} {pose[1]:.3f} {pose[2]:.3f}')

    @staticmethod
    def _action(action):
        return Decision(text='', action=action, kind=action.kind, tokens=[action.kind],
                        tokenizer='scripted', actions=[action])


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
            return Decision('I see no objects.', None, [], 'text')
        for words, step in _STEPS:
            if re.search(rf'\b{words}\b', lower) and not named_objects(lower):
                return Decision('', NavStep(step), ['<nav_step>', f'<{step}>'], 'nav_step',
                                tokenizer='grounded', actions=[NavStep(step)])
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
                return Decision(f'Putting object {ids[first]} on object {ids[second]}.', goal,
                                tokens, 'nav_goal', tokenizer='grounded', actions=[goal, pick],
                                object_ids=[int(ids[first]), int(ids[second])])
            goal = self.tokenizer.decode('nav_goal', [object_token(first)], context)
        except ValueError as error:
            return Decision('', None, ['<nav_goal>', object_token(first)], 'nav_goal',
                            error=str(error), tokenizer='grounded')
        heading = math.degrees(goal.yaw)
        return Decision(f'Going to object {ids[first]} (facing {heading:.0f} deg).',
                        goal, ['<nav_goal>', object_token(first)], 'nav_goal',
                        tokenizer='grounded', actions=[goal], object_ids=[int(ids[first])])


def load_pointing_policy(model_path='', device='cpu', dtype='float32'):
    """Return a :class:`PointingPolicy` (``model_path`` 'pointing:0.2' sets a 0.2 s delay)."""
    delay = 0.0
    if str(model_path).startswith('pointing:'):
        delay = float(str(model_path).split(':', 1)[1] or 0.0)
    return PointingPolicy(delay)
