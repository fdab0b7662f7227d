"""Input validation at the node boundary: images, scenes, intrinsics, maps (pure functions)."""

import math

from leo_ros.ros.image_encodings import check_image_header, image_to_rgb, ImageRefused
from leo_ros.ros.validation import (check_intrinsics, InputRefused, RefusalCounter,
                                    scene_message_to_tokens)
import numpy as np
import pytest


def image(encoding, data):
    from sensor_msgs.msg import Image
    data = np.ascontiguousarray(data)
    channels = data.shape[2] if data.ndim == 3 else 1
    return Image(height=data.shape[0], width=data.shape[1], encoding=encoding,
                 step=data.shape[1] * channels * data.itemsize, data=data.tobytes())


RGB = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)


@pytest.mark.parametrize('encoding,data', [
    ('rgb8', RGB), ('bgr8', RGB[..., ::-1]), ('rgba8', np.dstack([RGB, RGB[..., :1]])),
    ('bgra8', np.dstack([RGB[..., ::-1], RGB[..., :1]])),
])
def test_colour_encodings_become_the_same_rgb(encoding, data):
    assert np.array_equal(image_to_rgb(image(encoding, data)), RGB)


def test_grey_encodings_become_three_equal_channels():
    grey = RGB[..., 0]
    out = image_to_rgb(image('mono8', grey))
    assert out.shape == (40, 50, 3) and out.dtype == np.uint8
    assert np.array_equal(out[..., 0], grey) and np.array_equal(out[..., 2], grey)
    wide = grey.astype(np.uint16) * 257                     # 0..65535
    assert np.array_equal(image_to_rgb(image('mono16', wide))[..., 1], grey)


@pytest.mark.parametrize('encoding,data,reason', [
    ('32FC1', np.ones((40, 50), np.float32), 'image_encoding'),
    ('16UC1', np.ones((40, 50), np.uint16), 'image_encoding'),
    ('yuv422', np.ones((40, 50, 2), np.uint8), 'image_encoding'),
    ('rgb8', RGB[:1, :1], 'image_tiny'),
    ('rgb8', RGB[:20], 'image_tiny'),
])
def test_depth_odd_and_tiny_images_are_refused_with_a_reason(encoding, data, reason):
    with pytest.raises(ImageRefused) as refused:
        image_to_rgb(image(encoding, data))
    assert refused.value.reason == reason


def test_a_header_that_does_not_fit_its_data_is_refused():
    msg = image('rgb8', RGB)
    msg.data = bytes(msg.data)[:100]
    with pytest.raises(ImageRefused, match='does not hold'):
        check_image_header(msg)


def scene_message(**change):
    from leo_ros.ros.conversions import scene_tokens_to_msg
    from leo_ros.scene_tokens import SceneTokens
    tokens = SceneTokens.from_object_clouds([np.random.default_rng(k).normal(size=(30, 3)) + k
                                             for k in range(3)], points_per_object=16)
    msg = scene_tokens_to_msg(tokens)
    for path, value in change.items():
        target = msg.objects[1]
        *parents, name = path.split('__')
        for parent in parents:
            target = getattr(target, parent)
        setattr(target, name, value)
    return msg


def test_a_good_scene_converts():
    tokens = scene_message_to_tokens(scene_message())
    assert len(tokens) == 3 and np.isfinite(tokens.centers).all()


@pytest.mark.parametrize('change,reason', [
    ({'centroid__x': math.nan}, 'scene_non_finite'),
    ({'size__z': math.inf}, 'scene_non_finite'),
    ({'color__g': math.nan}, 'scene_non_finite'),
    ({'size__x': -0.1}, 'scene_negative_size'),
    ({'id': 0}, 'scene_duplicate_ids'),
])
def test_bad_scenes_are_refused_with_a_reason(change, reason):
    with pytest.raises(InputRefused) as refused:
        scene_message_to_tokens(scene_message(**change))
    assert refused.value.reason == reason and 'scene message refused' in str(refused.value)


def test_non_finite_points_and_malformed_scenes_are_refused():
    msg = scene_message()
    points = np.asarray(msg.points, np.float32)
    points[7] = math.nan
    msg.points = points.tolist()
    with pytest.raises(InputRefused, match='points has 1 non-finite'):
        scene_message_to_tokens(msg)
    msg.points = points[:10].tolist()
    with pytest.raises(InputRefused) as refused:
        scene_message_to_tokens(msg)
    assert refused.value.reason == 'scene_malformed'


@pytest.mark.parametrize('k,problem', [
    ([math.inf, 0, 32, 0, 60, 24, 0, 0, 1], 'non-finite'),
    ([math.nan] * 9, 'non-finite'),
    ([0.0, 0, 32, 0, 60, 24, 0, 0, 1], 'positive'),
    ([60.0, 0, 32, 0, -60, 24, 0, 0, 1], 'positive'),
])
def test_bad_intrinsics_are_refused(k, problem):
    from sensor_msgs.msg import CameraInfo
    with pytest.raises(InputRefused, match=problem):
        check_intrinsics(CameraInfo(k=[float(v) for v in k]))
    good = check_intrinsics(CameraInfo(k=[60.0, 0, 32, 0, 60, 24, 0, 0, 1]))
    assert good.shape == (3, 3)


def test_maps_round_trip_and_bad_maps_are_refused():
    from leo_ros.ros.maps import map_from_occupancy_grid, occupancy_grid_message
    grid = np.zeros((5, 8), np.int8)
    grid[2, 3] = 100
    grid[0, 0] = -1
    msg = occupancy_grid_message(0.25, (1.0, -2.0, 0.0), grid, 'map')
    back = map_from_occupancy_grid(msg)
    assert back.bounds() == pytest.approx((1.0, 3.0, -2.0, -0.75))
    assert np.array_equal(back.occupancy, grid) and not back.is_free(1.9, -1.4)
    msg.info.resolution = 0.0
    with pytest.raises(InputRefused, match='resolution'):
        map_from_occupancy_grid(msg)
    msg = occupancy_grid_message(0.25, (1.0, -2.0, 0.0), grid, 'map')
    msg.data = msg.data[:-1]
    with pytest.raises(InputRefused) as refused:
        map_from_occupancy_grid(msg)
    assert refused.value.reason == 'map'


def test_refusal_counter_counts_by_reason_and_stays_bounded():
    counter = RefusalCounter(max_reasons=3)
    for reason in ('a', 'a', 'b', 'c', 'd', 'e'):
        counter.add(reason, f'because {reason}')
    assert counter.counts() == {'a': 2, 'b': 1, 'c': 1, 'other': 2}
    assert counter.last('other') == 'because e' and counter.total() == 6
