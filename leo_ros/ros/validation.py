"""
Input validation at the node boundary (pure functions; message types only, no rclpy).

Every input a node acts on passes a check here first; a refused input raises
:class:`InputRefused`, whose ``reason`` is a short key the nodes count by (``/diagnostics``
shows ``refused_<reason>``), and whose message says what is wrong.

- :func:`scene_message_to_tokens`: leo_ros/SceneObjects -> SceneTokens, refusing non-finite
  centroids, sizes, colours, points or scales, negative sizes and duplicate ids.
- :func:`check_intrinsics`: CameraInfo K must be finite with positive focal lengths.
- :func:`leo_ros.ros.maps.map_from_occupancy_grid` refuses degenerate maps the same way.
- :class:`RefusalCounter`: thread-safe counts of refused inputs by reason.
"""

import threading

from leo_ros.ros.conversions import ConversionError, scene_objects_to_tokens
import numpy as np


class InputRefused(ValueError):
    """An input the node will not use; ``reason`` is a short key for counting."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


def scene_message_to_tokens(msg):
    """
    Convert and check a leo_ros/SceneObjects message.

    :return: SceneTokens
    :raises InputRefused: reason 'scene_malformed' (inconsistent sizes), 'scene_non_finite'
        (NaN or inf anywhere), 'scene_negative_size' or 'scene_duplicate_ids'
    """
    try:
        tokens = scene_objects_to_tokens(msg)
    except (ConversionError, ValueError) as error:
        raise InputRefused('scene_malformed', f'scene message refused: {error}') from error
    for name in ('centers', 'sizes', 'colors', 'scales', 'points', 'confidences'):
        values = np.asarray(getattr(tokens, name), np.float32)
        bad = ~np.isfinite(values)
        if bad.any():
            rows = np.unique(np.nonzero(bad.reshape(len(values), -1))[0]) if values.ndim \
                else np.array([0])
            ids = [int(tokens.ids[k]) for k in rows[:5] if k < len(tokens.ids)]
            raise InputRefused('scene_non_finite', f'scene message refused: {name} has '
                               f'{int(bad.sum())} non-finite value(s) (objects {ids})')
    if (np.asarray(tokens.sizes) < 0).any():
        raise InputRefused('scene_negative_size', 'scene message refused: negative box size')
    ids = np.asarray(tokens.ids)
    if len(np.unique(ids)) != len(ids):
        raise InputRefused('scene_duplicate_ids', 'scene message refused: duplicate object '
                           f'ids {sorted(int(i) for i in ids)}')
    return tokens


def check_intrinsics(info):
    """
    Return the 3x3 intrinsic matrix of a CameraInfo, or raise InputRefused('intrinsics').

    K must be finite, with positive focal lengths (fx = K[0], fy = K[4]).
    """
    k = np.asarray(info.k, np.float64)
    if k.size != 9:
        raise InputRefused('intrinsics', f'camera_info K has {k.size} values, not 9')
    k = k.reshape(3, 3)
    if not np.isfinite(k).all():
        raise InputRefused('intrinsics', f'camera_info K has non-finite values: '
                           f'{k.ravel().tolist()}')
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        raise InputRefused('intrinsics', f'camera_info focal lengths must be positive, got '
                           f'fx={k[0, 0]}, fy={k[1, 1]}')
    return k


class RefusalCounter:
    """
    Count refused inputs by reason (thread-safe), keeping the last message of each.

    :param max_reasons: distinct reasons kept; later new ones are counted as 'other'
    """

    def __init__(self, max_reasons=32):
        self._lock = threading.Lock()
        self._counts = {}
        self._last = {}
        self.max_reasons = max_reasons

    def add(self, reason, message=''):
        with self._lock:
            if reason not in self._counts and len(self._counts) >= self.max_reasons:
                reason = 'other'
            self._counts[reason] = self._counts.get(reason, 0) + 1
            self._last[reason] = str(message)[:300]

    def counts(self) -> dict:
        with self._lock:
            return dict(self._counts)

    def last(self, reason) -> str:
        with self._lock:
            return self._last.get(reason, '')

    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())
