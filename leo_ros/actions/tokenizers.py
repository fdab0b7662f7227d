"""
Action tokenizers (torch and numpy, no ROS): typed actions <-> action token strings.

Three tokenizers share one interface (``ActionTokenizer``):

- ``SemanticTokenizer``: named tokens for discrete actions (``<forward>``, ``<turn_left>``...).
- ``BinTokenizer``: uniform bins per continuous value (OpenVLA, LEO's CLIPort actions).
- ``RvqTokenizer``: a residual vector quantiser (vector_quantize_pytorch.ResidualVQ) learned from
  demonstrations, one code token per quantiser level.

``ActionCodec`` puts a discrete and a continuous tokenizer behind one action marker grammar: an
action is ``<kind>`` followed by a fixed number of payload tokens from fixed per-position sets,
which is what constrained decoding enforces. Token strings become ids in the text tokenizer.
"""

from dataclasses import asdict, dataclass
import json
import math
from pathlib import Path

from leo_ros.actions.registry import kind_of
from leo_ros.actions.types import NAV_STEP_KINDS, NavStep
from leo_ros.actions.workspace import (ACTION_FIELDS, action_to_vector, vector_to_action,
                                       WorkspaceConfig)
import numpy as np
from safetensors.torch import load_file, save_file
import torch
from tqdm import tqdm


class ActionTokenizer:
    """
    Interface: typed actions <-> payload token strings (the marker is added by ``ActionCodec``).

    Subclasses set ``name`` and ``kinds`` and implement the methods below.
    """

    name = ''
    kinds = ()

    def vocabulary(self) -> list:
        """Return every payload token this tokenizer can emit."""
        raise NotImplementedError

    def allowed_tokens(self, kind: str) -> list:
        """Return, per payload position, the list of tokens allowed there."""
        raise NotImplementedError

    def encode(self, action) -> list:
        """Return the payload tokens of one action."""
        raise NotImplementedError

    def decode(self, kind: str, tokens) -> object:
        """Return the typed action for a payload; a bad payload raises ValueError."""
        raise NotImplementedError

    def tokens_per_action(self, kind: str) -> int:
        return len(self.allowed_tokens(kind))

    def save(self, directory):
        """Write the tokenizer's state into ``directory`` (JSON + safetensors)."""
        raise NotImplementedError

    def _check(self, kind, tokens):
        if kind not in self.kinds:
            raise ValueError(f'{self.name} tokenizer does not handle kind {kind!r}')
        allowed = self.allowed_tokens(kind)
        if len(tokens) != len(allowed):
            raise ValueError(f'{kind} needs {len(allowed)} tokens, got {len(tokens)}')
        for position, (token, options) in enumerate(zip(tokens, allowed)):
            if token not in options:
                raise ValueError(f'token {token!r} is not valid at position {position} of {kind}')


class SemanticTokenizer(ActionTokenizer):
    """Named tokens for discrete navigation steps: ``<forward>``, ``<turn_left>``..."""

    name = 'semantic'
    kinds = ('nav_step',)

    def vocabulary(self):
        return [f'<{step}>' for step in NAV_STEP_KINDS]

    def allowed_tokens(self, kind):
        return [self.vocabulary()]

    def encode(self, action):
        return [f'<{action.step}>']

    def decode(self, kind, tokens):
        self._check(kind, tokens)
        return NavStep(tokens[0][1:-1])

    def save(self, directory):
        _write_json(directory, 'semantic.json', {'name': self.name})

    @classmethod
    def load(cls, directory):
        return cls()


@dataclass
class BinConfig:
    """Uniform binning: one token per value, bins as fine as the resolutions ask."""

    #: bin width for positions and displacements [m] (error is at most half of it)
    position_resolution: float = 0.014
    #: bin width for angles [rad]
    yaw_resolution: float = math.radians(3.0)
    #: levels for the gripper opening in [0, 1]
    gripper_bins: int = 11

    def __post_init__(self):
        for name in ('position_resolution', 'yaw_resolution'):
            if not getattr(self, name) > 0:
                raise ValueError(f'BinConfig.{name} must be > 0, got {getattr(self, name)}')
        if self.gripper_bins < 2:
            raise ValueError(f'BinConfig.gripper_bins must be >= 2, got {self.gripper_bins}')


