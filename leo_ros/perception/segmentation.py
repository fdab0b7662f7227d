"""
Model-free object segmentation of point clouds (numpy + scipy, no ROS).

Organized clouds (H, W, 3), as depth cameras give them, use their image structure:

1. normals from differences of image neighbours on a lightly smoothed point image;
2. support surfaces (table tops, floor, walls) are planes found by RANSAC that span at least
   ``plane_min_extent`` in both directions; points on them are support, points behind them
   are background;
3. the remaining points are joined to their 4 image neighbours unless the step between them is
   a depth discontinuity (longer than ``neighbor_distance`` times the range) or a concave crease
   (normals turning towards each other by more than ``concave_angle_deg``), where objects touch
   each other or their support;
4. connected components of that graph with at least ``min_object_points`` points are objects,
   largest first, at most ``max_objects``.

Unorganized clouds (N, 3) are voxelised, the same plane search removes support surfaces, and
voxels closer than ``cluster_distance`` are clustered (scipy cKDTree + connected components).

Labels: ``>= 0`` object index, :data:`NO_OBJECT` (-1) invalid or background,
:data:`SUPPORT` (-2) support surface.
"""

from dataclasses import dataclass, field
import math

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

#: label of invalid points and background (behind a support surface, too-small clusters)
NO_OBJECT = -1
#: label of points on a support surface (table, floor, wall)
SUPPORT = -2


@dataclass
class SegmentationConfig:
    """
    Parameters of :func:`segment`; distances in metres.

    Distances that grow with sensor noise are given at 1 m range and scaled by the range
    (``neighbor_distance``) or its square (``plane_distance``, depth noise of structured light
    and time-of-flight cameras grows about quadratically).
    """

    plane_distance: float = 0.008       # support inlier distance at 1 m [m], times range^2
    plane_min_extent: float = 0.4       # a support plane spans this in both directions [m]
    plane_min_fraction: float = 0.1     # ... and holds this fraction of the valid points
    plane_normal_angle_deg: float = 25.0   # RANSAC inliers' normals within this of the plane's
    max_planes: int = 3                 # support planes searched per frame
    ransac_iterations: int = 64
    ransac_samples: int = 1000          # points scored per hypothesis
    neighbor_distance: float = 0.01     # largest step between image neighbours at 1 m [m]
    concave_angle_deg: float = 15.0     # cut where normals turn inwards by more than this
    normal_step: int = 2                # half-width of the normal stencil [pixels]
    smoothing: int = 3                  # box filter on the point image [pixels]
    stride: int = 3                     # organized clouds: graph on every stride-th pixel
    min_object_points: int = 300
    max_objects: int = 60
    voxel_size: float = 0.01            # unorganized clouds only [m]
    cluster_distance: float = 0.025     # unorganized clouds only [m]
    max_range: float = 10.0             # points farther than this from the sensor are ignored [m]
    seed: int = 0

    def __post_init__(self):
        positive = ('plane_distance', 'plane_min_extent', 'neighbor_distance', 'voxel_size',
                    'cluster_distance', 'max_range')
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f'SegmentationConfig.{name} must be > 0, got {value!r}')
        for name in ('max_planes', 'ransac_iterations', 'ransac_samples', 'normal_step',
                     'smoothing', 'stride', 'min_object_points', 'max_objects'):
            value = getattr(self, name)
            minimum = 0 if name == 'max_planes' else 1
            if not isinstance(value, (int, np.integer)) or value < minimum:
                raise ValueError(f'SegmentationConfig.{name} must be an integer >= {minimum}, '
                                 f'got {value!r}')
        if not 0.0 <= self.plane_min_fraction <= 1.0:
            raise ValueError('SegmentationConfig.plane_min_fraction must be in [0, 1], '
                             f'got {self.plane_min_fraction!r}')
        for name in ('plane_normal_angle_deg', 'concave_angle_deg'):
            value = getattr(self, name)
            if not 0.0 < value < 90.0:
                raise ValueError(f'SegmentationConfig.{name} must be in (0, 90), got {value!r}')


@dataclass
class Plane:
    """A support plane ``normal . p + offset = 0``, normal towards the sensor."""

    normal: np.ndarray      # (3,) unit
    offset: float
    inliers: int            # points labelled support


