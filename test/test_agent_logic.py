"""Unit tests of the agent's ROS-free logic: safety gate, instruction checks, node set."""

import math

from leo_ros.actions.types import EEDelta, NavGoal, NavStep, PickPlace
from leo_ros.agent.instructions import clean_instruction, InstructionError
from leo_ros.agent.node_set import agent_nodes, AgentArguments, ros_arguments
from leo_ros.agent.safety import SafetyConfig, SafetyGate
import pytest


@pytest.fixture
def gate():
    return SafetyGate(SafetyConfig())


def test_goal_inside_the_map_passes_unchanged(gate):
    result = gate.check(NavGoal(1.0, -2.0, 0.3), scene_age=0.5)
    assert result.allowed and not result.clamped and result.action == NavGoal(1.0, -2.0, 0.3)


def test_goal_outside_the_map_is_clamped_or_refused(gate):
    result = gate.check(NavGoal(7.5, -9.0, 1.0), scene_age=0.5)
    assert result.allowed and result.clamped
    assert (result.action.x, result.action.y, result.action.yaw) == (5.0, -5.0, 1.0)
    assert 'outside the map' in result.reason
    refusing = SafetyGate(SafetyConfig(out_of_bounds='refuse'))
    refused = refusing.check(NavGoal(7.5, 0.0, 0.0), scene_age=0.5)
    assert not refused.allowed and refused.action is None


@pytest.mark.parametrize('age,expected', [(None, 'no scene'), (6.0, 'stale'),
                                          (math.inf, 'stale')])
def test_stale_or_missing_scene_refuses_motion(gate, age, expected):
    result = gate.check(NavStep('forward'), scene_age=age)
    assert not result.allowed and expected in result.reason


def test_dry_run_lets_nothing_through():
    gate = SafetyGate(SafetyConfig(dry_run=True))
    result = gate.check(NavGoal(0.0, 0.0, 0.0), scene_age=0.1)
    assert not result.allowed and 'dry_run' in result.reason


def test_non_finite_values_are_refused(gate):
    assert not gate.check(NavGoal(math.nan, 0.0, 0.0), scene_age=0.1).allowed


@pytest.mark.parametrize('z,robot,reason', [(2.0, (0.0, 0.0), 'workspace'),
                                            (0.5, (3.0, 3.0), 'reach')])
def test_pick_place_outside_workspace_or_reach_is_refused(gate, z, robot, reason):
    action = PickPlace(0.5, 0.0, z, 0.0, 0.4, 0.3, 0.5, 0.0)
    result = gate.check(action, scene_age=0.1, robot_xy=robot)
    assert not result.allowed and reason in result.reason
    ok = gate.check(PickPlace(0.5, 0.0, 0.5, 0.0, 0.4, 0.3, 0.5, 0.0), 0.1, (0.0, 0.0))
    assert ok.allowed


def test_end_effector_step_is_bounded(gate):
    result = gate.check(EEDelta(0.3, 0.4, 0.0, 0.0, 1.5), scene_age=0.1)
    assert result.allowed and result.clamped
    moved = math.sqrt(result.action.dx ** 2 + result.action.dy ** 2 + result.action.dz ** 2)
    assert moved == pytest.approx(0.1) and result.action.gripper == 1.0


@pytest.mark.parametrize('step,linear,angular', [('forward', 0.5, 0.0),
                                                 ('turn_left', 0.0, 1.0),
                                                 ('turn_right', 0.0, -1.0), ('stop', 0, 0)])
def test_step_velocities_respect_speed_limits(gate, step, linear, angular):
    velocity = gate.step_velocity(NavStep(step))
    assert (velocity.linear, velocity.angular) == (linear, angular)
    assert abs(velocity.linear) <= gate.config.max_linear_speed
    assert gate.bound_velocity(3.0, -7.0) == (0.5, -1.0)


@pytest.mark.parametrize('kwargs,name', [({'map_min_x': 6.0}, 'map_min_x'),
                                         ({'max_linear_speed': -1.0}, 'max_linear_speed'),
                                         ({'out_of_bounds': 'ignore'}, 'out_of_bounds')])
def test_bad_safety_config_names_the_value(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SafetyConfig(**kwargs)


@pytest.mark.parametrize('text,problem', [
    ('', 'empty'), ('   \n\t ', 'empty'), ('x' * 100_000, 'limit'), ('%$#@! 123', 'no words'),
    ('go to\x00 the mug', 'control'), (None, 'text'),
])
def test_bad_instructions_are_refused_with_a_reason(text, problem):
    with pytest.raises(InstructionError, match=problem):
        clean_instruction(text)


def test_good_instruction_is_normalised():
    assert clean_instruction('  go to the\n red   mug ') == 'go to the red mug'


def test_node_set_and_its_command_lines():
    args = AgentArguments(use_sim='true', namespace='robot1', points_topic='/kinect/points',
                          model_path='/models/leo', config_file='/tmp/agent.yaml')
    nodes = {spec.name: spec for spec in agent_nodes(args)}
    assert list(nodes) == ['sim_node', 'perception_node', 'policy_node', 'leo_lifecycle_manager']
    argv = ros_arguments(nodes['perception_node'], args)
    assert argv[:5] == ['--ros-args', '-r', '__node:=perception_node', '-r', '__ns:=/robot1']
    assert argv[argv.index('--params-file') + 1] == '/tmp/agent.yaml'
    assert 'camera/points:=/kinect/points' in argv
    assert "model_path:='/models/leo'" in ros_arguments(nodes['policy_node'], args)
    assert [s.name for s in agent_nodes(AgentArguments())] == ['perception_node', 'policy_node',
                                                               'leo_lifecycle_manager']
    manager = ros_arguments(nodes['leo_lifecycle_manager'], args)
    assert "node_names:=['perception_node', 'policy_node']" in manager
    assert '--params-file' not in manager


@pytest.mark.parametrize('kwargs,moves', [({}, False), ({'use_sim': True}, True),
                                          ({'dry_run': 'false'}, True),
                                          ({'use_sim': True, 'dry_run': 'true'}, False),
                                          ({'dry_run': True}, False)])
def test_dry_run_is_on_for_a_robot_unless_asked_off(kwargs, moves):
    args = AgentArguments(**kwargs)
    assert args.moves is moves
    policy = next(s for s in agent_nodes(args) if s.name == 'policy_node')
    assert policy.parameters['dry_run'] is (not moves)


@pytest.mark.parametrize('kwargs,name', [({'dtype': 'int8'}, 'dtype'),
                                         ({'device': 'tpu'}, 'device'),
                                         ({'namespace': 'a b'}, 'namespace'),
                                         ({'dry_run': 'maybe'}, 'dry_run'),
                                         ({'log_level': 'loud'}, 'log_level')])
def test_bad_agent_arguments_name_the_value(kwargs, name):
    with pytest.raises(ValueError, match=name):
        AgentArguments(**kwargs)
