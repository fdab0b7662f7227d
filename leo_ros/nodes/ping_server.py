"""
ping_server: answers ``/leo/instruct`` with facts about the newest PointCloud2 it received.

Part of ``leo-ping``, the loopback check of the DDS set-up: a service and a large best-effort
topic, each crossing a process boundary. Instructions it understands: ``points`` (valid points
in the newest cloud), ``frames`` (clouds received), ``stats`` (both).
"""

import sys
import threading

import numpy as np


class PingServer:
    """The node: stores the newest cloud in the callback, answers from it in the service."""

    def __init__(self, node, topic):
        from leo_ros.srv import Instruct
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import PointCloud2
        self.node = node
        self.lock = threading.Lock()
        self.latest = None
        self.frames = 0
        node.create_subscription(PointCloud2, topic, self.on_cloud, qos_profile_sensor_data)
        node.create_service(Instruct, '/leo/instruct', self.on_instruct)

    def on_cloud(self, msg):
        with self.lock:
            self.latest = msg
            self.frames += 1

    def on_instruct(self, request, response):
        from leo_ros.ros.conversions import ConversionError, pointcloud2_to_xyz_rgb
        words = request.instruction.strip().lower()
        response.kind = 'text'
        if not words:
            response.success, response.error = False, 'empty instruction'
            return response
        if words not in ('points', 'frames', 'stats'):
            response.success = False
            response.error = f'unknown instruction {words[:80]!r}; try points, frames or stats'
            return response
        with self.lock:
            latest, frames = self.latest, self.frames
        if latest is None and words != 'frames':
            response.success, response.error = False, 'no cloud received yet'
            return response
        parts = {'frames': f'frames={frames}'}
        if latest is not None:
            try:
                xyz, rgb = pointcloud2_to_xyz_rgb(latest)
            except ConversionError as error:
                response.success, response.error = False, f'bad cloud: {error}'
                return response
            valid = int(np.isfinite(xyz).all(axis=-1).sum())
            parts['points'] = (f'points={valid} of {xyz.shape[0]}x{xyz.shape[1]} '
                               f'colour={"yes" if rgb is not None else "no"}')
        response.success = True
        response.response = (' '.join(parts.values()) if words == 'stats' else parts[words])
        return response


def main(argv=None) -> int:
    from leo_ros.ros.node_runner import run_node
    return run_node('leo_ping_server', lambda node: PingServer(node, 'camera/points'), argv)


if __name__ == '__main__':
    sys.exit(main())
