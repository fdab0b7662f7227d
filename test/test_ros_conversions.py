"""Unit tests of the pure message conversions (no node, no DDS)."""

import math
import struct

from geometry_msgs.msg import Pose
from hypothesis import given, settings
from hypothesis import strategies as st
from leo_ros.ros import conversions as conv
from leo_ros.scene_tokens import SceneTokens
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField

STRUCT_CODES = {PointField.INT8: 'b', PointField.UINT8: 'B', PointField.INT16: 'h',
                PointField.UINT16: 'H', PointField.INT32: 'i', PointField.UINT32: 'I',
                PointField.FLOAT32: 'f', PointField.FLOAT64: 'd'}
SIZES = {k: struct.calcsize(v) for k, v in STRUCT_CODES.items()}


def encode_cloud(height, width, fields, values, big_endian, point_pad, row_pad):
    """
    Encode a cloud point by point with ``struct``: independent of the numpy decoder.

    :param fields: list of (name, datatype); laid out in order with 1 byte of padding between
    :param values: name -> (H, W) array
    """
    offsets, offset = [], 0
    for _, datatype in fields:
        offsets.append(offset)
        offset += SIZES[datatype] + 1
    point_step = offset + point_pad
    row_step = point_step * width + row_pad
    data = bytearray(row_step * height)
    order = '>' if big_endian else '<'
    for r in range(height):
        for c in range(width):
            base = r * row_step + c * point_step
            for (name, datatype), off in zip(fields, offsets):
                struct.pack_into(order + STRUCT_CODES[datatype], data, base + off,
                                 values[name][r, c].item())
    msg = PointCloud2(height=height, width=width, is_bigendian=big_endian,
                      point_step=point_step, row_step=row_step, is_dense=False)
    msg.fields = [PointField(name=n, offset=o, datatype=d, count=1)
                  for (n, d), o in zip(fields, offsets)]
    msg.data = bytes(data)
    return msg


@settings(max_examples=40, deadline=None)
@given(height=st.integers(1, 4), width=st.integers(1, 5), big_endian=st.booleans(),
       xyz_type=st.sampled_from([PointField.FLOAT32, PointField.FLOAT64]),
       extra=st.lists(st.sampled_from(sorted(STRUCT_CODES)), max_size=3),
       order_seed=st.integers(0, 1000), point_pad=st.integers(0, 7),
       row_pad=st.integers(0, 9), colour=st.sampled_from([None, 'float', 'uint']),
       seed=st.integers(0, 2 ** 16))
def test_pointcloud2_any_layout(height, width, big_endian, xyz_type, extra, order_seed,
                                point_pad, row_pad, colour, seed):
    rng = np.random.default_rng(seed)
    fields = [(axis, xyz_type) for axis in 'xyz']
    fields += [(f'extra{i}', datatype) for i, datatype in enumerate(extra)]
    rgb8 = rng.integers(0, 256, (height, width, 3))
    packed = (rgb8[..., 0] << 16) | (rgb8[..., 1] << 8) | rgb8[..., 2]
    values = {axis: rng.normal(size=(height, width)).astype(np.float32) for axis in 'xyz'}
    values['x'][0, 0] = np.nan                                # an invalid point
    if colour == 'float':
        fields.append(('rgb', PointField.FLOAT32))
        values['rgb'] = packed.astype(np.uint32).view(np.float32)
    elif colour == 'uint':
        fields.append(('rgba', PointField.UINT32))
        values['rgba'] = packed.astype(np.uint32) | np.uint32(0xFF000000)
    for i, datatype in enumerate(extra):
        values[f'extra{i}'] = np.ones((height, width), np.dtype(STRUCT_CODES[datatype]))
    np.random.default_rng(order_seed).shuffle(fields)
    msg = encode_cloud(height, width, fields, values, big_endian, point_pad, row_pad)

    xyz, rgb = conv.pointcloud2_to_xyz_rgb(msg)
    assert xyz.shape == (height, width, 3) and xyz.dtype == np.float32
    expected = np.stack([values[a] for a in 'xyz'], axis=-1)
    expected[0, 0] = np.nan
    np.testing.assert_array_equal(np.isnan(xyz), np.isnan(expected))
    np.testing.assert_allclose(np.nan_to_num(xyz), np.nan_to_num(expected), rtol=1e-6)
    if colour is None:
        assert rgb is None
    else:
        np.testing.assert_allclose(rgb * 255.0, rgb8, atol=1e-3)
    flat, _ = conv.pointcloud2_to_xyz_rgb(msg, organized=False, skip_nans=True)
    assert flat.shape == (height * width - 1, 3)


