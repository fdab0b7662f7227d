"""
Transforms between frames: tf2_ros where it is installed, a small documented fallback elsewhere.

:class:`Transforms` looks transforms up for a node. With ``tf2_ros`` importable (every ROS 2
install) it is a ``tf2_ros.Buffer`` with a ``TransformListener``. The PyPI ROS wheels have no
tf2_ros, so there it listens to ``/tf`` and ``/tf_static`` itself (``tf2_msgs/TFMessage``, built
from its published definition by ``interfaces/build.sh`` where the real package is missing) and
keeps a :class:`TransformTree`: the last 100 transforms of every frame, composed along the
tree. Unlike tf2 it does not interpolate: a lookup at a stamp takes each frame's transform
nearest in time (within 0.5 s), and a lookup of the newest takes the newest (dynamic ones older
than ``max_age`` count as missing). A simulator or driver that publishes the transforms with the
data they belong to gets exact answers either way.

:class:`TransformPublisher` sends transforms (tf2_ros broadcasters where installed, else the same
``TFMessage`` on ``/tf`` and ``/tf_static``). The tree and the token transform are pure numpy.
"""

from dataclasses import replace
import math
import threading
import time

import numpy as np


class TransformUnavailable(LookupError):
    """No transform between two frames (yet); the message names both frames and why."""


class TransformTree:
    """
    Recent transforms of each frame relative to its parent (thread-safe, a short history).

    A lookup at a stamp takes, per frame, the stored transform nearest in time (no
    interpolation), and fails when that one is more than ``tolerance`` away; a lookup without
    a stamp takes the newest transforms, and fails when a dynamic one is older than
    ``max_age``.

    :param max_age: newest-lookups: dynamic transforms older than this [s] are missing (0: never)
    :param history: transforms kept per frame
    :param tolerance: stamped lookups: the largest gap to the nearest transform [s]
    """

    def __init__(self, max_age=0.0, history=100, tolerance=0.5):
        self.max_age = max_age
        self.history = history
        self.tolerance = tolerance
        self._lock = threading.Lock()
        # child -> (parent, static, [(stamp [s], received [monotonic s], (4, 4) T_parent_child)])
        self._edges = {}

    def add(self, parent, child, matrix, static=False, stamp=0.0, received=None):
        """Store ``child``'s pose in ``parent`` as a (4, 4) transform at ``stamp`` [s]."""
        if not parent or not child or parent.lstrip('/') == child.lstrip('/'):
            raise ValueError(f'a transform needs two different frames, got {parent!r} -> '
                             f'{child!r}')
        received = time.monotonic() if received is None else received
        parent, child = parent.lstrip('/'), child.lstrip('/')
        entry = (float(stamp), received, np.asarray(matrix, float))
        with self._lock:
            old = self._edges.get(child)
            entries = [] if old is None or old[0] != parent or static else old[2]
            entries = (entries + [entry])[-self.history:]
            self._edges[child] = (parent, static, entries)

    def _edge(self, frame, stamp, now):
        parent, static, entries = self._edges[frame]
        if static:
            return parent, entries[-1][2]
        if stamp is None:
            _, received, matrix = entries[-1]
            if self.max_age > 0 and now - received > self.max_age:
                raise TransformUnavailable(f'the transform {parent} -> {frame} is '
                                           f'{now - received:.1f} s old (limit '
                                           f'{self.max_age:.1f} s)')
            return parent, matrix
        nearest = min(entries, key=lambda entry: abs(entry[0] - stamp))
        if abs(nearest[0] - stamp) > self.tolerance:
            raise TransformUnavailable(f'no transform {parent} -> {frame} near {stamp:.3f} s '
                                       f'(nearest {nearest[0]:.3f} s)')
        return parent, nearest[2]

    def _to_root(self, frame, stamp, now):
        """Return (root frame, (4, 4) T_root_frame)."""
        matrix, seen = np.eye(4), [frame]
        while frame in self._edges:
            parent, edge = self._edge(frame, stamp, now)
            matrix = edge @ matrix
            frame = parent
            if frame in seen:
                raise TransformUnavailable(f'the frames form a loop: {" -> ".join(seen)}')
            seen.append(frame)
        return frame, matrix

    def lookup(self, target, source, stamp=None, now=None) -> np.ndarray:
        """
        Return T_target_source, which maps points in ``source`` into ``target``.

        :param stamp: time [s] of the transform; None for the newest
        :raises TransformUnavailable: naming both frames and what is missing
        """
        target, source = target.lstrip('/'), source.lstrip('/')
        if target == source:
            return np.eye(4)
        now = time.monotonic() if now is None else now
        with self._lock:
            known = set(self._edges) | {edge[0] for edge in self._edges.values()}
            for frame in (target, source):
                if frame not in known:
                    raise TransformUnavailable(f'no transform from {source!r} to {target!r}: '
                                               f'frame {frame!r} does not exist')
            root_t, root_from_target = self._to_root(target, stamp, now)
            root_s, root_from_source = self._to_root(source, stamp, now)
        if root_t != root_s:
            raise TransformUnavailable(f'no transform from {source!r} to {target!r}: they '
                                       f'are in two unconnected trees ({root_s!r}, {root_t!r})')
        return np.linalg.inv(root_from_target) @ root_from_source


def planar_pose(matrix):
    """Return (x, y, yaw) of a (4, 4) pose: its position and heading in the xy-plane."""
    matrix = np.asarray(matrix)
    return (float(matrix[0, 3]), float(matrix[1, 3]),
            float(math.atan2(matrix[1, 0], matrix[0, 0])))


