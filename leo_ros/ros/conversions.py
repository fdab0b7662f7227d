"""
Message <-> numpy conversions: pure functions, no node, no rclpy.

They import message classes only. Decoding uses the ROS libraries where the installation has
them: ``sensor_msgs_py.point_cloud2`` for PointCloud2 coordinates, ``cv_bridge`` (else
``rosbags-image``) for Images; :data:`BACKENDS` says which is in use. The PyPI ROS wheels have
neither, so the codecs written here are the fallback, small and tested (against those
libraries where they are importable). Every message is first checked here, so malformed ones
raise :class:`ConversionError`, a ValueError that names the offending field, whichever library
decodes it. Encoding (numpy -> message) is always done here.
"""

import array
import functools
import importlib

from geometry_msgs.msg import Point, Pose, PoseStamped, Quaternion
from leo_ros.scene_tokens import POINT_DIM, SceneTokens
import numpy as np
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import ColorRGBA, Header
import transforms3d


class ConversionError(ValueError):
    """A message that cannot be converted; ``field`` names the part that is wrong."""

    def __init__(self, field, message):
        super().__init__(f'{field}: {message}')
        self.field = field


class EmptyCloudError(ConversionError):
    """A well-formed message that holds no points."""


#: PointField datatype -> numpy type (sensor_msgs/PointField constants)
POINT_FIELD_TYPES = {
    PointField.INT8: np.int8, PointField.UINT8: np.uint8,
    PointField.INT16: np.int16, PointField.UINT16: np.uint16,
    PointField.INT32: np.int32, PointField.UINT32: np.uint32,
    PointField.FLOAT32: np.float32, PointField.FLOAT64: np.float64,
}
_NUMPY_TO_POINT_FIELD = {np.dtype(v): k for k, v in POINT_FIELD_TYPES.items()}

#: Image encoding -> (numpy type, channels)
IMAGE_ENCODINGS = {
    'rgb8': (np.uint8, 3), 'bgr8': (np.uint8, 3), 'rgba8': (np.uint8, 4),
    'bgra8': (np.uint8, 4), 'mono8': (np.uint8, 1), 'mono16': (np.uint16, 1),
    '8UC1': (np.uint8, 1), '8UC3': (np.uint8, 3), '16UC1': (np.uint16, 1),
    '32FC1': (np.float32, 1),
}


@functools.lru_cache(maxsize=None)
def _library(name):
    """Return an optional module, or None (cv_bridge fails with more than ImportError)."""
    try:
        return importlib.import_module(name)
    except Exception:  # ImportError, or a broken binary part (cv2, libcv_bridge)
        return None


def backends() -> dict:
    """Return which library decodes point clouds and images here."""
    images = 'cv_bridge' if _library('cv_bridge') else \
        'rosbags-image' if _library('rosbags.image') else 'leo_ros'
    clouds = 'sensor_msgs_py' if _library('sensor_msgs_py.point_cloud2') else 'leo_ros'
    return {'pointcloud2': clouds, 'image': images}


@functools.lru_cache(maxsize=None)
def _cv_bridge():
    return _library('cv_bridge').CvBridge()


def _library_image(msg):
    """Decode an Image with cv_bridge or rosbags-image (as stored), or return None."""
    if _library('cv_bridge') is not None:
        return np.asarray(_cv_bridge().imgmsg_to_cv2(msg, desired_encoding='passthrough'))
    rosbags_image = _library('rosbags.image')
    if rosbags_image is not None:
        return np.asarray(rosbags_image.message_to_cvimage(msg))
    return None


def _library_xyz(msg, cloud):
    """Read x, y, z with sensor_msgs_py where it can (one float32 type), or return None."""
    point_cloud2 = _library('sensor_msgs_py.point_cloud2')
    fields = cloud.dtype.fields
    if point_cloud2 is None or any(fields[axis][0] != np.dtype('<f4') for axis in 'xyz'):
        return None
    xyz = point_cloud2.read_points_numpy(msg, field_names=('x', 'y', 'z'), skip_nans=False)
    return np.asarray(xyz, np.float32).reshape(cloud.shape + (3,))