@pytest.mark.parametrize('organized', [True, False])
def test_pointcloud2_round_trip(organized):
    rng = np.random.default_rng(1)
    shape = (48, 64, 3) if organized else (500, 3)
    xyz = rng.normal(size=shape).astype(np.float32)
    xyz[3] = np.nan
    rgb = rng.integers(0, 256, shape).astype(np.uint8)
    labels = rng.integers(-1, 9, shape[:-1]).astype(np.int32)
    msg = conv.xyz_rgb_to_pointcloud2(xyz, rgb, frame_id='camera_optical_frame', stamp=12.25,
                                      extra_fields={'label': labels})
    assert msg.header.frame_id == 'camera_optical_frame'
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (12, 250_000_000)
    assert not msg.is_dense
    back, back_rgb = conv.pointcloud2_to_xyz_rgb(msg, organized=organized)
    np.testing.assert_array_equal(back, xyz)
    np.testing.assert_array_equal(np.round(back_rgb * 255).astype(np.uint8), rgb)
    np.testing.assert_array_equal(conv.pointcloud2_to_array(msg)['label'].reshape(
        labels.shape), labels)


def _good_cloud():
    return conv.xyz_rgb_to_pointcloud2(np.zeros((2, 3, 3), np.float32))


@pytest.mark.parametrize('breakage,field', [
    (lambda m: setattr(m, 'data', bytes(m.data)[:-1]), 'data'),
    (lambda m: setattr(m, 'width', 0), 'width'),
    (lambda m: setattr(m, 'height', 0), 'height'),
    (lambda m: setattr(m, 'point_step', 0), 'point_step'),
    (lambda m: setattr(m, 'row_step', 4), 'row_step'),
    (lambda m: setattr(m.fields[1], 'datatype', 42), 'fields[y].datatype'),
    (lambda m: setattr(m.fields[2], 'name', 'w'), 'fields[z]'),
    (lambda m: setattr(m.fields[0], 'offset', 13), 'fields[x].offset'),
])
def test_malformed_pointcloud2_names_the_field(breakage, field):
    msg = _good_cloud()
    breakage(msg)
    with pytest.raises(conv.ConversionError) as info:
        conv.pointcloud2_to_xyz_rgb(msg)
    assert info.value.field == field
    assert field in str(info.value)


def test_empty_cloud_is_its_own_error():
    msg = _good_cloud()
    msg.width = 0
    with pytest.raises(conv.EmptyCloudError):
        conv.pointcloud2_to_xyz_rgb(msg)


@pytest.mark.parametrize('encoding,shape,kind', [
    ('rgb8', (5, 7, 3), np.uint8), ('bgr8', (5, 7, 3), np.uint8),
    ('mono8', (5, 7), np.uint8), ('16UC1', (5, 7), np.uint16), ('32FC1', (5, 7), np.float32),
])
def test_image_round_trip(encoding, shape, kind):
    rng = np.random.default_rng(2)
    image = (rng.random(shape) * 1000).astype(kind)
    msg = conv.array_to_image(image, encoding, frame_id='cam', stamp=3.0)
    assert (msg.height, msg.width, msg.encoding) == (5, 7, encoding)
    np.testing.assert_array_equal(conv.image_to_array(msg), image)


def test_bgr8_bytes_are_blue_first():
    msg = conv.array_to_image(np.array([[[10, 20, 30]]], np.uint8), 'bgr8')
    assert bytes(msg.data) == bytes([30, 20, 10])


def test_image_with_row_padding_and_big_endian():
    depth = np.arange(12, dtype=np.uint16).reshape(3, 4) * 300
    rows = [depth[r].astype('>u2').tobytes() + b'\xff\xff' for r in range(3)]
    msg = Image(height=3, width=4, encoding='16UC1', is_bigendian=1, step=10,
                data=b''.join(rows))
    np.testing.assert_array_equal(conv.image_to_array(msg), depth)


@pytest.mark.parametrize('encoding,field', [('yuv422', 'encoding'), ('rgb8', 'data'),
                                            ('rgb8', 'step')])
