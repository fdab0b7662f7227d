"""Small planar geometry for the world: oriented rectangles (footprints), poses, primitives."""

import math

import numpy as np
import open3d as o3d


def rotation_z(yaw: float) -> np.ndarray:
    """Return the (3, 3) rotation about z by ``yaw``."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def pose_matrix(x: float, y: float, z: float, yaw: float) -> np.ndarray:
    """Return the (4, 4) transform of a planar pose at height ``z``."""
    matrix = np.eye(4)
    matrix[:3, :3] = rotation_z(yaw)
    matrix[:3, 3] = (x, y, z)
    return matrix


def rectangle_corners(center, half_extents, yaw) -> np.ndarray:
    """Return the (4, 2) corners of an oriented rectangle, counter-clockwise."""
    hx, hy = half_extents
    local = np.array([[hx, hy], [-hx, hy], [-hx, -hy], [hx, -hy]])
    c, s = math.cos(yaw), math.sin(yaw)
    rot = np.array([[c, -s], [s, c]])
    return local @ rot.T + np.asarray(center, float)


def rectangles_overlap(corners_a, corners_b) -> bool:
    """Separating-axis test for two convex quadrilaterals given as (4, 2) corners."""
    for corners in (corners_a, corners_b):
        for i in range(4):
            edge = corners[(i + 1) % 4] - corners[i]
            axis = np.array([-edge[1], edge[0]])
            proj_a, proj_b = corners_a @ axis, corners_b @ axis
            if proj_a.max() < proj_b.min() or proj_b.max() < proj_a.min():
                return False
    return True


def point_in_rectangle(point, center, half_extents, yaw, margin=0.0) -> bool:
    """Return whether a 2D point lies inside an oriented rectangle grown by ``margin``."""
    local = _to_local(np.asarray(point, float)[None], center, yaw)[0]
    return bool(abs(local[0]) <= half_extents[0] + margin
                and abs(local[1]) <= half_extents[1] + margin)


def point_rectangle_distance(points, center, half_extents, yaw) -> np.ndarray:
    """
    Return the distance of 2D points to an oriented rectangle (0 inside).

    :param points: (N, 2) or (2,)
    :return: (N,) or scalar distances [m]
    """
    points = np.asarray(points, float)
    single = points.ndim == 1
    local = _to_local(points.reshape(-1, 2), center, yaw)  # (N, 2)
    outside = np.maximum(np.abs(local) - np.asarray(half_extents, float), 0.0)
    dist = np.sqrt((outside ** 2).sum(axis=1))
    return float(dist[0]) if single else dist


def rectangle_distance(rect_a, rect_b) -> float:
    """
    Return the distance between two oriented rectangles (0 when they overlap).

    Each rectangle is ``(center, half_extents, yaw)``; for convex polygons the minimum is
    reached at a vertex of one of them.
    """
    corners_a = rectangle_corners(*rect_a)
    corners_b = rectangle_corners(*rect_b)
    if rectangles_overlap(corners_a, corners_b):
        return 0.0
    return float(min(point_rectangle_distance(corners_a, *rect_b).min(),
                     point_rectangle_distance(corners_b, *rect_a).min()))


def _to_local(points, center, yaw):
    c, s = math.cos(yaw), math.sin(yaw)
    delta = points - np.asarray(center, float)
    return np.stack([c * delta[:, 0] + s * delta[:, 1], -s * delta[:, 0] + c * delta[:, 1]], 1)


def primitive_mesh(kind: str, size, resolution: int = 20):
    """
    Return vertices (V, 3) and triangles (T, 3) of a primitive centred on the origin.

    :param kind: 'box' (size = extents), 'cylinder' (size = (2r, 2r, h), axis z) or
        'sphere' (size = (2r, 2r, 2r); a non-uniform size gives an ellipsoid)
    """
    size = np.asarray(size, float)
    if kind == 'box':
        mesh = o3d.geometry.TriangleMesh.create_box(*size)
        vertices = np.asarray(mesh.vertices) - size / 2
    elif kind == 'cylinder':
        mesh = o3d.geometry.TriangleMesh.create_cylinder(
            radius=0.5, height=1.0, resolution=resolution, split=1)
        vertices = np.asarray(mesh.vertices) * size
    elif kind == 'sphere':
        mesh = o3d.geometry.TriangleMesh.create_sphere(radius=0.5, resolution=resolution // 2)
        vertices = np.asarray(mesh.vertices) * size
    else:
        raise ValueError(f'unknown primitive kind {kind!r}; expected box, cylinder or sphere')
    return vertices, np.asarray(mesh.triangles, np.int64)


def sample_mesh_surface(vertices, triangles, colors, count, rng):
    """
    Sample points uniformly on a triangle mesh by area (seeded, unlike Open3D's sampler).

    :param vertices: (V, 3)
    :param triangles: (T, 3) vertex indices
    :param colors: (T, 3) per-triangle colour in [0, 1]
    :param count: number of points
    :param rng: numpy Generator
    :return: xyz (count, 3) float32 and rgb (count, 3) float32
    """
    corners = vertices[triangles]  # (T, 3, 3)
    areas = 0.5 * np.linalg.norm(
        np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    chosen = rng.choice(len(triangles), size=count, p=areas / areas.sum())
    u, v = rng.random(count), rng.random(count)
    flip = u + v > 1.0
    u[flip], v[flip] = 1.0 - u[flip], 1.0 - v[flip]
    tri = corners[chosen]
    xyz = tri[:, 0] + u[:, None] * (tri[:, 1] - tri[:, 0]) + v[:, None] * (tri[:, 2] - tri[:, 0])
    return xyz.astype(np.float32), np.asarray(colors, np.float32)[chosen]
