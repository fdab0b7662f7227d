"""
leo-bench policy: decision latency of the LEO policy.

One decision = SceneTokens with N objects (1024 points each) + an ego-view image + an instruction
-> prompt -> LLM with LoRA -> constrained decoding -> a typed action. The policy is untrained
(random weights), which does not change the work done: ``require_action`` makes every decision
one full action of the benchmarked kind. Last line::

    decision_ms_p50= decision_ms_p90= decisions_per_s= cpu_ms_p50= cpu_ms_p90= ...

``decision_ms`` is wall-clock time; ``cpu_ms`` the process's CPU time per decision, which is
what the decision costs on a core of its own (with ``--threads 1``) when other programs share
the machine.

``--llm-config 7b --device cuda --dtype bf16`` times a LLaMA-7B-size model (random weights).
"""

import argparse
import os
from pathlib import Path
import time

import numpy as np

_DTYPES = {'fp32': 'float32', 'float32': 'float32', 'bf16': 'bfloat16', 'bfloat16': 'bfloat16',
           'fp16': 'float16', 'float16': 'float16'}


def make_scene(objects: int, points: int, seed: int = 0):
    """Return SceneTokens with ``objects`` random box-like objects spread over a room."""
    from leo_ros.scene_tokens import SceneTokens
    rng = np.random.default_rng(seed)
    clouds, colours = [], []
    for _ in range(objects):
        size = rng.uniform(0.1, 1.0, 3)
        clouds.append(rng.uniform(-0.5, 0.5, (points, 3)) * size + rng.uniform(-4, 4, 3))
        colours.append(np.tile(rng.uniform(size=3), (points, 1)))
    return SceneTokens.from_object_clouds(clouds, colours, points_per_object=points)


def plot(latencies_ms, path, title):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.hist(latencies_ms, bins=30)
    axis.axvline(np.median(latencies_ms), color='k', linestyle='--', label='median')
    axis.set_xlabel('decision latency [ms]')
    axis.set_ylabel('decisions')
    axis.set_title(title)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='leo-bench policy', description=__doc__.split('\n')[1])
    parser.add_argument('--llm-config', default='tiny',
                        help="'tiny', '7b' or a local Hugging Face model directory")
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--dtype', default='fp32', choices=sorted(_DTYPES))
    parser.add_argument('--objects', type=int, default=60)
    parser.add_argument('--points', type=int, default=1024)
    parser.add_argument('--kind', default='nav_goal',
                        choices=['nav_goal', 'nav_step', 'pick_place', 'ee_delta'])
    parser.add_argument('--repeats', type=int, default=30)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads (0: torch default); 1 suits a shared CPU')
    parser.add_argument('--out', default='out/bench/policy', help='folder for the PNG')
    args = parser.parse_args(argv)

    import torch
    from tqdm import tqdm

    from leo_ros.model.config import LLMConfig, PolicyConfig, TextTokenizerConfig
    from leo_ros.model.policy import LeoPolicy
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = _DTYPES[args.dtype]
    llm = LLMConfig(source=args.llm_config, dtype=dtype, device=args.device)
    text = TextTokenizerConfig(kind='bpe' if llm.source in ('tiny', '7b') else 'pretrained')
    config = PolicyConfig(llm=llm, text=text)
    started = time.perf_counter()
    policy = LeoPolicy.create(config).eval()
    build_s = time.perf_counter() - started
    scene = make_scene(args.objects, args.points)
    image = (np.random.default_rng(1).uniform(size=(480, 640, 3)) * 255).astype(np.uint8)
    instruction = 'Go to the chair next to the table.'

    def decide():
        decision = policy.act(scene, image, instruction, (0.3, -0.2, 0.5),
                              require_action=[args.kind])
        if args.device.startswith('cuda'):
            torch.cuda.synchronize()
        return decision

    for _ in range(args.warmup):
        decision = decide()
    latencies, cpu = [], []
    for _ in tqdm(range(args.repeats), desc='decisions', leave=False):
        started, started_cpu = time.perf_counter(), time.process_time()
        decision = decide()
        latencies.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    latencies = np.array(latencies)
    p50, p90 = np.percentile(latencies, 50), np.percentile(latencies, 90)
    # CPU time of this process: what a decision costs on a core it has to itself
    cpu_p50, cpu_p90 = np.percentile(cpu, 50), np.percentile(cpu, 90)
    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
    print(f'policy: llm {args.llm_config} ({dtype}, {args.device}), '
          f'{sum(p.numel() for p in policy.parameters()) / 1e6:.1f} M parameters '
          f'({sum(p.numel() for p in policy.parameters() if p.requires_grad) / 1e6:.2f} M '
          f'trainable), built in {build_s:.1f} s; torch threads {torch.get_num_threads()}, '
          f'load average {load:.2f}')
    print(f'last decision: {decision.tokens} -> {decision.action}')
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f'latency_{Path(args.llm_config).name}_{args.device}_{dtype}.png'
    plot(latencies, out / name, f'{args.objects} objects, {args.kind}, llm {args.llm_config}')
    print(f'figure: {out / name}')
    print(f'decision_ms_p50={p50:.1f} decision_ms_p90={p90:.1f} '
          f'decisions_per_s={1000 / p50:.2f} cpu_ms_p50={cpu_p50:.1f} cpu_ms_p90={cpu_p90:.1f} '
          f'objects={args.objects} kind={args.kind} '
          f'llm={args.llm_config} device={args.device} dtype={dtype} '
          f'threads={torch.get_num_threads()} load_avg={load:.2f}')
    return 0