class BinTokenizer(ActionTokenizer):
    """
    Uniform bins per value; bin tokens ``<bin_i>`` are shared across values (as OpenVLA does).

    Each value's range comes from ``WorkspaceConfig``; its bin count is the range divided by the
    resolution (rounded up); decoding returns the bin centre. Angles are periodic.
    """

    name = 'bins'
    kinds = tuple(ACTION_FIELDS)

    def __init__(self, config: BinConfig = None, workspace: WorkspaceConfig = None):
        self.config = config or BinConfig()
        self.workspace = workspace or WorkspaceConfig()
        self._bins = {}
        for fields in ACTION_FIELDS.values():
            for field in fields:
                self._bins[field] = self._bin_count(field)
        self._size = max(self._bins.values())

    def _bin_count(self, field):
        low, high, _ = self.workspace.field_range(field)
        if field == 'gripper':
            return self.config.gripper_bins
        angular = field.endswith('yaw')
        resolution = self.config.yaw_resolution if angular else self.config.position_resolution
        return max(1, int(math.ceil((high - low) / resolution - 1e-9)))

    def bins(self, field: str) -> int:
        return self._bins[field]

    def vocabulary(self):
        return [f'<bin_{i}>' for i in range(self._size)]

    def allowed_tokens(self, kind):
        vocabulary = self.vocabulary()
        return [vocabulary[:self._bins[field]] for field in ACTION_FIELDS[kind]]

    def encode(self, action):
        indices = self.encode_values(action.kind, action_to_vector(action)[None])[0]
        return [f'<bin_{i}>' for i in indices]

    def encode_values(self, kind, values) -> np.ndarray:
        """
        Return bin indices for many actions of one kind.

        :param values: (N, D) in ``ACTION_FIELDS[kind]`` order
        :return: (N, D) int64
        """
        values = np.asarray(values, np.float64)
        indices = np.empty(values.shape, np.int64)
        for column, field in enumerate(ACTION_FIELDS[kind]):
            low, high, periodic = self.workspace.field_range(field)
            count = self._bins[field]
            if field == 'gripper':
                indices[:, column] = np.clip(np.round(values[:, column] * (count - 1)), 0,
                                             count - 1)
                continue
            fraction = (values[:, column] - low) / (high - low)
            fraction = fraction % 1.0 if periodic else fraction
            indices[:, column] = np.clip(np.floor(fraction * count), 0, count - 1)
        return indices

    def decode_values(self, kind, indices) -> np.ndarray:
        """Return bin centres (N, D) for bin indices (N, D)."""
        indices = np.asarray(indices, np.int64)
        values = np.empty(indices.shape, np.float64)
        for column, field in enumerate(ACTION_FIELDS[kind]):
            low, high, _ = self.workspace.field_range(field)
            count = self._bins[field]
            if field == 'gripper':
                values[:, column] = indices[:, column] / (count - 1)
            else:
                values[:, column] = low + (indices[:, column] + 0.5) * (high - low) / count
        return values

    def decode(self, kind, tokens):
        self._check(kind, tokens)
        indices = [[int(token[len('<bin_'):-1]) for token in tokens]]
        return vector_to_action(kind, self.decode_values(kind, indices)[0])

    def save(self, directory):
        _write_json(directory, 'bins.json', {'config': asdict(self.config),
                                             'workspace': self.workspace.to_dict()})

    @classmethod
    def load(cls, directory):
        state = json.loads((Path(directory) / 'bins.json').read_text())
        return cls(BinConfig(**state['config']), WorkspaceConfig(**state['workspace']))


