"""
leo-bench soak: does any node's memory grow with use? The RSS slope of each node.

Two soaks, each on a private ROS domain, with the nodes as separate processes:

- instructions: sim_node and policy_node (leo_ros.ros.harness, the world's scene fed to the
  policy) receive ``--instructions`` unique instructions, one at a time, through
  ``/leo/instruct`` (questions, and every fifth a navigation instruction with dry_run, so
  nothing moves). The policy node's RSS is sampled every ``--sample-every`` instructions.
- clouds: perception_node segments a 640x480 PointCloud2 stream at ``--cloud-rate`` Hz
  (ping_publisher: a plane with a box) for ``--cloud-minutes`` minutes; its RSS is sampled
  every few seconds.

The slope is a least-squares line through the samples after the first ``--warmup`` share
(allocators and caches fill first), reported as KB per 1,000 instructions and MB per hour of
clouds, for the node under load and for sim_node beside it. Flat within noise is the target;
the issue measured 34 MB per 1,000 new wordings before the instruction cache was bounded.
"""

import argparse
import random
import sys
import time

import numpy as np
from tqdm import tqdm


def rss_kb(pid) -> float:
    """Return the resident set size of process ``pid`` [KB] (Linux /proc)."""
    with open(f'/proc/{pid}/status') as status:
        for line in status:
            if line.startswith('VmRSS:'):
                return float(line.split()[1])
    raise RuntimeError(f'no VmRSS for process {pid}')


def after_warmup(samples, warmup):
    """Return (min, max) RSS [MB] of the samples [(x, KB)] after the warm-up share."""
    xs = np.asarray([x for x, _ in samples], np.float64)
    ys = np.asarray([y for _, y in samples], np.float64) / 1024
    keep = xs >= xs.min() + warmup * (xs.max() - xs.min())
    return float(ys[keep].min()), float(ys[keep].max())


def slope(xs, ys, warmup=0.2):
    """Return the least-squares slope of ys over xs, after dropping the first ``warmup``."""
    xs, ys = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
    keep = xs >= xs.min() + warmup * (xs.max() - xs.min())
    if keep.sum() < 3 or np.ptp(xs[keep]) == 0:
        return float('nan')
    return float(np.polyfit(xs[keep], ys[keep], 1)[0])


def unique_instructions(count, seed=0):
    """Return ``count`` distinct instructions (questions; every fifth a navigation)."""
    from leo_ros.sim.scene import CATEGORIES, COLORS
    rng = random.Random(seed)
    colors, found = list(COLORS), []
    forms = ('How many {c}s are there near mark {n}?', 'What color is the {k} {c} number {n}?',
             'Is there a {k} {c} in room {n}?', 'Describe the {k} {c} seen at step {n}.')
    for n in range(count):
        c, k = rng.choice(CATEGORIES), rng.choice(colors)
        if n % 5 == 4:
            found.append((f'Go to the {k} {c}, attempt {n}.', True))
        else:
            found.append((rng.choice(forms).format(c=c, k=k, n=n), False))
    return found


def _save(path, samples):
    """Write the RSS samples {node: [(x, KB)]} as JSON (for plots and second looks)."""
    import json
    path.write_text(json.dumps(samples))


def soak_instructions(args, env, node, log_dir):
    """Run the instruction soak; return {node: KB per 1000 instructions} and the counts."""
    from leo_ros.ros.agent_client import AgentClient
    from leo_ros.ros.harness import AgentHarness
    harness = AgentHarness(node, env=env, model_path=args.model_path, log_dir=log_dir)
    client = AgentClient(node)
    samples = {'policy_node': [], 'sim_node': []}
    done, errors = [], 0
    try:
        harness.reset_world(client, args.seed)
        problem = harness.start()
        if problem:
            raise RuntimeError(problem)
        pids = {'policy_node': harness.policy.process.pid, 'sim_node': harness.sim.process.pid}
        for n, (text, dry) in enumerate(tqdm(unique_instructions(args.instructions),
                                             desc='instructions')):
            reply = client.instruct.call(text, timeout=120.0, dry_run=dry, spin=False)
            errors += bool(reply.error) and 'refused' not in reply.error
            done.append(n)
            if n % args.sample_every == 0 or n == args.instructions - 1:
                for name, pid in pids.items():
                    samples[name].append((n + 1, rss_kb(pid)))
    finally:
        harness.stop()
    _save(log_dir / 'rss_instructions.json', samples)
    slopes = {name: 1000.0 * slope([x for x, _ in s], [y for _, y in s], args.warmup)
              for name, s in samples.items()}
    first_last = {name: (s[0][1] / 1024, s[-1][1] / 1024, *after_warmup(s, args.warmup))
                  for name, s in samples.items() if s}
    return slopes, first_last, len(done), errors


