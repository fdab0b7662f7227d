"""
Per-object point encoders in pure PyTorch (no compiled ops): PointNet++ and PointNet.

PointNet++ follows LEO's object encoder: two local set-abstraction levels (farthest point
sampling to 32 then 16 centroids, ball query with radii 0.2 and 0.4 in the unit sphere, shared
MLPs, max-pooling) and one global level. Objects are encoded independently, so padding cannot
leak; padded objects are skipped and get zero features. LayerNorm replaces PointNet++'s
BatchNorm for the same reason (no statistics shared across objects).
"""

from leo_ros.model.config import ObjectEncoderConfig
import torch
from torch import nn


def farthest_point_sample(xyz: torch.Tensor, count: int) -> torch.Tensor:
    """
    Pick ``count`` mutually far points, starting from point 0 (deterministic).

    :param xyz: (N, P, 3)
    :return: (N, count) int64 indices
    """
    batch, points, _ = xyz.shape
    chosen = torch.zeros(batch, count, dtype=torch.long, device=xyz.device)
    nearest = torch.full((batch, points), float('inf'), device=xyz.device, dtype=xyz.dtype)
    farthest = torch.zeros(batch, dtype=torch.long, device=xyz.device)
    rows = torch.arange(batch, device=xyz.device)
    for step in range(count):
        chosen[:, step] = farthest
        centre = xyz[rows, farthest].unsqueeze(1)                      # (N, 1, 3)
        nearest = torch.minimum(nearest, ((xyz - centre) ** 2).sum(-1))
        farthest = nearest.argmax(dim=1)
    return chosen


def ball_query(xyz: torch.Tensor, centres: torch.Tensor, radius: float,
               group_size: int) -> torch.Tensor:
    """
    Return, per centre, the first ``group_size`` points (by index) within ``radius``.

    Like PointNet++'s CUDA op, missing slots repeat the first neighbour found (the centre
    itself is always one, since centres are points of ``xyz``).

    :param xyz: (N, P, 3)
    :param centres: (N, S, 3)
    :return: (N, S, group_size) int64 indices into P
    """
    points = xyz.shape[1]
    distance = torch.cdist(centres, xyz)                                   # (N, S, P)
    order = torch.arange(points, device=xyz.device, dtype=distance.dtype)
    # inside points keep their index as key, outside ones sort after every inside point
    keys = order + (distance > radius).to(distance.dtype) * points
    size = min(group_size, points)
    keys = torch.topk(keys, size, dim=-1, largest=False).values           # (N, S, size) sorted
    first = keys[..., :1]
    keys = torch.where(keys >= points, first, keys)
    if size < group_size:
        keys = torch.cat([keys, first.expand(*keys.shape[:2], group_size - size)], dim=-1)
    return keys.long()


