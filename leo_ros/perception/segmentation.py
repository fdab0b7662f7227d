"""
Model-free object segmentation of point clouds (numpy + scipy, no ROS).

Organized clouds (H, W, 3), as depth cameras give them, use their image structure
(:mod:`leo_ros.perception.organized` has the steps): one point per block of pixels, normals,
support planes (tables, floors, walls) found by RANSAC, then the rest is split where the
surface is discontinuous in depth, creased inwards (where objects touch each other or their
support: the convexity test of LCCP) or, where geometry alone is ambiguous, changes colour;
regions split only by noise are joined again, and the largest ``max_objects`` with at least
``min_object_points`` points are objects.

Unorganized clouds (N, 3) are voxelised, the same plane search removes support surfaces, and
voxels closer than ``cluster_distance`` are clustered (scipy cKDTree + connected components).

Labels: ``>= 0`` object index, :data:`NO_OBJECT` (-1) invalid or background,
:data:`SUPPORT` (-2) support surface.
"""

from dataclasses import dataclass, field
import math

from leo_ros.perception import organized
# The labels, defined with the organized steps that write them.
from leo_ros.perception.organized import NO_OBJECT, SUPPORT
import numpy as np


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
    neighbor_distance: float = 0.006    # largest step between image neighbours at 1 m [m]
    concave_angle_deg: float = 15.0     # cut where normals turn inwards by more than this
    normal_step: int = 2                # half-width of the normal stencil [pixels]
    smoothing: int = 3                  # box filter on the point image [pixels]
    weak_angle_deg: float = 6.0         # a colour change cuts on a crease of this much ...
    weak_step: float = 0.003            # ... or a step in front of the surface [m at 1 m, r^2]
    color_distance: float = 0.2         # rgb distance of such a colour change (0: none)
    color_unknown_distance: float = 0.0  # rgb distance that cuts where normals are unknown
    color_support_margin: int = 3       # no colour seams this near support [block pixels]
    grow_steps: int = 12                # rings regions grow into crease and normal-less pixels
    merge_cut_ratio: float = 0.3        # join regions whose boundary is less cut than this
    absorb_factor: float = 3.0          # regions under this x min_object_points join a ...
    absorb_share: float = 0.25          # ... neighbour holding this share of their outline
    stride: int = 3                     # organized clouds: one point per stride^2 block
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
        for name in ('weak_step', 'color_distance', 'color_unknown_distance',
                     'merge_cut_ratio', 'absorb_factor', 'absorb_share'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f'SegmentationConfig.{name} must be >= 0, got {value!r}')
        for name in ('merge_cut_ratio', 'absorb_share'):
            if getattr(self, name) > 1.0:
                raise ValueError(f'SegmentationConfig.{name} must be in [0, 1], '
                                 f'got {getattr(self, name)!r}')
        for name in ('max_planes', 'ransac_iterations', 'ransac_samples', 'normal_step',
                     'smoothing', 'stride', 'min_object_points', 'max_objects', 'grow_steps',
                     'color_support_margin'):
            value = getattr(self, name)
            minimum = 0 if name in ('max_planes', 'grow_steps', 'color_support_margin') else 1
            if not isinstance(value, (int, np.integer)) or value < minimum:
                raise ValueError(f'SegmentationConfig.{name} must be an integer >= {minimum}, '
                                 f'got {value!r}')
        if not 0.0 <= self.plane_min_fraction <= 1.0:
            raise ValueError('SegmentationConfig.plane_min_fraction must be in [0, 1], '
                             f'got {self.plane_min_fraction!r}')
        for name in ('plane_normal_angle_deg', 'concave_angle_deg', 'weak_angle_deg'):
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


def segment(xyz, config=None, viewpoint=None, rgb=None) -> Segmentation:
    """
    Segment a cloud into support surfaces and objects.

    :param xyz: (H, W, 3) organized or (N, 3) unorganized points [m]; NaN/inf are invalid
    :param config: :class:`SegmentationConfig` (defaults if None)
    :param viewpoint: (3,) sensor position in the cloud's frame (default: the origin)
    :param rgb: colours shaped like ``xyz`` in [0, 1], or None
    :return: the segmentation, labels shaped like ``xyz[..., 0]``
    """
    config = config or SegmentationConfig()
    xyz = np.asarray(xyz)
    if rgb is not None and np.shape(rgb) != xyz.shape:
        raise ValueError(f'rgb shape {np.shape(rgb)} does not match xyz {xyz.shape}')
    if xyz.ndim == 3 and xyz.shape[2] == 3:
        return segment_organized(xyz, config, viewpoint, rgb)
    if xyz.ndim == 2 and xyz.shape[1] == 3:
        return segment_unorganized(xyz, config, viewpoint)
    raise ValueError(f'xyz must be (H, W, 3) or (N, 3), got {xyz.shape}')


