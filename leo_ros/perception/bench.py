"""
leo-bench segmentation DIR: object segmentation accuracy and speed on labelled PCD files.

Ground truth follows the mOSD layout: a ``label`` field per point, 0 invalid, 1-9 support,
>= 20 objects, every distinct label its own object (mOSD gives disjoint parts of one object
distinct labels, and a model-free method cannot join them).

Matching rule: IoU between a predicted and a ground-truth object is counted over the points of
the frame; pairs are matched one-to-one greedily by descending IoU, and a pair with IoU >= 0.5
is a hit (at that threshold a match is unique anyway). Recall = hits / ground-truth objects,
precision = hits / predicted objects, mIoU = mean over ground-truth objects of the IoU of their
match (0 when unmatched); all are pooled over the frames.

The baseline is the naive pipeline people write first: Open3D voxel grid, RANSAC plane
removal, DBSCAN on the rest, labels carried back to the points through the voxel of each point.
Its parameters were tuned on the learn scenes (see docs/perception.md).
"""

import argparse
from dataclasses import dataclass
from pathlib import Path
import sys
import time

from leo_ros.perception.pcd import read_pcd
from leo_ros.perception.segmentation import segment, SegmentationConfig
import numpy as np

#: mOSD: labels at or above this are objects
FIRST_OBJECT_LABEL = 20


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


def match_objects(predicted, truth, threshold=0.5):
    """
    Match predicted objects to ground-truth objects by IoU.

    :param predicted: (N,) int labels, >= 0 objects
    :param truth: (N,) int mOSD labels, >= FIRST_OBJECT_LABEL objects
    :return: (hits, ground-truth count, predicted count, list of per-truth IoU of the match)
    """
    predicted = np.asarray(predicted).reshape(-1)
    truth = np.asarray(truth).reshape(-1)
    true_ids = np.unique(truth[truth >= FIRST_OBJECT_LABEL])
    pred_ids = np.unique(predicted[predicted >= 0])
    if len(true_ids) == 0 or len(pred_ids) == 0:
        return 0, len(true_ids), len(pred_ids), [0.0] * len(true_ids)
    true_index = np.full(truth.max() + 1, -1, np.int64)
    true_index[true_ids] = np.arange(len(true_ids))
    pred_index = np.full(predicted.max() + 1, -1, np.int64)
    pred_index[pred_ids] = np.arange(len(pred_ids))
    t = np.where(truth >= FIRST_OBJECT_LABEL, true_index[np.maximum(truth, 0)], -1)
    p = np.where(predicted >= 0, pred_index[np.maximum(predicted, 0)], -1)
    both = (t >= 0) & (p >= 0)
    intersection = np.zeros((len(true_ids), len(pred_ids)), np.int64)
    np.add.at(intersection, (t[both], p[both]), 1)
    true_sizes = np.bincount(t[t >= 0], minlength=len(true_ids))
    pred_sizes = np.bincount(p[p >= 0], minlength=len(pred_ids))
    iou = intersection / (true_sizes[:, None] + pred_sizes[None, :] - intersection)
    ious = [0.0] * len(true_ids)
    used_t, used_p = set(), set()
    hits = 0
    for flat in np.argsort(-iou, axis=None):
        ti, pi = np.unravel_index(flat, iou.shape)
        if iou[ti, pi] < threshold:
            break
        if ti in used_t or pi in used_p:
            continue
        used_t.add(ti)
        used_p.add(pi)
        ious[ti] = float(iou[ti, pi])
        hits += 1
    return hits, len(true_ids), len(pred_ids), ious


def evaluate(files, method, repeats=1, progress=None, keep_labels=False):
    """
    Run ``method(cloud) -> labels (N,)`` on each file.

    :param keep_labels: also return every file's labels (under 'labels')
    :return: dict with recall, precision, miou, ms_median, ms_p90 and per-file rows
    """
    hits = truths = preds = 0
    ious, times, cpu_times, rows, all_labels = [], [], [], [], []
    for path in files:
        cloud = read_pcd(path)
        if 'label' not in cloud.fields:
            raise ValueError(f'{path} has no label field')
        truth = cloud.fields['label'].astype(np.int64)
        labels, elapsed = None, []
        for _ in range(repeats):
            start, cpu_start = time.perf_counter(), time.process_time()
            labels = method(cloud)
            elapsed.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
        h, t, p, file_ious = match_objects(labels, truth)
        hits, truths, preds = hits + h, truths + t, preds + p
        ious.extend(file_ious)
        times.extend(elapsed)
        rows.append((Path(path).name, h, t, p, float(np.median(elapsed)) * 1e3))
        if keep_labels:
            all_labels.append(labels)
        if progress is not None:
            progress.update(1)
    return {'recall': hits / max(truths, 1), 'precision': hits / max(preds, 1),
            'miou': float(np.mean(ious)) if ious else 0.0,
            'ms_median': float(np.median(times)) * 1e3,
            'ms_p90': float(np.percentile(times, 90)) * 1e3,
            'cpu_ms_median': float(np.median(cpu_times)) * 1e3, 'rows': rows,
            'labels': all_labels}


