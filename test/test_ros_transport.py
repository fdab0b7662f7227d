"""Real cross-process ROS tests: the interfaces and large clouds over DDS."""

import sys
import threading

from leo_ros.ros.conversions import pointcloud2_to_xyz_rgb
from leo_ros.ros.instruct_client import InstructClient
from leo_ros.ros.process import wait_until
import pytest

pytestmark = pytest.mark.ros


def test_instruct_service_across_processes(spawn, spun_node):
    server = spawn([sys.executable, '-m', 'leo_ros.nodes.ping_server'], name='ping_server')
    client = InstructClient(spun_node)
    assert client.wait(20.0), 'Instruct service was not discovered'

    empty = client.call('   ', timeout=10.0, spin=False)
    assert not empty.success and empty.error == 'empty instruction'
    unknown = client.call('x' * 100_000, timeout=10.0, spin=False)
    assert not unknown.success and 'unknown instruction' in unknown.error
    assert len(unknown.error) < 200
    before = client.call('points', timeout=10.0, spin=False)
    assert not before.success and before.error == 'no cloud received yet'

    spawn([sys.executable, '-m', 'leo_ros.nodes.ping_publisher', '--rate', '10',
           '--width', '64', '--height', '48'], name='ping_publisher')
    assert wait_until(lambda: client.call('frames', timeout=10.0, spin=False)
                      .response not in ('', 'frames=0'), timeout=20.0, period=0.2)
    reply = client.call('points', timeout=10.0, spin=False)
    assert reply.success, reply.error
    assert reply.response == 'points=3062 of 48x64 colour=yes'   # 10 NaN points in row 0
    assert server.poll() is None, 'the server died'


def test_pointcloud2_640x480_at_30hz_best_effort(spawn, spun_node):
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import PointCloud2
    frames, stamps, first = 150, set(), []
    # Best effort like sensor data, with a reader queue deep enough for a burst of frames.
    best_effort = QoSProfile(reliability=ReliabilityPolicy.BEST_EFFORT,
                             history=HistoryPolicy.KEEP_LAST, depth=30)
    lock = threading.Lock()

    def on_cloud(msg):
        with lock:
            stamps.add((msg.header.stamp.sec, msg.header.stamp.nanosec))
            if not first:
                first.append(msg)

    spun_node.create_subscription(PointCloud2, 'camera/points', on_cloud, best_effort)
    publisher = spawn([sys.executable, '-m', 'leo_ros.nodes.ping_publisher', '--count',
                       str(frames), '--rate', '30'], name='ping_publisher')
    # The publisher starts sending once it has matched this subscriber (discovery done).
    assert wait_until(lambda: publisher.poll() is not None, timeout=60.0), 'publisher hung'
    assert publisher.poll() == 0
    wait_until(lambda: len(stamps) >= frames, timeout=2.0)
    with lock:
        received = len(stamps)
    print(f'received {received}/{frames} 640x480 clouds at 30 Hz')
    assert received >= 0.99 * frames, f'lost {frames - received} of {frames}'
    xyz, rgb = pointcloud2_to_xyz_rgb(first[0])
    assert xyz.shape == (480, 640, 3) and rgb.shape == (480, 640, 3)
