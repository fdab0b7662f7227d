"""
Scoring a segmentation against per-point ground truth in the mOSD layout (numpy only).

Ground truth labels: 0 invalid, 1-9 support, :data:`IGNORE` (10) object parts too small to
score, ``>= 20`` objects, every distinct label its own object (mOSD gives the disjoint parts of
one object distinct labels, and a model-free method cannot join them).

Matching rule: IoU between a predicted and a ground-truth object is counted over the points of
the frame; pairs are matched one-to-one greedily by descending IoU, and a pair with IoU >= 0.5
is a hit (at that threshold a match is unique anyway). A predicted object lying mostly (at
least half its points) on :data:`IGNORE` points is not counted. Recall = hits / ground-truth
objects, precision = hits / predicted objects, mIoU = mean over ground-truth objects of the
IoU of their match (0 when unmatched).
"""

from dataclasses import dataclass
import json
from pathlib import Path
import re

import numpy as np

#: mOSD: labels at or above this are objects
FIRST_OBJECT_LABEL = 20
#: labels of object parts too small to score (synthetic scenes); predictions on them are free
IGNORE = 10

#: Object Segmentation Database scene kinds by file number (its README)
OSD_KINDS = {'learn': ((0, 16, 'boxes'), (17, 24, 'stacked boxes'), (25, 32, 'occluded'),
                       (33, 44, 'cylinders')),
             'test': ((0, 15, 'boxes'), (16, 23, 'stacked boxes'), (24, 30, 'occluded'),
                      (31, 42, 'cylinders'), (43, 54, 'mixed'), (55, 65, 'cluttered'))}

#: what became of a ground-truth object (see :func:`diagnose`)
STATUSES = ('hit', 'merged', 'split', 'missed', 'partial')


@dataclass
class Overlap:
    """Point counts shared by ground-truth and predicted objects of one frame."""

    true_ids: np.ndarray        # (T,) ground-truth labels
    pred_ids: np.ndarray        # (P,) predicted labels (ignored ones left out)
    intersection: np.ndarray    # (T, P) shared points
    true_sizes: np.ndarray      # (T,)
    pred_sizes: np.ndarray      # (P,)

    @property
    def iou(self) -> np.ndarray:
        """Return (T, P) intersection over union."""
        union = self.true_sizes[:, None] + self.pred_sizes[None, :] - self.intersection
        return self.intersection / np.maximum(union, 1)


def overlap(predicted, truth) -> Overlap:
    """
    Count the points shared by each ground-truth and each predicted object.

    :param predicted: (N,) int labels, >= 0 objects
    :param truth: (N,) int ground truth in the mOSD layout
    """
    predicted = np.asarray(predicted).reshape(-1).astype(np.int64)
    truth = np.asarray(truth).reshape(-1).astype(np.int64)
    true_ids = np.unique(truth[truth >= FIRST_OBJECT_LABEL])
    pred_ids = np.unique(predicted[predicted >= 0])
    if len(pred_ids):
        on_ignore = np.bincount(predicted[(predicted >= 0) & (truth == IGNORE)],
                                minlength=pred_ids.max() + 1)[pred_ids]
        sizes = np.bincount(predicted[predicted >= 0], minlength=pred_ids.max() + 1)[pred_ids]
        pred_ids = pred_ids[2 * on_ignore < sizes]
    t_index = np.full(max(int(truth.max(initial=0)), 0) + 1, -1, np.int64)
    t_index[true_ids] = np.arange(len(true_ids))
    p_index = np.full(max(int(predicted.max(initial=0)), 0) + 1, -1, np.int64)
    p_index[pred_ids] = np.arange(len(pred_ids))
    t = np.where(truth >= 0, t_index[np.maximum(truth, 0)], -1)
    p = np.where(predicted >= 0, p_index[np.maximum(predicted, 0)], -1)
    both = (t >= 0) & (p >= 0)
    intersection = np.bincount(t[both] * max(len(pred_ids), 1) + p[both],
                               minlength=len(true_ids) * max(len(pred_ids), 1))
    intersection = intersection[:len(true_ids) * len(pred_ids)].reshape(
        len(true_ids), len(pred_ids))
    return Overlap(true_ids, pred_ids, intersection,
                   np.bincount(t[t >= 0], minlength=len(true_ids)),
                   np.bincount(p[p >= 0], minlength=len(pred_ids)))


