"""
leo-bench e2e: instruction in -> first command out, with the world and the agent running.

Starts ``leo-agent --sim`` (sim_node, perception_node, policy_node in separate processes) on
a private ROS domain. For each trial it resets the world to a navigation task on a test-split
scene, clears perception's memory and turns the robot once on the spot, as the agent's users
do (the end-to-end test does the same), so the scene memory covers the room. Then it calls
``/leo/instruct`` and times the first command on ``goal_pose``, ``cmd_vel`` or
``leo/manipulator_command``.

Each trial is scored against the task's named target (the world is rebuilt here from the same
seed, so its objects are known):

- ``success``: the goal lies within ``--goal-tolerance`` of the target's footprint (the gap
  between the goal and the target's box, less the robot radius);
- ``wrong_target``: a goal was sent, but not near the target (the nearest object is named);
- ``decode_failure``: the policy's action tokens could not be decoded;
- ``refused``: the agent refused (grounding gate, safety gate), with its reason;
- ``other``: anything else (a text answer, a step, no command).

Afterwards it sets the robot moving and times ``/leo/stop`` until a zero velocity command is
out (``stop_ms``) and until odometry shows the base still (``halted_ms``).
"""

import argparse
from collections import Counter
import json
import statistics
import sys
import time

import numpy as np
from tqdm import tqdm


def score_goal(world, target_id, goal_xy, tolerance):
    """
    Return (category, detail) of a navigation goal against the task's target.

    :param world: a World rebuilt from the trial's scene seed
    :param goal_xy: (x, y) of the published goal
    """
    from leo_ros.sim.geometry import point_rectangle_distance
    radius = world.config.robot.radius
    gaps = {}
    for obj in world.scene.objects.values():
        gaps[obj.id] = float(point_rectangle_distance(
            np.asarray([goal_xy], np.float64), (obj.x, obj.y), obj.half_extents,
            obj.yaw)[0]) - radius
    target = world.scene.object(target_id)
    gap = max(gaps[target_id], 0.0)
    if gap <= tolerance:
        return 'success', f'{gap:.2f} m from the {target.color} {target.category}'
    nearest = world.scene.object(min(gaps, key=gaps.get))
    return 'wrong_target', (f'{gap:.2f} m from the {target.color} {target.category}; nearest '
                            f'is the {nearest.color} {nearest.category} '
                            f'({max(gaps[nearest.id], 0.0):.2f} m)')


def classify(answer, goal, world, target_id, tolerance):
    """Return (category, detail) of one trial (see the module docstring)."""
    if 'could not decode' in answer.error:
        return 'decode_failure', answer.error[:120]
    if answer.kind == 'refusal' or 'refused' in answer.error:
        return 'refused', (answer.response or answer.error)[:120]
    if answer.success and answer.kind == 'nav_goal' and goal is not None:
        return score_goal(world, target_id, goal, tolerance)
    return 'other', f'{answer.kind}: {(answer.error or answer.response)[:100]}'


def _parse(argv):
    parser = argparse.ArgumentParser(prog='leo-bench e2e', description=__doc__)
    parser.add_argument('--trials', type=int, default=20)
    parser.add_argument('--seed', type=int, default=900001, help='scene seed (test split)')
    parser.add_argument('--scenes', type=int, default=5, help='scenes the trials cycle over')
    parser.add_argument('--model-path', default='')
    parser.add_argument('--goal-tolerance', type=float, default=0.35,
                        help="policy_node's goal_tolerance [m]")
    parser.add_argument('--no-look-around', action='store_true',
                        help='skip the turn on the spot after each reset')
    parser.add_argument('--startup-timeout', type=float, default=240.0)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = _parse(argv)
    from leo_ros.ros.agent_client import AgentClient
    from leo_ros.ros.env import private_domain
    from leo_ros.ros.harness import spun_node
    from leo_ros.ros.process import ManagedProcess, wait_until
    env = private_domain()
    agent = ManagedProcess([sys.executable, '-m', 'leo_ros.tools.agent', '--sim', '--model-path',
                            args.model_path], env=env, name='leo-agent')
    first_ms, stop_ms, halted_ms, outcomes = [], [], [], []
    try:
        with spun_node('leo_bench_e2e') as node:
            client = AgentClient(node)
            goals = _watch_goals(node)
            print(f'started leo-agent --sim on ROS_DOMAIN_ID={env["ROS_DOMAIN_ID"]}; waiting '
                  'for the model')
            ready = wait_until(lambda: client.instruct.wait(0.5) and client.scene_at is not None,
                               timeout=args.startup_timeout, period=0.5)
            if not ready or agent.poll() is not None:
                print(f'agent did not come up:\n{agent.output[-3000:]}', file=sys.stderr)
                return 1
            # The service exists before the model is loaded: wait until it answers for real.
            wait_until(lambda: 'not ready' not in client.instruct.call(
                'hello', timeout=30.0, spin=False).error, timeout=args.startup_timeout,
                period=1.0)
            for trial in tqdm(range(args.trials), desc='e2e'):
                outcome = _trial(args, client, goals, trial, first_ms)
                outcomes.append(outcome)
                if outcome[0] != 'reset_failed':
                    _time_stop(client, stop_ms, halted_ms)
    finally:
        agent.stop()
    return _report(args, outcomes, first_ms, stop_ms, halted_ms)


