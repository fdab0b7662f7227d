"""
Ego-view images of any common encoding -> the RGB array the policy reads (pure functions).

:func:`check_image_header` looks at an Image's header fields only (cheap enough for a
subscription callback) and says why an image cannot be used; :func:`image_to_rgb` decodes an
accepted one into (H, W, 3) uint8 RGB:

| encoding | what happens |
| --- | --- |
| rgb8, bgr8, rgba8, bgra8, 8UC3 | colour, reordered to RGB, alpha dropped |
| mono8, 8UC1 | grey, repeated into three channels |
| mono16 | grey, the high byte of each 16-bit value |
| 32FC1, 16UC1 | refused: a depth (or float) image is not an ego-view picture |
| anything else | refused |

Images smaller than ``MIN_IMAGE_SIDE`` pixels on a side are refused (a 1x1 image carries no
view but would still change the policy's answers).
"""

from leo_ros.ros.conversions import ConversionError, image_to_array
import numpy as np

#: Smallest accepted image side [px].
MIN_IMAGE_SIDE = 32
#: Largest accepted image side [px].
MAX_IMAGE_SIDE = 8192
COLOR_ENCODINGS = ('rgb8', 'bgr8', 'rgba8', 'bgra8', '8UC3')
MONO_ENCODINGS = ('mono8', '8UC1', 'mono16')
DEPTH_ENCODINGS = ('32FC1', '16UC1')
_BYTES_PER_PIXEL = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, '8UC3': 3, 'mono8': 1,
                    '8UC1': 1, 'mono16': 2}


class ImageRefused(ValueError):
    """An image the policy will not use; ``reason`` is a short key for counting."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


def check_image_header(msg, min_side=MIN_IMAGE_SIDE):
    """
    Raise :class:`ImageRefused` when an Image cannot be an ego view (header fields only).

    Checks the encoding, the size, and that ``step`` and the data length fit them.
    """
    encoding = str(msg.encoding)
    if encoding in DEPTH_ENCODINGS:
        raise ImageRefused('image_encoding', f'camera/image has encoding {encoding}, a depth '
                           'or float image, not a colour or grey picture: ignored')
    if encoding not in _BYTES_PER_PIXEL:
        raise ImageRefused('image_encoding', f'camera/image has unsupported encoding '
                           f'{encoding!r}; supported: {", ".join(_BYTES_PER_PIXEL)}')
    height, width = int(msg.height), int(msg.width)
    if min(height, width) < min_side:
        raise ImageRefused('image_tiny', f'camera/image is {width}x{height}: smaller than '
                           f'{min_side} px on a side')
    if max(height, width) > MAX_IMAGE_SIDE:
        raise ImageRefused('image_huge', f'camera/image is {width}x{height}: larger than '
                           f'{MAX_IMAGE_SIDE} px on a side')
    row = width * _BYTES_PER_PIXEL[encoding]
    if int(msg.step) < row or len(msg.data) < (height - 1) * int(msg.step) + row:
        raise ImageRefused('image_size', f'camera/image data ({len(msg.data)} bytes, step '
                           f'{msg.step}) does not hold {width}x{height} {encoding}')


def image_to_rgb(msg, min_side=MIN_IMAGE_SIDE) -> np.ndarray:
    """
    Decode an accepted Image into (H, W, 3) uint8 RGB; raise :class:`ImageRefused` otherwise.

    :param msg: sensor_msgs/Image
    :return: (H, W, 3) uint8
    """
    check_image_header(msg, min_side)
    try:
        pixels = image_to_array(msg)
    except ConversionError as error:
        raise ImageRefused('image_data', f'camera/image cannot be decoded: {error}') from error
    if msg.encoding == 'mono16':
        pixels = (pixels >> 8).astype(np.uint8)                       # (H, W)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)              # (H, W, 3)
    return np.ascontiguousarray(pixels[..., :3].astype(np.uint8))
