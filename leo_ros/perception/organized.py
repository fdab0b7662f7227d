"""
Segmentation of organized clouds (H, W, 3) on their image grid (numpy + scipy, no ROS).

:func:`leo_ros.perception.segmentation.segment_organized` runs these steps:

1. **Block grid** (:func:`block_points`). One point per ``stride`` x ``stride`` block: the
   mean of its valid points when they lie on one surface (averages sensor noise; a block with
   a single valid pixel is still a point, so isolated missing pixels leave no holes), else its
   nearest point (no point floats between a foreground and a background surface).
2. **Normals** from central differences on a box-filtered point image.
3. **Support planes** (table, floor, walls) by RANSAC
   (:func:`leo_ros.perception.segmentation.fit_support_planes`).
4. **Cuts** (:func:`surface_regions`). An edge between 4-neighbours is cut at a depth
   discontinuity (a step longer than ``neighbor_distance`` times the range per pixel), and
   where the colour changes (by more than ``color_distance``) on a weak geometric seam (a
   crease of ``weak_angle_deg`` or a step of ``weak_step`` in front of the local surface), or
   by more than ``color_unknown_distance`` where the surface normal is unknown (holes, edges).
   Pixels on a **concave crease** (normals either side turn towards each other by more than
   ``concave_angle_deg``: the convexity test of LCCP) and pixels without a normal seed
   nothing. Colour alone never cuts a surface whose geometry is known, so printed textures
   stay whole.
5. **Regions.** Connected components of the remaining pixels are seeds; they grow a ring per
   step over uncut edges into crease and normal-less pixels (so two seeds meeting through a
   gap in a crease line stop where they meet instead of merging).
6. **Repair.** Regions whose shared boundary is mostly uncut are one surface and join
   (:func:`merge_weak_boundaries`); regions too small to be objects, or up to
   ``absorb_factor`` times that size with ``absorb_share`` of their outline on one neighbour,
   join that neighbour (:func:`absorb_small`): the pieces a printed band, a hole or a concave
   inside cut off.
7. **Full resolution** (:func:`upsample_labels`). Each valid point takes its block's label;
   in blocks across a depth edge or beside support, only when it lies close to the block's
   point and above every support plane.
"""

import math

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

#: label of invalid points and background (behind a support surface, too-small clusters)
NO_OBJECT = -1
#: label of points on a support surface (table, floor, wall)
SUPPORT = -2


