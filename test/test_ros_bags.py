"""
Real ROS tests of leo-record and leo-replay: each runs as its own process over DDS.

A publisher process and the test's node publish; ``leo-record`` writes the bag; ``leo-replay``
plays it back to the test's node, with the recorded timing and ``/clock``. Bad bags (cut,
unknown types, not a bag) are played as far as they go, with the problem in the summary.
"""

from pathlib import Path
import sys
import threading
import time

from leo_ros.bags.mcap_bag import BagReader, BagWriter, QosProfile
from leo_ros.ros.process import wait_until
import pytest

pytestmark = pytest.mark.ros

BIN = Path(sys.prefix) / 'bin'


class Inbox:
    """Collect what arrives on a few topics of the test's node, with arrival times."""

    def __init__(self, node, topics):
        from rclpy.qos import qos_profile_sensor_data, QoSProfile
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import PointCloud2
        from std_msgs.msg import String
        self.lock = threading.Lock()
        self.items = {topic: [] for topic in topics}
        kinds = {'/camera/points': (PointCloud2, qos_profile_sensor_data),
                 '/kinect/points': (PointCloud2, qos_profile_sensor_data),
                 '/leo/response': (String, QoSProfile(depth=50)),
                 '/clock': (Clock, QoSProfile(depth=50))}
        for topic in topics:
            kind, qos = kinds[topic]
            node.create_subscription(kind, topic, self._store(topic), qos, raw=True)

    def _store(self, topic):
        def store(data):
            with self.lock:
                self.items[topic].append((time.monotonic(), data))
        return store

    def count(self, topic):
        with self.lock:
            return len(self.items[topic])


def record_session(spawn, spun_node, out, frames=20):
    """Record clouds from a publisher process and answers from the test node; return counts."""
    from rclpy.qos import QoSProfile
    from std_msgs.msg import String
    recorder = spawn([BIN / 'leo-record', out, '/camera/points', '/leo/response', '--quiet'],
                     name='leo-record')
    answers = spun_node.create_publisher(String, '/leo/response', QoSProfile(depth=10))
    assert wait_until(lambda: answers.get_subscription_count() > 0, timeout=30.0), \
        'leo-record never subscribed to /leo/response'
    publisher = spawn([sys.executable, '-m', 'leo_ros.nodes.ping_publisher', '--count',
                       str(frames), '--rate', '10', '--width', '64', '--height', '48'],
                      name='ping_publisher')
    for k in range(5):
        answers.publish(String(data=f'answer {k}'))
        time.sleep(0.2)
    assert wait_until(lambda: publisher.poll() is not None, timeout=60.0), 'publisher hung'
    time.sleep(0.5)
    assert recorder.stop() == 0, recorder.output
    return recorder


def test_record_then_replay_with_timing_and_clock(spawn, spun_node, tmp_path):
    out = tmp_path / 'session.mcap'
    recorder = record_session(spawn, spun_node, out)
    assert 'messages=' in recorder.output.splitlines()[-1], recorder.output
    reader = BagReader(out)
    summary = reader.summary()
    assert summary is not None and summary.profile == 'ros2'
    counts = {t: info.count for t, info in summary.topics.items()}
    assert counts['/leo/response'] == 5 and counts['/camera/points'] >= 19, counts
    # the recorder subscribed the way the publishers offer: sensor data is best effort
    assert summary.topics['/camera/points'].qos[0].reliability == 'best_effort'
    assert summary.topics['/leo/response'].qos[0].reliability == 'reliable'
    recorded = {t: list(BagReader(out).messages(topics=[t])) for t in counts}

    inbox = Inbox(spun_node, ['/camera/points', '/leo/response', '/clock'])
    replay = spawn([BIN / 'leo-replay', out, '--quiet', '--wait-for-subscribers'],
                   name='leo-replay')
    assert wait_until(lambda: replay.poll() is not None, timeout=90.0), 'leo-replay hung'
    assert replay.poll() == 0, replay.output
    wait_until(lambda: inbox.count('/camera/points') >= counts['/camera/points'], 2.0)
    with inbox.lock:
        clouds = [data for _, data in inbox.items['/camera/points']]
        answers = [data for _, data in inbox.items['/leo/response']]
        arrivals = [t for t, _ in inbox.items['/camera/points']]
        clocks = [data for _, data in inbox.items['/clock']]
    assert clouds == [bytes(m.data) for m in recorded['/camera/points']]   # byte for byte
    assert answers == [bytes(m.data) for m in recorded['/leo/response']]
    # recorded timing: the clouds came 0.1 s apart, and so they are played
    span = (recorded['/camera/points'][-1].log_time -
            recorded['/camera/points'][0].log_time) * 1e-9
    assert arrivals[-1] - arrivals[0] == pytest.approx(span, rel=0.15, abs=0.1)
    # /clock carries the bag's time, never backwards, inside the recording
    from rclpy.serialization import deserialize_message
    from rosgraph_msgs.msg import Clock
    times = [deserialize_message(c, Clock).clock for c in clocks]
    times = [t.sec * 1_000_000_000 + t.nanosec for t in times]
    assert len(times) > 50 and times == sorted(times)
    assert summary.start_ns <= times[0] and times[-1] <= summary.end_ns
    last = replay.output.splitlines()[-1]
    assert 'skipped=0' in last and 'realtime_factor=' in last, replay.output


