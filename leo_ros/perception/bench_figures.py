"""
Figures of ``leo-bench segmentation``: one overview PNG, and one PNG per scene (matplotlib).

Per scene: the camera image, the ground truth, ours and the baseline. On the segmentations,
ground-truth objects that were missed are outlined in red, merged ones in yellow and split
ones in cyan; predictions that hold most of two or more objects are hatched white.
"""

from pathlib import Path

from leo_ros.perception.scoring import diagnose, FIRST_OBJECT_LABEL, IGNORE
import numpy as np
from scipy import ndimage

#: outline colour per ground-truth status
STATUS_COLORS = {'missed': (1.0, 0.1, 0.1), 'merged': (1.0, 0.9, 0.0),
                 'split': (0.0, 0.9, 1.0), 'partial': (1.0, 0.5, 0.0)}


def _palette():
    from matplotlib import colormaps
    return np.asarray(colormaps['tab20'].colors, np.float32)                # (20, 3)


def truth_image(truth, shape) -> np.ndarray:
    """Return an (H, W, 3) picture of mOSD ground truth: objects coloured, support grey."""
    truth = truth.reshape(shape)
    image = np.full(shape + (3,), 0.1, np.float32)
    image[(truth > 0) & (truth < IGNORE)] = 0.6
    image[truth == IGNORE] = 0.35
    objects = truth >= FIRST_OBJECT_LABEL
    palette = _palette()
    image[objects] = palette[(truth[objects] - FIRST_OBJECT_LABEL) % len(palette)]
    return image


def labels_image(labels, truth, shape, marks=True) -> np.ndarray:
    """
    Return an (H, W, 3) picture of a segmentation, failures marked (see the module docstring).

    :param labels: (N,) predicted labels (>= 0 objects, -2 support)
    :param truth: (N,) ground truth in the mOSD layout
    """
    flat = np.asarray(labels).reshape(-1)
    image = np.full((flat.size, 3), 0.1, np.float32)
    image[flat == -2] = 0.6
    objects = flat >= 0
    palette = _palette()
    image[objects] = palette[flat[objects] % len(palette)]
    image = image.reshape(shape + (3,))
    if not marks:
        return image
    found = diagnose(flat, truth)
    labels2d, truth2d = flat.reshape(shape), np.asarray(truth).reshape(shape)
    rows, cols = np.indices(shape)
    hatch = ((rows + cols) // 3) % 4 == 0
    for pred_id, merging in zip(found['pred_ids'], found['merging']):
        if merging:
            image[(labels2d == pred_id) & hatch] = 1.0
    for true_id, status in zip(found['true_ids'], found['status']):
        if status in STATUS_COLORS:
            mask = truth2d == true_id
            outline = mask & ~ndimage.binary_erosion(mask, iterations=2)
            image[outline] = STATUS_COLORS[status]
    return image


def _title(row):
    s = row['statuses']
    return (f'{row["hits"]}/{row["truths"]} hit, {row["predicted"]} segments, {row["ms"]:.0f} ms\n'
            f'merged {s["merged"]}, split {s["split"]}, missed {s["missed"]}')


def _results(index, ours_result, base_result):
    """Return the (title, result, scene index) columns drawn for one scene."""
    results = [('ours', ours_result, index)]
    if base_result is not None:
        results.append(('baseline', base_result, index))
    return results


def _draw_row(axes, scene, results):
    shape = scene.xyz.shape[:2]
    rgb = scene.rgb if scene.rgb is not None else np.zeros(shape + (3,))
    axes[0].imshow(np.clip(np.nan_to_num(rgb), 0, 1))
    axes[0].set_title(f'{scene.name} ({scene.kind})', fontsize=7)
    axes[1].imshow(truth_image(scene.truth, shape))
    axes[1].set_title('ground truth', fontsize=7)
    for axis, (title, result, index) in zip(axes[2:], results):
        axis.imshow(labels_image(result['labels'][index], scene.truth, shape))
        axis.set_title(f'{title}: {_title(result["rows"][index])}', fontsize=7)


def save_figure(path, scenes, ours_result, base_result=None):
    """Save one PNG with a row per organized scene: image, ground truth, ours, baseline."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    picked = [k for k, s in enumerate(scenes) if s.organized]
    if not picked:
        return
    columns = 3 + (base_result is not None)
    figure, axes = plt.subplots(len(picked), columns, figsize=(3.4 * columns, 2.7 * len(picked)),
                                squeeze=False)
    for row, index in enumerate(picked):
        _draw_row(axes[row], scenes[index], _results(index, ours_result, base_result))
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    figure.tight_layout()
    figure.savefig(path, dpi=60)
    plt.close(figure)


def save_scene_figures(directory, scenes, ours_result, base_result=None):
    """Save ``DIR/<scene>.png`` per organized scene; return the paths written."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for index, scene in enumerate(scenes):
        if not scene.organized:
            continue
        results = _results(index, ours_result, base_result)
        figure, axes = plt.subplots(1, 2 + len(results), figsize=(4.2 * (2 + len(results)), 3.4))
        _draw_row(axes, scene, results)
        for axis in axes:
            axis.set_xticks([])
            axis.set_yticks([])
        figure.tight_layout()
        path = directory / f'{Path(scene.name).stem}.png'
        figure.savefig(path, dpi=90)
        plt.close(figure)
        written.append(path)
    return written
