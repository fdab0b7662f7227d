"""
nav_msgs/OccupancyGrid <-> :class:`~leo_ros.agent.mapgrid.MapGrid` (pure functions).

The built-in world publishes its map with :func:`occupancy_grid_message`; policy_node reads
any robot's map with :func:`map_from_occupancy_grid`, which refuses degenerate maps with
:class:`~leo_ros.ros.validation.InputRefused` (reason 'map').
"""

import math

from leo_ros.agent.mapgrid import MapGrid
from leo_ros.ros.conversions import quaternion_to_yaw, to_stamp, yaw_to_quaternion
from leo_ros.ros.validation import InputRefused
import numpy as np


def map_from_occupancy_grid(msg, occupied_threshold=50) -> MapGrid:
    """
    Convert a nav_msgs/OccupancyGrid into a :class:`MapGrid`.

    :raises InputRefused: reason 'map' for an empty grid, a non-positive or non-finite
        resolution, a non-finite origin or data that does not fill width x height
    """
    info = msg.info
    origin = info.origin
    try:
        yaw = quaternion_to_yaw(origin.orientation)
        resolution = float(info.resolution)
        if not (math.isfinite(resolution) and resolution > 0):
            raise ValueError(f'resolution must be positive, got {resolution}')
        return MapGrid.from_flat(resolution, (origin.position.x, origin.position.y, yaw),
                                 int(info.width), int(info.height),
                                 np.asarray(msg.data, np.int8),
                                 occupied_threshold=occupied_threshold,
                                 frame_id=msg.header.frame_id or 'map')
    except ValueError as error:
        raise InputRefused('map', f'map refused: {error}') from error


def occupancy_grid_message(resolution, origin, occupancy, frame_id='map', stamp=None):
    """
    Return a nav_msgs/OccupancyGrid.

    :param resolution: cell size [m]
    :param origin: (x, y, yaw) of cell (0, 0)'s corner in ``frame_id``
    :param occupancy: (rows, cols) int8: -1 unknown, 0 free .. 100 occupied; row = y
    """
    from nav_msgs.msg import OccupancyGrid
    occupancy = np.asarray(occupancy, np.int8)
    msg = OccupancyGrid()
    msg.header.frame_id = frame_id
    msg.header.stamp = to_stamp(stamp)
    msg.info.map_load_time = msg.header.stamp
    msg.info.resolution = float(resolution)
    msg.info.height, msg.info.width = (int(v) for v in occupancy.shape)
    msg.info.origin.position.x, msg.info.origin.position.y = float(origin[0]), float(origin[1])
    msg.info.origin.orientation = yaw_to_quaternion(float(origin[2]))
    msg.data = occupancy.ravel().tolist()
    return msg
