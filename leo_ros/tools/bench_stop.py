"""
leo-bench stop: /leo/stop -> the last motion message, with Nav2 and a gripper in the loop.

Starts, each in its own process on a private ROS domain: policy_node (with the scripted model of
leo_ros.tools.stand_ins, so that every trial moves the same way), a NavigateToPose server that
drives a virtual base (publishing cmd_vel as Nav2's controller does) and a GripperCommand
server. Trials alternate: a navigation task (``leo/execute``, the base driving under Nav2) and
an end-effector step (a TwistStamped stream on ``leo/ee_twist`` and a gripper goal). Each trial
calls ``/leo/stop`` while the robot moves and records when the last message arrives on any
motion topic (cmd_vel from any publisher, goal_pose, leo/manipulator_command, leo/ee_twist,
the grasp poses) and when the servers report the cancel; the stop time is the later of the two.
Target: p95 <= 100 ms over 20 stops.
"""

import argparse
import statistics
import sys
import time

import numpy as np


def _trial(robot, kind, turn, settle):
    """
    Run one moving trial, call /leo/stop; return (stop ms, what was last) or None.

    :param turn: the trial's number among those of its kind; targets alternate with it
    """
    from leo_ros.action import ExecuteInstruction
    from leo_ros.ros.process import wait_until
    from rclpy.action import ActionClient
    from std_srvs.srv import Trigger
    since = time.monotonic()
    if kind == 'nav':
        client = ActionClient(robot.node, ExecuteInstruction, 'leo/execute')
        client.wait_for_server(timeout_sec=10.0)
        target = 'go to the chair' if turn % 2 == 0 else 'go to the mug'
        client.send_goal_async(ExecuteInstruction.Goal(instruction=target))
        moving = wait_until(lambda: any(m.linear.x for m in robot.messages('cmd_vel', since)),
                            timeout=10.0, period=0.002)
    else:
        client = None
        instruction = 'grab it' if turn % 2 == 0 else 'release'
        reply = robot.instruct.call(instruction, timeout=20.0, spin=False)
        moving = reply.success and wait_until(
            lambda: robot.messages('leo/ee_twist', since), timeout=5.0, period=0.002)
    if not moving:
        return None
    time.sleep(0.2)                                   # mid-motion
    start = time.monotonic()
    robot.call(Trigger, 'leo/stop', Trigger.Request())
    time.sleep(settle)                                # anything still coming arrives by then
    last, what = start, 'nothing'
    for topic in robot.received:
        for at, message in robot.received_since(topic, start):
            if at > last:
                last, what = at, topic if topic != 'leo_stand_in/events' else message.data
    if client is not None:
        client.destroy()
    return (last - start) * 1e3, what


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='leo-bench stop', description=__doc__)
    parser.add_argument('--stops', type=int, default=20)
    parser.add_argument('--settle', type=float, default=1.0,
                        help='seconds to wait after each stop for late messages')
    args = parser.parse_args(argv)

    from leo_ros.ros.env import private_domain
    from leo_ros.ros.harness import spun_node
    from leo_ros.ros.process import ManagedProcess
    from leo_ros.tools.stand_ins import MotionWatcher
    env = private_domain()
    peers = [ManagedProcess([sys.executable, '-m', 'leo_ros.tools.stand_ins', kind,
                             '--ros-args', *extra], env=env, name=kind)
             for kind, extra in (('nav2', ['-p', 'speed:=0.5']), ('gripper', []),
                                 ('policy', ['-p', 'navigation:=nav2',
                                             '-p', 'ee_twist_duration:=2.0']))]
    stops, failed = [], 0
    try:
        with spun_node('leo_bench_stop', num_threads=1) as node:
            robot = MotionWatcher(node)
            try:
                robot.publish_scene(centers=((3.0, 0.0, 0.4), (-1.0, 0.0, 0.4)),
                                    labels=('chair', 'mug'))
                robot.activate()
                robot.ready()
                for index in range(args.stops):
                    kind = 'nav' if index % 2 == 0 else 'arm'
                    result = _trial(robot, kind, index // 2, args.settle)
                    if result is None:
                        failed += 1
                        continue
                    stops.append(result[0])
                    print(f'stop {index + 1:2d} ({kind}): {result[0]:6.1f} ms, last: '
                          f'{result[1]}', flush=True)
            finally:
                robot.close()
    finally:
        for peer in peers:
            peer.stop()
    if not stops:
        print('no stop measured', file=sys.stderr)
        return 1
    p50, p95 = statistics.median(stops), float(np.percentile(stops, 95))
    print(f'{len(stops)} stops measured ({failed} trials did not start moving)')
    print(f'/leo/stop -> last motion message: p50 {p50:.1f} ms, p95 {p95:.1f} ms, '
          f'max {max(stops):.1f} ms (target p95 <= 100 ms)')
    print(f'stop_ms_p50={p50:.1f} stop_ms_p95={p95:.1f} stop_ms_max={max(stops):.1f} '
          f'stops={len(stops)}')
    return 0 if p95 <= 100.0 else 1


if __name__ == '__main__':
    sys.exit(main())