@dataclass
class Segmentation:
    """Per-point labels and what was found."""

    labels: np.ndarray              # (H, W) or (N,) int32: object index, NO_OBJECT or SUPPORT
    num_objects: int
    planes: list = field(default_factory=list)
    dropped_objects: int = 0        # components over max_objects, left out (smallest first)

    def object_indices(self):
        """Return, per object, the flat indices of its points (largest object first)."""
        flat = self.labels.reshape(-1)
        on_object = np.flatnonzero(flat >= 0)              # sort only the object points
        order = on_object[np.argsort(flat[on_object], kind='stable')]
        sorted_labels = flat[order]
        starts = np.searchsorted(sorted_labels, np.arange(self.num_objects + 1))
        return [order[starts[k]:starts[k + 1]] for k in range(self.num_objects)]


def segmentation_from_instances(instances, xyz, config=None) -> Segmentation:
    """
    Take objects from per-point instance ids instead of geometry.

    For sensors that come with instance masks: a simulator's ground truth (LEO reads
    ground-truth object masks too) or an upstream instance segmenter. Convention: ids > 0 are
    objects, 0 is support (floor, walls), negative is nothing.

    :param instances: (H, W) or (N,) integer ids, shaped like ``xyz[..., 0]``
    :param xyz: the matching points; invalid (NaN) points belong to no object
    :return: a Segmentation with objects ordered largest first, at most ``max_objects``
    """
    config = config or SegmentationConfig()
    instances = np.asarray(instances)
    if instances.shape != np.shape(xyz)[:-1]:
        raise ValueError(f'instance ids shape {instances.shape} does not match the cloud '
                         f'{np.shape(xyz)[:-1]}')
    valid = np.isfinite(np.asarray(xyz, np.float32)).all(axis=-1)
    labels = np.full(instances.shape, NO_OBJECT, np.int32)
    labels[valid & (instances == 0)] = SUPPORT
    ids, counts = np.unique(instances[valid & (instances > 0)], return_counts=True)
    keep = counts >= config.min_object_points
    ids, counts = ids[keep], counts[keep]
    order = np.argsort(-counts, kind='stable')
    dropped = max(0, len(order) - config.max_objects)
    order = order[:config.max_objects]
    lookup = np.full(int(ids.max()) + 1 if len(ids) else 1, NO_OBJECT, np.int32)
    lookup[ids[order]] = np.arange(len(order), dtype=np.int32)
    on_object = valid & (instances > 0) & (instances < len(lookup))
    labels[on_object] = lookup[instances[on_object]]
    return Segmentation(labels=labels, num_objects=len(order), dropped_objects=dropped)


def segment(xyz, config=None, viewpoint=None) -> Segmentation:
    """
    Segment a cloud into support surfaces and objects.

    :param xyz: (H, W, 3) organized or (N, 3) unorganized points [m]; NaN/inf are invalid
    :param config: :class:`SegmentationConfig` (defaults if None)
    :param viewpoint: (3,) sensor position in the cloud's frame (default: the origin)
    :return: the segmentation, labels shaped like ``xyz[..., 0]``
    """
    config = config or SegmentationConfig()
    xyz = np.asarray(xyz)
    if xyz.ndim == 3 and xyz.shape[2] == 3:
        return segment_organized(xyz, config, viewpoint)
    if xyz.ndim == 2 and xyz.shape[1] == 3:
        return segment_unorganized(xyz, config, viewpoint)
    raise ValueError(f'xyz must be (H, W, 3) or (N, 3), got {xyz.shape}')


def _dot(a, b):
    """Return the dot product over the last axis without BLAS (its threads stall under load)."""
    return np.einsum('...k,...k->...', a, b)


def _outer_dot(a, b):
    """Return (A, 3) x (B, 3) -> (A, B) dot products, elementwise (no BLAS)."""
    return a[:, 0:1] * b[:, 0] + a[:, 1:2] * b[:, 1] + a[:, 2:3] * b[:, 2]


