"""
leo-segment: segment PCD files into objects and write per-point labels.

``leo-segment FILE... --out DIR [--png]`` writes ``DIR/<name>.npy``: one int32 label per point in
the file's point order; >= 0 is an object index (largest object first), -1 no object (invalid or
background), -2 a support surface. ``--png`` also writes ``DIR/<name>.png`` (organized clouds as
an image, unorganized ones as a top view).
"""

import argparse
from pathlib import Path
import sys
import time

from leo_ros.perception.pcd import read_pcd
from leo_ros.perception.segmentation import segment, SegmentationConfig, SUPPORT
import numpy as np


def label_colors(labels, rgb=None):
    """
    Colour labels for display: objects in a fixed palette, support grey, the rest dark.

    :param labels: (...) int labels
    :param rgb: (..., 3) camera colours in [0, 1] to blend under the labels, or None
    :return: (..., 3) float32 in [0, 1]
    """
    from matplotlib import colormaps

    palette = np.asarray(colormaps['tab20'].colors, np.float32)             # (20, 3)
    out = np.zeros(labels.shape + (3,), np.float32)
    objects = labels >= 0
    out[objects] = palette[labels[objects] % len(palette)]
    out[labels == SUPPORT] = 0.6
    if rgb is not None:
        base = np.nan_to_num(np.asarray(rgb, np.float32))
        out = np.where(objects[..., None], 0.7 * out + 0.3 * base, 0.5 * base + 0.5 * out)
    return out


def save_png(path, cloud, labels):
    """Write a picture of the segmentation of ``cloud`` (a PcdCloud) to ``path``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    if cloud.organized:
        image = label_colors(labels.reshape(cloud.height, cloud.width),
                             None if cloud.rgb is None else cloud.grid()[1])
        plt.imsave(path, np.clip(image, 0, 1))
        return
    finite = np.isfinite(cloud.xyz).all(axis=1)
    colors = label_colors(labels)[finite]
    figure, axis = plt.subplots(figsize=(8, 8))
    axis.scatter(cloud.xyz[finite, 0], cloud.xyz[finite, 1], c=colors, s=0.5)
    axis.set_aspect('equal')
    axis.set_xlabel('x [m]')
    axis.set_ylabel('y [m]')
    axis.set_title(f'{Path(path).stem}: {int(labels.max(initial=-1)) + 1} objects')
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='leo-segment', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('files', nargs='+', help='PCD files (ascii, binary, binary_compressed)')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--png', action='store_true', help='also write a PNG per file')
    parser.add_argument('--max-objects', type=int, default=None,
                        help='at most this many objects per file (default: 60)')
    args = parser.parse_args(argv)
    config = SegmentationConfig() if args.max_objects is None else \
        SegmentationConfig(max_objects=args.max_objects)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    failures = 0
    for name in tqdm(args.files, desc='leo-segment', file=sys.stderr,
                     disable=len(args.files) < 2):
        path = Path(name)
        try:
            cloud = read_pcd(path)
        except (OSError, ValueError) as error:
            print(f'{path}: {error}', file=sys.stderr)
            failures += 1
            continue
        xyz, rgb = cloud.grid() if cloud.organized else (cloud.xyz, cloud.rgb)
        start = time.perf_counter()
        result = segment(xyz, config, rgb=rgb)
        elapsed = time.perf_counter() - start
        labels = result.labels.reshape(-1).astype(np.int32)     # (N,) in file order
        np.save(out / f'{path.stem}.npy', labels)
        if args.png:
            save_png(out / f'{path.stem}.png', cloud, labels)
        print(f'{path.name}: {result.num_objects} objects, {len(labels)} points, '
              f'{elapsed * 1e3:.1f} ms')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