def soak_clouds(args, env, node, log_dir):
    """Run the cloud soak; return {node: MB per hour} and first/last RSS [MB]."""
    from leo_ros.ros.lifecycle_client import change_node_state
    from leo_ros.ros.process import ManagedProcess
    perception = ManagedProcess(
        [sys.executable, '-m', 'leo_ros.nodes.perception_node', '--ros-args', '-p',
         'classifier_path:=none', '-p', 'publish_debug_cloud:=false'],
        name='perception_node', env=env, log_path=log_dir / 'perception_node.log')
    publisher = ManagedProcess(
        [sys.executable, '-m', 'leo_ros.nodes.ping_publisher', '--rate', str(args.cloud_rate),
         '--width', str(args.width), '--height', str(args.height)],
        name='cloud_publisher', env=env, log_path=log_dir / 'cloud_publisher.log')
    samples = {'perception_node': [], 'cloud_publisher': []}
    try:
        for transition in ('configure', 'activate'):
            if not change_node_state(node, 'perception_node', transition,
                                     args.startup_timeout)[0]:
                raise RuntimeError(f'perception_node did not {transition}:\n'
                                   f'{perception.output[-2000:]}')
        pids = {'perception_node': perception.process.pid,
                'cloud_publisher': publisher.process.pid}
        start = time.monotonic()
        end = start + 60.0 * args.cloud_minutes
        with tqdm(total=int(60 * args.cloud_minutes), desc='clouds', unit='s') as bar:
            while time.monotonic() < end:
                hours = (time.monotonic() - start) / 3600.0
                for name, pid in pids.items():
                    samples[name].append((hours, rss_kb(pid)))
                time.sleep(min(args.cloud_sample_s, max(0.0, end - time.monotonic())))
                bar.n = int(time.monotonic() - start)
                bar.refresh()
            if perception.poll() is not None:
                raise RuntimeError(f'perception_node died:\n{perception.output[-2000:]}')
    finally:
        publisher.stop()
        perception.stop()
    _save(log_dir / 'rss_clouds.json', samples)
    slopes = {name: slope([x for x, _ in s], [y / 1024 for _, y in s], args.warmup)
              for name, s in samples.items()}
    first_last = {name: (s[0][1] / 1024, s[-1][1] / 1024, *after_warmup(s, args.warmup))
                  for name, s in samples.items() if s}
    return slopes, first_last


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='leo-bench soak', description=__doc__)
    parser.add_argument('--instructions', type=int, default=20000,
                        help='unique instructions (0: skip this soak)')
    parser.add_argument('--sample-every', type=int, default=100)
    parser.add_argument('--cloud-minutes', type=float, default=30.0,
                        help='minutes of clouds (0: skip this soak)')
    parser.add_argument('--cloud-rate', type=float, default=30.0)
    parser.add_argument('--cloud-sample-s', type=float, default=5.0)
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--warmup', type=float, default=0.2,
                        help='share of each soak left out of the slope')
    parser.add_argument('--model-path', default='',
                        help="policy directory ('' the shipped model; 'pointing' the "
                        'checkpoint-free PointingPolicy of leo_ros.ros.harness)')
    parser.add_argument('--seed', type=int, default=900001)
    parser.add_argument('--startup-timeout', type=float, default=240.0)
    parser.add_argument('--log-dir', default='out/bench-soak')
    args = parser.parse_args(argv)

    from pathlib import Path
    from leo_ros.ros.env import private_domain
    from leo_ros.ros.harness import spun_node
    env = private_domain()
    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    pairs = {}
    try:
        with spun_node('leo_bench_soak') as node:
            if args.instructions > 0:
                slopes, rss, count, errors = soak_instructions(args, env, node, log_dir)
                print(f'instruction soak: {count} unique instructions ({errors} errors)')
                for name, value in slopes.items():
                    print(f'  {name:16s} {value:9.1f} KB per 1000 instructions   RSS '
                          f'{rss[name][0]:.0f} -> {rss[name][1]:.0f} MB (after the warm-up '
                          f'{rss[name][2]:.0f}..{rss[name][3]:.0f} MB)')
                    pairs[f'{name}_kb_per_1000_instructions'] = f'{value:.1f}'
                pairs['instructions'] = str(count)
            if args.cloud_minutes > 0:
                slopes, rss = soak_clouds(args, env, node, log_dir)
                print(f'cloud soak: {args.cloud_minutes:g} min of {args.width}x{args.height} '
                      f'clouds at {args.cloud_rate:g} Hz')
                for name, value in slopes.items():
                    print(f'  {name:16s} {value:9.1f} MB per hour   RSS {rss[name][0]:.0f} -> '
                          f'{rss[name][1]:.0f} MB (after the warm-up {rss[name][2]:.0f}..'
                          f'{rss[name][3]:.0f} MB)')
                    pairs[f'{name}_mb_per_hour'] = f'{value:.1f}'
                pairs['cloud_minutes'] = f'{args.cloud_minutes:g}'
    except RuntimeError as error:
        print(f'soak failed: {error}', file=sys.stderr)
        return 1
    print(' '.join(f'{k}={v}' for k, v in pairs.items()))
    return 0
