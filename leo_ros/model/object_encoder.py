"""
The object encoder: per-object points -> one embedding, with a category head (no ROS).

LEO pretrains its object encoder on object classification and keeps it frozen; leo_ros does the
same (``leo_ros.train.classifier.train_classifier``). Two backbones share the interface:

- ``pointnet`` (the default): one shared per-point MLP over the LEO-normalised points,
  max-pooled, then joined with the object's box size and normalisation scale (normalised points
  lose absolute size, which tells a mug from a table);
- ``pointnet++``: LEO's PointNet++ in pure PyTorch (no compiled ops): two local
  set-abstraction levels (farthest point sampling to 32 then 16 centroids, ball query with radii
  0.2 and 0.4 in the unit sphere, shared MLPs, max-pooling) and a global level.

Objects are encoded independently, so padding cannot leak. The frozen embedding is the object
tokens' appearance feature; the head labels objects for perception (``classify``).
"""

from dataclasses import asdict, dataclass
import json
from pathlib import Path

from leo_ros.sim.scene import CATEGORIES
import numpy as np
from safetensors.torch import load_file, save_file
import torch
from torch import nn

KINDS = ('pointnet', 'pointnet++')


@dataclass
class ObjectEncoderConfig:
    """
    The object encoder's sizes.

    :param kind: 'pointnet' or 'pointnet++'
    :param points: points per object the encoder reads (more are subsampled)
    :param width: per-point MLP width (pointnet)
    :param embedding: output embedding size
    :param categories: category names of the head
    :param centroids: centroids of the two local set-abstraction levels (pointnet++)
    :param radii: ball-query radii of those levels (points are in the unit sphere)
    :param group_size: neighbours gathered per centroid
    :param mlps: shared-MLP widths of the three levels (LEO: (64,64,128), (128,128,256),
        (256,512,768))
    :param fps_candidates: farthest point sampling of the first level looks at the first
        this-many points only (they are a random sample already; 0: all)
    """

    kind: str = 'pointnet'
    points: int = 256
    width: int = 128
    embedding: int = 64
    categories: tuple = CATEGORIES
    centroids: tuple = (32, 16)
    radii: tuple = (0.2, 0.4)
    group_size: tuple = (32, 32)
    mlps: tuple = ((16, 16, 32), (32, 32, 64), (64, 128, 256))
    fps_candidates: int = 256

    def __post_init__(self):
        self.categories = tuple(self.categories)
        self.centroids, self.radii = tuple(self.centroids), tuple(self.radii)
        self.group_size = tuple(self.group_size)
        self.mlps = tuple(tuple(widths) for widths in self.mlps)
        if self.kind not in KINDS:
            raise ValueError(f'ObjectEncoderConfig.kind must be one of {KINDS}, '
                             f'got {self.kind!r}')
        for name in ('points', 'width', 'embedding'):
            if getattr(self, name) < 1:
                raise ValueError(f'ObjectEncoderConfig.{name} must be >= 1, got '
                                 f'{getattr(self, name)}')
        if len(self.categories) < 2:
            raise ValueError(f'ObjectEncoderConfig.categories needs >= 2 names, '
                             f'got {self.categories}')
        if not len(self.centroids) == len(self.radii) == len(self.group_size) == 2:
            raise ValueError('ObjectEncoderConfig.centroids, radii and group_size need 2 '
                             f'levels, got {self.centroids}, {self.radii}, {self.group_size}')
        if len(self.mlps) != 3 or any(not widths for widths in self.mlps):
            raise ValueError(f'ObjectEncoderConfig.mlps needs 3 non-empty levels, got '
                             f'{self.mlps}')
        if min(self.centroids + self.group_size) < 1 or min(self.radii) <= 0:
            raise ValueError('ObjectEncoderConfig.centroids, group_size and radii must be '
                             f'> 0, got {self.centroids}, {self.group_size}, {self.radii}')
        if self.fps_candidates < 0:
            raise ValueError(f'ObjectEncoderConfig.fps_candidates must be >= 0, '
                             f'got {self.fps_candidates}')


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


def shared_mlp(in_dim: int, widths) -> nn.Sequential:
    """Point-wise Linear -> ReLU stack."""
    layers = []
    for width in widths:
        layers += [nn.Linear(in_dim, width), nn.ReLU(inplace=True)]
        in_dim = width
    return nn.Sequential(*layers)