def gather_points(values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """
    Gather rows per batch entry.

    :param values: (N, P, C)
    :param indices: (N, ...) into P
    :return: (N, ..., C)
    """
    flat = indices.reshape(indices.shape[0], -1)                           # (N, M)
    out = torch.gather(values, 1, flat.unsqueeze(-1).expand(-1, -1, values.shape[-1]))
    return out.reshape(*indices.shape, values.shape[-1])


def shared_mlp(in_dim: int, widths, norm: bool = False) -> nn.Sequential:
    """Point-wise Linear -> (LayerNorm) -> ReLU stack."""
    layers = []
    for width in widths:
        layers += [nn.Linear(in_dim, width)] + ([nn.LayerNorm(width)] if norm else [])
        layers.append(nn.ReLU(inplace=True))
        in_dim = width
    return nn.Sequential(*layers)


class SetAbstraction(nn.Module):
    """One PointNet++ level: sample centroids, group neighbours, shared MLP, max-pool."""

    def __init__(self, centroids, radius, group_size, in_dim, widths, norm=False,
                 fps_candidates=0):
        super().__init__()
        self.centroids, self.radius, self.group_size = centroids, radius, group_size
        self.fps_candidates = fps_candidates
        self.mlp = shared_mlp(in_dim + 3, widths, norm)

    def forward(self, xyz, features):
        """
        Abstract one level.

        :param xyz: (N, P, 3)
        :param features: (N, P, C) or None
        :return: centroid xyz (N, S, 3), centroid features (N, S, widths[-1])
        """
        candidates = xyz[:, :self.fps_candidates] if self.fps_candidates else xyz
        centres = gather_points(candidates, farthest_point_sample(candidates, self.centroids))
        # centres (N, S, 3) are points of xyz; groups (N, S, G) index all of xyz
        groups = ball_query(xyz, centres, self.radius, self.group_size)
        local = (gather_points(xyz, groups) - centres.unsqueeze(2)) / self.radius  # (N, S, G, 3)
        if features is not None:
            local = torch.cat([local, gather_points(features, groups)], dim=-1)
        return centres, self.mlp(local).amax(dim=2)


class PointNetPlusPlus(nn.Module):
    """LEO's object encoder: SA(32, r 0.2) -> SA(16, r 0.4) -> global SA."""

    def __init__(self, config: ObjectEncoderConfig):
        super().__init__()
        colour_dim = 3 if config.use_color else 0
        self.levels = nn.ModuleList()
        in_dim = colour_dim
        for level, (centroids, radius, group_size, widths) in enumerate(zip(
                config.centroids, config.radii, config.group_size, config.mlps[:2])):
            self.levels.append(SetAbstraction(centroids, radius, group_size, in_dim, widths,
                                              config.point_norm,
                                              config.fps_candidates if level == 0 else 0))
            in_dim = widths[-1]
        self.global_mlp = shared_mlp(in_dim + 3, config.mlps[2], config.point_norm)
        self.use_color = config.use_color

    def forward(self, points):
        """
        Encode objects.

        :param points: (N, P, 6) xyz in the unit sphere, rgb in [-1, 1]
        :return: (N, out_dim)
        """
        xyz = points[..., :3].contiguous()
        features = points[..., 3:] if self.use_color else None
        for level in self.levels:
            xyz, features = level(xyz, features)
        return self.global_mlp(torch.cat([xyz, features], dim=-1)).amax(dim=1)


class PointNet(nn.Module):
    """The lighter option: one shared MLP over every point, max-pooled."""

    def __init__(self, config: ObjectEncoderConfig):
        super().__init__()
        widths = [width for level in config.mlps for width in level]
        self.use_color = config.use_color
        self.mlp = shared_mlp(6 if config.use_color else 3, widths, config.point_norm)

    def forward(self, points):
        """
        Encode objects.

        :param points: (N, P, 6)
        :return: (N, out_dim)
        """
        inputs = points if self.use_color else points[..., :3]
        return self.mlp(inputs).amax(dim=1)


class ObjectEncoder(nn.Module):
    """Batched objects with padding masks -> one feature per object; optional class head."""

    def __init__(self, config: ObjectEncoderConfig = None):
        super().__init__()
        self.config = config or ObjectEncoderConfig()
        backbone = PointNetPlusPlus if self.config.kind == 'pointnet++' else PointNet
        self.backbone = backbone(self.config)
        self.classifier = (nn.Linear(self.config.out_dim, self.config.num_classes)
                           if self.config.num_classes else None)

    @property
    def out_dim(self) -> int:
        return self.config.out_dim

    def forward(self, points, mask=None):
        """
        Encode every valid object; padded ones get zeros and cost nothing.

        :param points: (B, K, P, 6)
        :param mask: (B, K) bool, True for real objects (default: all)
        :return: (B, K, out_dim)
        """
        batch, objects = points.shape[:2]
        if mask is None:
            mask = torch.ones(batch, objects, dtype=torch.bool, device=points.device)
        out = points.new_zeros(batch, objects, self.out_dim)
        if mask.any():
            out[mask] = self.backbone(points[mask])                      # (N_valid, out_dim)
        return out

    def classify(self, points):
        """
        Return category logits for pretraining the encoder on object labels.

        :param points: (N, P, 6)
        :return: (N, num_classes)
        """
        if self.classifier is None:
            raise RuntimeError('ObjectEncoderConfig.num_classes is 0: no classification head')
        return self.classifier(self.backbone(points))
