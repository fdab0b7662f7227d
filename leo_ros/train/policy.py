"""
The trained policy: LEO's layout at a size that trains on a laptop CPU in under an hour (no ROS).

Object tokens (frozen pretrained object encoder + colour + robot-frame box) pass a spatial
transformer with LEO's pairwise geometry (distance, dz/d, dxy/d, dy/dxy, dx/dxy entering
attention as log(sigmoid(w . pair + b)), w and b predicted per query and head; optionally the
attended objects' relative geometry in the values too) and a location embedding at every
layer; the instruction's pooled MiniLM vector modulates them (text guidance); optionally, after
the first layer, each token gets where the other objects the instruction names lie and whether
it is the one the text is about (``named_geometry``, ``subject_head``). A causal
LLaMA-architecture LM (transformers) reads ``[image] [robot] [objects] [instruction] <bos>``
as input embeddings and writes the answer: words from a word-level vocabulary, action markers,
and either object-pointer tokens (``<obj_k>``, logits = query . object token: the grounding
choice) or coordinate tokens from the bins / residual-VQ tokenizers (the ablations). Loss on
the answer only. Stage 2 trains LoRA adapters (peft) on the LM instead of the LM itself.
"""

from dataclasses import asdict, dataclass
import json
import math
from pathlib import Path

from leo_ros.actions.grounded import (GroundedTokenizer, GroundingContext, object_index,
                                      object_token)
from leo_ros.model.policy import Decision  # one decision type for every policy
from leo_ros.train.classifier import ObjectClassifier
from leo_ros.train.features import (action_from_robot_frame, GEOMETRY_FEATURES,
                                    image_to_tensor_array, object_features)
from leo_ros.train.text import AnswerVocabulary, join_words, TEXT_DIM
import numpy as np
from safetensors.torch import load_file, save_file
import torch
from torch import nn

ACTION_MODES = ('grounded', 'bins', 'rvq')
LOCATIONS = ('linear', 'mlp')
LORA_TARGETS = ('q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj')
NEG = -1e4  # masked logit (finite: safe in half precision)


