"""
leo-demo: the main job of ``make demo``.

Starts the built-in world and the agent (``leo-agent --sim``: sim_node, perception_node and
policy_node, each its own process), then for every task family draws tasks in a test-split
scene, sends each instruction through the real ``/leo/instruct`` service, waits for the robot,
asks the world whether the task succeeded, prints instruction, answer or action, and success,
and saves a top-down PNG of what happened in ``--out``.
"""

import argparse
import json
from pathlib import Path
import sys
import time

FAMILIES = ('nav', 'pick_place', 'qa', 'object_caption', 'scene_caption', 'plan')
#: how long the world may take to carry out a family's action before we ask [s]
SETTLE = {'nav': 45.0, 'pick_place': 15.0}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='leo-demo', description=__doc__.split('\n')[1])
    parser.add_argument('--seed', type=int, default=None,
                        help='scene seed (default: the first test-split scene)')
    parser.add_argument('--per-family', type=int, default=2, help='tasks per family')
    parser.add_argument('--families', default=','.join(FAMILIES))
    parser.add_argument('--model-path', default='')
    parser.add_argument('--out', default='out/demo', help='folder for PNGs and the log')
    parser.add_argument('--startup-timeout', type=float, default=300.0)
    parser.add_argument('--no-look-around', dest='look_around', action='store_false',
                        help='do not turn the robot once before each task (the scene memory '
                        'then holds only what the first view shows)')
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    families = [f for f in args.families.split(',') if f]
    unknown = set(families) - set(FAMILIES)
    if unknown:
        parser.error(f'unknown families {sorted(unknown)}; choose from {FAMILIES}')
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.seed is None:
        from leo_ros.data.shards import split_seeds
        args.seed = split_seeds('test', 1)[0]

    from leo_ros.ros.env import private_domain
    from leo_ros.ros.harness import spun_node
    from leo_ros.ros.process import ManagedProcess, wait_until
    env = private_domain()
    from leo_ros.srv import SaveTopdown

    from leo_ros.ros.agent_client import AgentClient

    print(f'leo-demo: starting the world and the agent (ROS_DOMAIN_ID={env["ROS_DOMAIN_ID"]}, '
          f'scene seed {args.seed}); logs in {out / "agent.log"}', flush=True)
    agent = ManagedProcess([sys.executable, '-m', 'leo_ros.tools.agent', '--sim', '--model-path',
                            args.model_path], env=env, name='leo-agent',
                           log_path=out / 'agent.log')
    results = []
    try:
        with spun_node('leo_demo') as node:
            client = AgentClient(node)
            topdown = node.create_client(SaveTopdown, 'sim/save_topdown')
            came_up = wait_until(lambda: client.instruct.wait(0.5) and client.scene_at is not None,
                                 timeout=args.startup_timeout, period=0.5)
            if not came_up or agent.poll() is not None:
                print(f'leo-demo: the agent did not come up:\n{agent.output[-3000:]}',
                      file=sys.stderr)
                return 1
            wait_until(lambda: 'model not ready' not in client.instruct.call(
                'hello', timeout=30.0, spin=False).error, timeout=args.startup_timeout, period=1.0)
            print('leo-demo: agent ready\n', flush=True)
            for family in families:
                for index in range(args.per_family):
                    results.append(_run_task(client, topdown, family, args.seed, index, out,
                                             args.look_around))
    finally:
        agent.stop()
    (out / 'results.json').write_text(json.dumps(results, indent=2))
    done = sum(r['success'] for r in results)
    print(f'\nleo-demo: {done} of {len(results)} tasks succeeded; pictures and results.json '
          f'in {out}')
    for family in families:
        rows = [r for r in results if r['family'] == family]
        print(f'  {family:15s} {sum(r["success"] for r in rows)}/{len(rows)}')
    return 0 if results else 1


def _run_task(client, topdown, family, seed, index, out, look_around):
    """Reset the world to one task, instruct the agent, wait, check, draw; return a record."""
    from leo_ros.srv import SaveTopdown, TaskStatus
    from std_srvs.srv import Trigger
    client.call(client.stop, Trigger.Request())   # end whatever the last task left running
    try:
        reset = client.reset_world(seed, family, index, look_around=look_around)
    except TimeoutError as error:
        print(f'[{family}] reset failed: {error}')
        return {'family': family, 'seed': seed, 'task_seed': index, 'success': False,
                'error': str(error)}
    record = {'family': family, 'seed': seed, 'task_seed': index,
              'instruction': reset.instruction, 'success': False}
    if not reset.success:
        record['error'] = reset.message
        print(f'[{family}] reset failed: {reset.message}')
        return record
    start = time.perf_counter()
    reply = client.instruct.call(reset.instruction, timeout=60.0, spin=False)
    record.update(answer=reply.response, error=reply.error, kind=reply.kind,
                  decision_ms=round((time.perf_counter() - start) * 1e3, 1))
    status = None
    if reply.success:
        answer = reply.response if reply.kind == 'text' else ''
        settle = SETTLE.get(family, 0.0)
        deadline = time.monotonic() + settle

        def check():
            nonlocal status
            status = client.call(client.status, TaskStatus.Request(answer=answer))
            return status.success

        while not check() and time.monotonic() < deadline:
            time.sleep(0.5)
        record['success'] = bool(status.success)
        record['detail'] = status.detail
    picture = out / f'{family}_{index}.png'
    if topdown.wait_for_service(timeout_sec=2.0):
        saved = client.call(topdown, SaveTopdown.Request(path=str(picture)))
        record['picture'] = str(picture) if saved.success else saved.message
    shown = reply.response if reply.success else f'error: {reply.error}'
    print(f'[{family}] "{reset.instruction}"\n    -> [{reply.kind}] {shown}\n'
          f'    success={record["success"]}' +
          (f' ({record.get("detail", "")})' if record.get('detail') else ''), flush=True)
    return record