def greedy_match(iou, threshold=0.5):
    """
    Match rows to columns one-to-one by descending IoU, pairs at or above ``threshold``.

    :param iou: (T, P)
    :return: (T,) matched column per row or -1
    """
    match = np.full(iou.shape[0], -1, np.int64)
    if iou.size == 0:
        return match
    used = np.zeros(iou.shape[1], bool)
    for flat in np.argsort(-iou, axis=None, kind='stable'):
        row, col = np.unravel_index(flat, iou.shape)
        if iou[row, col] < threshold:
            break
        if match[row] < 0 and not used[col]:
            match[row], used[col] = col, True
    return match


def match_objects(predicted, truth, threshold=0.5):
    """
    Match predicted objects to ground-truth objects by IoU.

    :param predicted: (N,) int labels, >= 0 objects
    :param truth: (N,) int mOSD labels, >= FIRST_OBJECT_LABEL objects
    :return: (hits, ground-truth count, predicted count, list of per-truth IoU of the match)
    """
    found = diagnose(predicted, truth, threshold)
    return (int((found['status'] == 'hit').sum()), len(found['true_ids']),
            len(found['pred_ids']), found['ious'])


def diagnose(predicted, truth, threshold=0.5):
    """
    Say what became of each ground-truth object and which predictions merge objects.

    A ground-truth object that is not hit is ``merged`` when the prediction holding most of it
    also holds most of another ground-truth object, ``split`` when its points are spread over
    several predictions (none with half of them), ``missed`` when most of it is in no
    predicted object, and ``partial`` otherwise (one prediction holds it with too much else).

    :return: dict with ``true_ids`` (T,), ``status`` (T,) str, ``ious`` (list of T floats:
        the IoU of each ground-truth object's match, 0 when unmatched), ``pred_ids`` (P,),
        ``merging`` (P,) bool: the prediction holds most of two or more ground-truth objects
    """
    shared = overlap(predicted, truth)
    iou = shared.iou
    match = greedy_match(iou, threshold)
    count = len(shared.true_ids)
    status = np.array(['hit'] * count, dtype=object)
    merging = np.zeros(len(shared.pred_ids), bool)
    if len(shared.pred_ids):
        share = shared.intersection / np.maximum(shared.true_sizes[:, None], 1)    # (T, P)
        owner = share.argmax(axis=1)
        holds = share[np.arange(count), owner] >= 0.5
        owned = np.bincount(owner[holds], minlength=len(shared.pred_ids))
        merging = owned >= 2
    for k in range(count):
        if match[k] >= 0:
            continue
        if not len(shared.pred_ids):
            status[k] = 'missed'
            continue
        covered = share[k].sum()
        if holds[k]:
            status[k] = 'merged' if merging[owner[k]] else 'partial'
        elif covered >= 0.5:
            status[k] = 'split'
        else:
            status[k] = 'missed'
    return {'true_ids': shared.true_ids, 'status': status, 'pred_ids': shared.pred_ids,
            'merging': merging,
            'ious': [float(iou[k, m]) if m >= 0 else 0.0 for k, m in enumerate(match)]}


def scene_kind(path, manifest=None) -> str:
    """
    Return the kind of a scene file: from a manifest, an OSD file name, or a name suffix.

    :param path: the file (its name decides)
    :param manifest: dict file name or stem -> kind, or None
    :return: e.g. 'boxes', 'stacked boxes', 'touching'; '' when nothing says
    """
    path = Path(path)
    if manifest:
        for key in (path.name, path.stem):
            if key in manifest:
                return str(manifest[key])
    found = re.fullmatch(r'(learn|test)(\d+)', path.stem)
    if found:
        number = int(found.group(2))
        for low, high, kind in OSD_KINDS[found.group(1)]:
            if low <= number <= high:
                return kind
    found = re.fullmatch(r'clutter\d+_([a-z]+)', path.stem)
    return found.group(1) if found else ''


def read_manifest(directory) -> dict:
    """Return ``DIR/manifest.json`` (file name -> kind) or an empty dict; bad JSON raises."""
    path = Path(directory) / 'manifest.json'
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f'{path}: not JSON ({error})') from error
    kinds = data.get('kinds', data) if isinstance(data, dict) else None
    if not isinstance(kinds, dict):
        raise ValueError(f'{path}: expected an object mapping file names to kinds')
    return kinds
