"""
leo-bench segmentation: object segmentation accuracy and speed, per scene kind.

Scenes come from labelled PCD files (``DIR``: a ``label`` field per point in the mOSD layout)
and/or are generated (``--synthetic N``: cluttered tables of 8-20 objects rendered through the
sensor model, :mod:`leo_ros.sim.clutter`). Ground truth and the matching rule are in
:mod:`leo_ros.perception.scoring`. The kind of a file comes from ``DIR/manifest.json``
(file name -> kind), an OSD file name (learn0-44, test0-65) or a ``clutterNNN_<kind>`` name.

The baseline is the naive pipeline people write first: Open3D voxel grid, RANSAC plane
removal, DBSCAN on the rest, labels carried back to the points through the voxel of each point.
Its parameters were tuned on the learn scenes (see docs/perception.md).
"""

import argparse
from dataclasses import dataclass
import json
import os
from pathlib import Path
import sys
import time

from leo_ros.perception.pcd import read_pcd
from leo_ros.perception.scoring import (diagnose, FIRST_OBJECT_LABEL, match_objects,
                                        read_manifest, scene_kind, STATUSES)
from leo_ros.perception.segmentation import segment, SegmentationConfig
import numpy as np

__all__ = ['BaselineConfig', 'FIRST_OBJECT_LABEL', 'Scene', 'evaluate', 'match_objects',
           'segment_baseline', 'main']


@dataclass
class BaselineConfig:
    """Naive Open3D pipeline parameters (tuned on the mOSD learn scenes)."""

    voxel_size: float = 0.01
    plane_distance: float = 0.01
    ransac_iterations: int = 200
    dbscan_eps: float = 0.015
    dbscan_min_points: int = 5
    min_object_points: int = 300

    def __post_init__(self):
        for name in ('voxel_size', 'plane_distance', 'dbscan_eps'):
            if not getattr(self, name) > 0:
                raise ValueError(f'BaselineConfig.{name} must be > 0, got {getattr(self, name)}')
        for name in ('ransac_iterations', 'dbscan_min_points', 'min_object_points'):
            if getattr(self, name) < 1:
                raise ValueError(f'BaselineConfig.{name} must be >= 1, '
                                 f'got {getattr(self, name)}')


@dataclass
class Scene:
    """One labelled frame to score."""

    name: str
    kind: str
    source: str                 # 'files' or 'synthetic'
    xyz: np.ndarray             # (H, W, 3) organized or (N, 3)
    rgb: np.ndarray             # same shape in [0, 1], or None
    truth: np.ndarray           # (N,) int64 labels in the mOSD layout

    @property
    def organized(self) -> bool:
        """Return whether the cloud is an image of points."""
        return self.xyz.ndim == 3


def segment_baseline(xyz, config=None) -> np.ndarray:
    """
    Segment with voxel grid + RANSAC plane + DBSCAN (Open3D).

    :param xyz: (N, 3) points, NaN invalid
    :return: (N,) int32 labels, -1 no object
    """
    import open3d as o3d

    config = config or BaselineConfig()
    o3d.utility.random.seed(0)      # segment_plane samples at random: make runs repeatable
    labels = np.full(len(xyz), -1, np.int32)
    valid = np.flatnonzero(np.isfinite(xyz).all(axis=1))
    if len(valid) < 3:
        return labels
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz[valid].astype(np.float64)))
    low, high = cloud.get_min_bound(), cloud.get_max_bound()
    down, _, traces = cloud.voxel_down_sample_and_trace(config.voxel_size, low, high)
    voxel_of_point = np.full(len(valid), -1, np.int64)
    for voxel, members in enumerate(traces):
        voxel_of_point[np.asarray(members)] = voxel
    _, inliers = down.segment_plane(config.plane_distance, 3, config.ransac_iterations,
                                    probability=1.0)
    rest = np.setdiff1d(np.arange(len(down.points)), np.asarray(inliers, np.int64))
    clusters = np.asarray(down.select_by_index(rest).cluster_dbscan(
        config.dbscan_eps, config.dbscan_min_points))
    voxel_label = np.full(len(down.points), -1, np.int64)
    voxel_label[rest] = clusters
    point_label = voxel_label[voxel_of_point]
    sizes = np.bincount(point_label[point_label >= 0]) if (point_label >= 0).any() else []
    keep = np.flatnonzero(np.asarray(sizes) >= config.min_object_points)
    mapping = np.full(len(sizes) + 1, -1, np.int32)
    mapping[keep] = np.arange(len(keep))
    labels[valid] = mapping[point_label]      # -1 indexes the trailing -1
    return labels