@dataclass
class RvqConfig:
    """Residual-VQ tokenizer: one ResidualVQ per value group, one token per level."""

    codebook_size: int = 1024
    #: quantiser levels (= tokens) for (x, y, yaw) of a navigation goal
    nav_goal_levels: int = 3
    #: quantiser levels for one gripper pose (x, y, z, yaw); PickPlace has two poses
    pose_levels: int = 4
    #: quantiser levels for an end-effector delta (dx, dy, dz, dyaw); the gripper is one more
    ee_delta_levels: int = 2
    gripper_bins: int = 11
    #: normalisation: positions are divided by this before the global scale [m] ...
    position_unit: float = 0.01
    #: ... and angles by this [rad], so that equal normalised errors meet both targets
    yaw_unit: float = math.radians(3.0)
    train_steps: int = 100
    batch_size: int = 4096
    ema_decay: float = 0.9
    kmeans_iters: int = 20
    seed: int = 0

    def __post_init__(self):
        for name in ('codebook_size', 'nav_goal_levels', 'pose_levels', 'ee_delta_levels',
                     'train_steps', 'batch_size', 'kmeans_iters'):
            if getattr(self, name) < 1:
                raise ValueError(f'RvqConfig.{name} must be >= 1, got {getattr(self, name)}')
        if self.gripper_bins < 2:
            raise ValueError(f'RvqConfig.gripper_bins must be >= 2, got {self.gripper_bins}')
        for name in ('position_unit', 'yaw_unit'):
            if not getattr(self, name) > 0:
                raise ValueError(f'RvqConfig.{name} must be > 0, got {getattr(self, name)}')
        if not 0 < self.ema_decay < 1:
            raise ValueError(f'RvqConfig.ema_decay must be in (0, 1), got {self.ema_decay}')


#: value group -> (fields within a group vector, RvqConfig attribute with its level count)
_RVQ_GROUPS = {
    'nav_goal': (('x', 'y', 'yaw'), 'nav_goal_levels'),
    'pose': (('x', 'y', 'z', 'yaw'), 'pose_levels'),
    'ee_delta': (('dx', 'dy', 'dz', 'dyaw'), 'ee_delta_levels'),
}


