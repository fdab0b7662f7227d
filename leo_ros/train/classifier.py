"""
Pretraining the object encoder on object categories (no ROS).

LEO pretrains its object encoder on object classification and keeps it frozen; this is the same
step for ``leo_ros.model.object_encoder.ObjectEncoder``: the encoder and its category head learn
the categories of the training scenes' objects (rotated, jittered), and the policy then reads the
frozen embedding.
"""

from leo_ros.model.object_encoder import ObjectEncoder, ObjectEncoderConfig
import numpy as np
import torch
from torch import nn


def augment(points, rng):
    """
    Randomly rotate about z and jitter the positions (numpy, one object).

    :param points: (P, 6)
    """
    angle = rng.uniform(-np.pi, np.pi)
    c, s = np.cos(angle), np.sin(angle)
    out = points.copy()
    out[:, :2] = points[:, :2] @ np.array([[c, s], [-s, c]], np.float32)
    out[:, :3] += rng.normal(0, 0.01, size=(len(points), 3)).astype(np.float32)
    return out


def train_classifier(objects, config: ObjectEncoderConfig = None, steps=600, batch_size=128,
                     lr=2e-3, seed=0, progress=True, log=None):
    """
    Pretrain the encoder + head on object categories.

    :param objects: dict of arrays ``points`` (N, P, 6), ``sizes`` (N, 3), ``scales`` (N,),
        ``labels`` (N,) int category indices
    :param log: optional ``f(dict)`` called with metrics every 50 steps
    :return: the trained encoder with its category head (eval mode)
    """
    from tqdm import tqdm
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = ObjectEncoder(config)
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