class SetAbstraction(nn.Module):
    """One PointNet++ level: sample centroids, group neighbours, shared MLP, max-pool."""

    def __init__(self, centroids, radius, group_size, in_dim, widths, fps_candidates=0):
        super().__init__()
        self.centroids, self.radius, self.group_size = centroids, radius, group_size
        self.fps_candidates = fps_candidates
        self.mlp = shared_mlp(in_dim + 3, widths)

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
        self.levels = nn.ModuleList()
        in_dim = 3
        for level, (centroids, radius, group_size, widths) in enumerate(zip(
                config.centroids, config.radii, config.group_size, config.mlps[:2])):
            self.levels.append(SetAbstraction(centroids, radius, group_size, in_dim, widths,
                                              config.fps_candidates if level == 0 else 0))
            in_dim = widths[-1]
        self.global_mlp = shared_mlp(in_dim + 3, config.mlps[2])
        self.out_dim = config.mlps[2][-1]

    def forward(self, points):
        """(N, P, 6) xyz in the unit sphere, rgb in [-1, 1] -> (N, out_dim)."""
        xyz = points[..., :3].contiguous()
        features = points[..., 3:]
        for level in self.levels:
            xyz, features = level(xyz, features)
        return self.global_mlp(torch.cat([xyz, features], dim=-1)).amax(dim=1)


class PointNet(nn.Module):
    """One shared MLP over every point, max-pooled."""

    def __init__(self, config: ObjectEncoderConfig):
        super().__init__()
        width = config.width
        self.mlp = nn.Sequential(nn.Linear(6, 64), nn.GELU(), nn.Linear(64, width), nn.GELU(),
                                 nn.Linear(width, width))
        self.out_dim = width

    def forward(self, points):
        """(N, P, 6) -> (N, width)."""
        return self.mlp(points).max(dim=1).values


class ObjectEncoder(nn.Module):
    """Point backbone + box shape -> embedding, and a category head."""

    def __init__(self, config: ObjectEncoderConfig = None):
        super().__init__()
        self.config = config or ObjectEncoderConfig()
        backbone = PointNet if self.config.kind == 'pointnet' else PointNetPlusPlus
        self.backbone = backbone(self.config)
        width = self.config.width
        self.embed = nn.Sequential(nn.Linear(self.backbone.out_dim + 4, width), nn.GELU(),
                                   nn.Linear(width, self.config.embedding))
        self.head = nn.Linear(self.config.embedding, len(self.config.categories))

    def forward(self, points, sizes, scales):
        """
        Embed objects.

        :param points: (N, P, 6) LEO-normalised xyz + rgb
        :param sizes: (N, 3) box extents [m]
        :param scales: (N,) normalisation radius [m]
        :return: embeddings (N, E) and category logits (N, C)
        """
        pooled = self.backbone(points)                              # (N, W)
        shape = torch.cat([sizes, scales[:, None]], dim=-1)         # (N, 4)
        embedding = self.embed(torch.cat([pooled, shape], dim=-1))  # (N, E)
        return embedding, self.head(torch.nn.functional.gelu(embedding))

    def subsample(self, points, rng=None):
        """Return (N, P', 6) with at most ``config.points`` points per object (numpy)."""
        count = points.shape[1]
        if count <= self.config.points:
            return points
        rng = rng if rng is not None else np.random.default_rng(0)
        chosen = np.sort(rng.choice(count, self.config.points, replace=False))
        return points[:, chosen]

    @torch.no_grad()
    def embed_tokens(self, tokens, batch_size=256):
        """
        Return frozen embeddings and probabilities for ``SceneTokens``.

        :return: (K, E) float32 embeddings, (K, C) float32 probabilities
        """
        self.eval()
        points = self.subsample(np.asarray(tokens.points, np.float32))
        embeddings, probabilities = [], []
        for start in range(0, len(points), batch_size):
            part = slice(start, start + batch_size)
            embedding, logits = self(torch.from_numpy(points[part]).float(),
                                     torch.as_tensor(tokens.sizes[part]).float(),
                                     torch.as_tensor(tokens.scales[part]).float())
            embeddings.append(embedding)
            probabilities.append(logits.softmax(-1))
        if not embeddings:
            size = len(self.config.categories)
            return (np.zeros((0, self.config.embedding), np.float32),
                    np.zeros((0, size), np.float32))
        return (torch.cat(embeddings).numpy(), torch.cat(probabilities).numpy())

    def classify(self, tokens):
        """Return (labels list, confidences (K,)) for ``SceneTokens``."""
        _, probabilities = self.embed_tokens(tokens)
        best = probabilities.argmax(-1) if len(probabilities) else np.zeros(0, int)
        labels = [self.config.categories[int(i)] for i in best]
        return labels, probabilities.max(-1) if len(probabilities) else np.zeros(0, np.float32)

    def save(self, directory):
        """Write ``classifier.json`` and ``classifier.safetensors``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / 'classifier.json').write_text(json.dumps(asdict(self.config), indent=2))
        save_file({k: v.contiguous() for k, v in self.state_dict().items()},
                  str(directory / 'classifier.safetensors'))

    @classmethod
    def load(cls, directory):
        """Read an encoder saved with :meth:`save`."""
        directory = Path(directory)
        config = json.loads((directory / 'classifier.json').read_text())
        model = cls(ObjectEncoderConfig(**config))
        model.load_state_dict(load_file(str(directory / 'classifier.safetensors')))
        return model.eval()
