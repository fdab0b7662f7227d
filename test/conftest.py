"""Shared fixtures: an isolated ROS domain per test and managed child processes."""

import os
from pathlib import Path
import random

from leo_ros.ros.env import apply_ros_environment
from leo_ros.ros.process import ManagedProcess
import pytest

# Other programs share this machine: keep discovery on loopback and domains unique per test.
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.pop('ROS_LOCALHOST_ONLY', None)
apply_ros_environment()

_used_domains = set()

#: The real Kinect scenes: ../shared beside the checkout (as CI and developers have it).
MOSD_LEARN = next((path for path in (
    Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'mosd-learn',
    Path('/work/shared/data/mosd-learn')) if path.is_dir()),
    Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'mosd-learn')


@pytest.fixture
def domain_id():
    """Return a ROS domain id no other test of this run uses."""
    rng = random.Random(os.getpid())
    candidates = [d for d in range(1, 101) if d not in _used_domains]
    domain = rng.choice(candidates) if candidates else random.randint(1, 100)
    _used_domains.add(domain)
    return domain


@pytest.fixture
def ros_context(domain_id):
    """Yield an initialised rclpy context on the test's domain; shut it down after."""
    import rclpy
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    yield context
    context.try_shutdown()


@pytest.fixture
def spun_node(ros_context):
    """
    Yield a node on the test's domain, spun in a background thread.

    A SingleThreadedExecutor: rclpy's multi-threaded one costs so much per callback that a
    640x480 cloud stream at 30 Hz falls behind the shared-memory segment (111/150 delivered).
    """
    import threading

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    node = rclpy.create_node('leo_test_client', context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    yield node
    executor.shutdown()
    thread.join(timeout=5)
    node.destroy_node()


@pytest.fixture
def spawn(domain_id, tmp_path, request):
    """Start processes on the test's domain; stop them after, printing their logs on failure."""
    started = []

    def _spawn(argv, name=None, env=None):
        extra = {'ROS_DOMAIN_ID': str(domain_id),
                 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
        extra.update(env or {})
        name = name or os.path.basename(str(argv[0]))
        proc = ManagedProcess(argv, name=name, env=extra,
                              log_path=tmp_path / f'{name}-{len(started)}.log')
        started.append(proc)
        return proc

    yield _spawn
    for proc in started:
        proc.stop()
        print(f'----- {proc.name} (exit {proc.process.returncode}) -----\n{proc.output[-4000:]}')


@pytest.fixture
def robot(spun_node):
    """Yield the robot's side of policy_node (test/ros_agent_helpers.py), closed after."""
    from ros_agent_helpers import Robot
    robot = Robot(spun_node)
    yield robot
    robot.close()