def _valid_points(xyz, config, viewpoint):
    """Return float32 points with invalid ones zeroed, the valid mask and range from sensor."""
    points = np.asarray(xyz, dtype=np.float32)
    if viewpoint is not None:
        points = points - np.asarray(viewpoint, np.float32)
    with np.errstate(invalid='ignore', over='ignore'):
        ranges = np.sqrt(_dot(points, points))      # NaN/inf stay non-finite
        valid = np.isfinite(ranges) & (ranges > 1e-6) & (ranges < config.max_range)
    points = np.where(valid[..., None], points, np.float32(0))
    ranges = np.where(valid, ranges, np.float32(0)).astype(np.float32)
    return points, valid, ranges


def _dot3(a, b):
    """Return the dot product of planar (3, ...) arrays over their first axis."""
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _planar_points(xyz, config, viewpoint):
    """
    Return planar float32 points (3, H, W), zero where invalid, the valid mask and the range.

    Planar (channel-first) arrays keep each coordinate contiguous, so the per-pixel arithmetic
    below runs on plain 2D arrays.
    """
    points = np.array(np.moveaxis(xyz, -1, 0), dtype=np.float32)         # (3, H, W) copy
    if viewpoint is not None:
        points -= np.asarray(viewpoint, np.float32)[:, None, None]
    with np.errstate(invalid='ignore', over='ignore'):
        ranges = np.sqrt(_dot3(points, points))                          # NaN/inf stay
        valid = (ranges > 1e-6) & (ranges < config.max_range)            # False for NaN
    # np.where, not masked assignment: a scattered mask is several times slower.
    points = np.where(valid, points, np.float32(0))
    ranges = np.where(valid, ranges, np.float32(0))
    return points, valid, ranges


def organized_normals(points, valid, smoothing, step):
    """
    Return normals of an organized cloud from neighbour differences on a box-filtered image.

    :param points: (3, H, W) float32 planar, zeros where invalid
    :param valid: (H, W) bool
    :param smoothing: box filter size [pixels]
    :param step: half-width of the central differences [pixels]
    :return: (3, H, W) unit normals facing the sensor, (H, W) bool where they are defined
    """
    weight = ndimage.uniform_filter(valid.astype(np.float32), smoothing)        # (H, W)
    smooth = ndimage.uniform_filter(points, size=(1, smoothing, smoothing))    # (3, H, W)
    defined = valid & (weight > 0.5)
    smooth /= np.maximum(weight, 1e-6)
    horizontal = np.zeros_like(smooth)
    vertical = np.zeros_like(smooth)
    horizontal[:, :, step:-step] = smooth[:, :, 2 * step:] - smooth[:, :, :-2 * step]
    vertical[:, step:-step] = smooth[:, 2 * step:] - smooth[:, :-2 * step]
    ends = np.zeros_like(defined)
    ends[step:-step, step:-step] = (defined[step:-step, 2 * step:]
                                    & defined[step:-step, :-2 * step]
                                    & defined[2 * step:, step:-step]
                                    & defined[:-2 * step, step:-step])
    hx, hy, hz = horizontal
    vx, vy, vz = vertical
    normals = np.stack([hy * vz - hz * vy, hz * vx - hx * vz, hx * vy - hy * vx])  # (3, H, W)
    length = np.sqrt(_dot3(normals, normals))
    defined &= ends & (length > 1e-12)
    # Unit length, facing the sensor at the origin (n . p < 0).
    scale = np.where(_dot3(normals, points) > 0, -1.0, 1.0).astype(np.float32)
    normals *= scale / np.maximum(length, 1e-12)
    return normals, defined


