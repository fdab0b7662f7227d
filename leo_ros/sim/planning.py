"""Occupancy grids and shortest paths for the base (scipy's Dijkstra on an 8-connected grid)."""

import math

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra


class OccupancyGrid:
    """
    Free space of a scene for a round robot: cells whose centre keeps ``radius`` clear.

    :param is_free: callable (N, 2) points -> (N,) bool (the exact collision check)
    :param width: map size along x [m]
    :param depth: map size along y [m]
    :param resolution: cell size [m]
    """

    def __init__(self, is_free, width, depth, resolution=0.1):
        self.resolution = resolution
        self.shape = (max(1, int(math.ceil(depth / resolution))),
                      max(1, int(math.ceil(width / resolution))))  # (rows: y, cols: x)
        rows, cols = self.shape
        ys = (np.arange(rows) + 0.5) * resolution
        xs = (np.arange(cols) + 0.5) * resolution
        grid_x, grid_y = np.meshgrid(xs, ys)
        points = np.stack([grid_x.ravel(), grid_y.ravel()], 1)  # (rows * cols, 2)
        self.free = np.asarray(is_free(points), bool).reshape(rows, cols)
        self._graph = self._build_graph()

    def cell(self, x, y):
        """Return the (row, col) of a point, clipped to the grid."""
        row = min(max(int(y / self.resolution), 0), self.shape[0] - 1)
        col = min(max(int(x / self.resolution), 0), self.shape[1] - 1)
        return row, col

    def center(self, row, col):
        """Return the (x, y) centre of a cell."""
        return ((col + 0.5) * self.resolution, (row + 0.5) * self.resolution)

    def _build_graph(self):
        rows, cols = self.shape
        index = np.arange(rows * cols).reshape(rows, cols)
        sources, targets, weights = [], [], []
        for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
            r0, r1 = max(0, -dr), rows - max(0, dr)
            c0, c1 = max(0, -dc), cols - max(0, dc)
            a = index[r0:r1, c0:c1]
            b = index[r0 + dr:r1 + dr, c0 + dc:c1 + dc]
            ok = self.free[r0:r1, c0:c1] & self.free[r0 + dr:r1 + dr, c0 + dc:c1 + dc]
            if dr and dc:  # no corner cutting past an obstacle
                ok &= self.free[r0 + dr:r1 + dr, c0:c1] & self.free[r0:r1, c0 + dc:c1 + dc]
            sources.append(a[ok])
            targets.append(b[ok])
            weights.append(np.full(ok.sum(), math.hypot(dr, dc) * self.resolution))
        sources, targets = np.concatenate(sources), np.concatenate(targets)
        weights = np.concatenate(weights)
        size = rows * cols
        return coo_matrix((np.concatenate([weights, weights]),
                           (np.concatenate([sources, targets]),
                            np.concatenate([targets, sources]))), shape=(size, size)).tocsr()

    def distances_from(self, x, y):
        """
        Return path lengths from the cell of (x, y) to every cell, (rows, cols), inf if cut off.

        :return: distances and the predecessor of every cell (flat indices, -9999 for none)
        """
        row, col = self.cell(x, y)
        dist, pred = dijkstra(self._graph, indices=row * self.shape[1] + col,
                              return_predecessors=True)
        return dist.reshape(self.shape), pred

    def path(self, start, goal):
        """
        Return the shortest free path from ``start`` to ``goal`` as (N, 2) cell centres.

        The exact start and goal points are the first and last rows; None when unreachable.
        """
        dist, pred = self.distances_from(*goal)
        row, col = self.cell(*start)
        if not np.isfinite(dist[row, col]):
            return None
        cells, node = [], row * self.shape[1] + col
        goal_node = self.cell(*goal)[0] * self.shape[1] + self.cell(*goal)[1]
        while node != goal_node and node >= 0:
            cells.append(self.center(*divmod(node, self.shape[1])))
            node = pred[node]
        points = [tuple(start)] + cells[1:] + [tuple(goal)]
        return np.asarray(points, float)