@dataclass
class PolicyConfig:
    """
    Sizes and switches of the policy.

    :param max_objects: object tokens read (more are cut, nearest first)
    :param object_embedding: size of the frozen object encoder's embedding
    :param width: spatial transformer width
    :param spatial_layers: spatial transformer layers
    :param spatial_heads: spatial transformer heads
    :param pairwise_geometry: LEO's pairwise-geometry attention bias (ablation switch)
    :param text_guidance: modulate object tokens with the pooled instruction vector
    :param text_cross_attention: object tokens also attend to the instruction's MiniLM states
        in every spatial layer (instruction-aware object tokens for grounding)
    :param count_token: add a scene token that sums gated object tokens (DeepSets sum pooling),
        so that the LM can read counts (attention averages; it cannot count on its own)
    :param object_readout: before the word head, every answer position attends to the object
        tokens and adds what it read (a direct path from grounded objects to answer words, like
        the pointer that names objects in actions)
    :param pair_values: each spatial attention head also reads where the objects it attends to
        are, relative to the query object (offsets, distances, size ratios: ``pair_values``),
        not only what they are; with LEO's bias alone an object's token learns *that* it attended
        to an anchor, not on which side it lies (needs ``pairwise_geometry``)
    :param grounding_loss: weight of an auxiliary loss on the spatial transformer's object
        tokens: a linear head says, per object, whether the answer rests on it (a size
        question's winner, the counted objects, an action's objects) and whether the instruction
        names it (anchors too), as ScanQA's object localisation loss does; the comparison is
        then made where the pairwise geometry is, and the LM reads its result; 0 = off (LEO)
    :param named_geometry: after the first spatial layer an early head says which objects the
        instruction names (trained on the grounding loss's second column), and every object
        token gets where the *other* named objects lie relative to it (offsets in the robot
        frame, the log ratios of largest extent and volume: ``named_geometry``), so that "is A
        left of B" and "is A or B larger" become a sign in A's token instead of an attention
        search for B (needs ``grounding_loss`` > 0)
    :param subject_head: the early head also points at the object the text is about (softmax
        over objects, cross-entropy on the sample's subject: the relation's subject, the object
        to fetch), and every token gets that probability beside ``named_geometry``: A's and B's
        tokens then differ in which one is asked about, which "is A left of B" turns on and
        the grounding marks never say when the answer is no (needs ``named_geometry``)
    :param location: how an object's box enters every spatial layer: 'linear' (one linear map
        of centre and extents [m]) or 'mlp' (a two-layer MLP of centre and log extents, so that
        size comparisons are ratios and small objects' differences are not drowned)
    :param use_image: read the ego-view image token
    :param image_size: (width, height) of the ego-view image the encoder reads
    :param render_size: (width, height) the training images were rendered at (evaluation renders
        the same and shrinks them the same way)
    :param llm_hidden: LM width
    :param llm_layers: LM layers
    :param llm_heads: LM attention heads
    :param llm_intermediate: LM MLP width
    :param max_instruction_tokens: MiniLM word pieces read
    :param max_answer_tokens: longest generated answer
    :param lora_rank: LoRA rank (stage 2)
    :param lora_alpha: LoRA alpha
    :param lora_targets: LM modules LoRA adapts (LEO's list)
    :param action_mode: 'grounded' (object tokens), 'bins' or 'rvq' (coordinate tokens)
    :param lora: whether the LM carries LoRA adapters (set by stage 2)
    """

    max_objects: int = 60
    object_embedding: int = 64
    width: int = 128
    spatial_layers: int = 2
    spatial_heads: int = 4
    pairwise_geometry: bool = True
    text_guidance: bool = True
    text_cross_attention: bool = True
    count_token: bool = True
    object_readout: bool = False
    pair_values: bool = False
    grounding_loss: float = 0.0
    named_geometry: bool = False
    subject_head: bool = False
    location: str = 'linear'
    use_image: bool = True
    image_size: tuple = (32, 24)
    render_size: tuple = (64, 48)
    llm_hidden: int = 192
    llm_layers: int = 3
    llm_heads: int = 4
    llm_intermediate: int = 512
    max_instruction_tokens: int = 40
    max_answer_tokens: int = 48
    lora_rank: int = 16
    lora_alpha: int = 16
    lora_targets: tuple = LORA_TARGETS
    action_mode: str = 'grounded'
    lora: bool = False

    def __post_init__(self):
        for name in ('max_objects', 'object_embedding', 'width', 'spatial_layers',
                     'spatial_heads', 'llm_hidden', 'llm_layers', 'llm_heads',
                     'llm_intermediate', 'max_instruction_tokens', 'max_answer_tokens',
                     'lora_rank', 'lora_alpha'):
            if getattr(self, name) < 1:
                raise ValueError(f'PolicyConfig.{name} must be >= 1, got {getattr(self, name)}')
        if self.width % self.spatial_heads:
            raise ValueError(f'PolicyConfig.width ({self.width}) must divide by spatial_heads '
                             f'({self.spatial_heads})')
        if self.llm_hidden % self.llm_heads:
            raise ValueError(f'PolicyConfig.llm_hidden ({self.llm_hidden}) must divide by '
                             f'llm_heads ({self.llm_heads})')
        if not self.grounding_loss >= 0:
            raise ValueError(f'PolicyConfig.grounding_loss must be >= 0, '
                             f'got {self.grounding_loss}')
        if self.named_geometry and not self.grounding_loss > 0:
            raise ValueError('PolicyConfig.named_geometry needs grounding_loss > 0 (its head is '
                             f'trained on the named marks), got {self.grounding_loss}')
        if self.named_geometry and self.spatial_layers < 2:
            raise ValueError('PolicyConfig.named_geometry needs spatial_layers >= 2 (it enters '
                             f'after the first), got {self.spatial_layers}')
        if self.subject_head and not self.named_geometry:
            raise ValueError('PolicyConfig.subject_head needs named_geometry (it extends its '
                             'early head), got named_geometry=False')
        if self.location not in LOCATIONS:
            raise ValueError(f'PolicyConfig.location must be one of {LOCATIONS}, '
                             f'got {self.location!r}')
        if self.action_mode not in ACTION_MODES:
            raise ValueError(f'PolicyConfig.action_mode must be one of {ACTION_MODES}, '
                             f'got {self.action_mode!r}')
        self.image_size = tuple(self.image_size)
        self.render_size = tuple(self.render_size)
        self.lora_targets = tuple(self.lora_targets)


def pairwise_features(centers) -> torch.Tensor:
    """
    Return LEO's pair geometry for every object pair.

    :param centers: (B, K, 3)
    :return: (B, K, K, 5): distance, dz/d, dxy/d, dy/dxy, dx/dxy
    """
    delta = centers[:, None, :, :] - centers[:, :, None, :]             # (B, K, K, 3)
    distance = delta.norm(dim=-1).clamp(min=1e-4)
    planar = delta[..., :2].norm(dim=-1).clamp(min=1e-4)
    return torch.stack([distance, delta[..., 2] / distance, planar / distance,
                        delta[..., 1] / planar, delta[..., 0] / planar], dim=-1)


#: features of ``pair_values``
PAIR_VALUE_FEATURES = 10


def pair_values(centers, sizes) -> torch.Tensor:
    """
    Return where object j lies relative to object i, for every pair.

    Offsets are in the robot frame (x forward, y left), so "left of" is a sign. Volume ratios
    come split into their positive and negative parts: averaged over the objects a head attends
    to, they still say whether any of them is larger (a mean of signed ratios cannot).

    :param centers: (B, K, 3) [m]
    :param sizes: (B, K, 3) extents [m]
    :return: (B, K, K, 10) with [b, i, j] = dx, dy, dz, distance, planar distance (c_j - c_i,
        [m]), log extent ratios (3) and the two parts of the log volume ratio (size_j / size_i)
    """
    delta = centers[:, None, :, :] - centers[:, :, None, :]             # (B, K, K, 3)
    log_sizes = torch.log(sizes.clamp(min=0.01))                        # (B, K, 3)
    ratios = log_sizes[:, None, :, :] - log_sizes[:, :, None, :]        # (B, K, K, 3)
    volume = ratios.sum(dim=-1, keepdim=True)                           # (B, K, K, 1)
    return torch.cat([delta, delta.norm(dim=-1, keepdim=True),
                      delta[..., :2].norm(dim=-1, keepdim=True), ratios, volume.clamp(min=0),
                      (-volume).clamp(min=0)], dim=-1)