def fit_support_planes(points, ranges, candidates, normals, config, rng):
    """
    Find large support planes one after another with vectorised RANSAC.

    :param points: (3, M) float32 valid points, planar
    :param ranges: (M,) float32 distance from the sensor
    :param candidates: (M,) bool points that may still belong to a plane
    :param normals: (3, M) float32 planar unit normals or None, with ``normal_ok`` folded into
        ``candidates`` by the caller
    :return: list of :class:`Plane`, and (M,) int8: 0 free, 1 support, 2 behind a support
    """
    total = points.shape[1]
    state = np.zeros(total, np.int8)
    planes = []
    threshold = config.plane_distance * np.maximum(ranges, 0.3) ** 2     # (M,)
    cos_normal = math.cos(math.radians(config.plane_normal_angle_deg))
    for _ in range(config.max_planes):
        free = np.flatnonzero(candidates & (state == 0))
        if len(free) < max(3, config.plane_min_fraction * total) or len(free) < 3:
            break
        sample = free[rng.integers(0, len(free), size=config.ransac_samples)]
        pts, thr = points[:, sample].T, threshold[sample]                # (S, 3), (S,)
        triples = rng.integers(0, len(sample), size=(config.ransac_iterations, 3))
        a, b, c = pts[triples[:, 0]], pts[triples[:, 1]], pts[triples[:, 2]]    # (I, 3)
        hyp = np.cross(b - a, c - a)
        length = np.linalg.norm(hyp, axis=1)
        good = length > 1e-9
        if not good.any():
            break
        hyp = hyp[good] / length[good, None]                            # (I, 3)
        offsets = -(hyp * a[good]).sum(axis=1)                          # (I,)
        inlier = np.abs(_outer_dot(pts, hyp) + offsets) < thr[:, None]  # (S, I)
        if normals is not None:
            inlier &= np.abs(_outer_dot(normals[:, sample].T, hyp)) > cos_normal
        best = int(inlier.sum(axis=0).argmax())
        chosen = pts[inlier[:, best]]
        if len(chosen) < 3:
            break
        normal, offset = _least_squares_plane(chosen)
        if offset < 0:      # the sensor (origin) on the positive side
            normal, offset = -normal, -offset
        normal32 = normal.astype(np.float32)
        height = _dot3(points, normal32) + np.float32(offset)           # (M,)
        free_now = state == 0
        on_plane = (np.abs(height) < threshold) & free_now
        inliers = np.flatnonzero(on_plane)
        if len(inliers) < config.plane_min_fraction * total:
            break
        if len(inliers) > 5000:
            inliers = inliers[rng.integers(0, len(inliers), 5000)]
        if not _spans(points[:, inliers].T, normal, config.plane_min_extent):
            break
        behind = (height < -threshold) & free_now
        state = np.where(on_plane, np.int8(1), np.where(behind, np.int8(2), state))
        planes.append(Plane(normal=normal.astype(np.float32), offset=float(offset),
                            inliers=int(on_plane.sum())))
    return planes, state


def _least_squares_plane(points):
    """Return the unit normal and offset of the plane through (K, 3) points (SVD)."""
    centre = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - centre, full_matrices=False)
    normal = vt[2]
    return normal, -float(normal @ centre)


def _spans(points, normal, extent):
    """Return True if (K, 3) points on a plane cover ``extent`` in both in-plane directions."""
    centred = points - points.mean(axis=0)
    centred = centred - np.outer(centred @ normal, normal)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    coords = centred @ vt[:2].T                                         # (K, 2)
    low, high = np.percentile(coords, [2, 98], axis=0)
    return bool(((high - low) >= extent).all())


