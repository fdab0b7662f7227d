"""
leo-bench replay: frames per second through perception from a bag file, beside the live rate.

1. Writes a 640x480 30 Hz bag from the built-in world (cloud, image, depth, camera info,
   camera pose, odometry; the robot turns slowly), as a robot's camera driver would publish.
2. ``bag_read``: reads it back (MB/s, frames/s).
3. ``bag_perception``: bag -> CDR -> numpy -> perception, in one process (frames/s).
4. ``live_perception``: the world renders -> perception, in one process (frames/s), and the
   perception step alone.
5. With ``--ros``: ``leo-agent --use-sim-time`` (perception, policy) and ``leo-replay
   --inputs`` run as processes; the replay's real-time factor and lateness come from its
   summary, and perception's received / processed / dropped frames from ``/diagnostics``.

The last line is ``key=value`` pairs.
"""

import argparse
import os
from pathlib import Path
import random
import sys
import tempfile
import time

import numpy as np
from tqdm import tqdm

INPUT_TOPICS = {'/camera/points': 'sensor_msgs/msg/PointCloud2',
                '/camera/image': 'sensor_msgs/msg/Image',
                '/camera/depth': 'sensor_msgs/msg/Image',
                '/camera/camera_info': 'sensor_msgs/msg/CameraInfo',
                '/camera/pose': 'geometry_msgs/msg/PoseStamped',
                '/odom': 'nav_msgs/msg/Odometry'}
FRAME = 'camera_optical_frame'


def frame_messages(frame, pose, stamp_ns):
    """Return {topic: message} of one rendered frame, as sim_node publishes them."""
    from builtin_interfaces.msg import Time
    from leo_ros.ros.conversions import rendered_frame_messages, yaw_to_quaternion
    from nav_msgs.msg import Odometry
    stamp = Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)
    camera = rendered_frame_messages(frame, FRAME, 'map', stamp)
    odom = Odometry()
    odom.header.frame_id, odom.header.stamp, odom.child_frame_id = 'odom', stamp, 'base_link'
    x, y, yaw = pose
    odom.pose.pose.position.x, odom.pose.pose.position.y = float(x), float(y)
    odom.pose.pose.orientation = yaw_to_quaternion(yaw)
    return {'/camera/points': camera['points'], '/camera/image': camera['image'],
            '/camera/depth': camera['depth'], '/camera/camera_info': camera['camera_info'],
            '/camera/pose': camera['camera_pose'], '/odom': odom}


def write_world_bag(path, seconds, rate, seed, width=640, height=480):
    """
    Render ``seconds`` of the world at ``rate`` Hz into a bag; return (frames, live stats).

    The rendering and perception of each frame are timed too: that is the live rate.
    """
    from leo_ros.bags.mcap_bag import BagWriter, QosProfile
    from leo_ros.perception.pipeline import PerceptionPipeline
    from leo_ros.sim.render import CameraConfig
    from leo_ros.sim.world import World, WorldConfig
    from rclpy.serialization import serialize_message
    world = World(seed, WorldConfig(camera=CameraConfig(width=width, height=height)))
    pipeline = PerceptionPipeline()
    sensor = [QosProfile(reliability='best_effort', depth=5)]
    frames = int(round(seconds * rate))
    start_ns = time.time_ns()
    render_s, perceive_s = [], []
    with BagWriter(path, overwrite=True) as writer:
        for topic, kind in INPUT_TOPICS.items():
            writer.add_topic(topic, kind, sensor if topic.startswith('/camera/') and
                             topic != '/camera/pose' else [QosProfile()])
        for k in tqdm(range(frames), desc='render + write bag', file=sys.stderr):
            world.set_velocity(0.0, 0.3)
            world.step(1.0 / rate)
            began = time.perf_counter()
            frame = world.observe()
            render_s.append(time.perf_counter() - began)
            began = time.perf_counter()
            pipeline.process(frame.points, frame.rgb.astype(np.float32) / 255.0,
                             frame.camera_pose, 'map', k / rate)
            perceive_s.append(time.perf_counter() - began)
            stamp = start_ns + int(k * 1e9 / rate)
            for topic, message in frame_messages(frame, world.robot, stamp).items():
                writer.write(topic, serialize_message(message), stamp)
    live = {'render_ms': 1e3 * float(np.median(render_s)),
            'perceive_ms': 1e3 * float(np.median(perceive_s)),
            'live_fps': 1.0 / float(np.median(np.add(render_s, perceive_s)))}
    return frames, live


def read_rate(path):
    """Return (MB/s, cloud frames/s) of reading the bag alone."""
    from leo_ros.bags.mcap_bag import BagReader
    began, size, clouds = time.perf_counter(), 0, 0
    for message in BagReader(path).messages():
        size += len(message.data)
        clouds += message.topic.topic == '/camera/points'
    elapsed = time.perf_counter() - began
    return size / 1e6 / elapsed, clouds / elapsed


def bag_perception_rate(path):
    """Return (frames/s, median ms) of bag -> numpy -> perception, in this process."""
    from geometry_msgs.msg import PoseStamped
    from leo_ros.bags.mcap_bag import BagReader
    from leo_ros.perception.pipeline import PerceptionPipeline
    from leo_ros.ros.conversions import pointcloud2_to_xyz_rgb, pose_to_matrix
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import PointCloud2
    pipeline, pose, times, frames = PerceptionPipeline(), None, [], 0
    began = time.perf_counter()
    for message in tqdm(BagReader(path).messages(topics=['/camera/points', '/camera/pose']),
                        desc='bag -> perception', file=sys.stderr):
        if message.topic.topic == '/camera/pose':
            pose = pose_to_matrix(deserialize_message(message.data, PoseStamped).pose)
            continue
        start = time.perf_counter()
        cloud = deserialize_message(message.data, PointCloud2)
        xyz, rgb = pointcloud2_to_xyz_rgb(cloud, organized=True)
        pipeline.process(xyz, rgb, pose, 'map', message.log_time * 1e-9)
        times.append(time.perf_counter() - start)
        frames += 1
    elapsed = time.perf_counter() - began
    return frames / elapsed, 1e3 * float(np.median(times))


