"""
The scene encoder: LEO's spatial transformer over object tokens, then instruction grounding.

Object tokens (frozen object-encoder embedding + colour + robot-frame box) pass the scene layers:
self-attention with LEO's pairwise geometry (distance, dz/d, dxy/d, dy/dxy, dx/dxy of every
pair entering the attention logits as log(sigmoid(w . pair + b)), w and b predicted per query
and head), optionally the attended objects' relative geometry in the values (``pair_values``),
and a location embedding added at every layer. These tokens read no text: they are the scene
part of the prompt, cached across instructions.

The grounding layers continue from them with the instruction (``SceneConfig``): the pooled
MiniLM vector modulates the tokens (FiLM), they cross-attend to its word pieces, and an early
head says which objects the text names and which one it is about; every token then gets where
the other named objects lie relative to it (``named_geometry``) before the layers run.
"""

import math

from leo_ros.model.config import SceneConfig
from leo_ros.model.text_encoder import TEXT_DIM
import torch
from torch import nn

#: masked logit (finite: safe in half precision)
NEG = -1e4
#: object feature layout after the encoder embedding: colour (3), centre (3), size (3)
GEOMETRY_FEATURES = 9
#: features of ``pair_values``
PAIR_VALUE_FEATURES = 10
#: features of ``named_geometry``
NAMED_GEOMETRY_FEATURES = 6


def pairwise_features(centers) -> torch.Tensor:
    """
    Return LEO's pair geometry for every object pair.

    :param centers: (B, K, 3) [m]
    :return: (B, K, K, 5): distance, dz/d, dxy/d, dy/dxy, dx/dxy of c_j - c_i
    """
    delta = centers[:, None, :, :] - centers[:, :, None, :]             # (B, K, K, 3)
    distance = delta.norm(dim=-1).clamp(min=1e-4)
    planar = delta[..., :2].norm(dim=-1).clamp(min=1e-4)
    return torch.stack([distance, delta[..., 2] / distance, planar / distance,
                        delta[..., 1] / planar, delta[..., 0] / planar], dim=-1)


def pair_values(centers, sizes) -> torch.Tensor:
    """
    Return where object j lies relative to object i, for every pair.

    Offsets are in the robot frame (x forward, y left), so "left of" is a sign. Volume ratios
    come split into their positive and negative parts: averaged over the objects a head attends
    to, they still say whether any of them is larger.

    :param centers: (B, K, 3) [m]
    :param sizes: (B, K, 3) extents [m]
    :return: (B, K, K, 10): dx, dy, dz, distance, planar distance (c_j - c_i), log extent
        ratios (3) and the two parts of the log volume ratio (size_j / size_i)
    """
    delta = centers[:, None, :, :] - centers[:, :, None, :]             # (B, K, K, 3)
    log_sizes = torch.log(sizes.clamp(min=0.01))                        # (B, K, 3)
    ratios = log_sizes[:, None, :, :] - log_sizes[:, :, None, :]        # (B, K, K, 3)
    volume = ratios.sum(dim=-1, keepdim=True)                           # (B, K, K, 1)
    return torch.cat([delta, delta.norm(dim=-1, keepdim=True),
                      delta[..., :2].norm(dim=-1, keepdim=True), ratios, volume.clamp(min=0),
                      (-volume).clamp(min=0)], dim=-1)


