"""
Configuration of the LEO policy: one dataclass per part, all checked, all JSON-serialisable.

The defaults are the tiny CPU model; ``leo_config()`` gives LEO's own sizes and
``LLMConfig(source='7b')`` a LLaMA-7B-size language model (random weights, for timing).
"""

from dataclasses import asdict, dataclass, field, fields

from leo_ros.actions.workspace import WorkspaceConfig

#: LoRA targets as LEO has them (the LLaMA projection names)
LEO_LORA_TARGETS = ('q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj')

LEO_SYSTEM_PROMPT = (
    'You are an AI visual assistant situated in a 3D scene. You can perceive (1) an ego-view '
    'image (accessible when necessary) and (2) the objects (including yourself) in the scene '
    "(always accessible). You should properly respond to the USER's instruction according to "
    'the given visual information.')


def _positive(owner, name, value):
    if not value > 0:
        raise ValueError(f'{owner}.{name} must be > 0, got {value}')


@dataclass
class ObjectEncoderConfig:
    """PointNet++ (LEO's set abstraction 32 / 16 / global) or a plain PointNet, per object."""

    #: 'pointnet++' or 'pointnet'
    kind: str = 'pointnet++'
    #: centroids of the two local set-abstraction levels (the third is global)
    centroids: tuple = (32, 16)
    #: ball-query radii of those levels (points are in the unit sphere)
    radii: tuple = (0.2, 0.4)
    #: neighbours gathered per centroid
    group_size: tuple = (32, 32)
    #: shared-MLP widths of the three levels (LEO: (64,64,128), (128,128,256), (256,512,768))
    mlps: tuple = ((16, 16, 32), (32, 32, 64), (64, 128, 256))
    #: read rgb as point features (else xyz only)
    use_color: bool = True
    #: farthest point sampling of the first level looks at the first this-many points only
    #: (they are a random sample already; 0: all). Ball query still groups from all points.
    fps_candidates: int = 256
    #: LayerNorm after every shared-MLP layer (PointNet++ has BatchNorm; off is faster on CPU)
    point_norm: bool = False
    #: categories of the pretraining classification head (0: no head)
    num_classes: int = 0

    def __post_init__(self):
        self.centroids, self.radii = tuple(self.centroids), tuple(self.radii)
        self.group_size = tuple(self.group_size)
        self.mlps = tuple(tuple(widths) for widths in self.mlps)
        if self.kind not in ('pointnet++', 'pointnet'):
            raise ValueError(f"ObjectEncoderConfig.kind must be 'pointnet++' or 'pointnet', "
                             f'got {self.kind!r}')
        if not len(self.centroids) == len(self.radii) == len(self.group_size) == 2:
            raise ValueError('ObjectEncoderConfig.centroids, radii and group_size need 2 levels, '
                             f'got {self.centroids}, {self.radii}, {self.group_size}')
        if len(self.mlps) != 3 or any(not widths for widths in self.mlps):
            raise ValueError(f'ObjectEncoderConfig.mlps needs 3 non-empty levels, got {self.mlps}')
        for name in ('centroids', 'radii', 'group_size'):
            for value in getattr(self, name):
                _positive('ObjectEncoderConfig', name, value)
        if self.fps_candidates < 0:
            raise ValueError(f'ObjectEncoderConfig.fps_candidates must be >= 0, '
                             f'got {self.fps_candidates}')
        if self.num_classes < 0:
            raise ValueError(f'ObjectEncoderConfig.num_classes must be >= 0, '
                             f'got {self.num_classes}')

    @property
    def out_dim(self) -> int:
        return self.mlps[-1][-1]


@dataclass
class SpatialConfig:
    """LEO's spatial transformer over object tokens plus one embodied token."""

    width: int = 256
    layers: int = 3
    heads: int = 8
    ffn_mult: int = 2
    dropout: float = 0.0
    #: turn off the pairwise-geometry attention bias (an ablation)
    ablate_pairwise_geometry: bool = False
    #: turn off the location embedding (centre + size) added at every layer (an ablation)
    ablate_location_embedding: bool = False
    #: divide pairwise distances by the largest distance in the scene (LEO does)
    normalise_distances: bool = True

    def __post_init__(self):
        for name in ('width', 'layers', 'heads', 'ffn_mult'):
            _positive('SpatialConfig', name, getattr(self, name))
        if self.width % self.heads:
            raise ValueError(f'SpatialConfig.width ({self.width}) must be divisible by heads '
                             f'({self.heads})')
        if not 0 <= self.dropout < 1:
            raise ValueError(f'SpatialConfig.dropout must be in [0, 1), got {self.dropout}')


@dataclass
class ImageEncoderConfig:
    """Ego-view image -> one pooled token."""

    #: 'conv' (small CNN trained here), 'hf' (ConvNext / CLIP vision from ``path``) or 'none'
    kind: str = 'conv'
    #: local directory of a transformers vision model (kind 'hf')
    path: str = ''
    #: side the image is resized to before encoding [px]
    image_size: int = 96
    #: channels of the conv stages (kind 'conv'); the last is the token width
    channels: tuple = (16, 32, 64, 128)
    #: keep a pretrained vision model frozen (kind 'hf')
    freeze: bool = True

    def __post_init__(self):
        self.channels = tuple(self.channels)
        if self.kind not in ('conv', 'hf', 'none'):
            raise ValueError(f"ImageEncoderConfig.kind must be 'conv', 'hf' or 'none', "
                             f'got {self.kind!r}')
        if self.kind == 'hf' and not self.path:
            raise ValueError("ImageEncoderConfig.path is required for kind 'hf'")
        _positive('ImageEncoderConfig', 'image_size', self.image_size)
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f'ImageEncoderConfig.channels must be positive, got {self.channels}')


