"""
``LeoPolicy``: scene tokens + ego-view image + instruction -> text and/or a typed action.

The parts, as LEO has them: per-object PointNet++ -> spatial transformer (with the embodied
token) -> linear projection into the LLM width; the image -> one token -> projection; LEO's
prompt layout around them; a causal LM with LoRA; action tokens decoded by ``ActionCodec`` under
the constrained grammar. ``act`` is what the ROS node calls; ``loss`` what the trainer calls.
"""

import copy
from dataclasses import dataclass, field
import json
from pathlib import Path

from leo_ros.actions.tokenizers import ActionCodec, BinTokenizer, RvqConfig, RvqTokenizer
from leo_ros.model.config import PolicyConfig
from leo_ros.model.image_encoder import ImageEncoder
from leo_ros.model.llm import build_base, DTYPES, embed_tokens, is_built_from_config, wrap_lora
from leo_ros.model.object_encoder import ObjectEncoder
from leo_ros.model.prompt import BOOTSTRAP_CORPUS, format_answer, prompt_segments
from leo_ros.model.spatial import SpatialTransformer
from leo_ros.model.text_tokenizer import ActionGrammarProcessor, TextTokenizer
import numpy as np
from safetensors.torch import load_file, save_file
import torch
from torch import nn

IGNORE_INDEX = -100


@dataclass
class Decision:
    """What one call of ``LeoPolicy.act`` decided."""

    #: the answer text, action tokens removed
    text: str
    #: a typed action (leo_ros.actions.types) or None
    action: object
    #: generated token strings (end-of-sequence excluded)
    tokens: list
    #: 'text' or the action kind ('nav_goal', 'nav_step', ...)
    kind: str
    token_ids: list = field(default_factory=list)
    #: why an action could not be decoded ('' when fine)
    error: str = ''
    #: the action tokenizer that produced the action ('semantic', 'grounded', 'bins', 'rvq';
    #: '' for text)
    tokenizer: str = ''
    #: every typed action, in order (a plan decodes into a NavGoal, then a PickPlace)
    actions: list = field(default_factory=list)
    #: when asked (a trained policy with a grounding head): object id -> [P(the answer rests
    #: on it), P(the text names it)]
    grounding: dict = field(default_factory=dict)


@dataclass
class PolicyInputs:
    """A batch as tensors; ``collate`` builds it from SceneTokens."""

    points: torch.Tensor        # (B, K, P, 6)
    locations: torch.Tensor     # (B, K, 6) centre, size [m]
    object_mask: torch.Tensor   # (B, K) bool
    agent_pose: torch.Tensor    # (B, 3) x, y [m], yaw [rad]
    images: torch.Tensor        # (B, 3, H, W) float in [0, 1]
    image_mask: torch.Tensor    # (B,) bool: False where no image was given
    instructions: list
    situations: list
    answers: list = None        # training targets (``format_answer`` strings)


def collate(scenes, instructions, images=None, agent_poses=None, situations=None, answers=None,
            max_objects=60, image_size=96) -> PolicyInputs:
    """
    Batch scenes; more than ``max_objects`` keeps the ones nearest the agent.

    :param scenes: B ``SceneTokens``
    :param images: B arrays (H, W, 3) uint8 RGB (or float in [0, 1]) or None
    :param agent_poses: B (x, y, yaw) in the scenes' frame (default origin)
    """
    batch = len(scenes)
    images = images if images is not None else [None] * batch
    agent_poses = agent_poses if agent_poses is not None else [(0.0, 0.0, 0.0)] * batch
    situations = situations if situations is not None else [''] * batch
    if not batch == len(instructions) == len(images) == len(agent_poses) == len(situations):
        raise ValueError('collate needs one instruction, image, pose and situation per scene')
    width = max([min(len(scene), max_objects) for scene in scenes] + [1])
    points_per_object = max(scene.points.shape[1] for scene in scenes)
    points = np.zeros((batch, width, points_per_object, 6), np.float32)
    locations = np.zeros((batch, width, 6), np.float32)
    mask = np.zeros((batch, width), bool)
    pixels = np.zeros((batch, 3, image_size, image_size), np.float32)
    image_mask = np.zeros(batch, bool)
    for b, (scene, pose, image) in enumerate(zip(scenes, agent_poses, images)):
        keep = np.arange(len(scene))
        if len(scene) > max_objects:
            distance = np.linalg.norm(scene.centers[:, :2] - np.asarray(pose[:2]), axis=1)
            keep = np.sort(np.argsort(distance, kind='stable')[:max_objects])
        if scene.points.shape[1] != points_per_object:
            raise ValueError('all scenes in a batch need the same points per object')
        points[b, :len(keep)] = scene.points[keep]
        locations[b, :len(keep)] = scene.locations[keep]
        mask[b, :len(keep)] = True
        if image is not None:
            pixels[b] = _image_tensor(image, image_size)
            image_mask[b] = True
    return PolicyInputs(points=torch.from_numpy(points), locations=torch.from_numpy(locations),
                        object_mask=torch.from_numpy(mask),
                        agent_pose=torch.as_tensor(np.asarray(agent_poses, np.float32)),
                        images=torch.from_numpy(pixels), image_mask=torch.from_numpy(image_mask),
                        instructions=list(instructions), situations=list(situations),
                        answers=list(answers) if answers is not None else None)


