"""
The policy's inputs: one typed example and one typed batch (no ROS).

Training (``leo_ros.train.dataset``) and acting (``LeoPolicy.act``) build the same
``Example`` and batch it with the same ``collate``.
"""

from dataclasses import dataclass, fields

import numpy as np
import torch


@dataclass
class Example:
    """One sample, arrays ready to batch."""

    objects: np.ndarray           # (K, E + 9) object features (robot frame)
    centers: np.ndarray           # (K, 3) robot-frame centres [m]
    sizes: np.ndarray             # (K, 3) extents [m]
    text: object                  # (T, 384) MiniLM word pieces (torch float16)
    text_pooled: object           # (384,) pooled MiniLM vector
    instruction_ids: list         # the instruction in the LM's tokens
    image: np.ndarray = None      # (3, H, W) float32 in [-0.5, 0.5], or None
    answer: np.ndarray = None     # (A,) unified ids, eos last (training only)
    family: str = ''
    grounding: np.ndarray = None  # (K, 2): the answer rests on it / the text names it
    subject: int = -1             # row of the object the text is about, -1 for none
    intent: int = -1              # index into prompt.INTENTS, -1 for unknown


@dataclass
class PolicyBatch:
    """Padded tensors of B examples (K objects, T word pieces, A answer tokens)."""

    objects: torch.Tensor         # (B, K, F)
    centers: torch.Tensor         # (B, K, 3)
    sizes: torch.Tensor           # (B, K, 3)
    object_mask: torch.Tensor     # (B, K) bool
    text: torch.Tensor            # (B, T, 384)
    text_mask: torch.Tensor       # (B, T) bool
    text_pooled: torch.Tensor     # (B, 384)
    instruction_ids: list         # B lists of LM token ids
    answer: torch.Tensor          # (B, A) unified ids (pad where masked)
    answer_mask: torch.Tensor     # (B, A) bool
    grounding: torch.Tensor       # (B, K, 2)
    grounding_mask: torch.Tensor  # (B,) bool: the example has grounding marks
    subject: torch.Tensor         # (B,) long, -1 for none
    intent: torch.Tensor          # (B,) long, -1 for unknown
    image: torch.Tensor = None    # (B, 3, H, W) or None
    families: tuple = ()

    def __len__(self):
        return self.objects.shape[0]

    def to(self, device) -> 'PolicyBatch':
        """Return the batch with every tensor on ``device``."""
        moved = {}
        for item in fields(self):
            value = getattr(self, item.name)
            moved[item.name] = value.to(device) if torch.is_tensor(value) else value
        return PolicyBatch(**moved)


def collate(examples, pad_id: int) -> PolicyBatch:
    """Pad a list of examples into a ``PolicyBatch``."""
    size = len(examples)
    objects = max(max(len(e.objects) for e in examples), 1)
    pieces = max(max(len(e.text) for e in examples), 1)
    answers = max(max(len(e.answer) if e.answer is not None else 0 for e in examples), 1)
    features = examples[0].objects.shape[1]
    batch = PolicyBatch(
        objects=torch.zeros(size, objects, features), centers=torch.zeros(size, objects, 3),
        sizes=torch.zeros(size, objects, 3),
        object_mask=torch.zeros(size, objects, dtype=torch.bool),
        text=torch.zeros(size, pieces, examples[0].text.shape[-1]),
        text_mask=torch.zeros(size, pieces, dtype=torch.bool),
        text_pooled=torch.stack([torch.as_tensor(e.text_pooled).float() for e in examples]),
        instruction_ids=[list(e.instruction_ids) for e in examples],
        answer=torch.full((size, answers), pad_id, dtype=torch.long),
        answer_mask=torch.zeros(size, answers, dtype=torch.bool),
        grounding=torch.zeros(size, objects, 2),
        grounding_mask=torch.zeros(size, dtype=torch.bool),
        subject=torch.tensor([e.subject for e in examples], dtype=torch.long),
        intent=torch.tensor([e.intent for e in examples], dtype=torch.long),
        families=tuple(e.family for e in examples))
    for row, example in enumerate(examples):
        count = len(example.objects)
        batch.objects[row, :count] = torch.from_numpy(np.asarray(example.objects, np.float32))
        batch.centers[row, :count] = torch.from_numpy(np.asarray(example.centers, np.float32))
        batch.sizes[row, :count] = torch.from_numpy(np.asarray(example.sizes, np.float32))
        batch.object_mask[row, :count] = True
        length = len(example.text)
        batch.text[row, :length] = torch.as_tensor(example.text).float()
        batch.text_mask[row, :length] = True
        if example.answer is not None and len(example.answer):
            length = len(example.answer)
            batch.answer[row, :length] = torch.from_numpy(np.asarray(example.answer, np.int64))
            batch.answer_mask[row, :length] = True
        if example.grounding is not None:
            batch.grounding[row, :count] = torch.from_numpy(example.grounding)
            batch.grounding_mask[row] = True
    if examples[0].image is not None:
        batch.image = torch.from_numpy(np.stack([e.image for e in examples]))
    return batch
