"""
LEO's spatial transformer: object tokens attend to each other with a pairwise-geometry bias.

For tokens i (query) and j (key) with box centres c, the pair feature is
``(d / d_max, dz / d, dxy / d, dy / dxy, dx / dxy)`` with ``(dx, dy, dz) = c_i - c_j``,
``d = |c_i - c_j|`` and ``dxy = |(dx, dy)|``. Each head predicts ``w`` (5) and ``b`` from the
query token and adds ``log(sigmoid(w . pair + b))`` to its attention logits. A location
embedding of (centre, size) is added to the tokens before every layer. Token 0 is the embodied
token (the agent: its position, a zero size, and its heading).
"""

import math

from leo_ros.model.config import SpatialConfig
import torch
from torch import nn
import torch.nn.functional as F

PAIR_DIM = 5
_EPS = 1e-10
#: LEO clamps sigmoid(.) at 1e-6 before the log
_LOG_MIN = math.log(1e-6)


def pairwise_features(centres: torch.Tensor, mask: torch.Tensor = None,
                      normalise: bool = True) -> torch.Tensor:
    """
    Return LEO's pairwise geometry.

    :param centres: (B, L, 3)
    :param mask: (B, L) bool, True for real tokens; padded ones do not count towards d_max
    :param normalise: divide d by the largest distance between real tokens of the scene
    :return: (B, L, L, 5) with [b, i, j] = features of c_i - c_j
    """
    offsets = centres.unsqueeze(2) - centres.unsqueeze(1)                  # (B, L, L, 3)
    distance = torch.sqrt((offsets ** 2).sum(-1) + _EPS)                   # (B, L, L)
    planar = torch.sqrt((offsets[..., :2] ** 2).sum(-1) + _EPS)            # (B, L, L)
    scaled = distance
    if normalise:
        if mask is not None:
            pair_mask = mask.unsqueeze(2) & mask.unsqueeze(1)
            largest = distance.masked_fill(~pair_mask, 0).amax(dim=(1, 2))  # (B,)
        else:
            largest = distance.amax(dim=(1, 2))
        scaled = distance / largest.clamp_min(_EPS)[:, None, None]
    return torch.stack([scaled, offsets[..., 2] / distance, planar / distance,
                        offsets[..., 1] / planar, offsets[..., 0] / planar], dim=-1)


class SpatialAttention(nn.Module):
    """Multi-head self-attention with the per-query pairwise-geometry bias."""

    def __init__(self, width, heads, dropout=0.0, pairwise=True):
        super().__init__()
        self.heads, self.head_dim = heads, width // heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.dropout = nn.Dropout(dropout)
        # w (5) and b per head, predicted from the query token
        self.pair_weights = nn.Linear(width, heads * (PAIR_DIM + 1)) if pairwise else None

    def forward(self, tokens, pairs, key_mask):
        """
        Attend.

        :param tokens: (B, L, W)
        :param pairs: (B, L, L, 5) pairwise features, or None when ablated
        :param key_mask: (B, L) bool, True for real tokens
        :return: (B, L, W)
        """
        batch, length, width = tokens.shape
        q, k, v = self.qkv(tokens).view(batch, length, 3, self.heads, self.head_dim).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))                    # (B, H, L, Dh)
        logits = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)        # (B, H, L, L)
        if self.pair_weights is not None and pairs is not None:
            wb = self.pair_weights(tokens).view(batch, length, self.heads, PAIR_DIM + 1)
            wb = wb.permute(0, 2, 1, 3)                                     # (B, H, L, 6)
            bias = torch.einsum('bhid,bijd->bhij', wb[..., :PAIR_DIM], pairs)
            bias = bias + wb[..., PAIR_DIM:]                                # (B, H, L, L)
            logits = logits + F.logsigmoid(bias).clamp_min(_LOG_MIN)
        logits = logits.masked_fill(~key_mask[:, None, None, :], float('-inf'))
        weights = self.dropout(logits.softmax(dim=-1))
        mixed = (weights @ v).transpose(1, 2).reshape(batch, length, width)
        return self.out(mixed)


class SpatialLayer(nn.Module):
    """Post-norm transformer layer (as LEO's) with spatial attention."""

    def __init__(self, config: SpatialConfig):
        super().__init__()
        self.attention = SpatialAttention(config.width, config.heads, config.dropout,
                                          pairwise=not config.ablate_pairwise_geometry)
        self.norm1 = nn.LayerNorm(config.width)
        self.norm2 = nn.LayerNorm(config.width)
        self.ffn = nn.Sequential(nn.Linear(config.width, config.ffn_mult * config.width),
                                 nn.GELU(), nn.Dropout(config.dropout),
                                 nn.Linear(config.ffn_mult * config.width, config.width))
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, tokens, pairs, key_mask):
        tokens = self.norm1(tokens + self.dropout(self.attention(tokens, pairs, key_mask)))
        return self.norm2(tokens + self.dropout(self.ffn(tokens)))


class SpatialTransformer(nn.Module):
    """
    Object features + agent pose -> contextual object tokens, embodied token first.

    :param feature_dim: width of the object encoder's features
    """

    def __init__(self, feature_dim: int, config: SpatialConfig = None):
        super().__init__()
        self.config = config or SpatialConfig()
        width = self.config.width
        self.project = nn.Linear(feature_dim, width)
        self.embodied = nn.Parameter(torch.zeros(width))
        self.heading = nn.Linear(2, width)   # (cos yaw, sin yaw) of the agent
        self.location = None if self.config.ablate_location_embedding else nn.Sequential(
            nn.Linear(6, width), nn.LayerNorm(width))
        self.layers = nn.ModuleList(SpatialLayer(self.config) for _ in range(self.config.layers))
        nn.init.normal_(self.embodied, std=0.02)

    def forward(self, features, locations, mask, agent_pose):
        """
        Contextualise.

        :param features: (B, K, F) object features
        :param locations: (B, K, 6) centre and size [m]
        :param mask: (B, K) bool, True for real objects
        :param agent_pose: (B, 3) x, y [m], yaw [rad] in the same frame as the centres
        :return: tokens (B, K + 1, W) with the embodied token at index 0, mask (B, K + 1)
        """
        batch = features.shape[0]
        agent_location = torch.zeros(batch, 1, 6, dtype=locations.dtype, device=locations.device)
        agent_location[:, 0, :2] = agent_pose[:, :2]
        heading = torch.stack([torch.cos(agent_pose[:, 2]), torch.sin(agent_pose[:, 2])], dim=-1)
        agent = (self.embodied + self.heading(heading)).unsqueeze(1)       # (B, 1, W)
        tokens = torch.cat([agent, self.project(features)], dim=1)         # (B, L, W)
        locations = torch.cat([agent_location, locations], dim=1)          # (B, L, 6)
        mask = torch.cat([mask.new_ones(batch, 1), mask], dim=1)           # (B, L)
        pairs = None
        if not self.config.ablate_pairwise_geometry:
            pairs = pairwise_features(locations[..., :3], mask, self.config.normalise_distances)
        for layer in self.layers:
            if self.location is not None:
                tokens = tokens + self.location(locations)
            tokens = layer(tokens, pairs, mask)
        return tokens, mask