@dataclass
class LLMConfig:
    """The language model: built from a LLaMA config ('tiny', '7b') or loaded from a directory."""

    #: 'tiny', '7b', or a local directory with a Hugging Face causal LM (and its tokenizer)
    source: str = 'tiny'
    hidden_size: int = 256
    intermediate_size: int = 688
    layers: int = 4
    heads: int = 4
    max_positions: int = 2048
    #: freeze the base weights (LEO); set False to train a tiny base from scratch
    freeze_base: bool = True
    use_lora: bool = True
    lora_r: int = 16
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_targets: tuple = LEO_LORA_TARGETS
    #: 'float32', 'bfloat16' or 'float16' (the last two for GPUs)
    dtype: str = 'float32'
    device: str = 'cpu'

    def __post_init__(self):
        self.lora_targets = tuple(self.lora_targets)
        for name in ('hidden_size', 'intermediate_size', 'layers', 'heads', 'max_positions',
                     'lora_r', 'lora_alpha'):
            _positive('LLMConfig', name, getattr(self, name))
        if self.hidden_size % self.heads:
            raise ValueError(f'LLMConfig.hidden_size ({self.hidden_size}) must be divisible by '
                             f'heads ({self.heads})')
        if self.dtype not in ('float32', 'bfloat16', 'float16'):
            raise ValueError(f"LLMConfig.dtype must be 'float32', 'bfloat16' or 'float16', "
                             f'got {self.dtype!r}')
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f'LLMConfig.lora_dropout must be in [0, 1), got {self.lora_dropout}')
        if self.source == '7b':
            # LLaMA-7B / Vicuna-7B sizes (LEO's LLM)
            self.hidden_size, self.intermediate_size = 4096, 11008
            self.layers, self.heads, self.max_positions = 32, 32, 4096


@dataclass
class TextTokenizerConfig:
    """The text tokenizer: a byte-level BPE trained here, or the LLM directory's own."""

    #: 'bpe' (train / load our own) or 'pretrained' (the tokenizer in LLMConfig.source)
    kind: str = 'bpe'
    vocab_size: int = 2000
    min_frequency: int = 2

    def __post_init__(self):
        if self.kind not in ('bpe', 'pretrained'):
            raise ValueError(f"TextTokenizerConfig.kind must be 'bpe' or 'pretrained', "
                             f'got {self.kind!r}')
        if self.vocab_size < 300:
            raise ValueError(f'TextTokenizerConfig.vocab_size must be >= 300 (bytes + merges), '
                             f'got {self.vocab_size}')
        _positive('TextTokenizerConfig', 'min_frequency', self.min_frequency)


@dataclass
class PolicyConfig:
    """The whole LEO policy."""

    objects: ObjectEncoderConfig = field(default_factory=ObjectEncoderConfig)
    spatial: SpatialConfig = field(default_factory=SpatialConfig)
    image: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    text: TextTokenizerConfig = field(default_factory=TextTokenizerConfig)
    workspace: WorkspaceConfig = field(default_factory=WorkspaceConfig)
    #: continuous action tokenizer: 'bins' or 'rvq' (discrete NavStep is always semantic)
    action_tokenizer: str = 'bins'
    max_objects: int = 60
    system_prompt: str = LEO_SYSTEM_PROMPT
    #: greedy when 1, beam search otherwise
    num_beams: int = 1
    max_new_tokens: int = 24
    #: constrain decoding to the action grammar
    constrained: bool = True

    def __post_init__(self):
        for name, cls in (('objects', ObjectEncoderConfig), ('spatial', SpatialConfig),
                          ('image', ImageEncoderConfig), ('llm', LLMConfig),
                          ('text', TextTokenizerConfig), ('workspace', WorkspaceConfig)):
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, cls(**value))
        if self.action_tokenizer not in ('bins', 'rvq'):
            raise ValueError(f"PolicyConfig.action_tokenizer must be 'bins' or 'rvq', "
                             f'got {self.action_tokenizer!r}')
        for name in ('max_objects', 'num_beams', 'max_new_tokens'):
            if getattr(self, name) < 1:
                raise ValueError(f'PolicyConfig.{name} must be >= 1, got {getattr(self, name)}')

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> 'PolicyConfig':
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f'PolicyConfig has no fields {sorted(unknown)}')
        return cls(**data)


def leo_config(**overrides) -> PolicyConfig:
    """Return LEO's sizes: PointNet++ widths up to 768, 7B-size LLM, bf16 on CUDA."""
    config = PolicyConfig(
        objects=ObjectEncoderConfig(mlps=((64, 64, 128), (128, 128, 256), (256, 512, 768)),
                                    fps_candidates=0),
        llm=LLMConfig(source='7b', dtype='bfloat16', device='cuda'), **overrides)
    return config