def transform_scene_tokens(tokens, matrix, frame_id):
    """
    Return SceneTokens expressed in another frame.

    Centres move with the full transform; the normalised point samples turn with its rotation
    (they stay centred and inside the unit sphere); a box becomes the axis-aligned box that
    encloses the turned box (exact for turns by multiples of 90 degrees).

    :param matrix: (4, 4) T_new_old
    """
    matrix = np.asarray(matrix, np.float64)
    rotation = matrix[:3, :3]
    points = tokens.points.copy()                                    # (K, P, 6)
    points[..., :3] = points[..., :3] @ rotation.T.astype(np.float32)
    centers = (tokens.centers.astype(np.float64) @ rotation.T
               + matrix[:3, 3]).astype(np.float32)                   # (K, 3)
    sizes = (tokens.sizes.astype(np.float64) @ np.abs(rotation).T).astype(np.float32)  # (K, 3)
    return replace(tokens, points=points, centers=centers, sizes=sizes, frame_id=frame_id)


class Transforms:
    """
    Look transforms up for a node: tf2_ros when installed, else the fallback tree.

    :param node: an rclpy Node
    :param max_age: fallback only: dynamic transforms older than this [s] are missing
    """

    def __init__(self, node, max_age=10.0, callback_group=None):
        self.node = node
        try:
            import tf2_ros
        except ImportError:
            tf2_ros = None
        if tf2_ros is not None:
            self.backend = 'tf2_ros'
            self._buffer = tf2_ros.Buffer()
            self._listener = tf2_ros.TransformListener(self._buffer, node)
            return
        from leo_ros.ros.qos import latched_qos
        from rclpy.qos import QoSProfile
        try:
            from tf2_msgs.msg import TFMessage
        except ImportError as error:
            raise ImportError('neither tf2_ros nor tf2_msgs is importable: run make build '
                              '(it builds tf2_msgs where the ROS wheels lack it)') from error
        self.backend = 'leo_ros.ros.tf (tf2_ros is not installed)'
        self.tree = TransformTree(max_age=max_age)
        node.create_subscription(TFMessage, '/tf', lambda msg: self._store(msg, False),
                                 QoSProfile(depth=100), callback_group=callback_group)
        node.create_subscription(TFMessage, '/tf_static', lambda msg: self._store(msg, True),
                                 latched_qos(100), callback_group=callback_group)

    def _store(self, msg, static):
        from leo_ros.ros.conversions import (ConversionError, stamp_to_seconds,
                                             transform_to_matrix)
        for transform in msg.transforms:
            try:
                self.tree.add(transform.header.frame_id, transform.child_frame_id,
                              transform_to_matrix(transform.transform), static=static,
                              stamp=stamp_to_seconds(transform.header.stamp))
            except (ConversionError, ValueError):
                continue          # a malformed transform is not stored; lookups say so

    def lookup(self, target, source, timeout=0.0, stamp=None) -> np.ndarray:
        """
        Return T_target_source, waiting up to ``timeout`` seconds for it.

        :param stamp: a builtin_interfaces/Time to look the transform up at; None: the newest
        :raises TransformUnavailable: with tf2's reason or the fallback's, naming the frames
        """
        if self.backend == 'tf2_ros':
            return self._lookup_tf2(target, source, timeout, stamp)
        from leo_ros.ros.conversions import stamp_to_seconds
        seconds = None if stamp is None else stamp_to_seconds(stamp)
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.tree.lookup(target, source, seconds)
            except TransformUnavailable:
                if time.monotonic() >= deadline:
                    raise
            time.sleep(0.01)

    def _lookup_tf2(self, target, source, timeout, stamp):
        from leo_ros.ros.conversions import transform_to_matrix
        from rclpy.duration import Duration
        from rclpy.time import Time
        when = Time() if stamp is None else Time.from_msg(stamp)
        try:
            stamped = self._buffer.lookup_transform(target, source, when,
                                                    timeout=Duration(seconds=timeout))
        except Exception as error:  # tf2 raises LookupException, ConnectivityException, ...
            raise TransformUnavailable(f'no transform from {source!r} to {target!r}: '
                                       f'{type(error).__name__}: {error}') from error
        return transform_to_matrix(stamped.transform)


class TransformPublisher:
    """Send transforms on /tf and /tf_static (tf2_ros broadcasters where installed)."""

    def __init__(self, node):
        try:
            import tf2_ros
        except ImportError:
            tf2_ros = None
        self._static = {}
        if tf2_ros is not None:
            self._dynamic = tf2_ros.TransformBroadcaster(node)
            self._static_broadcaster = tf2_ros.StaticTransformBroadcaster(node)
            self._send = self._dynamic.sendTransform
            self._send_static = self._static_broadcaster.sendTransform
            return
        from leo_ros.ros.qos import latched_qos
        from rclpy.qos import QoSProfile
        from tf2_msgs.msg import TFMessage
        dynamic = node.create_publisher(TFMessage, '/tf', QoSProfile(depth=100))
        static = node.create_publisher(TFMessage, '/tf_static', latched_qos())
        self._send = lambda transforms: dynamic.publish(TFMessage(transforms=transforms))
        # Like tf2's static broadcaster: one latched message with every static transform.
        self._send_static = lambda transforms: static.publish(TFMessage(
            transforms=list(self._static.values())))

    def send(self, transforms):
        """Send dynamic transforms (a list of TransformStamped)."""
        self._send(list(transforms))

    def send_static(self, transforms):
        """Send static transforms; they are latched for late subscribers."""
        transforms = list(transforms)
        for transform in transforms:
            self._static[transform.child_frame_id] = transform
        self._send_static(transforms)
