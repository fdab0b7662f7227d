"""
Parameters that work live (issue 21, item 1), against policy_node in its own process.

A change at run time is checked and applied to the safety gate, or rejected with a reason and
nothing changes; dry_run set live stops all motion; limits at start-up refuse to start; entries
of a parameter file that no parameter matches are named in a warning.
"""

import time

from leo_ros.ros.process import wait_until
import pytest
from ros_agent_helpers import start_policy

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def _step(robot):
    """Ask for one forward step; return (reply, motion published within 1.5 s)."""
    since = time.monotonic()
    reply = robot.instruct.call('step forward', timeout=30.0, spin=False)
    time.sleep(1.5)
    return reply, robot.motion_since(since)


def test_live_safety_parameters_reach_the_gate_or_are_refused(spawn, robot):
    node = start_policy(spawn, 'navigation:=goal_pose')
    robot.place_base(1.0, 1.0)
    robot.publish_scene()
    robot.activate()
    robot.ready()

    reply, motion = _step(robot)
    assert reply.success, reply
    speeds = [m.linear.x for m in motion.get('cmd_vel', [])]
    assert 0.5 in speeds, speeds                      # the default max_linear_speed

    # A live change of the speed limit is applied to the gate.
    assert all(r.successful for r in robot.set_parameters(max_linear_speed=0.2))
    reply, motion = _step(robot)
    assert reply.success and 0.2 in [m.linear.x for m in motion['cmd_vel']], motion

    # Bad values are refused with a reason, and nothing changes.
    for values, reason in (({'max_linear_speed': -3.0}, 'range'),
                           ({'max_linear_speed': 1000.0}, 'range'),
                           ({'max_scene_age': 1e12}, 'range'),
                           ({'max_linear_speed': 'fast'}, 'type'),
                           ({'out_of_bounds': 'ignore'}, 'clamp'),
                           ({'model_path': '/elsewhere'}, 'read-only'),
                           ({'diagnostics_period': 0.0}, 'read-only')):
        results = robot.set_parameters(**values)
        assert not results[0].successful and reason in results[0].reason, (values, results)
    # A set that is fine per value but not together (min above max) is refused as a whole.
    result, = robot.set_parameters(atomically=True, map_min_x=3.0, map_max_x=2.0,
                                   dry_run=True)
    assert not result.successful and 'map_min_x' in result.reason, result
    assert robot.get_parameters('max_linear_speed', 'map_min_x', 'dry_run') == [0.2, -5.0,
                                                                                False]

    # dry_run set live: decisions are still reported, nothing moves on any output.
    assert all(r.successful for r in robot.set_parameters(dry_run=True))
    reply, motion = _step(robot)
    assert not reply.success and 'dry_run' in reply.error, reply
    assert motion == {}, {topic: len(msgs) for topic, msgs in motion.items()}
    for instruction in ('go to the chair', 'grab it', 'pick up the mug'):
        since = time.monotonic()
        reply = robot.instruct.call(instruction, timeout=30.0, spin=False)
        time.sleep(0.5)
        assert not reply.success and 'dry_run' in reply.error, reply
        assert robot.motion_since(since) == {}, instruction
    assert all(r.successful for r in robot.set_parameters(dry_run=False))
    reply, motion = _step(robot)
    assert reply.success and motion, reply
    assert node.poll() is None, 'policy_node died'


def test_bad_values_at_start_stop_the_node_with_a_reason(spawn):
    for parameter, reason in (('diagnostics_period:=0.0', 'diagnostics_period'),
                              ('diagnostics_period:=-1.0', 'diagnostics_period'),
                              ('max_linear_speed:=1000.0', 'max_linear_speed'),
                              ('navigation:=teleport', 'navigation')):
        node = start_policy(spawn, parameter, name=f'policy_{parameter.split(":")[0]}')
        assert wait_until(lambda: node.poll() is not None, timeout=60.0), parameter
        assert node.poll() == 2 and reason in node.output, (parameter, node.output[-2000:])


def test_parameter_file_entries_nobody_declares_are_named(spawn, tmp_path):
    params = tmp_path / 'typos.yaml'
    params.write_text('/**/policy_node:\n  ros__parameters:\n    max_linear_sped: 0.1\n'
                      '    dryrun: true\n    max_linear_speed: 0.3\n')
    node = start_policy(spawn, extra=['--params-file', str(params)])
    assert wait_until(lambda: 'dryrun' in node.output and 'max_linear_sped' in node.output,
                      timeout=60.0), node.output[-3000:]
    lines = [line for line in node.output.splitlines() if 'max_linear_sped' in line]
    assert 'WARN' in lines[0] and "did you mean 'max_linear_speed'" in lines[0], lines
