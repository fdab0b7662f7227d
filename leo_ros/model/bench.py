"""
leo-bench policy: decision time of the policy, first instruction on a scene and later ones.

Per scene of the built-in world (test split): its object tokens and ego-view image, then
navigation and pick-and-place instructions drawn by the data engine. The first decision on a
scene computes the prompt's scene prefix (system text, image, objects); later ones on the same
scene reuse its keys and values. ``--model`` times a trained policy deciding freely; ``--llm``
times an untrained one on that backbone with ``require_action``, so that every decision is one
whole action as a trained one's is. Last line::

    first_ms_p50= later_ms_p50= first_cpu_ms_p50= later_cpu_ms_p50= ...

``cpu_ms`` is the process's CPU time per decision: what it costs on cores of its own when other
programs share the machine.
"""

import argparse
import os
from pathlib import Path
import time

from leo_ros.model.config import DTYPES
import numpy as np


def plot(first, later, path, title):
    """Write a histogram of first and later decision times."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    figure, axis = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(0, max(max(first), max(later)) * 1.05, 30)
    axis.hist(first, bins=bins, alpha=0.6,
              label=f'first on a scene (median {np.median(first):.0f})')
    axis.hist(later, bins=bins, alpha=0.6, label=f'later (median {np.median(later):.0f})')
    axis.set_xlabel('decision time [ms]')
    axis.set_ylabel('decisions')
    axis.set_title(title)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def untrained(source, device, dtype):
    """Return an untrained policy on a backbone (small random object encoder)."""
    from leo_ros.actions.grounded import GroundedTokenizer
    from leo_ros.model.checkpoint import create_policy
    from leo_ros.model.config import LLMConfig, PolicyConfig, SceneConfig
    from leo_ros.model.object_encoder import ObjectEncoder, ObjectEncoderConfig
    encoder = ObjectEncoder(ObjectEncoderConfig())
    config = PolicyConfig(scene=SceneConfig(object_embedding=encoder.config.embedding),
                          llm=LLMConfig(source=source, device=device, dtype=dtype))
    return create_policy(config, encoder, GroundedTokenizer(),
                         texts=['Go to the red mug.', 'Put the mug on the table.'] * 50)


def tasks(scenes, per_scene, seed):
    """Yield (world, [instructions]) of test scenes with action instructions."""
    from leo_ros.data.engine import TaskSampler
    from leo_ros.data.shards import split_seeds
    from leo_ros.sim.world import World
    sampler = TaskSampler()
    rng = np.random.default_rng(seed)
    for scene_seed in split_seeds('test', scenes):
        world = World(scene_seed)
        instructions = []
        for number in range(per_scene * 3):
            family = ('nav', 'pick_place')[number % 2]
            try:
                instructions.append(sampler.sample(world, family, rng).instruction)
            except ValueError:
                continue
            if len(instructions) == per_scene:
                break
        if instructions:
            yield world, instructions


def time_decisions(policy, args) -> tuple:
    """Return first and later (wall ms, cpu ms) lists."""
    from tqdm import tqdm
    points = policy.object_encoder.config.points
    width, height = policy.config.image.render_size
    require = None if args.model else ['nav_goal']
    first, later = [], []
    jobs = list(tasks(args.scenes, args.instructions, args.seed))
    for world, instructions in tqdm(jobs, desc='scenes', leave=False):
        tokens = world.scene_tokens(points)
        image = world.ego_image(width, height)
        for number, instruction in enumerate(instructions):
            wall, cpu = time.perf_counter(), time.process_time()
            policy.act(tokens, image, instruction, world.robot_pose, require_action=require)
            if policy.device.type == 'cuda':
                import torch
                torch.cuda.synchronize()
            times = ((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000)
            (first if number == 0 else later).append(times)
    return first, later


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='leo-bench policy',
                                     description=__doc__.split('\n')[1])
    parser.add_argument('--model', help='a trained policy directory (decides freely)')
    parser.add_argument('--llm', default='tiny',
                        help="untrained policy on this backbone: 'tiny', 'smollm2-135m', a "
                             'Hugging Face directory or .gguf file')
    parser.add_argument('--device', default='auto')
    parser.add_argument('--dtype', default='auto', choices=('auto',) + DTYPES)
    parser.add_argument('--scenes', type=int, default=10)
    parser.add_argument('--instructions', type=int, default=6, help='instructions per scene')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads (0: torch default); 1 suits a shared CPU')
    parser.add_argument('--out', default='out/bench/policy', help='folder for the PNG')
    args = parser.parse_args(argv)
    import torch
    from leo_ros.model.loading import load_policy, resolve_device
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    if args.model:
        policy = load_policy(args.model, args.device, args.dtype)
        name = Path(args.model).name
    else:
        device, dtype = resolve_device(args.device, args.dtype)
        policy = untrained(args.llm, device, dtype).eval()
        name = Path(args.llm).name
    load_s = time.perf_counter() - started
    first, later = time_decisions(policy, args)
    if not first or not later:
        print('leo-bench policy: no decisions timed (no tasks in the scenes)')
        return 1
    first, later = np.array(first), np.array(later)
    used = policy.in_use()
    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
    print(f'policy {name}: LM {policy.config.llm.source} on {used["device"]} ({used["dtype"]}), '
          f'loaded in {load_s:.1f} s; {len(first)} scenes, {len(later)} later instructions; '
          f'torch threads {torch.get_num_threads()}, load average {load:.2f}')
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figure = out / f'decision_{name}_{used["device"]}_{used["dtype"]}.png'
    plot(first[:, 0], later[:, 0], figure, f'decision time, {name} ({used["dtype"]})')
    print(f'figure: {figure}')
    print(f'first_ms_p50={np.median(first[:, 0]):.1f} later_ms_p50={np.median(later[:, 0]):.1f} '
          f'first_cpu_ms_p50={np.median(first[:, 1]):.1f} '
          f'later_cpu_ms_p50={np.median(later[:, 1]):.1f} '
          f'first_ms_p90={np.percentile(first[:, 0], 90):.1f} '
          f'later_ms_p90={np.percentile(later[:, 0], 90):.1f} llm={policy.config.llm.source} '
          f'device={used["device"]} dtype={used["dtype"]} threads={torch.get_num_threads()} '
          f'load_avg={load:.2f}')
    return 0