def segment_organized(xyz, config, viewpoint=None) -> Segmentation:
    """
    Segment an organized (H, W, 3) cloud; see the module docstring.

    The graph is built on every ``stride``-th pixel; full-resolution points then take the label
    of the nearest coarse pixel of their block within ``neighbor_distance``, and support planes
    are tested on every point.
    """
    height, width = xyz.shape[:2]
    stride = config.stride
    rng = np.random.default_rng(config.seed)
    labels = np.full((height, width), NO_OBJECT, np.int32)
    coarse_xyz = xyz[::stride, ::stride]                                 # (h, w, 3) view
    points, valid, ranges = _planar_points(coarse_xyz, config, viewpoint)  # (3, h, w)
    coarse_h, coarse_w = valid.shape
    if min(coarse_h, coarse_w) <= 2 * config.normal_step + 1 or not valid.any():
        return Segmentation(labels=labels, num_objects=0)
    normals, normal_ok = organized_normals(points, valid, config.smoothing, config.normal_step)

    flat_valid = np.flatnonzero(valid)
    planes, state = fit_support_planes(
        points.reshape(3, -1)[:, flat_valid], ranges.reshape(-1)[flat_valid],
        normal_ok.reshape(-1)[flat_valid], normals.reshape(3, -1)[:, flat_valid], config, rng)
    state_image = np.full(coarse_h * coarse_w, 3, np.int8)              # 3: invalid
    state_image[flat_valid] = state
    state_image = state_image.reshape(coarse_h, coarse_w)
    candidate = state_image == 0                                        # (h, w)

    # Edges to the right and down neighbours on one surface (no depth discontinuity); edges
    # that touch a concave crease pixel are cut, and crease pixels join their object later.
    limit = (config.neighbor_distance * stride) * ranges                 # (h, w)
    crease = (_creases(points, normals, normal_ok, limit, config, axis=1)
              | _creases(points, normals, normal_ok, limit, config, axis=0)) & candidate
    near_h = _near(points, candidate, limit, axis=1)                     # (h, w - 1)
    near_v = _near(points, candidate, limit, axis=0)                     # (h - 1, w)
    core = candidate & ~crease
    join_h = near_h & core[:, :-1] & core[:, 1:]
    join_v = near_v & core[:-1] & core[1:]

    index = np.full((coarse_h, coarse_w), -1, np.int64)
    count = int(core.sum())
    index[core] = np.arange(count)
    rows = np.concatenate([index[:, :-1][join_h], index[:-1][join_v]])
    cols = np.concatenate([index[:, 1:][join_h], index[1:][join_v]])
    graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(count, count))
    _, component = connected_components(graph, directed=False)
    sizes = np.bincount(component) * (stride * stride)                  # in full-res points
    object_of_component, num_objects, dropped = _rank_components(sizes, config)
    coarse_labels = np.full((coarse_h, coarse_w), NO_OBJECT, np.int32)
    coarse_labels[core] = object_of_component[component]
    _grow_labels(coarse_labels, candidate & ~core, near_h, near_v, config.normal_step + 1)
    if stride == 1:
        labels = coarse_labels
        labels[state_image == 1] = SUPPORT
    else:
        labels = _upsample_labels(xyz, coarse_labels, state_image, points, planes, config,
                                  viewpoint)
        labels, num_objects = _recount(labels, num_objects, config)
    return Segmentation(labels=labels, num_objects=num_objects, planes=planes,
                        dropped_objects=dropped)


def _recount(labels, num_objects, config):
    """
    Re-rank objects by their full-resolution size; drop those under ``min_object_points``.

    :param labels: (H, W) int32 labels (SUPPORT = -2, NO_OBJECT = -1, objects >= 0)
    :return: relabelled (H, W) int32 labels and the new number of objects
    """
    sizes = np.bincount(labels.reshape(-1) + 2, minlength=num_objects + 2)[2:]   # (K,)
    order = np.argsort(-sizes, kind='stable')
    kept = order[sizes[order] >= config.min_object_points]
    if len(kept) == num_objects and (kept == np.arange(num_objects)).all():
        return labels, num_objects
    lookup = np.full(num_objects + 2, NO_OBJECT, np.int32)              # index: label + 2
    lookup[0] = SUPPORT
    lookup[kept + 2] = np.arange(len(kept), dtype=np.int32)
    return lookup[labels + 2], len(kept)