def load_files(directory):
    """
    Read every ``*.pcd`` of a folder that has a ``label`` field.

    :return: list of :class:`Scene`; a file without labels raises ValueError naming it
    """
    manifest = read_manifest(directory)
    scenes = []
    for path in sorted(Path(directory).glob('*.pcd')):
        cloud = read_pcd(path)
        if 'label' not in cloud.fields:
            raise ValueError(f'{path} has no label field')
        xyz, rgb = cloud.grid() if cloud.organized else (cloud.xyz, cloud.rgb)
        scenes.append(Scene(path.name, scene_kind(path, manifest) or 'unknown', 'files', xyz,
                            rgb, cloud.fields['label'].astype(np.int64)))
    return scenes


def synthetic_scenes(count, seed=0, sensor=True, progress=None):
    """
    Generate and render ``count`` cluttered scenes (seeds ``seed`` ... ``seed + count - 1``).

    :param sensor: render through the depth-camera model (False: exact depth)
    :return: list of :class:`Scene`
    """
    from leo_ros.sim.clutter import ClutterConfig, generate_clutter, render_clutter
    from leo_ros.sim.sensor import SensorConfig

    config = ClutterConfig(sensor=SensorConfig(enabled=bool(sensor)))
    scenes = []
    for number in range(seed, seed + count):
        frame = render_clutter(generate_clutter(number, config), config)
        scenes.append(Scene(frame.name + '.pcd', frame.kind, 'synthetic', frame.xyz, frame.rgb,
                            frame.labels.reshape(-1).astype(np.int64)))
        if progress is not None:
            progress.update(1)
    return scenes


def write_scenes(scenes, directory):
    """Write scenes as binary PCD files (x y z rgb label) and ``manifest.json`` (name -> kind)."""
    import pypcd4

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for scene in scenes:
        xyz = scene.xyz.reshape(-1, 3).astype(np.float32)
        rgb = np.zeros((len(xyz), 3)) if scene.rgb is None else scene.rgb.reshape(-1, 3)
        rgb8 = np.clip(np.round(rgb * 255), 0, 255).astype(np.uint32)
        packed = (rgb8[:, 0] << 16) | (rgb8[:, 1] << 8) | rgb8[:, 2]
        cloud = pypcd4.PointCloud.from_points(
            [xyz[:, 0], xyz[:, 1], xyz[:, 2], packed, scene.truth.astype(np.uint32)],
            ('x', 'y', 'z', 'rgb', 'label'),
            (np.float32, np.float32, np.float32, np.uint32, np.uint32))
        if scene.organized:
            cloud.metadata.width, cloud.metadata.height = scene.xyz.shape[1], scene.xyz.shape[0]
        cloud.save(directory / scene.name, encoding=pypcd4.Encoding('binary_compressed'))
    manifest = {scene.name: scene.kind for scene in scenes}
    (directory / 'manifest.json').write_text(json.dumps(manifest, indent=1) + '\n')