class RvqTokenizer(ActionTokenizer):
    """
    Learned residual-VQ tokens ``<rvq_{level}_{code}>`` for continuous actions.

    Values are normalised per group (``(v - mean) / scale``, the statistics saved beside the
    codebooks), where ``scale`` is the value's unit (``position_unit`` or ``yaw_unit``) times one
    global factor, so a normalised error is equally far from both targets. A NavGoal is one
    group vector, a PickPlace two pose vectors, an EEDelta one vector plus a gripper token.
    Call ``fit`` before encoding.
    """

    name = 'rvq'
    kinds = tuple(ACTION_FIELDS)

    def __init__(self, config: RvqConfig = None):
        from vector_quantize_pytorch import ResidualVQ
        self.config = config or RvqConfig()
        torch.manual_seed(self.config.seed)
        self.quantizers = {}
        self.mean, self.scale = {}, {}
        for group, (fields, levels_name) in _RVQ_GROUPS.items():
            self.quantizers[group] = ResidualVQ(
                dim=len(fields), num_quantizers=getattr(self.config, levels_name),
                codebook_size=self.config.codebook_size, decay=self.config.ema_decay,
                kmeans_init=True, kmeans_iters=self.config.kmeans_iters,
                threshold_ema_dead_code=1).eval()
            self.mean[group] = torch.zeros(len(fields), dtype=torch.float64)
            self.scale[group] = torch.ones(len(fields), dtype=torch.float64)
        self.fitted = False

    def levels(self, group):
        return getattr(self.config, _RVQ_GROUPS[group][1])

    def _units(self, group):
        return torch.tensor([self.config.yaw_unit if field.endswith('yaw')
                             else self.config.position_unit
                             for field in _RVQ_GROUPS[group][0]], dtype=torch.float64)

    def fit(self, arrays: dict, progress=True):
        """
        Learn every group's codebooks from demonstrations.

        :param arrays: ``{kind: (N, D) values in ACTION_FIELDS order}`` (``actions_to_arrays``);
            PickPlace rows give two pose samples each. Kinds that are missing train nothing.
        """
        group_data = {}
        for kind, values in arrays.items():
            values = torch.as_tensor(np.asarray(values), dtype=torch.float64)
            for group, part in self._group_slices(kind):
                group_data.setdefault(group, []).append(values[:, part])
        generator = torch.Generator().manual_seed(self.config.seed)
        for group, parts in group_data.items():
            data = torch.cat(parts)                                   # (N, D_group)
            scaled = data / self._units(group)
            self.mean[group] = scaled.mean(dim=0) * self._units(group)
            global_scale = (scaled - scaled.mean(dim=0)).std()
            self.scale[group] = self._units(group) * global_scale
            normalised = ((data - self.mean[group]) / self.scale[group]).float()
            quantizer = self.quantizers[group].train()
            steps = range(self.config.train_steps)
            for _ in tqdm(steps, desc=f'rvq {group}', disable=not progress, leave=False):
                rows = torch.randint(0, len(normalised), (self.config.batch_size,),
                                     generator=generator)
                with torch.no_grad():
                    quantizer(normalised[rows].unsqueeze(0))          # (1, B, D) EMA update
            quantizer.eval()
        self.fitted = True
        return self

    @staticmethod
    def _group_slices(kind):
        if kind == 'nav_goal':
            return [('nav_goal', slice(0, 3))]
        if kind == 'pick_place':
            return [('pose', slice(0, 4)), ('pose', slice(4, 8))]
        if kind == 'ee_delta':
            return [('ee_delta', slice(0, 4))]
        raise ValueError(f'action kind {kind!r} is not continuous')

    def vocabulary(self):
        depth = max(self.levels(group) for group in _RVQ_GROUPS)
        tokens = [f'<rvq_{level}_{code}>' for level in range(depth)
                  for code in range(self.config.codebook_size)]
        return tokens + [f'<grip_{i}>' for i in range(self.config.gripper_bins)]

    def allowed_tokens(self, kind):
        allowed = []
        for group, _ in self._group_slices(kind):
            for level in range(self.levels(group)):
                allowed.append([f'<rvq_{level}_{code}>'
                                for code in range(self.config.codebook_size)])
        if kind == 'ee_delta':
            allowed.append([f'<grip_{i}>' for i in range(self.config.gripper_bins)])
        return allowed

    def encode_values(self, kind, values) -> np.ndarray:
        """
        Return code indices for many actions of one kind.

        :param values: (N, D) in ``ACTION_FIELDS[kind]`` order
        :return: (N, T) int64, T = tokens per action (gripper bin last for EEDelta)
        """
        if not self.fitted:
            raise RuntimeError('RvqTokenizer.fit must run before encoding')
        values = torch.as_tensor(np.asarray(values), dtype=torch.float64)
        columns = []
        for group, part in self._group_slices(kind):
            normalised = ((values[:, part] - self.mean[group]) / self.scale[group]).float()
            with torch.no_grad():
                _, codes, _ = self.quantizers[group](normalised.unsqueeze(0))  # (1, N, L)
            columns.append(codes[0])
        if kind == 'ee_delta':
            grip = torch.round(values[:, 4] * (self.config.gripper_bins - 1))
            columns.append(grip.clamp(0, self.config.gripper_bins - 1).long()[:, None])
        return torch.cat(columns, dim=1).numpy()

    def decode_values(self, kind, codes) -> np.ndarray:
        """Inverse of ``encode_values``: (N, T) codes -> (N, D) values."""
        codes = torch.as_tensor(np.asarray(codes), dtype=torch.long)
        parts, start = [], 0
        for group, _ in self._group_slices(kind):
            levels = self.levels(group)
            with torch.no_grad():
                out = self.quantizers[group].get_output_from_indices(
                    codes[None, :, start:start + levels])              # (1, N, D_group)
            parts.append(out[0].double() * self.scale[group] + self.mean[group])
            start += levels
        if kind == 'ee_delta':
            parts.append(codes[:, start:start + 1].double() / (self.config.gripper_bins - 1))
        return torch.cat(parts, dim=1).numpy()

    def encode(self, action):
        codes = self.encode_values(action.kind, action_to_vector(action)[None])[0]
        return self._codes_to_tokens(action.kind, codes)

    def _codes_to_tokens(self, kind, codes):
        tokens, position = [], 0
        for group, _ in self._group_slices(kind):
            for level in range(self.levels(group)):
                tokens.append(f'<rvq_{level}_{int(codes[position])}>')
                position += 1
        if kind == 'ee_delta':
            tokens.append(f'<grip_{int(codes[position])}>')
        return tokens

    def decode(self, kind, tokens):
        self._check(kind, tokens)
        codes = [int(token[1:-1].split('_')[-1]) for token in tokens]
        return vector_to_action(kind, self.decode_values(kind, np.array([codes]))[0])

    def save(self, directory):
        tensors = {}
        for group, quantizer in self.quantizers.items():
            for key, value in quantizer.state_dict().items():
                tensors[f'{group}.{key}'] = value.contiguous()
            tensors[f'{group}.norm_mean'] = self.mean[group]
            tensors[f'{group}.norm_scale'] = self.scale[group]
        Path(directory).mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(Path(directory) / 'rvq.safetensors'))
        _write_json(directory, 'rvq.json', {'config': asdict(self.config),
                                            'fitted': self.fitted,
                                            'normalisation': {
                                                group: {'mean': self.mean[group].tolist(),
                                                        'scale': self.scale[group].tolist()}
                                                for group in _RVQ_GROUPS}})

    @classmethod
    def load(cls, directory):
        state = json.loads((Path(directory) / 'rvq.json').read_text())
        tokenizer = cls(RvqConfig(**state['config']))
        tensors = load_file(str(Path(directory) / 'rvq.safetensors'))
        for group, quantizer in tokenizer.quantizers.items():
            prefix = f'{group}.'
            quantizer.load_state_dict({key[len(prefix):]: value for key, value in tensors.items()
                                       if key.startswith(prefix) and 'norm_' not in key})
            tokenizer.mean[group] = tensors[f'{group}.norm_mean']
            tokenizer.scale[group] = tensors[f'{group}.norm_scale']
        tokenizer.fitted = state['fitted']
        return tokenizer


