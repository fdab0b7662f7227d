"""
The object encoder and its category head, pretrained on object categories (no ROS).

LEO pretrains its PointNet++ on object classification and keeps it frozen; this is the same step
for the default model's encoder, a PointNet (shared per-point MLP, max pool) over the LEO-
normalised points plus the object's box size and scale (normalised points lose absolute size,
which tells a mug from a table). The frozen embedding becomes the object tokens' appearance
feature; the head labels objects for perception (``ObjectClassifier.classify``).
"""

from dataclasses import asdict, dataclass
import json
from pathlib import Path

from leo_ros.sim.scene import CATEGORIES
import numpy as np
from safetensors.torch import load_file, save_file
import torch
from torch import nn


@dataclass
class ClassifierConfig:
    """
    The object encoder's sizes.

    :param points: points per object the encoder reads (more are subsampled)
    :param width: per-point MLP width
    :param embedding: output embedding size
    :param categories: category names of the head
    """

    points: int = 256
    width: int = 128
    embedding: int = 64
    categories: tuple = CATEGORIES

    def __post_init__(self):
        for name in ('points', 'width', 'embedding'):
            if getattr(self, name) < 1:
                raise ValueError(f'ClassifierConfig.{name} must be >= 1, got '
                                 f'{getattr(self, name)}')
        if len(self.categories) < 2:
            raise ValueError(f'ClassifierConfig.categories needs >= 2 names, '
                             f'got {self.categories}')


class ObjectClassifier(nn.Module):
    """PointNet object encoder with a category head."""

    def __init__(self, config: ClassifierConfig = None):
        super().__init__()
        self.config = config or ClassifierConfig()
        width = self.config.width
        self.point_mlp = nn.Sequential(
            nn.Linear(6, 64), nn.GELU(), nn.Linear(64, width), nn.GELU(),
            nn.Linear(width, width))
        self.embed = nn.Sequential(nn.Linear(width + 4, width), nn.GELU(),
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
        per_point = self.point_mlp(points)                          # (N, P, W)
        pooled = per_point.max(dim=1).values                        # (N, W)
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
        """Read a classifier saved with :meth:`save`."""
        directory = Path(directory)
        config = json.loads((directory / 'classifier.json').read_text())
        config['categories'] = tuple(config['categories'])
        model = cls(ClassifierConfig(**config))
        model.load_state_dict(load_file(str(directory / 'classifier.safetensors')))
        return model.eval()


def augment(points, rng):
    """
    Randomly rotate about z, jitter and drop colour brightness (numpy, one object).

    :param points: (P, 6)
    """
    angle = rng.uniform(-np.pi, np.pi)
    c, s = np.cos(angle), np.sin(angle)
    out = points.copy()
    out[:, :2] = points[:, :2] @ np.array([[c, s], [-s, c]], np.float32)
    out[:, :3] += rng.normal(0, 0.01, size=(len(points), 3)).astype(np.float32)
    return out


def train_classifier(objects, config: ClassifierConfig = None, steps=600, batch_size=128,
                     lr=2e-3, seed=0, progress=True, log=None):
    """
    Pretrain the encoder + head on object categories.

    :param objects: dict of arrays ``points`` (N, P, 6), ``sizes`` (N, 3), ``scales`` (N,),
        ``labels`` (N,) int category indices
    :param log: optional ``f(dict)`` called with metrics every 50 steps
    :return: the trained classifier (eval mode)
    """
    from tqdm import tqdm
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = ObjectClassifier(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps,
                                                    pct_start=0.1)
    count = len(objects['labels'])
    points = model.subsample(objects['points'], rng)
    model.train()
    bar = tqdm(range(steps), desc='classifier', disable=not progress)
    for step in bar:
        rows = rng.integers(count, size=batch_size)
        batch = np.stack([augment(points[i], rng) for i in rows])
        sizes = objects['sizes'][rows] * rng.uniform(0.95, 1.05, size=(batch_size, 1))
        _, logits = model(torch.from_numpy(batch).float(), torch.as_tensor(sizes).float(),
                          torch.as_tensor(objects['scales'][rows]).float())
        loss = nn.functional.cross_entropy(logits, torch.as_tensor(objects['labels'][rows]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        if step % 50 == 0 or step == steps - 1:
            accuracy = (logits.argmax(-1) == torch.as_tensor(objects['labels'][rows])).float()
            bar.set_postfix(loss=f'{loss.item():.3f}')
            if log:
                log({'stage': 'classifier', 'step': step, 'loss': loss.item(),
                     'accuracy': accuracy.mean().item()})
    return model.eval()


def classifier_accuracy(model, objects) -> float:
    """Return the category accuracy on a set of objects (same dict as for training)."""
    from leo_ros.scene_tokens import SceneTokens
    tokens = SceneTokens(points=objects['points'], centers=np.zeros_like(objects['sizes']),
                         sizes=objects['sizes'], colors=np.zeros_like(objects['sizes']),
                         scales=objects['scales'],
                         point_counts=np.zeros(len(objects['sizes']), np.int64),
                         ids=np.arange(len(objects['sizes'])))
    _, probabilities = model.embed_tokens(tokens)
    return float((probabilities.argmax(-1) == objects['labels']).mean())