def message_class(type_name: str):
    """Return the Python class of 'pkg/msg/Type', or None when it is not installed."""
    parts = str(type_name).split('/')
    if len(parts) != 3 or not all(parts):
        return None
    try:
        return getattr(importlib.import_module(f'{parts[0]}.{parts[1]}'), parts[2])
    except (ImportError, AttributeError):
        return None


def to_stamp(stamp):
    """Return a builtin_interfaces/Time from a Time message, float seconds or None."""
    header = Header()
    if stamp is None:
        return header.stamp
    if isinstance(stamp, (int, float)):
        header.stamp.sec = int(stamp // 1)
        header.stamp.nanosec = int(round((stamp % 1) * 1e9)) % 1_000_000_000
        return header.stamp
    return stamp


def stamp_to_seconds(stamp) -> float:
    """Return a builtin_interfaces/Time as float seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


def _bytes(data) -> memoryview:
    """View message data (array.array, bytes, list) as bytes without copying where possible."""
    if isinstance(data, (bytes, bytearray, memoryview, array.array, np.ndarray)):
        return memoryview(data).cast('B')
    return memoryview(bytes(data))


def _uint8_sequence(buffer) -> array.array:
    """Wrap bytes for a uint8[] message field (fast path of the generated setter)."""
    out = array.array('B')
    out.frombytes(buffer)
    return out


# --- PointCloud2 ------------------------------------------------------------------------------

def pointcloud2_dtype(msg) -> np.dtype:
    """Return the structured dtype of one point of ``msg``; unknown layouts raise."""
    if msg.point_step <= 0:
        raise ConversionError('point_step', f'must be positive, got {msg.point_step}')
    names, formats, offsets = [], [], []
    order = '>' if msg.is_bigendian else '<'
    for field in msg.fields:
        if field.datatype not in POINT_FIELD_TYPES:
            raise ConversionError(f'fields[{field.name}].datatype',
                                  f'unknown PointField datatype {field.datatype}')
        base = np.dtype(POINT_FIELD_TYPES[field.datatype]).newbyteorder(order)
        count = max(int(field.count), 1)
        dtype = base if count == 1 else np.dtype((base, (count,)))
        if field.offset + dtype.itemsize > msg.point_step:
            raise ConversionError(f'fields[{field.name}].offset',
                                  f'{field.offset} + {dtype.itemsize} bytes exceeds point_step '
                                  f'{msg.point_step}')
        if field.name in names:
            raise ConversionError(f'fields[{field.name}]', 'appears twice')
        names.append(field.name)
        formats.append(dtype)
        offsets.append(field.offset)
    return np.dtype({'names': names, 'formats': formats, 'offsets': offsets,
                     'itemsize': msg.point_step})


def pointcloud2_to_array(msg) -> np.ndarray:
    """
    View a PointCloud2 as a structured array without copying.

    :return: (height, width) structured array, one field per PointField
    :raises EmptyCloudError: when the cloud has no points
    :raises ConversionError: on a layout the data does not fit
    """
    dtype = pointcloud2_dtype(msg)
    height, width = int(msg.height), int(msg.width)
    if height == 0 or width == 0:
        raise EmptyCloudError('width' if width == 0 else 'height',
                              f'cloud has no points ({height}x{width})')
    if msg.row_step < width * msg.point_step:
        raise ConversionError('row_step', f'{msg.row_step} < width * point_step = '
                              f'{width * msg.point_step}')
    data = _bytes(msg.data)
    needed = (height - 1) * msg.row_step + width * msg.point_step
    if len(data) < needed:
        raise ConversionError('data', f'{len(data)} bytes, but height={height}, width={width}, '
                              f'point_step={msg.point_step}, row_step={msg.row_step} need '
                              f'{needed}')
    return np.ndarray((height, width), dtype=dtype, buffer=data,
                      strides=(msg.row_step, msg.point_step))


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """
    Unpack PCL-style packed colour (float32 or uint32 holding 0x00RRGGBB or 0xAARRGGBB).

    :param packed: (...) array of float32 or (u)int32
    :return: (..., 3) float32 rgb in [0, 1]
    """
    packed = np.ascontiguousarray(packed)
    if packed.dtype.kind == 'f':
        packed = packed.astype(np.float32).view(np.uint32)
    packed = packed.astype(np.uint32)
    rgb = np.stack([(packed >> 16) & 0xFF, (packed >> 8) & 0xFF, packed & 0xFF], axis=-1)
    return rgb.astype(np.float32) / 255.0


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """
    Pack colours into PCL's float32 rgb field.

    :param rgb: (..., 3) float in [0, 1] or uint8
    :return: (...) float32 whose bits are 0x00RRGGBB
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8:
        rgb = np.clip(np.nan_to_num(rgb) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    rgb = rgb.astype(np.uint32)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    return packed.astype(np.uint32).view(np.float32)


def pointcloud2_to_xyz_rgb(msg, organized=True, skip_nans=False):
    """
    Read positions and colours from a PointCloud2 of any field layout.

    :param organized: keep the (H, W) grid; otherwise flatten to (N, ...)
    :param skip_nans: with ``organized=False``, drop points whose x, y or z is not finite
    :return: ``(xyz, rgb)``: xyz (H, W, 3) or (N, 3) float32 with NaN where a point is invalid;
        rgb the same shape in [0, 1] from an ``rgb``/``rgba`` field, or None without one
    """
    cloud = pointcloud2_to_array(msg)                    # (H, W) structured
    for axis in ('x', 'y', 'z'):
        if axis not in cloud.dtype.names:
            raise ConversionError(f'fields[{axis}]', f'missing; fields are {cloud.dtype.names}')
    fields = cloud.dtype.fields
    x_type, x_offset = fields['x']
    xyz = _library_xyz(msg, cloud)                       # (H, W, 3) where sensor_msgs_py is
    common = (x_type == np.dtype('<f4') and fields['y'] == (x_type, x_offset + 4)
              and fields['z'] == (x_type, x_offset + 8))
    if xyz is not None:
        xyz = xyz.copy()
    elif common:
        # The common layout: one strided view instead of three field copies.
        xyz = np.ndarray(cloud.shape + (3,), np.float32, cloud.base, x_offset,
                         cloud.strides + (4,)).copy()      # (H, W, 3)
    else:
        xyz = np.empty(cloud.shape + (3,), np.float32)  # (H, W, 3)
        for i, axis in enumerate('xyz'):
            xyz[..., i] = cloud[axis]
    # A point is invalid if any coordinate is NaN or inf; their sum is then not finite
    # (inf - inf is NaN), and three strided adds are much faster than isfinite().all(-1).
    invalid = ~np.isfinite(xyz[..., 0] + xyz[..., 1] + xyz[..., 2])
    if invalid.any():
        xyz[invalid] = np.nan
    colour_field = next((n for n in ('rgb', 'rgba') if n in fields), None)
    rgb = None
    if colour_field and fields[colour_field][0].itemsize == 4 and not msg.is_bigendian:
        # Little-endian 0xAARRGGBB is stored B, G, R, A: read the bytes directly.
        bgr = np.ndarray(cloud.shape + (3,), np.uint8, cloud.base,
                         fields[colour_field][1], cloud.strides + (1,))
        rgb = bgr[..., ::-1].astype(np.float32) * np.float32(1.0 / 255.0)
    elif colour_field:
        rgb = unpack_rgb(cloud[colour_field])
    if not organized:
        xyz = xyz.reshape(-1, 3)
        rgb = rgb.reshape(-1, 3) if rgb is not None else None
        if skip_nans:
            keep = np.isfinite(xyz).all(axis=1)
            xyz = xyz[keep]
            rgb = rgb[keep] if rgb is not None else None
    return xyz, rgb


def xyz_rgb_to_pointcloud2(xyz, rgb=None, frame_id='', stamp=None, extra_fields=None):
    """
    Build a PointCloud2 with float32 x, y, z, an optional packed rgb and extra fields.

    :param xyz: (H, W, 3) organized or (N, 3) positions
    :param rgb: colours of the same leading shape, float in [0, 1] or uint8, or None
    :param extra_fields: name -> array of the same leading shape (any PointField type)
    :return: sensor_msgs/PointCloud2, dense iff every point is finite
    """
    xyz = np.asarray(xyz)
    if xyz.ndim not in (2, 3) or xyz.shape[-1] != 3:
        raise ConversionError('xyz', f'expected (N, 3) or (H, W, 3), got {xyz.shape}')
    height, width = (xyz.shape[0], xyz.shape[1]) if xyz.ndim == 3 else (1, xyz.shape[0])
    columns = [('x', xyz[..., 0], np.float32), ('y', xyz[..., 1], np.float32),
               ('z', xyz[..., 2], np.float32)]
    if rgb is not None:
        rgb = np.asarray(rgb)
        if rgb.shape != xyz.shape:
            raise ConversionError('rgb', f'shape {rgb.shape} does not match xyz {xyz.shape}')
        columns.append(('rgb', pack_rgb(rgb), np.float32))
    for name, values in (extra_fields or {}).items():
        values = np.asarray(values)
        if values.shape != xyz.shape[:-1]:
            raise ConversionError(name, f'shape {values.shape} does not match {xyz.shape[:-1]}')
        if values.dtype not in _NUMPY_TO_POINT_FIELD:
            raise ConversionError(name, f'no PointField type for {values.dtype}')
        columns.append((name, values, values.dtype))
    dtype = np.dtype([(name, np.dtype(kind).newbyteorder('<')) for name, _, kind in columns])
    cloud = np.empty(height * width, dtype)
    for name, values, _ in columns:
        cloud[name] = values.reshape(-1)
    msg = PointCloud2()
    msg.header.frame_id = frame_id
    msg.header.stamp = to_stamp(stamp)
    msg.height, msg.width = height, width
    msg.fields = [PointField(name=name, offset=dtype.fields[name][1],
                             datatype=_NUMPY_TO_POINT_FIELD[np.dtype(kind)], count=1)
                  for name, _, kind in columns]
    msg.is_bigendian = False
    msg.point_step = dtype.itemsize
    msg.row_step = dtype.itemsize * width
    msg.is_dense = bool(np.isfinite(xyz).all())
    msg.data = _uint8_sequence(cloud.tobytes())
    return msg


# --- Image and depth --------------------------------------------------------------------------

def image_to_array(msg) -> np.ndarray:
    """
    Decode an Image (rgb8, bgr8, rgba8, bgra8, mono8, mono16, 16UC1, 32FC1, 8UC1, 8UC3).

    Colour images come back in RGB order (bgr8 and bgra8 are reordered).

    :return: (H, W, 3) uint8 for colour, (H, W) for single-channel encodings
    """
    if msg.encoding not in IMAGE_ENCODINGS:
        raise ConversionError('encoding', f'unsupported {msg.encoding!r}; supported: '
                              f'{sorted(IMAGE_ENCODINGS)}')
    kind, channels = IMAGE_ENCODINGS[msg.encoding]
    dtype = np.dtype(kind).newbyteorder('>' if msg.is_bigendian else '<')
    height, width = int(msg.height), int(msg.width)
    if height == 0 or width == 0:
        raise EmptyCloudError('width' if width == 0 else 'height',
                              f'image has no pixels ({height}x{width})')
    row_bytes = width * channels * dtype.itemsize
    if msg.step < row_bytes:
        raise ConversionError('step', f'{msg.step} < width * pixel size = {row_bytes}')
    data = _bytes(msg.data)
    needed = (height - 1) * msg.step + row_bytes
    if len(data) < needed:
        raise ConversionError('data', f'{len(data)} bytes, {msg.encoding} {height}x{width} '
                              f'with step {msg.step} needs {needed}')
    decoded = _library_image(msg)                       # cv_bridge / rosbags-image, if any
    if decoded is not None:
        image = decoded.reshape(height, width, channels).astype(dtype.newbyteorder('='))
    else:
        image = np.ndarray((height, width, channels), dtype=dtype, buffer=data,
                           strides=(msg.step, channels * dtype.itemsize, dtype.itemsize))
        image = image.astype(dtype.newbyteorder('='))   # native order, owned copy
    if msg.encoding in ('bgr8', 'bgra8'):
        image = image[..., [2, 1, 0]]
    elif msg.encoding == 'rgba8':
        image = image[..., :3]
    return image[..., 0] if channels == 1 else np.ascontiguousarray(image)


def array_to_image(image, encoding, frame_id='', stamp=None) -> Image:
    """
    Encode an array as an Image.

    :param image: (H, W, 3) RGB uint8 for rgb8/bgr8, (H, W) for mono8/16UC1/32FC1
    """
    if encoding not in IMAGE_ENCODINGS:
        raise ConversionError('encoding', f'unsupported {encoding!r}')
    kind, channels = IMAGE_ENCODINGS[encoding]
    image = np.asarray(image)
    expected = image.shape[:2] + ((channels,) if channels > 1 else ())
    if image.ndim < 2 or image.shape != expected:
        raise ConversionError('image', f'{encoding} needs shape {("H", "W") + expected[2:]}, '
                              f'got {image.shape}')
    if encoding in ('bgr8', 'bgra8'):
        image = image[..., [2, 1, 0] + ([3] if channels == 4 else [])]
    image = np.ascontiguousarray(image.astype(np.dtype(kind).newbyteorder('<')))
    msg = Image()
    msg.header.frame_id = frame_id
    msg.header.stamp = to_stamp(stamp)
    msg.height, msg.width = image.shape[:2]
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = image.shape[1] * channels * image.dtype.itemsize
    msg.data = _uint8_sequence(image.tobytes())
    return msg


def depth_to_meters(msg) -> np.ndarray:
    """
    Decode a depth Image: 16UC1/mono16 in millimetres or 32FC1 in metres.

    :return: (H, W) float32 metres, NaN where there is no measurement (0, NaN or inf)
    """
    if msg.encoding not in ('16UC1', 'mono16', '32FC1'):
        raise ConversionError('encoding', f'depth must be 16UC1 (mm) or 32FC1 (m), got '
                              f'{msg.encoding!r}')
    depth = image_to_array(msg).astype(np.float32)
    if msg.encoding != '32FC1':
        depth *= 0.001
    depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return depth


def camera_info_matrix(info) -> np.ndarray:
    """Return the 3x3 intrinsic matrix K of a CameraInfo; a degenerate one raises."""
    k = np.asarray(info.k, np.float64).reshape(3, 3)
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        raise ConversionError('k', f'focal lengths must be positive, got fx={k[0, 0]}, '
                              f'fy={k[1, 1]}')
    return k


def camera_info_msg(k, height, width, frame_id='', stamp=None) -> CameraInfo:
    """Return the CameraInfo of an undistorted pinhole camera with intrinsics K (3x3)."""
    k = np.asarray(k, np.float64).reshape(3, 3)
    info = CameraInfo()
    info.header = Header(frame_id=frame_id, stamp=to_stamp(stamp))
    info.height, info.width = int(height), int(width)
    info.distortion_model = 'plumb_bob'
    info.d = [0.0] * 5
    info.k = [float(v) for v in k.ravel()]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [float(v) for v in (k[0, 0], 0, k[0, 2], 0, 0, k[1, 1], k[1, 2], 0, 0, 0, 1, 0)]
    return info


def depth_to_points(depth, k) -> np.ndarray:
    """
    Back-project a depth image through a pinhole camera (optical frame: z forward, y down).

    :param depth: (H, W) float32 metres, NaN where invalid
    :param k: (3, 3) intrinsic matrix
    :return: (H, W, 3) float32 points, NaN where the depth is invalid
    """
    height, width = depth.shape
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    u = (np.arange(width, dtype=np.float32) - np.float32(cx)) / np.float32(fx)   # (W,)
    v = (np.arange(height, dtype=np.float32) - np.float32(cy)) / np.float32(fy)  # (H,)
    points = np.empty((height, width, 3), np.float32)
    points[..., 0] = depth * u[None, :]
    points[..., 1] = depth * v[:, None]
    points[..., 2] = depth
    return points


def depth_image_to_points(depth_msg, info_msg) -> np.ndarray:
    """
    Turn a depth Image and its CameraInfo into an organized cloud in the optical frame.

    :return: (H, W, 3) float32, NaN where there is no depth
    """
    if (depth_msg.height, depth_msg.width) != (info_msg.height, info_msg.width) and \
            info_msg.height and info_msg.width:
        raise ConversionError('height', f'depth is {depth_msg.height}x{depth_msg.width} but '
                              f'camera_info is {info_msg.height}x{info_msg.width}')
    return depth_to_points(depth_to_meters(depth_msg), camera_info_matrix(info_msg))


# --- Poses ------------------------------------------------------------------------------------

def yaw_to_quaternion(yaw) -> Quaternion:
    """Return the Quaternion of a rotation by ``yaw`` about z."""
    w, x, y, z = transforms3d.euler.euler2quat(0.0, 0.0, float(yaw), 'sxyz')
    return Quaternion(x=x, y=y, z=z, w=w)


def quaternion_to_yaw(q) -> float:
    """Return the rotation about z of a Quaternion (its heading)."""
    _, _, yaw = transforms3d.euler.quat2euler([q.w, q.x, q.y, q.z], 'sxyz')
    return float(yaw)


def pose_to_matrix(pose) -> np.ndarray:
    """Return a Pose as a (4, 4) homogeneous transform."""
    q = pose.orientation
    norm = np.sqrt(q.w ** 2 + q.x ** 2 + q.y ** 2 + q.z ** 2)
    if not np.isfinite(norm) or norm < 1e-9:
        raise ConversionError('orientation', f'not a rotation (norm {norm})')
    matrix = np.eye(4)
    matrix[:3, :3] = transforms3d.quaternions.quat2mat(np.array([q.w, q.x, q.y, q.z]) / norm)
    matrix[:3, 3] = (pose.position.x, pose.position.y, pose.position.z)
    return matrix


def matrix_to_pose(matrix) -> Pose:
    """Return a (4, 4) homogeneous transform as a Pose."""
    matrix = np.asarray(matrix, np.float64)
    w, x, y, z = transforms3d.quaternions.mat2quat(matrix[:3, :3])
    return Pose(position=Point(x=float(matrix[0, 3]), y=float(matrix[1, 3]),
                               z=float(matrix[2, 3])),
                orientation=Quaternion(x=float(x), y=float(y), z=float(z), w=float(w)))


def pose_stamped(x, y, yaw, frame_id='map', stamp=None, z=0.0) -> PoseStamped:
    """Return a planar PoseStamped (a navigation goal)."""
    msg = PoseStamped()
    msg.header.frame_id = frame_id
    msg.header.stamp = to_stamp(stamp)
    msg.pose.position = Point(x=float(x), y=float(y), z=float(z))
    msg.pose.orientation = yaw_to_quaternion(yaw)
    return msg


def rendered_frame_messages(frame, camera_frame, fixed_frame, stamp=None, points=True,
                            instances=False) -> dict:
    """
    Return the camera messages of one rendered RGB-D frame, as a depth camera driver sends them.

    :param frame: a rendered frame (``leo_ros.sim.render``): ``rgb`` (H, W, 3) uint8, ``depth``
        (H, W) metres, ``intrinsics`` (3, 3), ``points`` (H, W, 3) in the camera frame,
        ``camera_pose`` (4, 4) in the fixed frame, ``instance_ids`` (H, W)
    :param points: also the organized cloud (the largest message)
    :param instances: the cloud carries the int32 ``instance`` field (the world's ground truth)
    :return: {'image', 'depth', 'camera_info', 'camera_pose'[, 'points']}
    """
    camera = PoseStamped()
    camera.header = Header(frame_id=fixed_frame, stamp=to_stamp(stamp))
    camera.pose = matrix_to_pose(frame.camera_pose)
    messages = {'image': array_to_image(frame.rgb, 'rgb8', camera_frame, stamp),
                'depth': array_to_image(frame.depth, '32FC1', camera_frame, stamp),
                'camera_info': camera_info_msg(frame.intrinsics, *frame.rgb.shape[:2],
                                               camera_frame, stamp),
                'camera_pose': camera}
    if points:
        messages['points'] = xyz_rgb_to_pointcloud2(
            frame.points, frame.rgb, camera_frame, stamp,
            extra_fields={'instance': frame.instance_ids} if instances else None)
    return messages


def transform_to_matrix(transform) -> np.ndarray:
    """Return a geometry_msgs/Transform as a (4, 4) homogeneous transform."""
    t = transform.translation
    return pose_to_matrix(Pose(position=Point(x=t.x, y=t.y, z=t.z),
                               orientation=transform.rotation))


def matrix_to_transform_stamped(matrix, parent, child, stamp=None):
    """Return a (4, 4) transform as a TransformStamped of ``child`` in ``parent``."""
    from geometry_msgs.msg import TransformStamped
    pose = matrix_to_pose(matrix)
    msg = TransformStamped()
    msg.header.frame_id = parent
    msg.header.stamp = to_stamp(stamp)
    msg.child_frame_id = child
    msg.transform.translation.x = pose.position.x
    msg.transform.translation.y = pose.position.y
    msg.transform.translation.z = pose.position.z
    msg.transform.rotation = pose.orientation
    return msg


def transform_points(matrix, points) -> np.ndarray:
    """Apply a (4, 4) transform to (..., 3) points; NaN stays NaN."""
    points = np.asarray(points, np.float32)
    rotation = np.asarray(matrix[:3, :3], np.float32)
    translation = np.asarray(matrix[:3, 3], np.float32)
    return points @ rotation.T + translation


# --- Scene objects ----------------------------------------------------------------------------

def scene_tokens_to_msg(tokens: SceneTokens, stamp=None):
    """Return ``tokens`` as a leo_ros/SceneObjects message."""
    from leo_ros.msg import SceneObject, SceneObjects
    msg = SceneObjects()
    msg.header.frame_id = tokens.frame_id
    msg.header.stamp = to_stamp(tokens.stamp if stamp is None else stamp)
    for k in range(len(tokens)):
        obj = SceneObject()
        obj.id = int(tokens.ids[k])
        obj.label = str(tokens.labels[k])
        obj.confidence = float(tokens.confidences[k])
        obj.centroid = Point(x=float(tokens.centers[k, 0]), y=float(tokens.centers[k, 1]),
                             z=float(tokens.centers[k, 2]))
        obj.size.x, obj.size.y, obj.size.z = (float(v) for v in tokens.sizes[k])
        obj.color = ColorRGBA(r=float(tokens.colors[k, 0]), g=float(tokens.colors[k, 1]),
                              b=float(tokens.colors[k, 2]), a=1.0)
        obj.point_count = int(tokens.point_counts[k])
        msg.objects.append(obj)
    msg.points_per_object = int(tokens.points.shape[1])
    msg.point_dim = POINT_DIM
    msg.points = array.array('f', np.ascontiguousarray(tokens.points, np.float32).tobytes())
    msg.point_scales = array.array('f', np.asarray(tokens.scales, np.float32).tobytes())
    return msg


def scene_objects_to_tokens(msg) -> SceneTokens:
    """Return a leo_ros/SceneObjects message as SceneTokens; inconsistent sizes raise."""
    count, per_object = len(msg.objects), int(msg.points_per_object)
    if msg.point_dim != POINT_DIM:
        raise ConversionError('point_dim', f'expected {POINT_DIM}, got {msg.point_dim}')
    points = np.asarray(msg.points, np.float32)
    if points.size != count * per_object * POINT_DIM:
        raise ConversionError('points', f'{points.size} values for {count} objects x '
                              f'{per_object} points x {POINT_DIM}')
    if len(msg.point_scales) != count:
        raise ConversionError('point_scales', f'{len(msg.point_scales)} for {count} objects')
    return SceneTokens(
        points=points.reshape(count, per_object, POINT_DIM),
        centers=np.array([[o.centroid.x, o.centroid.y, o.centroid.z] for o in msg.objects],
                         np.float32).reshape(count, 3),
        sizes=np.array([[o.size.x, o.size.y, o.size.z] for o in msg.objects],
                       np.float32).reshape(count, 3),
        colors=np.array([[o.color.r, o.color.g, o.color.b] for o in msg.objects],
                        np.float32).reshape(count, 3),
        scales=np.asarray(msg.point_scales, np.float32),
        point_counts=np.array([o.point_count for o in msg.objects], np.int64),
        ids=np.array([o.id for o in msg.objects], np.int64),
        labels=[o.label for o in msg.objects],
        confidences=np.array([o.confidence for o in msg.objects], np.float32),
        frame_id=msg.header.frame_id, stamp=stamp_to_seconds(msg.header.stamp))
