"""
Read PCD files (ASCII, binary, binary_compressed) into numpy with pypcd4.

Extra fields (``label``, ``intensity``, ...) are kept; packed ``rgb``/``rgba`` fields are unpacked
into float colours in [0, 1].
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class PcdCloud:
    """A point cloud read from a PCD file, in the file's point order."""

    xyz: np.ndarray                 # (N, 3) float32, NaN for invalid points
    rgb: np.ndarray = None          # (N, 3) float32 in [0, 1], or None
    width: int = 0
    height: int = 1
    fields: dict = field(default_factory=dict)   # name -> (N,) array of every other field

    @property
    def organized(self) -> bool:
        """Return True when the cloud is an image of points (height > 1)."""
        return self.height > 1 and self.width * self.height == len(self.xyz)

    def grid(self):
        """Return xyz (H, W, 3) and rgb (H, W, 3) or None for an organized cloud."""
        if not self.organized:
            raise ValueError(f'PCD cloud is not organized (width {self.width}, '
                             f'height {self.height}, {len(self.xyz)} points)')
        shape = (self.height, self.width, 3)
        return self.xyz.reshape(shape), None if self.rgb is None else self.rgb.reshape(shape)


def unpack_rgb(packed) -> np.ndarray:
    """
    Unpack PCL's packed colour (float32 or uint32 bit pattern) into floats.

    :param packed: (N,) float32 or uint32
    :return: (N, 3) float32 in [0, 1]
    """
    bits = np.ascontiguousarray(packed).view(np.uint32)
    channels = np.stack([(bits >> 16) & 255, (bits >> 8) & 255, bits & 255], axis=-1)
    return channels.astype(np.float32) / 255.0


def read_pcd(path) -> PcdCloud:
    """
    Read a PCD file.

    :param path: file path
    :return: the cloud; raises ValueError if the file has no x, y, z fields
    """
    import pypcd4  # imported here: only file tools need it

    path = Path(path)
    try:
        cloud = pypcd4.PointCloud.from_path(path)
    except Exception as error:  # pypcd4 raises several types for bad headers and data
        raise ValueError(f'cannot read PCD file {path}: {error}') from error
    data = cloud.pc_data
    names = data.dtype.names or ()
    if not all(axis in names for axis in 'xyz'):
        raise ValueError(f'PCD file {path} has no x, y, z fields (fields: {names})')
    xyz = np.stack([data[axis] for axis in 'xyz'], axis=-1).astype(np.float32)  # (N, 3)
    rgb = None
    for name in ('rgb', 'rgba'):
        if name in names:
            rgb = unpack_rgb(data[name])
            break
    extra = {name: np.asarray(data[name]) for name in names
             if name not in ('x', 'y', 'z', 'rgb', 'rgba')}
    return PcdCloud(xyz=xyz, rgb=rgb, width=int(cloud.metadata.width),
                    height=int(cloud.metadata.height), fields=extra)