def save_figure(path, files, ours_result, base_result=None):
    """
    Save a PNG: per file the camera image, the ground truth, ours and the baseline.

    Only organized clouds are drawn; objects in a fixed palette, support grey.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    columns = [('ground truth', None), ('ours', ours_result)]
    if base_result is not None:
        columns.append(('baseline', base_result))
    figure, axes = plt.subplots(len(files), len(columns) + 1,
                                figsize=(3 * (len(columns) + 1), 2.3 * len(files)),
                                squeeze=False)
    for row, file in enumerate(files):
        cloud = read_pcd(file)
        if not cloud.organized:
            continue
        shape = (cloud.height, cloud.width)
        rgb = cloud.grid()[1]
        axes[row, 0].imshow(rgb if rgb is not None else np.zeros(shape + (3,)))
        axes[row, 0].set_ylabel(Path(file).stem)
        truth = cloud.fields['label'].astype(np.int64).reshape(shape)
        for col, (title, result) in enumerate(columns, start=1):
            if result is None:
                labels = np.where(truth >= FIRST_OBJECT_LABEL, truth - FIRST_OBJECT_LABEL,
                                  np.where(truth > 0, -2, -1))
            else:
                labels = np.asarray(result['labels'][row]).reshape(shape)
                name, h, t, p, ms = result['rows'][row]
                title = f'{title}: {h}/{t} hit, {p} segs, {ms:.0f} ms'
            image = np.full(shape + (3,), 0.1)
            image[labels == -2] = 0.6
            palette = plt.get_cmap('tab20').colors
            for k in np.unique(labels[labels >= 0]):
                image[labels == k] = palette[int(k) % len(palette)]
            axes[row, col].imshow(image)
            axes[row, col].set_title(title, fontsize=7)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def ours(config):
    """Return a method for :func:`evaluate` running :func:`segment`."""
    def run(cloud):
        xyz = cloud.grid()[0] if cloud.organized else cloud.xyz
        return segment(xyz, config).labels.reshape(-1)
    return run


def baseline(config):
    """Return a method for :func:`evaluate` running :func:`segment_baseline`."""
    return lambda cloud: segment_baseline(cloud.xyz, config)


#: grid searched by ``--tune-baseline`` (the defaults above are its best on mosd-learn)
BASELINE_GRID = {'voxel_size': (0.005, 0.01), 'plane_distance': (0.01, 0.015, 0.02),
                 'dbscan_eps': (0.015, 0.02, 0.03), 'dbscan_min_points': (5, 10)}


def tune_baseline(files):
    """
    Grid-search the baseline on ``files``; best recall, then precision, then mIoU.

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
        trials.append((config, evaluate(files, baseline(config))))
    best = max(trials, key=lambda t: (t[1]['recall'], t[1]['precision'], t[1]['miou']))
    return best[0], trials


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='leo-bench segmentation', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('directory', help='folder of PCD files with a label field')
    parser.add_argument('--repeats', type=int, default=3,
                        help='timed runs per file for our method (default 3)')
    parser.add_argument('--no-baseline', action='store_true', help='skip the baseline')
    parser.add_argument('--png', default=None,
                        help='also save a figure of every segmentation to this PNG file')
    parser.add_argument('--tune-baseline', action='store_true',
                        help='grid-search the baseline parameters first and use the best')
    args = parser.parse_args(argv)
    files = sorted(Path(args.directory).glob('*.pcd'))
    if not files:
        print(f'no .pcd files in {args.directory}', file=sys.stderr)
        return 2
    base_config = BaselineConfig()
    if args.tune_baseline:
        base_config, trials = tune_baseline(files)
        for config, res in trials:
            print(f'baseline {config}: recall {res["recall"]:.3f} precision '
                  f'{res["precision"]:.3f} mIoU {res["miou"]:.3f} ms {res["ms_median"]:.1f}')
        print(f'best baseline: {base_config}')
    from tqdm import tqdm

    with tqdm(total=len(files) * (1 if args.no_baseline else 2), desc='segmentation',
              file=sys.stderr) as progress:
        keep = args.png is not None
        result = evaluate(files, ours(SegmentationConfig()), args.repeats, progress, keep)
        base = None if args.no_baseline else evaluate(files, baseline(base_config), 1,
                                                      progress, keep)
    if args.png:
        save_figure(args.png, files, result, base)
    print(f'{"file":16s} {"hits":>5s} {"truth":>5s} {"pred":>5s} {"ms":>8s}')
    for name, h, t, p, ms in result['rows']:
        print(f'{name:16s} {h:5d} {t:5d} {p:5d} {ms:8.1f}')
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
    return 0
