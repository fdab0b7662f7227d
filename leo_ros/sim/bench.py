"""
leo-bench sim: render time per frame and data-engine throughput on this machine.

``leo-bench sim [--frames N] [--width W --height H] [--scenes S]``
"""

import argparse
import statistics
import time

from leo_ros.actions.types import wrap_angle
from leo_ros.data.engine import DataEngine, EngineConfig
from leo_ros.sim.render import CameraConfig
from leo_ros.sim.world import World, WorldConfig
from tqdm import tqdm


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='leo-bench sim')
    parser.add_argument('--frames', type=int, default=30)
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--scenes', type=int, default=10,
                        help='scenes for the data-engine throughput (0: skip)')
    args = parser.parse_args(argv)
    world = World(0, WorldConfig(camera=CameraConfig(width=args.width, height=args.height)))
    world.observe()  # build the ray-casting scene once
    render_ms, rebuild_ms = [], []
    for i in tqdm(range(args.frames), desc='render', unit='frame'):
        # Turn in place: every frame is a new view (an unchanged view is served from cache).
        world.robot[2] = wrap_angle(world.robot[2] + 0.05)
        if i % 5 == 0:
            world._meshes_dirty = True  # as after a pick or place
            began = time.perf_counter()
            world.observe()
            rebuild_ms.append((time.perf_counter() - began) * 1e3)
            continue
        began = time.perf_counter()
        world.observe()
        render_ms.append((time.perf_counter() - began) * 1e3)
    render = statistics.median(render_ms)
    rebuild = statistics.median(rebuild_ms) if rebuild_ms else float('nan')
    print(f'render {args.width}x{args.height}: median {render:.1f} ms '
          f'(max {max(render_ms):.1f}), with scene rebuild {rebuild:.1f} ms')
    samples_per_s = scenes_per_s = 0.0
    if args.scenes:
        engine = DataEngine(EngineConfig())
        began = time.perf_counter()
        total = 0
        for seed in tqdm(range(args.scenes), desc='data engine', unit='scene'):
            total += len(engine.scene(seed).samples)
        seconds = time.perf_counter() - began
        samples_per_s, scenes_per_s = total / seconds, args.scenes / seconds
        print(f'data engine: {total} samples from {args.scenes} scenes in {seconds:.1f} s '
              f'(without writing tokens and images)')
    print(f'render_ms={render:.1f} render_rebuild_ms={rebuild:.1f} '
          f'render_hz={1e3 / render:.1f} samples_per_s={samples_per_s:.1f} '
          f'scenes_per_s={scenes_per_s:.2f}')
    return 0