#: features of ``named_geometry``
NAMED_GEOMETRY_FEATURES = 6


def named_geometry(centers, sizes, named, mask) -> torch.Tensor:
    """
    Return where the other named objects lie relative to each object.

    For object i the features are the ``named``-weighted means over the other real objects j
    of c_j - c_i (robot frame, [m]), log(largest extent_j / largest extent_i) and
    log(volume_j / volume_i), followed by the weight of the other named objects (their
    summed probability, capped at 2): with A and B named, A reads B's offset and size ratio.

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
    """One spatial transformer layer with an optional pairwise-geometry attention bias."""

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
        if pairwise and values:
            # zero: the layer starts as LEO's and learns to read relative geometry
            self.pair_value = nn.Parameter(torch.zeros(heads, PAIR_VALUE_FEATURES,
                                                       width // heads))
        else:
            self.pair_value = None

    def forward(self, x, location, pair, mask, text=None, text_mask=None, values=None):
        """
        Update the object tokens.

        :param x: (B, K, W) object tokens
        :param location: (B, K, W) location embedding, added at every layer
        :param pair: (B, K, K, 5) pair geometry
        :param mask: (B, K) True for real objects
        :param text: (B, T, W) instruction states (used with cross-attention)
        :param text_mask: (B, T) True for real word pieces
        :param values: (B, K, K, 10) ``pair_values`` (used with ``values=True``)
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
            # the map is linear, so average the geometry first: (B, H, K, 10), not (B, K, K, W)
            geometry = torch.einsum('bhij,bijf->bhif', weights, values)
            attended = attended + torch.einsum('bhif,hfd->bhid', geometry, self.pair_value)
        attended = attended.transpose(1, 2).reshape(batch, count, width)
        x = x + self.out(attended)
        if self.cross is not None:
            read, _ = self.cross(self.cross_norm(x), text, text,
                                 key_padding_mask=~text_mask, need_weights=False)
            x = x + read
        return x + self.mlp(self.norm2(x))


class ImageEncoder(nn.Module):
    """A small convolutional encoder: ego-view image -> one pooled token."""

    def __init__(self, out_dim):
        super().__init__()
        layers, channels = [], 3
        for width in (16, 32, 64, 64):
            layers += [nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.GELU()]
            channels = width
        self.conv = nn.Sequential(*layers)
        self.proj = nn.Linear(channels, out_dim)

    def forward(self, image):
        """(B, 3, H, W) -> (B, out_dim)."""
        return self.proj(self.conv(image).mean(dim=(2, 3)))