def test_replay_remaps_selects_topics_and_changes_rate(spawn, spun_node, tmp_path):
    from leo_ros.nodes.ping_publisher import synthetic_cloud
    from leo_ros.ros.conversions import xyz_rgb_to_pointcloud2
    from rclpy.serialization import serialize_message
    from std_msgs.msg import String
    out = tmp_path / 'made.mcap'
    with BagWriter(out) as writer:
        writer.add_topic('/camera/points', 'sensor_msgs/msg/PointCloud2',
                         [QosProfile(reliability='best_effort')])
        writer.add_topic('/leo/response', 'std_msgs/msg/String')
        cloud = serialize_message(xyz_rgb_to_pointcloud2(*synthetic_cloud(64, 48)))
        for k in range(11):
            writer.write('/camera/points', cloud, k * 200_000_000)
            writer.write('/leo/response', serialize_message(String(data=str(k))),
                         k * 200_000_000 + 1)
    inbox = Inbox(spun_node, ['/kinect/points', '/camera/points', '/leo/response'])
    replay = spawn([BIN / 'leo-replay', out, '--quiet', '--rate', '2', '--start', '1',
                    '--topics', '/camera/points', '--remap', '/camera/points:=/kinect/points',
                    '--wait-for-subscribers'], name='leo-replay')
    assert wait_until(lambda: replay.poll() is not None, timeout=90.0), 'leo-replay hung'
    assert replay.poll() == 0, replay.output
    wait_until(lambda: inbox.count('/kinect/points') >= 6, 2.0)
    with inbox.lock:
        arrivals = [t for t, _ in inbox.items['/kinect/points']]
    assert len(arrivals) == 6                      # 1.0 s .. 2.0 s of the bag
    assert inbox.count('/camera/points') == 0 and inbox.count('/leo/response') == 0
    assert arrivals[-1] - arrivals[0] == pytest.approx(0.5, abs=0.15)    # 1 s at rate 2


def test_bad_bags_play_what_they_can(spawn, spun_node, tmp_path):
    from rclpy.serialization import serialize_message
    from std_msgs.msg import String
    out = tmp_path / 'odd.mcap'
    with BagWriter(out, chunk_size=1024) as writer:
        writer.add_topic('/leo/response', 'std_msgs/msg/String')
        writer.add_topic('/odd', 'nobody_msgs/msg/Odd')
        for k in range(200):
            writer.write('/leo/response', serialize_message(String(data='x' * 50 + str(k))),
                         k * 5_000_000)
            writer.write('/odd', b'\x00\x01\x00\x00abcd', k * 5_000_000 + 1)
    data = out.read_bytes()
    cut = tmp_path / 'cut.mcap'
    cut.write_bytes(data[:len(data) * 2 // 3])
    inbox = Inbox(spun_node, ['/leo/response'])
    replay = spawn([BIN / 'leo-replay', cut, '--quiet', '--wait-for-subscribers'],
                   name='leo-replay')
    assert wait_until(lambda: replay.poll() is not None, timeout=90.0), 'leo-replay hung'
    assert replay.poll() == 0, replay.output
    wait_until(lambda: inbox.count('/leo/response') >= 100, 2.0)
    output = replay.output
    played = inbox.count('/leo/response')
    assert 100 <= played < 200, output
    assert 'nobody_msgs/msg/Odd' in output and 'ends early' in output, output
    last = output.splitlines()[-1]
    assert f'published={played}' in last and 'skipped=0' not in last, output

    junk = tmp_path / 'junk.mcap'
    junk.write_bytes(b'this is not a bag')
    bad = spawn([BIN / 'leo-replay', junk, '--quiet'], name='leo-replay-junk')
    assert wait_until(lambda: bad.poll() is not None, timeout=30.0)
    assert bad.poll() == 2 and 'not an MCAP file' in bad.output, bad.output


def test_loop_keeps_the_clock_running_forward(spawn, spun_node, tmp_path):
    from rclpy.serialization import deserialize_message, serialize_message
    from rosgraph_msgs.msg import Clock
    from std_msgs.msg import String
    out = tmp_path / 'short.mcap'
    with BagWriter(out) as writer:
        writer.add_topic('/leo/response', 'std_msgs/msg/String')
        for k in range(5):                               # 0.4 s of bag
            writer.write('/leo/response', serialize_message(String(data=str(k))),
                         5_000_000_000 + k * 100_000_000)
    inbox = Inbox(spun_node, ['/leo/response', '/clock'])
    replay = spawn([BIN / 'leo-replay', out, '--loop', '--quiet', '--wait-for-subscribers'],
                   name='leo-replay')
    assert wait_until(lambda: inbox.count('/leo/response') >= 15, timeout=60.0), replay.output
    assert replay.stop() == 0
    with inbox.lock:
        clocks = [deserialize_message(d, Clock).clock for _, d in inbox.items['/clock']]
    times = [t.sec * 1_000_000_000 + t.nanosec for t in clocks]
    assert times == sorted(times) and times[-1] - times[0] > 1_000_000_000   # > 2 passes
    assert 'published=' in replay.output.splitlines()[-1], replay.output
