"""
Ego-view image -> one pooled token.

The default is a small CNN trained with the policy (LEO uses a ConvNeXt; timm cannot be
installed here because it pulls torchvision). With ``kind='hf'`` a transformers vision model
(ConvNext, CLIP vision, anything with a ``pooler_output``) is loaded from a local directory.
"""

from leo_ros.model.config import ImageEncoderConfig
import torch
from torch import nn
import torch.nn.functional as F

#: ImageNet statistics, which both the CNN and the pretrained models expect
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class ImageEncoder(nn.Module):
    """(B, 3, H, W) float images in [0, 1] -> (B, out_dim)."""

    def __init__(self, config: ImageEncoderConfig = None):
        super().__init__()
        self.config = config or ImageEncoderConfig()
        self.register_buffer('mean', torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self.backbone = None
        if self.config.kind == 'conv':
            layers, in_channels = [], 3
            for channels in self.config.channels:
                layers += [nn.Conv2d(in_channels, channels, 3, stride=2, padding=1),
                           nn.GroupNorm(1, channels), nn.GELU()]
                in_channels = channels
            self.backbone = nn.Sequential(*layers)
            self._out_dim = in_channels
        elif self.config.kind == 'hf':
            from transformers import AutoConfig, AutoModel
            hf_config = AutoConfig.from_pretrained(self.config.path, local_files_only=True)
            if getattr(hf_config, 'model_type', '') == 'clip':
                from transformers import CLIPVisionModel
                self.backbone = CLIPVisionModel.from_pretrained(self.config.path,
                                                                local_files_only=True)
            else:
                self.backbone = AutoModel.from_pretrained(self.config.path, local_files_only=True)
            vision = getattr(self.backbone.config, 'vision_config', self.backbone.config)
            sizes = getattr(vision, 'hidden_sizes', None)
            self._out_dim = sizes[-1] if sizes else vision.hidden_size
            if self.config.freeze:
                self.backbone.requires_grad_(False)
        else:
            self._out_dim = 1

    @property
    def out_dim(self) -> int:
        return self._out_dim

    def forward(self, images):
        """
        Encode.

        :param images: (B, 3, H, W) float in [0, 1]
        :return: (B, out_dim)
        """
        if self.config.kind == 'none':
            return images.new_zeros(images.shape[0], 1)
        size = self.config.image_size
        if images.shape[-2:] != (size, size):
            images = F.interpolate(images, size=(size, size), mode='bilinear',
                                   align_corners=False)
        images = (images - self.mean) / self.std
        if self.config.kind == 'conv':
            return self.backbone(images).mean(dim=(2, 3))
        return self.backbone(pixel_values=images).pooler_output.flatten(1)