def bad_inputs(seed=0):
    """
    Return inputs segmentation must survive: name -> (xyz, rgb or None).

    All NaN, empty, unorganized (a cluttered scene's points shuffled), one plane (a table with
    nothing on it), 45 % random NaN (a cluttered scene) and 200 objects (a grid of boxes seen
    from above).
    """
    from leo_ros.sim.clutter import (ClutterConfig, empty_table, generate_clutter, object_grid,
                                     render_clutter)

    config = ClutterConfig()
    clutter = render_clutter(generate_clutter(seed, config), config)
    rng = np.random.default_rng(seed)
    order = rng.permutation(clutter.xyz.shape[0] * clutter.xyz.shape[1])
    speckled = np.array(clutter.xyz)
    speckled[rng.random(speckled.shape[:2]) < 0.45] = np.nan
    plane = render_clutter(empty_table(seed, config), config)
    grid = render_clutter(object_grid(seed=seed), ClutterConfig(fov_x=70.0))
    return {'all NaN': (np.full((480, 640, 3), np.nan, np.float32), None),
            'empty': (np.zeros((0, 3), np.float32), None),
            'unorganized': (clutter.xyz.reshape(-1, 3)[order], clutter.rgb.reshape(-1, 3)[order]),
            'one plane': (plane.xyz, plane.rgb),
            '45 % NaN': (speckled, clutter.rgb),
            '200 objects': (grid.xyz, grid.rgb)}


def report_bad_inputs(repeats=3, seed=0):
    """Segment every bad input; print objects, dropped objects and time; return the times."""
    from tqdm import tqdm

    config = SegmentationConfig()
    times = {}
    print(f'{"bad input":14s} {"points":>8s} {"objects":>7s} {"dropped":>7s} {"ms median":>9s}')
    for name, (xyz, rgb) in tqdm(bad_inputs(seed).items(), desc='bad inputs', file=sys.stderr):
        elapsed = []
        for _ in range(repeats):
            start = time.perf_counter()
            result = segment(xyz, config, rgb=rgb)
            elapsed.append(time.perf_counter() - start)
        times[name] = float(np.median(elapsed)) * 1e3
        points = int(np.prod(xyz.shape[:-1]))
        print(f'{name:14s} {points:8d} {result.num_objects:7d} {result.dropped_objects:7d} '
              f'{times[name]:9.1f}')
    return times


def evaluate(scenes, method, repeats=1, progress=None, keep_labels=False):
    """
    Run ``method(scene) -> labels (N,)`` on each scene and score it.

    :param keep_labels: also keep every scene's labels (under 'labels')
    :return: dict with recall, precision, miou, ms_median, ms_p90, cpu_ms_median, per-scene
        ``rows`` (name, kind, hits, truths, predictions, ms, statuses) and per-kind ``kinds``
    """
    ious, times, cpu_times, rows, all_labels = [], [], [], [], []
    for scene in scenes:
        labels, elapsed = None, []
        for _ in range(repeats):
            start, cpu_start = time.perf_counter(), time.process_time()
            labels = method(scene)
            elapsed.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
        # One overlap count per scene gives the match and what became of each object.
        found = diagnose(labels, scene.truth)
        statuses, scene_ious = found['status'], found['ious']
        hits, truths, predicted = (int((statuses == 'hit').sum()), len(found['true_ids']),
                                   len(found['pred_ids']))
        ious.extend(scene_ious)
        times.extend(elapsed)
        rows.append({'name': scene.name, 'kind': scene.kind, 'source': scene.source,
                     'hits': hits, 'truths': truths, 'predicted': predicted,
                     'ious': scene_ious, 'ms': float(np.median(elapsed)) * 1e3,
                     'statuses': {s: int((statuses == s).sum()) for s in STATUSES}})
        if keep_labels:
            all_labels.append(labels)
        if progress is not None:
            progress.update(1)
    result = summarise(rows)
    result.update({'ms_median': float(np.median(times)) * 1e3 if times else float('nan'),
                   'ms_p90': float(np.percentile(times, 90)) * 1e3 if times else float('nan'),
                   'cpu_ms_median': float(np.median(cpu_times)) * 1e3 if times else
                   float('nan'), 'rows': rows, 'labels': all_labels,
                   'kinds': {kind: summarise([r for r in rows if r['kind'] == kind])
                             for kind in dict.fromkeys(r['kind'] for r in rows)}})
    return result


def summarise(rows) -> dict:
    """Return pooled recall, precision, mIoU, object counts and failure counts of rows."""
    hits = sum(r['hits'] for r in rows)
    truths = sum(r['truths'] for r in rows)
    predicted = sum(r['predicted'] for r in rows)
    ious = [v for r in rows for v in r['ious']]
    return {'recall': hits / max(truths, 1), 'precision': hits / max(predicted, 1),
            'miou': float(np.mean(ious)) if ious else 0.0, 'scenes': len(rows),
            'objects': truths, 'predicted': predicted,
            'statuses': {s: sum(r['statuses'][s] for r in rows) for s in STATUSES}}