def dot3(a, b):
    """Return the dot product of planar (3, ...) arrays over their first axis."""
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def surface_regions(points, normals, normal_ok, ranges, colors, candidate, config,
                    support=None):
    """
    Split the non-support surface into regions, one per object (steps 4 to 6 above).

    :param points: (3, h, w) float32 block points
    :param normals: (3, h, w) float32 unit normals, ``normal_ok`` (h, w) bool where defined
    :param ranges: (h, w) float32 distance from the sensor
    :param colors: (3, h, w) float32 block colours in [0, 1], or None
    :param candidate: (h, w) bool pixels that may belong to an object
    :param support: (h, w) bool pixels on a support plane, or None
    :return: (h, w) int64 region per pixel (-1 none), number of regions
    """
    limit = (config.neighbor_distance * config.stride) * ranges          # (h, w)
    strong = angle_threshold(config.concave_angle_deg)
    weak_value = angle_threshold(config.weak_angle_deg)
    crease = np.zeros(candidate.shape, bool)
    weak = np.zeros(candidate.shape, bool)
    for axis in (0, 1):
        value = concavity(points, normals, normal_ok, limit, config.normal_step, axis)
        crease |= value > strong
        weak |= value > weak_value
    crease &= candidate
    if support is not None and config.color_support_margin > 0 and support.any():
        # Where an object meets its support the crease is no seam between objects: a printed
        # band near an object's foot must not cut it off.
        weak &= ~ndimage.binary_dilation(support, iterations=config.color_support_margin)
    near = [near_pairs(points, candidate, limit, axis) for axis in (1, 0)]    # h, v edges
    uncut = list(near)
    if colors is not None:
        uncut = [n & ~colour_cuts(points, normals, normal_ok, colors, candidate,
                                  weak & candidate, ranges, config, axis)
                 for n, axis in zip(near, (1, 0))]
    core = candidate & ~crease & normal_ok
    labels, count = components(core, uncut[0], uncut[1])
    grow(labels, candidate, uncut[0], uncut[1], config.grow_steps)
    if config.merge_cut_ratio > 0:
        strong_h = ~uncut[0] | crease[:, :-1] | crease[:, 1:]
        strong_v = ~uncut[1] | crease[:-1] | crease[1:]
        labels, count = merge_weak_boundaries(labels, count, near[0], near[1], strong_h,
                                              strong_v, config.merge_cut_ratio)
    block = config.stride ** 2
    return absorb_small(labels, count, near[0], near[1], -(-config.min_object_points // block),
                        int(config.absorb_factor * config.min_object_points) // block,
                        config.absorb_share)


def block_points(xyz, rgb, config, viewpoint=None):
    """
    Return one point and one colour per ``stride`` x ``stride`` block of an organized cloud.

    Blocks cover ``(H // stride) * stride`` rows and columns; the few points of a partial
    last block row or column are left out.

    :param xyz: (H, W, 3) points, NaN/inf invalid
    :param rgb: (H, W, 3) colours in [0, 1] or None
    :return: planar points (3, h, w) float32 (viewpoint removed, 0 where invalid), valid
        (h, w) bool, range (h, w) float32, colours (3, h, w) float32 or None, and smooth
        (h, w) bool: the block's valid points lie on one surface
    """
    stride = config.stride
    h, w = xyz.shape[0] // stride, xyz.shape[1] // stride
    planar = np.ascontiguousarray(np.moveaxis(xyz[:h * stride, :w * stride], -1, 0),
                                  dtype=np.float32)                         # (3, H', W')
    if viewpoint is not None:
        planar -= np.asarray(viewpoint, np.float32)[:, None, None]
    with np.errstate(invalid='ignore', over='ignore'):
        squared = dot3(planar, planar)                                      # (H', W')
        ok = (squared > 1e-12) & (squared < config.max_range ** 2)          # False for NaN
    planar = np.where(ok, planar, np.float32(0))
    count = _block_sum(ok.astype(np.float32), stride)                       # (h, w)
    valid = count > 0
    low = _block_reduce(np.where(ok, squared, np.float32(np.inf)), stride, np.minimum)
    high = _block_reduce(np.where(ok, squared, np.float32(0)), stride, np.maximum)
    # Blocks on one surface: the mean of their valid points; others: the nearest point.
    spread = (1.0 + config.neighbor_distance * stride) ** 2
    smooth = valid & (high < low * spread)
    scale = 1.0 / np.maximum(count, 1)
    points = _block_sum(planar, stride) * scale                             # (3, h, w)
    colors = None
    if rgb is not None:
        # The colour of each block's middle pixel: colour only marks edges, and averaging it
        # costs as much as the points.
        middle = stride // 2
        colors = np.ascontiguousarray(np.moveaxis(
            rgb[middle:h * stride:stride, middle:w * stride:stride], -1, 0), dtype=np.float32)
    rows, cols = np.nonzero(valid & ~smooth)
    if len(rows):
        # The nearest valid point of each block across a depth edge (few blocks).
        offsets = np.arange(stride)
        full_rows = (rows[:, None] * stride + offsets)[:, :, None]          # (K, s, 1)
        full_cols = (cols[:, None] * stride + offsets)[:, None, :]          # (K, 1, s)
        candidates = np.where(ok[full_rows, full_cols], squared[full_rows, full_cols],
                              np.inf).reshape(len(rows), -1).argmin(axis=1)
        near_rows = rows * stride + candidates // stride
        near_cols = cols * stride + candidates % stride
        points[:, rows, cols] = planar[:, near_rows, near_cols]
    ranges = np.where(valid, np.sqrt(dot3(points, points)), np.float32(0))
    return points.astype(np.float32), valid, ranges.astype(np.float32), colors, smooth


def _block_sum(image, stride):
    """Return the sums of ``stride`` x ``stride`` blocks of (..., H', W'), (..., h, w)."""
    return _block_reduce(image, stride, np.add)


def _block_reduce(image, stride, operation):
    """
    Reduce ``stride`` x ``stride`` blocks of (..., H', W') with a ufunc, (..., h, w).

    Strided slices, one per position in the block: much faster than a reduction over the
    axes of a reshaped (..., h, s, w, s) array.
    """
    total = image[..., ::stride, ::stride].copy()
    for row in range(stride):
        for col in range(stride):
            if row or col:
                operation(total, image[..., row::stride, col::stride], out=total)
    return total


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
    length = np.sqrt(dot3(normals, normals))
    defined &= ends & (length > 1e-12)
    # Unit length, facing the sensor at the origin (n . p < 0).
    scale = np.where(dot3(normals, points) > 0, -1.0, 1.0).astype(np.float32)
    normals *= scale / np.maximum(length, 1e-12)
    return normals, defined


def shifted(array, axis, start, stop):
    """
    Return ``array[start:size + stop]`` along image ``axis`` (a view; stop 0 means the end).

    The image axes are the last two, so planar (3, H, W) and (H, W) arrays both work.
    """
    axis = array.ndim - 2 + axis
    index = [slice(None)] * array.ndim
    index[axis] = slice(start, array.shape[axis] + stop if stop else None)
    return array[tuple(index)]


def near_pairs(points, candidate, limit, axis):
    """
    Return which neighbour pairs along ``axis`` are closer than the depth-scaled limit.

    :return: (h, w - 1) for axis 1 or (h - 1, w) for axis 0, bool
    """
    step = shifted(points, axis, 0, -1) - shifted(points, axis, 1, 0)
    limit_ab = np.minimum(shifted(limit, axis, 0, -1), shifted(limit, axis, 1, 0))
    return (shifted(candidate, axis, 0, -1) & shifted(candidate, axis, 1, 0)
            & (dot3(step, step) < limit_ab ** 2))


def concavity(points, normals, normal_ok, limit, gap, axis):
    """
    Return how strongly the surface turns inwards across each pixel along ``axis``.

    Normals ``gap`` pixels either side turn towards each other where the surface is concave
    (the convexity test of LCCP: ``(n_a - n_b) . (p_a - p_b) < 0``). The value is
    ``-(n_a - n_b) . (p_a - p_b) / |p_a - p_b|``; two planes meeting at angle t give
    ``2 sin(t / 2)``. Pixels without a defined pair, or with a pair farther apart than the
    depth-continuity limit, get -inf.

    :return: (h, w) float32
    """
    stop = -2 * gap
    delta = shifted(points, axis, 0, stop) - shifted(points, axis, 2 * gap, 0)    # p_a - p_b
    turn = dot3(shifted(normals, axis, 0, stop) - shifted(normals, axis, 2 * gap, 0), delta)
    span = dot3(delta, delta)
    ok = (shifted(normal_ok, axis, 0, stop) & shifted(normal_ok, axis, 2 * gap, 0)
          & (span < (2 * gap * shifted(limit, axis, 0, stop)) ** 2) & (span > 0))
    value = np.full(normal_ok.shape, -np.inf, np.float32)
    inner = [slice(None), slice(None)]
    inner[axis] = slice(gap, gap + ok.shape[axis])
    value[tuple(inner)] = np.where(ok, -turn / np.sqrt(np.maximum(span, 1e-12)), -np.inf)
    return value


def angle_threshold(degrees) -> float:
    """Return the :func:`concavity` value of two planes meeting at ``degrees``."""
    return 2.0 * math.sin(math.radians(degrees) / 2.0)


def colour_cuts(points, normals, normal_ok, colors, candidate, weak, ranges, config, axis):
    """
    Return the neighbour pairs along ``axis`` that colour cuts where geometry cannot.

    A pair is cut when its colour changes by more than ``color_distance`` on a weak seam (a
    weak crease at either end, or one end more than ``weak_step`` times the range squared in
    front of the other's tangent plane), or by more than ``color_unknown_distance`` where
    either end has no normal. The colours compared are one pixel beyond each end of the pair,
    so a blended boundary block does not hide the change.

    :param weak: (h, w) bool pixels on a weak concave crease
    :return: (h, w - 1) or (h - 1, w) bool
    """
    a_points, b_points = shifted(points, axis, 0, -1), shifted(points, axis, 1, 0)
    step = b_points - a_points                                             # (3, ...)
    # A point in front of the other's tangent plane (towards the sensor): a concave seam or
    # an occluding step; across a convex edge both lie behind and it is no seam.
    out_a = dot3(shifted(normals, axis, 0, -1), step)
    out_b = -dot3(shifted(normals, axis, 1, 0), step)
    both_ok = shifted(normal_ok, axis, 0, -1) & shifted(normal_ok, axis, 1, 0)
    squared = np.minimum(shifted(ranges, axis, 0, -1), shifted(ranges, axis, 1, 0)) ** 2
    stepped = both_ok & (np.maximum(out_a, out_b) > config.weak_step * squared)
    seam = stepped | shifted(weak, axis, 0, -1) | shifted(weak, axis, 1, 0)
    widths = [(0, 0)] * 3
    widths[1 + axis] = (1, 1)
    padded = np.pad(colors, widths, mode='edge')                           # pixel k at k + 1
    difference = shifted(padded, axis, 0, -3) - shifted(padded, axis, 3, 0)   # a - 1, b + 1
    distance = dot3(difference, difference)
    changed = distance > config.color_distance ** 2
    cut = seam & changed
    if config.color_unknown_distance > 0:
        cut |= ~both_ok & (distance > config.color_unknown_distance ** 2)
    return cut & shifted(candidate, axis, 0, -1) & shifted(candidate, axis, 1, 0)


def grow(labels, open_pixels, pass_h, pass_v, iterations):
    """
    Give pixels the object label of a 4-neighbour across a passable edge, a ring per step.

    Every label grows at the same pace, so where two meet the boundary falls between them.

    :param labels: (h, w) int32, >= 0 objects, updated in place
    :param open_pixels: (h, w) bool pixels that may receive a label
    :param pass_h: (h, w - 1) bool passable edges to the right neighbour
    :param pass_v: (h - 1, w) bool passable edges to the neighbour below
    """
    for _ in range(iterations):
        waiting = open_pixels & (labels < 0)
        if not waiting.any():
            return
        grown = labels.copy()
        for target, source, passable in (
                ((slice(None), slice(None, -1)), (slice(None), slice(1, None)), pass_h),
                ((slice(None), slice(1, None)), (slice(None), slice(None, -1)), pass_h),
                ((slice(None, -1), slice(None)), (slice(1, None), slice(None)), pass_v),
                ((slice(1, None), slice(None)), (slice(None, -1), slice(None)), pass_v)):
            take = waiting[target] & passable & (labels[source] >= 0) & (grown[target] < 0)
            grown[target][take] = labels[source][take]
        changed = waiting & (grown >= 0)
        if not changed.any():
            return
        labels[changed] = grown[changed]


def components(mask, join_h, join_v):
    """
    Return connected components of ``mask`` over joined 4-neighbour edges.

    :return: (h, w) int64 component per pixel (-1 outside the mask), number of components
    """
    index = np.full(mask.shape, -1, np.int64)
    count = int(mask.sum())
    index[mask] = np.arange(count)
    join_h = join_h & mask[:, :-1] & mask[:, 1:]
    join_v = join_v & mask[:-1] & mask[1:]
    number, component = graph_components(
        count, np.concatenate([index[:, :-1][join_h], index[:-1][join_v]]),
        np.concatenate([index[:, 1:][join_h], index[1:][join_v]]))
    out = np.full(mask.shape, -1, np.int64)
    out[mask] = component
    return out, number


def graph_components(count, first, second):
    """
    Return the connected components of ``count`` nodes joined by undirected edges.

    :param first: (E,) int node at one end of each edge, ``second`` (E,) at the other
    :return: number of components, (count,) component per node
    """
    graph = coo_matrix((np.ones(len(first), np.int8), (first, second)), shape=(count, count))
    return connected_components(graph, directed=False)


def _joined(labels, count, first, second):
    """Return ``labels`` (-1 kept) with regions ``first[k]`` and ``second[k]`` joined, K."""
    number, group = graph_components(count, first, second)
    return np.where(labels >= 0, group[np.maximum(labels, 0)], -1), number


def merge_weak_boundaries(labels, count, near_h, near_v, strong_h, strong_v, ratio):
    """
    Join regions whose shared boundary is mostly uncut (split by the seed erosion only).

    Along the boundary between two regions, the neighbour pairs that are surface-continuous
    (``near``) are counted; where fewer than ``ratio`` of them carry a cut (a crease or a
    colour seam), the two regions are one surface and are joined. Two objects that touch
    share a long cut boundary and at most a short gap in it.

    :param labels: (h, w) int64 region per pixel, -1 none
    :param near_h: (h, w - 1) and near_v (h - 1, w) bool surface-continuous pairs
    :param strong_h: (h, w - 1) and strong_v (h - 1, w) bool pairs on a cut
    :return: (h, w) int64 labels renumbered 0..K-1 (-1 kept), K
    """
    if count < 2:
        return labels, count
    firsts, seconds, cuts = [], [], []
    for a, b, near, strong in ((labels[:, :-1], labels[:, 1:], near_h, strong_h),
                               (labels[:-1], labels[1:], near_v, strong_v)):
        between = near & (a >= 0) & (b >= 0) & (a != b)
        low, high = np.minimum(a[between], b[between]), np.maximum(a[between], b[between])
        firsts.append(low)
        seconds.append(high)
        cuts.append(strong[between])
    low, high, cut = np.concatenate(firsts), np.concatenate(seconds), np.concatenate(cuts)
    if not len(low):
        return labels, count
    pair = low * count + high
    pairs, inverse = np.unique(pair, return_inverse=True)
    total = np.bincount(inverse)
    cut_count = np.bincount(inverse, weights=cut.astype(np.float64))
    join = cut_count < ratio * total
    return _joined(labels, count, pairs[join] // count, pairs[join] % count)


def absorb_small(labels, count, near_h, near_v, min_pixels, larger=0, share=0.4):
    """
    Join small regions to the neighbour they share most surface-continuous edges with.

    A region under ``min_pixels`` always joins (it is too small to be an object); one under
    ``larger`` joins when that neighbour holds at least ``share`` of its whole outline. So the
    pieces that cuts leave of one object (a printed band, a hole, a concave inside) rejoin it,
    while a small object beside a larger one, which meets it along a small part of its
    outline only, stays apart. A region with no surface-continuous neighbour stays.

    :param labels: (h, w) int64 region per pixel, -1 none
    :param near_h: (h, w - 1) and near_v (h - 1, w) bool surface-continuous pairs
    :return: (h, w) int64 labels renumbered 0..K-1 (-1 kept), K
    """
    if count < 2:
        return labels, count
    sizes = np.bincount(labels[labels >= 0], minlength=count)
    small = sizes < max(min_pixels, larger)
    if not small.any():
        return labels, count
    keys, outline = [], np.zeros(count, np.int64)
    for a, b, near in ((labels[:, :-1], labels[:, 1:], near_h),
                       (labels[:-1], labels[1:], near_v)):
        differ = a != b
        outline += np.bincount(a[differ & (a >= 0)], minlength=count)
        outline += np.bincount(b[differ & (b >= 0)], minlength=count)
        between = near & differ & (a >= 0) & (b >= 0)
        a, b = a[between], b[between]
        keys += [a * count + b, b * count + a]               # both directions: (small, other)
    key = np.concatenate(keys)
    key = key[small[key // count]]
    if not len(key):
        return labels, count
    pairs, edges = np.unique(key, return_counts=True)
    region, partner = pairs // count, pairs % count
    # Per small region the partner with most edges (ties: the larger partner).
    order = np.lexsort((-sizes[partner], -edges, region))
    first = np.ones(len(order), bool)
    first[1:] = region[order][1:] != region[order][:-1]
    chosen = order[first]
    tiny = sizes[region[chosen]] < min_pixels
    chosen = chosen[tiny | (edges[chosen] >= share * outline[region[chosen]])]
    return _joined(labels, count, region[chosen], partner[chosen])


def recount(labels, num_objects, config):
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


def upsample_labels(xyz, coarse_labels, coarse_state, coarse_points, smooth, planes, config,
                    viewpoint):
    """
    Carry block labels to every point of an organized cloud.

    In a support block, a point with a finite depth is support. In an object block on one
    surface and away from support, every valid point takes the object label. In an object
    block across a depth edge or beside support, a point takes it only if it lies within
    ``neighbor_distance * stride`` (at 1 m) of the block's point and above every support
    plane. Everything else is NO_OBJECT.

    :param xyz: (H, W, 3) full-resolution points
    :param coarse_labels: (h, w) labels of the blocks
    :param coarse_state: (h, w) int8 plane state of the blocks (1 support)
    :param coarse_points: (3, h, w) planar block points, viewpoint removed
    :param smooth: (h, w) bool blocks whose valid points lie on one surface
    :return: (H, W) int32 labels
    """
    stride = config.stride
    height, width = xyz.shape[:2]
    objects = coarse_labels >= 0
    support = coarse_state == 1
    checked = objects & (~smooth | ndimage.binary_dilation(support, np.ones((3, 3), bool)))
    block = np.where(support, SUPPORT, NO_OBJECT).astype(np.int32)
    block = np.where(objects & ~checked, coarse_labels, block)
    labels = np.full((height, width), NO_OBJECT, np.int32)
    covered = np.repeat(np.repeat(block, stride, axis=0), stride, axis=1)
    labels[:covered.shape[0], :covered.shape[1]] = covered
    # Contiguous (written through a flat view below); invalid depth is nothing.
    with np.errstate(invalid='ignore', over='ignore'):
        squared = xyz[..., 0] ** 2 + xyz[..., 1] ** 2 + xyz[..., 2] ** 2
        labels[~((squared > 1e-12) & (squared < config.max_range ** 2))] = NO_OBJECT
    rows, cols = np.nonzero(checked)                                    # (K,) blocks
    object_labels = coarse_labels[rows, cols]
    anchors = coarse_points[:, rows, cols]                               # (3, K)
    bound = (config.neighbor_distance * stride) ** 2 * dot3(anchors, anchors)
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
                take = dot3(gap, gap) < bound[inside]                  # False for NaN
                squared_range = dot3(points, points)
                for plane in planes:
                    normal = plane.normal
                    plane_height = (normal[0] * points[0] + normal[1] * points[1]
                                    + normal[2] * points[2] + np.float32(plane.offset))
                    take &= plane_height > config.plane_distance * np.maximum(squared_range, 0.09)
            flat_labels[index] = np.where(take, object_labels[inside], NO_OBJECT)
    return labels