def _outer_dot(a, b):
    """Return (A, 3) x (B, 3) -> (A, B) dot products, elementwise (no BLAS)."""
    return a[:, 0:1] * b[:, 0] + a[:, 1:2] * b[:, 1] + a[:, 2:3] * b[:, 2]


def _valid_points(xyz, config, viewpoint):
    """Return float32 points relative to the viewpoint and which are valid (within range)."""
    points = np.asarray(xyz, dtype=np.float32)
    if viewpoint is not None:
        points = points - np.asarray(viewpoint, np.float32)
    with np.errstate(invalid='ignore', over='ignore'):
        squared = points[..., 0] ** 2 + points[..., 1] ** 2 + points[..., 2] ** 2
        valid = (squared > 1e-12) & (squared < config.max_range ** 2)  # False for NaN/inf
    return points, valid


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
        height = organized.dot3(points, normal32) + np.float32(offset)           # (M,)
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


def segment_organized(xyz, config, viewpoint=None, rgb=None) -> Segmentation:
    """
    Segment an organized (H, W, 3) cloud; the steps are in :mod:`leo_ros.perception.organized`.

    :param rgb: (H, W, 3) colours in [0, 1] or None (then colour does not cut)
    """
    height, width = xyz.shape[:2]
    labels = np.full((height, width), NO_OBJECT, np.int32)
    use_color = rgb is not None and (config.color_distance > 0
                                     or config.color_unknown_distance > 0)
    points, valid, ranges, colors, smooth = organized.block_points(
        xyz, rgb if use_color else None, config, viewpoint)               # (3, h, w), ...
    coarse_h, coarse_w = valid.shape
    if min(coarse_h, coarse_w) <= 2 * config.normal_step + 1 or not valid.any():
        return Segmentation(labels=labels, num_objects=0)
    normals, normal_ok = organized.organized_normals(points, valid, config.smoothing,
                                                     config.normal_step)
    flat_valid = np.flatnonzero(valid)
    planes, state = fit_support_planes(
        points.reshape(3, -1)[:, flat_valid], ranges.reshape(-1)[flat_valid],
        normal_ok.reshape(-1)[flat_valid], normals.reshape(3, -1)[:, flat_valid], config,
        np.random.default_rng(config.seed))
    state_image = np.full(coarse_h * coarse_w, 3, np.int8)              # 3: invalid
    state_image[flat_valid] = state
    state_image = state_image.reshape(coarse_h, coarse_w)
    candidate = state_image == 0                                        # (h, w)
    region, _ = organized.surface_regions(points, normals, normal_ok, ranges, colors,
                                          candidate, config, state_image == 1)   # (h, w)
    on = region >= 0
    sizes = np.bincount(region[on]) * config.stride ** 2                # in full-res points
    object_of_region, num_objects, dropped = _rank_components(sizes, config)
    coarse_labels = np.full((coarse_h, coarse_w), NO_OBJECT, np.int32)
    coarse_labels[on] = object_of_region[region[on]]
    labels = organized.upsample_labels(xyz, coarse_labels, state_image, points, smooth,
                                       planes, config, viewpoint)
    labels, num_objects = organized.recount(labels, num_objects, config)
    return Segmentation(labels=labels, num_objects=num_objects, planes=planes,
                        dropped_objects=dropped)


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
    # Column by column: reductions over axis 0 of an (M, 3) array are several times slower.
    columns = [np.floor(points[:, k] / voxel_size).astype(np.int64) for k in range(3)]
    columns = [c - c.min() for c in columns]
    flat = (columns[0] * (columns[1].max() + 1) + columns[1]) * (columns[2].max() + 1) \
        + columns[2]                                                     # (M,)
    _, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    # bincount with weights: an order of magnitude faster than np.add.at.
    centroids = np.stack([np.bincount(inverse, weights=points[:, k], minlength=len(counts))
                          for k in range(3)], axis=1)                   # (V, 3)
    return (centroids / counts[:, None]).astype(np.float32), inverse


def segment_unorganized(xyz, config, viewpoint=None) -> Segmentation:
    """Segment an unorganized (N, 3) cloud; see the module docstring."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(config.seed)
    points, valid = _valid_points(xyz, config, viewpoint)              # (N, 3), (N,)
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
    _, component = organized.graph_components(len(free), pairs[:, 0], pairs[:, 1])
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