def _upsample_labels(xyz, coarse_labels, coarse_state, coarse_points, planes, config,
                     viewpoint):
    """
    Carry coarse labels to every point of an organized cloud.

    Each full-resolution point belongs to the block of one coarse pixel. In a support block, a
    point with a finite depth is support. In an object block, a point takes the object label if
    it is within ``neighbor_distance * stride`` (at 1 m) of the coarse point and above every
    support plane. Everything else is NO_OBJECT.

    :param xyz: (H, W, 3) full-resolution points
    :param coarse_labels: (h, w) labels of every ``stride``-th pixel
    :param coarse_state: (h, w) int8 plane state of those pixels (1 support)
    :param coarse_points: (3, h, w) planar coarse points, viewpoint removed
    :return: (H, W) int32 labels
    """
    stride = config.stride
    height, width = xyz.shape[:2]
    block = np.where(coarse_state == 1, SUPPORT, NO_OBJECT).astype(np.int32)
    labels = np.repeat(np.repeat(block, stride, axis=0), stride, axis=1)[:height, :width]
    # A new contiguous array (written through a flat view below); invalid depth is no support.
    labels = np.where(np.isfinite(xyz[..., 2]), labels, np.int32(NO_OBJECT))   # (H, W)
    rows, cols = np.nonzero(coarse_labels >= 0)                         # (K,) coarse pixels
    object_labels = coarse_labels[rows, cols]
    anchors = coarse_points[:, rows, cols]                               # (3, K)
    bound = (config.neighbor_distance * stride) ** 2 * _dot3(anchors, anchors)
    flat_xyz = xyz.reshape(-1, 3)
    flat_labels = labels.reshape(-1)
    offset = None if viewpoint is None else np.asarray(viewpoint, np.float32)
    for row in range(stride):
        for col in range(stride):
            full_rows, full_cols = rows * stride + row, cols * stride + col
            inside = (full_rows < height) & (full_cols < width)
            index = full_rows[inside] * width + full_cols[inside]        # (K',)
            points = flat_xyz[index].astype(np.float32)                  # (K', 3)
            if offset is not None:
                points -= offset
            points = points.T                                            # (3, K')
            with np.errstate(invalid='ignore', over='ignore'):
                gap = points - anchors[:, inside]
                take = _dot3(gap, gap) < bound[inside]                  # False for NaN
                squared_range = _dot3(points, points)
                for plane in planes:
                    normal = plane.normal
                    plane_height = (normal[0] * points[0] + normal[1] * points[1]
                                    + normal[2] * points[2] + np.float32(plane.offset))
                    take &= plane_height > config.plane_distance * np.maximum(squared_range, 0.09)
            flat_labels[index] = np.where(take, object_labels[inside], NO_OBJECT)
    return labels


def _shifted(array, axis, start, stop):
    """
    Return ``array[start:size + stop]`` along image ``axis`` (a view; stop 0 means the end).

    The image axes are the last two, so planar (3, H, W) and (H, W) arrays both work.
    """
    axis = array.ndim - 2 + axis
    index = [slice(None)] * array.ndim
    index[axis] = slice(start, array.shape[axis] + stop if stop else None)
    return array[tuple(index)]


def _near(points, candidate, limit, axis):
    """
    Return which neighbour pairs along ``axis`` are closer than the depth-scaled limit.

    :return: (h, w - 1) for axis 1 or (h - 1, w) for axis 0, bool
    """
    step = _shifted(points, axis, 0, -1) - _shifted(points, axis, 1, 0)
    limit_ab = np.minimum(_shifted(limit, axis, 0, -1), _shifted(limit, axis, 1, 0))
    return (_shifted(candidate, axis, 0, -1) & _shifted(candidate, axis, 1, 0)
            & (_dot3(step, step) < limit_ab ** 2))


def _creases(points, normals, normal_ok, limit, config, axis):
    """
    Mark pixels on a concave crease along ``axis``.

    Normals ``normal_step`` pixels either side turn towards each other (convexity test of
    LCCP: ``(n_a - n_b) . (p_a - p_b) < 0``) by more than ``concave_angle_deg``.

    :return: (h, w) bool
    """
    gap = config.normal_step
    stop = -2 * gap
    delta = _shifted(points, axis, 0, stop) - _shifted(points, axis, 2 * gap, 0)   # p_a - p_b
    turn = _dot3(_shifted(normals, axis, 0, stop) - _shifted(normals, axis, 2 * gap, 0), delta)
    span = _dot3(delta, delta)
    # Two planes whose normals differ by angle t give |n_a - n_b| = 2 sin(t / 2).
    threshold = 2.0 * math.sin(math.radians(config.concave_angle_deg) / 2.0)
    concave = (_shifted(normal_ok, axis, 0, stop) & _shifted(normal_ok, axis, 2 * gap, 0)
               & (span < (2 * gap * _shifted(limit, axis, 0, stop)) ** 2)
               & (turn < -threshold * np.sqrt(span)))
    crease = np.zeros(normal_ok.shape, bool)
    inner = [slice(None), slice(None)]
    inner[axis] = slice(gap, gap + concave.shape[axis])
    crease[tuple(inner)] = concave
    return crease


