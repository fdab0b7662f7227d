"""
Managed nodes (issue 21, item 5): leo_lifecycle_manager brings perception and policy up.

perception_node and policy_node are lifecycle nodes; sim_node feeds them; each runs in its own
process.
Before activation nothing is processed, published or moved, and instructions are answered
with the reason; configure loads the model; deactivate stops all motion; reactivate resumes.
"""

import sys
import time

from leo_ros.ros.process import wait_until
import pytest
from ros_agent_helpers import start_policy

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def _transition(robot, node_name, transition_id):
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState
    return robot.call(ChangeState, f'{node_name}/change_state',
                      ChangeState.Request(transition=Transition(id=transition_id))).success


def test_lifecycle_manager_brings_perception_and_policy_up_and_deactivate_stops(spawn, robot):
    from diagnostic_msgs.msg import DiagnosticArray
    from leo_ros.msg import SceneObjects
    from lifecycle_msgs.msg import Transition
    from rclpy.qos import qos_profile_sensor_data
    node = robot.node
    scenes, diagnostics = [], {}
    node.create_subscription(SceneObjects, 'leo/scene_objects', scenes.append,
                             qos_profile_sensor_data)
    node.create_subscription(DiagnosticArray, '/diagnostics', lambda m: diagnostics.update(
        {s.name: s for s in m.status}), 10)
    spawn([sys.executable, '-m', 'leo_ros.nodes.sim_node', '--ros-args', '-p', 'width:=160',
           '-p', 'height:=120'], name='sim_node')
    perception = spawn([sys.executable, '-m', 'leo_ros.nodes.perception_node', '--ros-args',
                        '-p', 'instance_field:=instance', '-p', 'classifier_path:=none'],
                       name='perception_node')
    policy = start_policy(spawn)

    # Unconfigured: the policy answers with the reason, perception publishes nothing.
    assert robot.instruct.wait(60.0)
    reply = robot.instruct.call('where are you', timeout=20.0, spin=False)
    assert not reply.success and 'not active' in reply.error and 'unconfigured' in reply.error
    assert wait_until(lambda: 'leo_ros: policy_node' in diagnostics, timeout=10.0)
    assert 'unconfigured' in diagnostics['leo_ros: policy_node'].message
    assert robot.lifecycle_state('perception_node') == 'unconfigured'
    time.sleep(2.0)
    assert scenes == [], 'perception published before it was activated'

    manager = spawn([sys.executable, '-m', 'leo_ros.nodes.lifecycle_manager'],
                    name='leo_lifecycle_manager')
    assert wait_until(lambda: robot.lifecycle_state('policy_node') == 'active', timeout=60.0)
    assert robot.lifecycle_state('perception_node') == 'active'
    assert wait_until(lambda: scenes, timeout=30.0), perception.output[-2000:]
    reply = robot.ready()
    assert 'frame map' in reply.response, reply
    assert wait_until(lambda: getattr(diagnostics.get('leo_ros: lifecycle_manager'),
                                      'message', '') == 'all nodes active', timeout=10.0)

    # Deactivate: the robot is stopped at once and nothing moves until reactivated.
    since = time.monotonic()
    assert _transition(robot, 'policy_node', Transition.TRANSITION_DEACTIVATE)
    assert wait_until(lambda: robot.messages('cmd_vel', since), timeout=5.0)
    assert robot.messages('cmd_vel', since)[0].linear.x == 0.0
    reply = robot.instruct.call('step forward', timeout=20.0, spin=False)
    assert not reply.success and 'inactive' in reply.error, reply
    time.sleep(0.5)
    assert all(not m.linear.x for m in robot.messages('cmd_vel', since))
    assert _transition(robot, 'perception_node', Transition.TRANSITION_DEACTIVATE)
    time.sleep(0.5)
    count = len(scenes)
    time.sleep(1.5)
    assert len(scenes) == count, 'an inactive perception_node published'

    assert _transition(robot, 'policy_node', Transition.TRANSITION_ACTIVATE)
    assert _transition(robot, 'perception_node', Transition.TRANSITION_ACTIVATE)
    reply = robot.instruct.call('step forward', timeout=20.0, spin=False)
    assert reply.success, reply
    assert wait_until(lambda: any(m.linear.x for m in robot.messages('cmd_vel', since)),
                      timeout=5.0)
    assert manager.poll() is None and policy.poll() is None and perception.poll() is None