def _watch_goals(node):
    """Keep the newest goal_pose (x, y) and when it came."""
    from geometry_msgs.msg import PoseStamped
    newest = {'xy': None, 'at': None}

    def on_goal(msg):
        newest['xy'] = (msg.pose.position.x, msg.pose.position.y)
        newest['at'] = time.perf_counter()
    node.create_subscription(PoseStamped, 'goal_pose', on_goal, 10)
    return newest


def _trial(args, client, goals, trial, first_ms):
    """Run one navigation trial; return (category, instruction, detail)."""
    from leo_ros.ros.process import wait_until
    from leo_ros.sim.world import World
    seed = args.seed + trial % args.scenes
    try:
        reply = client.reset_world(seed, 'nav', trial, look_around=not args.no_look_around)
    except TimeoutError as error:
        return 'reset_failed', '', str(error)
    if not reply.success:
        return 'reset_failed', '', reply.message
    task = json.loads(reply.task_json)
    time.sleep(0.3)
    with client.lock:
        client.first_command = None
    goals['xy'] = None
    start = time.perf_counter()
    answer = client.instruct.call(reply.instruction, timeout=60.0, spin=False)
    wait_until(lambda: client.first_command is not None, timeout=5.0, period=0.001)
    wait_until(lambda: goals['xy'] is not None, timeout=1.0 if answer.success else 0.0,
               period=0.001)
    with client.lock:
        first = client.first_command
    if answer.success and first is not None:
        first_ms.append((first - start) * 1e3)
    category, detail = classify(answer, goals['xy'], World(seed), task['target_ids'][0],
                                args.goal_tolerance)
    return category, reply.instruction, detail


def _time_stop(client, stop_ms, halted_ms):
    """Set the robot moving, call /leo/stop, time the zero velocity and the halt."""
    from leo_ros.ros.commands import twist
    from leo_ros.ros.process import wait_until
    from std_srvs.srv import Trigger
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


def _report(args, outcomes, first_ms, stop_ms, halted_ms) -> int:
    def stats(values):
        if not values:
            return float('nan'), float('nan')
        return statistics.median(values), float(np.percentile(values, 90))

    counts = Counter(category for category, _, _ in outcomes)
    for category, instruction, detail in outcomes:
        print(f'{category:15s} {instruction[:60]!r:64s} {detail}')
    rows = {'instruction -> first command': stats(first_ms), '/leo/stop -> zero cmd_vel':
            stats(stop_ms), '/leo/stop -> odometry still': stats(halted_ms)}
    print(f'{args.trials} trials: ' + ', '.join(f'{k} {v}' for k, v in sorted(counts.items())))
    for name, (p50, p90) in rows.items():
        print(f'{name:32s} p50 {p50:8.1f} ms   p90 {p90:8.1f} ms')
    categories = ('success', 'wrong_target', 'decode_failure', 'refused', 'other',
                  'reset_failed')
    print(' '.join(f'{c}={counts.get(c, 0)}' for c in categories) +
          f' trials={args.trials} success_rate={counts.get("success", 0) / args.trials:.2f} '
          f'first_command_ms_p50={rows["instruction -> first command"][0]:.1f} '
          f'first_command_ms_p90={rows["instruction -> first command"][1]:.1f} '
          f'stop_ms_p50={rows["/leo/stop -> zero cmd_vel"][0]:.1f} '
          f'halted_ms_p50={rows["/leo/stop -> odometry still"][0]:.1f}')
    return 0 if outcomes and counts.get('reset_failed', 0) < len(outcomes) else 1
