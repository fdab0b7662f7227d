"""
leo-bench conversions: time the message conversions on 640x480 frames.

PointCloud2 -> numpy (xyz + packed rgb), numpy -> PointCloud2, depth Image + CameraInfo ->
organized cloud, and a serialise/deserialise round trip through rclpy for scale.
"""

import argparse
import time

import numpy as np
from tqdm import tqdm


def _median_ms(function, repeats):
    times = []
    for _ in tqdm(range(repeats), desc=function.__name__, leave=False):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times)), float(np.percentile(times, 90))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='leo-bench conversions', description=__doc__)
    parser.add_argument('--repeats', type=int, default=50)
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    args = parser.parse_args(argv)

    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import CameraInfo, PointCloud2

    from leo_ros.nodes.ping_publisher import synthetic_cloud
    from leo_ros.ros import conversions as conv

    xyz, rgb = synthetic_cloud(args.width, args.height)
    cloud = conv.xyz_rgb_to_pointcloud2(xyz, rgb, frame_id='camera_optical_frame')
    depth = conv.array_to_image((np.nan_to_num(xyz[..., 2]) * 1000).astype(np.uint16), '16UC1')
    info = CameraInfo(width=args.width, height=args.height)
    info.k = [525.0, 0.0, args.width / 2 - 0.5, 0.0, 525.0, args.height / 2 - 0.5, 0, 0, 1]
    wire = serialize_message(cloud)

    def pointcloud2_to_numpy():
        conv.pointcloud2_to_xyz_rgb(cloud)

    def numpy_to_pointcloud2():
        conv.xyz_rgb_to_pointcloud2(xyz, rgb)

    def depth_to_cloud():
        conv.depth_image_to_points(depth, info)

    def rclpy_deserialize():
        deserialize_message(wire, PointCloud2)

    rows = {f.__name__: _median_ms(f, args.repeats) for f in
            (pointcloud2_to_numpy, numpy_to_pointcloud2, depth_to_cloud, rclpy_deserialize)}
    print(f'{args.width}x{args.height}, {len(cloud.data) / 1e6:.1f} MB cloud, '
          f'{args.repeats} repeats')
    print(f'{"conversion":24s} {"median ms":>10s} {"p90 ms":>8s}')
    for name, (median, p90) in rows.items():
        print(f'{name:24s} {median:10.2f} {p90:8.2f}')
    print(f'to_numpy_ms_median={rows["pointcloud2_to_numpy"][0]:.2f} '
          f'from_numpy_ms_median={rows["numpy_to_pointcloud2"][0]:.2f} '
          f'depth_ms_median={rows["depth_to_cloud"][0]:.2f}')
    return 0