def named_geometry(centers, sizes, named, mask) -> torch.Tensor:
    """
    Return where the other named objects lie relative to each object.

    For object i: the ``named``-weighted means over the other real objects j of c_j - c_i
    (robot frame, [m]), log(largest extent_j / largest extent_i) and log(volume_j / volume_i),
    then the summed weight of the other named objects (capped at 2).

    :param centers: (B, K, 3) [m]
    :param sizes: (B, K, 3) extents [m]
    :param named: (B, K) probability that the instruction names the object
    :param mask: (B, K) True for real objects
    :return: (B, K, 6)
    """
    log_sizes = torch.log(sizes.clamp(min=0.01))                        # (B, K, 3)
    per_object = torch.cat([centers, log_sizes.amax(dim=-1, keepdim=True),
                            log_sizes.sum(dim=-1, keepdim=True)], dim=-1)  # (B, K, 5)
    delta = per_object[:, None, :, :] - per_object[:, :, None, :]     # (B, K, K, 5): j - i
    others = (named * mask)[:, None, :].expand(-1, named.shape[1], -1)  # (B, K, K)
    others = others * (1 - torch.eye(named.shape[1], device=named.device))
    weight = others.sum(dim=-1, keepdim=True)                           # (B, K, 1)
    mean = torch.einsum('bij,bijf->bif', others, delta) / (weight + 1e-3)
    return torch.cat([mean, weight.clamp(max=2)], dim=-1)