def test_malformed_image_names_the_field(encoding, field):
    msg = conv.array_to_image(np.zeros((4, 4, 3), np.uint8), 'rgb8')
    msg.encoding = encoding
    if field == 'data':
        msg.data = bytes(msg.data)[:-3]
    if field == 'step':
        msg.step = 5
    with pytest.raises(conv.ConversionError) as info:
        conv.image_to_array(msg)
    assert info.value.field == field


def _camera_info(width=8, height=6, fx=4.0, fy=5.0, cx=3.5, cy=2.5):
    info = CameraInfo(width=width, height=height)
    info.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    return info


@pytest.mark.parametrize('encoding,scale', [('16UC1', 1000.0), ('32FC1', 1.0)])
def test_depth_image_to_points_matches_pinhole_model(encoding, scale):
    depth_m = np.full((6, 8), 2.0, np.float32)
    depth_m[1, 2] = 0.0                                       # no return
    msg = conv.array_to_image((depth_m * scale).astype(conv.IMAGE_ENCODINGS[encoding][0]),
                              encoding)
    points = conv.depth_image_to_points(msg, _camera_info())
    assert points.shape == (6, 8, 3)
    assert np.isnan(points[1, 2]).all()
    u, v = 7, 0
    np.testing.assert_allclose(points[v, u], [(u - 3.5) * 2.0 / 4.0, (v - 2.5) * 2.0 / 5.0,
                                              2.0], rtol=1e-6)


def test_depth_rejects_colour_and_mismatched_info():
    colour = conv.array_to_image(np.zeros((6, 8, 3), np.uint8), 'rgb8')
    with pytest.raises(conv.ConversionError, match='encoding'):
        conv.depth_to_meters(colour)
    depth = conv.array_to_image(np.ones((6, 8), np.float32), '32FC1')
    with pytest.raises(conv.ConversionError, match='height'):
        conv.depth_image_to_points(depth, _camera_info(width=16, height=12))
    with pytest.raises(conv.ConversionError, match='k'):
        conv.depth_image_to_points(depth, _camera_info(fx=0.0))


@pytest.mark.parametrize('yaw', [0.0, 0.5, math.pi / 2, -2.0, 3.1])
def test_yaw_quaternion_round_trip(yaw):
    q = conv.yaw_to_quaternion(yaw)
    np.testing.assert_allclose([q.x, q.y, q.z, q.w],
                               [0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)], atol=1e-12)
    assert conv.quaternion_to_yaw(q) == pytest.approx(yaw)


def test_pose_matrix_round_trip_and_points():
    pose = conv.pose_stamped(1.0, -2.0, math.pi / 2, z=0.5).pose
    matrix = conv.pose_to_matrix(pose)
    np.testing.assert_allclose(conv.transform_points(matrix, [[1.0, 0.0, 0.0]]),
                               [[1.0, -1.0, 0.5]], atol=1e-6)
    back = conv.matrix_to_pose(matrix)
    assert conv.quaternion_to_yaw(back.orientation) == pytest.approx(math.pi / 2)
    assert (back.position.x, back.position.y, back.position.z) == (1.0, -2.0, 0.5)
    with pytest.raises(conv.ConversionError, match='orientation'):
        bad = Pose()
        bad.orientation.w = 0.0
        conv.pose_to_matrix(bad)


def test_scene_tokens_round_trip():
    rng = np.random.default_rng(3)
    clouds = [rng.normal(size=(50 + 10 * k, 3)) for k in range(3)]
    tokens = SceneTokens.from_object_clouds(clouds, ids=[4, 7, 9], labels=['mug', 'box', 'x'],
                                            points_per_object=16, frame_id='map', stamp=2.5)
    back = conv.scene_objects_to_tokens(conv.scene_tokens_to_msg(tokens))
    for name in ('points', 'centers', 'sizes', 'colors', 'scales', 'point_counts', 'ids'):
        np.testing.assert_array_equal(getattr(back, name), getattr(tokens, name))
    assert back.labels == tokens.labels and back.frame_id == 'map' and back.stamp == 2.5
    msg = conv.scene_tokens_to_msg(tokens)
    msg.points = msg.points[:-1]
    with pytest.raises(conv.ConversionError, match='points'):
        conv.scene_objects_to_tokens(msg)


