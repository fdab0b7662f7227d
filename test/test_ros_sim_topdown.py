"""sim_node draws the world from above on request and reports on /diagnostics (real ROS)."""

import sys
import time

from leo_ros.ros.process import wait_until
import pytest

pytestmark = pytest.mark.ros


def test_topdown_png_and_diagnostics(spawn, ros_context, tmp_path):
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from leo_ros.srv import SaveTopdown
    from rclpy.executors import SingleThreadedExecutor
    spawn([sys.executable, '-m', 'leo_ros.nodes.sim_node', '--ros-args', '-p', 'rate:=5.0',
           '-p', 'width:=160', '-p', 'height:=120'], name='sim_node')
    node = rclpy.create_node('leo_test_topdown', context=ros_context)
    # rclpy.spin_until_future_complete removes the node from the executor afterwards, so the
    # node is added once here and the executor spun directly.
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    reports = []
    node.create_subscription(DiagnosticArray, '/diagnostics', lambda m: reports.extend(
        s for s in m.status if s.name == 'leo_ros: sim_node'), 10)
    client = node.create_client(SaveTopdown, 'sim/save_topdown')
    assert client.wait_for_service(timeout_sec=60.0), 'sim/save_topdown never appeared'
    picture = tmp_path / 'world.png'
    future = client.call_async(SaveTopdown.Request(path=str(picture)))
    executor.spin_until_future_complete(future, timeout_sec=60.0)
    assert future.done() and future.result().success, future.result()
    assert picture.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    bad = client.call_async(SaveTopdown.Request(path=str(tmp_path / 'no' / 'dir' / 'x.png')))
    executor.spin_until_future_complete(bad, timeout_sec=60.0)
    assert wait_until(bad.done, 5.0) and not bad.result().success
    assert 'cannot draw' in bad.result().message
    deadline = time.monotonic() + 30.0
    while not reports and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.2)
    assert reports, 'no /diagnostics from sim_node'
    values = {kv.key: kv.value for kv in reports[-1].values}
    assert float(values['rate_hz']) >= 0.0 and int(values['published']) > 0
    assert {'render_ms', 'dropped_frames', 'scene_seed', 'robot_pose'} <= set(values)
    executor.shutdown()
    node.destroy_node()
