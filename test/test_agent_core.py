"""
Unit tests of AgentCore: gating, plans, multi-step execution, busy and cancel.

The policy here is a scripted dependency that returns fixed decisions, so the core's own
logic (what is gated when, what runs in which order, when a task ends) is what is tested.
"""

from dataclasses import dataclass, field

from leo_ros.actions.types import NavGoal, NavStep, PickPlace
from leo_ros.agent.core import AgentBusy, AgentConfig, AgentCore
from leo_ros.scene_tokens import SceneTokens
import numpy as np
import pytest


@dataclass
class ScriptedDecision:
    text: str = ''
    action: object = None
    tokens: list = field(default_factory=list)
    kind: str = 'text'
    token_ids: list = field(default_factory=list)
    error: str = ''
    tokenizer: str = 'grounded'
    actions: list = field(default_factory=list)


class ScriptedPolicy:
    """Returns the given decisions in turn (the last one repeats)."""

    def __init__(self, *decisions):
        self.decisions = list(decisions)
        self.calls = 0

    def act(self, scene, image, instruction, pose):
        decision = self.decisions[min(self.calls, len(self.decisions) - 1)]
        self.calls += 1
        return decision


def make_core(*decisions, fail_load=False):
    def load(path, device, dtype):
        if fail_load:
            raise FileNotFoundError(f'no model at {path}')
        return ScriptedPolicy(*decisions)
    core = AgentCore(AgentConfig(model_path='/models/x'), load)
    core.load()
    return core


def with_scene(core, now=10.0):
    tokens = SceneTokens.from_object_clouds([np.zeros((5, 3)) + 1.0], points_per_object=8)
    core.set_scene(tokens, now)
    core.set_pose(0.0, 0.0, 0.0)
    return core


PICK = PickPlace(1.0, 0.0, 0.5, 0.0, 0.8, 0.3, 0.5, 0.0)
GOAL = NavGoal(1.0, 2.0, 0.5)


def test_text_answer():
    core = with_scene(make_core(ScriptedDecision(text='three')))
    outcome = core.decide('how many mugs?', now=10.5)
    assert outcome.success and outcome.kind == 'text' and outcome.response == 'three'
    assert outcome.action is None


def test_load_failure_is_reported_not_raised():
    core = with_scene(make_core(fail_load=True))
    outcome = core.decide('go', now=10.5)
    assert not outcome.success and 'cannot load model from /models/x' in outcome.error


def test_undecodable_action_is_an_error():
    core = with_scene(make_core(ScriptedDecision(error='no object <obj_9>', kind='nav_goal')))
    outcome = core.decide('go to the mug', now=10.5)
    assert not outcome.success and 'could not decode' in outcome.error


def test_first_action_is_gated_at_decision_time():
    core = with_scene(make_core(ScriptedDecision(action=NavGoal(9.0, 0.0, 0.0),
                                                 kind='nav_goal')))
    outcome = core.decide('go far', now=10.5)
    assert outcome.success and outcome.action == NavGoal(5.0, 0.0, 0.0)
    stale = core.decide('go far', now=100.0)
    assert not stale.success and 'stale' in stale.error and stale.action is None


def test_plan_gates_each_later_action_when_it_runs():
    plan = ScriptedDecision(action=GOAL, kind='nav_goal', actions=[GOAL, PICK])
    core = with_scene(make_core(plan))
    outcome = core.decide('bring it', now=10.5)
    assert outcome.plan == [PICK] and 'then pick' in outcome.response
    performed = []

    def perform(action):
        performed.append(action)
        if action is GOAL:              # the base drives next to the pick pose
            core.set_pose(0.9, 0.0, 0.0)
        return True, ''

    assert core.run_plan(outcome, lambda: 10.6, perform) == (True, '')
    assert performed == [GOAL, PICK]
    # Without driving there first, the pick is out of reach and refused at its turn.
    core.set_pose(-4.0, -4.0, 0.0)
    performed.clear()

    def record(action):
        performed.append(action)
        return True, ''
    ok, message = core.run_plan(outcome, lambda: 10.6, record)
    assert not ok and 'reach' in message and performed == [GOAL]


def test_execute_steps_until_stop():
    core = with_scene(make_core(*[ScriptedDecision(action=NavStep(s), kind='nav_step')
                                  for s in ('forward', 'turn_left', 'stop')]))
    phases = []
    outcome, steps = core.execute('walk', lambda: 10.5, lambda a: (True, ''),
                                  lambda phase, step, last: phases.append((phase, step)))
    assert outcome.success and steps == 3 and phases[-1] == ('done', 3)


def test_execute_gives_up_after_max_steps_and_honours_cancel():
    core = with_scene(make_core(ScriptedDecision(action=NavStep('forward'), kind='nav_step')))
    outcome, steps = core.execute('walk', lambda: 10.5, lambda a: (True, ''),
                                  lambda *_: None, max_steps=4)
    assert not outcome.success and steps == 4 and 'not done after 4' in outcome.error

    def perform_then_cancel(action):
        core.cancel()
        return True, ''
    outcome, steps = core.execute('walk', lambda: 10.5, perform_then_cancel, lambda *_: None)
    assert not outcome.success and outcome.error == 'cancelled' and steps == 1


def test_one_instruction_at_a_time():
    core = make_core(ScriptedDecision(text='x'))
    core.begin()
    with pytest.raises(AgentBusy, match='busy'):
        core.begin()
    core.end()
    core.begin()
    core.end()