class SpatialLayer(nn.Module):
    """One spatial transformer layer: pairwise-geometry bias, optional text cross-attention."""

    def __init__(self, width, heads, pairwise, cross=False, values=False):
        super().__init__()
        self.heads, self.pairwise = heads, pairwise
        if cross:
            self.cross_norm = nn.LayerNorm(width)
            self.cross = nn.MultiheadAttention(width, heads, batch_first=True)
        else:
            self.cross = None
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(),
                                 nn.Linear(2 * width, width))
        self.pair = nn.Linear(width, heads * 6) if pairwise else None
        # zero: the layer starts as LEO's and learns to read relative geometry
        self.pair_value = nn.Parameter(torch.zeros(heads, PAIR_VALUE_FEATURES, width // heads)) \
            if pairwise and values else None

    def forward(self, x, location, pair, mask, values=None, text=None, text_mask=None):
        """
        Update the object tokens.

        :param x: (B, K, W) object tokens
        :param location: (B, K, W) location embedding, added at every layer
        :param pair: (B, K, K, 5) pair geometry
        :param mask: (B, K) True for real objects
        :param values: (B, K, K, 10) ``pair_values`` (with ``values=True``)
        :param text: (B, T, W) instruction states (with cross-attention)
        :param text_mask: (B, T) True for real word pieces
        :return: (B, K, W)
        """
        batch, count, width = x.shape
        x = x + location
        h = self.norm1(x)
        q, k, v = self.qkv(h).view(batch, count, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])      # (B, H, K, K)
        if self.pairwise:
            wb = self.pair(h).view(batch, count, self.heads, 6)         # (B, K, H, 6)
            gate = torch.einsum('bihf,bijf->bhij', wb[..., :5], pair) \
                + wb[..., 5].permute(0, 2, 1)[..., None]
            logits = logits + nn.functional.logsigmoid(gate)
        logits = logits.masked_fill(~mask[:, None, None, :], NEG)
        weights = logits.softmax(-1)                                    # (B, H, K, K)
        attended = weights @ v                                          # (B, H, K, Dh)
        if self.pair_value is not None:
            # the map is linear, so average the geometry first: (B, H, K, 10)
            geometry = torch.einsum('bhij,bijf->bhif', weights, values)
            attended = attended + torch.einsum('bhif,hfd->bhid', geometry, self.pair_value)
        x = x + self.out(attended.transpose(1, 2).reshape(batch, count, width))
        if self.cross is not None:
            read, _ = self.cross(self.cross_norm(x), text, text, key_padding_mask=~text_mask,
                                 need_weights=False)
            x = x + read
        return x + self.mlp(self.norm2(x))


class SceneEncoder(nn.Module):
    """
    Object features -> scene tokens (no text) and grounding tokens (with the instruction).

    :param config: sizes and switches
    """

    def __init__(self, config: SceneConfig):
        super().__init__()
        self.config = config
        width, heads = config.width, config.heads
        self.object_in = nn.Sequential(
            nn.Linear(config.object_embedding + GEOMETRY_FEATURES, width), nn.GELU(),
            nn.Linear(width, width))
        if config.location == 'mlp':
            self.location = nn.Sequential(nn.Linear(6, width), nn.GELU(), nn.Linear(width, width))
        else:
            self.location = nn.Linear(6, width)
        self.scene_layers = nn.ModuleList(
            SpatialLayer(width, heads, config.pairwise_geometry, False, config.pair_values)
            for _ in range(config.scene_layers))
        self.scene_norm = nn.LayerNorm(width)
        guided = config.text_guidance and config.grounding_layers > 0
        self.guide = nn.Linear(TEXT_DIM, 2 * width) if guided else None
        self.text_in = nn.Linear(TEXT_DIM, width) if guided else None
        self.grounding_layers = nn.ModuleList(
            SpatialLayer(width, heads, config.pairwise_geometry, guided, config.pair_values)
            for _ in range(config.grounding_layers))
        self.grounding_norm = nn.LayerNorm(width) if config.grounding_layers else None
        if config.named_geometry:
            early = 2 if config.subject_head else 1
            self.early = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, early))
            self.named_in = nn.Linear(NAMED_GEOMETRY_FEATURES + early - 1, width)
            nn.init.zeros_(self.named_in.weight)      # starts as the encoder without it
            nn.init.zeros_(self.named_in.bias)
        else:
            self.early = None
        # (answer rests on it, text names it) per grounding token
        self.grounding = nn.Linear(width, 2) if config.grounding_loss > 0 else None

    def geometry(self, centers, sizes) -> dict:
        """Return the per-scene geometry every layer reads (location, pairs, pair values)."""
        log_or_linear = torch.log(sizes.clamp(min=0.01)) if self.config.location == 'mlp' \
            else sizes
        out = {'location': self.location(torch.cat([centers, log_or_linear], dim=-1)),
               'pair': pairwise_features(centers), 'values': None}
        if self.config.pair_values:
            out['values'] = pair_values(centers, sizes)                 # (B, K, K, 10)
        return out

    def encode_scene(self, objects, centers, sizes, mask):
        """
        Run the scene layers.

        :param objects: (B, K, E + 9) object features
        :param centers: (B, K, 3) robot-frame centres [m]
        :param sizes: (B, K, 3) extents [m]
        :param mask: (B, K) True for real objects
        :return: scene tokens (B, K, W), the raw (pre-norm) tokens the grounding layers continue
            from (B, K, W), and the geometry dict
        """
        geometry = self.geometry(centers, sizes)
        x = self.object_in(objects)                                     # (B, K, W)
        for layer in self.scene_layers:
            x = layer(x, geometry['location'], geometry['pair'], mask, geometry['values'])
        return self.scene_norm(x), x, geometry

    def ground(self, raw, geometry, centers, sizes, mask, text, text_mask, pooled):
        """
        Run the grounding layers on the scene layers' raw tokens.

        :param raw: (B, K, W) pre-norm scene tokens
        :param text: (B, T, 384) MiniLM word pieces, ``text_mask`` (B, T), ``pooled`` (B, 384)
        :return: grounding tokens (B, K, W) and the early logits (B, K, C) or None (C: named,
            and subject with ``subject_head``)
        """
        if not self.grounding_layers:
            return self.scene_norm(raw), None
        x = raw
        states = None
        if self.guide is not None:
            gamma, beta = self.guide(pooled).chunk(2, dim=-1)             # (B, W) each
            x = x * (1 + gamma[:, None]) + beta[:, None]
            states = self.text_in(text)                                   # (B, T, W)
        early = None
        if self.early is not None:
            early = self.early(x)                                         # (B, K, C)
            named = torch.sigmoid(early[..., 0].float())                  # (B, K)
            features = [named_geometry(centers, sizes, named, mask)]
            if self.config.subject_head:
                subject = early[..., 1].float().masked_fill(~mask, NEG).softmax(-1)
                features.append(subject[..., None])                       # (B, K, 1)
            x = x + self.named_in(torch.cat(features, dim=-1).to(x.dtype))
        for layer in self.grounding_layers:
            x = layer(x, geometry['location'], geometry['pair'], mask, geometry['values'],
                      states, text_mask)
        return self.grounding_norm(x), early
