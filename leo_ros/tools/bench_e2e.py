"""
leo-bench e2e: instruction in -> first command out, with the world and the agent running.

Starts ``leo-agent --sim`` (sim_node, perception_node, policy_node in separate processes) on
a private ROS domain, then for each trial resets the world to a navigation task, waits for a
fresh scene, calls ``/leo/instruct`` and times the first command on ``goal_pose``, ``cmd_vel``
or ``leo/manipulator_command``. Then it sets the robot moving and times ``/leo/stop`` until a
zero velocity command is out (``stop_ms``) and until odometry shows the base still
(``halted_ms``).
"""

import argparse
import os
import random
import statistics
import sys
import threading
import time

import numpy as np
from tqdm import tqdm


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='leo-bench e2e', description=__doc__)
    parser.add_argument('--trials', type=int, default=20)
    parser.add_argument('--seed', type=int, default=900001, help='scene seed (test split)')
    parser.add_argument('--model-path', default='')
    parser.add_argument('--startup-timeout', type=float, default=240.0)
    args = parser.parse_args(argv)

    from leo_ros.ros.env import apply_ros_environment
    from leo_ros.ros.process import ManagedProcess, wait_until
    domain = os.environ.get('ROS_DOMAIN_ID') or str(random.Random().randint(120, 200))
    env = {'ROS_DOMAIN_ID': domain, 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
    os.environ.update(env)
    apply_ros_environment()
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from std_srvs.srv import Trigger
    from leo_ros.ros.agent_client import AgentClient
    from leo_ros.ros.commands import twist

    agent = ManagedProcess([sys.executable, '-m', 'leo_ros.tools.agent', '--sim', '--model-path',
                            args.model_path], env=env, name='leo-agent')
    rclpy.init()
    node = rclpy.create_node('leo_bench_e2e')
    client = AgentClient(node)
    executor = MultiThreadedExecutor(num_threads=3)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    first_ms, stop_ms, halted_ms, failures = [], [], [], 0
    try:
        print(f'started leo-agent --sim on ROS_DOMAIN_ID={domain}; waiting for the model')
        ready = wait_until(lambda: client.instruct.wait(0.5) and client.scene_at is not None,
                           timeout=args.startup_timeout, period=0.5)
        if not ready or agent.poll() is not None:
            print(f'agent did not come up:\n{agent.output[-3000:]}', file=sys.stderr)
            return 1
        # The service exists before the model is loaded: wait until it answers for real.
        wait_until(lambda: 'model not ready' not in client.instruct.call(
            'hello', timeout=30.0, spin=False).error, timeout=args.startup_timeout, period=1.0)
        for trial in tqdm(range(args.trials), desc='e2e'):
            try:
                reply = client.reset_world(args.seed + trial % 5, 'nav', trial)
            except TimeoutError:
                failures += 1
                continue
            if not reply.success:
                failures += 1
                continue
            time.sleep(0.3)
            with client.lock:
                client.first_command = None
            start = time.perf_counter()
            answer = client.instruct.call(reply.instruction, timeout=30.0, spin=False)
            wait_until(lambda: client.first_command is not None, timeout=5.0, period=0.001)
            with client.lock:
                first = client.first_command
            if not answer.success or first is None:
                failures += 1
                continue
            first_ms.append((first - start) * 1e3)
            # Stop: the robot is moving (its goal above, or a velocity), then /leo/stop.
            client.cmd_vel.publish(twist(0.3, 0.0))
            wait_until(lambda: (client.speed or 0) > 0.05, timeout=2.0, period=0.01)
            with client.lock:
                client.zero_twist_at = client.still_at = None
            start = time.perf_counter()
            client.call(client.stop, Trigger.Request())
            wait_until(lambda: client.zero_twist_at is not None, timeout=2.0, period=0.001)
            wait_until(lambda: client.still_at is not None, timeout=3.0, period=0.001)
            with client.lock:
                if client.zero_twist_at is not None:
                    stop_ms.append((client.zero_twist_at - start) * 1e3)
                if client.still_at is not None:
                    halted_ms.append((client.still_at - start) * 1e3)
    finally:
        executor.shutdown()
        spinner.join(timeout=5)
        node.destroy_node()
        rclpy.try_shutdown()
        agent.stop()

    def stats(values):
        if not values:
            return float('nan'), float('nan')
        return statistics.median(values), float(np.percentile(values, 90))

    rows = {'instruction -> first command': stats(first_ms), '/leo/stop -> zero cmd_vel':
            stats(stop_ms), '/leo/stop -> odometry still': stats(halted_ms)}
    print(f'{len(first_ms)} of {args.trials} trials measured ({failures} failed)')
    for name, (p50, p90) in rows.items():
        print(f'{name:32s} p50 {p50:8.1f} ms   p90 {p90:8.1f} ms')
    print(f'first_command_ms_p50={rows["instruction -> first command"][0]:.1f} '
          f'first_command_ms_p90={rows["instruction -> first command"][1]:.1f} '
          f'stop_ms_p50={rows["/leo/stop -> zero cmd_vel"][0]:.1f} '
          f'halted_ms_p50={rows["/leo/stop -> odometry still"][0]:.1f} trials={len(first_ms)}')
    return 0 if first_ms else 1
