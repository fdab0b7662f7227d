"""
The robot's map as the safety gate reads it (pure numpy, no ROS).

:class:`MapGrid` holds a ``nav_msgs/OccupancyGrid``'s numbers: cell size, the pose of cell
(0, 0)'s corner, and row-major occupancy (-1 unknown, 0 free .. 100 occupied). The gate takes
its bounds from it and moves a goal that lands in an occupied or unknown cell to the nearest
free cell (or refuses it, by configuration).
"""

from dataclasses import dataclass
import math

import numpy as np


@dataclass
class MapGrid:
    """
    An occupancy grid in the fixed frame.

    :param resolution: cell size [m]
    :param origin: (x, y, yaw) of the corner of cell (0, 0) in the fixed frame [m, rad]
    :param occupancy: (rows, cols) int8, row = y index, col = x index; -1 unknown,
        0..100 occupancy probability in percent
    :param occupied_threshold: cells at or above this value are occupied
    :param frame_id: the grid's frame
    """

    resolution: float
    origin: tuple
    occupancy: np.ndarray
    occupied_threshold: int = 50
    frame_id: str = 'map'

    def __post_init__(self):
        if not (isinstance(self.resolution, (int, float)) and math.isfinite(self.resolution)
                and self.resolution > 0):
            raise ValueError(f'MapGrid.resolution must be a positive number, got '
                             f'{self.resolution!r}')
        origin = tuple(float(v) for v in self.origin)
        if len(origin) != 3 or not all(math.isfinite(v) for v in origin):
            raise ValueError(f'MapGrid.origin must be a finite (x, y, yaw), got {self.origin!r}')
        self.origin = origin
        self.occupancy = np.asarray(self.occupancy, np.int16)
        if self.occupancy.ndim != 2 or self.occupancy.size == 0:
            raise ValueError(f'MapGrid.occupancy must be a non-empty (rows, cols) array, got '
                             f'shape {self.occupancy.shape}')
        if not 1 <= self.occupied_threshold <= 100:
            raise ValueError(f'MapGrid.occupied_threshold must be in [1, 100], got '
                             f'{self.occupied_threshold}')
        self.free = (self.occupancy >= 0) & (self.occupancy < self.occupied_threshold)

    @classmethod
    def from_flat(cls, resolution, origin, width, height, data, **kwargs):
        """Build from an OccupancyGrid's fields (``data`` row-major, ``width * height``)."""
        data = np.asarray(data, np.int16).ravel()
        if int(width) <= 0 or int(height) <= 0 or data.size != int(width) * int(height):
            raise ValueError(f'occupancy grid of {width}x{height} cells has {data.size} values')
        return cls(resolution, origin, data.reshape(int(height), int(width)), **kwargs)

    @property
    def shape(self):
        return self.occupancy.shape

    def _to_grid(self, x, y):
        """Return (gx, gy) [m] of a fixed-frame point in the grid's own axes."""
        ox, oy, yaw = self.origin
        dx, dy = x - ox, y - oy
        c, s = math.cos(yaw), math.sin(yaw)
        return c * dx + s * dy, -s * dx + c * dy

    def _to_fixed(self, gx, gy):
        ox, oy, yaw = self.origin
        c, s = math.cos(yaw), math.sin(yaw)
        return ox + c * gx - s * gy, oy + s * gx + c * gy

    def bounds(self):
        """Return (min_x, max_x, min_y, max_y) of the map in the fixed frame [m]."""
        rows, cols = self.shape
        corners = [self._to_fixed(gx, gy) for gx in (0.0, cols * self.resolution)
                   for gy in (0.0, rows * self.resolution)]
        xs, ys = [c[0] for c in corners], [c[1] for c in corners]
        return min(xs), max(xs), min(ys), max(ys)

    def cell(self, x, y):
        """Return the (row, col) of a fixed-frame point, or None outside the grid."""
        gx, gy = self._to_grid(x, y)
        col, row = math.floor(gx / self.resolution), math.floor(gy / self.resolution)
        rows, cols = self.shape
        if 0 <= row < rows and 0 <= col < cols:
            return row, col
        return None

    def contains(self, x, y) -> bool:
        return self.cell(x, y) is not None

    def is_free(self, x, y) -> bool:
        """Return whether (x, y) lies in a known free cell."""
        cell = self.cell(x, y)
        return cell is not None and bool(self.free[cell])

    def center(self, row, col):
        """Return the fixed-frame (x, y) of a cell's centre."""
        return self._to_fixed((col + 0.5) * self.resolution, (row + 0.5) * self.resolution)

    def nearest_free(self, x, y, max_distance):
        """
        Return the centre of the free cell nearest (x, y) within ``max_distance`` [m], or None.

        Only a window of cells around the point is searched, so large maps stay cheap.
        """
        gx, gy = self._to_grid(x, y)
        reach = int(math.ceil(max_distance / self.resolution)) + 1
        rows, cols = self.shape
        col0, row0 = math.floor(gx / self.resolution), math.floor(gy / self.resolution)
        r_lo, r_hi = max(0, row0 - reach), min(rows, row0 + reach + 1)
        c_lo, c_hi = max(0, col0 - reach), min(cols, col0 + reach + 1)
        if r_lo >= r_hi or c_lo >= c_hi:
            return None
        window = self.free[r_lo:r_hi, c_lo:c_hi]
        free_rows, free_cols = np.nonzero(window)
        if len(free_rows) == 0:
            return None
        centres_x = (free_cols + c_lo + 0.5) * self.resolution                  # (F,)
        centres_y = (free_rows + r_lo + 0.5) * self.resolution                  # (F,)
        distance = np.hypot(centres_x - gx, centres_y - gy)                      # (F,)
        best = int(np.argmin(distance))
        if distance[best] > max_distance:
            return None
        return self._to_fixed(float(centres_x[best]), float(centres_y[best]))
