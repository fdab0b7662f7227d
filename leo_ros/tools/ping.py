"""
leo-ping: check the ROS 2 set-up end to end across processes.

Starts two nodes in two processes, ``ping_publisher`` (640x480 coloured PointCloud2 at 30 Hz,
best effort) and ``ping_server`` (answers ``/leo/instruct`` about the newest cloud), then
subscribes to the clouds itself and calls the service: it reports delivery, latency and the
service's answers. Exit status 0 when delivery loses at most 1% and the service answers.
"""

import argparse
import os
import sys
import threading

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--frames', type=int, default=150, help='clouds to send')
    parser.add_argument('--rate', type=float, default=30.0)
    parser.add_argument('--domain-id', type=int, default=None,
                        help='ROS_DOMAIN_ID (default: from the environment, else 0)')
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    from leo_ros.ros.env import apply_ros_environment
    from leo_ros.ros.process import ManagedProcess, wait_until
    env = {'ROS_DOMAIN_ID': str(args.domain_id)} if args.domain_id is not None else {}
    os.environ.update(env)
    apply_ros_environment()
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import PointCloud2

    from leo_ros.ros.harness import spun_node
    from leo_ros.ros.instruct_client import InstructClient

    # one thread: callbacks timed on arrival
    with spun_node('leo_ping_client', num_threads=1) as node:
        stamps, latencies, lock = set(), [], threading.Lock()

        def on_cloud(msg):
            now = node.get_clock().now().nanoseconds
            sent = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            with lock:
                stamps.add(sent)
                latencies.append((now - sent) / 1e6)

        # Best effort like sensor data, with a reader queue deep enough for a burst of frames.
        node.create_subscription(PointCloud2, 'camera/points', on_cloud, QoSProfile(
            reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST, depth=30))
        python = sys.executable
        server = ManagedProcess([python, '-m', 'leo_ros.nodes.ping_server'], env=env)
        publisher = ManagedProcess([python, '-m', 'leo_ros.nodes.ping_publisher', '--count',
                                    str(args.frames), '--rate', str(args.rate),
                                    '--wait-for-subscribers', '2'], env=env)
        status = 1
        try:
            print(f'started ping_server (pid {server.process.pid}) and ping_publisher '
                  f'(pid {publisher.process.pid}); sending {args.frames} clouds at {args.rate} Hz')
            wait_until(lambda: publisher.poll() is not None,
                       timeout=60 + args.frames / args.rate)
            client = InstructClient(node)
            answers = {}
            for instruction in ('stats', ''):
                reply = client.call(instruction, timeout=10.0, spin=False)
                answers[instruction] = reply
                shown = reply.response if reply.success else f'error: {reply.error}'
                print(f'/leo/instruct {instruction!r:9} -> success={reply.success} {shown}')
            with lock:
                received, median = len(stamps), float(np.median(latencies)) if latencies else 0
            loss = 1.0 - received / args.frames
            print(f'PointCloud2 640x480: received {received}/{args.frames} (loss {loss:.1%}), '
                  f'median latency {median:.1f} ms')
            ok = loss <= 0.01 and answers['stats'].success and not answers[''].success
            status = 0 if ok else 1
            print(f'received={received} sent={args.frames} loss={loss:.4f} '
                  f'latency_ms_median={median:.1f} service_ok={int(answers["stats"].success)}')
        finally:
            publisher.stop()
            server.stop()
    return status


if __name__ == '__main__':
    sys.exit(main())