def _image_tensor(image, size) -> np.ndarray:
    """(H, W, 3) uint8 / float image -> (3, size, size) float32 in [0, 1]."""
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f'image must be (H, W, 3), got {array.shape}')
    array = array.astype(np.float32) / (255.0 if array.dtype == np.uint8 else 1.0)
    tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]
    return nn.functional.interpolate(tensor, size=(size, size), mode='bilinear',
                                     align_corners=False)[0].numpy()


def make_codec(config: PolicyConfig, rvq: RvqTokenizer = None) -> ActionCodec:
    """Return the action codec the config names (an RVQ tokenizer must be given fitted)."""
    if config.action_tokenizer == 'rvq':
        return ActionCodec(continuous=rvq or RvqTokenizer(RvqConfig()))
    return ActionCodec(continuous=BinTokenizer(workspace=config.workspace))


class LeoPolicy(nn.Module):
    """
    The LEO policy.

    :param config: sizes and switches
    :param tokenizer: text tokenizer (action tokens are added here)
    :param codec: the action grammar
    """

    def __init__(self, config: PolicyConfig, tokenizer: TextTokenizer, codec: ActionCodec):
        super().__init__()
        self.config, self.tokenizer, self.codec = config, tokenizer, codec
        self.action_ids = tokenizer.add_action_tokens(codec.vocabulary())
        self.objects = ObjectEncoder(config.objects)
        self.spatial = SpatialTransformer(self.objects.out_dim, config.spatial)
        self.image_encoder = ImageEncoder(config.image)
        special = {'bos': tokenizer.bos_id, 'eos': tokenizer.eos_id, 'pad': tokenizer.pad_id}
        base = build_base(config.llm, len(tokenizer), special)
        new_ids = () if is_built_from_config(config.llm) else self.action_ids
        self.llm = wrap_lora(base, config.llm, new_ids)
        hidden = base.config.hidden_size
        self.object_projection = nn.Linear(config.spatial.width, hidden)
        self.image_projection = nn.Linear(self.image_encoder.out_dim, hidden)
        self.no_image = nn.Parameter(torch.zeros(hidden))
        self.device = torch.device(config.llm.device)
        self.llm_dtype = DTYPES[config.llm.dtype]
        for module in (self.objects, self.spatial, self.image_encoder, self.object_projection,
                       self.image_projection):
            module.to(self.device)
        self.no_image.data = self.no_image.data.to(self.device)
        vocab = self.llm.get_output_embeddings().weight.shape[0]
        grammar = {self.tokenizer.ids([marker])[0]: [self.tokenizer.ids(tokens)
                                                     for tokens in positions]
                   for marker, positions in codec.grammar().items()}
        payload = set(self.tokenizer.ids(codec.vocabulary())) - set(grammar)
        self.grammar = ActionGrammarProcessor(grammar, sorted(payload), tokenizer.eos_id, vocab)
        self._marker_ids = set(grammar)
        self._text_cache = {}
        # KV cache of the constant prompt head (system text), reused by greedy decisions
        self._prefix_cache = {}

    def train(self, mode: bool = True):
        if mode:
            self._prefix_cache = {}   # weights are about to change
        return super().train(mode)

    def load_state_dict(self, *args, **kwargs):
        self._prefix_cache = {}
        return super().load_state_dict(*args, **kwargs)

    # ---- construction -------------------------------------------------------------------

    @classmethod
    def create(cls, config: PolicyConfig = None, texts=None, rvq: RvqTokenizer = None,
               seed: int = 0) -> 'LeoPolicy':
        """
        Build a fresh policy.

        :param texts: strings or text files to train the BPE on (default: a small built-in
            corpus, until the data engine's text exists); ignored for a pretrained tokenizer
        :param rvq: a fitted ``RvqTokenizer`` when ``config.action_tokenizer == 'rvq'``
        """
        config = config or PolicyConfig()
        torch.manual_seed(seed)
        if config.text.kind == 'pretrained':
            tokenizer = TextTokenizer.from_pretrained(config.llm.source)
        else:
            corpus = list(texts) if texts is not None else []
            corpus += [config.system_prompt, *BOOTSTRAP_CORPUS]
            tokenizer = TextTokenizer.train(corpus, config.text.vocab_size,
                                            config.text.min_frequency)
        if config.action_tokenizer == 'rvq' and (rvq is None or not rvq.fitted):
            raise ValueError("PolicyConfig.action_tokenizer is 'rvq': pass a fitted RvqTokenizer")
        return cls(config, tokenizer, make_codec(config, rvq))

    # ---- the forward pieces -------------------------------------------------------------

    def visual_tokens(self, inputs: PolicyInputs):
        """
        Encode objects and image.

        :return: object embeddings (B, K + 1, hidden) with the embodied token first, their
            mask (B, K + 1), image embeddings (B, hidden)
        """
        points = inputs.points.to(self.device)
        mask = inputs.object_mask.to(self.device)
        features = self.objects(points, mask)                              # (B, K, F)
        tokens, token_mask = self.spatial(features, inputs.locations.to(self.device), mask,
                                          inputs.agent_pose.to(self.device))
        objects = self.object_projection(tokens).to(self.llm_dtype)        # (B, K + 1, hidden)
        image = self.image_projection(self.image_encoder(inputs.images.to(self.device)))
        image_mask = inputs.image_mask.to(self.device)[:, None]
        image = torch.where(image_mask, image, self.no_image.expand_as(image))
        return objects, token_mask, image.to(self.llm_dtype)               # (B, hidden)

    def _text_ids(self, text: str) -> list:
        if text not in self._text_cache:
            if len(self._text_cache) > 256:
                self._text_cache.clear()
            self._text_cache[text] = self.tokenizer.encode(text)
        return self._text_cache[text]

    def _sequences(self, inputs: PolicyInputs, with_answers: bool):
        """
        Build per-sample prompt embeddings (padded objects left out) and labels.

        :return: list of (T_b, hidden) embeddings, list of (T_b,) labels, list of head ids
            (the constant text before the image token)
        """
        objects, object_mask, image = self.visual_tokens(inputs)
        embeddings, labels, heads = [], [], []
        for b, instruction in enumerate(inputs.instructions):
            parts = prompt_segments(self.config.system_prompt, instruction,
                                    inputs.situations[b])
            head = [self.tokenizer.bos_id] + self._text_ids(parts.before_image)
            middle = self._text_ids(parts.before_objects)
            tail = self._text_ids(parts.after_objects)
            answer = []
            if with_answers:
                answer = self.tokenizer.encode(inputs.answers[b]) + [self.tokenizer.eos_id]
            text = torch.tensor(head + middle + tail + answer, device=self.device)
            text_embeddings = embed_tokens(self.llm, text[None])[0]        # (T_text, hidden)
            cut1, cut2 = len(head), len(head) + len(middle)
            cut3 = cut2 + len(tail)
            own_objects = objects[b][object_mask[b]]                       # (K_b + 1, hidden)
            embeddings.append(torch.cat([text_embeddings[:cut1], image[b:b + 1],
                                         text_embeddings[cut1:cut2], own_objects,
                                         text_embeddings[cut2:]]))
            prompt_length = cut3 + 1 + len(own_objects)
            labels.append(torch.tensor([IGNORE_INDEX] * prompt_length + answer,
                                       device=self.device))
            heads.append(tuple(head))
        return embeddings, labels, heads

    @staticmethod
    def _pad(embeddings, labels=None, left=False):
        """Stack variable-length sequences; return embeds (B, T, H), mask (B, T), labels."""
        length = max(len(e) for e in embeddings)
        hidden = embeddings[0].shape[-1]
        batch = len(embeddings)
        out = embeddings[0].new_zeros(batch, length, hidden)
        mask = torch.zeros(batch, length, dtype=torch.long, device=out.device)
        padded_labels = torch.full((batch, length), IGNORE_INDEX, dtype=torch.long,
                                   device=out.device)
        for b, sequence in enumerate(embeddings):
            span = slice(length - len(sequence), length) if left else slice(0, len(sequence))
            out[b, span], mask[b, span] = sequence, 1
            if labels is not None:
                padded_labels[b, span] = labels[b]
        return out, mask, padded_labels

    # ---- training -----------------------------------------------------------------------

    def format_answer(self, text: str = '', action=None) -> str:
        """Return the training target for a text answer and/or a typed action."""
        return format_answer(text, self.codec.encode(action) if action is not None else ())

    def loss(self, inputs: PolicyInputs) -> torch.Tensor:
        """Return the mean cross-entropy over answer tokens (``inputs.answers``)."""
        if inputs.answers is None:
            raise ValueError('PolicyInputs.answers is required for the loss')
        embeddings, labels, _ = self._sequences(inputs, with_answers=True)
        embeds, mask, labels = self._pad(embeddings, labels)
        return self.llm(inputs_embeds=embeds, attention_mask=mask, labels=labels).loss

    def logits(self, inputs: PolicyInputs) -> torch.Tensor:
        """Return next-token logits after each prompt (+ answer, if given): (B, V) float32."""
        embeddings, _, _ = self._sequences(inputs, with_answers=inputs.answers is not None)
        embeds, mask, _ = self._pad(embeddings, left=True)
        positions = (mask.cumsum(-1) - 1).clamp_min(0)
        out = self.llm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions)
        return out.logits[:, -1].float()

    # ---- inference ----------------------------------------------------------------------

    @torch.inference_mode()
    def act_batch(self, inputs: PolicyInputs, num_beams: int = None, max_new_tokens: int = None,
                  require_action=False) -> list:
        """
        Decide for a batch; return one ``Decision`` per sample.

        :param num_beams: beam width (default ``config.num_beams``; 1 is greedy)
        :param require_action: True, or a list of action kinds: the answer must be one action
            (of those kinds); needs ``config.constrained``
        """
        from transformers import LogitsProcessorList
        if self.training:
            self.eval()
        num_beams = num_beams or self.config.num_beams
        max_new_tokens = max_new_tokens or self.config.max_new_tokens
        grammar = self.grammar if self.config.constrained else None
        if require_action:
            if grammar is None:
                raise ValueError('require_action needs PolicyConfig.constrained')
            kinds = self.codec.kinds if require_action is True else tuple(require_action)
            grammar = grammar.requiring_action(
                self.tokenizer.ids([f'<{kind}>' for kind in kinds]))
        embeddings, _, heads = self._sequences(inputs, with_answers=False)
        if len(embeddings) == 1 and num_beams == 1:
            ids = self._greedy(embeddings[0], heads[0], grammar, max_new_tokens)
            return [self.parse(ids)]
        embeds, mask, _ = self._pad(embeddings, left=True)
        generated = self.llm.generate(
            inputs_embeds=embeds, attention_mask=mask,
            logits_processor=LogitsProcessorList([grammar] if grammar is not None else []),
            num_beams=num_beams, do_sample=False, max_new_tokens=max_new_tokens,
            eos_token_id=self.tokenizer.eos_id, pad_token_id=self.tokenizer.pad_id,
            use_cache=True)                                                # (B, T_new)
        return [self.parse(row.tolist()) for row in generated]

    def _greedy(self, embeddings, head, grammar, max_new_tokens) -> list:
        """
        Greedy decoding of one sequence with a KV cache; the prompt head's cache is reused.

        :param embeddings: (T, hidden) prompt embeddings; the first ``len(head)`` are ``head``
        """
        if head not in self._prefix_cache:
            if len(self._prefix_cache) > 8:
                self._prefix_cache = {}
            out = self.llm(inputs_embeds=embeddings[None, :len(head)], use_cache=True,
                           logits_to_keep=1)
            self._prefix_cache[head] = out.past_key_values
        cache = copy.deepcopy(self._prefix_cache[head])
        start = len(head)
        positions = torch.arange(start, len(embeddings), device=self.device)[None]
        out = self.llm(inputs_embeds=embeddings[None, start:], past_key_values=cache,
                       position_ids=positions, use_cache=True, logits_to_keep=1)
        generated, position = [], len(embeddings)
        for _ in range(max_new_tokens):
            scores = out.logits[0, -1].float()                             # (V,)
            if grammar is not None:
                allowed = grammar.allowed(generated)[:scores.shape[0]].to(scores.device)
                scores = scores.masked_fill(~allowed, float('-inf'))
            token = int(scores.argmax())
            generated.append(token)
            if token == self.tokenizer.eos_id:
                break
            out = self.llm(input_ids=torch.tensor([[token]], device=self.device),
                           past_key_values=out.past_key_values, use_cache=True,
                           position_ids=torch.tensor([[position]], device=self.device))
            position += 1
        return generated

    def act(self, scene_tokens, image=None, instruction: str = '', agent_pose=(0.0, 0.0, 0.0),
            situation: str = '', **generate) -> Decision:
        """
        Decide once.

        :param scene_tokens: ``SceneTokens`` in the fixed frame
        :param image: (H, W, 3) uint8 RGB ego-view image, or None
        :param agent_pose: (x, y, yaw) of the robot in the same frame
        """
        inputs = collate([scene_tokens], [instruction], [image], [tuple(agent_pose)],
                         [situation], max_objects=self.config.max_objects,
                         image_size=self.config.image.image_size)
        return self.act_batch(inputs, **generate)[0]

    def parse(self, ids) -> Decision:
        """Turn generated ids into a ``Decision`` (text before the first marker, then action)."""
        eos = self.tokenizer.eos_id
        ids = [i for i in ids if i != self.tokenizer.pad_id]
        if eos in ids:
            ids = ids[:ids.index(eos)]
        tokens = self.tokenizer.tokens(ids)
        start = next((n for n, i in enumerate(ids) if i in self._marker_ids), None)
        if start is None:
            return Decision(self.tokenizer.decode(ids).strip(), None, tokens, 'text', ids)
        text = self.tokenizer.decode(ids[:start]).strip()
        kind = tokens[start][1:-1]
        length = self.codec.tokens_per_action(kind)
        try:
            action = self.codec.decode(tokens[start:start + 1 + length])
        except ValueError as error:
            return Decision(text, None, tokens, 'text', ids, error=str(error))
        return Decision(text, action, tokens, kind, ids,
                        tokenizer=self.codec.tokenizer_for(kind).name, actions=[action])

    # ---- save / load --------------------------------------------------------------------

    def _module_state(self) -> dict:
        return {name: tensor for name, tensor in self.state_dict().items()
                if not name.startswith('llm.')}

    def _llm_state(self) -> dict:
        state = self.llm.state_dict()
        if is_built_from_config(self.config.llm):
            return state
        # a pretrained base stays in its own folder: keep what was trained here
        trained = {name for name, p in self.llm.named_parameters() if p.requires_grad}
        return {name: tensor for name, tensor in state.items() if name in trained}

    def save(self, directory):
        """Write config, tokenizer, action codec, weights (safetensors) and LoRA adapters."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / 'config.json').write_text(json.dumps(self.config.to_dict(), indent=2))
        self.tokenizer.save(directory / 'tokenizer')
        self.codec.save(directory / 'actions')
        save_file(_detached(self._module_state()), str(directory / 'modules.safetensors'))
        save_file(_detached(self._llm_state()), str(directory / 'llm.safetensors'))
        if self.config.llm.use_lora:
            self.llm.save_pretrained(str(directory / 'lora'))

    @classmethod
    def load(cls, directory, device: str = None, dtype: str = None) -> 'LeoPolicy':
        """Rebuild a saved policy; ``device`` / ``dtype`` override the saved LLM placement."""
        directory = Path(directory)
        data = json.loads((directory / 'config.json').read_text())
        if device is not None:
            data['llm']['device'] = device
        if dtype is not None:
            data['llm']['dtype'] = dtype
        config = PolicyConfig.from_dict(data)
        tokenizer = TextTokenizer.from_pretrained(directory / 'tokenizer')
        codec = ActionCodec.load(directory / 'actions')
        policy = cls(config, tokenizer, codec)
        modules = load_file(str(directory / 'modules.safetensors'), device=str(policy.device))
        missing, unexpected = policy.load_state_dict(modules, strict=False)
        missing = [name for name in missing if not name.startswith('llm.')]
        if missing or unexpected:
            raise ValueError(f'checkpoint does not match the policy: missing {missing}, '
                             f'unexpected {unexpected}')
        llm_state = load_file(str(directory / 'llm.safetensors'), device=str(policy.device))
        strict = is_built_from_config(config.llm)
        _, unexpected = policy.llm.load_state_dict(llm_state, strict=strict)
        if unexpected:
            raise ValueError(f'LLM checkpoint has unexpected weights {unexpected[:5]}')
        return policy.eval()


def _detached(state: dict) -> dict:
    # clone: safetensors refuses tensors that share storage (tied embeddings)
    return {name: tensor.detach().clone().contiguous().cpu() for name, tensor in state.items()}