def ours(config):
    """Return a method for :func:`evaluate` running :func:`segment` (colour when present)."""
    def run(scene):
        return segment(scene.xyz, config, rgb=scene.rgb).labels.reshape(-1)
    return run


def baseline(config):
    """Return a method for :func:`evaluate` running :func:`segment_baseline`."""
    return lambda scene: segment_baseline(scene.xyz.reshape(-1, 3), config)


#: grid searched by ``--tune-baseline`` (the defaults above are its best on mosd-learn)
BASELINE_GRID = {'voxel_size': (0.005, 0.01), 'plane_distance': (0.01, 0.015, 0.02),
                 'dbscan_eps': (0.015, 0.02, 0.03), 'dbscan_min_points': (5, 10)}


def tune_baseline(scenes):
    """
    Grid-search the baseline on ``scenes``; best recall, then precision, then mIoU.

    :return: (best BaselineConfig, list of (config, result))
    """
    import itertools

    from tqdm import tqdm

    names = list(BASELINE_GRID)
    trials = []
    combos = [dict(zip(names, values)) for values in itertools.product(*BASELINE_GRID.values())]
    combos = [c for c in combos if c['dbscan_eps'] >= 1.5 * c['voxel_size']]
    for combo in tqdm(combos, desc='tune baseline', file=sys.stderr):
        config = BaselineConfig(**combo)
        trials.append((config, evaluate(scenes, baseline(config))))
    best = max(trials, key=lambda t: (t[1]['recall'], t[1]['precision'], t[1]['miou']))
    return best[0], trials