def _grow_labels(labels, unlabelled, near_h, near_v, iterations):
    """
    Give unlabelled pixels the object label of a close 4-neighbour, a few rings deep.

    :param labels: (h, w) int32, updated in place
    :param unlabelled: (h, w) bool pixels that may receive a label
    """
    for _ in range(iterations):
        open_pixels = unlabelled & (labels < 0)
        if not open_pixels.any():
            return
        grown = labels.copy()
        # From the right, left, below and above neighbour, where the pair is close.
        for target, source, near in (
                ((slice(None), slice(None, -1)), (slice(None), slice(1, None)), near_h),
                ((slice(None), slice(1, None)), (slice(None), slice(None, -1)), near_h),
                ((slice(None, -1), slice(None)), (slice(1, None), slice(None)), near_v),
                ((slice(1, None), slice(None)), (slice(None, -1), slice(None)), near_v)):
            take = open_pixels[target] & near & (labels[source] >= 0) & (grown[target] < 0)
            grown[target][take] = labels[source][take]
        labels[open_pixels] = grown[open_pixels]


def _rank_components(sizes, config):
    """
    Map components to object indices, largest first, small ones to NO_OBJECT.

    :param sizes: (C,) points per component
    :return: (C,) int32 object index per component, number of objects, components dropped
    """
    big = np.flatnonzero(sizes >= config.min_object_points)
    big = big[np.argsort(-sizes[big], kind='stable')]
    kept = big[:config.max_objects]
    mapping = np.full(len(sizes), NO_OBJECT, np.int32)
    mapping[kept] = np.arange(len(kept), dtype=np.int32)
    return mapping, len(kept), len(big) - len(kept)


def voxelize(points, voxel_size):
    """
    Group points into voxels.

    :param points: (M, 3) float32
    :return: (V, 3) voxel centroids and (M,) voxel index per point
    """
    keys = np.floor(points / voxel_size).astype(np.int64)               # (M, 3)
    keys -= keys.min(axis=0)
    dims = keys.max(axis=0) + 1
    flat = (keys[:, 0] * dims[1] + keys[:, 1]) * dims[2] + keys[:, 2]
    _, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    centroids = np.zeros((len(counts), 3), np.float64)
    np.add.at(centroids, inverse, points)
    return (centroids / counts[:, None]).astype(np.float32), inverse


def segment_unorganized(xyz, config, viewpoint=None) -> Segmentation:
    """Segment an unorganized (N, 3) cloud; see the module docstring."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(config.seed)
    points, valid, _ = _valid_points(xyz, config, viewpoint)
    labels = np.full(len(points), NO_OBJECT, np.int32)
    flat_valid = np.flatnonzero(valid)
    if len(flat_valid) == 0:
        return Segmentation(labels=labels, num_objects=0)
    voxels, inverse = voxelize(points[flat_valid], config.voxel_size)   # (V, 3), (M,)
    voxel_ranges = np.linalg.norm(voxels, axis=1)
    planes, state = fit_support_planes(np.ascontiguousarray(voxels.T), voxel_ranges,
                                       np.ones(len(voxels), bool), None, config, rng)
    point_state = state[inverse]                                        # (M,)
    labels[flat_valid[point_state == 1]] = SUPPORT
    free = np.flatnonzero(state == 0)
    if len(free) == 0:
        return Segmentation(labels=labels, num_objects=0, planes=planes)
    pairs = cKDTree(voxels[free]).query_pairs(config.cluster_distance, output_type='ndarray')
    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])),
                       shape=(len(free), len(free)))
    _, component = connected_components(graph, directed=False)
    voxel_component = np.full(len(voxels), -1, np.int64)
    voxel_component[free] = component
    point_component = voxel_component[inverse]                          # (M,)
    on_object = point_component >= 0
    # Count sizes in points, not voxels, so min_object_points means the same for both paths.
    mapping, num_objects, dropped = _rank_components(
        np.bincount(point_component[on_object]), config)
    labels[flat_valid[on_object]] = mapping[point_component[on_object]]
    return Segmentation(labels=labels, num_objects=num_objects, planes=planes,
                        dropped_objects=dropped)