def perception_active(node) -> bool:
    """Return True once perception_node's lifecycle state is active."""
    from lifecycle_msgs.srv import GetState
    import rclpy
    client = node.create_client(GetState, '/perception_node/get_state')
    try:
        if not client.wait_for_service(timeout_sec=1.0):
            return False
        future = client.call_async(GetState.Request())
        rclpy.spin_until_future_complete(node, future, timeout_sec=2.0)
        return future.done() and future.result().current_state.label == 'active'
    finally:
        node.destroy_client(client)


def ros_replay(path, frames, domain):
    """Replay into leo-agent processes; return the replay's and perception's figures."""
    from leo_ros.ros.process import ManagedProcess, wait_until
    env = {'ROS_DOMAIN_ID': str(domain), 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
    os.environ.update(env)
    from leo_ros.ros.env import apply_ros_environment
    apply_ros_environment()
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    rclpy.init()
    node = rclpy.create_node('leo_bench_replay')
    latest = {}
    node.create_subscription(DiagnosticArray, '/diagnostics', lambda m: latest.update(
        {s.name: {v.key: v.value for v in s.values} for s in m.status}), 10)
    bin_dir = Path(sys.prefix) / 'bin'
    agent = ManagedProcess([bin_dir / 'leo-agent', '--use-sim-time', '--device', 'cpu'],
                           name='leo-agent', env=env)
    perception = 'perception_node: scene tokenizer'
    try:
        if not wait_until(lambda: perception_active(node), 180.0, period=0.5):
            raise RuntimeError('perception_node never became active:\n' + agent.output[-2000:])
        replay = ManagedProcess([bin_dir / 'leo-replay', path, '--inputs', '--quiet'],
                                name='leo-replay', env=env)
        while replay.poll() is None:
            rclpy.spin_once(node, timeout_sec=0.1)
        # The agent runs on /clock, which ends with the bag: keep it going a little so that
        # perception finishes its last frame and reports on /diagnostics.
        from leo_ros.bags.mcap_bag import BagReader
        from rosgraph_msgs.msg import Clock
        clock = node.create_publisher(Clock, '/clock', 10)
        end_ns, began = BagReader(path).summary().end_ns, time.monotonic()
        while time.monotonic() - began < 3.0:
            now = end_ns + int((time.monotonic() - began) * 1e9)
            message = Clock()
            message.clock.sec, message.clock.nanosec = divmod(now, 1_000_000_000)
            clock.publish(message)
            rclpy.spin_once(node, timeout_sec=0.02)
        stats = latest.get(perception, {})
        summary = replay.output.splitlines()[-1]
    finally:
        agent.stop()
        node.destroy_node()
        rclpy.try_shutdown()
    values = dict(item.split('=', 1) for item in summary.split() if '=' in item)
    received = int(stats.get('frames received', 0))
    processed = int(stats.get('frames processed', 0))
    return {'replay_realtime_factor': float(values.get('realtime_factor', 0)),
            'replay_late_p95_ms': float(values.get('late_p95_ms', 0)),
            'clouds_published': frames, 'perception_received': received,
            'perception_processed': processed,
            'transport_lost_pct': 100.0 * (frames - received) / max(frames, 1),
            'perception_skipped_pct': 100.0 * (received - processed) / max(received, 1),
            'perception_ms_mean': float(stats.get('processing ms (mean)', 0) or 0)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='leo-bench replay', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seconds', type=float, default=3.0, help='length of the bag')
    parser.add_argument('--rate', type=float, default=30.0, help='frames per second')
    parser.add_argument('--seed', type=int, default=900001, help='world seed')
    parser.add_argument('--bag', help='keep the bag here (default: a temporary file)')
    parser.add_argument('--ros', action='store_true',
                        help='also replay it into leo-agent processes (drops from /diagnostics)')
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix='leo-bench-replay-') as scratch:
        path = Path(args.bag) if args.bag else Path(scratch) / 'world.mcap'
        frames, live = write_world_bag(path, args.seconds, args.rate, args.seed)
        megabytes = path.stat().st_size / 1e6
        read_mb_s, read_fps = read_rate(path)
        bag_fps, bag_ms = bag_perception_rate(path)
        figures = {'frames': frames, 'bag_mb': megabytes, 'bag_read_mb_s': read_mb_s,
                   'bag_read_fps': read_fps, 'bag_perception_fps': bag_fps,
                   'bag_perception_ms': bag_ms, 'live_perception_fps': live['live_fps'],
                   'live_render_ms': live['render_ms'], 'perception_ms': live['perceive_ms']}
        if args.ros:
            figures.update(ros_replay(path, frames, random.Random(os.getpid()).randint(101, 200)))
    print(f'{frames} frames of 640x480 at {args.rate:g} Hz, {megabytes:.0f} MB bag')
    for key, value in figures.items():
        print(f'  {key:26s} {value:10.2f}' if isinstance(value, float) else
              f'  {key:26s} {value:10d}')
    print(' '.join(f'{k}={v:.2f}' if isinstance(v, float) else f'{k}={v}'
                   for k, v in figures.items()))
    return 0
