"""The action registry: one entry per kind, and what reads it (pure Python)."""

import math

from leo_ros.actions.registry import GROUNDED, kind_of, KINDS
from leo_ros.actions.types import ACTION_TYPES, EEDelta, NavGoal, NavStep, PickPlace
from leo_ros.agent.safety import SafetyGate
import pytest

EXAMPLES = {'nav_goal': NavGoal(1.0, 2.0, 0.5), 'nav_step': NavStep('forward'),
            'pick_place': PickPlace(1.0, 0.5, 0.8, 0.1, 1.5, -0.5, 0.8, -0.2),
            'ee_delta': EEDelta(0.05, 0.0, -0.02, 0.1, 1.0)}


def test_every_action_type_has_an_entry_and_back():
    assert set(KINDS) == set(ACTION_TYPES) == set(EXAMPLES)
    for name, kind in KINDS.items():
        assert kind.action_type is ACTION_TYPES[name]
        assert kind.marker == f'<{name}>'
        assert kind.gate in SafetyGate.RULES, name
        assert kind.command in ('navigate', 'step', 'manipulate'), name


@pytest.mark.parametrize('name', sorted(EXAMPLES))
def test_describe_names_the_fields(name):
    text = kind_of(EXAMPLES[name]).describe(EXAMPLES[name])
    assert text and '{' not in text


@pytest.mark.parametrize('pose', [(0.0, 0.0, 0.0), (1.5, -2.0, 0.7), (3.0, 4.0, -2.9)])
@pytest.mark.parametrize('name', sorted(EXAMPLES))
def test_robot_frame_round_trip(name, pose):
    action = EXAMPLES[name]
    kind = kind_of(action)
    there = kind.to_robot_frame(action, pose)
    back = kind.from_robot_frame(there, pose)
    for field in action.__dataclass_fields__:
        value = getattr(action, field)
        if isinstance(value, float):
            assert math.isclose(getattr(back, field), value, abs_tol=1e-9), field
    if not kind.poses:
        assert there == action        # relative to the robot already


def test_a_goal_ahead_of_the_robot_is_ahead_in_its_frame():
    goal = kind_of('nav_goal').to_robot_frame(NavGoal(2.0, 1.0, 0.0), (1.0, 1.0, 0.0))
    assert math.isclose(goal.x, 1.0) and math.isclose(goal.y, 0.0, abs_tol=1e-12)


def test_grounded_kinds_and_unknown_kinds():
    assert GROUNDED == {'nav_goal': 1, 'pick_place': 2}
    with pytest.raises(ValueError, match='unknown action kind'):
        kind_of('fly')