TOKENIZERS = {cls.name: cls for cls in (SemanticTokenizer, BinTokenizer, RvqTokenizer)}


class ActionCodec:
    """
    The action grammar the policy speaks: ``<kind>`` then the payload of that kind's tokenizer.

    :param continuous: a ``BinTokenizer`` or ``RvqTokenizer`` for NavGoal, PickPlace, EEDelta
    :param discrete: the tokenizer for NavStep (default ``SemanticTokenizer``)
    """

    def __init__(self, continuous: ActionTokenizer = None, discrete: ActionTokenizer = None):
        self.discrete = discrete or SemanticTokenizer()
        self.continuous = continuous or BinTokenizer()
        self._by_kind = {kind: tokenizer for tokenizer in (self.discrete, self.continuous)
                         for kind in tokenizer.kinds}
        self._by_marker = {kind_of(kind).marker: kind for kind in self._by_kind}

    @property
    def kinds(self):
        return tuple(self._by_kind)

    def tokenizer_for(self, kind) -> ActionTokenizer:
        if kind not in self._by_kind:
            raise ValueError(f'no action tokenizer for kind {kind!r}')
        return self._by_kind[kind]

    def markers(self) -> list:
        return list(self._by_marker)

    def vocabulary(self) -> list:
        """Return markers then payload tokens, without duplicates, in a stable order."""
        tokens = self.markers() + self.discrete.vocabulary() + self.continuous.vocabulary()
        return list(dict.fromkeys(tokens))

    def grammar(self) -> dict:
        """Return ``{marker: [allowed tokens per payload position]}``."""
        return {marker: self._by_kind[kind].allowed_tokens(kind)
                for marker, kind in self._by_marker.items()}

    def encode(self, action) -> list:
        return [kind_of(action).marker] + self.tokenizer_for(action.kind).encode(action)

    def decode(self, tokens):
        """
        Decode ``[marker, *payload]`` into a typed action.

        :raises ValueError: unknown marker or a payload the grammar does not allow
        """
        tokens = list(tokens)
        if not tokens or tokens[0] not in self._by_marker:
            raise ValueError(f'action tokens must start with one of {self.markers()}, '
                             f'got {tokens[:1]}')
        kind = self._by_marker[tokens[0]]
        return self.tokenizer_for(kind).decode(kind, tokens[1:])

    def tokens_per_action(self, kind) -> int:
        return self.tokenizer_for(kind).tokens_per_action(kind)

    def save(self, directory):
        Path(directory).mkdir(parents=True, exist_ok=True)
        _write_json(directory, 'codec.json', {'discrete': self.discrete.name,
                                              'continuous': self.continuous.name})
        self.discrete.save(directory)
        self.continuous.save(directory)

    @classmethod
    def load(cls, directory):
        state = json.loads((Path(directory) / 'codec.json').read_text())
        return cls(continuous=TOKENIZERS[state['continuous']].load(directory),
                   discrete=TOKENIZERS[state['discrete']].load(directory))


def _write_json(directory, name, data):
    Path(directory).mkdir(parents=True, exist_ok=True)
    (Path(directory) / name).write_text(json.dumps(data, indent=2, sort_keys=True))