def _parser():
    parser = argparse.ArgumentParser(prog='leo-bench segmentation', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('directory', nargs='?', default=None,
                        help='folder of PCD files with a label field (mOSD layout)')
    parser.add_argument('--synthetic', type=int, default=0, metavar='N',
                        help='also score N generated cluttered scenes (8-20 objects each)')
    parser.add_argument('--seed', type=int, default=0, help='first synthetic scene (default 0)')
    parser.add_argument('--exact-depth', action='store_true',
                        help='render synthetic scenes without the sensor model')
    parser.add_argument('--write', default=None, metavar='DIR',
                        help='save the synthetic scenes as PCD files + manifest.json here')
    parser.add_argument('--repeats', type=int, default=3,
                        help='timed runs per scene for our method (default 3)')
    parser.add_argument('--no-baseline', action='store_true', help='skip the baseline')
    parser.add_argument('--one-core', action='store_true',
                        help='pin this process (both methods) to one CPU core')
    parser.add_argument('--png', default=None,
                        help='save one figure of every segmentation to this PNG file')
    parser.add_argument('--png-dir', default=None, metavar='DIR',
                        help='save a PNG per scene (missed, merged and split objects marked)')
    parser.add_argument('--tune-baseline', action='store_true',
                        help='grid-search the baseline parameters first and use the best')
    parser.add_argument('--bad-input', action='store_true',
                        help='also time all-NaN, empty, unorganized, one-plane, 45 %% NaN and '
                        '200-object inputs')
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.repeats < 1 or args.synthetic < 0:
        print('--repeats must be >= 1 and --synthetic >= 0', file=sys.stderr)
        return 2
    if args.directory is None and not args.synthetic and not args.bad_input:
        print('give a folder of labelled PCD files, --synthetic N, --bad-input, or several',
              file=sys.stderr)
        return 2
    if args.one_core and hasattr(os, 'sched_setaffinity'):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    from tqdm import tqdm

    bad_times = report_bad_inputs(args.repeats, args.seed) if args.bad_input else None
    if args.directory is None and not args.synthetic:
        print(' '.join(f'{name.replace(" ", "_").replace("%", "pct")}_ms={ms:.1f}'
                       for name, ms in bad_times.items()))
        return 0

    scenes = []
    if args.directory is not None:
        scenes = load_files(args.directory)
        if not scenes:
            print(f'no .pcd files in {args.directory}', file=sys.stderr)
            return 2
    if args.synthetic:
        with tqdm(total=args.synthetic, desc='render scenes', file=sys.stderr) as progress:
            generated = synthetic_scenes(args.synthetic, args.seed, not args.exact_depth,
                                         progress)
        if args.write:
            write_scenes(generated, args.write)
        scenes += generated
    base_config = BaselineConfig()
    if args.tune_baseline:
        base_config, trials = tune_baseline(scenes)
        for config, res in trials:
            print(f'baseline {config}: recall {res["recall"]:.3f} precision '
                  f'{res["precision"]:.3f} mIoU {res["miou"]:.3f} ms {res["ms_median"]:.1f}')
        print(f'best baseline: {base_config}')
    keep = args.png is not None or args.png_dir is not None
    with tqdm(total=len(scenes) * (1 if args.no_baseline else 2), desc='segmentation',
              file=sys.stderr) as progress:
        result = evaluate(scenes, ours(SegmentationConfig()), args.repeats, progress, keep)
        base = None if args.no_baseline else evaluate(scenes, baseline(base_config), 1,
                                                      progress, keep)
    if keep:
        from leo_ros.perception.bench_figures import save_figure, save_scene_figures
        if args.png:
            save_figure(args.png, scenes, result, base)
        if args.png_dir:
            save_scene_figures(args.png_dir, scenes, result, base)
    report(result, base)
    return 0


def report(result, base):
    """Print per-scene rows, per-kind and overall figures, and the ``key=value`` last line."""
    print(f'{"scene":28s} {"kind":14s} {"hits":>5s} {"truth":>5s} {"pred":>5s} '
          f'{"merged":>6s} {"split":>5s} {"missed":>6s} {"ms":>7s}')
    for row in result['rows']:
        s = row['statuses']
        print(f'{row["name"]:28s} {row["kind"][:14]:14s} {row["hits"]:5d} {row["truths"]:5d} '
              f'{row["predicted"]:5d} {s["merged"]:6d} {s["split"]:5d} {s["missed"]:6d} '
              f'{row["ms"]:7.1f}')
    print(f'\n{"kind":16s} {"scenes":>6s} {"objects":>7s} {"recall":>7s} {"precision":>9s} '
          f'{"mIoU":>6s} {"merged":>6s} {"split":>5s} {"missed":>6s} {"partial":>7s}'
          + ('  baseline recall/precision' if base else ''))
    kinds = list(result['kinds'].items()) + [('all', result)]
    for kind, res in kinds:
        s = res['statuses']
        line = (f'{kind[:16]:16s} {res["scenes"]:6d} {res["objects"]:7d} {res["recall"]:7.3f} '
                f'{res["precision"]:9.3f} {res["miou"]:6.3f} {s["merged"]:6d} {s["split"]:5d} '
                f'{s["missed"]:6d} {s["partial"]:7d}')
        if base:
            other = base if kind == 'all' else base['kinds'][kind]
            line += f'  {other["recall"]:.3f}/{other["precision"]:.3f}'
        print(line)
    print()
    for label, res in (('ours', result), ('baseline', base)):
        if res is not None:
            print(f'{label:9s} recall {res["recall"]:.3f} precision {res["precision"]:.3f} '
                  f'mIoU {res["miou"]:.3f} ms median {res["ms_median"]:.1f} '
                  f'p90 {res["ms_p90"]:.1f} (CPU ms median {res["cpu_ms_median"]:.1f}, '
                  'all threads)')
    base_recall = base['recall'] if base else float('nan')
    base_ms = base['ms_median'] if base else float('nan')
    speedup = base_ms / result['ms_median'] if base else float('nan')
    print(f'recall={result["recall"]:.3f} precision={result["precision"]:.3f} '
          f'miou={result["miou"]:.3f} ms_median={result["ms_median"]:.1f} '
          f'baseline_recall={base_recall:.3f} baseline_ms_median={base_ms:.1f} '
          f'speedup={speedup:.2f}')
