"""
Ego-view image -> one pooled token.

A small CNN trained with the policy (LEO uses a ConvNeXt; timm cannot be installed here because it
pulls torchvision). Images are resized by whole-factor block averaging, the same way in
training and at run time.
"""

from leo_ros.model.config import ImageConfig
import numpy as np
from torch import nn


class ImageEncoder(nn.Module):
    """(B, 3, H, W) images in [-0.5, 0.5] -> (B, out_dim)."""

    def __init__(self, config: ImageConfig, out_dim: int):
        super().__init__()
        layers, channels = [], 3
        for width in config.channels:
            layers += [nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.GELU()]
            channels = width
        self.conv = nn.Sequential(*layers)
        self.proj = nn.Linear(channels, out_dim)

    def forward(self, image):
        """(B, 3, H, W) -> (B, out_dim)."""
        return self.proj(self.conv(image).mean(dim=(2, 3)))


def resize_image(image, size) -> np.ndarray:
    """
    Area-averaging resize.

    :param image: (H, W, 3) uint8
    :param size: (width, height)
    :return: (height, width, 3) uint8
    """
    width, height = size
    if image.shape[:2] == (height, width):
        return image
    if image.shape[0] % height == 0 and image.shape[1] % width == 0:
        # whole-factor shrink: average blocks (what the training images get too)
        fy, fx = image.shape[0] // height, image.shape[1] // width
        blocks = image.reshape(height, fy, width, fx, -1).astype(np.float32)
        return blocks.mean(axis=(1, 3)).round().astype(np.uint8)
    rows = (np.arange(height) * image.shape[0] / height).astype(int)
    cols = (np.arange(width) * image.shape[1] / width).astype(int)
    return image[rows][:, cols]


def image_to_array(image) -> np.ndarray:
    """Return an ego-view image (H, W, 3) uint8 as (3, H, W) float32 in [-0.5, 0.5]."""
    return (np.asarray(image, np.float32) / 255.0 - 0.5).transpose(2, 0, 1).copy()
