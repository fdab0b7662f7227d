"""
leo-data: write, inspect and draw LEO-style datasets from the built-in world.

  leo-data generate --out data/leo --train 200 --val 20 --test 20
  leo-data inspect data/leo --split train
  leo-data topdown --seed 3 --out scene3.png [--dataset data/leo]
  leo-data render --seed 3 --out camera3.png
"""

import argparse
import json
from pathlib import Path
import sys

from leo_ros.data.engine import DataEngine, EngineConfig
from leo_ros.data.shards import read_samples, split_of_seed, write_split
from leo_ros.data.templates import Templates


def _size(text):
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected WIDTHxHEIGHT, got {text!r}') from None
    return width, height


def build_parser():
    parser = argparse.ArgumentParser(prog='leo-data', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)
    gen = sub.add_parser('generate', help='write train/val/test splits')
    gen.add_argument('--out', required=True, help='dataset directory')
    for split, default in (('train', 200), ('val', 20), ('test', 20)):
        gen.add_argument(f'--{split}', type=int, default=default,
                         help=f'scenes in the {split} split (default {default})')
    gen.add_argument('--start', type=int, default=0,
                     help='index of the first scene within each split range')
    gen.add_argument('--templates', help="YAML templates file (default: the package's)")
    gen.add_argument('--image-size', type=_size, default=(224, 168),
                     help='ego-view image size WxH, 0x0 for none (default 224x168)')
    gen.add_argument('--points', type=int, default=1024, help='points per object token')
    gen.add_argument('--shard-size', type=int, default=2000, help='samples per JSONL shard')
    gen.add_argument('--quiet', action='store_true', help='no progress bar')
    ins = sub.add_parser('inspect', help="print a split's manifest and some samples")
    ins.add_argument('dataset')
    ins.add_argument('--split', default='train')
    ins.add_argument('--samples', type=int, default=5)
    top = sub.add_parser('topdown', help='draw a scene from above (PNG)')
    top.add_argument('--seed', type=int, required=True)
    top.add_argument('--out', required=True)
    top.add_argument('--dataset', help="also draw this dataset's navigation goals of the scene")
    ren = sub.add_parser('render', help='render the robot camera of a scene (PNG)')
    ren.add_argument('--seed', type=int, required=True)
    ren.add_argument('--out', required=True)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == 'generate':
        config = EngineConfig(points_per_object=args.points, image_size=args.image_size)
        engine = DataEngine(config, Templates.load(args.templates))
        for split in ('train', 'val', 'test'):
            count = getattr(args, split)
            if count <= 0:
                continue
            manifest = write_split(args.out, split, count, args.start, engine,
                                   args.shard_size, progress=not args.quiet)
            print(f'{split}: scenes={manifest["scenes"]} samples={manifest["samples"]} '
                  f'drop_rate={manifest["drop_rate"]} '
                  f'samples_per_second={manifest["samples_per_second"]} '
                  f'families={json.dumps(manifest["families"])} '
                  f'dropped={json.dumps(manifest["dropped"])}')
        return 0
    if args.command == 'inspect':
        manifest_path = Path(args.dataset) / args.split / 'manifest.json'
        if not manifest_path.is_file():
            print(f'no manifest at {manifest_path}', file=sys.stderr)
            return 1
        manifest = json.loads(manifest_path.read_text())
        print(json.dumps({k: v for k, v in manifest.items() if k != 'config'}, indent=2))
        for i, sample in enumerate(read_samples(args.dataset, args.split)):
            if i >= args.samples:
                break
            print(json.dumps(sample))
        return 0
    if args.command == 'topdown':
        from leo_ros.sim.topdown import draw_topdown
        from leo_ros.sim.world import World
        world = World(args.seed)
        goals = []
        if args.dataset:
            split = split_of_seed(args.seed)
            for sample in read_samples(args.dataset, split):
                if sample['scene_seed'] == args.seed:
                    goals += [(a['x'], a['y'], a['yaw']) for a in sample['actions']
                              if a['kind'] == 'nav_goal']
        draw_topdown(world.scene, args.out, world.robot_pose, goals=goals,
                     title=f'scene {args.seed}: {len(world.scene.objects)} objects, '
                           f'{len(goals)} goals')
        print(f'wrote {args.out}')
        return 0
    if args.command == 'render':
        from leo_ros.sim.topdown import draw_frame
        from leo_ros.sim.world import World
        draw_frame(World(args.seed).observe(), args.out)
        print(f'wrote {args.out}')
        return 0
    return 2


if __name__ == '__main__':
    sys.exit(main())
