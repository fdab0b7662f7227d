"""
ping_publisher: publishes a synthetic 640x480 coloured PointCloud2 at a fixed rate.

Part of ``leo-ping``, the loopback check of the DDS set-up (large best-effort messages across
processes). It waits for subscribers, publishes ``count`` frames (0: forever), then exits.
"""

import argparse
import sys
import time

import numpy as np


def synthetic_cloud(width, height, seed=0):
    """Return a (H, W, 3) cloud of a tilted plane with a box on it, and its colours."""
    rng = np.random.default_rng(seed)
    u, v = np.meshgrid(np.linspace(-1, 1, width, dtype=np.float32),
                       np.linspace(-0.75, 0.75, height, dtype=np.float32))
    depth = 1.5 + 0.3 * v
    box = (np.abs(u) < 0.2) & (np.abs(v) < 0.2)
    depth[box] -= 0.25
    xyz = np.stack([u * depth, v * depth, depth], axis=-1)           # (H, W, 3)
    rgb = np.where(box[..., None], [0.9, 0.2, 0.1], [0.6, 0.6, 0.6]).astype(np.float32)
    rgb += rng.normal(0, 0.02, rgb.shape).astype(np.float32)
    xyz[0, :10] = np.nan                                               # a few invalid points
    return xyz, np.clip(rgb, 0, 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--rate', type=float, default=30.0, help='frames per second')
    parser.add_argument('--count', type=int, default=0, help='frames to send (0: forever)')
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--topic', default='camera/points')
    parser.add_argument('--wait-for-subscribers', type=int, default=1,
                        help='start only when this many subscribers are matched')
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    from leo_ros.ros.env import apply_ros_environment
    apply_ros_environment()
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import PointCloud2

    from leo_ros.ros.conversions import xyz_rgb_to_pointcloud2

    rclpy.init()
    node = rclpy.create_node('leo_ping_publisher')
    publisher = node.create_publisher(PointCloud2, args.topic, qos_profile_sensor_data)
    msg = xyz_rgb_to_pointcloud2(*synthetic_cloud(args.width, args.height),
                                 frame_id='camera_optical_frame')
    try:
        deadline = time.monotonic() + 30.0
        while publisher.get_subscription_count() < args.wait_for_subscribers:
            if time.monotonic() > deadline:
                node.get_logger().error('no subscriber matched in 30 s')
                return 1
            time.sleep(0.05)
        time.sleep(0.5)  # let the reader's side of discovery settle too
        period, sent, start = 1.0 / args.rate, 0, time.monotonic()
        while args.count == 0 or sent < args.count:
            msg.header.stamp = node.get_clock().now().to_msg()
            publisher.publish(msg)
            sent += 1
            time.sleep(max(0.0, start + sent * period - time.monotonic()))
        node.get_logger().info(f'sent {sent} clouds of {len(msg.data)} bytes')
        time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