class LeoTrainedPolicy(nn.Module):
    """
    The policy that ``leo-train`` trains and ``leo-eval`` scores.

    :param config: sizes and switches
    :param vocabulary: answer words + action tokens (without object tokens)
    :param action_tokenizer: a ``GroundedTokenizer`` or an ``ActionCodec`` (bins / rvq)
    :param classifier: the frozen, pretrained object encoder
    """

    def __init__(self, config: PolicyConfig, vocabulary: AnswerVocabulary, action_tokenizer,
                 classifier: ObjectClassifier):
        super().__init__()
        from transformers import LlamaConfig, LlamaModel
        self.config = config
        self.vocabulary = vocabulary
        self.action_tokenizer = action_tokenizer
        self.classifier = classifier.eval()
        for parameter in self.classifier.parameters():
            parameter.requires_grad_(False)
        width, hidden = config.width, config.llm_hidden
        self.object_in = nn.Sequential(
            nn.Linear(config.object_embedding + GEOMETRY_FEATURES, width), nn.GELU(),
            nn.Linear(width, width))
        if config.location == 'mlp':
            self.location = nn.Sequential(nn.Linear(6, width), nn.GELU(), nn.Linear(width, width))
        else:
            self.location = nn.Linear(6, width)
        self.guide = nn.Linear(TEXT_DIM, 2 * width) if config.text_guidance else None
        self.spatial = nn.ModuleList(SpatialLayer(width, config.spatial_heads,
                                                  config.pairwise_geometry,
                                                  config.text_cross_attention,
                                                  config.pair_values)
                                     for _ in range(config.spatial_layers))
        self.text_to_objects = nn.Linear(TEXT_DIM, width) if config.text_cross_attention \
            else None
        self.spatial_norm = nn.LayerNorm(width)
        self.object_proj = nn.Linear(width, hidden)
        if config.count_token:
            self.count_gate = nn.Linear(width, width)
            self.count_value = nn.Linear(width, width)
            self.count_proj = nn.Linear(width, hidden)
        else:
            self.count_gate = None
        self.text_proj = nn.Linear(TEXT_DIM, hidden)
        self.image = ImageEncoder(hidden) if config.use_image else None
        self.robot = nn.Parameter(torch.randn(hidden) * 0.02)
        self.words = nn.Embedding(len(vocabulary), hidden)
        self.llm = LlamaModel(LlamaConfig(
            vocab_size=2, hidden_size=hidden, intermediate_size=config.llm_intermediate,
            num_hidden_layers=config.llm_layers, num_attention_heads=config.llm_heads,
            num_key_value_heads=config.llm_heads, max_position_embeddings=512,
            tie_word_embeddings=False))
        if config.object_readout:
            self.readout_query = nn.Linear(hidden, width)
            self.readout_key = nn.Linear(width, width)
            self.readout_value = nn.Linear(width, hidden)
            nn.init.zeros_(self.readout_value.weight)  # starts as the plain word head
            nn.init.zeros_(self.readout_value.bias)
        self.head = nn.Linear(hidden, len(vocabulary))
        self.pointer_query = nn.Linear(hidden, width)
        self.pointer_key = nn.Linear(width, width)
        # (target, named) logits per object token; training only
        self.grounding = nn.Linear(width, 2) if config.grounding_loss > 0 else None
        if config.named_geometry:
            # named (and subject) logits after the first layer
            early = 2 if config.subject_head else 1
            self.early_named = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, early))
            self.named_in = nn.Linear(NAMED_GEOMETRY_FEATURES + early - 1, width)
            nn.init.zeros_(self.named_in.weight)      # starts as the policy without it
            nn.init.zeros_(self.named_in.bias)
        else:
            self.early_named = None
        if config.lora:
            self.add_lora()

    # ---- stages
    def add_lora(self):
        """Put LoRA adapters on the LM (peft) and freeze its base weights."""
        from peft import inject_adapter_in_model, LoraConfig
        cfg = self.config
        lora = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=0.0,
                          target_modules=list(cfg.lora_targets))
        self.llm = inject_adapter_in_model(lora, self.llm)
        for name, parameter in self.llm.named_parameters():
            parameter.requires_grad_('lora_' in name)
        cfg.lora = True

    def trainable_parameters(self):
        return [p for p in self.parameters() if p.requires_grad]

    @property
    def word_count(self):
        return len(self.vocabulary)

    # ---- forward
    def encode_objects(self, batch):
        """Return (B, K, W) spatial-transformer object tokens."""
        return self._encode(batch)[0]

    def _encode(self, batch):
        """
        Return (B, K, W) object tokens and the early logits (B, K, C) or None.

        C is 1 (named) or 2 (named, subject: ``subject_head``).
        """
        x = self.object_in(batch['objects'])                            # (B, K, W)
        if self.guide is not None:
            gamma, beta = self.guide(batch['text_pooled']).chunk(2, dim=-1)
            x = x * (1 + gamma[:, None]) + beta[:, None]
        sizes = batch['sizes']                                          # (B, K, 3) [m]
        if self.config.location == 'mlp':
            sizes = torch.log(sizes.clamp(min=0.01))
        geometry = torch.cat([batch['centers'], sizes], dim=-1)         # (B, K, 6)
        location = self.location(geometry)
        pair = pairwise_features(batch['centers'])
        values = None
        if self.spatial[0].pair_value is not None:  # the layers decide (needs pairwise too)
            values = pair_values(batch['centers'], batch['sizes'])      # (B, K, K, 10)
        text = self.text_to_objects(batch['text']) if self.text_to_objects is not None else None
        early = None
        for number, layer in enumerate(self.spatial):
            if number == 1 and self.early_named is not None:
                early = self.early_named(x)                               # (B, K, C)
                mask = batch['object_mask']
                named = torch.sigmoid(early[..., 0].float())                # (B, K)
                features = [named_geometry(batch['centers'], batch['sizes'], named, mask)]
                if self.config.subject_head:
                    subject = early[..., 1].float().masked_fill(~mask, NEG).softmax(-1)
                    features.append(subject[..., None])                     # (B, K, 1)
                x = x + self.named_in(torch.cat(features, dim=-1).to(x.dtype))
            x = layer(x, location, pair, batch['object_mask'], text, batch['text_mask'], values)
        return self.spatial_norm(x), early

    def _prefix(self, batch, objects):
        """Return the prefix (B, L, D) and its mask (B, L): image, robot, count, objects, text."""
        size = objects.shape[0]
        parts, masks = [], []
        if self.image is not None:
            parts.append(self.image(batch['image'])[:, None])
            masks.append(torch.ones(size, 1, dtype=torch.bool, device=objects.device))
        parts.append(self.robot.expand(size, 1, -1))
        masks.append(torch.ones(size, 1, dtype=torch.bool, device=objects.device))
        if self.count_gate is not None:
            gate = torch.sigmoid(self.count_gate(objects)) * batch['object_mask'][..., None]
            summed = (gate * self.count_value(objects)).sum(dim=1)         # (B, W): grows with K
            parts.append(self.count_proj(summed)[:, None])
            masks.append(torch.ones(size, 1, dtype=torch.bool, device=objects.device))
        parts.append(self.object_proj(objects))
        masks.append(batch['object_mask'])
        parts.append(self.text_proj(batch['text']))
        masks.append(batch['text_mask'])
        return torch.cat(parts, dim=1), torch.cat(masks, dim=1)

    def _embed_answer(self, ids, objects_llm):
        """Embed answer ids (B, A): words from the table, ``<obj_k>`` as object token k."""
        words = ids.clamp(max=self.word_count - 1)
        embedded = self.words(words)                                     # (B, A, D)
        is_object = ids >= self.word_count
        if is_object.any():
            index = (ids - self.word_count).clamp(min=0, max=objects_llm.shape[1] - 1)
            gathered = torch.gather(objects_llm, 1,
                                    index[..., None].expand(-1, -1, objects_llm.shape[-1]))
            embedded = torch.where(is_object[..., None], gathered, embedded)
        return embedded

    def _logits(self, hidden, objects, object_mask):
        """Word logits and object-pointer logits: (B, A, V + K)."""
        if self.config.object_readout:
            weights = _object_scores(self.readout_query(hidden), self.readout_key(objects),
                                     object_mask).softmax(-1)             # (B, A, K)
            words = self.head(hidden + self.readout_value(weights @ objects))  # (B, A, V)
        else:
            words = self.head(hidden)                                    # (B, A, V)
        pointer = _object_scores(self.pointer_query(hidden), self.pointer_key(objects),
                                 object_mask)                            # (B, A, K)
        return torch.cat([words, pointer], dim=-1)

    def forward(self, batch):
        """
        Teacher-forced loss on the answer.

        :param batch: tensors from ``leo_ros.train.dataset.collate``
        :return: dict with ``loss`` (mean over answer tokens), ``sample_loss`` (mean over
            answers of their mean token loss), ``correct`` and ``count`` (answer tokens) and
            ``exact`` (B,): whether every answer token is right (teacher forced)
        """
        objects, early = self._encode(batch)
        objects_llm = self.object_proj(objects)
        prefix, prefix_mask = self._prefix(batch, objects)
        answer = batch['answer']                                         # (B, A) incl. eos
        inputs = torch.cat([torch.full_like(answer[:, :1], self.vocabulary.bos),
                            answer[:, :-1]], dim=1)
        embedded = self._embed_answer(inputs, objects_llm)
        sequence = torch.cat([prefix, embedded], dim=1)
        mask = torch.cat([prefix_mask, batch['answer_mask']], dim=1)
        positions = (mask.long().cumsum(1) - 1).clamp(min=0)
        hidden = self.llm(inputs_embeds=sequence, attention_mask=mask.long(),
                          position_ids=positions).last_hidden_state
        hidden = hidden[:, prefix.shape[1]:]                             # (B, A, D)
        logits = self._logits(hidden, objects, batch['object_mask']).float()
        target_mask = batch['answer_mask']                               # (B, A)
        token_loss = nn.functional.cross_entropy(
            logits.transpose(1, 2), answer, reduction='none') * target_mask  # (B, A)
        lengths = target_mask.sum(dim=1)                                 # (B,)
        loss = token_loss.sum() / lengths.sum()
        sample_loss = (token_loss.sum(dim=1) / lengths.clamp(min=1)).mean()
        hits = logits.argmax(-1) == answer                               # (B, A)
        exact = (hits | ~target_mask).all(dim=1)                         # (B,) whole answer
        out = {'loss': loss, 'sample_loss': sample_loss, 'correct': hits[target_mask].sum(),
               'count': target_mask.sum(), 'exact': exact}
        if self.grounding is not None and 'grounding' in batch:
            out.update(self._grounding_loss(objects, batch, early))
        return out

    def _grounding_loss(self, objects, batch, early=None) -> dict:
        """
        Score (B, K, W) object tokens against the batch's grounding marks.

        :param early: (B, K, C) early logits (``named_geometry``): the named ones are scored
            against the named marks, the subject ones (``subject_head``) by cross-entropy over
            the objects against ``batch['subject']`` where there is one; both are added to
            ``auxiliary``
        :return: ``auxiliary`` (weighted, to add to the answer loss), ``grounding_loss``
            (binary cross-entropy per mark, final head), ``grounding_hits`` /
            ``grounding_count``: examples with targets whose highest-scored object is one of them
        """
        logits = self.grounding(objects).float()                         # (B, K, 2)
        marks = batch['grounding']                                       # (B, K, 2)
        weight = (batch['object_mask'] & batch['grounding_mask'][:, None]).float()  # (B, K)
        grounding = _masked_bce(logits, marks, weight[..., None])
        scores = logits[..., 0].masked_fill(~batch['object_mask'], float('-inf'))  # (B, K)
        best = scores.argmax(dim=1, keepdim=True)                        # (B, 1)
        has_target = batch['grounding_mask'] & (marks[..., 0].sum(dim=1) > 0)  # (B,)
        hit = marks[..., 0].gather(1, best)[:, 0] > 0                    # (B,)
        auxiliary = grounding
        if early is not None:
            auxiliary = auxiliary + _masked_bce(early[..., 0].float(), marks[..., 1], weight)
            subject = batch['subject']                                       # (B,), -1: none
            if self.config.subject_head and (subject >= 0).any():
                rows = subject >= 0                                          # (B,)
                subject_logits = early[rows][..., 1].float().masked_fill(
                    ~batch['object_mask'][rows], NEG)                       # (S, K)
                auxiliary = auxiliary + nn.functional.cross_entropy(subject_logits,
                                                                    subject[rows])
        return {'auxiliary': self.config.grounding_loss * auxiliary, 'grounding_loss': grounding,
                'grounding_hits': (hit & has_target).sum(), 'grounding_count': has_target.sum()}

    # ---- generation
    def _grammar(self):
        """Return {marker id: [allowed id lists per payload position]} for non-object tokens."""
        if isinstance(self.action_tokenizer, GroundedTokenizer):
            return {}
        grammar = {}
        for marker, positions in self.action_tokenizer.grammar().items():
            if marker in self.vocabulary.index:
                grammar[self.vocabulary.index[marker]] = [
                    [self.vocabulary.index[t] for t in options if t in self.vocabulary.index]
                    for options in positions]
        return grammar

    @torch.no_grad()
    def generate(self, batch, max_tokens=None, objects=None):
        """
        Greedy decoding with a KV cache and the action grammar (one sample).

        After a marker only its payload can follow (object tokens of objects present, or the
        tokenizer's allowed codes per position); payload tokens cannot appear elsewhere. The
        object tokens of one grounded action are distinct.

        :param objects: (1, K, W) ``encode_objects(batch)``, if already computed
        :return: generated unified ids (list, without eos)
        """
        max_tokens = max_tokens or self.config.max_answer_tokens
        if objects is None:
            objects = self.encode_objects(batch)
        objects_llm = self.object_proj(objects)
        prefix, prefix_mask = self._prefix(batch, objects)
        count = int(batch['object_mask'][0].sum())
        vocab, total = self.word_count, self.word_count + objects.shape[1]
        payload_ids = set()
        grammar = self._grammar()
        for positions in grammar.values():
            for options in positions:
                payload_ids.update(options)
        grounded = isinstance(self.action_tokenizer, GroundedTokenizer)
        grounded_markers = {}
        if grounded:
            for kind in self.action_tokenizer.kinds:
                marker = f'<{kind}>'
                if marker in self.vocabulary.index:
                    grounded_markers[self.vocabulary.index[marker]] = \
                        self.action_tokenizer.tokens_per_action(kind)
        free_mask = torch.zeros(total, dtype=torch.bool)
        free_mask[:vocab] = True
        free_mask[[self.vocabulary.pad, self.vocabulary.bos]] = False
        if payload_ids:
            free_mask[sorted(payload_ids)] = False
        object_mask = torch.zeros(total, dtype=torch.bool)
        object_mask[vocab:vocab + count] = True
        step_input = torch.cat([prefix, self.words.weight[self.vocabulary.bos][None, None]], 1)
        mask = torch.cat([prefix_mask, torch.ones_like(prefix_mask[:, :1])], 1)
        positions = (mask.long().cumsum(1) - 1).clamp(min=0)
        cache, generated, pending, payload_chosen = None, [], [], []
        next_position = int(positions[0, -1]) + 1
        for _ in range(max_tokens):
            out = self.llm(inputs_embeds=step_input, attention_mask=mask.long(),
                           position_ids=positions, past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            logits = self._logits(out.last_hidden_state[:, -1:], objects,
                                  batch['object_mask'])[0, 0].float()     # (V + K,)
            if pending:
                allowed = pending.pop(0)
                if grounded:  # one action names distinct objects (no pick-and-place onto itself)
                    allowed = allowed.clone()
                    allowed[payload_chosen] = False
            else:
                allowed = free_mask
            token = int(logits.masked_fill(~allowed, -float('inf')).argmax())
            if token == self.vocabulary.eos:
                break
            generated.append(token)
            if token in grammar:
                pending = []
                for options in grammar[token]:
                    option_mask = torch.zeros(total, dtype=torch.bool)
                    option_mask[options] = True
                    pending.append(option_mask)
            elif token in grounded_markers:
                pending = [object_mask] * grounded_markers[token]
                payload_chosen = []
            if token >= vocab:
                payload_chosen.append(token)
            embedded = self._embed_answer(torch.tensor([[token]]), objects_llm)
            step_input = embedded
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
            positions = torch.tensor([[next_position]])
            next_position += 1
        return generated

    def ids_to_tokens(self, ids) -> list:
        """Return token strings for unified ids (``<obj_k>`` for pointers)."""
        return [self.vocabulary.tokens[i] if i < self.word_count
                else object_token(i - self.word_count) for i in ids]

    # ---- acting
    def prepare(self, tokens, image, instruction, agent_pose, text_encoder,
                embeddings=None) -> dict:
        """
        Build a one-sample batch from live inputs.

        :param tokens: ``SceneTokens`` (fixed frame)
        :param image: ego-view (H, W, 3) uint8 or None
        :param embeddings: (K, E) classifier embeddings if already computed
        """
        from leo_ros.train.dataset import collate, Example
        keep = _nearest(tokens.centers, agent_pose, self.config.max_objects)
        if embeddings is None:
            embeddings, _ = self.classifier.embed_tokens(tokens)
        features, centers = object_features(embeddings, tokens, agent_pose)
        states, pooled = text_encoder.encode([instruction])[0]
        if self.config.use_image:
            if image is None:
                width, height = self.config.image_size
                image = np.zeros((height, width, 3), np.uint8)
            image = resize_image(np.asarray(image), self.config.image_size)
        example = Example(objects=features[keep], centers=centers[keep],
                          sizes=np.asarray(tokens.sizes, np.float32)[keep], text=states,
                          text_pooled=pooled,
                          image=image_to_tensor_array(image) if self.config.use_image else None,
                          answer=np.zeros(0, np.int64))
        return collate([example], self.vocabulary.eos), keep

    def text_encoder(self):
        """Return the (lazily loaded, shared) frozen MiniLM instruction encoder."""
        encoder = getattr(self, '_text_encoder', None)
        if encoder is None:
            from leo_ros.train.text import InstructionEncoder
            encoder = InstructionEncoder(self.config.max_instruction_tokens)
            self._text_encoder = encoder
        return encoder

    @torch.no_grad()
    def act(self, tokens, image=None, instruction='', agent_pose=(0.0, 0.0, 0.0), situation='',
            is_free=None, embeddings=None, text_encoder=None, probe_grounding=False) -> Decision:
        """
        Decide: text, or actions decoded into the fixed frame.

        :param tokens: ``SceneTokens`` (fixed frame)
        :param image: ego-view (H, W, 3) uint8, or None
        :param instruction: the instruction text
        :param agent_pose: robot (x, y, yaw) in the fixed frame
        :param situation: unused (the robot frame carries the situation); kept for
            compatibility with ``LeoPolicy.act``
        :param is_free: optional ``f(x, y) -> bool`` (map / costmap) for grounded NavGoals
        :param embeddings: (K, E) object-encoder embeddings, if already computed
        :param text_encoder: an ``InstructionEncoder`` (default: the model's own)
        :param probe_grounding: also fill ``Decision.grounding`` from the grounding head (read
            on the object tokens decoding used; nothing without a head)
        """
        self.eval()
        batch, keep = self.prepare(tokens, image, instruction, agent_pose,
                                   text_encoder or self.text_encoder(), embeddings)
        objects = self.encode_objects(batch)                             # (1, K, W)
        ids = self.generate(batch, objects=objects)
        words = self.ids_to_tokens(ids)
        # Pointer k names the k-th kept object: map back to the scene's own order.
        words = [object_token(int(keep[object_index(w)])) if w.startswith('<obj_') else w
                 for w in words]
        decision = self.decode_words(words, tokens, agent_pose, is_free)
        decision.token_ids = list(ids)
        if probe_grounding and self.grounding is not None:
            decision.grounding = self.grounding_probabilities(
                objects, [int(tokens.ids[k]) for k in keep])
        return decision

    @torch.no_grad()
    def grounding_probabilities(self, objects, object_ids) -> dict:
        """
        Read the grounding head on one sample's object tokens (the training loss's view).

        :param objects: (1, K, W) spatial-transformer object tokens (``encode_objects``)
        :param object_ids: the scene id of each of the K objects
        :return: object id -> [P(the answer rests on it), P(the text names it)]
        """
        logits = self.grounding(objects).float()[0]                      # (K, 2)
        probabilities = torch.sigmoid(logits).tolist()
        return {int(i): [round(p, 4) for p in row] for i, row in zip(object_ids, probabilities)}

    def decode_words(self, words, tokens, agent_pose, is_free=None) -> Decision:
        """Split generated tokens into text and actions; decode actions into the fixed frame."""
        text_words, segments, current = [], [], None
        markers = {f'<{kind}>' for kind in ('nav_goal', 'pick_place', 'nav_step', 'ee_delta')}
        for word in words:
            if word in markers:
                current = [word]
                segments.append(current)
            elif current is not None and (word.startswith('<obj_') or word.startswith('<bin_')
                                          or word.startswith('<rvq_')
                                          or word.startswith('<grip_')):
                current.append(word)
            else:
                current = None
                text_words.append(word)
        actions, error = [], ''
        try:
            actions = self._decode_segments(segments, tokens, agent_pose, is_free)
        except ValueError as exc:
            error = str(exc)
        text = join_words(text_words)
        if not text and actions:
            text = '; '.join(_describe(a) for a in actions)
        return Decision(text=text, action=actions[0] if actions else None, tokens=list(words),
                        kind=actions[0].kind if actions else 'text', error=error,
                        tokenizer=self.config.action_mode if actions else '', actions=actions)

    def _decode_segments(self, segments, tokens, agent_pose, is_free):
        actions = []
        pose = tuple(float(v) for v in agent_pose)
        if isinstance(self.action_tokenizer, GroundedTokenizer):
            for number, segment in enumerate(segments):
                kind = segment[0][1:-1]
                context = GroundingContext.from_scene(tokens, pose, is_free)
                reach = None
                following = segments[number + 1] if number + 1 < len(segments) else None
                if kind == 'nav_goal' and following and following[0] == '<pick_place>':
                    reach = [object_index(t) for t in following[1:]]
                after_goal = number > 0 and segments[number - 1][0] == '<nav_goal>'
                if kind == 'pick_place' and not after_goal:
                    # A pick-and-place out of the arm's reach starts with an approach: a base
                    # pose with both objects in reach (what a plan's "go to" step decodes to).
                    pick, place = (object_index(t) for t in segment[1:3])
                    if pick != place and not self.action_tokenizer.within_reach(pick, place,
                                                                                context):
                        approach = self.action_tokenizer.decode('nav_goal', segment[1:2],
                                                                context, [pick, place])
                        actions.append(approach)
                        pose = (approach.x, approach.y, approach.yaw)
                        context = GroundingContext.from_scene(tokens, pose, is_free)
                action = self.action_tokenizer.decode(kind, segment[1:], context, reach)
                actions.append(action)
                if kind == 'nav_goal':  # what follows is decided from where the robot will be
                    pose = (action.x, action.y, action.yaw)
            return actions
        for segment in segments:
            action = self.action_tokenizer.decode(segment)
            actions.append(action_from_robot_frame(action, agent_pose))
        return actions

    # ---- persistence
    def save(self, directory, extra=None):
        """
        Write the whole policy into one directory.

        ``config.json`` (policy config, action mode, ``extra`` such as the training config),
        ``policy.safetensors`` (weights incl. LoRA), ``answer_tokenizer.json``, the classifier
        and the action tokenizer's files.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()
                 if not k.startswith('classifier.')}
        save_file(state, str(directory / 'policy.safetensors'))
        self.vocabulary.save(directory)
        self.classifier.save(directory)
        self.action_tokenizer.save(directory)
        (directory / 'config.json').write_text(json.dumps({
            'format': 'leo_ros.train.policy/1', 'policy': asdict(self.config),
            'action_tokens': list(self.vocabulary.action_tokens), **(extra or {})}, indent=2))

    @classmethod
    def load(cls, directory):
        """Load a policy saved with :meth:`save`; outputs are reproduced exactly."""
        directory = Path(directory)
        meta = json.loads((directory / 'config.json').read_text())
        config = PolicyConfig(**meta['policy'])
        vocabulary = AnswerVocabulary.load(directory, meta['action_tokens'])
        classifier = ObjectClassifier.load(directory)
        action_tokenizer = load_action_tokenizer(config.action_mode, directory)
        model = cls(config, vocabulary, action_tokenizer, classifier)
        state = load_file(str(directory / 'policy.safetensors'))
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith('classifier.')]
        if missing or unexpected:
            raise ValueError(f'{directory}: weights do not match the config: missing {missing}, '
                             f'unexpected {unexpected}')
        model.meta = meta
        return model.eval()


def load_action_tokenizer(mode, directory):
    """Load the action tokenizer of an action mode from a model directory."""
    if mode == 'grounded':
        return GroundedTokenizer.load(directory)
    from leo_ros.actions.tokenizers import ActionCodec
    return ActionCodec.load(directory)


def action_vocabulary(action_tokenizer) -> list:
    """Return the action tokens (markers + payload, no object tokens) a tokenizer adds."""
    if isinstance(action_tokenizer, GroundedTokenizer):
        return [f'<{kind}>' for kind in action_tokenizer.kinds]
    return list(action_tokenizer.vocabulary())


def _nearest(centers, pose, limit) -> np.ndarray:
    """Return indices of at most ``limit`` objects, in scene order, nearest the robot kept."""
    centers = np.asarray(centers)
    if len(centers) <= limit:
        return np.arange(len(centers))
    distance = np.hypot(centers[:, 0] - pose[0], centers[:, 1] - pose[1])
    return np.sort(np.argsort(distance, kind='stable')[:limit])


def resize_image(image, size) -> np.ndarray:
    """Area-averaging resize of (H, W, 3) to (height, width) = size[::-1]."""
    width, height = size
    if image.shape[:2] == (height, width):
        return image
    if image.shape[0] % height == 0 and image.shape[1] % width == 0:
        # Whole-factor shrink: average blocks (what the training images get too).
        fy, fx = image.shape[0] // height, image.shape[1] // width
        blocks = image.reshape(height, fy, width, fx, -1).astype(np.float32)
        return blocks.mean(axis=(1, 3)).round().astype(np.uint8)
    rows = (np.arange(height) * image.shape[0] / height).astype(int)
    cols = (np.arange(width) * image.shape[1] / width).astype(int)
    return image[rows][:, cols]


def _masked_bce(logits, marks, weight) -> torch.Tensor:
    """Binary cross-entropy of logits against marks, averaged with ``weight`` (broadcast)."""
    weight = weight.expand_as(logits)
    bce = nn.functional.binary_cross_entropy_with_logits(logits, marks, reduction='none')
    return (bce * weight).sum() / weight.sum().clamp(min=1)


def _object_scores(query, keys, object_mask) -> torch.Tensor:
    """
    Return scaled dot products of queries with object keys; absent objects get NEG.

    :param query: (B, A, W)
    :param keys: (B, K, W)
    :param object_mask: (B, K) bool, True where an object is present
    :return: (B, A, K)
    """
    scores = query @ keys.transpose(1, 2) / math.sqrt(keys.shape[-1])
    return scores.masked_fill(~object_mask[:, None, :], NEG)


def _describe(action) -> str:
    if action.kind == 'nav_goal':
        return f'navigate to ({action.x:.2f}, {action.y:.2f}, yaw {action.yaw:.2f})'
    if action.kind == 'pick_place':
        return (f'pick at ({action.pick_x:.2f}, {action.pick_y:.2f}, {action.pick_z:.2f}), '
                f'place at ({action.place_x:.2f}, {action.place_y:.2f}, {action.place_z:.2f})')
    return action.kind


def random_like(directory) -> 'LeoTrainedPolicy':
    """
    Return an untrained twin of a saved model: the baseline to beat.

    Same configuration, vocabulary, tokenizers and classifier; freshly initialised (seeded)
    policy weights.
    """
    trained = LeoTrainedPolicy.load(directory)
    torch.manual_seed(12345)
    model = LeoTrainedPolicy(PolicyConfig(**{**asdict(trained.config), 'lora': False}),
                             trained.vocabulary, trained.action_tokenizer, trained.classifier)
    if trained.config.lora:
        model.add_lora()
    return model.eval()