def test_agrees_with_sensor_msgs_py():
    point_cloud2 = pytest.importorskip('sensor_msgs_py.point_cloud2')
    rng = np.random.default_rng(4)
    xyz = rng.normal(size=(40, 3)).astype(np.float32)
    theirs = point_cloud2.create_cloud_xyz32(conv.Header(frame_id='a'), xyz.tolist())
    ours, _ = conv.pointcloud2_to_xyz_rgb(theirs, organized=False)
    np.testing.assert_array_equal(ours, xyz)
    back = point_cloud2.read_points_numpy(conv.xyz_rgb_to_pointcloud2(xyz),
                                          field_names=('x', 'y', 'z'))
    np.testing.assert_array_equal(back, xyz)


def test_agrees_with_cv_bridge():
    cv_bridge = pytest.importorskip('cv_bridge')
    bridge = cv_bridge.CvBridge()
    image = np.random.default_rng(5).integers(0, 255, (4, 6, 3)).astype(np.uint8)
    ours = conv.array_to_image(image, 'rgb8')
    np.testing.assert_array_equal(bridge.imgmsg_to_cv2(ours, 'rgb8'), image)
    theirs = bridge.cv2_to_imgmsg(image, 'bgr8')
    np.testing.assert_array_equal(conv.image_to_array(theirs), image[..., ::-1])


def test_backends_name_the_library_in_use():
    backends = conv.backends()
    assert backends['pointcloud2'] in ('sensor_msgs_py', 'leo_ros')
    assert backends['image'] in ('cv_bridge', 'rosbags-image', 'leo_ros')
    try:
        import sensor_msgs_py.point_cloud2  # noqa: F401
        assert backends['pointcloud2'] == 'sensor_msgs_py'
    except ImportError:
        assert backends['pointcloud2'] == 'leo_ros'


def test_camera_info_of_intrinsics_reads_back():
    k = np.array([[525.0, 0.0, 319.5], [0.0, 520.0, 239.5], [0.0, 0.0, 1.0]])
    info = conv.camera_info_msg(k, 480, 640, 'camera_optical_frame', 12.5)
    assert (info.height, info.width, info.header.frame_id) == (480, 640, 'camera_optical_frame')
    assert conv.stamp_to_seconds(info.header.stamp) == 12.5
    np.testing.assert_array_equal(conv.camera_info_matrix(info), k)
    # the projection matrix of an undistorted camera: [K | 0]
    np.testing.assert_array_equal(np.reshape(info.p, (3, 4)), np.hstack([k, np.zeros((3, 1))]))


def test_a_rendered_frame_becomes_a_depth_cameras_messages():
    from types import SimpleNamespace
    rng = np.random.default_rng(0)
    k = np.array([[50.0, 0.0, 7.5], [0.0, 50.0, 5.5], [0.0, 0.0, 1.0]])
    pose = np.eye(4)
    pose[:3, 3] = (1.0, 2.0, 1.2)
    frame = SimpleNamespace(rgb=rng.integers(0, 255, (12, 16, 3), dtype=np.uint8),
                            depth=rng.uniform(0.5, 3.0, (12, 16)).astype(np.float32),
                            points=rng.normal(size=(12, 16, 3)).astype(np.float32),
                            intrinsics=k, camera_pose=pose,
                            instance_ids=rng.integers(0, 5, (12, 16), dtype=np.int32))
    messages = conv.rendered_frame_messages(frame, 'cam', 'map', 3.0, instances=True)
    assert {m.header.frame_id for n, m in messages.items() if n != 'camera_pose'} == {'cam'}
    assert messages['camera_pose'].header.frame_id == 'map'
    np.testing.assert_array_equal(conv.image_to_array(messages['image']), frame.rgb)
    np.testing.assert_array_equal(conv.depth_to_meters(messages['depth']), frame.depth)
    np.testing.assert_array_equal(conv.camera_info_matrix(messages['camera_info']), k)
    np.testing.assert_allclose(conv.pose_to_matrix(messages['camera_pose'].pose), pose)
    cloud = conv.pointcloud2_to_array(messages['points'])
    assert 'instance' in cloud.dtype.names
    np.testing.assert_array_equal(cloud['instance'].reshape(12, 16), frame.instance_ids)
    assert 'points' not in conv.rendered_frame_messages(frame, 'cam', 'map', points=False)
