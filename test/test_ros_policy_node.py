"""policy_node as a real process: bad input, busy, stop, broken checkpoints (real ROS)."""

import shutil
import sys
import threading
import time

from leo_ros.ros.instruct_client import InstructClient
from leo_ros.ros.process import wait_until
import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]


@pytest.fixture(scope='module')
def tiny_policy_dir(tmp_path_factory):
    """Save an untrained tiny policy: the node must serve it like any other checkpoint."""
    from leo_ros.model.bench import untrained
    from leo_ros.model.checkpoint import save_policy
    directory = tmp_path_factory.mktemp('policy')
    save_policy(untrained('tiny', 'cpu', 'float32'), directory)
    return directory


def _policy_node(spawn, model_path, extra=()):
    node = spawn([sys.executable, '-m', 'leo_ros.nodes.policy_node', '--ros-args',
                  '-p', f'model_path:={model_path}', '-p', 'device:=cpu', *extra],
                 name='policy_node')
    # A lifecycle node: brought to active as leo-agent and the launch file do.
    spawn([sys.executable, '-m', 'leo_ros.nodes.lifecycle_manager', '--ros-args', '-p',
           "node_names:=['policy_node']"], name='leo_lifecycle_manager')
    return node


def _place_robot(node):
    """Publish the robot's pose (map -> base_link) on /tf_static, as a robot's TF would."""
    from leo_ros.ros.conversions import matrix_to_transform_stamped
    from leo_ros.ros.tf import TransformPublisher
    publisher = TransformPublisher(node)
    publisher.send_static([matrix_to_transform_stamped(
        np.eye(4), 'map', 'base_link', node.get_clock().now().to_msg())])
    return publisher


def _scene_message():
    from leo_ros.ros.conversions import scene_tokens_to_msg
    from leo_ros.scene_tokens import SceneTokens
    rng = np.random.default_rng(0)
    clouds = [rng.normal(size=(200, 3)) * 0.1 + [k, 0.5 * k, 0.4] for k in range(4)]
    return scene_tokens_to_msg(SceneTokens.from_object_clouds(
        clouds, points_per_object=256, frame_id='map'))


def _wait_ready(client, timeout=120.0):
    """Wait until the node has loaded its model (it serves errors while loading)."""
    def loaded():
        reply = client.call('are you ready', timeout=30.0, spin=False)
        waiting = 'model not ready' in reply.error or 'not active' in reply.error
        return not waiting or 'cannot load' in reply.error
    assert wait_until(loaded, timeout=timeout, period=1.0), 'model never finished loading'


def test_bad_instructions_get_clear_errors_and_the_node_keeps_serving(
        spawn, spun_node, tiny_policy_dir):
    from geometry_msgs.msg import Twist
    from leo_ros.msg import SceneObjects
    from rclpy.qos import qos_profile_sensor_data
    from std_srvs.srv import Trigger

    node = _policy_node(spawn, tiny_policy_dir)
    tf = _place_robot(spun_node)  # noqa: F841 (kept alive: latched for late subscribers)
    client = InstructClient(spun_node)
    assert client.wait(60.0), 'leo/instruct never appeared'
    _wait_ready(client)

    before = client.call('go to the red mug', timeout=30.0, spin=False)
    assert not before.success and 'no scene' in before.error

    for bad, reason in (('', 'empty'), ('   \t\n', 'empty'), ('x' * 100_000, 'limit'),
                        ('%$#@! 123 ***', 'no words')):
        reply = client.call(bad, timeout=30.0, spin=False)
        assert not reply.success and reason in reply.error, (bad[:20], reply.error)

    scenes = spun_node.create_publisher(SceneObjects, 'leo/scene_objects',
                                        qos_profile_sensor_data)
    moved = []
    spun_node.create_subscription(Twist, 'cmd_vel', moved.append, 10)
    message = _scene_message()
    stop_publishing = threading.Event()

    def publish_scene():
        while not stop_publishing.is_set():
            message.header.stamp = spun_node.get_clock().now().to_msg()
            scenes.publish(message)
            time.sleep(0.2)

    publisher = threading.Thread(target=publish_scene, daemon=True)
    publisher.start()
    try:
        assert wait_until(lambda: 'no scene' not in client.call(
            'what is on the table', timeout=60.0, spin=False).error, timeout=30.0, period=0.5)
        # One instruction at a time: a second one while the first runs is told so.
        replies = []
        first = threading.Thread(target=lambda: replies.append(
            client.call('describe the scene', timeout=60.0, spin=False)))
        first.start()
        time.sleep(0.05)
        second = client.call('go to the chair', timeout=60.0, spin=False)
        first.join()
        assert not second.success and 'busy' in second.error
        assert replies and (replies[0].success or replies[0].error)
        # The next good instruction is answered (an untrained model may answer anything,
        # but it answers, or says why its action was refused).
        after = client.call('how many mugs are there', timeout=60.0, spin=False)
        assert after.success or after.error
        assert after.kind in ('text', 'nav_goal', 'nav_step', 'pick_place', 'ee_delta', 'refusal')

        stop = spun_node.create_client(Trigger, 'leo/stop')
        assert stop.wait_for_service(timeout_sec=10.0)
        future = stop.call_async(Trigger.Request())
        assert wait_until(future.done, timeout=10.0)
        assert future.result().success
        assert wait_until(lambda: any(not m.linear.x and not m.angular.z for m in moved),
                          timeout=5.0), 'stop did not command zero velocity'
    finally:
        stop_publishing.set()
        publisher.join(timeout=2)
    assert node.poll() is None, 'policy_node died'


@pytest.mark.parametrize('breakage', ['missing', 'corrupt'])
def test_broken_checkpoint_leaves_the_node_up_and_saying_why(
        spawn, spun_node, tiny_policy_dir, tmp_path, breakage):
    if breakage == 'missing':
        model_path = tmp_path / 'no_such_model'
    else:
        model_path = tmp_path / 'corrupt'
        shutil.copytree(tiny_policy_dir, model_path)
        weights = model_path / 'policy.safetensors'
        weights.write_bytes(weights.read_bytes()[:1000])
    node = _policy_node(spawn, model_path)
    client = InstructClient(spun_node)
    assert client.wait(60.0)

    def says_why():
        reply = client.call('go to the mug', timeout=30.0, spin=False)
        return not reply.success and 'cannot load model' in reply.error

    assert wait_until(says_why, timeout=120.0, period=1.0)
    assert node.poll() is None, 'policy_node died on a broken checkpoint'
